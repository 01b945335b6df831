import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTestPki, type TestPkiManifest } from '../../certs/test-pki.ts';
import { loadPkcs12, type SigningIdentity } from '../../src/pki/index.ts';

export interface TestIdentities {
  readonly manifest: TestPkiManifest;
  readonly dir: string;
  /** Община Алфа and Община Бета. */
  readonly alfa: SigningIdentity;
  readonly beta: SigningIdentity;
  /**
   * A certificate with a short (8-byte) serial. libxml2's schema validator cannot read integers of more than
   * 24 digits, so a signed message is only checked against the official xmldsig schema (X509SerialNumber is
   * xs:integer) with a serial that short; real 16-20 byte serials are valid XML Schema, libxml2 just can't tell.
   */
  readonly gama: SigningIdentity;
  keyPath(name: 'obshtina-alfa' | 'obshtina-beta'): string;
  certPath(name: 'obshtina-alfa' | 'obshtina-beta'): string;
}

/** A fresh test PKI in a temp folder (a test CA and two municipalities), loaded the way the gateway loads it. */
export function makeTestIdentities(): TestIdentities {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-test-pki-'));
  const manifest = makeTestPki({
    out: dir,
    admins: [
      { name: 'obshtina-alfa', eik: '000000001', commonName: 'Община Алфа' },
      { name: 'obshtina-beta', eik: '000000002', commonName: 'Община Бета' },
      { name: 'obshtina-gama', eik: '000000003', commonName: 'Община Гама', serialHex: '0123456789ABCDEF' },
    ],
  });
  const byName = (name: string) => manifest.admins.find((a) => a.name === name)!;
  const load = (name: string) => loadPkcs12(fs.readFileSync(byName(name).p12Path), manifest.p12Password);
  return {
    manifest, dir,
    alfa: load('obshtina-alfa'),
    beta: load('obshtina-beta'),
    gama: load('obshtina-gama'),
    keyPath: (name) => byName(name).keyPath,
    certPath: (name) => byName(name).certPath,
  };
}
