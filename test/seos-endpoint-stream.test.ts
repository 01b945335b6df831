import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRegistrationRequest, newGuid, signMessage, verifySignedMessage, type SeosMessage } from '../src/seos/index.ts';
import { buildSubmitRequest, createSeosClient, parseSubmitResponse, type SubmitOutcome } from '../src/seos/soap/index.ts';
import { createApiKey } from '../src/api/api-keys.ts';
import { listAttachments } from '../src/store/documents.ts';
import { ALFA_GUID, BETA_GUID, startTwoGateways, type TwoGateways } from './support/gateways.ts';
import { sampleDocument } from './support/messages.ts';

/**
 * Large Submit bodies take the streaming path of the SEOS endpoint (body unescaped into a file, the message
 * parsed and verified through its skeleton, attachments decoded from the file into the spool, the file copied
 * into the archive); the answers and what is stored are those of the in-memory path.
 */
let net: TwoGateways;
const LIMIT = 64 * 1024 * 1024;
const client = createSeosClient({ allowInsecureHttp: true, responseTimeoutMs: 60_000 });

beforeAll(async () => {
  net = await startTwoGateways({ endpoint: { maxMessageBytes: LIMIT } });
}, 60_000);

afterAll(async () => {
  client.close();
  await net?.stop();
});

const ALFA = { identifier: '000000001', administrativeBodyName: 'Община Алфа', guid: ALFA_GUID };
const BETA = { identifier: '000000002', administrativeBodyName: 'Община Бета', guid: BETA_GUID };

function content(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + seed + (i >> 12)) & 0xff;
  return out;
}

function largeRegistration(bytes: Buffer, documentGuid = newGuid()): SeosMessage {
  return buildRegistrationRequest({ sender: ALFA, recipient: BETA }, sampleDocument({
    id: { documentGuid },
    attachments: [
      { fileName: 'голям.bin', mimeType: 'application/octet-stream', content: { source: 'bytes', bytes } },
      { fileName: 'малък.txt', mimeType: 'text/plain', content: { source: 'bytes', bytes: Buffer.from('кратък текст', 'utf8') } },
    ],
  }));
}

function submit(bytes: Buffer, message: SeosMessage): Promise<SubmitOutcome> {
  const documentGuid = message.body.type === 'MSG_DocumentRegistrationRequest' ? message.body.document.id.documentGuid : undefined;
  return client.submit(`http://127.0.0.1:${net.beta.seosPort}/seos`, bytes, { messageGuid: message.header.messageGuid, documentGuid, verifyReply: (r) => verifySignedMessage(r) });
}

function inbound(documentGuid: string) {
  return net.beta.gateway.db.prepare("SELECT id FROM documents WHERE direction = 'in' AND document_guid = ?").get(documentGuid.toLowerCase()) as { id: string } | undefined;
}

/** Message files the endpoint left in Бета's inbound folder (under its dataDir). */
function leftovers(): string[] {
  const inboundDir = path.join(net.beta.dataDir, 'inbound');
  return fs.existsSync(inboundDir) ? fs.readdirSync(inboundDir).filter((f) => f.startsWith(`submit-${process.pid}-`)) : [];
}

/** POSTs a body with chunked transfer encoding (no Content-Length): always the streaming path. */
function postChunked(body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: net.beta.seosPort, path: '/seos', method: 'POST', headers: { 'content-type': 'text/xml; charset=utf-8' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 256 * 1024) req.write(body.subarray(i, i + 256 * 1024));
    req.end();
  });
}

describe('the SEOS endpoint streams large messages', () => {
  it('takes a 30 MiB attachment: stored intact, the exact wire bytes archived, DS_WAIT_REGISTRATION; a replay gets DS_ALREADY_RECEIVED', async () => {
    const bytes = content(30 * 1024 * 1024, 1);
    const message = largeRegistration(bytes);
    const wire = signMessage(message, net.pki.alfa);
    const outcome = await submit(wire, message);
    expect(outcome.kind === 'delivered' && outcome.status).toBe('DS_WAIT_REGISTRATION');
    const documentGuid = (message.body as { document: { id: { documentGuid: string } } }).document.id.documentGuid;
    const row = inbound(documentGuid)!;
    const attachments = listAttachments(net.beta.gateway.db, row.id);
    expect(attachments.map((a) => [a.fileName, a.size])).toEqual([['голям.bin', bytes.length], ['малък.txt', Buffer.byteLength('кратък текст')]]);
    expect(attachments[0].sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(net.beta.gateway.spool.read(attachments[1].sha256).toString('utf8')).toBe('кратък текст');
    const archived = net.beta.gateway.db.prepare("SELECT wire_sha256 AS sha FROM messages WHERE direction = 'in' AND message_guid = ?")
      .get(message.header.messageGuid.toLowerCase()) as { sha: string } | undefined
      ?? net.beta.gateway.db.prepare("SELECT wire_sha256 AS sha FROM messages WHERE direction = 'in' AND document_id = ?").get(row.id) as { sha: string };
    expect(archived.sha).toBe(createHash('sha256').update(wire).digest('hex'));
    expect(net.beta.gateway.archive.check(archived.sha)).toBe('ok');

    const replay = await submit(wire, message);
    expect(replay.kind === 'delivered' && replay.status).toBe('DS_ALREADY_RECEIVED');
    expect(leftovers()).toEqual([]);
    expect(fs.existsSync(path.join(net.beta.dataDir, 'inbound')), 'the endpoint streamed the message through dataDir/inbound').toBe(true);

    // The records system fetches it: what the sender sent is read from the archived message through its skeleton
    // (the attachment bodies stay in the file), with links to the attachments.
    const { key } = createApiKey(net.beta.gateway.db, { name: 'archimed', role: 'connector' });
    const res = await fetch(`http://127.0.0.1:${net.beta.apiPort}/v1/inbox/${row.id}`, { headers: { authorization: `Bearer ${key}` } });
    const body = await res.json() as { document: { kind: string; about?: string }; attachments: Array<{ fileName: string; size: number }> };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.document.kind).toBe((message.body as { document: { kind: string } }).document.kind);
    expect(body.attachments.map((a) => [a.fileName, a.size])).toEqual([['голям.bin', bytes.length], ['малък.txt', Buffer.byteLength('кратък текст')]]);
  }, 120_000);

  it('answers a large message with one changed byte in its attachment with a signed MSG_Error, and stores nothing', async () => {
    const message = largeRegistration(content(8 * 1024 * 1024, 2));
    const wire = signMessage(message, net.pki.alfa);
    const at = wire.indexOf('<AttBody>') + 9 + 4 * 1024 * 1024;
    wire[at] = wire[at] === 0x41 ? 0x42 : 0x41;
    const outcome = await submit(wire, message);
    expect(outcome.kind).toBe('rejected');
    if (outcome.kind === 'rejected') {
      expect(outcome.reason).toBe('error-message');
      expect(outcome.text).toContain('променено след подписването');
    }
    expect(inbound((message.body as { document: { id: { documentGuid: string } } }).document.id.documentGuid)).toBeUndefined();
    expect(leftovers()).toEqual([]);
  }, 60_000);

  it('takes a chunked body (unknown length) and refuses a chunked body over the limit with the SOAP Fault of the in-memory path', async () => {
    const message = largeRegistration(content(64 * 1024, 3));
    const ok = await postChunked(buildSubmitRequest(signMessage(message, net.pki.alfa)));
    expect(ok.status).toBe(200);
    const answer = parseSubmitResponse(Buffer.from(ok.text, 'utf8'));
    expect(answer.kind).toBe('message');
    if (answer.kind === 'message') {
      const reply = verifySignedMessage(answer.message).message;
      expect(reply.body.type === 'MSG_DocumentStatusResponse' && reply.body.status).toBe('DS_WAIT_REGISTRATION');
    }

    const tooLarge = await postChunked(Buffer.concat([buildSubmitRequest(Buffer.from('<x/>')).subarray(0, 100), Buffer.alloc(LIMIT + 1024, 0x41)]));
    expect(tooLarge.status).toBe(500);
    expect(tooLarge.text).toContain('GW_ERR_XML_TOO_LARGE');

    const notSoap = await postChunked(Buffer.from('<not-soap/>'));
    expect(notSoap.status).toBe(500);
    expect(notSoap.text).toContain('GW_ERR_SOAP_MALFORMED');
    expect(leftovers()).toEqual([]);
  }, 60_000);
});
