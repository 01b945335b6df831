/**
 * A throw-away test PKI: one CA and a certificate per administration, in every form the gateway reads
 * (PEM key + certificate, PKCS#12). For tests, demos and interop runs only — never for production.
 *
 * Keys come from Node's crypto (fast native RSA); certificates and PKCS#12 files are built with node-forge.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { describeCertificate, type CertificateInfo } from '../src/pki/index.ts';

export interface TestPkiAdmin {
  /** File-name stem, e.g. "obshtina-alfa" (letters, digits, ".", "_", "-"). */
  name: string;
  /** ЕИК/БУЛСТАТ; written into the subject as organizationIdentifier "NTRBG-<eik>" (OID 2.5.4.97). */
  eik: string;
  /** The administration's name, e.g. "Община Алфа" (O, and CN with "DEMO " in front in demo mode); default `name`. */
  commonName?: string;
  /**
   * A fixed serial (hex, separators allowed). Default: 16 random bytes, with the top bit of the first byte set
   * for the 1st, 3rd, ... administration (so its DER serial, and serialHex, starts with "00") and clear for the
   * 2nd, 4th, ...
   */
  serialHex?: string;
}

export interface TestPkiValidity {
  notBefore?: Date;
  notAfter?: Date;
}

export interface TestPkiOptions {
  /** Folder to write to (created if missing; existing files with the same names are overwritten). */
  out: string;
  /** Default: DEMO_ADMINS. */
  admins?: TestPkiAdmin[];
  /** Per administration name: overrides of the default validity (from a day ago to two years ahead). */
  validity?: Record<string, TestPkiValidity>;
  /** Mark every certificate as a demo one ("DEMO " CN prefix, OU "DEMO - NOT FOR PRODUCTION") and write a warning file. */
  demo?: boolean;
  /** Password of the .p12 files; default "demo-password". */
  password?: string;
  /** The moment default validities are computed from; default now. */
  now?: Date;
}

export interface TestPkiCertificateEntry {
  subject: string;
  issuer: string;
  serialHex: string;
  serialDecimal: string;
  sha1Fingerprint: string;
  sha256Fingerprint: string;
  notBefore: string;
  notAfter: string;
  certPath: string;
  keyPath: string;
}

export interface TestPkiAdminEntry extends TestPkiCertificateEntry {
  name: string;
  eik: string;
  commonName: string;
  p12Path: string;
}

export interface TestPkiManifest {
  version: 1;
  demo: boolean;
  createdAt: string;
  out: string;
  /** The password of every .p12 file (test material only). */
  p12Password: string;
  ca: TestPkiCertificateEntry;
  admins: TestPkiAdminEntry[];
  manifestPath: string;
  /** Present in demo mode. */
  warningPath?: string;
}

export const DEMO_ADMINS: readonly TestPkiAdmin[] = Object.freeze([
  { name: 'obshtina-alfa', eik: '000000001', commonName: 'Община Алфа' },
  { name: 'obshtina-beta', eik: '000000002', commonName: 'Община Бета' },
]);

export const DEFAULT_P12_PASSWORD = 'demo-password';
export const DEMO_OU = 'DEMO - NOT FOR PRODUCTION';
export const DEMO_WARNING_FILE = 'DEMO-CERTIFICATES-NOT-FOR-PRODUCTION.txt';

const DAY = 24 * 60 * 60 * 1000;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const DEMO_WARNING = `ДЕМОНСТРАЦИОННИ СЕРТИФИКАТИ - НЕ СА ЗА РЕАЛНА РАБОТА
DEMO CERTIFICATES - NOT FOR PRODUCTION

Сертификатите и ключовете в тази папка са създадени от certs/make-certs.ts само за тестове и демонстрации.
Удостоверителят (CA) е измислен, паролата е публично известна, а частните ключове не са защитени.
Не ги използвайте за обмен на реални документи и не ги регистрирайте в СЕОС.
(These certificates come from a made-up test CA with a publicly known password; use them for tests and
demos only, never to exchange real documents, and never register them with SEOS.)
`;

/** DER INTEGER content for a positive serial, as forge expects it in `cert.serialNumber` (hex). */
function serialContentHex(hex: string): string {
  let h = hex.replace(/^0x/i, '').replace(/[:\s-]/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(h)) throw new Error(`serialHex is not hexadecimal: ${hex}`);
  if (h.length % 2) h = '0' + h;
  while (h.length > 2 && h.startsWith('00')) h = h.slice(2);
  if (parseInt(h.slice(0, 2), 16) >= 0x80) h = '00' + h;
  return h;
}

function randomSerial(topBit: boolean): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = topBit ? bytes[0]! | 0x80 : (bytes[0]! & 0x7f) || 0x01;
  return serialContentHex(bytes.toString('hex'));
}

type Attr = { type?: string; shortName?: string; value: string; valueTagClass?: number };

function utf8(attr: { type?: string; shortName?: string; value: string }): Attr {
  return { ...attr, valueTagClass: forge.asn1.Type.UTF8 as number };
}

function rsaKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { privatePem: privateKey, publicPem: publicKey };
}

interface Issued {
  cert: forge.pki.Certificate;
  info: CertificateInfo;
  certPem: string;
}

function issue(args: {
  publicPem: string;
  subject: Attr[];
  issuer: Attr[];
  serialHex: string;
  notBefore: Date;
  notAfter: Date;
  signingKeyPem: string;
  ca: boolean;
  authorityKeyId?: string;
}): Issued {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(args.publicPem);
  cert.serialNumber = args.serialHex;
  cert.validity.notBefore = args.notBefore;
  cert.validity.notAfter = args.notAfter;
  cert.setSubject(args.subject as forge.pki.CertificateField[]);
  cert.setIssuer(args.issuer as forge.pki.CertificateField[]);
  const extensions: object[] = args.ca
    ? [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
        { name: 'subjectKeyIdentifier' },
      ]
    : [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, nonRepudiation: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', clientAuth: true, emailProtection: true },
        { name: 'subjectKeyIdentifier' },
      ];
  if (args.authorityKeyId) extensions.push({ name: 'authorityKeyIdentifier', keyIdentifier: args.authorityKeyId });
  cert.setExtensions(extensions);
  cert.sign(forge.pki.privateKeyFromPem(args.signingKeyPem), forge.md.sha256.create());
  const certPem = forge.pki.certificateToPem(cert);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { cert, info: describeCertificate(der), certPem };
}

function entry(info: CertificateInfo, certPath: string, keyPath: string): TestPkiCertificateEntry {
  return {
    subject: info.subject,
    issuer: info.issuer,
    serialHex: info.serialHex,
    serialDecimal: info.serialDecimal,
    sha1Fingerprint: info.sha1Fingerprint,
    sha256Fingerprint: info.sha256Fingerprint,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    certPath,
    keyPath,
  };
}

function writeSecret(file: string, data: string | Buffer): void {
  fs.writeFileSync(file, data, { mode: 0o600 });
  fs.chmodSync(file, 0o600); // when overwriting, writeFileSync keeps the old mode
}

/**
 * Creates the CA and one certificate per administration in `options.out`, writes manifest.json and returns
 * the same manifest (absolute paths). Synchronous; about 0.1-0.3 s per certificate.
 */
export function makeTestPki(options: TestPkiOptions): TestPkiManifest {
  const out = path.resolve(options.out);
  const admins = options.admins ?? [...DEMO_ADMINS];
  const demo = options.demo ?? false;
  const password = options.password ?? DEFAULT_P12_PASSWORD;
  const now = options.now ?? new Date();

  const seen = new Set<string>();
  for (const a of admins) {
    if (!NAME_RE.test(a.name) || a.name === 'ca') throw new Error(`invalid administration name for file names: "${a.name}"`);
    if (seen.has(a.name)) throw new Error(`duplicate administration name "${a.name}"`);
    seen.add(a.name);
  }
  for (const name of Object.keys(options.validity ?? {})) {
    if (!seen.has(name)) throw new Error(`validity given for unknown administration "${name}"`);
  }
  fs.mkdirSync(out, { recursive: true });

  const caKey = rsaKeyPair();
  const caName: Attr[] = [
    { shortName: 'C', value: 'BG' },
    utf8({ shortName: 'O', value: 'Тестова инфраструктура СЕОС' }),
    ...(demo ? [utf8({ shortName: 'OU', value: DEMO_OU })] : []),
    utf8({ shortName: 'CN', value: `${demo ? 'DEMO ' : ''}Тестов удостоверител СЕОС` }),
  ];
  const ca = issue({
    publicPem: caKey.publicPem,
    subject: caName,
    issuer: caName,
    serialHex: randomSerial(false),
    notBefore: new Date(now.getTime() - DAY),
    notAfter: new Date(now.getTime() + 10 * 365 * DAY),
    signingKeyPem: caKey.privatePem,
    ca: true,
  });
  const caCertPath = path.join(out, 'ca.cert.pem');
  const caKeyPath = path.join(out, 'ca.key.pem');
  fs.writeFileSync(caCertPath, ca.certPem);
  writeSecret(caKeyPath, caKey.privatePem);
  const caKeyId = ca.cert.generateSubjectKeyIdentifier().getBytes();

  const adminEntries: TestPkiAdminEntry[] = admins.map((admin, index) => {
    const commonName = admin.commonName ?? admin.name;
    const validity = options.validity?.[admin.name] ?? {};
    const key = rsaKeyPair();
    const issued = issue({
      publicPem: key.publicPem,
      subject: [
        { shortName: 'C', value: 'BG' },
        utf8({ shortName: 'O', value: commonName }),
        ...(demo ? [utf8({ shortName: 'OU', value: DEMO_OU })] : []),
        { type: '2.5.4.97', value: `NTRBG-${admin.eik}` },
        utf8({ shortName: 'CN', value: `${demo ? 'DEMO ' : ''}${commonName}` }),
      ],
      issuer: caName,
      serialHex: admin.serialHex !== undefined ? serialContentHex(admin.serialHex) : randomSerial(index % 2 === 0),
      notBefore: validity.notBefore ?? new Date(now.getTime() - DAY),
      notAfter: validity.notAfter ?? new Date(now.getTime() + 730 * DAY),
      signingKeyPem: caKey.privatePem,
      ca: false,
      authorityKeyId: caKeyId,
    });
    const keyPath = path.join(out, `${admin.name}.key.pem`);
    const certPath = path.join(out, `${admin.name}.cert.pem`);
    const p12Path = path.join(out, `${admin.name}.p12`);
    writeSecret(keyPath, key.privatePem);
    fs.writeFileSync(certPath, issued.certPem);
    const p12 = forge.pkcs12.toPkcs12Asn1(forge.pki.privateKeyFromPem(key.privatePem), [issued.cert, ca.cert], password, {
      algorithm: '3des',
      friendlyName: admin.name,
    });
    writeSecret(p12Path, Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary'));
    return { name: admin.name, eik: admin.eik, commonName, ...entry(issued.info, certPath, keyPath), p12Path };
  });

  let warningPath: string | undefined;
  if (demo) {
    warningPath = path.join(out, DEMO_WARNING_FILE);
    fs.writeFileSync(warningPath, DEMO_WARNING);
  }

  const manifestPath = path.join(out, 'manifest.json');
  const manifest: TestPkiManifest = {
    version: 1,
    demo,
    createdAt: now.toISOString(),
    out,
    p12Password: password,
    ca: entry(ca.info, caCertPath, caKeyPath),
    admins: adminEntries,
    manifestPath,
    ...(warningPath ? { warningPath } : {}),
  };
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  return manifest;
}
