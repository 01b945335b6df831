import { createHash, timingSafeEqual, verify as rsaVerify } from 'node:crypto';
import { GatewayError } from '../errors/index.ts';
import { describeCertificate, type CertificateInfo } from '../pki/index.ts';
import { childElements, elementText, textValue, type XmlDocument, type XmlElement } from '../xml/tree.ts';
import { C14N_10, DSIG_NS, ENVELOPED_SIGNATURE, digestHashFor, signatureHashFor, type HashName } from './algorithms.ts';
import { canonicalizeDocument, canonicalizeSubtree } from './c14n.ts';

export interface VerifySignatureOptions {
  /** Accept RSA-SHA1 and SHA-1 digests (the .NET reference signs with them). Default true. */
  readonly allowSha1?: boolean;
  /** When given, the signer's certificate must be exactly this one. */
  readonly trustedCertificate?: CertificateInfo;
  /** When given, the signer's certificate must be valid at this time. */
  readonly validAt?: Date;
}

export interface VerifiedSignature {
  readonly signer: CertificateInfo;
  /** Every certificate found in KeyInfo, the signer first. */
  readonly certificates: CertificateInfo[];
  readonly signatureHash: HashName;
  readonly digestHash: HashName;
  readonly signatureMethod: string;
  readonly digestMethod: string;
}

/**
 * Verifies an enveloped signature whose single Reference has URI="" (the whole document), the shape every SEOS
 * participant uses. It checks the SignedInfo structure strictly (one reference, URI="", only the
 * enveloped-signature transform optionally followed by inclusive C14N), the SignatureValue against the
 * certificate in KeyInfo, then the digest of the whole document without this Signature. Where the Signature
 * may sit is the caller's policy (see seos/verify-message.ts).
 */
export function verifyEnvelopedSignature(
  doc: XmlDocument,
  signature: XmlElement,
  options: VerifySignatureOptions = {},
): VerifiedSignature {
  const checked = verifySignedInfo(signature, options);
  const hash = createHash(checked.verified.digestHash);
  canonicalizeDocument(doc, (chunk) => hash.update(chunk), signature);
  checkDigest(hash.digest(), checked.expectedDigest);
  return checked.verified;
}

/**
 * verifyEnvelopedSignature for a document whose canonical form is hashed elsewhere (a skeleton whose large text
 * lives in a file, see src/xml/skeleton.ts): the same checks in the same order, the digest computed by `digestOf`
 * (the canonical form of the whole document without `signature`, hashed with the given algorithm).
 */
export async function verifyEnvelopedSignatureWith(
  signature: XmlElement,
  digestOf: (hash: HashName) => Promise<Buffer>,
  options: VerifySignatureOptions = {},
): Promise<VerifiedSignature> {
  const checked = verifySignedInfo(signature, options);
  checkDigest(await digestOf(checked.verified.digestHash), checked.expectedDigest);
  return checked.verified;
}

function checkDigest(actual: Buffer, expected: Buffer): void {
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    throw new GatewayError('GW_ERR_SIG_DIGEST_MISMATCH');
  }
}

/** Everything but the digest of the document: structure, algorithms, certificate and the SignatureValue. */
function verifySignedInfo(signature: XmlElement, options: VerifySignatureOptions): { verified: VerifiedSignature; expectedDigest: Buffer } {
  const allowSha1 = options.allowSha1 ?? true;
  const parts = dsigChildren(signature);
  const signedInfo = single(parts, 'SignedInfo', signature.path);
  const signatureValueEl = single(parts, 'SignatureValue', signature.path);
  const keyInfo = parts.filter((e) => e.local === 'KeyInfo');

  const signedInfoParts = dsigChildren(signedInfo);
  const c14nMethod = algorithmOf(single(signedInfoParts, 'CanonicalizationMethod', signedInfo.path));
  if (c14nMethod !== C14N_10) {
    throw new GatewayError('GW_ERR_SIG_ALGORITHM', `CanonicalizationMethod ${c14nMethod.slice(0, 120)}; only inclusive C14N 1.0 is accepted`);
  }
  const signatureMethod = algorithmOf(single(signedInfoParts, 'SignatureMethod', signedInfo.path));
  const signatureHash = signatureHashFor(signatureMethod, allowSha1);
  const references = signedInfoParts.filter((e) => e.local === 'Reference');
  if (references.length !== 1) throw new GatewayError('GW_ERR_SIG_REFERENCE_COUNT', `found ${references.length}`);
  const reference = references[0];
  const uri = reference.attributes.find((a) => a.ns === '' && a.local === 'URI');
  if (!uri || uri.value !== '') {
    throw new GatewayError('GW_ERR_SIG_REFERENCE_URI', uri ? `URI="${uri.value.slice(0, 80)}"` : 'the URI attribute is missing');
  }
  const referenceParts = dsigChildren(reference);
  checkTransforms(referenceParts.filter((e) => e.local === 'Transforms'));
  const digestMethod = algorithmOf(single(referenceParts, 'DigestMethod', reference.path));
  const digestHash = digestHashFor(digestMethod, allowSha1);
  const expectedDigest = base64Value(single(referenceParts, 'DigestValue', reference.path));

  const certificates = keyInfoCertificates(keyInfo);
  if (certificates.length === 0) throw new GatewayError('GW_ERR_SIG_NO_CERTIFICATE');
  const signer = certificates[0];
  if (signer.keyType !== 'rsa') throw new GatewayError('GW_ERR_SIG_BAD_CERTIFICATE', `key type ${signer.keyType}`);
  checkIssuerSerial(keyInfo, signer);
  if (options.trustedCertificate && !options.trustedCertificate.der.equals(signer.der)) {
    throw new GatewayError('GW_ERR_SIG_CERT_NOT_TRUSTED', `signed by serial ${signer.serialHex}, expected ${options.trustedCertificate.serialHex}`);
  }
  if (options.validAt && (options.validAt < signer.notBefore || options.validAt > signer.notAfter)) {
    throw new GatewayError('GW_ERR_SIG_CERT_EXPIRED', `valid ${signer.notBefore.toISOString()} to ${signer.notAfter.toISOString()}`);
  }

  // SignatureValue first: it authenticates SignedInfo, including the DigestValue we are about to trust.
  const signedInfoBytes: Buffer[] = [];
  canonicalizeSubtree(signedInfo, (c) => signedInfoBytes.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c));
  const signatureValue = base64Value(signatureValueEl);
  let signatureOk = false;
  try {
    signatureOk = rsaVerify(signatureHash, Buffer.concat(signedInfoBytes), signer.publicKey, signatureValue);
  } catch (cause) {
    throw new GatewayError('GW_ERR_SIG_INVALID', 'the signature value could not be checked', { cause });
  }
  if (!signatureOk) throw new GatewayError('GW_ERR_SIG_INVALID', `certificate serial ${signer.serialHex}`);
  return { verified: { signer, certificates, signatureHash, digestHash, signatureMethod, digestMethod }, expectedDigest };
}

/** Children of an element-only dsig container; stray text or foreign elements are refused. */
function dsigChildren(el: XmlElement): XmlElement[] {
  for (const node of el.children) {
    if (node.type === 'text' && textValue(node).trim() !== '') {
      throw new GatewayError('GW_ERR_SIG_STRUCTURE', `unexpected text in ${el.path}`);
    }
  }
  const children = childElements(el);
  for (const child of children) {
    if (child.ns !== DSIG_NS) throw new GatewayError('GW_ERR_SIG_STRUCTURE', `unexpected element ${child.path}`);
  }
  return children;
}

function single(elements: XmlElement[], local: string, where: string): XmlElement {
  const found = elements.filter((e) => e.local === local);
  if (found.length !== 1) throw new GatewayError('GW_ERR_SIG_STRUCTURE', `${where}: expected exactly one ${local}, found ${found.length}`);
  return found[0];
}

function algorithmOf(el: XmlElement): string {
  const attr = el.attributes.find((a) => a.ns === '' && a.local === 'Algorithm');
  if (!attr) throw new GatewayError('GW_ERR_SIG_STRUCTURE', `${el.path}: the Algorithm attribute is missing`);
  return attr.value;
}

function checkTransforms(transformsEls: XmlElement[]): void {
  if (transformsEls.length !== 1) {
    throw new GatewayError('GW_ERR_SIG_TRANSFORMS', 'the enveloped-signature transform is required');
  }
  const transforms = dsigChildren(transformsEls[0]);
  const algorithms = transforms.map((t) => {
    if (t.local !== 'Transform') throw new GatewayError('GW_ERR_SIG_TRANSFORMS', `unexpected ${t.path}`);
    if (childElements(t).length > 0) throw new GatewayError('GW_ERR_SIG_TRANSFORMS', 'transforms with parameters (XPath, XSLT) are refused');
    return algorithmOf(t);
  });
  const ok = (algorithms.length === 1 && algorithms[0] === ENVELOPED_SIGNATURE) ||
    (algorithms.length === 2 && algorithms[0] === ENVELOPED_SIGNATURE && algorithms[1] === C14N_10);
  if (!ok) throw new GatewayError('GW_ERR_SIG_TRANSFORMS', `found ${algorithms.map((a) => a.slice(0, 100)).join(', ') || 'none'}`);
}

function base64Value(el: XmlElement): Buffer {
  const text = elementText(el).replace(/[ \t\r\n]+/g, '');
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text) || text.length === 0) {
    throw new GatewayError('GW_ERR_SIG_STRUCTURE', `${el.path} is not base64`);
  }
  return Buffer.from(text, 'base64');
}

function keyInfoCertificates(keyInfo: XmlElement[]): CertificateInfo[] {
  const out: CertificateInfo[] = [];
  for (const ki of keyInfo) {
    for (const data of childElements(ki)) {
      if (data.ns !== DSIG_NS || data.local !== 'X509Data') continue;
      for (const item of childElements(data)) {
        if (item.ns !== DSIG_NS || item.local !== 'X509Certificate') continue;
        out.push(certificateFromText(item));
      }
    }
  }
  return out;
}

/**
 * Peers sign with the same certificate message after message: remember the parsed certificate by its base64
 * text, so a verification does not decode and parse it again (bounded, oldest dropped first).
 */
const certificatesByText = new Map<string, CertificateInfo>();
const CERTIFICATE_CACHE_SIZE = 256;

function certificateFromText(item: XmlElement): CertificateInfo {
  const text = elementText(item);
  const cached = certificatesByText.get(text);
  if (cached) return cached;
  const der = base64Value(item);
  let info: CertificateInfo;
  try {
    info = describeCertificate(der);
  } catch (cause) {
    throw new GatewayError('GW_ERR_SIG_BAD_CERTIFICATE', `${item.path} cannot be parsed`, { cause });
  }
  if (certificatesByText.size >= CERTIFICATE_CACHE_SIZE) certificatesByText.delete(certificatesByText.keys().next().value!);
  certificatesByText.set(text, info);
  return info;
}

function checkIssuerSerial(keyInfo: XmlElement[], signer: CertificateInfo): void {
  for (const ki of keyInfo) {
    for (const data of childElements(ki)) {
      if (data.local !== 'X509Data') continue;
      for (const item of childElements(data)) {
        if (item.local !== 'X509IssuerSerial') continue;
        const serialEl = childElements(item).find((e) => e.local === 'X509SerialNumber');
        const serial = serialEl ? elementText(serialEl).trim() : '';
        if (!/^[0-9]+$/.test(serial) || BigInt(serial).toString() !== signer.serialDecimal) {
          throw new GatewayError('GW_ERR_SIG_KEYINFO_MISMATCH', `X509SerialNumber ${serial.slice(0, 60)} vs certificate ${signer.serialDecimal}`);
        }
      }
    }
  }
}
