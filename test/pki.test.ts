import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError, type ErrorCode } from '../src/errors/index.ts';
import {
  checkValidity,
  describeCertificate,
  loadCertificate,
  loadPem,
  loadPkcs12,
  loadSigningIdentity,
  normalizeSerial,
  type CertificateInfo,
} from '../src/pki/index.ts';
import { DEMO_OU, DEMO_WARNING_FILE, makeTestPki, type TestPkiAdminEntry, type TestPkiManifest } from '../certs/test-pki.ts';

const DAY = 24 * 60 * 60 * 1000;
const PASSWORD = 'demo-password';
const OPENSSL = '/usr/bin/openssl';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

let dir: string;
let pki: TestPkiManifest;
const admin = (name: string): TestPkiAdminEntry => {
  const found = pki.admins.find((a) => a.name === name);
  if (!found) throw new Error(`no admin ${name} in the test PKI`);
  return found;
};
const read = (p: string) => fs.readFileSync(p);
const readText = (p: string) => fs.readFileSync(p, 'utf8');

/** Runs fn and returns the GatewayError it throws (failing the test if it throws anything else or nothing). */
function gatewayError(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('expected a GatewayError, but nothing was thrown');
}

function expectCode(fn: () => unknown, code: ErrorCode): GatewayError {
  const err = gatewayError(fn);
  expect(err.code, err.message).toBe(code);
  return err;
}

/** The openssl CLI is required: its absence must fail the interop tests, never skip them. */
function openssl(args: string[]): string {
  if (!fs.existsSync(OPENSSL)) {
    throw new Error(`${OPENSSL} is missing; these PKCS#12 interop tests need it: apt-get install openssl`);
  }
  return execFileSync(OPENSSL, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function derOfPem(pemPath: string): Buffer {
  return new crypto.X509Certificate(read(pemPath)).raw;
}

function p12Der(asn1: forge.asn1.Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
}

function signsAndVerifies(privateKey: crypto.KeyObject, cert: CertificateInfo): boolean {
  const data = Buffer.from('<Message>тест</Message>');
  const signature = crypto.sign('sha256', data, privateKey);
  return crypto.verify('sha256', data, cert.publicKey, signature);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-pki-test-'));
  const now = Date.now();
  pki = makeTestPki({
    out: path.join(dir, 'pki'),
    demo: true,
    admins: [
      { name: 'obshtina-alfa', eik: '000000001', commonName: 'Община Алфа' },
      { name: 'obshtina-beta', eik: '000000002', commonName: 'Община Бета' },
      { name: 'expired', eik: '000000003', commonName: 'Община Изтекла' },
      { name: 'future', eik: '000000004', commonName: 'Община Бъдеща' },
      { name: 'high-serial', eik: '000000005', commonName: 'Община Висока', serialHex: 'c0:ff:ee:00:11:22:33:44:55:66:77:88:99:aa:bb:cc' },
      { name: 'low-serial', eik: '000000006', commonName: 'Община Ниска', serialHex: '0x0abc' },
      { name: 'quoted', eik: '000000007', commonName: 'Община "Алфа", клон; Тест' },
    ],
    validity: {
      expired: { notBefore: new Date(now - 730 * DAY), notAfter: new Date(now - DAY) },
      future: { notBefore: new Date(now + 30 * DAY), notAfter: new Date(now + 730 * DAY) },
    },
  });
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('makeTestPki', () => {
  it('writes every file, a demo warning and a manifest equal to what it returns', () => {
    for (const a of pki.admins) {
      for (const p of [a.keyPath, a.certPath, a.p12Path]) expect(fs.existsSync(p), p).toBe(true);
      expect(path.dirname(a.p12Path)).toBe(pki.out);
      expect(fs.statSync(a.keyPath).mode & 0o077).toBe(0);
      expect(fs.statSync(a.p12Path).mode & 0o077).toBe(0);
    }
    expect(fs.existsSync(path.join(pki.out, 'ca.cert.pem'))).toBe(true);
    expect(fs.existsSync(path.join(pki.out, 'ca.key.pem'))).toBe(true);
    expect(fs.existsSync(path.join(pki.out, DEMO_WARNING_FILE))).toBe(true);
    expect(JSON.parse(readText(path.join(pki.out, 'manifest.json')))).toEqual(JSON.parse(JSON.stringify(pki)));
    expect(pki.p12Password).toBe(PASSWORD);
  });

  it('marks demo certificates in CN and OU and issues them from the CA', () => {
    for (const a of pki.admins) {
      const attrs = loadCertificate(read(a.certPath)).subjectAttributes;
      expect(attrs.find((x) => x.name === 'CN')?.value).toBe(`DEMO ${a.commonName}`);
      expect(attrs.find((x) => x.name === 'OU')?.value).toBe(DEMO_OU);
      expect(a.issuer).toBe(pki.ca.subject);
      const cert = new crypto.X509Certificate(read(a.certPath));
      expect(cert.verify(new crypto.X509Certificate(read(pki.ca.certPath)).publicKey)).toBe(true);
    }
    const plain = makeTestPki({ out: path.join(dir, 'plain'), admins: [{ name: 'x', eik: '000000009', commonName: 'Община Х' }] });
    expect(plain.admins[0]!.subject).toBe('CN=Община Х, OID.2.5.4.97=NTRBG-000000009, O=Община Х, C=BG');
    expect(fs.existsSync(path.join(plain.out, DEMO_WARNING_FILE))).toBe(false);
  });

  it('gives the first administration a serial with the top bit set and the second one without', () => {
    expect(admin('obshtina-alfa').serialHex).toMatch(/^00[89A-F][0-9A-F]{31}$/);
    expect(admin('obshtina-beta').serialHex).toMatch(/^(0[1-9A-F]|[1-7][0-9A-F])[0-9A-F]{30}$/);
  });

  it('CLI: creates the certificates once and then leaves them alone unless --force', () => {
    const out = path.join(dir, 'cli');
    const tsx = path.join(ROOT, 'node_modules/.bin/tsx');
    const run = (...extra: string[]) =>
      spawnSync(tsx, ['certs/make-certs.ts', '--out', out, '--demo', ...extra], { encoding: 'utf8', cwd: ROOT });
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain('Създадени са тестови сертификати');
    const manifest = JSON.parse(readText(path.join(out, 'manifest.json'))) as TestPkiManifest;
    expect(manifest.admins.map((a) => a.name)).toEqual(['obshtina-alfa', 'obshtina-beta']);
    expect(manifest.admins.map((a) => a.eik)).toEqual(['000000001', '000000002']);
    expect(manifest.admins[0]!.subject).toBe('CN=DEMO Община Алфа, OID.2.5.4.97=NTRBG-000000001, OU=DEMO - NOT FOR PRODUCTION, O=Община Алфа, C=BG');
    const second = run();
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('вече съществуват');
    expect(JSON.parse(readText(path.join(out, 'manifest.json')))).toEqual(manifest);
    const forced = run('--force');
    expect(forced.status, forced.stderr).toBe(0);
    expect(JSON.parse(readText(path.join(out, 'manifest.json'))).admins[0].serialHex).not.toBe(manifest.admins[0]!.serialHex);
    const noOut = spawnSync(tsx, ['certs/make-certs.ts', '--demo'], { encoding: 'utf8', cwd: ROOT });
    expect(noOut.status).toBe(2);
    expect(noOut.stderr).toContain('--out');
  }, 90_000);
});

describe('loadPkcs12 (files made by node-forge)', () => {
  it('loads the key, picks the signer certificate and formats serials and names the .NET way', () => {
    const a = admin('obshtina-alfa');
    const id = loadPkcs12(read(a.p12Path), PASSWORD);
    const cert = id.certificate;
    expect(cert.subject).toBe('CN=DEMO Община Алфа, OID.2.5.4.97=NTRBG-000000001, OU=DEMO - NOT FOR PRODUCTION, O=Община Алфа, C=BG');
    expect(cert.issuer).toBe('CN=DEMO Тестов удостоверител СЕОС, OU=DEMO - NOT FOR PRODUCTION, O=Тестова инфраструктура СЕОС, C=BG');
    expect(cert.serialHex).toBe(a.serialHex);
    expect(cert.serialDecimal).toBe(BigInt('0x' + cert.serialHex).toString());
    expect(cert.serialDecimal).toBe(a.serialDecimal);
    // Node prints the serial without the DER sign octet; the value is the same.
    const x509 = new crypto.X509Certificate(read(a.certPath));
    expect(normalizeSerial(x509.serialNumber)).toBe(normalizeSerial(cert.serialHex));
    expect(cert.der.equals(x509.raw)).toBe(true);
    expect(cert.sha256Fingerprint).toBe(x509.fingerprint256.replace(/:/g, ''));
    expect(cert.sha1Fingerprint).toBe(x509.fingerprint.replace(/:/g, ''));
    expect(cert.notAfter.toISOString()).toBe(a.notAfter);
    expect(cert.notBefore.toISOString()).toBe(a.notBefore);
    expect(cert.keyType).toBe('rsa');
    expect(id.privateKey.asymmetricKeyType).toBe('rsa');
    expect(signsAndVerifies(id.privateKey, cert)).toBe(true);
    expect(id.chain.map((c) => c.serialHex)).toEqual([pki.ca.serialHex]);
    expect(id.chain[0]!.der.equals(derOfPem(pki.ca.certPath))).toBe(true);
  });

  it('refuses a wrong password without revealing it', () => {
    const err = expectCode(() => loadPkcs12(read(admin('obshtina-alfa').p12Path), 'wrong-secret-123'), 'GW_ERR_PKI_BAD_PASSWORD');
    expect(err.message).not.toContain('wrong-secret-123');
    expect(JSON.stringify(err.toJSON())).not.toContain('wrong-secret-123');
  });

  it('reports a PKCS#12 without a private key', () => {
    const cert = forge.pki.certificateFromPem(readText(admin('obshtina-alfa').certPath));
    const p12 = p12Der(forge.pkcs12.toPkcs12Asn1(null, [cert], PASSWORD, { algorithm: '3des' }));
    expectCode(() => loadPkcs12(p12, PASSWORD), 'GW_ERR_PKI_NO_PRIVATE_KEY');
  });

  it('reports a PKCS#12 without a certificate', () => {
    const key = forge.pki.privateKeyFromPem(readText(admin('obshtina-alfa').keyPath));
    const p12 = p12Der(forge.pkcs12.toPkcs12Asn1(key, null as unknown as forge.pki.Certificate[], PASSWORD, { algorithm: '3des' }));
    expectCode(() => loadPkcs12(p12, PASSWORD), 'GW_ERR_PKI_NO_CERTIFICATE');
  });

  it('reports a PKCS#12 whose key belongs to none of its certificates', () => {
    const key = forge.pki.privateKeyFromPem(readText(admin('obshtina-beta').keyPath));
    const cert = forge.pki.certificateFromPem(readText(admin('obshtina-alfa').certPath));
    const p12 = p12Der(forge.pkcs12.toPkcs12Asn1(key, [cert], PASSWORD, { algorithm: '3des' }));
    const err = expectCode(() => loadPkcs12(p12, PASSWORD), 'GW_ERR_PKI_KEY_MISMATCH');
    expect(err.detail).toContain(admin('obshtina-alfa').serialHex);
  });

  it('picks the signer even when the CA certificate comes first', () => {
    const key = forge.pki.privateKeyFromPem(readText(admin('obshtina-beta').keyPath));
    const ca = forge.pki.certificateFromPem(readText(pki.ca.certPath));
    const cert = forge.pki.certificateFromPem(readText(admin('obshtina-beta').certPath));
    const id = loadPkcs12(p12Der(forge.pkcs12.toPkcs12Asn1(key, [ca, cert], PASSWORD, { algorithm: 'aes256' })), PASSWORD);
    expect(id.certificate.serialHex).toBe(admin('obshtina-beta').serialHex);
    expect(id.chain.map((c) => c.serialHex)).toEqual([pki.ca.serialHex]);
  });

  it('reports garbage as unreadable', () => {
    expectCode(() => loadPkcs12(crypto.randomBytes(600), PASSWORD), 'GW_ERR_PKI_UNREADABLE');
    expectCode(() => loadPkcs12(Buffer.from('this is not a PKCS#12 file'), PASSWORD), 'GW_ERR_PKI_UNREADABLE');
    expectCode(() => loadPkcs12(read(admin('obshtina-alfa').certPath), PASSWORD), 'GW_ERR_PKI_UNREADABLE');
  });
});

describe('PKCS#12 files made by the openssl CLI', () => {
  const exportP12 = (name: string, password: string, extra: string[] = []) => {
    const a = admin(name);
    const out = path.join(dir, `${name}-${crypto.randomUUID()}.p12`);
    openssl(['pkcs12', '-export', '-inkey', a.keyPath, '-in', a.certPath, '-certfile', pki.ca.certPath,
      '-out', out, '-passout', `pass:${password}`, ...extra]);
    return out;
  };

  it('reads the OpenSSL 3 default format (PBES2/PBKDF2/AES-256-CBC, SHA-256 MAC)', () => {
    const file = exportP12('obshtina-beta', 'openssl-pass');
    // Make sure this really is the modern format this test is about (openssl writes -info to stderr).
    const details = spawnSync(OPENSSL, ['pkcs12', '-in', file, '-info', '-noout', '-passin', 'pass:openssl-pass'], { encoding: 'utf8' });
    expect(details.stdout + details.stderr).toMatch(/Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC/);
    expect(details.stdout + details.stderr).toMatch(/MAC: sha256/);
    const id = loadPkcs12(read(file), 'openssl-pass');
    expect(id.certificate.serialHex).toBe(admin('obshtina-beta').serialHex);
    expect(id.certificate.der.equals(derOfPem(admin('obshtina-beta').certPath))).toBe(true);
    expect(id.chain.map((c) => c.serialHex)).toEqual([pki.ca.serialHex]);
    expect(signsAndVerifies(id.privateKey, id.certificate)).toBe(true);
    expectCode(() => loadPkcs12(read(file), 'not-the-password'), 'GW_ERR_PKI_BAD_PASSWORD');
  });

  it('reads an OpenSSL 3 default file protected by a Cyrillic password (UTF-8 PBKDF2)', () => {
    const file = exportP12('obshtina-alfa', 'Парола-за-общината');
    const id = loadPkcs12(read(file), 'Парола-за-общината');
    expect(id.certificate.serialHex).toBe(admin('obshtina-alfa').serialHex);
    expectCode(() => loadPkcs12(read(file), 'Парола-за-община'), 'GW_ERR_PKI_BAD_PASSWORD');
  });

  it('reads a -legacy file (RC2-40, SHA-1 MAC)', () => {
    const file = exportP12('obshtina-alfa', 'legacy-pass', ['-legacy']);
    const id = loadPkcs12(read(file), 'legacy-pass');
    expect(id.certificate.serialHex).toBe(admin('obshtina-alfa').serialHex);
    expect(id.chain).toHaveLength(1);
  });

  it('refuses an EC key in a PKCS#12', () => {
    const key = path.join(dir, 'ec.key.pem');
    const cert = path.join(dir, 'ec.cert.pem');
    const p12 = path.join(dir, 'ec.p12');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key,
      '-out', cert, '-subj', '/C=BG/O=EC Test/CN=EC Test', '-days', '30']);
    openssl(['pkcs12', '-export', '-inkey', key, '-in', cert, '-out', p12, '-passout', 'pass:ec-pass']);
    const err = expectCode(() => loadPkcs12(read(p12), 'ec-pass'), 'GW_ERR_PKI_UNSUPPORTED_KEY');
    expect(err.detail).toContain('ec');
    // Peers' EC certificates can still be described (the verifier decides what to do with them).
    const info = loadCertificate(read(cert));
    expect(info.keyType).toBe('ec');
    expect(info.subject).toBe('CN=EC Test, O=EC Test, C=BG');
    expectCode(() => loadPem(read(key), read(cert)), 'GW_ERR_PKI_UNSUPPORTED_KEY');
  });
});

describe('loadPem', () => {
  it('loads a PEM key and certificate, with or without the chain in the certificate file', () => {
    const a = admin('obshtina-beta');
    const id = loadSigningIdentity({ keyPath: a.keyPath, certPath: a.certPath });
    expect(id.certificate.serialHex).toBe(a.serialHex);
    expect(id.certificate.subject).toBe(a.subject);
    expect(id.chain).toEqual([]);
    expect(signsAndVerifies(id.privateKey, id.certificate)).toBe(true);

    const bundle = readText(pki.ca.certPath) + readText(a.certPath);
    const withChain = loadPem(read(a.keyPath), bundle);
    expect(withChain.certificate.serialHex).toBe(a.serialHex);
    expect(withChain.chain.map((c) => c.serialHex)).toEqual([pki.ca.serialHex]);

    // What `openssl pkcs12 -nodes` writes: free text ahead of each block.
    const attrs = (label: string) => `Bag Attributes\n    friendlyName: ${label}\nsubject=${a.subject}\nissuer=${a.issuer}\n`;
    const fromOpenssl = loadPem(Buffer.from(attrs('key') + readText(a.keyPath)), Buffer.from(attrs('cert') + readText(a.certPath)));
    expect(fromOpenssl.certificate.serialHex).toBe(a.serialHex);
  });

  it('loads an encrypted PEM key with the right passphrase and refuses a wrong or missing one', () => {
    const a = admin('obshtina-alfa');
    const encrypted = crypto.createPrivateKey(read(a.keyPath)).export({
      type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'тайна фраза',
    });
    const id = loadPem(encrypted, read(a.certPath), 'тайна фраза');
    expect(id.certificate.serialHex).toBe(a.serialHex);
    expect(signsAndVerifies(id.privateKey, id.certificate)).toBe(true);
    const wrong = expectCode(() => loadPem(encrypted, read(a.certPath), 'грешна фраза'), 'GW_ERR_PKI_BAD_PASSWORD');
    expect(wrong.message).not.toContain('грешна фраза');
    expectCode(() => loadPem(encrypted, read(a.certPath)), 'GW_ERR_PKI_BAD_PASSWORD');

    const legacy = crypto.createPrivateKey(read(a.keyPath)).export({
      type: 'pkcs1', format: 'pem', cipher: 'aes-128-cbc', passphrase: 'legacy',
    });
    expect(loadPem(legacy, read(a.certPath), 'legacy').certificate.serialHex).toBe(a.serialHex);
    expectCode(() => loadPem(legacy, read(a.certPath), 'nope'), 'GW_ERR_PKI_BAD_PASSWORD');
  });

  it('reports a key that does not belong to the certificate', () => {
    const err = expectCode(() => loadPem(read(admin('obshtina-beta').keyPath), read(admin('obshtina-alfa').certPath)),
      'GW_ERR_PKI_KEY_MISMATCH');
    expect(err.detail).toContain(admin('obshtina-alfa').serialHex);
  });

  it('refuses a non-RSA (EC) key', () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
    const err = expectCode(() => loadPem(pem, read(admin('obshtina-alfa').certPath)), 'GW_ERR_PKI_UNSUPPORTED_KEY');
    expect(err.detail).toContain('ec');
  });

  it('reads a DER key and a DER certificate', () => {
    const a = admin('obshtina-alfa');
    const keyDer = crypto.createPrivateKey(read(a.keyPath)).export({ type: 'pkcs8', format: 'der' });
    expect(loadPem(keyDer, derOfPem(a.certPath)).certificate.serialHex).toBe(a.serialHex);
  });

  it('reports missing keys, missing certificates and garbage', () => {
    const a = admin('obshtina-alfa');
    expectCode(() => loadPem(read(a.certPath), read(a.certPath)), 'GW_ERR_PKI_NO_PRIVATE_KEY');
    expectCode(() => loadPem(read(a.keyPath), read(a.keyPath)), 'GW_ERR_PKI_NO_CERTIFICATE');
    expectCode(() => loadPem('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', read(a.certPath)),
      'GW_ERR_PKI_UNREADABLE');
    expectCode(() => loadPem(read(a.keyPath), '-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n'),
      'GW_ERR_PKI_UNREADABLE');
  });
});

describe('loadSigningIdentity', () => {
  it('names the missing file', () => {
    const missing = path.join(dir, 'no-such-file.p12');
    const err = expectCode(() => loadSigningIdentity({ pkcs12Path: missing, password: 'x' }), 'GW_ERR_PKI_UNREADABLE');
    expect(err.detail).toContain(missing);
    const err2 = expectCode(() => loadSigningIdentity({ keyPath: admin('obshtina-alfa').keyPath, certPath: missing }),
      'GW_ERR_PKI_UNREADABLE');
    expect(err2.detail).toContain(missing);
  });

  it('names the file in load errors but never the password', () => {
    const p12Path = admin('obshtina-alfa').p12Path;
    const err = expectCode(() => loadSigningIdentity({ pkcs12Path: p12Path, password: 'S3cret!pw' }), 'GW_ERR_PKI_BAD_PASSWORD');
    expect(err.detail).toContain(p12Path);
    expect(err.message).not.toContain('S3cret!pw');
  });

  it('refuses an expired certificate unless told to allow it', () => {
    const a = admin('expired');
    const err = expectCode(() => loadSigningIdentity({ pkcs12Path: a.p12Path, password: PASSWORD }), 'GW_ERR_PKI_CERT_EXPIRED');
    expect(err.detail).toContain(a.notAfter);
    expectCode(() => loadSigningIdentity({ keyPath: a.keyPath, certPath: a.certPath }), 'GW_ERR_PKI_CERT_EXPIRED');
    const id = loadSigningIdentity({ pkcs12Path: a.p12Path, password: PASSWORD }, { allowInvalidDates: true });
    expect(id.certificate.serialHex).toBe(a.serialHex);
    // ... and it was valid while it was valid.
    const during = new Date(Date.parse(a.notAfter) - 10 * DAY);
    expect(loadSigningIdentity({ pkcs12Path: a.p12Path, password: PASSWORD }, { at: during }).certificate.serialHex).toBe(a.serialHex);
  });

  it('refuses a certificate that is not valid yet unless told to allow it', () => {
    const a = admin('future');
    const err = expectCode(() => loadSigningIdentity({ pkcs12Path: a.p12Path, password: PASSWORD }), 'GW_ERR_PKI_CERT_NOT_YET_VALID');
    expect(err.detail).toContain(a.notBefore);
    expect(loadSigningIdentity({ keyPath: a.keyPath, certPath: a.certPath }, { allowInvalidDates: true }).certificate.serialHex)
      .toBe(a.serialHex);
    const later = new Date(Date.parse(a.notBefore) + DAY);
    expect(loadSigningIdentity({ keyPath: a.keyPath, certPath: a.certPath }, { at: later }).certificate.serialHex).toBe(a.serialHex);
  });
});

describe('certificates', () => {
  it('checkValidity treats both bounds as inclusive', () => {
    const info = loadCertificate(read(admin('obshtina-alfa').certPath));
    expect(() => checkValidity(info, info.notBefore)).not.toThrow();
    expect(() => checkValidity(info, info.notAfter)).not.toThrow();
    expectCode(() => checkValidity(info, new Date(info.notBefore.getTime() - 1000)), 'GW_ERR_PKI_CERT_NOT_YET_VALID');
    expectCode(() => checkValidity(info, new Date(info.notAfter.getTime() + 1000)), 'GW_ERR_PKI_CERT_EXPIRED');
  });

  it('keeps the leading 00 octet of a serial whose first octet is 0x80 or more', () => {
    const a = admin('high-serial');
    const info = loadCertificate(readText(a.certPath));
    expect(info.serialHex).toBe('00C0FFEE00112233445566778899AABBCC');
    expect(info.serialHex.length % 2).toBe(0);
    expect(info.serialDecimal).toBe(BigInt('0xC0FFEE00112233445566778899AABBCC').toString());
    // Node and OpenSSL print it without the sign octet: compare through normalizeSerial.
    expect(new crypto.X509Certificate(read(a.certPath)).serialNumber).toBe('C0FFEE00112233445566778899AABBCC');
    expect(normalizeSerial(info.serialHex)).toBe('C0FFEE00112233445566778899AABBCC');
    const low = loadCertificate(read(admin('low-serial').certPath));
    expect(low.serialHex).toBe('0ABC');
    expect(low.serialDecimal).toBe('2748');
  });

  it('quotes name values the way .NET does', () => {
    const info = loadCertificate(read(admin('quoted').certPath));
    expect(info.subject).toBe(
      'CN="DEMO Община ""Алфа"", клон; Тест", OID.2.5.4.97=NTRBG-000000007, OU=DEMO - NOT FOR PRODUCTION, O="Община ""Алфа"", клон; Тест", C=BG',
    );
    expect(info.subjectAttributes.find((x) => x.name === 'O')?.value).toBe('Община "Алфа", клон; Тест');
    expect(info.subjectAttributes.find((x) => x.oid === '2.5.4.97')?.value).toBe('NTRBG-000000007');
  });

  it('reads PEM and DER alike and caches descriptions', () => {
    const a = admin('obshtina-beta');
    const fromPem = loadCertificate(readText(a.certPath));
    const der = Buffer.from(derOfPem(a.certPath));
    const fromDer = loadCertificate(der);
    expect(fromDer).toBe(fromPem);
    expect(describeCertificate(Buffer.from(der))).toBe(fromPem);
    expect(Object.isFrozen(fromPem)).toBe(true);
    der.fill(0); // the caller's buffer is not the cached one
    expect(fromPem.der.equals(derOfPem(a.certPath))).toBe(true);
  });

  it('keeps the description cache bounded (least recently used out first)', () => {
    const base = derOfPem(admin('obshtina-beta').certPath);
    // Node does not check the signature when parsing, so changing its last octets gives distinct certificates.
    const variant = (i: number) => {
      const der = Buffer.from(base);
      der.writeUInt16BE(i, der.length - 2);
      return der;
    };
    const first = describeCertificate(variant(0));
    const second = describeCertificate(variant(1));
    for (let i = 2; i < 300; i++) {
      describeCertificate(variant(i));
      if (i % 50 === 0) expect(describeCertificate(variant(1))).toBe(second); // keeps it recently used
    }
    expect(describeCertificate(variant(1))).toBe(second);
    const again = describeCertificate(variant(0));
    expect(again).not.toBe(first);
    expect(again.sha256Fingerprint).toBe(first.sha256Fingerprint);
  });

  it('reports garbage certificates', () => {
    expectCode(() => describeCertificate(crypto.randomBytes(300)), 'GW_ERR_PKI_UNREADABLE');
    expectCode(() => describeCertificate(Buffer.alloc(0)), 'GW_ERR_PKI_UNREADABLE');
    const der = derOfPem(admin('obshtina-beta').certPath);
    expectCode(() => describeCertificate(der.subarray(0, der.length - 10)), 'GW_ERR_PKI_UNREADABLE');
    expectCode(() => describeCertificate(Buffer.concat([der, Buffer.from([0])])), 'GW_ERR_PKI_UNREADABLE');
    expectCode(() => loadCertificate('hello'), 'GW_ERR_PKI_NO_CERTIFICATE');
  });
});

describe('normalizeSerial', () => {
  it.each([
    ['00:9d:0a', '9D0A'],
    ['9D0A', '9D0A'],
    ['009D0A', '9D0A'],
    ['00 9d 0a', '9D0A'],
    ['00-9D-0A', '9D0A'],
    ['0x9d0a', '9D0A'],
    ['  0abc ', 'ABC'],
    ['0', '0'],
    ['00:00', '0'],
    ['c0ffee00112233445566778899aabbcc', 'C0FFEE00112233445566778899AABBCC'],
  ])('%j -> %s', (input, expected) => {
    expect(normalizeSerial(input)).toBe(expected);
  });

  it('refuses text that is not hexadecimal', () => {
    expectCode(() => normalizeSerial('12G4'), 'GW_ERR_PKI_UNREADABLE');
    expectCode(() => normalizeSerial(''), 'GW_ERR_PKI_UNREADABLE');
    expectCode(() => normalizeSerial('::'), 'GW_ERR_PKI_UNREADABLE');
  });
});
