import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/api-keys.ts';
import { entriesForDocument, listAttempts } from '../src/delivery/outbox.ts';
import { freePort } from '../src/devtools/redis-server.ts';
import { startSsevSimulator, type SsevSimulator } from '../src/simulators/ssev-simulator.ts';
import { documentGuidOf } from '../src/ssev/index.ts';
import type { WebhookBody } from '../src/webhooks/index.ts';
import { eventually, startTwoGateways, type Municipality, type TwoGateways } from './support/gateways.ts';

/**
 * SSEV wired into the running gateway: two real gateways from createGateway (Алфа with SSEV, Бета a SEOS peer),
 * real Redis and SQLite files, the SSEV simulator over HTTP on loopback pushing to Алфа's SEOS listener, and a
 * records system receiving the webhooks. Everything goes through the records-system API with API keys.
 */
const MUNICIPALITY = 100;
const PERSON = { profileId: 201, kind: 'person' as const, identifier: '7501010010', name: 'Иван Петров Иванов' };
const COMPANY = { profileId: 202, kind: 'legal-entity' as const, identifier: '121212121', name: 'Строй Инвест ЕООД' };
const BETA_SSEV = { profileId: 203, kind: 'institution' as const, identifier: '000000002', name: 'Община Бета' };
const APPLICANT = { profileId: 204, kind: 'person' as const, identifier: '8502020020', name: 'Мария Георгиева Петрова' };
const NO_PROFILE_EGN = '9005051239'; // a valid ЕГН nobody registered in SSEV
const REST_IDENTITY = { clientOid: '2.16.100.1.1.1.1.13', clientCn: 'seos-gateway.alfa.example', operatorId: '7001010001' };
const HOOK_SECRET = 'records-system-hook-secret-1';
const LIMITS = { maxJsonBytes: 256 * 1024, maxUploadBytes: 1024 * 1024, maxAttachments: 20, defaultPageSize: 20, maxPageSize: 50 };
const SSEV_MAX_FILE = 8 * 1024;

let net: TwoGateways;
let sim: SsevSimulator;
let recordsSystem: http.Server;
const hooks: WebhookBody[] = [];
let key = '';

beforeAll(async () => {
  sim = await startSsevSimulator({
    profiles: [{ profileId: MUNICIPALITY, kind: 'institution', identifier: '000000001', name: 'Община Алфа' }, PERSON, COMPANY, BETA_SSEV, APPLICANT],
    restClients: [{ clientId: 'alfa-gateway', clientSecret: 'демо-secret', ...REST_IDENTITY, profileId: MUNICIPALITY }],
  });
  const hookPort = await freePort();
  recordsSystem = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookBody);
      res.writeHead(204).end();
    });
  }).listen(hookPort, '127.0.0.1');
  net = await startTwoGateways({    extraConfig: {
      alfa: {
        api: LIMITS,
        webhooks: [{ id: 'records', url: `http://127.0.0.1:${hookPort}/hook`, secret: HOOK_SECRET, events: ['document.received', 'document.status', 'delivery.failed'], allowInsecureHttp: true }],
        ssev: {
          enabled: true, client: 'rest', allowInsecureHttp: true, connectTimeoutMs: 1000, responseTimeoutMs: 5000,
          pollIntervalMs: 1000, statusPollIntervalMs: 3600_000,
          limits: { maxAttachmentBytes: SSEV_MAX_FILE },
          rest: {
            baseUrl: sim.url, tokenUrl: sim.tokenUrl, clientId: 'alfa-gateway', clientSecret: 'демо-secret', templateId: 1,
            identity: { clientOid: REST_IDENTITY.clientOid, clientCn: REST_IDENTITY.clientCn, operatorId: REST_IDENTITY.operatorId },
          },
        },
      },
      beta: { api: LIMITS },
    },
  });
  // SSEV pushes to the push endpoint on Алфа's SEOS listener (the default ssev.pushListener).
  sim.setPushUrl(MUNICIPALITY, `http://127.0.0.1:${net.alfa.seosPort}/ssev/push`);
  key = createApiKey(net.alfa.gateway.db, { name: 'archimed', role: 'connector' }).key;
}, 90_000);

afterAll(async () => {
  await net?.stop();
  await sim?.close();
  recordsSystem?.close();
});

// ── helpers ──

interface Answer { status: number; json: any; text: string }

async function call(method: string, url: string, options: { json?: unknown; body?: BodyInit; m?: Municipality } = {}): Promise<Answer> {
  const m = options.m ?? net.alfa;
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  let body = options.body;
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.json);
  }
  const response = await fetch(`http://127.0.0.1:${m.apiPort}${url}`, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: response.status, json, text };
}

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');

function send(recipient: string, overrides: Record<string, unknown> = {}, document: Record<string, unknown> = {}) {
  return call('POST', '/v1/documents', {
    json: {
      recipient,
      document: { kind: 'Уведомление', about: 'Решение по заявление', attachments: [{ fileName: 'решение.pdf', mimeType: 'application/pdf', content: b64('%PDF решение') }], ...document },
      comment: 'Уважаеми г-н Иванов, изпращаме Ви решението.',
      ...overrides,
    },
  });
}

async function documentAt(id: string, status: string): Promise<any> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await call('GET', `/v1/documents/${id}`);
    if (r.status === 200 && r.json.status === status) return r.json;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${status}: last ${r.status} ${r.json?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** What a refused request must leave as it was. */
function counts() {
  const db = net.alfa.gateway.db;
  const n = (sql: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${sql}`).get() as { n: number }).n;
  return {
    // Deliveries of earlier documents keep adding attempts, replies and log entries meanwhile: count what acceptance adds.
    documents: n('documents'), attachments: n('attachments'), outbox: n("outbox WHERE kind IN ('seos-document', 'ssev-message')"),
    accepted: n("delivery_log WHERE json_extract(entry_json, '$.type') = 'message-queued'"),
    ssevProfiles: n('ssev_profiles'), simMessages: sim.messages().length,
  };
}

function multipart(metadata: unknown, files: Array<{ name: string; type: string; bytes: Buffer }>): FormData {
  const form = new FormData();
  form.append('metadata', JSON.stringify(metadata));
  for (const f of files) form.append('file', new Blob([new Uint8Array(f.bytes)], { type: f.type }), f.name);
  return form;
}

// ── sending ──

describe('sending over SSEV through the records-system API', () => {
  it('to a person by ЕГН: SSEV chosen with its reason, delivered in the simulator, opened → DELIVERED → webhook; GET shows the SSEV status and delivery time', async () => {
    const r = await send(PERSON.identifier, { externalId: 'ssev-person-1', rnu: 'BGEM-RNU-0001' });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ created: true, status: 'PENDING', channel: 'ssev', messageGuid: '', channelReason: { code: 'ssev-person' } });
    expect(r.json.channelReason.bg).toMatch(/физическо лице/);

    const sent = await documentAt(r.json.id, 'SENT');
    expect(sent.channel).toBe('ssev');
    expect(sent.ssev).toMatchObject({ api: 'rest', state: 'sent', deliveredAt: null });
    const m = sim.message(sent.ssev.messageId)!;
    expect(m.recipientProfileIds).toEqual([PERSON.profileId]);
    expect(m.subject).toBe('Решение по заявление');
    expect(m.text).toContain('изпращаме Ви решението');
    expect(m.files.map((f) => [f.fileName, f.bytes.toString()])).toEqual([['решение.pdf', '%PDF решение']]);

    sim.openAsRecipient(m.messageId); // SSEV pushes Delivered to our SEOS listener; the gateway confirms with SSEV
    const delivered = await documentAt(r.json.id, 'DELIVERED');
    expect(delivered.ssev.state).toBe('delivered');
    expect(delivered.ssev.deliveredAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(delivered.history.map((h: { status: string }) => h.status)).toEqual(['PENDING', 'SENT', 'DELIVERED']);
    expect(delivered.channelReason.code).toBe('ssev-person');

    const hook = await eventually(() => hooks.find((h) => h.type === 'document.status' && h.data.documentId === r.json.id && h.data.status === 'DELIVERED'), 'DELIVERED webhook');
    expect(hook.data).toMatchObject({ channel: 'ssev', previousStatus: 'SENT', rnu: 'BGEM-RNU-0001', externalId: 'ssev-person-1' });
    expect(hooks.some((h) => h.type === 'document.status' && h.data.documentId === r.json.id && h.data.status === 'SENT')).toBe(true);

    // A repeat answers with the first result and sends nothing more.
    const before = sim.messages().length;
    const again = await send(PERSON.identifier, { externalId: 'ssev-person-1', rnu: 'BGEM-RNU-0001' });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ id: r.json.id, created: false, channel: 'ssev', status: 'DELIVERED', channelReason: { code: 'ssev-person' } });
    expect(sim.messages().length).toBe(before);
  });

  it('to a company by ЕИК that is not in SEOS, as a multipart upload; request-status asks SSEV whether it was opened', async () => {
    const file = Buffer.alloc(3000, 7);
    const r = await call('POST', '/v1/documents/multipart', {
      body: multipart({ recipient: COMPANY.identifier, document: { kind: 'Писмо', about: 'Покана', id: { number: { docNumber: 'ОА-77', docDate: '2026-03-01' } } } }, [{ name: 'покана.pdf', type: 'application/pdf', bytes: file }]),
    });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({ channel: 'ssev', channelReason: { code: 'ssev-not-in-seos' } });
    const sent = await documentAt(r.json.id, 'SENT');
    expect(sent).toMatchObject({ ourNumber: 'ОА-77', counterparty: { eik: COMPANY.identifier, name: COMPANY.name } });
    const m = sim.message(sent.ssev.messageId)!;
    expect(m.recipientProfileIds).toEqual([COMPANY.profileId]);
    expect(m.files[0].bytes.equals(file)).toBe(true);

    // Opened while pushes are lost: request-status asks SSEV at once.
    expect((await call('POST', `/v1/documents/${r.json.id}/request-status`)).json).toMatchObject({ id: r.json.id, status: 'SENT' });
    sim.setPushUrl(MUNICIPALITY, undefined);
    try {
      sim.openAsRecipient(m.messageId);
      const asked = await call('POST', `/v1/documents/${r.json.id}/request-status`);
      expect(asked.status, asked.text).toBe(202);
      expect(asked.json).toMatchObject({ id: r.json.id, status: 'DELIVERED', deliveryId: '' });
    } finally {
      sim.setPushUrl(MUNICIPALITY, `http://127.0.0.1:${net.alfa.seosPort}/ssev/push`);
    }
  });

  it('chooses SEOS for a SEOS participant and records why; SSEV when forced; a forced channel that cannot reach the recipient is a coded error', async () => {
    const seos = await send('000000002', {}, { kind: 'Писмо' });
    expect(seos.status, seos.text).toBe(201);
    expect(seos.json).toMatchObject({ channel: 'seos', channelReason: { code: 'seos-participant' } });
    expect(seos.json.messageGuid).toMatch(/^\{[0-9a-f-]{36}\}$/);
    const view = await call('GET', `/v1/documents/${seos.json.id}`);
    expect(view.json).toMatchObject({ channel: 'seos', channelReason: { code: 'seos-participant' } });
    expect(view.json.ssev).toBeUndefined();

    const forced = await send('000000002', { channel: 'ssev' });
    expect(forced.status, forced.text).toBe(201);
    expect(forced.json).toMatchObject({ channel: 'ssev', channelReason: { code: 'forced-ssev' } });
    const m = await documentAt(forced.json.id, 'SENT');
    expect(sim.message(m.ssev.messageId)!.recipientProfileIds).toEqual([BETA_SSEV.profileId]);

    const before = counts();
    const refused: Array<[Answer, number, string]> = [
      [await send(PERSON.identifier, { channel: 'seos' }), 400, 'GW_ERR_SSEV_INVALID_RECIPIENT'], // SEOS reaches administrations only
      [await send('{0b2e0000-0000-4000-8000-000000000002}', { channel: 'ssev' }), 400, 'GW_ERR_SSEV_INVALID_RECIPIENT'], // SSEV has no GUIDs
      [await send(COMPANY.identifier, { channel: 'seos' }), 404, 'GW_ERR_PARTICIPANT_NOT_FOUND'],
      [await send('999999999'), 422, 'GW_ERR_SSEV_NO_CHANNEL'],
      [await send(NO_PROFILE_EGN), 422, 'GW_ERR_SSEV_NO_CHANNEL'],
      [await send('999999999', { channel: 'ssev' }), 404, 'GW_ERR_SSEV_NO_PROFILE'],
    ];
    for (const [answer, status, code] of refused) {
      expect(answer.status, answer.text).toBe(status);
      expect(answer.json.code).toBe(code);
      expect(answer.json.message).toBeTruthy();
    }
    const after = counts();
    expect({ ...after, ssevProfiles: 0 }).toEqual({ ...before, ssevProfiles: 0 }); // (a lookup may cache a profile, nothing else)
  });
});

describe('a gateway without SSEV, and the metrics', () => {
  it('refuses a person or a forced SSEV with GW_ERR_SSEV_NOT_CONFIGURED (nothing stored) and still sends by ЕИК over SEOS', async () => {
    const betaKey = createApiKey(net.beta.gateway.db, { name: 'archimed', role: 'connector' }).key;
    const post = (json: unknown) => fetch(`http://127.0.0.1:${net.beta.apiPort}/v1/documents`, {
      method: 'POST', headers: { authorization: `Bearer ${betaKey}`, 'content-type': 'application/json' }, body: JSON.stringify(json),
    });
    const documents = () => (net.beta.gateway.db.prepare('SELECT COUNT(*) AS n FROM documents').get() as { n: number }).n;
    const before = documents();
    for (const body of [{ recipient: PERSON.identifier, document: { kind: 'Писмо', about: 'x' } }, { recipient: '000000001', channel: 'ssev', document: { kind: 'Писмо' } }]) {
      const r = await post(body);
      expect(r.status).toBe(422);
      expect((await r.json()).code).toBe('GW_ERR_SSEV_NOT_CONFIGURED');
    }
    expect(documents()).toBe(before);
    const seos = await post({ recipient: '000000001', document: { kind: 'Писмо', about: 'До Алфа' } });
    expect(seos.status).toBe(201);
    expect(await seos.json()).toMatchObject({ channel: 'seos', created: true });
    expect(net.beta.gateway.ssev).toBeUndefined();
  });

  it('counts documents accepted for and received over SSEV by channel', async () => {
    const text = await (await fetch(`http://127.0.0.1:${net.alfa.apiPort}/metrics`)).text();
    expect(text).toMatch(/seos_gateway_documents_accepted_total\{channel="ssev"\} [1-9]/);
    expect(text).toMatch(/seos_gateway_documents_accepted_total\{channel="seos"\} [1-9]/);
  });
});

// ── bad inputs at the new boundaries ──

describe('bad inputs are refused with a coded 4xx and change nothing', () => {
  it('malformed ЕГН/ЕИК, an unknown channel, oversize or too many files for SSEV, a subject SSEV cannot carry', async () => {
    const warmUp = await send(PERSON.identifier, { externalId: 'warm-up-profile' }); // the person's profile is now known
    await documentAt(warmUp.json.id, 'SENT');
    const before = counts();
    const big = { fileName: 'голям.pdf', mimeType: 'application/pdf', content: b64(Buffer.alloc(SSEV_MAX_FILE + 1, 1)) };
    const eleven = Array.from({ length: 11 }, (_, i) => ({ fileName: `f${i}.pdf`, mimeType: 'application/pdf', content: b64(`файл ${i}`) }));
    const cases: Array<[Answer, number, string]> = [
      [await send('7501010011'), 400, 'GW_ERR_SSEV_INVALID_RECIPIENT'], // wrong check digit: perhaps someone else's ЕГН
      [await send('75010100'), 400, 'GW_ERR_API_VALIDATION'],
      [await send('75010100101'), 400, 'GW_ERR_API_VALIDATION'],
      [await send('12345678901234'), 400, 'GW_ERR_API_VALIDATION'],
      [await send(PERSON.identifier, { channel: 'email' }), 400, 'GW_ERR_API_VALIDATION'],
      [await send(PERSON.identifier, {}, { attachments: [big] }), 413, 'GW_ERR_SSEV_TOO_LARGE'],
      [await send(PERSON.identifier, {}, { attachments: eleven }), 413, 'GW_ERR_SSEV_TOO_MANY_ATTACHMENTS'],
      [await send(PERSON.identifier, {}, { about: 'О'.repeat(256) }), 400, 'GW_ERR_SSEV_INVALID_INPUT'],
      [await send(PERSON.identifier, { comment: undefined }, { attachments: [] }), 400, 'GW_ERR_SSEV_INVALID_INPUT'], // nothing to send
    ];
    const oversize = Buffer.alloc(SSEV_MAX_FILE + 1, 2);
    const multipartOversize = await call('POST', '/v1/documents/multipart', {
      body: multipart({ recipient: PERSON.identifier, document: { kind: 'Писмо', about: 'Голям файл' } }, [{ name: 'голям.pdf', type: 'application/pdf', bytes: oversize }]),
    });
    cases.push([multipartOversize, 413, 'GW_ERR_SSEV_TOO_LARGE']);
    // The upload was streamed to the spool before SSEV's limit could be checked; the refusal removed it again.
    expect(net.alfa.gateway.spool.has(createHash('sha256').update(oversize).digest('hex'))).toBe(false);
    for (const [answer, status, code] of cases) {
      expect(answer.status, answer.text).toBe(status);
      expect(answer.json.code, answer.text).toBe(code);
    }
    expect(counts()).toEqual(before);
  });
});

// ── receiving ──

describe('receiving from SSEV into the same inbox', () => {
  it('a Received push takes the message: inbox, document.received webhook, attachments, ack; taken once; a status is recorded, not sent', async () => {
    const pdf = Buffer.from('%PDF заявление за достъп до информация');
    const messageId = sim.sendToInbox({ from: APPLICANT.profileId, to: MUNICIPALITY, subject: 'Заявление по ЗДОИ', text: 'Моля да ми предоставите информация.', files: [{ fileName: 'заявление.pdf', bytes: pdf, contentType: 'application/pdf' }] });
    const documentGuid = documentGuidOf(messageId);
    const hook = await eventually(() => hooks.find((h) => h.type === 'document.received' && h.data.documentGuid === documentGuid), 'document.received webhook');
    expect(hook.data).toMatchObject({ channel: 'ssev', direction: 'in', status: 'DS_WAIT_REGISTRATION', counterparty: { name: APPLICANT.name } });
    const id = hook.data.documentId as string;

    const list = await call('GET', '/v1/inbox?acknowledged=false&limit=50');
    expect(list.json.items.some((i: { id: string }) => i.id === id)).toBe(true);
    const item = await call('GET', `/v1/inbox/${id}`);
    expect(item.status, item.text).toBe(200);
    expect(item.json).toMatchObject({ about: 'Заявление по ЗДОИ', status: 'DS_WAIT_REGISTRATION', attachmentCount: 2 });
    expect(item.json.attachments.map((a: { fileName: string }) => a.fileName)).toEqual(['message.txt', 'заявление.pdf']);
    const file = await fetch(`http://127.0.0.1:${net.alfa.apiPort}/v1/inbox/${id}/attachments/2`, { headers: { authorization: `Bearer ${key}` } });
    expect(Buffer.from(await file.arrayBuffer()).equals(pdf)).toBe(true);
    const view = await call('GET', `/v1/documents/${id}`);
    expect(view.json.ssev).toMatchObject({ messageId, state: 'stored' });

    const ack = await call('POST', `/v1/inbox/${id}/ack`);
    expect(ack.json).toMatchObject({ id, alreadyAcknowledged: false });
    expect((await call('POST', `/v1/inbox/${id}/ack`)).json).toMatchObject({ alreadyAcknowledged: true });

    const registered = await call('POST', `/v1/inbox/${id}/status`, { json: { status: 'registered', number: 'ОА-94-00-1', date: '2026-03-02' } });
    expect(registered.status, registered.text).toBe(200);
    expect(registered.json).toMatchObject({ status: 'DS_REGISTERED', repeated: false, senderNotified: false });
    expect((await call('POST', `/v1/inbox/${id}/status`, { json: { status: 'registered', number: 'ОА-94-00-1', date: '2026-03-02' } })).json.repeated).toBe(true);
    expect((await call('GET', `/v1/documents/${id}`)).json).toMatchObject({ status: 'DS_REGISTERED', ourNumber: 'ОА-94-00-1' });

    // Polling (every second) sees the same message again and takes nothing twice.
    await new Promise((r) => setTimeout(r, 2500));
    const n = net.alfa.gateway.db.prepare("SELECT COUNT(*) AS n FROM documents WHERE direction = 'in' AND document_guid = ?").get(documentGuid) as { n: number };
    expect(n.n).toBe(1);
    expect(hooks.filter((h) => h.type === 'document.received' && h.data.documentGuid === documentGuid)).toHaveLength(1);
    const metrics = await (await fetch(`http://127.0.0.1:${net.alfa.apiPort}/metrics`)).text();
    expect(metrics).toMatch(/seos_gateway_documents_received_total\{channel="ssev"\} [1-9]/);
  });

  it('inbox polling takes a message whose push was lost', async () => {
    sim.setPushUrl(MUNICIPALITY, undefined);
    try {
      const messageId = sim.sendToInbox({ from: APPLICANT.profileId, to: MUNICIPALITY, subject: 'Сигнал', text: 'Текст на сигнала' });
      await eventually(() => hooks.find((h) => h.type === 'document.received' && h.data.documentGuid === documentGuidOf(messageId)), 'taken by polling', 10_000);
    } finally {
      sim.setPushUrl(MUNICIPALITY, `http://127.0.0.1:${net.alfa.seosPort}/ssev/push`);
    }
  });
});

// ── reliability ──

describe('SSEV down, then back', () => {
  it('a document for a known recipient is accepted, retried while SSEV is down and sent once when it is back; an unknown one is refused (502) and nothing changes', async () => {
    await documentAt((await send(PERSON.identifier, { externalId: 'before-outage' })).json.id, 'SENT'); // token and profile fresh
    sim.setDown(true);
    try {
      const r = await send(PERSON.identifier, { externalId: 'during-outage' });
      expect(r.status, r.text).toBe(201);
      const outbox = entriesForDocument(net.alfa.gateway.db, r.json.id).find((e) => e.kind === 'ssev-message')!;
      await eventually(() => listAttempts(net.alfa.gateway.db, outbox.id).length >= 2, 'two failed attempts');
      expect((await call('GET', `/v1/documents/${r.json.id}`)).json.status).toBe('PENDING');

      // A recipient SSEV was never asked about cannot be routed while SSEV is down: a coded 502, nothing stored.
      sim.addProfile({ profileId: 299, kind: 'legal-entity', identifier: '131313131', name: 'Нова Фирма ООД' });
      const before = counts();
      const unknown = await send('131313131');
      expect(unknown.status, unknown.text).toBe(502);
      expect(unknown.json.code).toBe('GW_ERR_SSEV_UNAVAILABLE');
      expect(counts()).toEqual(before);

      const messagesBefore = sim.messages().length;
      sim.setDown(false);
      const sent = await documentAt(r.json.id, 'SENT');
      expect(sim.messages().length).toBe(messagesBefore + 1);
      expect(sim.message(sent.ssev.messageId)!.recipientProfileIds).toEqual([PERSON.profileId]);
      const outcomes = listAttempts(net.alfa.gateway.db, outbox.id).map((a) => a.outcome);
      expect(outcomes[outcomes.length - 1]).toBe('delivered');
      expect(outcomes.slice(0, -1).every((o) => o === 'retry:GW_ERR_SSEV_UNAVAILABLE')).toBe(true);
    } finally {
      sim.setDown(false);
    }
  });

  it('retries exhausted: the SSEV channel settles the dead entry (SENT_FAILED, document.status and delivery.failed webhooks)', async () => {
    sim.setDown(true);
    try {
      const r = await send(PERSON.identifier, { externalId: 'dead-entry' });
      expect(r.status, r.text).toBe(201);
      const db = net.alfa.gateway.db;
      const outbox = entriesForDocument(db, r.json.id).find((e) => e.kind === 'ssev-message')!;
      await eventually(() => listAttempts(db, outbox.id).length >= 1, 'a failed attempt');
      // The retry budget almost spent (an attempt settling meanwhile may write its own count back: set it again).
      await eventually(() => {
        db.prepare("UPDATE outbox SET attempts = 19 WHERE id = ? AND state = 'pending' AND attempts < 19").run(outbox.id);
        return db.prepare("SELECT 1 FROM outbox WHERE id = ? AND state = 'dead'").get(outbox.id);
      }, 'dead entry', 20_000);
      const failed = await documentAt(r.json.id, 'SENT_FAILED');
      expect(failed.history.at(-1)).toMatchObject({ status: 'SENT_FAILED', source: 'gateway' });
      await eventually(() => hooks.find((h) => h.type === 'delivery.failed' && h.data.documentId === r.json.id && h.data.kind === 'ssev-message'), 'delivery.failed webhook');
      await eventually(() => hooks.find((h) => h.type === 'document.status' && h.data.documentId === r.json.id && h.data.status === 'SENT_FAILED'), 'SENT_FAILED webhook');
    } finally {
      sim.setDown(false);
    }
  });
});

// ── logs ──

describe('operational logs', () => {
  it('never carry an ЕГН, a person\'s name or the content of an SSEV document, sent or received', async () => {
    const secretText = 'Поверителна медицинска информация за лицето';
    const r = await send(APPLICANT.identifier, { externalId: 'redaction-1', comment: secretText }, { about: `Отговор до ${APPLICANT.name}`, attachments: [{ fileName: `${APPLICANT.name}.pdf`, mimeType: 'application/pdf', content: b64(secretText) }] });
    expect(r.status, r.text).toBe(201);
    await documentAt(r.json.id, 'SENT');
    // Refused requests must not leak the value either.
    await send('8502020021');
    await send(NO_PROFILE_EGN);
    await send(APPLICANT.identifier, { channel: 'seos' });
    const messageId = sim.sendToInbox({ from: APPLICANT.profileId, to: MUNICIPALITY, subject: `Жалба от ${APPLICANT.name}`, text: secretText });
    await eventually(() => hooks.find((h) => h.type === 'document.received' && h.data.documentGuid === documentGuidOf(messageId)), 'received');
    const logs = net.alfa.logs.join('\n');
    expect(logs).toContain('ssev push accepted'); // the SSEV side did log, by ids and codes
    expect(logs).toContain('GW_ERR_SSEV_NO_CHANNEL');
    for (const secret of [APPLICANT.identifier, PERSON.identifier, NO_PROFILE_EGN, '8502020021', APPLICANT.name, PERSON.name, 'Мария', secretText, b64(secretText), REST_IDENTITY.operatorId, 'демо-secret', key]) {
      expect(logs, secret).not.toContain(secret);
    }
  });
});
