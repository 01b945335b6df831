import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGatewayError } from '../src/errors/index.ts';
import { buildRegistrationRequest, newGuid, parseMessageXml, signMessage, verifySignedMessage } from '../src/seos/index.ts';
import { parseMessageFile, skeletonAttachmentBytes, verifySignedMessageFile } from '../src/seos/message-file.ts';
import { parseMessageDocument } from '../src/seos/parse.ts';
import { canonicalizeDocument } from '../src/xmldsig/c14n.ts';
import { parseXml } from '../src/xml/parse.ts';
import { parseXmlFile } from '../src/xml/skeleton.ts';
import { childElements, descendantsAndSelf } from '../src/xml/tree.ts';
import { DSIG_NS } from '../src/xmldsig/algorithms.ts';
import { makeTestIdentities, type TestIdentities } from './support/pki.ts';
import { ALFA, BETA, sampleDocument } from './support/messages.ts';
import { requireTool, runTool } from './support/tools.ts';

/**
 * The skeleton path (src/xml/skeleton.ts, src/seos/message-file.ts) must reach the same verdicts and the same
 * digest as the in-memory path for the same bytes, while holding only the markup in memory.
 */
let pki: TestIdentities;
let dir: string;

beforeAll(() => {
  requireTool('xmlsec1');
  pki = makeTestIdentities();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'skeleton-test-'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function write(name: string, bytes: Buffer | string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

async function outcome(run: () => unknown): Promise<string> {
  try {
    await run();
    return 'OK';
  } catch (error) {
    if (isGatewayError(error)) return error.code;
    throw error;
  }
}

/** SHA-256 of the canonical form without the Signature, the in-memory way. */
function memoryDigest(xml: Buffer, hash = 'sha256'): string {
  const doc = parseXml(xml);
  const signature = [...descendantsAndSelf(doc.root)].find((e) => e.ns === DSIG_NS && e.local === 'Signature');
  const h = createHash(hash);
  canonicalizeDocument(doc, (c) => h.update(c), signature);
  return h.digest('base64');
}

function digestValue(xml: Buffer): string {
  return /<(?:\w+:)?DigestValue>([^<]*)</.exec(xml.toString('latin1'))![1];
}

async function skeletonDigest(file: string, minRunBytes?: number, hash: 'sha1' | 'sha256' = 'sha256'): Promise<string> {
  const skeleton = await parseMessageFile(file, undefined, minRunBytes);
  const signature = [...descendantsAndSelf(skeleton.document.root)].find((e) => e.ns === DSIG_NS && e.local === 'Signature');
  return (await skeleton.canonicalDigest(hash, signature)).toString('base64');
}

function xmlsecVerify(file: string) {
  return runTool('xmlsec1', ['--verify', '--enabled-reference-uris', 'empty', '--trusted-pem', pki.manifest.ca.certPath, file]);
}

/** Random bytes of a given size, without allocating them all through the crypto RNG. */
function content(size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  const block = Buffer.from(Array.from({ length: 4093 }, (_, i) => (i * 131 + 7) % 256));
  for (let i = 0; i < size; i += block.length) block.copy(out, i);
  out.writeUInt32BE(0xdeadbeef, Math.floor(size / 2));
  return out;
}

function largeMessage(size: number) {
  const bytes = content(size);
  const message = buildRegistrationRequest({ sender: ALFA, recipient: BETA }, sampleDocument({
    id: { documentGuid: newGuid() },
    attachments: [
      { fileName: 'малко.txt', mimeType: 'text/plain', content: { source: 'bytes', bytes: Buffer.from('кратко', 'utf8') } },
      { fileName: 'голямо.bin', mimeType: 'application/octet-stream', content: { source: 'bytes', bytes } },
    ],
  }));
  return { bytes, message };
}

describe('fixtures: the skeleton path reaches the in-memory verdicts', () => {
  const sigDir = path.resolve('fixtures/signatures');
  const manifest: Array<{ file: string; expect: string }> = JSON.parse(fs.readFileSync(path.join(sigDir, 'manifest.json'), 'utf8'));
  for (const entry of manifest) {
    it(`signatures/${entry.file}`, async () => {
      const file = path.join(sigDir, entry.file);
      const xml = fs.readFileSync(file);
      const expected = await outcome(() => verifySignedMessage(xml));
      // minRunBytes 1: every attachment body of the fixture is read from the file.
      expect(await outcome(() => verifySignedMessageFile(file, { minRunBytes: 1 }))).toBe(expected);
      expect(await outcome(() => verifySignedMessageFile(file))).toBe(expected);
      if (expected === 'OK') {
        const hash = xml.includes('xmldsig#sha1') ? 'sha1' : 'sha256';
        expect(await skeletonDigest(file, 1, hash)).toBe(digestValue(xml));
        expect(await skeletonDigest(file, 1, hash)).toBe(memoryDigest(xml, hash));
      }
    });
  }

  const badDir = path.resolve('fixtures/bad');
  const badManifest: Array<{ file: string; expect: string }> = JSON.parse(fs.readFileSync(path.join(badDir, 'manifest.json'), 'utf8'));
  for (const entry of badManifest) {
    it(`bad/${entry.file}`, async () => {
      const file = path.join(badDir, entry.file);
      const expected = await outcome(() => parseMessageXml(fs.readFileSync(file)));
      expect(await outcome(async () => parseMessageDocument((await parseMessageFile(file, undefined, 1)).document))).toBe(expected);
    });
  }

  it('gives the in-memory canonical digest of every valid message fixture', async () => {
    const validDir = path.resolve('fixtures/messages/valid');
    for (const name of fs.readdirSync(validDir).filter((f) => f.endsWith('.xml'))) {
      const file = path.join(validDir, name);
      expect(await skeletonDigest(file, 1), name).toBe(memoryDigest(fs.readFileSync(file)));
    }
  });
});

describe('a large signed message', () => {
  let bytes: Buffer;
  let file: string;
  let signed: Buffer;

  beforeAll(() => {
    const large = largeMessage(24 * 1024 * 1024);
    bytes = large.bytes;
    signed = signMessage(large.message, pki.alfa);
    file = write('large.xml', signed);
  });

  it('verifies from the file with a skeleton of a few KiB, with the DigestValue of the in-memory path; xmlsec1 agrees', async () => {
    const { message, signature, skeleton } = await verifySignedMessageFile(file);
    expect(signature.signer.serialHex).toBe(pki.alfa.certificate.serialHex);
    expect(skeleton.runs).toHaveLength(1);
    expect(skeleton.skeletonBytes).toBeLessThan(16 * 1024);
    expect(skeleton.size).toBe(signed.length);
    expect(skeleton.sha256).toBe(createHash('sha256').update(signed).digest('hex'));
    expect(await skeletonDigest(file)).toBe(digestValue(signed));
    expect(await skeletonDigest(file)).toBe(memoryDigest(signed));
    expect(xmlsecVerify(file).status).toBe(0);

    // The attachments come out intact: the small one from the skeleton, the large one from the file.
    const [small, big] = message.body.type === 'MSG_DocumentRegistrationRequest' ? message.body.document.attachments! : [];
    const collect = async (c: typeof small.content) => {
      const parts: Buffer[] = [];
      for await (const p of skeletonAttachmentBytes(skeleton, c)) parts.push(Buffer.from(p));
      return Buffer.concat(parts);
    };
    expect((await collect(small.content)).toString('utf8')).toBe('кратко');
    expect((await collect(big.content)).equals(bytes)).toBe(true);
  }, 60_000);

  it('detects one changed character inside the large base64 body', async () => {
    const tampered = Buffer.from(signed);
    const body = tampered.indexOf('<AttBody>', tampered.indexOf('голямо.bin')) + 9;
    const at = body + 10 * 1024 * 1024;
    tampered[at] = tampered[at] === 0x41 ? 0x42 : 0x41;
    const bad = write('tampered.xml', tampered);
    expect(await outcome(() => verifySignedMessageFile(bad))).toBe('GW_ERR_SIG_DIGEST_MISMATCH');
    expect(await outcome(() => verifySignedMessage(tampered))).toBe('GW_ERR_SIG_DIGEST_MISMATCH');
    expect(xmlsecVerify(bad).status).not.toBe(0);
  }, 60_000);

  it('refuses a non-base64 character in the large body as the in-memory path does', async () => {
    const broken = Buffer.from(signed);
    const body = broken.indexOf('<AttBody>', broken.indexOf('голямо.bin')) + 9;
    broken[body + 5 * 1024 * 1024] = 0x2a; // '*'
    const bad = write('broken.xml', broken);
    const expected = await outcome(() => verifySignedMessage(broken));
    expect(expected).not.toBe('OK');
    expect(await outcome(() => verifySignedMessageFile(bad))).toBe(expected);
  }, 60_000);
});

describe('line-wrapped base64 signed by xmlsec1', () => {
  it('verifies LF- and CRLF-wrapped attachment bodies from the file, as xmlsec1 and the in-memory path do', async () => {
    const large = largeMessage(3 * 1024 * 1024);
    const ours = signMessage(large.message, pki.alfa).toString('utf8');
    // A template with the big body wrapped at 76 columns, signed by xmlsec1 (as another participant's software would).
    const template = ours
      .replace(/(голямо\.bin<\/AttFileName><AttBody>)([^<]*)(<\/AttBody>)/, (_m, a: string, b64: string, c: string) => a + b64.replace(/.{76}/g, '$&\n') + c)
      .replace(/<DigestValue>[^<]*<\/DigestValue>/, '<DigestValue></DigestValue>')
      .replace(/<SignatureValue>[^<]*<\/SignatureValue>/, '<SignatureValue></SignatureValue>')
      .replace(/<KeyInfo>.*<\/KeyInfo>/s, '<KeyInfo><X509Data><X509Certificate/></X509Data></KeyInfo>');
    const tmpl = write('wrapped-template.xml', template);
    const lf = path.join(dir, 'wrapped-lf.xml');
    const r = runTool('xmlsec1', ['--sign', '--privkey-pem', `${pki.keyPath('obshtina-alfa')},${pki.certPath('obshtina-alfa')}`, '--output', lf, tmpl]);
    expect(r.status, r.stderr).toBe(0);
    const lfBytes = fs.readFileSync(lf);
    // The same document with CR LF line ends in the body: the canonical form (and so the signature) is unchanged.
    const text = lfBytes.toString('utf8');
    const crlf = write('wrapped-crlf.xml', text.replace(/(<AttBody>)([^<]{100000,})(<\/AttBody>)/, (_m, a: string, b: string, c: string) => a + b.replace(/\n/g, '\r\n') + c));
    expect(fs.readFileSync(crlf).includes('\r\n')).toBe(true);

    for (const file of [lf, crlf]) {
      const xml = fs.readFileSync(file);
      expect(xmlsecVerify(file).status, file).toBe(0);
      expect(await outcome(() => verifySignedMessage(xml)), file).toBe('OK');
      const { skeleton, message } = await verifySignedMessageFile(file);
      expect(skeleton.runs, file).toHaveLength(1);
      expect(skeleton.runs[0].hasCr, file).toBe(file === crlf);
      expect(await skeletonDigest(file), file).toBe(digestValue(xml));
      const big = message.body.type === 'MSG_DocumentRegistrationRequest' ? message.body.document.attachments![1] : undefined;
      const parts: Buffer[] = [];
      for await (const p of skeletonAttachmentBytes(skeleton, big!.content)) parts.push(Buffer.from(p));
      expect(Buffer.concat(parts).equals(large.bytes), file).toBe(true);
    }
  }, 60_000);
});

describe('where a large base64 text may stay in the file', () => {
  it('keeps an AttBody of another namespace (inside DocAddData) in the skeleton, and verifies as in memory', async () => {
    const foreign = content(200 * 1024).toString('base64');
    const message = buildRegistrationRequest({ sender: ALFA, recipient: BETA }, sampleDocument({
      id: { documentGuid: newGuid() },
      additionalData: { xml: `<x:AttBody xmlns:x="urn:example:other">${foreign}</x:AttBody>` },
      attachments: [{ fileName: 'a.bin', mimeType: 'application/octet-stream', content: { source: 'bytes', bytes: content(300 * 1024) } }],
    }));
    const signed = signMessage(message, pki.alfa);
    const file = write('foreign-attbody.xml', signed);
    const { skeleton, message: parsed } = await verifySignedMessageFile(file);
    expect(skeleton.runs).toHaveLength(1); // only the real attachment's body
    expect(skeleton.skeletonBytes).toBeGreaterThan(200 * 1024);
    expect(parsed.body.type === 'MSG_DocumentRegistrationRequest' && parsed.body.document.additionalData?.xml).toContain(foreign.slice(0, 100));
    expect(await skeletonDigest(file)).toBe(digestValue(signed));
  });

  it('keeps a large text that is not base64 in the skeleton', async () => {
    const about = 'Удостоверение за наследници. '.repeat(5000);
    const message = buildRegistrationRequest({ sender: ALFA, recipient: BETA }, sampleDocument({ id: { documentGuid: newGuid() }, about }));
    const signed = signMessage(message, pki.alfa);
    const file = write('long-about.xml', signed);
    const { skeleton, message: parsed } = await verifySignedMessageFile(file);
    expect(skeleton.runs).toHaveLength(0);
    expect(parsed.body.type === 'MSG_DocumentRegistrationRequest' && parsed.body.document.about).toBe(about);
  });

  it('the skeleton of a plain XML file parses as the file does (no SEOS rules)', async () => {
    const b64 = content(100 * 1024).toString('base64');
    const file = write('plain.xml', `<?xml version="1.0"?>\n<r><!-- a > comment --><a x="1>2">${b64}</a><![CDATA[<b>]]><c/></r>\n`);
    const skeleton = await parseXmlFile(file);
    expect(skeleton.runs).toHaveLength(1);
    expect(childElements(skeleton.document.root).map((e) => e.local)).toEqual(['a', 'c']);
    const h = createHash('sha256');
    canonicalizeDocument(parseXml(fs.readFileSync(file)), (c) => h.update(c));
    expect((await skeleton.canonicalDigest('sha256')).toString('base64')).toBe(h.digest('base64'));
  });
});
