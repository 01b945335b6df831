import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../src/errors/index.ts';
import { loadCertificate } from '../src/pki/index.ts';
import { parseMessageXml, verifySignedMessage } from '../src/seos/index.ts';

/**
 * Every hostile or malformed input in fixtures/ must be refused with its own coded error, and never crash.
 * The manifests name the code each file must produce; adding a fixture there adds a case here.
 */
interface Entry { file: string; expect: string; why: string }

function outcome(run: () => unknown): string {
  try {
    run();
    return 'OK';
  } catch (error) {
    if (isGatewayError(error)) return error.code;
    throw error; // anything that is not a GatewayError is a crash, and fails the test with its stack
  }
}

const badDir = path.resolve('fixtures/bad');
const badManifest: Entry[] = JSON.parse(fs.readFileSync(path.join(badDir, 'manifest.json'), 'utf8'));

describe('fixtures/bad: unsigned malformed and hostile messages', () => {
  it('has cases for every class of bad input the issue names', () => {
    const codes = new Set(badManifest.map((e) => e.expect));
    for (const code of ['GW_ERR_XML_MALFORMED', 'GW_ERR_XML_DOCTYPE', 'GW_ERR_XML_UNKNOWN_ENTITY', 'GW_ERR_XML_TOO_DEEP',
      'GW_ERR_XML_TOO_MANY_ATTRIBUTES', 'GW_ERR_SEOS_NOT_A_MESSAGE', 'GW_ERR_SEOS_SCHEMA', 'GW_ERR_SEOS_BAD_GUID']) {
      expect(codes, code).toContain(code);
    }
  });

  for (const entry of badManifest) {
    it(`${entry.file} → ${entry.expect}`, () => {
      const xml = fs.readFileSync(path.join(badDir, entry.file));
      const expected = entry.expect === 'OK_UNSIGNED_PARSE' ? 'OK' : entry.expect;
      expect(outcome(() => parseMessageXml(xml)), entry.why).toBe(expected);
    });
  }
});

const sigDir = path.resolve('fixtures/signatures');
const sigManifest: Entry[] = JSON.parse(fs.readFileSync(path.join(sigDir, 'manifest.json'), 'utf8'));
const alfaCert = loadCertificate(fs.readFileSync(path.join(sigDir, 'signer-obshtina-alfa.cert.pem')));

describe('fixtures/signatures: signed messages, valid and tampered', () => {
  for (const entry of sigManifest) {
    it(`${entry.file} → ${entry.expect}`, () => {
      const xml = fs.readFileSync(path.join(sigDir, entry.file));
      if (entry.expect === 'OK_BUT_NOT_TRUSTED') {
        expect(outcome(() => verifySignedMessage(xml))).toBe('OK');
        expect(outcome(() => verifySignedMessage(xml, { trustedCertificate: alfaCert }))).toBe('GW_ERR_SIG_CERT_NOT_TRUSTED');
        return;
      }
      expect(outcome(() => verifySignedMessage(xml)), entry.why).toBe(entry.expect);
      if (entry.expect === 'OK') {
        expect(outcome(() => verifySignedMessage(xml, { trustedCertificate: alfaCert }))).toBe('OK');
      }
    });
  }
});
