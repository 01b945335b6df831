import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/api-keys.ts';
import { freePort } from '../src/devtools/redis-server.ts';
import { startEjournalSimulator, type EjournalSimulator } from '../src/simulators/ejournal-simulator.ts';
import { startSsevSimulator, type SsevSimulator } from '../src/simulators/ssev-simulator.ts';
import { documentGuidOf } from '../src/ssev/index.ts';
import type { WebhookBody } from '../src/webhooks/index.ts';
import { eventually, startTwoGateways, type TwoGateways } from './support/gateways.ts';

/**
 * SSEV and eJournal together in a real gateway (createGateway via startTwoGateways: Алфа has both enabled, Бета is
 * only there as the SEOS peer the helper brings): real Redis and SQLite, the SSEV simulator and the eJournal
 * simulator over HTTP on loopback, a records system receiving webhooks. Covers issue 6's "delivery (the recipient
 * opened the message) becomes a status change of the sent document, a webhook, and an eJournal DELIVERED event when
 * the document has an RNU", and the eJournal RECEIVED event of an SSEV message received with an RNU.
 *
 * Lifecycle mapping (src/ejournal/listener.ts, src/config/ejournal-defaults.ts): an SSEV document we sent reaching
 * SENT is `ssev.sent` → RESULT_SENT; reaching DELIVERED is `ssev.delivered` → DELIVERED; an SSEV message received is
 * `ssev.received` → RECEIVED; the records system registering it is `seos.registered` → REGISTERED (channel ssev).
 */
const MUNICIPALITY = 100;
const PERSON = { profileId: 201, kind: 'person' as const, identifier: '7501010010', name: 'Иван Петров Иванов' };
const APPLICANT = { profileId: 204, kind: 'person' as const, identifier: '8502020020', name: 'Мария Георгиева Петрова' };
const REST_IDENTITY = { clientOid: '2.16.100.1.1.1.1.13', clientCn: 'seos-gateway.alfa.example', operatorId: '7001010001' };

let net: TwoGateways;
let ssevSim: SsevSimulator;
let ejSim: EjournalSimulator;
let recordsSystem: http.Server;
let pushUrl = '';
const hooks: WebhookBody[] = [];
let key = '';
let seq = 0;
const rnu = (tag: string) => `BGEM-${tag}-${process.pid}-${++seq}`;

beforeAll(async () => {
  ssevSim = await startSsevSimulator({
    profiles: [{ profileId: MUNICIPALITY, kind: 'institution', identifier: '000000001', name: 'Община Алфа' }, PERSON, APPLICANT],
    restClients: [{ clientId: 'alfa-gateway', clientSecret: 'демо-secret', ...REST_IDENTITY, profileId: MUNICIPALITY }],
  });
  ejSim = await startEjournalSimulator({ batchPath: '/v1/events/batch' });
  const hookPort = await freePort();
  recordsSystem = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hooks.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookBody);
      res.writeHead(204).end();
    });
  }).listen(hookPort, '127.0.0.1');
  net = await startTwoGateways({
    extraConfig: {
      alfa: {
        webhooks: [{ id: 'records', url: `http://127.0.0.1:${hookPort}/hook`, secret: 'records-system-hook-secret-1', events: ['document.received', 'document.status'], allowInsecureHttp: true }],
        ssev: {
          enabled: true, client: 'rest', allowInsecureHttp: true, connectTimeoutMs: 1000, responseTimeoutMs: 5000,
          // Inbox polling every second (the "push lost" case); no scheduled sent-status polling: delivery comes by push.
          pollIntervalMs: 1000, statusPollIntervalMs: 3600_000,
          rest: {
            baseUrl: ssevSim.url, tokenUrl: ssevSim.tokenUrl, clientId: 'alfa-gateway', clientSecret: 'демо-secret', templateId: 1,
            identity: { clientOid: REST_IDENTITY.clientOid, clientCn: REST_IDENTITY.clientCn, operatorId: REST_IDENTITY.operatorId },
          },
        },
        ejournal: {
          enabled: true, defaultServiceCode: '2079',
          endpoint: { url: ejSim.url, allowInsecureHttp: true, timeoutMs: 5000, batch: { path: '/v1/events/batch', maxEvents: 50 } },
          oauth: { tokenUrl: ejSim.tokenUrl, clientId: 'gateway', clientSecret: 'gateway-secret' },
          ordering: { parkMs: 20_000, shortDeferMs: 20 },
        },
      },
    },
  });
  pushUrl = `http://127.0.0.1:${net.alfa.seosPort}/ssev/push`;
  ssevSim.setPushUrl(MUNICIPALITY, pushUrl);
  key = createApiKey(net.alfa.gateway.db, { name: 'archimed', role: 'connector' }).key;
}, 90_000);

afterAll(async () => {
  await net?.stop();
  await ssevSim?.close();
  await ejSim?.close();
  await new Promise((resolve) => (recordsSystem ? recordsSystem.close(resolve) : resolve(undefined)));
});

// ── helpers ──

interface Answer { status: number; json: any; text: string }

async function call(method: string, url: string, json?: unknown): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (json !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`http://127.0.0.1:${net.alfa.apiPort}${url}`, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  const text = await response.text();
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: response.status, json: parsed, text };
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

/** The gateway's own record of the events of one RNU: (status, lifecycle, delivery state), in sequence order. */
function gatewayEvents(r: string) {
  return net.alfa.gateway.db.prepare('SELECT status, lifecycle, state, document_id AS documentId FROM ejournal_events WHERE rnu = ? ORDER BY rnu_seq').all(r) as
    Array<{ status: string; lifecycle: string | null; state: string; documentId: string | null }>;
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ── sending: SENT, then DELIVERED ──

describe('an SSEV document with an RNU reports its stages to eJournal', () => {
  it('to a person by ЕГН: SSEV chosen → RESULT_SENT; recipient opens → DELIVERED document, webhook, eJournal DELIVERED; each event once, in order; the timeline shows both delivered', async () => {
    const r = rnu('SSEV-OUT');
    const posted = await call('POST', '/v1/documents', {
      recipient: PERSON.identifier, rnu: r, externalId: `ssev-ej-${r}`,
      document: { kind: 'Уведомление', about: 'Решение по заявление', attachments: [{ fileName: 'решение.pdf', mimeType: 'application/pdf', content: Buffer.from('%PDF решение').toString('base64') }] },
      comment: 'Уважаеми г-н Иванов, изпращаме Ви решението.',
    });
    expect(posted.status, posted.text).toBe(201);
    expect(posted.json).toMatchObject({ created: true, channel: 'ssev', channelReason: { code: 'ssev-person' } });
    const id = posted.json.id as string;

    // SENT: the ssev.sent stage reaches eJournal as RESULT_SENT, and nothing else yet.
    const sent = await documentAt(id, 'SENT');
    await eventually(() => ejSim.events(r).length >= 1, 'RESULT_SENT at eJournal');
    expect(ejSim.events(r).map((e) => e.status)).toEqual(['RESULT_SENT']);

    // The recipient opens the message: SSEV pushes Delivered; the gateway confirms with SSEV and marks DELIVERED.
    ssevSim.openAsRecipient(sent.ssev.messageId);
    const delivered = await documentAt(id, 'DELIVERED');
    expect(delivered.history.map((h: { status: string }) => h.status)).toEqual(['PENDING', 'SENT', 'DELIVERED']);
    const hook = await eventually(() => hooks.find((h) => h.type === 'document.status' && h.data.documentId === id && h.data.status === 'DELIVERED'), 'DELIVERED webhook');
    expect(hook.data).toMatchObject({ channel: 'ssev', previousStatus: 'SENT', rnu: r });
    await eventually(() => ejSim.events(r).length >= 2, 'DELIVERED at eJournal');

    // SSEV repeats the notification, and the records system asks again: neither may raise a second DELIVERED.
    const repeatPush = await fetch(pushUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ EventType: 'Delivered', MessageId: sent.ssev.messageId }) });
    expect(repeatPush.status).toBeLessThan(300);
    const asked = await call('POST', `/v1/documents/${id}/request-status`);
    expect(asked.json).toMatchObject({ id, status: 'DELIVERED' });
    await ssevSim.flushPushes();
    await settle(1500);

    // At eJournal: exactly these two, in this order, for this RNU, with the channel and administration; no order violation.
    const received = ejSim.events(r);
    expect(received.map((e) => e.status)).toEqual(['RESULT_SENT', 'DELIVERED']);
    for (const e of received) expect(e).toMatchObject({ rnu: r, channel: 'ssev', administration: '000000001', serviceCode: '2079' });
    expect(Date.parse(received[0].occurredAt)).toBeLessThanOrEqual(Date.parse(received[1].occurredAt));
    expect(ejSim.orderViolations().filter((v) => v.rnu === r)).toEqual([]);

    // In the gateway: each stage recorded once, tied to the document, delivered.
    await eventually(() => gatewayEvents(r).every((e) => e.state === 'delivered'), 'both events delivered in the gateway');
    expect(gatewayEvents(r)).toEqual([
      { status: 'RESULT_SENT', lifecycle: 'ssev.sent', state: 'delivered', documentId: id },
      { status: 'DELIVERED', lifecycle: 'ssev.delivered', state: 'delivered', documentId: id },
    ]);
    expect(hooks.filter((h) => h.type === 'document.status' && h.data.documentId === id && h.data.status === 'DELIVERED')).toHaveLength(1);

    // GET /v1/services/{rnu}: the timeline with both events delivered.
    const timeline = await call('GET', `/v1/services/${encodeURIComponent(r)}`);
    expect(timeline.status, timeline.text).toBe(200);
    expect(timeline.json).toMatchObject({ rnu: r, lastDelivered: { status: 'DELIVERED' } });
    expect(timeline.json.events.map((e: any) => [e.status, e.lifecycle, e.channel, e.source, e.documentId, e.delivery.state, e.delivery.duplicate])).toEqual([
      ['RESULT_SENT', 'ssev.sent', 'ssev', 'gateway', id, 'delivered', false],
      ['DELIVERED', 'ssev.delivered', 'ssev', 'gateway', id, 'delivered', false],
    ]);
  });

  it('an SSEV document without an RNU raises no eJournal event', async () => {
    const before = ejSim.stats.posts;
    const count = () => (net.alfa.gateway.db.prepare('SELECT COUNT(*) AS n FROM ejournal_events').get() as { n: number }).n;
    const eventsBefore = count();
    const posted = await call('POST', '/v1/documents', { recipient: PERSON.identifier, externalId: `no-rnu-${process.pid}`, document: { kind: 'Писмо', about: 'Без РНУ' }, comment: 'Текст' });
    expect(posted.status, posted.text).toBe(201);
    const sent = await documentAt(posted.json.id, 'SENT');
    ssevSim.openAsRecipient(sent.ssev.messageId);
    await documentAt(posted.json.id, 'DELIVERED');
    await settle(500);
    expect(count()).toBe(eventsBefore);
    expect(ejSim.stats.posts).toBe(before);
  });
});

// ── receiving ──

describe('an SSEV message received with an RNU reports RECEIVED to eJournal', () => {
  /**
   * The inbox (src/ssev/inbox.ts) stores the message's `rnu` on the document. SSEV keeps its own RNU for every message
   * (a fresh GUID, protocols.md §4.3; the simulator does the same), so the RNU the document carries, and eJournal
   * hears about, is SSEV's, not what the sender asked for.
   */
  async function receivedWithRnu(push: boolean) {
    if (!push) ssevSim.setPushUrl(MUNICIPALITY, undefined);
    try {
      const messageId = ssevSim.sendToInbox({ from: APPLICANT.profileId, to: MUNICIPALITY, subject: 'Заявление за услуга', text: 'Моля за удостоверение.', rnu: rnu('ASKED') });
      const ssevRnu = ssevSim.message(messageId)!.rnu;
      const hook = await eventually(() => hooks.find((h) => h.type === 'document.received' && h.data.documentGuid === documentGuidOf(messageId)), push ? 'taken by push' : 'taken by polling', 15_000);
      return { messageId, ssevRnu, id: hook.data.documentId as string, hook };
    } finally {
      if (!push) ssevSim.setPushUrl(MUNICIPALITY, pushUrl);
    }
  }

  it('by push: the document carries SSEV\'s RNU; RECEIVED (channel ssev) reaches eJournal once; registering it adds REGISTERED after it', async () => {
    const { messageId, ssevRnu, id } = await receivedWithRnu(true);
    const requested = ssevSim.message(messageId)!.requestedRnu!;
    const view = await call('GET', `/v1/documents/${id}`);
    expect(view.json).toMatchObject({ direction: 'in', channel: 'ssev', rnu: ssevRnu });

    await eventually(() => ejSim.events(ssevRnu).length >= 1, 'RECEIVED at eJournal');
    expect(ejSim.events(ssevRnu)[0]).toMatchObject({ status: 'RECEIVED', channel: 'ssev', administration: '000000001' });
    expect(ejSim.events(requested)).toEqual([]);

    const registered = await call('POST', `/v1/inbox/${id}/status`, { status: 'registered', number: 'ОА-94-00-7', date: '2026-03-02' });
    expect(registered.status, registered.text).toBe(200);
    await eventually(() => ejSim.events(ssevRnu).length >= 2, 'REGISTERED at eJournal');
    await settle(1500); // polling sees the message again every second: it must not be taken (or reported) twice
    expect(ejSim.events(ssevRnu).map((e) => e.status)).toEqual(['RECEIVED', 'REGISTERED']);
    expect(ejSim.events(ssevRnu)[1]).toMatchObject({ channel: 'ssev', documentRegNumber: 'ОА-94-00-7' });
    expect(ejSim.orderViolations().filter((v) => v.rnu === ssevRnu)).toEqual([]);
    expect(gatewayEvents(ssevRnu)).toEqual([
      { status: 'RECEIVED', lifecycle: 'ssev.received', state: 'delivered', documentId: id },
      { status: 'REGISTERED', lifecycle: 'seos.registered', state: 'delivered', documentId: id },
    ]);
  });

  it('by inbox polling (push lost): RECEIVED reaches eJournal once', async () => {
    const { ssevRnu, id } = await receivedWithRnu(false);
    await eventually(() => ejSim.events(ssevRnu).length >= 1, 'RECEIVED at eJournal');
    await settle(1500);
    expect(ejSim.events(ssevRnu).map((e) => [e.status, e.channel])).toEqual([['RECEIVED', 'ssev']]);
    expect(gatewayEvents(ssevRnu)).toEqual([{ status: 'RECEIVED', lifecycle: 'ssev.received', state: 'delivered', documentId: id }]);
  });
});
