import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTestIdentities, type TestIdentities } from './support/pki.ts';
import { requireTool, runTool } from './support/tools.ts';

/** The IT staff's CLI, run as a real process the way they run it. */
const TSX = path.resolve('node_modules/.bin/tsx');
let pki: TestIdentities;
let dir: string;

function cli(args: string[], env: Record<string, string> = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(TSX, ['src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const request = {
  type: 'MSG_DocumentRegistrationRequest',
  sender: { identifier: '000000001', administrativeBodyName: 'Община Алфа', guid: '{0a1f0000-0000-4000-8000-000000000001}' },
  recipient: { identifier: '000000002', administrativeBodyName: 'Община Бета', guid: '{0b2e0000-0000-4000-8000-000000000002}' },
  document: {
    id: { number: { docNumber: 'ОА-12', docDate: '2026-11-22' }, documentGuid: '{7d1e5a2c-3b4f-4a6d-9c8e-1f2a3b4c5d6e}' },
    kind: 'Писмо',
    attachments: [{ fileName: 'писмо.txt', mimeType: 'text/plain', path: 'letter.txt' }],
  },
};

beforeAll(() => {
  requireTool('xmlsec1');
  pki = makeTestIdentities();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-message-'));
  fs.writeFileSync(path.join(dir, 'letter.txt'), 'Уважаеми колеги,');
  fs.writeFileSync(path.join(dir, 'msg.json'), JSON.stringify(request));
});

const p12 = () => pki.manifest.admins[0].p12Path;
const password = () => ({ SIGNING_PASSWORD: pki.manifest.p12Password });

describe('seos-gateway message', { timeout: 120_000 }, () => {
  it('build --p12 signs a JSON description; verify reports the signer; xmlsec1 agrees', () => {
    const out = path.join(dir, 'signed.xml');
    const built = cli(['message', 'build', path.join(dir, 'msg.json'), '--p12', p12(), '-o', out], password());
    expect(built.status, built.stderr).toBe(0);
    const verified = cli(['message', 'verify', out, '--expect-serial', pki.alfa.certificate.serialHex.toLowerCase()]);
    expect(verified.status, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('Подписът е валиден');
    expect(verified.stdout).toContain(pki.alfa.certificate.serialHex);
    expect(runTool('xmlsec1', ['--verify', '--trusted-pem', pki.manifest.ca.certPath, out]).status).toBe(0);
  });

  it('build without a key writes an unsigned message; sign then signs it as it is, rsa-sha1 on request', () => {
    const unsigned = path.join(dir, 'unsigned.xml');
    expect(cli(['message', 'build', path.join(dir, 'msg.json'), '-o', unsigned]).status).toBe(0);
    expect(fs.readFileSync(unsigned, 'utf8')).not.toContain('<Signature');
    const signed = path.join(dir, 'signed-sha1.xml');
    const r = cli(['message', 'sign', unsigned, '--key', pki.keyPath('obshtina-beta'), '--cert', pki.certPath('obshtina-beta'), '--profile', 'rsa-sha1', '--keyinfo', 'dotnet', '-o', signed]);
    expect(r.status, r.stderr).toBe(0);
    const text = fs.readFileSync(signed, 'utf8');
    expect(text.startsWith(fs.readFileSync(unsigned, 'utf8').replace('</Message>', ''))).toBe(true);
    expect(text).toContain('xmldsig#rsa-sha1');
    const json = cli(['message', 'verify', signed, '--json']);
    expect(JSON.parse(json.stdout).signer.serialHex).toBe(pki.beta.certificate.serialHex);
    expect(cli(['message', 'verify', signed, '--no-sha1']).stderr).toContain('GW_ERR_SIG_ALGORITHM');
    // Signing twice would put a second Signature in: refused.
    expect(cli(['message', 'sign', signed, '--key', pki.keyPath('obshtina-beta'), '--cert', pki.certPath('obshtina-beta')]).stderr).toContain('GW_ERR_SIG_EXTRA_SIGNATURE');
  });

  it('verify fails with exit 1 and a coded Bulgarian reason on a tampered message or the wrong signer', () => {
    const tampered = cli(['message', 'verify', 'fixtures/signatures/tampered-attbody.xml']);
    expect(tampered.status).toBe(1);
    expect(tampered.stderr).toContain('грешка: Съдържанието на съобщението е променено след подписването.');
    expect(tampered.stderr).toContain('GW_ERR_SIG_DIGEST_MISMATCH');
    const wrongSigner = cli(['message', 'verify', 'fixtures/signatures/valid-rsa-sha256.xml', '--expect-cert', 'fixtures/signatures/signer-obshtina-beta.cert.pem']);
    expect(wrongSigner.status).toBe(1);
    expect(wrongSigner.stderr).toContain('GW_ERR_SIG_CERT_NOT_TRUSTED');
  });

  it('validate checks our parser and both XSDs; inspect shows content without failing on a bad signature', () => {
    const valid = cli(['message', 'validate', 'fixtures/messages/valid/02-registration-all-fields.xml']);
    expect(valid.status, valid.stderr).toBe(0);
    expect(valid.stdout).toContain('официалната XSD');
    const invalid = cli(['message', 'validate', 'fixtures/bad/missing-comment.xml']);
    expect(invalid.status).toBe(1);
    expect(invalid.stderr).toContain('GW_ERR_SEOS_SCHEMA');
    const inspected = cli(['message', 'inspect', 'fixtures/signatures/wrong-key.xml', '--json']);
    expect(inspected.status).toBe(0);
    const report = JSON.parse(inspected.stdout);
    expect(report.signature).toContain('GW_ERR_SIG_INVALID');
    expect(report.message.body.document.attachments[0].fileName).toBe('писмо.txt');
  });

  it('refuses hostile and malformed input with coded errors, never a crash', () => {
    const xxe = cli(['message', 'inspect', 'fixtures/bad/xxe-external-entity-file.xml']);
    expect(xxe.status).toBe(1);
    expect(xxe.stderr).toContain('GW_ERR_XML_DOCTYPE');
    expect(xxe.stdout).not.toContain('root:');
    fs.writeFileSync(path.join(dir, 'broken.json'), '{"type": ');
    expect(cli(['message', 'build', path.join(dir, 'broken.json')]).stderr).toContain('GW_ERR_CLI_INPUT');
    fs.writeFileSync(path.join(dir, 'bad-field.json'), JSON.stringify({ ...request, document: { ...request.document, kind: 42 } }));
    const badField = cli(['message', 'build', path.join(dir, 'bad-field.json')]);
    expect(badField.stderr).toContain('$.document.kind');
    fs.writeFileSync(path.join(dir, 'bad-guid.json'), JSON.stringify({ ...request, messageGuid: 'not-a-guid' }));
    expect(cli(['message', 'build', path.join(dir, 'bad-guid.json')]).stderr).toContain('GW_ERR_SEOS_BAD_GUID');
    expect(cli(['message', 'verify', path.join(dir, 'missing.xml')]).stderr).toContain('GW_ERR_CLI_INPUT');
    expect(cli(['message', 'verify', dir]).stderr).toContain('not a regular file');
    const noPassword = cli(['message', 'build', path.join(dir, 'msg.json'), '--p12', p12()], { SIGNING_PASSWORD: '' });
    expect(noPassword.status).not.toBe(0);
    const wrongPassword = cli(['message', 'build', path.join(dir, 'msg.json'), '--p12', p12()], { SIGNING_PASSWORD: 'wrong' });
    expect(wrongPassword.stderr).toContain('GW_ERR_PKI_BAD_PASSWORD');
    expect(wrongPassword.stderr).not.toContain('wrong');
    expect(cli(['message', 'frobnicate']).status).toBe(2);
  });
});
