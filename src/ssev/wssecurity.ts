import { randomUUID } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import { describeCertificate, type CertificateInfo, type SigningIdentity } from '../pki/index.ts';
import { childElements, elementText, parseXml, type XmlElement } from '../xml/index.ts';
import { DSIG_NS, SIGNATURE_PROFILES, type SignatureProfileName } from '../xmldsig/algorithms.ts';

/**
 * WS-Security for the SSEV SOAP integration service (protocols.md §4.1): WCF basicHttpBinding with
 * TransportWithMessageCredential and an *endorsing* X.509 token. The security header holds
 *
 *   wsu:Timestamp (Created, Expires)            ← the only thing signed
 *   wsse:BinarySecurityToken (X.509 v3, base64 DER of the client certificate)
 *   ds:Signature over Reference URI="#<Timestamp wsu:Id>" with exclusive C14N, KeyInfo a
 *     wsse:SecurityTokenReference to the token
 *
 * which is what WCF expects (node-soap's WSSecurityCert signs the Body too, which is a different policy).
 * Exclusive C14N matters: the Timestamp inherits the soap, wsse and wsu declarations of its ancestors, and
 * inclusive C14N would put all of them into the digest while WCF's exclusive form renders only `wsu`.
 * xml-crypto 6 does the signing and the cryptographic check; the verification around it (structure, Ids,
 * algorithms, times, certificate) is ours, on our safe parser.
 */
export const SOAP11_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const WSSE_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd';
export const WSU_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd';
export const X509V3_TOKEN = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3';
export const BASE64_BINARY = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary';
export const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';

export interface SecureEnvelopeOptions {
  readonly identity: SigningIdentity;
  /** rsa-sha1 for the published Basic256 policy (default); rsa-sha256 for Basic256Sha256. */
  readonly profile?: SignatureProfileName;
  readonly now?: Date;
  readonly ttlSeconds?: number;
}

/**
 * A SOAP 1.1 envelope around `bodyXml` (the operation element, namespaces declared on it) with a signed
 * WS-Security header. The result is the exact text to send: never re-serialize it.
 */
export function secureEnvelope(bodyXml: string, options: SecureEnvelopeOptions): string {
  const now = options.now ?? new Date();
  const expires = new Date(now.getTime() + (options.ttlSeconds ?? 300) * 1000);
  const profile = SIGNATURE_PROFILES[options.profile ?? 'rsa-sha1'];
  const timestampId = '_0';
  const tokenId = `uuid-${randomUUID()}-1`;
  const envelope =
    `<s:Envelope xmlns:s="${SOAP11_NS}" xmlns:u="${WSU_NS}"><s:Header>` +
    `<o:Security s:mustUnderstand="1" xmlns:o="${WSSE_NS}">` +
    `<u:Timestamp u:Id="${timestampId}"><u:Created>${wsuTime(now)}</u:Created><u:Expires>${wsuTime(expires)}</u:Expires></u:Timestamp>` +
    `<o:BinarySecurityToken u:Id="${tokenId}" ValueType="${X509V3_TOKEN}" EncodingType="${BASE64_BINARY}">` +
    `${options.identity.certificate.der.toString('base64')}</o:BinarySecurityToken>` +
    `</o:Security></s:Header><s:Body>${bodyXml}</s:Body></s:Envelope>`;

  const signer = new SignedXml({
    privateKey: options.identity.privateKey,
    idMode: 'wssecurity',
    signatureAlgorithm: profile.signatureMethod,
    canonicalizationAlgorithm: EXC_C14N,
    getKeyInfoContent: () => `<o:SecurityTokenReference><o:Reference URI="#${tokenId}" ValueType="${X509V3_TOKEN}"/></o:SecurityTokenReference>`,
  });
  signer.addReference({
    xpath: `//*[local-name(.)='Timestamp' and namespace-uri(.)='${WSU_NS}']`,
    transforms: [EXC_C14N],
    digestAlgorithm: profile.digestMethod,
  });
  try {
    signer.computeSignature(envelope, {
      location: { reference: `//*[local-name(.)='Security' and namespace-uri(.)='${WSSE_NS}']`, action: 'append' },
      existingPrefixes: { s: SOAP11_NS, u: WSU_NS, o: WSSE_NS },
    });
  } catch (cause) {
    throw new GatewayError('GW_ERR_SSEV_WSSE', `signing the WS-Security timestamp failed: ${(cause as Error).message.slice(0, 200)}`, { cause });
  }
  return signer.getSignedXml();
}

/** wsu:Created/Expires as WCF writes them: UTC with milliseconds and Z. */
function wsuTime(d: Date): string {
  return d.toISOString();
}

export interface VerifyWsSecurityOptions {
  readonly now?: Date;
  /** WCF's default maxClockSkew is 5 minutes. */
  readonly maxClockSkewMs?: number;
  readonly allowSha1?: boolean;
  readonly maxBytes?: number;
}

export interface VerifiedWsSecurity {
  readonly certificate: CertificateInfo;
  /** Lowercase hex SHA-1 of the certificate: how SSEV finds the login (ESubjectCertificateValidator). */
  readonly thumbprint: string;
  readonly created: Date;
  readonly expires: Date;
}

const SIGNATURE_METHODS = new Map<string, { hash: string; sha1: boolean }>([
  ['http://www.w3.org/2000/09/xmldsig#rsa-sha1', { hash: 'sha1', sha1: true }],
  ['http://www.w3.org/2001/04/xmldsig-more#rsa-sha256', { hash: 'sha256', sha1: false }],
]);
const DIGEST_METHODS = new Map<string, boolean>([
  ['http://www.w3.org/2000/09/xmldsig#sha1', true],
  ['http://www.w3.org/2001/04/xmlenc#sha256', false],
]);

/**
 * Verifies the WS-Security header of a SOAP 1.1 envelope the way the integration service's policy demands:
 * one Security header with one Timestamp (current, within the clock skew), one X.509 v3 BinarySecurityToken,
 * and one Signature whose only Reference is that Timestamp (exclusive C14N, nothing else), whose KeyInfo refers
 * to that token, and whose value verifies with the token's key (xml-crypto). Throws GW_ERR_SSEV_WSSE.
 * Whether the certificate belongs to a registered SSEV login is the caller's check (by `thumbprint`).
 */
export function verifyWsSecurity(envelope: Buffer, options: VerifyWsSecurityOptions = {}): VerifiedWsSecurity {
  const now = options.now ?? new Date();
  const skew = options.maxClockSkewMs ?? 5 * 60_000;
  let root: XmlElement;
  try {
    root = parseXml(envelope, { maxBytes: options.maxBytes ?? 64 * 1024 * 1024 }).root;
  } catch (error) {
    throw wsse(`the envelope is not safe, well-formed XML (${isGatewayError(error) ? error.code : 'parse error'})`);
  }
  if (root.ns !== SOAP11_NS || root.local !== 'Envelope') throw wsse('not a SOAP 1.1 Envelope');
  const headers = childElements(root).filter((e) => e.ns === SOAP11_NS && e.local === 'Header');
  if (headers.length !== 1) throw wsse('no SOAP Header');
  const securities = childElements(headers[0]).filter((e) => e.ns === WSSE_NS && e.local === 'Security');
  if (securities.length === 0) throw wsse('no wsse:Security header (the request is not signed)');
  if (securities.length > 1) throw wsse('more than one wsse:Security header');
  const security = securities[0];
  const timestamp = only(security, WSU_NS, 'Timestamp');
  const token = only(security, WSSE_NS, 'BinarySecurityToken');
  const signature = only(security, DSIG_NS, 'Signature');

  // The timestamp.
  const timestampId = wsuId(timestamp);
  const created = instant(only(timestamp, WSU_NS, 'Created'));
  const expiresEls = childElements(timestamp).filter((e) => e.ns === WSU_NS && e.local === 'Expires');
  if (expiresEls.length !== 1) throw wsse('the Timestamp has no Expires');
  const expires = instant(expiresEls[0]);
  if (created.getTime() - skew > now.getTime()) throw wsse('the Timestamp was created in the future');
  if (expires.getTime() + skew < now.getTime()) throw wsse('the Timestamp has expired');
  if (expires.getTime() <= created.getTime()) throw wsse('the Timestamp expires before it was created');

  // The token.
  const tokenId = wsuId(token);
  if (attr(token, '', 'ValueType') !== X509V3_TOKEN) throw wsse('the BinarySecurityToken is not an X.509 v3 token');
  const encoding = attr(token, '', 'EncodingType');
  if (encoding !== undefined && encoding !== BASE64_BINARY) throw wsse('the BinarySecurityToken is not base64');
  const der = base64(elementText(token), 'BinarySecurityToken');
  let certificate: CertificateInfo;
  try {
    certificate = describeCertificate(der);
  } catch {
    throw wsse('the BinarySecurityToken is not an X.509 certificate');
  }
  if (certificate.notBefore > now || certificate.notAfter < now) throw wsse('the client certificate is not valid now');

  // The signature's shape: what is signed, how, and with which key.
  const signedInfo = only(signature, DSIG_NS, 'SignedInfo');
  const c14n = attr(only(signedInfo, DSIG_NS, 'CanonicalizationMethod'), '', 'Algorithm');
  if (c14n !== EXC_C14N) throw wsse(`SignedInfo canonicalization ${String(c14n).slice(0, 80)} is not exclusive C14N`);
  const method = SIGNATURE_METHODS.get(attr(only(signedInfo, DSIG_NS, 'SignatureMethod'), '', 'Algorithm') ?? '');
  if (!method || (method.sha1 && options.allowSha1 === false)) throw wsse('unsupported SignatureMethod');
  const references = childElements(signedInfo).filter((e) => e.ns === DSIG_NS && e.local === 'Reference');
  if (references.length !== 1) throw wsse(`expected exactly one Reference (the Timestamp), found ${references.length}`);
  const reference = references[0];
  if (attr(reference, '', 'URI') !== `#${timestampId}`) throw wsse('the signature does not cover the Timestamp');
  const transforms = childElements(only(reference, DSIG_NS, 'Transforms')).map((t) => attr(t, '', 'Algorithm'));
  if (transforms.length !== 1 || transforms[0] !== EXC_C14N) throw wsse('the Reference must use exactly the exclusive C14N transform');
  const digestSha1 = DIGEST_METHODS.get(attr(only(reference, DSIG_NS, 'DigestMethod'), '', 'Algorithm') ?? '');
  if (digestSha1 === undefined || (digestSha1 && options.allowSha1 === false)) throw wsse('unsupported DigestMethod');
  const keyInfo = only(signature, DSIG_NS, 'KeyInfo');
  const str = only(keyInfo, WSSE_NS, 'SecurityTokenReference');
  const strRef = only(str, WSSE_NS, 'Reference');
  if (attr(strRef, '', 'URI') !== `#${tokenId}`) throw wsse('KeyInfo does not refer to the BinarySecurityToken');

  // The cryptography, by xml-crypto over the same bytes (already proven safe to parse above).
  const xml = envelope.toString('utf8');
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const sigNodes = doc.getElementsByTagNameNS(DSIG_NS, 'Signature');
  if (sigNodes.length !== 1) throw wsse('expected exactly one ds:Signature in the envelope');
  const verifier = new SignedXml({ publicCert: toPem(der), idMode: 'wssecurity' });
  let valid = false;
  try {
    verifier.loadSignature(sigNodes[0] as unknown as Node);
    valid = verifier.checkSignature(xml);
  } catch (error) {
    throw wsse(`signature check failed: ${(error as Error).message.slice(0, 160)}`);
  }
  if (!valid) throw wsse('the signature does not verify');
  const signed = verifier.getSignedReferences();
  if (signed.length !== 1 || !/^<(?:[A-Za-z_][\w.-]*:)?Timestamp[\s>]/.test(signed[0])) throw wsse('what was signed is not the Timestamp');
  return { certificate, thumbprint: certificate.sha1Fingerprint.toLowerCase(), created, expires };
}

function only(parent: XmlElement, ns: string, local: string): XmlElement {
  const found = childElements(parent).filter((e) => e.ns === ns && e.local === local);
  if (found.length !== 1) throw wsse(`expected one ${local} in ${parent.local}, found ${found.length}`);
  return found[0];
}

function attr(el: XmlElement, ns: string, local: string): string | undefined {
  return el.attributes.find((a) => a.ns === ns && a.local === local)?.value;
}

function wsuId(el: XmlElement): string {
  const value = attr(el, WSU_NS, 'Id');
  if (!value || !/^[A-Za-z_][\w.-]{0,200}$/.test(value)) throw wsse(`${el.local} has no valid wsu:Id`);
  return value;
}

function instant(el: XmlElement): Date {
  const text = elementText(el).trim();
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$/.test(text)) throw wsse(`${el.local} is not a UTC dateTime`);
  return new Date(text.replace(/(\.\d{3})\d+/, '$1'));
}

function base64(text: string, what: string): Buffer {
  const clean = text.replace(/\s+/g, '');
  if (!clean || !/^[A-Za-z0-9+/]+={0,2}$/.test(clean) || clean.length % 4 !== 0) throw wsse(`${what} is not base64`);
  return Buffer.from(clean, 'base64');
}

export function toPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

function wsse(detail: string): GatewayError {
  return new GatewayError('GW_ERR_SSEV_WSSE', detail);
}
