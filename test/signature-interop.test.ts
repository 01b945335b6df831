import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { isGatewayError } from '../src/errors/index.ts';
import { signMessage, verifySignedMessage, writeSignedMessage } from '../src/seos/index.ts';
import { signXmlDocument } from '../src/xmldsig/index.ts';
import { makeTestIdentities, type TestIdentities } from './support/pki.ts';
import { sampleRegistration } from './support/messages.ts';
import { requireTool, runTool } from './support/tools.ts';

/** Our signatures against xmlsec1 (libxmlsec1 + OpenSSL), an independent XMLDSig implementation, both ways. */
let pki: TestIdentities;
let work: string;

beforeAll(() => {
  requireTool('xmlsec1');
  pki = makeTestIdentities();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'sig-interop-'));
});

function file(name: string, content: Buffer | string): string {
  const p = path.join(work, name);
  fs.writeFileSync(p, content);
  return p;
}

function xmlsecVerify(p: string): { status: number; stderr: string } {
  return runTool('xmlsec1', ['--verify', '--enabled-reference-uris', 'empty', '--trusted-pem', pki.manifest.ca.certPath, p]);
}

/** The xmlsec1 template of a signed message of ours: same SignedInfo, values emptied. */
function templateOf(signed: string): string {
  return signed
    .replace(/<DigestValue>[^<]*<\/DigestValue>/, '<DigestValue></DigestValue>')
    .replace(/<SignatureValue>[^<]*<\/SignatureValue>/, '<SignatureValue></SignatureValue>')
    .replace(/<KeyInfo>.*<\/KeyInfo>/s, '<KeyInfo><X509Data><X509Certificate/></X509Data></KeyInfo>');
}

function xmlsecSign(template: string): string {
  const out = path.join(work, `xs-${Math.random().toString(36).slice(2)}.xml`);
  const r = runTool('xmlsec1', ['--sign', '--privkey-pem', `${pki.keyPath('obshtina-alfa')},${pki.certPath('obshtina-alfa')}`, '--output', out, file('tmpl.xml', template)]);
  expect(r.status, r.stderr).toBe(0);
  return fs.readFileSync(out, 'utf8');
}

const valueOf = (xml: string, tag: string) => xml.match(new RegExp(`<${tag}>([^<]*)</${tag}>`))![1].replace(/\s+/g, '');

describe.each(['rsa-sha256', 'rsa-sha1'] as const)('profile %s', (profile) => {
  it('xmlsec1 verifies what we sign', () => {
    const signed = signMessage(sampleRegistration(), pki.alfa, { profile });
    const r = xmlsecVerify(file(`ours-${profile}.xml`, signed));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toContain('OK');
  });

  it('our DigestValue and SignatureValue equal xmlsec1\'s for the same input and key', () => {
    const signed = signMessage(sampleRegistration(), pki.alfa, { profile }).toString('utf8');
    const theirs = xmlsecSign(templateOf(signed));
    expect(valueOf(theirs, 'DigestValue')).toBe(valueOf(signed, 'DigestValue'));
    expect(valueOf(theirs, 'SignatureValue')).toBe(valueOf(signed, 'SignatureValue'));
  });

  it('we verify what xmlsec1 signs from a template of the same shape', () => {
    const signed = signMessage(sampleRegistration(), pki.alfa, { profile }).toString('utf8');
    const theirs = xmlsecSign(templateOf(signed));
    const verified = verifySignedMessage(Buffer.from(theirs));
    expect(verified.signature.signer.serialHex).toBe(pki.alfa.certificate.serialHex);
    expect(verified.signature.signatureHash).toBe(profile === 'rsa-sha1' ? 'sha1' : 'sha256');
  });

  it('a tampered message of ours is refused by xmlsec1 too', () => {
    const signed = signMessage(sampleRegistration(), pki.alfa, { profile }).toString('utf8');
    const tampered = signed.replace('Удостоверение за наследници', 'Удостоверение за наследник');
    expect(xmlsecVerify(file('tampered.xml', tampered)).status).not.toBe(0);
  });
});

describe('signature shapes and options', () => {
  it('signs and verifies a .NET-shaped message (xsi/xsd on the root, certificate twice), accepted by xmlsec1', () => {
    const unsigned = signMessage(sampleRegistration(), pki.alfa).toString('utf8').replace(/<Signature xmlns=.*<\/Signature>/s, '')
      .replace('<Message xmlns=', '<Message xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns=');
    const signed = signXmlDocument(Buffer.from(unsigned), pki.alfa, { profile: 'rsa-sha1', keyInfo: 'dotnet' });
    expect(signed.toString().match(/<X509Certificate>/g)).toHaveLength(2);
    expect(verifySignedMessage(signed).signature.certificates).toHaveLength(2);
    const r = xmlsecVerify(file('dotnet.xml', signed));
    expect(r.status, r.stderr).toBe(0);
  });

  it('writes the same bytes streaming as in memory, for a file attachment too', async () => {
    const message = sampleRegistration();
    const inMemory = signMessage(message, pki.alfa);
    const attachmentPath = file('att.bin', (message.body as any).document.attachments[0].content.bytes);
    const fromFile = sampleRegistration({
      attachments: [{ fileName: 'молба.txt', mimeType: 'text/plain', content: { source: 'file', path: attachmentPath } }],
    });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const result = await writeSignedMessage(fromFile, pki.alfa, sink);
    const streamed = Buffer.concat(chunks);
    expect(streamed.equals(inMemory)).toBe(true);
    expect(result.bytes).toBe(streamed.length);
  });

  it('writes the same bytes in memory as streaming whatever an attachment\'s length against the encoding steps', async () => {
    // In memory, bytes are encoded 48 KiB at a time straight into the message; streaming, 192 KiB at a time.
    for (const length of [0, 1, 2, 3, 49_151, 49_152, 49_153, 200_003]) {
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = (i * 7919) % 256;
      const message = sampleRegistration({ attachments: [{ fileName: 'a.bin', mimeType: 'application/octet-stream', content: { source: 'bytes', bytes } }] });
      const inMemory = signMessage(message, pki.alfa);
      expect((await streamed(message, pki.alfa)).equals(inMemory), `length ${length}`).toBe(true);
      const att = (verifySignedMessage(inMemory).message.body as any).document.attachments[0];
      expect(Buffer.from(att.content.text.toString('latin1'), 'base64').equals(bytes), `length ${length}`).toBe(true);
    }
  });

  it('ends the message correctly when the Signature is larger than the room kept for it', async () => {
    // An issuer name of 20,000 characters: the Signature no longer fits in the 16 KiB after the unsigned bytes.
    const identity = { ...pki.alfa, certificate: { ...pki.alfa.certificate, issuer: `CN=${'И'.repeat(20_000)}` } };
    const message = sampleRegistration();
    const inMemory = signMessage(message, identity);
    expect(inMemory.toString('utf8').endsWith('</X509Data></KeyInfo></Signature></Message>')).toBe(true);
    expect(inMemory.equals(await streamed(message, identity))).toBe(true);
  });

  it('streams a multi-megabyte file attachment that xmlsec1 verifies', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 1, 7); // not a multiple of 3: exercises the chunk carry
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const message = sampleRegistration({
      attachments: [{ fileName: 'голям.bin', mimeType: 'application/octet-stream', content: { source: 'file', path: file('big.bin', big) } }],
    });
    const outPath = path.join(work, 'big-signed.xml');
    const out = fs.createWriteStream(outPath);
    await writeSignedMessage(message, pki.alfa, out);
    await new Promise<void>((resolve) => out.end(resolve));
    const r = xmlsecVerify(outPath);
    expect(r.status, r.stderr).toBe(0);
    const verified = verifySignedMessage(fs.readFileSync(outPath));
    const att = (verified.message.body as any).document.attachments[0];
    expect(Buffer.from(att.content.text.toString('latin1'), 'base64').equals(big)).toBe(true);
  });

  it('refuses SHA-1 when the peer is configured to require SHA-256', () => {
    const signed = signMessage(sampleRegistration(), pki.alfa, { profile: 'rsa-sha1' });
    expect(() => verifySignedMessage(signed, { allowSha1: false })).toThrow(expect.objectContaining({ code: 'GW_ERR_SIG_ALGORITHM' }));
    expect(verifySignedMessage(signed).signature.digestHash).toBe('sha1');
  });

  it('refuses a signer certificate outside its validity when a time is given', () => {
    const signed = signMessage(sampleRegistration(), pki.alfa);
    const later = new Date(pki.alfa.certificate.notAfter.getTime() + 86_400_000);
    let code = '';
    try { verifySignedMessage(signed, { validAt: later }); } catch (e) { if (isGatewayError(e)) code = e.code; }
    expect(code).toBe('GW_ERR_SIG_CERT_EXPIRED');
    expect(verifySignedMessage(signed, { validAt: new Date() }).signature.signer.serialDecimal).toBe(pki.alfa.certificate.serialDecimal);
  });

  it('reports the signer as the issue asks: subject, issuer, uppercase hex serial, validity', () => {
    const { signer } = verifySignedMessage(signMessage(sampleRegistration(), pki.alfa)).signature;
    expect(signer.subject).toContain('Община Алфа');
    expect(signer.issuer).toMatch(/^CN=/);
    expect(signer.serialHex).toMatch(/^[0-9A-F]+$/);
    expect(signer.notBefore).toBeInstanceOf(Date);
    expect(signer.notAfter.getTime()).toBeGreaterThan(signer.notBefore.getTime());
  });
});

/** What writeSignedMessage writes, collected. */
async function streamed(message: Parameters<typeof writeSignedMessage>[0], identity: Parameters<typeof writeSignedMessage>[1]): Promise<Buffer> {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  await writeSignedMessage(message, identity, sink);
  return Buffer.concat(chunks);
}
