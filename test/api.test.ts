import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyVerifier, createApiKey, revokeApiKey } from '../src/api/api-keys.ts';
import { contentDisposition, fileNameProblem } from '../src/api/file-names.ts';
import { loadApiSchemas } from '../src/api/validation.ts';
import { queryDeliveryLog } from '../src/audit/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { registerApiKeyCommands } from '../src/cli/apikey-commands.ts';
import { freePort } from '../src/devtools/redis-server.ts';
import { buildSoapFault } from '../src/seos/soap/index.ts';
import { openDatabase } from '../src/store/database.ts';
import { walSyncOf } from '../src/store/durability.ts';
import { ALFA_GUID, BETA_GUID, eventually, startTwoGateways, type Municipality, type TwoGateways } from './support/gateways.ts';

/**
 * The records-system REST API over real HTTP on loopback, against two real gateways (Алфа sends, Бета receives)
 * with real Redis and SQLite. Every call goes through API keys created the way the CLI creates them.
 */
let net: TwoGateways;
let faultServer: http.Server;
const faultBodies: Buffer[] = [];
const DELTA_GUID = '{0d4c0000-0000-4000-8000-000000000004}'; // answers every Submit with a SOAP Fault: deliveries fail
const EPSILON_GUID = '{0e5b0000-0000-4000-8000-000000000005}'; // nothing listens: deliveries stay pending
const LIMITS = { maxJsonBytes: 64 * 1024, maxUploadBytes: 1024 * 1024, maxAttachments: 5, defaultPageSize: 20, maxPageSize: 50 };
const EGN = '8501011234';
const PERSON = 'Мария Георгиева Петрова';

const keys = {} as Record<'alfa' | 'alfaOperator' | 'alfaAuditor' | 'beta' | 'betaOperator' | 'revoked', { key: string; id: string }>;

beforeAll(async () => {
  const faultPort = await freePort();
  faultServer = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      faultBodies.push(Buffer.concat(chunks));
      res.writeHead(500, { 'content-type': 'text/xml; charset=utf-8' });
      res.end(buildSoapFault({ code: 'Server', text: 'Вътрешна грешка при получателя' }));
    });
  }).listen(faultPort, '127.0.0.1');
  const refusedPort = await freePort();
  net = await startTwoGateways({
    extraParticipants: [
      { guid: DELTA_GUID, eik: '000000004', name: 'Община Делта', certificateSN: '01', endpointUrl: `http://127.0.0.1:${faultPort}/seos` },
      { guid: EPSILON_GUID, eik: '000000005', name: 'Община Епсилон', certificateSN: '02', endpointUrl: `http://127.0.0.1:${refusedPort}/seos` },
    ],
    extraConfig: { alfa: { api: LIMITS }, beta: { api: LIMITS } },
  });
  const make = (m: Municipality, name: string, role: 'connector' | 'operator' | 'auditor') => {
    const { key, row } = createApiKey(m.gateway.db, { name, role });
    return { key, id: row.id };
  };
  keys.alfa = make(net.alfa, 'archimed', 'connector');
  keys.alfaOperator = make(net.alfa, 'it-dept', 'operator');
  keys.alfaAuditor = make(net.alfa, 'audit', 'auditor');
  keys.beta = make(net.beta, 'archimed', 'connector');
  keys.betaOperator = make(net.beta, 'it-dept', 'operator');
  keys.revoked = make(net.alfa, 'old', 'connector');
  revokeApiKey(net.alfa.gateway.db, keys.revoked.id);
}, 60_000);

afterAll(async () => {
  faultServer?.close();
  await net?.stop();
});

// ── helpers ──

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

async function call(m: Municipality, method: string, url: string, options: { key?: string; json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let body = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = typeof options.json === 'string' ? options.json : JSON.stringify(options.json);
  }
  const response = await fetch(`http://127.0.0.1:${m.apiPort}${url}`, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: response.status, headers: response.headers, text, json };
}

const alfaCall = (method: string, url: string, options: Parameters<typeof call>[3] = {}) => call(net.alfa, method, url, { key: keys.alfa.key, ...options });
const betaCall = (method: string, url: string, options: Parameters<typeof call>[3] = {}) => call(net.beta, method, url, { key: keys.beta.key, ...options });

let seq = 0;
function documentBody(overrides: Record<string, unknown> = {}, document: Record<string, unknown> = {}) {
  seq++;
  return {
    recipient: '000000002',
    document: {
      kind: 'Молба',
      about: 'Удостоверение за наследници',
      correspondents: [{ name: PERSON, city: 'София', egn: EGN, kind: 'Corr_Applicant' }],
      attachments: [{ fileName: 'молба.txt', mimeType: 'text/plain', content: Buffer.from(`Моля за удостоверение ${seq}`).toString('base64') }],
      ...document,
    },
    ...overrides,
  };
}

/** What an accepted document adds (deliveries of earlier documents keep adding attempts and replies meanwhile). */
function counts(m: Municipality) {
  const db = m.gateway.db;
  const n = (sql: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${sql}`).get() as { n: number }).n;
  return {
    documents: n('documents'), attachments: n('attachments'), documentDeliveries: n("outbox WHERE kind = 'seos-document'"),
    sentMessages: n("messages WHERE direction = 'out' AND message_type = 'MSG_DocumentRegistrationRequest'"),
    accepted: n("delivery_log WHERE json_extract(entry_json, '$.type') = 'message-queued'"), spool: spoolFiles(m).length,
  };
}

function spoolFiles(m: Municipality): string[] {
  const root = m.gateway.spool.root;
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else out.push(path.relative(root, p));
    }
  };
  walk(root);
  return out.sort();
}

function inboundAtBeta(documentGuid: string): { id: string } | undefined {
  return net.beta.gateway.db.prepare("SELECT id FROM documents WHERE direction = 'in' AND document_guid = ?").get(documentGuid) as { id: string } | undefined;
}

async function statusAt(m: Municipality, key: string, id: string, status: string, what: string): Promise<any> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await call(m, 'GET', `/v1/documents/${id}`, { key });
    if (r.status === 200 && r.json.status === status) return r.json;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: last ${r.status} ${r.json?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function multipart(metadata: unknown, files: Array<{ name: string; type: string; bytes: Buffer | string }>): FormData {
  const form = new FormData();
  form.append('metadata', typeof metadata === 'string' ? metadata : JSON.stringify(metadata));
  for (const f of files) form.append('file', new Blob([typeof f.bytes === 'string' ? f.bytes : new Uint8Array(f.bytes)], { type: f.type }), f.name);
  return form;
}

// ── sending ──

describe('sending documents', () => {
  it('sends JSON by ЕИК: 201 with the gateway id, DocumentGUID and MessageGUID; Бета receives it', async () => {
    const r = await alfaCall('POST', '/v1/documents', { json: documentBody({ externalId: 'ext-json-1' }) });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ created: true, status: 'PENDING' });
    expect(r.json.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.json.documentGuid).toMatch(/^\{[0-9a-f-]{36}\}$/);
    expect(r.json.messageGuid).toMatch(/^\{[0-9a-f-]{36}\}$/);
    expect(r.headers.get('location')).toBe(`/v1/documents/${r.json.id}`);
    const doc = net.alfa.gateway.db.prepare('SELECT counterparty_guid AS guid, external_id AS ext, message_guid AS mg FROM documents WHERE id = ?').get(r.json.id) as any;
    expect(doc).toEqual({ guid: BETA_GUID, ext: 'ext-json-1', mg: r.json.messageGuid });
    await eventually(() => inboundAtBeta(r.json.documentGuid), 'Бета received it');
  });

  it('answers a request that changed something only after a WAL sync (group commit)', async () => {
    const sent = await alfaCall('POST', '/v1/documents', { json: documentBody() });
    expect(sent.status, sent.text).toBe(201);
    await eventually(() => inboundAtBeta(sent.json.documentGuid), 'Бета received it');
    // request-status commits an outbox row and nothing in its own code waits for the disk: the API's hook does.
    const sync = walSyncOf(net.alfa.gateway.db)!;
    const before = sync.syncs;
    const r = await alfaCall('POST', `/v1/documents/${sent.json.id}/request-status`);
    expect(r.status, r.text).toBe(202);
    expect(sync.syncs).toBeGreaterThan(before);
  });

  it('sends by GUID (braces optional) and as a multipart upload of a file larger than the JSON limit', async () => {
    const big = Buffer.alloc(600 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
    const metadata = { recipient: BETA_GUID.slice(1, -1).toUpperCase(), document: { kind: 'Писмо', attachments: [{ fileName: 'приложение 1.pdf', mimeType: 'application/pdf', comment: 'сканирано' }] } };
    const r = await alfaCall('POST', '/v1/documents/multipart', { body: multipart(metadata, [{ name: 'ignored.bin', type: 'application/octet-stream', bytes: big }]) });
    expect(r.status, r.text).toBe(201);
    const inbound = await eventually(() => inboundAtBeta(r.json.documentGuid), 'Бета received the upload');
    const [attachment] = net.beta.gateway.db.prepare('SELECT file_name AS name, mime_type AS type, comment, sha256, size FROM attachments WHERE document_id = ?').all(inbound.id) as any[];
    expect(attachment).toMatchObject({ name: 'приложение 1.pdf', type: 'application/pdf', comment: 'сканирано', size: big.length });
    expect(net.beta.gateway.spool.read(attachment.sha256).equals(big)).toBe(true);
  });

  it('takes names and types from the file parts when the metadata lists no attachments', async () => {
    const metadata = { recipient: '000000002', document: { kind: 'Писмо' } };
    const r = await alfaCall('POST', '/v1/documents/multipart', {
      body: multipart(metadata, [{ name: 'заявление.txt', type: 'text/plain', bytes: 'първи' }, { name: 'опис.csv', type: 'text/csv', bytes: 'a,b' }]),
    });
    expect(r.status, r.text).toBe(201);
    const rows = net.alfa.gateway.db.prepare('SELECT file_name AS name, mime_type AS type FROM attachments WHERE document_id = ? ORDER BY position').all(r.json.id);
    expect(rows).toEqual([{ name: 'заявление.txt', type: 'text/plain' }, { name: 'опис.csv', type: 'text/csv' }]);
  });

  it('answers a repeat with the same externalId, or the same Idempotency-Key, with the first result and one document', async () => {
    const body = documentBody({ externalId: 'ext-repeat-1' });
    const first = await alfaCall('POST', '/v1/documents', { json: body });
    const again = await alfaCall('POST', '/v1/documents', { json: body });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json).toMatchObject({ id: first.json.id, documentGuid: first.json.documentGuid, messageGuid: first.json.messageGuid, created: false });
    const byKey = documentBody();
    const k1 = await alfaCall('POST', '/v1/documents', { json: byKey, headers: { 'idempotency-key': 'req-7f3a' } });
    const k2 = await alfaCall('POST', '/v1/documents', { json: byKey, headers: { 'idempotency-key': 'req-7f3a' } });
    expect([k1.status, k2.status]).toEqual([201, 200]);
    expect(k2.json.id).toBe(k1.json.id);
    const db = net.alfa.gateway.db;
    expect((db.prepare("SELECT COUNT(*) AS n FROM documents WHERE external_id = 'ext-repeat-1'").get() as any).n).toBe(1);
    expect((db.prepare("SELECT COUNT(*) AS n FROM documents WHERE idempotency_key LIKE '%:req-7f3a'").get() as any).n).toBe(1);
    expect((db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE document_id = ?').get(k1.json.id) as any).n).toBe(1);
  });

  it('refuses the same externalId for another recipient with 409 and changes nothing', async () => {
    await alfaCall('POST', '/v1/documents', { json: documentBody({ externalId: 'ext-conflict-1' }) });
    const before = counts(net.alfa);
    const r = await alfaCall('POST', '/v1/documents', { json: documentBody({ externalId: 'ext-conflict-1', recipient: DELTA_GUID }) });
    expect(r.status).toBe(409);
    expect(r.json.code).toBe('GW_ERR_API_CONFLICT');
    expect(r.json.detail).toContain('body.externalId');
    expect(counts(net.alfa)).toEqual(before);
  });

  it('gives one document for the same request sent twice at once (JSON and multipart)', async () => {
    const body = documentBody({ externalId: 'ext-concurrent-1' });
    const [a, b] = await Promise.all([alfaCall('POST', '/v1/documents', { json: body }), alfaCall('POST', '/v1/documents', { json: body })]);
    expect([a.status, b.status].sort()).toEqual([200, 201]);
    expect(a.json.id).toBe(b.json.id);
    expect(a.json.messageGuid).toBe(b.json.messageGuid);
    const db = net.alfa.gateway.db;
    expect((db.prepare("SELECT COUNT(*) AS n FROM documents WHERE external_id = 'ext-concurrent-1'").get() as any).n).toBe(1);
    expect((db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE document_id = ?').get(a.json.id) as any).n).toBe(1);

    const metadata = { recipient: '000000002', document: { kind: 'Писмо' } };
    const send = () => alfaCall('POST', '/v1/documents/multipart', {
      headers: { 'idempotency-key': 'upload-concurrent-1' }, body: multipart(metadata, [{ name: 'a.txt', type: 'text/plain', bytes: 'едно и също' }]),
    });
    const [c, d] = await Promise.all([send(), send()]);
    expect([c.status, d.status].sort()).toEqual([200, 201]);
    expect(c.json.id).toBe(d.json.id);
    expect((db.prepare("SELECT COUNT(*) AS n FROM documents WHERE idempotency_key LIKE '%:upload-concurrent-1'").get() as any).n).toBe(1);
  });

  it('reads a delivered document: status, the recipient\'s number and date, history and every attempt', async () => {
    const sent = await alfaCall('POST', '/v1/documents', { json: documentBody() });
    const doc = await statusAt(net.alfa, keys.alfa.key, sent.json.id, 'DS_WAIT_REGISTRATION', 'delivery');
    expect(doc).toMatchObject({ id: sent.json.id, direction: 'out', documentGuid: sent.json.documentGuid, messageGuid: sent.json.messageGuid, counterparty: { guid: BETA_GUID, eik: '000000002', name: 'Община Бета' } });
    expect(doc.theirNumber).toMatch(/^SEOS-\d{6}$/);
    expect(doc.theirDate).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(doc.history.map((h: any) => h.status)).toEqual(['PENDING', 'DS_WAIT_REGISTRATION']);
    expect(doc.history[1]).toMatchObject({ source: 'peer' });
    expect(Date.parse(doc.history[1].at)).toBeGreaterThanOrEqual(Date.parse(doc.history[0].at));
    expect(doc.attachments).toEqual([expect.objectContaining({ position: 1, fileName: 'молба.txt', mimeType: 'text/plain' })]);
    const [delivery] = doc.deliveries;
    expect(delivery).toMatchObject({ kind: 'seos-document', state: 'delivered', destination: BETA_GUID, destinationName: 'Община Бета', messageGuid: sent.json.messageGuid, attemptCount: 1 });
    expect(delivery.attempts).toEqual([expect.objectContaining({ outcome: 'delivered', detail: 'DS_WAIT_REGISTRATION' })]);
    const missing = await alfaCall('GET', '/v1/documents/00000000-0000-4000-8000-000000000000');
    expect([missing.status, missing.json.code]).toEqual([404, 'GW_ERR_API_DOCUMENT_NOT_FOUND']);
  });
});

// ── the inbox and status reports ──

describe('the inbox at the receiver', () => {
  let sent: { id: string; documentGuid: string }[] = [];

  beforeAll(async () => {
    sent = [];
    for (let i = 0; i < 3; i++) {
      const r = await alfaCall('POST', '/v1/documents', { json: documentBody({}, { about: `Входящ ${i}`, attachments: [{ fileName: `писмо ${i}.txt`, mimeType: 'text/plain', content: Buffer.from(`съдържание ${i}`).toString('base64') }] }) });
      expect(r.status).toBe(201);
      sent.push(r.json);
    }
    for (const s of sent) await eventually(() => inboundAtBeta(s.documentGuid), 'Бета received it');
  });

  it('lists received documents in pages, filtered by status, time and acknowledgement', async () => {
    const since = new Date(Date.now() - 60_000).toISOString();
    const all: any[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: Answer = await betaCall('GET', `/v1/inbox?limit=2&from=${encodeURIComponent(since)}${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status, r.text).toBe(200);
      expect(r.json.items.length).toBeLessThanOrEqual(2);
      all.push(...r.json.items);
      cursor = r.json.nextCursor;
      pages++;
    } while (cursor && pages < 50);
    expect(pages).toBeGreaterThan(1);
    const ids = all.map((d) => d.documentGuid);
    for (const s of sent) expect(ids).toContain(s.documentGuid);
    expect(new Set(all.map((d) => d.id)).size).toBe(all.length); // no page repeats a row
    const item = all.find((d) => d.documentGuid === sent[0].documentGuid);
    expect(item).toMatchObject({ status: 'DS_WAIT_REGISTRATION', sender: { guid: ALFA_GUID, eik: '000000001', name: 'Община Алфа' }, attachmentCount: 1, acknowledgedAt: null });
    const future = await betaCall('GET', `/v1/inbox?from=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`);
    expect(future.json.items).toEqual([]);
    const registered = await betaCall('GET', '/v1/inbox?status=DS_REGISTERED&limit=50');
    expect(registered.json.items.every((d: any) => d.status === 'DS_REGISTERED')).toBe(true);
    const bySender = await betaCall('GET', '/v1/inbox?sender=000000003');
    expect(bySender.json.items).toEqual([]);
  });

  it('fetches one with what the sender sent and downloads its attachment with a safe Content-Disposition', async () => {
    const { id } = inboundAtBeta(sent[1].documentGuid)!;
    const r = await betaCall('GET', `/v1/inbox/${id}`);
    expect(r.status, r.text).toBe(200);
    expect(r.json).toMatchObject({ id, documentGuid: sent[1].documentGuid, about: 'Входящ 1', kind: 'Молба' });
    expect(r.json.document.correspondents).toEqual([{ name: PERSON, city: 'София', egn: EGN, kind: 'Corr_Applicant' }]);
    expect(r.json.attachments).toEqual([expect.objectContaining({ position: 1, fileName: 'писмо 1.txt', mimeType: 'text/plain', href: `/v1/inbox/${id}/attachments/1` })]);
    expect(r.json.history.map((h: any) => h.status)).toEqual(['DS_WAIT_REGISTRATION']);
    const file = await betaCall('GET', r.json.attachments[0].href);
    expect(file.status).toBe(200);
    expect(file.text).toBe('съдържание 1');
    expect(file.headers.get('content-type')).toBe('text/plain');
    expect(file.headers.get('content-disposition')).toBe(`attachment; filename="_ 1.txt"; filename*=UTF-8''${encodeURIComponent('писмо 1.txt')}`);
    expect(file.headers.get('x-content-type-options')).toBe('nosniff');
    const none = await betaCall('GET', `/v1/inbox/${id}/attachments/2`);
    expect(none.status).toBe(404);
    // A sent document is not in the inbox.
    const outbound = await alfaCall('GET', `/v1/inbox/${sent[1].id}`);
    expect(outbound.status).toBe(404);
  });

  it('acknowledges once: a repeat answers with the first time, and one delivery-log entry is written', async () => {
    const { id } = inboundAtBeta(sent[2].documentGuid)!;
    const first = await betaCall('POST', `/v1/inbox/${id}/ack`);
    expect(first.status, first.text).toBe(200);
    expect(first.json.alreadyAcknowledged).toBe(false);
    const again = await betaCall('POST', `/v1/inbox/${id}/ack`);
    expect(again.json).toEqual({ id, acknowledgedAt: first.json.acknowledgedAt, alreadyAcknowledged: true });
    const acked = await betaCall('GET', '/v1/inbox?acknowledged=true&limit=50');
    expect(acked.json.items.map((d: any) => d.id)).toContain(id);
    const notAcked = await betaCall('GET', '/v1/inbox?acknowledged=false&limit=50');
    expect(notAcked.json.items.map((d: any) => d.id)).not.toContain(id);
    const entries = queryDeliveryLog(net.beta.gateway.db, { type: 'acknowledged' }).filter((e) => e.documentId === id);
    expect(entries).toHaveLength(1);
    expect(entries[0].actor).toBe(`connector:${keys.beta.id}`);
  });

  it('reports registered, rejected and closed; the sender sees each through its own API', async () => {
    const [a, b] = [inboundAtBeta(sent[0].documentGuid)!, inboundAtBeta(sent[1].documentGuid)!];
    const reg = await betaCall('POST', `/v1/inbox/${a.id}/status`, { json: { status: 'registered', number: 'ОБ-94-00-15', date: '2026-11-22', expectedCloseDate: '2026-12-22' } });
    expect(reg.status, reg.text).toBe(202);
    expect(reg.json).toMatchObject({ status: 'DS_REGISTERED', repeated: false });
    const rej = await betaCall('POST', `/v1/inbox/${b.id}/status`, { json: { status: 'rejected', reason: 'Документът не е подписан.' } });
    expect(rej.status).toBe(202);
    const registered = await statusAt(net.alfa, keys.alfa.key, sent[0].id, 'DS_REGISTERED', 'registered at Алфа');
    expect(registered).toMatchObject({ theirNumber: 'ОБ-94-00-15', theirDate: '2026-11-22', expectedCloseDate: '2026-12-22' });
    const rejected = await statusAt(net.alfa, keys.alfa.key, sent[1].id, 'DS_REJECTED', 'rejected at Алфа');
    expect(rejected.rejectionReason).toBe('Документът не е подписан.');

    // The same report again: no second push.
    const pushes = () => (net.beta.gateway.db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE document_id = ? AND kind = 'seos-status-push'").get(a.id) as any).n;
    const before = pushes();
    const repeat = await betaCall('POST', `/v1/inbox/${a.id}/status`, { json: { status: 'registered', number: 'ОБ-94-00-15', date: '2026-11-22', expectedCloseDate: '2026-12-22' } });
    expect(repeat.status).toBe(200);
    expect(repeat.json).toMatchObject({ repeated: true, messageGuid: reg.json.messageGuid });
    expect(pushes()).toBe(before);
    // A registered document keeps its number; a rejected one stays rejected.
    const renumber = await betaCall('POST', `/v1/inbox/${a.id}/status`, { json: { status: 'registered', number: 'ОБ-1', date: '2026-11-23' } });
    expect([renumber.status, renumber.json.code]).toEqual([409, 'GW_ERR_API_CONFLICT']);
    const afterReject = await betaCall('POST', `/v1/inbox/${b.id}/status`, { json: { status: 'registered', number: 'ОБ-2', date: '2026-11-23' } });
    expect([afterReject.status, afterReject.json.code]).toEqual([409, 'GW_ERR_API_CONFLICT']);
    expect(pushes()).toBe(before);

    const closed = await betaCall('POST', `/v1/inbox/${a.id}/status`, { json: { status: 'closed' } });
    expect(closed.status).toBe(202);
    const done = await statusAt(net.alfa, keys.alfa.key, sent[0].id, 'DS_CLOSED', 'closed at Алфа');
    expect(done.history.map((h: any) => h.status)).toEqual(['PENDING', 'DS_WAIT_REGISTRATION', 'DS_REGISTERED', 'DS_CLOSED']);
    const log = queryDeliveryLog(net.beta.gateway.db, { status: 'DS_CLOSED' }).filter((e) => e.documentId === a.id);
    expect(log[0].actor).toBe(`connector:${keys.beta.id}`);
  });

  it('refuses a report with a status it does not know, naming the field', async () => {
    const { id } = inboundAtBeta(sent[2].documentGuid)!;
    const r = await betaCall('POST', `/v1/inbox/${id}/status`, { json: { status: 'archived' } });
    expect(r.status).toBe(400);
    expect(r.json.detail).toBe('body.status: must be one of: registered, rejected, stopped, closed');
    const missing = await betaCall('POST', `/v1/inbox/${id}/status`, { json: { status: 'registered', number: 'ОБ-3' } });
    expect(missing.json.detail).toBe('body.date: is required');
  });
});

describe('asking the recipient for the status', () => {
  it('queues a status request whose answer updates the document', async () => {
    const sent = await alfaCall('POST', '/v1/documents', { json: documentBody() });
    const inbound = await eventually(() => inboundAtBeta(sent.json.documentGuid), 'Бета received it');
    await statusAt(net.alfa, keys.alfa.key, sent.json.id, 'DS_WAIT_REGISTRATION', 'delivered');
    // Registered at Бета without a push (as if it were lost): only the status request tells Алфа.
    net.beta.gateway.db.prepare("UPDATE documents SET status = 'DS_REGISTERED', our_number = 'ОБ-7', our_date = '2026-11-22' WHERE id = ?").run(inbound.id);
    const r = await alfaCall('POST', `/v1/documents/${sent.json.id}/request-status`);
    expect(r.status, r.text).toBe(202);
    expect(r.json).toMatchObject({ id: sent.json.id, status: 'DS_WAIT_REGISTRATION' });
    const doc = await statusAt(net.alfa, keys.alfa.key, sent.json.id, 'DS_REGISTERED', 'status request answered');
    expect(doc.theirNumber).toBe('ОБ-7');
    expect(doc.deliveries.find((d: any) => d.id === r.json.deliveryId)).toMatchObject({ kind: 'seos-status-request' });
    const entries = queryDeliveryLog(net.alfa.gateway.db, { type: 'status-request' }).filter((e) => e.documentId === sent.json.id);
    expect(entries).toHaveLength(1);
    const notSent = await betaCall('POST', `/v1/documents/${inbound.id}/request-status`);
    expect(notSent.status).toBe(404);
  });
});

// ── operators ──

describe('operator actions', () => {
  const operator = (method: string, url: string, options: Parameters<typeof call>[3] = {}) => call(net.alfa, method, url, { key: keys.alfaOperator.key, ...options });

  it('lists a failed delivery with its attempts, resends the same signed bytes and logs the action', async () => {
    const sent = await alfaCall('POST', '/v1/documents', { json: documentBody({ recipient: DELTA_GUID }) });
    expect(sent.status).toBe(201);
    await statusAt(net.alfa, keys.alfa.key, sent.json.id, 'SENT_FAILED', 'refused by Делта');
    const list = await operator('GET', `/v1/operator/deliveries?state=failed&destination=${encodeURIComponent(DELTA_GUID)}&limit=50`);
    expect(list.status, list.text).toBe(200);
    const item = list.json.items.find((d: any) => d.documentId === sent.json.id);
    expect(item).toMatchObject({ state: 'failed', kind: 'seos-document', destinationName: 'Община Делта', messageGuid: sent.json.messageGuid, attemptCount: 1 });
    expect(item.lastError).toContain('GW_ERR_SEOS_PEER_FAULT');
    expect(item.attempts.map((a: any) => a.outcome)).toEqual(['failed:GW_ERR_SEOS_PEER_FAULT']);

    const bodiesBefore = faultBodies.length;
    const resend = await operator('POST', `/v1/operator/deliveries/${item.id}/resend`);
    expect(resend.status, resend.text).toBe(202);
    expect(resend.json).toEqual({ resent: 1, ids: [item.id] });
    await eventually(() => faultBodies.length > bodiesBefore, 'Делта called again');
    const doc = await statusAt(net.alfa, keys.alfa.key, sent.json.id, 'SENT_FAILED', 'refused again');
    const delivery = doc.deliveries.find((d: any) => d.id === item.id);
    expect(delivery.attempts.map((a: any) => a.outcome)).toEqual(['failed:GW_ERR_SEOS_PEER_FAULT', 'failed:GW_ERR_SEOS_PEER_FAULT']);
    expect(doc.history.map((h: any) => h.status)).toEqual(['PENDING', 'SENT_FAILED', 'PENDING', 'SENT_FAILED']);
    // Principle 2: the very same bytes (same MessageGUID) went out again.
    const mine = faultBodies.filter((b) => b.includes(Buffer.from(sent.json.messageGuid)));
    expect(mine.length).toBe(2);
    expect(mine[0].equals(mine[1])).toBe(true);
    const entries = queryDeliveryLog(net.alfa.gateway.db, { type: 'operator-action' }).filter((e) => e.documentId === sent.json.id);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ outcome: 'resend', actor: `operator:${keys.alfaOperator.id}`, messageGuid: sent.json.messageGuid, counterparty: { guid: DELTA_GUID } });
  });

  it('resends every delivery that matches a filter, each logged', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await alfaCall('POST', '/v1/documents', { json: documentBody({ recipient: '000000004' }) });
      ids.push(r.json.id);
    }
    for (const id of ids) await statusAt(net.alfa, keys.alfa.key, id, 'SENT_FAILED', 'refused by Делта');
    const logBefore = queryDeliveryLog(net.alfa.gateway.db, { type: 'operator-action' }).length;
    const r = await operator('POST', '/v1/operator/deliveries/resend', { json: { state: ['failed'], destination: DELTA_GUID } });
    expect(r.status, r.text).toBe(202);
    const outboxIds = ids.map((id) => (net.alfa.gateway.db.prepare('SELECT id FROM outbox WHERE document_id = ?').get(id) as { id: string }).id);
    for (const o of outboxIds) expect(r.json.ids).toContain(o);
    const entries = queryDeliveryLog(net.alfa.gateway.db, { type: 'operator-action' });
    expect(entries.length - logBefore).toBe(r.json.resent);
    for (const id of ids) {
      expect(entries.filter((e) => e.documentId === id && e.actor === `operator:${keys.alfaOperator.id}`)).toHaveLength(1);
      await eventually(() => (net.alfa.gateway.db.prepare('SELECT COUNT(*) AS n FROM attempts WHERE outbox_id = (SELECT id FROM outbox WHERE document_id = ?)').get(id) as any).n === 2, 'second attempt');
    }
    const bad = await operator('POST', '/v1/operator/deliveries/resend', { json: { state: ['delivered'] } });
    expect(bad.status).toBe(400);
    expect(bad.json.detail).toBe('body.state[0]: must be one of: failed, dead, stuck');
  });

  it('lists stuck deliveries (pending past the threshold, or to a destination that is down)', async () => {
    const sent = await alfaCall('POST', '/v1/documents', { json: documentBody({ recipient: EPSILON_GUID }) });
    const outboxId = (net.alfa.gateway.db.prepare('SELECT id FROM outbox WHERE document_id = ?').get(sent.json.id) as { id: string }).id;
    await eventually(() => (net.alfa.gateway.db.prepare('SELECT COUNT(*) AS n FROM attempts WHERE outbox_id = ?').get(outboxId) as any).n >= 1, 'a failed attempt');
    const stuck = await operator('GET', '/v1/operator/deliveries?state=stuck&stuckAfterSeconds=0');
    const item = stuck.json.items.find((d: any) => d.id === outboxId);
    expect(item).toMatchObject({ state: 'pending', destination: EPSILON_GUID });
    expect(item.attempts[0].outcome).toMatch(/^retry:GW_ERR_SEOS_(TRANSPORT|TIMEOUT)$/);
    // Within the default hour it is stuck once its destination is down.
    await eventually(() => (net.alfa.gateway.db.prepare("SELECT state FROM destinations WHERE id = ?").get(EPSILON_GUID) as any)?.state === 'down', 'Епсилон down');
    const byDefault = await operator('GET', '/v1/operator/deliveries?state=stuck');
    expect(byDefault.json.items.find((d: any) => d.id === outboxId)).toMatchObject({ destinationDown: true });
    const failedOnly = await operator('GET', '/v1/operator/deliveries?state=failed&limit=50');
    expect(failedOnly.json.items.map((d: any) => d.id)).not.toContain(outboxId);
  });

  it('refuses operator routes to a connector key, and a resend of a delivered delivery', async () => {
    const asConnector = await alfaCall('GET', '/v1/operator/deliveries');
    expect([asConnector.status, asConnector.json.code]).toEqual([403, 'GW_ERR_API_FORBIDDEN']);
    const delivered = net.alfa.gateway.db.prepare("SELECT id FROM outbox WHERE state = 'delivered' LIMIT 1").get() as { id: string };
    const r = await operator('POST', `/v1/operator/deliveries/${delivered.id}/resend`);
    expect([r.status, r.json.code]).toEqual([409, 'GW_ERR_API_CONFLICT']);
    const none = await operator('POST', '/v1/operator/deliveries/00000000-0000-4000-8000-000000000000/resend');
    expect([none.status, none.json.code]).toEqual([404, 'GW_ERR_API_DELIVERY_NOT_FOUND']);
    // An operator may read a document.
    const doc = await operator('GET', `/v1/documents/${(net.alfa.gateway.db.prepare("SELECT id FROM documents WHERE direction = 'out' LIMIT 1").get() as { id: string }).id}`);
    expect(doc.status).toBe(200);
  });
});

// ── keys and roles ──

describe('API keys', () => {
  it('answers 401 without a key, with a malformed, unknown or revoked key, and 403 for the wrong role', async () => {
    const none = await call(net.alfa, 'GET', '/v1/inbox');
    expect([none.status, none.json.code]).toEqual([401, 'GW_ERR_API_UNAUTHORIZED']);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const [, id] = /^sgw_([0-9a-f]{16})_/.exec(keys.alfa.key)!;
    for (const key of ['nonsense', `sgw_${id}_${'A'.repeat(43)}`, `sgw_${'0'.repeat(16)}_${'A'.repeat(43)}`, keys.revoked.key, keys.beta.key]) {
      const r = await call(net.alfa, 'GET', '/v1/inbox', { key });
      expect(r.status, key.slice(0, 24)).toBe(401);
    }
    const viaHeader = await call(net.alfa, 'GET', '/v1/inbox', { headers: { 'x-api-key': keys.alfa.key } });
    expect(viaHeader.status).toBe(200);
    const auditorSends = await call(net.alfa, 'POST', '/v1/documents', { key: keys.alfaAuditor.key, json: documentBody() });
    expect([auditorSends.status, auditorSends.json.code]).toEqual([403, 'GW_ERR_API_FORBIDDEN']);
    const operatorSends = await call(net.alfa, 'POST', '/v1/documents', { key: keys.alfaOperator.key, json: documentBody() });
    expect(operatorSends.status).toBe(403);
  });

  it('refuses a key revoked while the gateway runs, at once', async () => {
    const { key, row } = createApiKey(net.alfa.gateway.db, { name: 'temp', role: 'connector' });
    expect((await call(net.alfa, 'GET', '/v1/inbox', { key })).status).toBe(200);
    revokeApiKey(net.alfa.gateway.db, row.id);
    expect((await call(net.alfa, 'GET', '/v1/inbox', { key })).status).toBe(401);
  });

  it('stores only the SHA-256 of the secret', () => {
    const stored = net.alfa.gateway.db.prepare('SELECT secret_sha256 AS s FROM api_keys WHERE id = ?').get(keys.alfa.id) as { s: string };
    expect(stored.s).toMatch(/^[0-9a-f]{64}$/);
    expect(keys.alfa.key).not.toContain(stored.s);
    // sgw_<hex id>_<secret>: the secret is base64url and may itself contain "_", so take all of it.
    const secret = keys.alfa.key.slice(keys.alfa.key.indexOf('_', 4) + 1);
    expect(secret.length).toBeGreaterThanOrEqual(43);
    expect(JSON.stringify(net.alfa.gateway.db.prepare('SELECT * FROM api_keys').all())).not.toContain(secret);
  });

  it('the CLI creates, lists and revokes keys, and logs both changes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apikey-cli-'));
    const file = path.join(dir, 'gateway.db');
    const out: string[] = [];
    const run = (...args: string[]) => {
      const program = new Command('seos-gateway').exitOverride().configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => out.push(s) });
      registerApiKeyCommands(program, () => { const db = openDatabase(file); return { db, close: () => db.close() }; });
      program.parse(['node', 'seos-gateway', ...args]);
      return out.splice(0).join('');
    };
    try {
      const created = JSON.parse(run('apikey', 'create', '--name', 'archimed', '--role', 'operator', '--json'));
      expect(created).toMatchObject({ name: 'archimed', role: 'operator', revokedAt: null });
      const db = openDatabase(file);
      try {
        expect(new ApiKeyVerifier(db).verify(created.key)).toEqual({ keyId: created.id, name: 'archimed', role: 'operator' });
        expect(run('apikey', 'list')).toContain(created.id);
        expect(run('apikey', 'list')).not.toContain(created.key);
        expect(run('apikey', 'revoke', created.id)).toContain(created.id);
        expect(new ApiKeyVerifier(db).verify(created.key)).toBeUndefined();
        expect(queryDeliveryLog(db, { type: 'operator-action' }).map((e) => e.outcome)).toEqual(['apikey-created', 'apikey-revoked']);
        expect(() => run('apikey', 'create', '--name', 'x', '--role', 'admin')).toThrow();
      } finally {
        db.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ── bad input: clear 4xx, nothing changes ──

describe('bad input', () => {
  it('refuses invalid bodies with 400 naming the field, and changes nothing', async () => {
    const base = documentBody();
    const cases: Array<[string, unknown, string]> = [
      ['wrong type', { ...base, document: { ...base.document, kind: 5 } }, 'body.document.kind: must be string'],
      ['wrong nested type', { ...base, document: { ...base.document, attachments: [{ fileName: 'a.txt', mimeType: 7, content: 'QQ==' }] } }, 'body.document.attachments[0].mimeType: must be string'],
      ['unknown field', { ...base, document: { ...base.document, colour: 'червен' } }, 'body.document.colour: unknown field'],
      ['unknown top-level field', { ...base, priority: 'high' }, 'body.priority: unknown field'],
      ['missing recipient', { document: base.document }, 'body.recipient: is required'],
      ['missing kind', { ...base, document: { about: 'x' } }, 'body.document.kind: is required'],
      ['bad recipient', { ...base, recipient: 'Община Бета' }, 'body.recipient: has the wrong format'],
      ['bad GUID', { ...base, document: { ...base.document, id: { documentGuid: '{not-a-guid}' } } }, 'body.document.id.documentGuid: has the wrong format'],
      ['bad base64', { ...base, document: { ...base.document, attachments: [{ fileName: 'a.txt', mimeType: 'text/plain', content: 'не е base64!' }] } }, 'body.document.attachments[0].content: must be base64'],
      ['base64 with a line break', { ...base, document: { ...base.document, attachments: [{ fileName: 'a.txt', mimeType: 'text/plain', content: 'QUJD\nREVG' }] } }, 'body.document.attachments[0].content: must be base64'],
      ['bad date', { ...base, document: { ...base.document, id: { number: { docNumber: '1', docDate: '2026-02-30' } } } }, 'body.document.id.number.docDate: must be a date YYYY-MM-DD'],
      ['bad enum', { ...base, document: { ...base.document, correspondents: [{ name: 'X', city: 'Y', kind: 'Corr_Boss' }] } }, 'body.document.correspondents[0].kind: must be one of: Corr_Applicant, Corr_Other'],
      ['not an object', [1, 2, 3], 'body: must be object'],
      ['bad JSON', '{"recipient": "000000002", ', 'body: is not valid JSON'],
    ];
    const before = counts(net.alfa);
    for (const [name, body, detail] of cases) {
      const r = await alfaCall('POST', '/v1/documents', { json: body });
      expect(r.status, name).toBe(400);
      expect(r.json.code, name).toBe('GW_ERR_API_VALIDATION');
      expect(r.json.detail, name).toContain(detail);
      expect(r.json.message, name).toMatch(/[А-Яа-я]/);
    }
    const badKey = await alfaCall('POST', '/v1/documents', { json: base, headers: { 'idempotency-key': 'two words' } });
    expect([badKey.status, badKey.json.detail]).toEqual([400, expect.stringContaining('headers.idempotency-key')]);
    const badQuery = await alfaCall('GET', '/v1/inbox?limit=abc');
    expect([badQuery.status, badQuery.json.detail]).toEqual([400, 'querystring.limit: must be integer']);
    const unknownQuery = await alfaCall('GET', '/v1/inbox?egn=8501011234');
    expect([unknownQuery.status, unknownQuery.json.detail]).toEqual([400, 'querystring.egn: unknown field']);
    const badCursor = await alfaCall('GET', '/v1/inbox?cursor=Zm9v');
    expect(badCursor.json.detail).toBe('querystring.cursor: is not a cursor this API gave');
    const badId = await alfaCall('GET', '/v1/documents/../../etc/passwd');
    expect(badId.status).toBe(404);
    const wrongType = await alfaCall('POST', '/v1/documents', { body: 'recipient=000000002', headers: { 'content-type': 'text/plain' } });
    expect([wrongType.status, wrongType.json.code]).toEqual([415, 'GW_ERR_API_UNSUPPORTED_MEDIA_TYPE']);
    expect(counts(net.alfa)).toEqual(before);
  });

  it('refuses a multipart upload whose metadata is missing, invalid or does not match the files, and keeps no file', async () => {
    const before = counts(net.alfa);
    const noMetadata = new FormData();
    noMetadata.append('file', new Blob(['x']), 'a.txt');
    const cases: Array<[string, FormData, string]> = [
      ['file first', noMetadata, 'multipart: the first part must be the field "metadata"'],
      ['metadata not JSON', multipart('{', [{ name: 'a.txt', type: 'text/plain', bytes: 'x' }]), 'metadata: is not valid JSON'],
      ['metadata invalid', multipart({ recipient: '000000002', document: { kind: 1 } }, [{ name: 'a.txt', type: 'text/plain', bytes: 'x' }]), 'metadata.document.kind: must be string'],
      ['count mismatch', multipart({ recipient: '000000002', document: { kind: 'Писмо', attachments: [{ fileName: 'a.txt', mimeType: 'text/plain' }, { fileName: 'b.txt', mimeType: 'text/plain' }] } }, [{ name: 'a.txt', type: 'text/plain', bytes: 'само един файл' }]), 'describes 2 files, the upload has 1'],
    ];
    for (const [name, form, detail] of cases) {
      const r = await alfaCall('POST', '/v1/documents/multipart', { body: form });
      expect(r.status, name).toBe(400);
      expect(r.json.detail, name).toContain(detail);
    }
    const unknownRecipient = await alfaCall('POST', '/v1/documents/multipart', { body: multipart({ recipient: '000000009', document: { kind: 'Писмо' } }, [{ name: 'a.txt', type: 'text/plain', bytes: 'файл за никого' }]) });
    expect([unknownRecipient.status, unknownRecipient.json.code]).toEqual([404, 'GW_ERR_PARTICIPANT_NOT_FOUND']);
    expect(counts(net.alfa)).toEqual(before);
  });

  it('refuses path tricks and control characters in file names with 400, and keeps no file', async () => {
    const before = counts(net.alfa);
    const names = ['../../etc/passwd', '..\\..\\boot.ini', 'C:\\Windows\\win.ini', '/etc/shadow', 'a\u0000b.txt', 'ред\nнов.txt', 'doc\u202Etxt.exe', '..', `${'я'.repeat(128)}.txt`, ' водещ интервал.txt'];
    for (const fileName of names) {
      const r = await alfaCall('POST', '/v1/documents', { json: documentBody({}, { attachments: [{ fileName, mimeType: 'text/plain', content: 'QQ==' }] }) });
      expect(r.status, JSON.stringify(fileName)).toBe(400);
      expect(r.json.code, JSON.stringify(fileName)).toBe('GW_ERR_API_BAD_FILE_NAME');
      expect(r.json.detail).toMatch(/^body\.document\.attachments\[0\]\.fileName: the file name /);
    }
    for (const name of ['../evil.txt', '..\\evil.txt', 'dir/evil.txt']) {
      const r = await alfaCall('POST', '/v1/documents/multipart', { body: multipart({ recipient: '000000002', document: { kind: 'Писмо' } }, [{ name, type: 'text/plain', bytes: `опит с ${name}` }]) });
      expect(r.status, name).toBe(400);
      expect(r.json.code).toBe('GW_ERR_API_BAD_FILE_NAME');
      expect(r.json.detail).toMatch(/^file\[0\]\.filename:/);
    }
    const viaMetadata = await alfaCall('POST', '/v1/documents/multipart', {
      body: multipart({ recipient: '000000002', document: { kind: 'Писмо', attachments: [{ fileName: '../../x', mimeType: 'text/plain' }] } }, [{ name: 'ok.txt', type: 'text/plain', bytes: 'x' }]),
    });
    expect([viaMetadata.status, viaMetadata.json.detail]).toEqual([400, expect.stringMatching(/^metadata\.document\.attachments\[0\]\.fileName/)]);
    expect(counts(net.alfa)).toEqual(before);
    expect(fs.readdirSync(path.join(net.alfa.gateway.spool.root, 'tmp'))).toEqual([]);
  });

  it('refuses an oversize JSON body and an oversize upload with 413, leaving no spool file behind', async () => {
    const before = counts(net.alfa);
    const spoolBefore = spoolFiles(net.alfa);
    const big = Buffer.alloc(LIMITS.maxJsonBytes, 1).toString('base64');
    const json = await alfaCall('POST', '/v1/documents', { json: documentBody({}, { attachments: [{ fileName: 'голям.bin', mimeType: 'application/octet-stream', content: big }] }) });
    expect([json.status, json.json.code]).toEqual([413, 'GW_ERR_API_TOO_LARGE']);
    // First file fits, the second goes over the total: the first must not stay in the spool either.
    const half = Buffer.alloc(LIMITS.maxUploadBytes / 2 + 1024, 2);
    const second = Buffer.alloc(LIMITS.maxUploadBytes / 2, 3);
    const upload = await alfaCall('POST', '/v1/documents/multipart', {
      body: multipart({ recipient: '000000002', document: { kind: 'Писмо' } }, [{ name: 'a.bin', type: 'application/octet-stream', bytes: half }, { name: 'b.bin', type: 'application/octet-stream', bytes: second }]),
    });
    expect([upload.status, upload.json.code]).toEqual([413, 'GW_ERR_API_TOO_LARGE']);
    const single = await alfaCall('POST', '/v1/documents/multipart', {
      body: multipart({ recipient: '000000002', document: { kind: 'Писмо' } }, [{ name: 'c.bin', type: 'application/octet-stream', bytes: Buffer.alloc(LIMITS.maxUploadBytes + 1, 4) }]),
    });
    expect([single.status, single.json.code]).toEqual([413, 'GW_ERR_API_TOO_LARGE']);
    const tooMany = await alfaCall('POST', '/v1/documents/multipart', {
      body: multipart({ recipient: '000000002', document: { kind: 'Писмо' } }, Array.from({ length: LIMITS.maxAttachments + 1 }, (_, i) => ({ name: `${i}.txt`, type: 'text/plain', bytes: `файл ${i}` }))),
    });
    expect(tooMany.status).toBe(413);
    expect(counts(net.alfa)).toEqual(before);
    expect(spoolFiles(net.alfa)).toEqual(spoolBefore);
  });

  it('answers hostile JSON (deep nesting, huge strings, __proto__) with 4xx', async () => {
    const before = counts(net.alfa);
    const depth = 20_000;
    const deep = `{"recipient":"000000002","document":{"kind":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const cases: Array<[string, string, string]> = [
      ['deep value', deep, 'body: nests deeper than 32 levels'],
      ['deep body', `${'['.repeat(30_000)}${']'.repeat(30_000)}`, 'body: nests deeper than 32 levels'],
      ['deep object', `${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`, 'body: nests deeper than 32 levels'],
      ['brackets inside strings do not count', JSON.stringify(documentBody({}, { about: '[{'.repeat(1000) })).replace('"Молба"', '5'), 'body.document.kind: must be string'],
      ['huge string', JSON.stringify(documentBody({}, { kind: 'М'.repeat(20_000) })), 'body.document.kind: must NOT have more than 200 characters'],
      ['__proto__', '{"recipient":"000000002","document":{"kind":"Молба","__proto__":{"admin":true}}}', '"__proto__" and "constructor.prototype" keys are not allowed'],
      ['constructor.prototype', '{"recipient":"000000002","document":{"kind":"Молба"},"constructor":{"prototype":{"admin":true}}}', '"__proto__" and "constructor.prototype" keys are not allowed'],
      ['empty', '', 'body: is required'],
    ];
    for (const [name, body, detail] of cases) {
      const r = await alfaCall('POST', '/v1/documents', { json: body });
      expect(r.status, name).toBe(400);
      expect(r.json.code, name).toBe('GW_ERR_API_VALIDATION');
      expect(r.json.detail, name).toContain(detail);
    }
    expect(({} as Record<string, unknown>).admin).toBeUndefined();
    expect(counts(net.alfa)).toEqual(before);
  });
});

// ── audit ──

describe('the delivery log for auditors', () => {
  const auditor = (url: string) => call(net.alfa, 'GET', url, { key: keys.alfaAuditor.key });

  it('exports JSON pages and CSV, filtered by time, counterparty, GUID and status', async () => {
    const sent = await alfaCall('POST', '/v1/documents', { json: documentBody() });
    await statusAt(net.alfa, keys.alfa.key, sent.json.id, 'DS_WAIT_REGISTRATION', 'delivered');
    const byGuid = await auditor(`/v1/audit?guid=${encodeURIComponent(sent.json.documentGuid)}`);
    expect(byGuid.status, byGuid.text).toBe(200);
    expect(byGuid.json.entries.length).toBeGreaterThanOrEqual(2);
    for (const e of byGuid.json.entries) expect([e.documentGuid, e.messageGuid]).toContain(sent.json.documentGuid);
    expect(byGuid.json.entries.map((e: any) => e.type)).toEqual(expect.arrayContaining(['message-queued', 'attempt']));
    expect(byGuid.json.entries[0]).toMatchObject({ seq: expect.any(Number), hash: expect.stringMatching(/^[0-9a-f]{64}$/), prevHash: expect.any(String) });

    const page = await auditor('/v1/audit?limit=2');
    expect(page.json.entries).toHaveLength(2);
    const next = await auditor(`/v1/audit?limit=2&afterSeq=${page.json.nextAfterSeq}`);
    expect(next.json.entries[0].seq).toBeGreaterThan(page.json.entries[1].seq);

    const byStatus = await auditor('/v1/audit?status=DS_REGISTERED&format=json&limit=50');
    expect(byStatus.json.entries.length).toBeGreaterThan(0);
    expect(byStatus.json.entries.every((e: any) => e.status === 'DS_REGISTERED')).toBe(true);
    const future = await auditor(`/v1/audit?from=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`);
    expect(future.json.entries).toEqual([]);
    const today = await auditor(`/v1/audit?from=${new Date(Date.now() - 86400_000).toISOString().slice(0, 10)}&limit=1`);
    expect(today.json.entries).toHaveLength(1);

    const csv = await auditor('/v1/audit?format=csv&counterparty=000000004');
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toContain('delivery-log.csv');
    const lines = csv.text.replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines[0]).toMatch(/^seq,at,type,direction,counterparty_guid,counterparty_eik/);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines.slice(1)) expect(line).toContain(DELTA_GUID);
    const jsonl = await auditor(`/v1/audit?format=jsonl&guid=${encodeURIComponent(sent.json.messageGuid)}`);
    const rows = jsonl.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((e) => e.messageGuid === sent.json.messageGuid)).toBe(true);

    const badFrom = await auditor('/v1/audit?from=yesterday');
    expect([badFrom.status, badFrom.json.code]).toEqual([400, 'GW_ERR_API_VALIDATION']);
  });

  it('is forbidden to connectors and operators', async () => {
    for (const key of [keys.alfa.key, keys.alfaOperator.key]) {
      const r = await call(net.alfa, 'GET', '/v1/audit?format=csv', { key });
      expect([r.status, r.json.code]).toEqual([403, 'GW_ERR_API_FORBIDDEN']);
    }
  });
});

// ── logs, OpenAPI, schemas ──

describe('around the API', () => {
  it('keeps ЕГН, names and document content out of the operational logs of both gateways', async () => {
    const secretText = 'Поверително съдържание на молбата';
    const r = await alfaCall('POST', '/v1/documents', {
      json: documentBody({ externalId: 'ext-personal-1', comment: PERSON }, { about: `Молба от ${PERSON}`, attachments: [{ fileName: `${PERSON}.txt`, mimeType: 'text/plain', content: Buffer.from(secretText).toString('base64') }] }),
    });
    expect(r.status).toBe(201);
    const inbound = await eventually(() => inboundAtBeta(r.json.documentGuid), 'Бета received it');
    await betaCall('GET', `/v1/inbox/${inbound.id}`);
    await betaCall('GET', `/v1/inbox/${inbound.id}/attachments/1`);
    // Refused requests must not leak the value either.
    await alfaCall('POST', '/v1/documents', { json: documentBody({}, { correspondents: [{ name: PERSON, city: 'София', egn: EGN, unknownField: EGN }] }) });
    await alfaCall('POST', '/v1/documents', { json: `{"recipient": "${EGN}", "document": {"kind": "${PERSON}"` });
    await alfaCall('GET', `/v1/inbox?sender=${EGN}`);
    const logs = [...net.alfa.logs, ...net.beta.logs].join('\n');
    expect(logs).toContain('request refused'); // the refusals were logged, by code
    for (const secret of [EGN, PERSON, 'Мария', secretText, Buffer.from(secretText).toString('base64'), keys.alfa.key, keys.beta.key]) {
      expect(logs).not.toContain(secret);
    }
  });

  it('describes itself in OpenAPI 3.1 at /docs/json, generated from the route schemas, with the UI at /docs', async () => {
    const r = await call(net.alfa, 'GET', '/docs/json');
    expect(r.status).toBe(200);
    expect(r.json.openapi).toBe('3.1.0');
    for (const p of ['/v1/documents', '/v1/documents/multipart', '/v1/documents/{id}', '/v1/inbox', '/v1/inbox/{id}/attachments/{n}', '/v1/inbox/{id}/status', '/v1/operator/deliveries', '/v1/operator/deliveries/resend', '/v1/audit']) {
      expect(Object.keys(r.json.paths), p).toContain(p);
    }
    expect(JSON.stringify(r.json.paths['/v1/documents'].post.requestBody)).toContain('SendDocumentRequest');
    expect(r.json.components.schemas.SendDocumentRequest.properties.recipient).toBeDefined();
    expect(r.json.paths['/v1/documents/multipart'].post.requestBody.content['multipart/form-data']).toBeDefined();
    expect(r.json.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    const ui = await call(net.alfa, 'GET', '/docs/static/index.html');
    expect(ui.status).toBe(200);
    expect(ui.text).toContain('swagger');
    expect(ui.text).not.toMatch(/https?:\/\/(cdn|unpkg|cdnjs|jsdelivr)/);
  });

  it('keeps the multipart metadata schema the same as the JSON one, but for attachment contents', () => {
    const { shared } = loadApiSchemas();
    const strip = (s: any) => { const { $id: _id, description: _d, ...rest } = s; return rest; };
    const json = strip(shared.get('OutgoingDocument'));
    const meta = strip(shared.get('OutgoingDocumentMetadata'));
    expect({ ...meta, properties: { ...meta.properties, attachments: null } }).toEqual({ ...json, properties: { ...json.properties, attachments: null } });
    expect(strip(shared.get('SendDocumentMetadata')).properties.recipient).toEqual(strip(shared.get('SendDocumentRequest')).properties.recipient);
    const attachment = shared.get('Attachment')!;
    const metadata = shared.get('AttachmentMetadata')!;
    expect(Object.keys(metadata.properties)).toEqual(Object.keys(attachment.properties).filter((k) => k !== 'content'));
  });

  it('checks file names and builds download headers without echoing raw bytes', () => {
    expect(fileNameProblem('заявление.pdf')).toBeUndefined();
    expect(fileNameProblem('a'.repeat(256))).toMatch(/255 bytes/);
    expect(fileNameProblem('я'.repeat(128))).toMatch(/255 bytes/); // 256 bytes of UTF-8
    expect(fileNameProblem('\ud800.txt')).toMatch(/well-formed/);
    const header = contentDisposition('evil"\r\nSet-Cookie: x=1.txt');
    expect(header).not.toMatch(/[\r\n]/);
    expect(header).toMatch(/^attachment; filename="[A-Za-z0-9._ ()-]+"; filename\*=UTF-8''[A-Za-z0-9%._~!-]+$/);
  });

  it('reads the api section with its limits, refusing bad values by path', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'api-config-'));
    const write = (api: unknown) => { const file = path.join(dir, 'c.json'); fs.writeFileSync(file, JSON.stringify({ api })); return file; };
    try {
      const config = loadConfig({ file: write({ maxJsonBytes: 2048, stuckAfterSeconds: 60 }), env: {} });
      expect(config.api).toMatchObject({ enabled: true, docs: true, maxJsonBytes: 2048, stuckAfterSeconds: 60, maxUploadBytes: 256 * 1024 * 1024 });
      expect(() => loadConfig({ file: write({ maxJsonBytes: 10 }), env: {} })).toThrow(/\$\.api\.maxJsonBytes/);
      expect(() => loadConfig({ file: write({ maxBodyBytes: 10 }), env: {} })).toThrow(/\$\.api\.maxBodyBytes: unknown key/);
      expect(() => loadConfig({ file: write({ defaultPageSize: 600, maxPageSize: 500 }), env: {} })).toThrow(/defaultPageSize/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
