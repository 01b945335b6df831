import crypto from 'node:crypto';
import { GatewayError } from '../errors/index.ts';
import { DerError, TAG, children, content, decodeTime, expectTag, readNode } from './der.ts';
import { formatName, readName, type NameAttribute } from './names.ts';
import { asText, looksLikePem, pemBlocks } from './pem.ts';

export type { NameAttribute } from './names.ts';

/**
 * What the gateway needs to know about an X.509 certificate. Objects returned by `describeCertificate` are
 * frozen and may be shared between callers (they are cached): never modify `der`.
 */
export interface CertificateInfo {
  /** Subject in .NET order and syntax, e.g. "CN=Община Тест, O=Община Тест, C=BG" (see names.ts). */
  readonly subject: string;
  /** Issuer in the same syntax: what .NET writes into X509IssuerName. */
  readonly issuer: string;
  /** Subject attributes in encoding order (C first for most certificates), e.g. to read CN or OID 2.5.4.97. */
  readonly subjectAttributes: readonly NameAttribute[];
  /**
   * The serial as .NET prints it: uppercase hex of the DER INTEGER content octets, no separators, always an even
   * number of digits, with the "00" octet kept when the first real octet is 0x80 or more.
   */
  readonly serialHex: string;
  /** The same serial in decimal (read as unsigned), for XMLDSig X509SerialNumber. */
  readonly serialDecimal: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Uppercase hex, no colons. */
  readonly sha1Fingerprint: string;
  /** Uppercase hex, no colons. */
  readonly sha256Fingerprint: string;
  readonly der: Buffer;
  readonly publicKey: crypto.KeyObject;
  /** Node's asymmetricKeyType of the public key: 'rsa', 'ec', 'rsa-pss', 'ed25519', ... */
  readonly keyType: string;
}

const CACHE_LIMIT = 256;
const cache = new Map<string, CertificateInfo>();

/**
 * Reads a DER certificate. Results are kept in a small LRU cache keyed by the SHA-256 of the DER, because the
 * same few peer certificates arrive with every incoming message.
 *
 * Throws GW_ERR_PKI_UNREADABLE when the bytes are not exactly one well-formed X.509 certificate.
 */
export function describeCertificate(der: Buffer): CertificateInfo {
  if (!Buffer.isBuffer(der) || der.length === 0) {
    throw new GatewayError('GW_ERR_PKI_UNREADABLE', 'empty certificate');
  }
  const sha256 = crypto.createHash('sha256').update(der).digest('hex').toUpperCase();
  const hit = cache.get(sha256);
  if (hit) {
    cache.delete(sha256);
    cache.set(sha256, hit);
    return hit;
  }
  const info = parseCertificate(Buffer.from(der), sha256);
  cache.set(sha256, info);
  if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value!);
  return info;
}

/** For tests and long-running processes that rotate certificates. */
export function clearCertificateCache(): void {
  cache.clear();
}

function parseCertificate(der: Buffer, sha256: string): CertificateInfo {
  let serialHex: string;
  let issuerRdns: NameAttribute[][];
  let subjectRdns: NameAttribute[][];
  let notBefore: Date;
  let notAfter: Date;
  try {
    const cert = expectTag(readNode(der, 0), TAG.SEQUENCE, 'Certificate');
    if (cert.end !== der.length) throw new DerError(`${der.length - cert.end} bytes after the certificate`);
    const [tbs] = children(der, cert);
    const fields = children(der, expectTag(tbs, TAG.SEQUENCE, 'TBSCertificate'));
    let i = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] EXPLICIT Version, absent for v1
    const serial = content(der, expectTag(fields[i++], TAG.INTEGER, 'serialNumber'));
    if (serial.length === 0) throw new DerError('empty serialNumber');
    serialHex = serial.toString('hex').toUpperCase();
    expectTag(fields[i++], TAG.SEQUENCE, 'signature AlgorithmIdentifier');
    issuerRdns = readName(der, expectTag(fields[i++], TAG.SEQUENCE, 'issuer'));
    const validity = children(der, expectTag(fields[i++], TAG.SEQUENCE, 'validity'));
    if (validity.length !== 2) throw new DerError('validity must hold notBefore and notAfter');
    notBefore = decodeTime(der, validity[0]!);
    notAfter = decodeTime(der, validity[1]!);
    subjectRdns = readName(der, expectTag(fields[i++], TAG.SEQUENCE, 'subject'));
  } catch (err) {
    if (err instanceof DerError || err instanceof TypeError) {
      throw new GatewayError('GW_ERR_PKI_UNREADABLE', `not a DER X.509 certificate: ${err.message}`, { cause: err });
    }
    throw err;
  }

  let x509: crypto.X509Certificate;
  try {
    x509 = new crypto.X509Certificate(der);
  } catch (err) {
    throw new GatewayError('GW_ERR_PKI_UNREADABLE', `not an X.509 certificate: ${(err as Error).message}`, { cause: err });
  }
  const publicKey = x509.publicKey;

  return Object.freeze({
    subject: formatName(subjectRdns),
    issuer: formatName(issuerRdns),
    subjectAttributes: Object.freeze(subjectRdns.flat()),
    serialHex,
    serialDecimal: BigInt('0x' + serialHex).toString(10),
    notBefore,
    notAfter,
    sha1Fingerprint: crypto.createHash('sha1').update(der).digest('hex').toUpperCase(),
    sha256Fingerprint: sha256,
    der,
    publicKey,
    keyType: publicKey.asymmetricKeyType ?? 'unknown',
  });
}

/**
 * Reads a certificate given as PEM (text or bytes; the first CERTIFICATE block is used) or as DER bytes.
 * Throws GW_ERR_PKI_NO_CERTIFICATE for PEM without a CERTIFICATE block, GW_ERR_PKI_UNREADABLE otherwise.
 */
export function loadCertificate(pemOrDer: Buffer | string): CertificateInfo {
  return readCertificates(pemOrDer)[0]!;
}

/** All certificates in a PEM text (in order) or the single certificate of a DER buffer; never empty. */
export function readCertificates(pemOrDer: Buffer | string): CertificateInfo[] {
  if (!looksLikePem(pemOrDer)) return [describeCertificate(pemOrDer as Buffer)];
  const certs = pemBlocks(asText(pemOrDer)).filter((b) => b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE');
  if (certs.length === 0) throw new GatewayError('GW_ERR_PKI_NO_CERTIFICATE', 'no "BEGIN CERTIFICATE" block in the PEM text');
  return certs.map((b) => describeCertificate(b.der));
}

/**
 * Throws GW_ERR_PKI_CERT_NOT_YET_VALID before notBefore and GW_ERR_PKI_CERT_EXPIRED after notAfter (both
 * bounds are inclusive, as in RFC 5280).
 */
export function checkValidity(info: CertificateInfo, at: Date = new Date()): void {
  const t = at.getTime();
  if (t < info.notBefore.getTime()) {
    throw new GatewayError('GW_ERR_PKI_CERT_NOT_YET_VALID',
      `certificate ${info.serialHex} (${info.subject}) is valid from ${info.notBefore.toISOString()}; checked at ${at.toISOString()}`);
  }
  if (t > info.notAfter.getTime()) {
    throw new GatewayError('GW_ERR_PKI_CERT_EXPIRED',
      `certificate ${info.serialHex} (${info.subject}) expired at ${info.notAfter.toISOString()}; checked at ${at.toISOString()}`);
  }
}

/**
 * Normalises a hexadecimal serial for comparison: separators (":", " ", "-") and an "0x" prefix removed,
 * uppercase, no leading zeros ("0" for zero). "00:9d:0A" and "9D0A" both give "9D0A".
 * Throws GW_ERR_PKI_UNREADABLE when the text is not hexadecimal.
 */
export function normalizeSerial(s: string): string {
  const compact = s.trim().replace(/^0x/i, '').replace(/[:\s-]/g, '');
  if (!/^[0-9a-fA-F]+$/.test(compact)) {
    const shown = s.length > 80 ? `${s.slice(0, 80)}...` : s;
    throw new GatewayError('GW_ERR_PKI_UNREADABLE', `certificate serial number is not hexadecimal: "${shown}"`);
  }
  return compact.replace(/^0+/, '').toUpperCase() || '0';
}
