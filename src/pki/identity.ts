import crypto from 'node:crypto';
import fs from 'node:fs';
import forge from 'node-forge';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import { checkValidity, describeCertificate, readCertificates, type CertificateInfo } from './certificate.ts';
import { asText, looksLikePem, pemBlocks } from './pem.ts';

/** The key the gateway signs with, its certificate and whatever other certificates came with it. */
export interface SigningIdentity {
  readonly privateKey: crypto.KeyObject;
  /** The certificate whose public key matches `privateKey`. */
  readonly certificate: CertificateInfo;
  /** The other certificates found next to it (usually the issuing CA), in file order. */
  readonly chain: CertificateInfo[];
}

export type SigningIdentitySource =
  | { pkcs12Path: string; password: string }
  | { keyPath: string; certPath: string; passphrase?: string };

export interface LoadSigningIdentityOptions {
  /** The moment the certificate must be valid at; now by default. */
  at?: Date;
  /** Skip the notBefore/notAfter check (tests, or inspecting an expired identity). */
  allowInvalidDates?: boolean;
}

const FORGE_HINT =
  'if the file is valid, convert it with "openssl pkcs12 -in old.p12 -nodes | openssl pkcs12 -export -out new.p12" '
  + 'or configure the PEM key and certificate instead';

/**
 * node-forge derives PBES2 (PBKDF2) keys from the password string as if it were a byte string, so any
 * non-ASCII character (a Cyrillic password) gives the wrong key for files OpenSSL 3 writes by default (AES-256,
 * PBKDF2). The PKCS#12 MAC, on the other hand, forge computes correctly from the UTF-16 form. OpenSSL feeds
 * PBKDF2 the UTF-8 bytes, so for the duration of one synchronous read we hand PBKDF2 the UTF-8 form.
 */
function withUtf8Pbkdf2<T>(password: string, read: () => T): T {
  if (!/[^\x00-\x7f]/.test(password)) return read();
  const pkcs5 = forge.pkcs5 as unknown as { pbkdf2: (...args: unknown[]) => unknown };
  const original = pkcs5.pbkdf2;
  const utf8 = forge.util.encodeUtf8(password);
  pkcs5.pbkdf2 = function (this: unknown, p: unknown, ...rest: unknown[]) {
    return original.call(this, p === password ? utf8 : p, ...rest);
  };
  try {
    return read();
  } finally {
    pkcs5.pbkdf2 = original;
  }
}

function isRsa(key: crypto.KeyObject): boolean {
  return key.asymmetricKeyType === 'rsa';
}

function spki(key: crypto.KeyObject): Buffer {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'der' });
}

/** Pairs the key with its certificate; the shared tail of the PKCS#12 and PEM loaders. */
function assemble(keys: crypto.KeyObject[], certs: CertificateInfo[], what: string): SigningIdentity {
  if (keys.length === 0) throw new GatewayError('GW_ERR_PKI_NO_PRIVATE_KEY', `no private key in ${what}`);
  if (certs.length === 0) throw new GatewayError('GW_ERR_PKI_NO_CERTIFICATE', `no certificate in ${what}`);
  const rsaKeys = keys.filter(isRsa);
  if (rsaKeys.length === 0) {
    const types = [...new Set(keys.map((k) => k.asymmetricKeyType ?? 'unknown'))].join(', ');
    throw new GatewayError('GW_ERR_PKI_UNSUPPORTED_KEY', `the private key in ${what} is ${types}, not rsa`);
  }
  for (const privateKey of rsaKeys) {
    const pub = spki(privateKey);
    const certificate = certs.find((c) => spki(c.publicKey).equals(pub));
    if (certificate) {
      return Object.freeze({ privateKey, certificate, chain: certs.filter((c) => c !== certificate) });
    }
  }
  const serials = certs.map((c) => c.serialHex).join(', ');
  throw new GatewayError('GW_ERR_PKI_KEY_MISMATCH',
    `the private key in ${what} matches none of its certificates (serials ${serials})`);
}

/**
 * Reads a PKCS#12 (.p12/.pfx) file with node-forge, then hands the key to Node crypto: signing never uses forge.
 * Reads files made by node-forge (3DES), by `openssl pkcs12 -export` with OpenSSL 3 defaults (AES-256-CBC,
 * PBKDF2, SHA-256 MAC, including Cyrillic passwords) or `-legacy` (RC2/3DES, SHA-1 MAC); all tested. Windows
 * exports use the same algorithms but have not been tested with a real Windows-made file.
 */
export function loadPkcs12(data: Buffer, password: string): SigningIdentity {
  const what = 'the PKCS#12 file';
  let p12: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(data.toString('binary'));
    p12 = withUtf8Pbkdf2(password, () => forge.pkcs12.pkcs12FromAsn1(asn1, true, password));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/invalid password|wrong password|unable to decrypt|failed to decrypt/i.test(message)) {
      throw new GatewayError('GW_ERR_PKI_BAD_PASSWORD', `${what} cannot be opened with the given password`, { cause: err });
    }
    if (/unsupported|not supported/i.test(message)) {
      throw new GatewayError('GW_ERR_PKI_UNREADABLE',
        `node-forge cannot read ${what}: ${message}; ${FORGE_HINT}`, { cause: err });
    }
    throw new GatewayError('GW_ERR_PKI_UNREADABLE', `not a PKCS#12 file (${message})`, { cause: err });
  }

  const keys: crypto.KeyObject[] = [];
  const certs: CertificateInfo[] = [];
  try {
    for (const bag of p12.safeContents.flatMap((sc) => sc.safeBags)) {
      if (bag.type === forge.pki.oids.keyBag || bag.type === forge.pki.oids.pkcs8ShroudedKeyBag) {
        if (bag.key) {
          keys.push(crypto.createPrivateKey(forge.pki.privateKeyToPem(bag.key)));
        } else if (bag.asn1) {
          // forge only understands RSA; other key types come as raw PrivateKeyInfo, which Node can read.
          const der = Buffer.from(forge.asn1.toDer(bag.asn1).getBytes(), 'binary');
          keys.push(crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
        }
      } else if (bag.type === forge.pki.oids.certBag) {
        const asn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
        if (asn1) certs.push(describeCertificate(Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary')));
      }
    }
  } catch (err) {
    if (isGatewayError(err)) throw err;
    throw new GatewayError('GW_ERR_PKI_UNREADABLE',
      `a key or certificate inside ${what} cannot be read (${(err as Error).message})`, { cause: err });
  }
  return assemble(keys, certs, what);
}

function readPrivateKey(keyPem: string | Buffer, passphrase: string | undefined): crypto.KeyObject {
  const pem = looksLikePem(keyPem);
  const text = pem ? asText(keyPem) : '';
  if (pem && !pemBlocks(text).some((b) => b.label.endsWith('PRIVATE KEY'))) {
    throw new GatewayError('GW_ERR_PKI_NO_PRIVATE_KEY', 'no "BEGIN ... PRIVATE KEY" block in the key file');
  }
  const encrypted = pem
    ? /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,\s*ENCRYPTED/.test(text)
    : undefined;
  try {
    if (pem) return crypto.createPrivateKey({ key: text, format: 'pem', passphrase });
    try {
      return crypto.createPrivateKey({ key: keyPem as Buffer, format: 'der', type: 'pkcs8', passphrase });
    } catch {
      return crypto.createPrivateKey({ key: keyPem as Buffer, format: 'der', type: 'pkcs1' });
    }
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code === 'ERR_MISSING_PASSPHRASE' || (encrypted && passphrase === undefined)) {
      throw new GatewayError('GW_ERR_PKI_BAD_PASSWORD', 'the PEM private key is encrypted and no passphrase was given', { cause: err });
    }
    if (encrypted || code === 'ERR_OSSL_BAD_DECRYPT' || /bad decrypt/i.test((err as Error).message)) {
      throw new GatewayError('GW_ERR_PKI_BAD_PASSWORD', 'the passphrase does not decrypt the PEM private key', { cause: err });
    }
    throw new GatewayError('GW_ERR_PKI_UNREADABLE', `the private key cannot be read (${code || (err as Error).message})`, { cause: err });
  }
}

/**
 * Reads a private key (PEM: PKCS#8, PKCS#1 or encrypted PKCS#8/legacy with `passphrase`; or DER PKCS#8) and a
 * certificate file (PEM with one or more certificates, the signer's and its chain, or one DER certificate).
 */
export function loadPem(keyPem: string | Buffer, certPem: string | Buffer, passphrase?: string): SigningIdentity {
  const key = readPrivateKey(keyPem, passphrase);
  const certs = readCertificates(certPem);
  return assemble([key], certs, 'the PEM files');
}

function readFile(path: string): Buffer {
  try {
    return fs.readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (code ?? 'read error');
    throw new GatewayError('GW_ERR_PKI_UNREADABLE', `${why}: ${path}`, { cause: err });
  }
}

function naming(path: string, load: () => SigningIdentity): SigningIdentity {
  try {
    return load();
  } catch (err) {
    if (isGatewayError(err)) throw new GatewayError(err.code, `${path}: ${err.detail ?? ''}`.trim(), { cause: err });
    throw err;
  }
}

/**
 * Reads the gateway's signing identity from disk and, unless `allowInvalidDates`, checks that the signer
 * certificate is valid now (or at `opts.at`). Errors name the file; they never contain the password.
 */
export function loadSigningIdentity(source: SigningIdentitySource, opts: LoadSigningIdentityOptions = {}): SigningIdentity {
  let identity: SigningIdentity;
  if ('pkcs12Path' in source) {
    const data = readFile(source.pkcs12Path);
    identity = naming(source.pkcs12Path, () => loadPkcs12(data, source.password));
  } else {
    const key = readFile(source.keyPath);
    const cert = readFile(source.certPath);
    identity = naming(`${source.keyPath} + ${source.certPath}`, () => loadPem(key, cert, source.passphrase));
  }
  if (!opts.allowInvalidDates) checkValidity(identity.certificate, opts.at ?? new Date());
  return identity;
}
