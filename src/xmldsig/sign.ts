import { createHash, sign as rsaSign } from 'node:crypto';
import { GatewayError } from '../errors/index.ts';
import type { SigningIdentity } from '../pki/index.ts';
import { parseXml } from '../xml/parse.ts';
import { namespacesInScope } from '../xml/tree.ts';
import { C14N_10, DSIG_NS, ENVELOPED_SIGNATURE, SIGNATURE_PROFILES, type SignatureProfileName } from './algorithms.ts';
import { canonicalizeDocument, escapeCanonicalAttribute, escapeCanonicalText } from './c14n.ts';

/**
 * How KeyInfo is written: `standard` puts the signer's certificate once; `dotnet` puts it twice, as the
 * government's .NET node does (`KeyInfoX509Data(cert, EndCertOnly)` then `AddCertificate`), for tests and peers
 * that expect that exact shape.
 */
export type KeyInfoStyle = 'standard' | 'dotnet';

export interface EnvelopedSignatureInput {
  /** Digest of the canonical document without the Signature, computed with the profile's hash. */
  readonly digest: Buffer;
  readonly identity: SigningIdentity;
  readonly profile?: SignatureProfileName;
  /**
   * Namespace declarations the Signature element inherits from its ancestors other than the default namespace
   * (which Signature redeclares). Inclusive C14N renders them on SignedInfo, so they enter the signed bytes.
   */
  readonly inheritedNamespaces?: ReadonlyArray<{ prefix: string; uri: string }>;
  readonly keyInfo?: KeyInfoStyle;
}

/**
 * The `<Signature>` element for an enveloped signature over Reference URI="" with the SEOS shape: one
 * reference, the enveloped-signature transform, inclusive C14N 1.0, KeyInfo/X509Data with X509IssuerSerial
 * (decimal serial) and the certificate. The returned XML is already canonical, so it can be appended as is.
 */
export function buildEnvelopedSignature(input: EnvelopedSignatureInput): string {
  const signedInfo = signedInfoOf(input);
  return assembleSignature(input, signedInfo.content, rsaSign(signedInfo.hash, signedInfo.canonical, input.identity.privateKey));
}

/**
 * The same signature, with the RSA operation (about half a millisecond for a 2048-bit key, most of the CPU of a
 * small message) done in libuv's thread pool: the event loop goes on serving other requests meanwhile.
 */
export function buildEnvelopedSignatureAsync(input: EnvelopedSignatureInput): Promise<string> {
  const signedInfo = signedInfoOf(input);
  return new Promise((resolve, reject) => {
    rsaSign(signedInfo.hash, signedInfo.canonical, input.identity.privateKey, (error, signatureValue) => {
      if (error) reject(error);
      else resolve(assembleSignature(input, signedInfo.content, signatureValue));
    });
  });
}

/** SignedInfo's content, and its canonical form as inclusive C14N renders it (what is signed). */
function signedInfoOf(input: EnvelopedSignatureInput): { content: string; canonical: Buffer; hash: string } {
  const profile = SIGNATURE_PROFILES[input.profile ?? 'rsa-sha256'];
  const content =
    `<CanonicalizationMethod Algorithm="${C14N_10}"></CanonicalizationMethod>` +
    `<SignatureMethod Algorithm="${profile.signatureMethod}"></SignatureMethod>` +
    `<Reference URI=""><Transforms><Transform Algorithm="${ENVELOPED_SIGNATURE}"></Transform></Transforms>` +
    `<DigestMethod Algorithm="${profile.digestMethod}"></DigestMethod>` +
    `<DigestValue>${input.digest.toString('base64')}</DigestValue></Reference>`;

  // SignedInfo as inclusive C14N renders it when it is the apex of a document subset: the dsig default
  // namespace from Signature plus whatever prefixed namespaces are inherited, sorted by prefix.
  const inherited = (input.inheritedNamespaces ?? []).filter((n) => n.prefix !== '')
    .sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
  const nsAttrs = [` xmlns="${DSIG_NS}"`, ...inherited.map((n) => ` xmlns:${n.prefix}="${escapeCanonicalAttribute(n.uri)}"`)].join('');
  return { content, canonical: Buffer.from(`<SignedInfo${nsAttrs}>${content}</SignedInfo>`, 'utf8'), hash: profile.hash };
}

function assembleSignature(input: EnvelopedSignatureInput, signedInfoContent: string, signatureValue: Buffer): string {
  const cert = input.identity.certificate;
  const certB64 = cert.der.toString('base64');
  const certificates = input.keyInfo === 'dotnet'
    ? `<X509Certificate>${certB64}</X509Certificate><X509Certificate>${certB64}</X509Certificate>`
    : `<X509Certificate>${certB64}</X509Certificate>`;
  return `<Signature xmlns="${DSIG_NS}"><SignedInfo>${signedInfoContent}</SignedInfo>` +
    `<SignatureValue>${signatureValue.toString('base64')}</SignatureValue>` +
    `<KeyInfo><X509Data><X509IssuerSerial><X509IssuerName>${escapeCanonicalText(cert.issuer)}</X509IssuerName>` +
    `<X509SerialNumber>${cert.serialDecimal}</X509SerialNumber></X509IssuerSerial>${certificates}</X509Data></KeyInfo></Signature>`;
}

export interface SignDocumentOptions {
  readonly profile?: SignatureProfileName;
  readonly keyInfo?: KeyInfoStyle;
}

/**
 * Signs an existing XML document as it is (its bytes are kept; nothing is re-serialized): the Signature is
 * inserted as the last child of the root element. Used by the CLI's `message sign` and to make .NET-shaped
 * test vectors; our own messages are signed while they are written (see seos/sign-message.ts).
 */
export function signXmlDocument(xml: Buffer, identity: SigningIdentity, options: SignDocumentOptions = {}): Buffer {
  const doc = parseXml(xml);
  const profile = SIGNATURE_PROFILES[options.profile ?? 'rsa-sha256'];
  const hash = createHash(profile.hash);
  canonicalizeDocument(doc, (chunk) => hash.update(chunk));
  const endTag = xml.lastIndexOf('</', doc.root.end);
  if (endTag < doc.root.start || xml[doc.root.end - 2] === 0x2f /* "/>" */) {
    throw new GatewayError('GW_ERR_SEOS_SCHEMA', 'the root element is empty; nothing to sign');
  }
  const inheritedNamespaces = [...namespacesInScope(doc.root)].map(([prefix, uri]) => ({ prefix, uri }));
  const signature = buildEnvelopedSignature({
    digest: hash.digest(), identity, profile: profile.name, inheritedNamespaces, keyInfo: options.keyInfo,
  });
  return Buffer.concat([xml.subarray(0, endTag), Buffer.from(signature, 'utf8'), xml.subarray(endTag)]);
}
