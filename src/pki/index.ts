/**
 * Keys and certificates: reading the gateway's signing identity (PKCS#12 or PEM) and describing certificates
 * (ours and the peers') in the forms the SEOS reference implementation (.NET) uses.
 */
export {
  type CertificateInfo,
  type NameAttribute,
  describeCertificate,
  clearCertificateCache,
  loadCertificate,
  readCertificates,
  checkValidity,
  normalizeSerial,
} from './certificate.ts';
export {
  type SigningIdentity,
  type SigningIdentitySource,
  type LoadSigningIdentityOptions,
  loadPkcs12,
  loadPem,
  loadSigningIdentity,
} from './identity.ts';
