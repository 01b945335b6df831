import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../src/api/api-keys.ts';
import { loadConfig } from '../src/config/index.ts';
import { createGateway } from '../src/app/gateway.ts';
import { rnuCarriedBy, additionalDataWithRnu } from '../src/ejournal/carried-rnu.ts';
import { startEjournalSimulator, type EjournalSimulator } from '../src/simulators/ejournal-simulator.ts';
import { eventually, startTwoGateways, type Municipality, type TwoGateways } from './support/gateways.ts';

/**
 * eJournal wired into real gateways: the records-system API over real HTTP on loopback, real Redis and SQLite,
 * two municipalities exchanging SEOS documents that carry an RNU, and the eJournal simulator on loopback (batch
 * form of the contract, carrier-mode delivery jobs).
 */
let net: TwoGateways;
let sim: EjournalSimulator;
const keys = {} as Record<'alfa' | 'alfaOperator' | 'alfaAuditor' | 'beta' | 'betaOperator', string>;
const T0 = Date.parse('2025-03-03T08:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
/** Every RNU a test uses: none of them may ever appear in a log line. */
const usedRnus = new Set<string>();
let rnuSeq = 0;
const rnu = (tag: string) => { const r = `BGEJ-${tag}-${process.pid}-${++rnuSeq}`; usedRnus.add(r); return r; };

beforeAll(async () => {
  sim = await startEjournalSimulator({ batchPath: '/v1/events/batch' });
  const ejournal = {
    enabled: true, defaultServiceCode: '2079',
    endpoint: { url: sim.url, allowInsecureHttp: true, timeoutMs: 5000, batch: { path: '/v1/events/batch', maxEvents: 50 } },
    oauth: { tokenUrl: sim.tokenUrl, clientId: 'gateway', clientSecret: 'gateway-secret' },
    ordering: { parkMs: 20_000, shortDeferMs: 20 },
    delivery: { eventsPerJob: 25, followUpJobs: 4 },
    maxEventsPerRequest: 500,
  };
  net = await startTwoGateways({
    retry: { firstDelayMs: 100, maxAttempts: 4, factor: 1 },
    extraConfig: { alfa: { ejournal, api: { maxPageSize: 100 } }, beta: { ejournal: { ...ejournal, administration: '000000002' } } },
  });
  const make = (m: Municipality, name: string, role: 'connector' | 'operator' | 'auditor') => createApiKey(m.gateway.db, { name, role }).key;
  keys.alfa = make(net.alfa, 'archimed', 'connector');
  keys.alfaOperator = make(net.alfa, 'it-dept', 'operator');
  keys.alfaAuditor = make(net.alfa, 'audit', 'auditor');
  keys.beta = make(net.beta, 'archimed', 'connector');
  keys.betaOperator = make(net.beta, 'it-dept', 'operator');
}, 60_000);

afterAll(async () => {
  await net?.stop();
  await sim?.close();
});

interface Answer { status: number; headers: Headers; text: string; json: any }

async function call(m: Municipality, method: string, url: string, options: { key?: string; json?: unknown; body?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let body = options.body;
  if (options.json !== undefined) body = JSON.stringify(options.json);
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`http://127.0.0.1:${m.apiPort}${url}`, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: response.status, headers: response.headers, text, json };
}
const alfa = (method: string, url: string, options: Parameters<typeof call>[3] = {}) => call(net.alfa, method, url, { key: keys.alfa, ...options });
const beta = (method: string, url: string, options: Parameters<typeof call>[3] = {}) => call(net.beta, method, url, { key: keys.beta, ...options });
const path = (r: string) => `/v1/services/${encodeURIComponent(r)}`;

function counts(m: Municipality) {
  const n = (sql: string) => (m.gateway.db.prepare(`SELECT COUNT(*) AS n FROM ${sql}`).get() as { n: number }).n;
  return { events: n('ejournal_events'), outbox: n("outbox WHERE kind = 'ejournal-event'"), log: n('delivery_log'), rnus: n('ejournal_rnus'), documents: n("documents WHERE rnu IS NOT NULL") };
}

const delivered = (m: Municipality, r: string) => (m.gateway.db.prepare(`SELECT COUNT(*) AS n FROM ejournal_events WHERE rnu = ? AND state = 'delivered'`).get(r) as { n: number }).n;

describe('the records system posts events', () => {
  it('records one event (201), answers a repeat with the stored one (200), delivers it once, and shows it in the timeline', async () => {
    const r = rnu('ONE');
    const first = await alfa('POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: '2025-03-03T10:00:00+02:00', serviceCode: '2079', channel: 'counter' } });
    expect(first.status, first.text).toBe(201);
    expect(first.json).toMatchObject({ rnu: r, status: 'RECEIVED', occurredAt: '2025-03-03T08:00:00.000Z', created: true, sequence: 1, delivery: 'pending' });
    expect(first.headers.get('location')).toBe(path(r));
    const repeat = await alfa('POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: '2025-03-03T08:00:00Z', serviceCode: '2079', channel: 'email' } });
    expect(repeat.status).toBe(200);
    expect(repeat.json).toMatchObject({ id: first.json.id, created: false, differences: ['channel'] });
    await eventually(() => delivered(net.alfa, r) === 1, 'the event delivered');
    expect(sim.events(r)).toHaveLength(1);
    expect(sim.events(r)[0]).toMatchObject({ status: 'RECEIVED', serviceCode: '2079', administration: '000000001', channel: 'counter' });

    const timeline = await call(net.alfa, 'GET', path(r), { key: keys.alfaAuditor });
    expect(timeline.status, timeline.text).toBe(200);
    expect(timeline.json).toMatchObject({ rnu: r, origin: 'given', serviceCode: '2079', lastDelivered: { status: 'RECEIVED' } });
    expect(timeline.json.events).toHaveLength(1);
    expect(timeline.json.events[0]).toMatchObject({ status: 'RECEIVED', source: 'records-system', delivery: { state: 'delivered', attempts: 1, duplicate: false } });
  });

  it('takes an RNU with a slash or Cyrillic letters, percent-encoded in the path', async () => {
    const r = rnu('ПЪТ/2025');
    const posted = await alfa('POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: at(1) } });
    expect(posted.status, posted.text).toBe(201);
    expect(posted.json.rnu).toBe(r);
    await eventually(() => sim.events(r).length === 1, 'delivered with the exact RNU');
    expect((await alfa('GET', path(r))).json.rnu).toBe(r);
  });

  it('records a batch in one request and delivers every event once, in order per RNU, with far fewer requests than events', async () => {
    const rnus = Array.from({ length: 40 }, () => rnu('BATCH'));
    const statuses = ['RECEIVED', 'REGISTERED', 'IN_PROGRESS', 'RESULT_READY', 'RESULT_SENT'];
    // Interleaved and, per RNU, not in time order: the gateway orders by occurredAt.
    const events = statuses.flatMap((status, i) => rnus.map((r) => ({ rnu: r, status, occurredAt: at(100 + (i === 1 ? 10 : i)), serviceCode: '2079', channel: 'portal' })));
    const before = { batches: sim.stats.batches, posts: sim.stats.posts, tokens: sim.stats.tokensIssued };
    const answer = await alfa('POST', '/v1/services/events', { json: { events } });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.json).toMatchObject({ recorded: 200, repeats: 0 });
    expect(answer.json.events).toHaveLength(200);
    await eventually(() => rnus.every((r) => delivered(net.alfa, r) === 5), 'all 200 delivered', 30_000);
    for (const r of rnus) {
      expect(sim.events(r).map((e) => e.occurredAt)).toEqual([at(100), at(102), at(103), at(104), at(110)]);
    }
    expect(sim.orderViolations().filter((v) => rnus.includes(v.rnu))).toEqual([]);
    expect(sim.stats.posts - before.posts).toBe(200); // each event sent once
    expect(sim.stats.batches - before.batches).toBeLessThan(60); // 200 events in batch requests, not 200 requests

    const again = await alfa('POST', '/v1/services/events', { json: { events: events.slice(0, 3) } });
    expect(again.json).toMatchObject({ recorded: 0, repeats: 3 });
  });

  it('counts a period by status, service code and channel, as JSON and CSV', async () => {
    const stats = await call(net.alfa, 'GET', `/v1/statistics/services?from=2025-03-03&to=2025-03-04`, { key: keys.alfaAuditor });
    expect(stats.status, stats.text).toBe(200);
    expect(stats.json.byChannel.portal).toBe(200);
    expect(stats.json.byStatus.RESULT_SENT).toBeGreaterThanOrEqual(40);
    const csv = await alfa('GET', `/v1/statistics/services?from=2025-03-03&to=2025-03-04&format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.text).toContain('channel,portal,200\r\n');
  });
});

describe('bad input is refused with a clear coded error and changes nothing', () => {
  it('at every new route: malformed RNU, oversized body, unknown status, wrong role, unknown fields, bad periods', async () => {
    const r = rnu('BAD');
    const before = counts(net.alfa);
    const cases: Array<[string, Promise<Answer>, number, string, RegExp?]> = [
      ['control character in the RNU', alfa('POST', `/v1/services/AB%01CD/events`, { json: { status: 'RECEIVED', occurredAt: at(1) } }), 400, 'GW_ERR_EJOURNAL_RNU_INVALID', /U\+0001/],
      ['65-character RNU', alfa('POST', `${path('R'.repeat(65))}/events`, { json: { status: 'RECEIVED', occurredAt: at(1) } }), 400, 'GW_ERR_EJOURNAL_RNU_INVALID', /65 characters/],
      ['RNU with a leading space', alfa('POST', `/v1/services/%20R1/events`, { json: { status: 'RECEIVED', occurredAt: at(1) } }), 400, 'GW_ERR_EJOURNAL_RNU_INVALID'],
      ['unknown status', alfa('POST', `${path(r)}/events`, { json: { status: 'ЗАВЪРШЕНА', occurredAt: at(1) } }), 400, 'GW_ERR_EJOURNAL_STATUS_UNKNOWN'],
      ['status in the wrong case', alfa('POST', `${path(r)}/events`, { json: { status: 'received', occurredAt: at(1) } }), 400, 'GW_ERR_EJOURNAL_STATUS_UNKNOWN'],
      ['time without a zone', alfa('POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: '2025-03-03T10:00:00' } }), 400, 'GW_ERR_EJOURNAL_EVENT_INVALID', /occurredAt/],
      ['unknown channel', alfa('POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: at(1), channel: 'pigeon' } }), 400, 'GW_ERR_EJOURNAL_EVENT_INVALID', /channel/],
      ['unknown field', alfa('POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: at(1), egn: '8501011234' } }), 400, 'GW_ERR_API_VALIDATION', /body\.egn: unknown field/],
      ['status of the wrong type', alfa('POST', `${path(r)}/events`, { json: { status: 7, occurredAt: at(1) } }), 400, 'GW_ERR_API_VALIDATION'],
      ['not JSON', alfa('POST', `${path(r)}/events`, { body: '{"status":' }), 400, 'GW_ERR_API_VALIDATION'],
      ['oversized body', alfa('POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: at(1), description: 'x'.repeat(70_000) } }), 413, 'GW_ERR_API_TOO_LARGE'],
      ['no key', call(net.alfa, 'POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: at(1) } }), 401, 'GW_ERR_API_UNAUTHORIZED'],
      ['auditor posting', call(net.alfa, 'POST', `${path(r)}/events`, { key: keys.alfaAuditor, json: { status: 'RECEIVED', occurredAt: at(1) } }), 403, 'GW_ERR_API_FORBIDDEN'],
      ['operator posting a batch', call(net.alfa, 'POST', '/v1/services/events', { key: keys.alfaOperator, json: { events: [{ rnu: r, status: 'RECEIVED', occurredAt: at(1) }] } }), 403, 'GW_ERR_API_FORBIDDEN'],
      ['batch with one bad event', alfa('POST', '/v1/services/events', { json: { events: [{ rnu: r, status: 'RECEIVED', occurredAt: at(1) }, { rnu: r, status: 'NOPE', occurredAt: at(2) }] } }), 400, 'GW_ERR_EJOURNAL_STATUS_UNKNOWN', /events\[1\]/],
      ['batch with a bad RNU', alfa('POST', '/v1/services/events', { json: { events: [{ rnu: r, status: 'RECEIVED', occurredAt: at(1) }, { rnu: '', status: 'RECEIVED', occurredAt: at(2) }] } }), 400, 'GW_ERR_API_VALIDATION', /events\[1\]\.rnu/],
      ['batch over the configured size', alfa('POST', '/v1/services/events', { json: { events: Array.from({ length: 501 }, (_, i) => ({ rnu: r, status: 'RECEIVED', occurredAt: at(i) })) } }), 413, 'GW_ERR_API_TOO_LARGE', /500/],
      ['empty batch', alfa('POST', '/v1/services/events', { json: { events: [] } }), 400, 'GW_ERR_API_VALIDATION'],
      ['timeline of an unknown RNU', alfa('GET', path(rnu('NOBODY'))), 404, 'GW_ERR_EJOURNAL_NOT_FOUND'],
      ['timeline with a bad RNU', alfa('GET', '/v1/services/a%0Ab'), 400, 'GW_ERR_EJOURNAL_RNU_INVALID'],
      ['statistics, from after to', alfa('GET', '/v1/statistics/services?from=2025-03-04&to=2025-03-03'), 400, 'GW_ERR_EJOURNAL_EVENT_INVALID'],
      ['statistics without a period', alfa('GET', '/v1/statistics/services'), 400, 'GW_ERR_API_VALIDATION'],
      ['statistics, unknown format', alfa('GET', '/v1/statistics/services?from=2025-03-03&to=2025-03-04&format=xml'), 400, 'GW_ERR_API_VALIDATION'],
      ['attach to an unknown document', alfa('POST', '/v1/documents/00000000-0000-4000-8000-000000000000/rnu', { json: { rnu: r } }), 404, 'GW_ERR_EJOURNAL_NOT_FOUND'],
      ['attach a bad RNU', alfa('POST', '/v1/documents/00000000-0000-4000-8000-000000000000/rnu', { json: { rnu: ' x' } }), 400, 'GW_ERR_EJOURNAL_RNU_INVALID'],
      ['attach as operator', call(net.alfa, 'POST', '/v1/documents/00000000-0000-4000-8000-000000000000/rnu', { key: keys.alfaOperator, json: { rnu: r } }), 403, 'GW_ERR_API_FORBIDDEN'],
      ['attention list as connector', alfa('GET', '/v1/operator/ejournal/events'), 403, 'GW_ERR_API_FORBIDDEN'],
      ['resend as connector', alfa('POST', '/v1/operator/ejournal/events/1/resend'), 403, 'GW_ERR_API_FORBIDDEN'],
      ['resend an unknown event', call(net.alfa, 'POST', '/v1/operator/ejournal/events/999999/resend', { key: keys.alfaOperator }), 404, 'GW_ERR_EJOURNAL_NOT_FOUND'],
      ['resend a delivered event', call(net.alfa, 'POST', '/v1/operator/ejournal/events/1/resend', { key: keys.alfaOperator }), 409, 'GW_ERR_EJOURNAL_EVENT_STATE'],
      ['skip a delivered event', call(net.alfa, 'POST', '/v1/operator/ejournal/events/1/skip', { key: keys.alfaOperator }), 409, 'GW_ERR_EJOURNAL_EVENT_STATE'],
      ['skip with a non-numeric id', call(net.alfa, 'POST', '/v1/operator/ejournal/events/abc/skip', { key: keys.alfaOperator }), 400, 'GW_ERR_API_VALIDATION'],
      ['a document with a bad RNU', alfa('POST', '/v1/documents', { json: { recipient: '000000002', rnu: 'a\tb', document: { kind: 'Молба' } } }), 400, 'GW_ERR_EJOURNAL_RNU_INVALID'],
    ];
    for (const [what, pending, status, code, detail] of cases) {
      const answer = await pending;
      expect(answer.status, `${what}: ${answer.text}`).toBe(status);
      expect(answer.json?.code, what).toBe(code);
      expect(answer.json?.message, what).toMatch(/[а-яА-Я]/); // the Bulgarian text staff read
      if (detail) expect(answer.text, what).toMatch(detail);
    }
    expect(counts(net.alfa)).toEqual(before);
  });

});

describe('operator: rejected and dead events', () => {
  it('lists a rejected event, lets the later events of its RNU go, and resends it once eJournal accepts it', async () => {
    const r = rnu('REJ');
    sim.rejectWhen((e) => e.rnu === r && e.status === 'REGISTERED', { status: 422, error: 'BAD_STATUS_CHANGE', message: 'refused' });
    try {
      await alfa('POST', '/v1/services/events', { json: { events: [
        { rnu: r, status: 'RECEIVED', occurredAt: at(1) }, { rnu: r, status: 'REGISTERED', occurredAt: at(2) }, { rnu: r, status: 'IN_PROGRESS', occurredAt: at(3) },
      ] } });
      await eventually(() => delivered(net.alfa, r) === 2, 'the others delivered');
      const list = await call(net.alfa, 'GET', '/v1/operator/ejournal/events', { key: keys.alfaOperator });
      const item = list.json.items.find((i: any) => i.event.rnu === r);
      expect(item).toMatchObject({ problem: 'rejected', event: { status: 'REGISTERED' } });
      expect(item.lastError).toContain('BAD_STATUS_CHANGE');
      sim.rejectWhen(null);
      const resent = await call(net.alfa, 'POST', `/v1/operator/ejournal/events/${item.event.id}/resend`, { key: keys.alfaOperator });
      expect(resent.status, resent.text).toBe(202);
      await eventually(() => delivered(net.alfa, r) === 3, 'the resent one delivered');
      const timeline = (await alfa('GET', path(r))).json;
      expect(timeline.events.map((e: any) => e.delivery.state)).toEqual(['delivered', 'delivered', 'delivered']);
      expect(timeline.events[1].delivery.outOfOrder).toBe(true); // resent after a later event of its RNU had gone
    } finally {
      sim.rejectWhen(null);
    }
  });

  it('a dead event holds its RNU (and only it) until an operator skips it through the API', async () => {
    const r = rnu('DEAD');
    const other = rnu('FREE');
    sim.failWhen((e) => e.rnu === r && e.status === 'RECEIVED', 'http503');
    try {
      await alfa('POST', '/v1/services/events', { json: { events: [
        { rnu: r, status: 'RECEIVED', occurredAt: at(1) }, { rnu: r, status: 'REGISTERED', occurredAt: at(2) }, { rnu: other, status: 'RECEIVED', occurredAt: at(1) },
      ] } });
      await eventually(() => delivered(net.alfa, other) === 1, 'the other RNU is not held');
      const item = await eventuallyAsync(async () => {
        const list = await call(net.alfa, 'GET', '/v1/operator/ejournal/events', { key: keys.alfaOperator });
        return list.json.items.find((i: any) => i.event.rnu === r && i.problem === 'dead');
      }, 'the event dead after 4 attempts', 20_000);
      expect(item.attempts).toBe(4);
      expect((await alfa('GET', path(r))).json.events.map((e: any) => e.delivery.state)).toEqual(['dead', 'waiting']);
      const skipped = await call(net.alfa, 'POST', `/v1/operator/ejournal/events/${item.event.id}/skip`, { key: keys.alfaOperator });
      expect(skipped.status, skipped.text).toBe(200);
      expect(skipped.json).toMatchObject({ action: 'skip', delivery: 'skipped' });
      expect(skipped.json.woken).toBeTypeOf('number');
      await eventually(() => delivered(net.alfa, r) === 1, 'the next event of the RNU delivered');
      expect(sim.events(r).map((e) => e.status)).toEqual(['REGISTERED']);
    } finally {
      sim.failWhen(null);
    }
  });
});

describe('events the gateway raises itself, end to end through two gateways', () => {
  it('attaching an RNU to a received document reports the stages it passed, and later decisions follow automatically', async () => {
    const sent = await alfa('POST', '/v1/documents', { json: { recipient: '000000002', document: { kind: 'Молба', about: 'Заявление' } } });
    expect(sent.status, sent.text).toBe(201);
    const inbox = await eventuallyAsync(async () => (await beta('GET', '/v1/inbox')).json?.items?.find((i: any) => i.documentGuid === sent.json.documentGuid), 'received by Бета');
    const r = rnu('ATTACH');
    const attached = await beta('POST', `/v1/documents/${inbox.id}/rnu`, { json: { rnu: r, serviceCode: '1234' } });
    expect(attached.status, attached.text).toBe(200);
    expect(attached.json.events).toMatchObject([{ stage: 'seos.received', recorded: true, status: 'RECEIVED' }]);
    expect((await beta('POST', `/v1/documents/${inbox.id}/rnu`, { json: { rnu: r } })).json.events[0].recorded).toBe(false);
    const conflict = await beta('POST', `/v1/documents/${inbox.id}/rnu`, { json: { rnu: rnu('OTHER') } });
    expect(conflict.json.code).toBe('GW_ERR_EJOURNAL_RNU_CONFLICT');
    const registered = await beta('POST', `/v1/inbox/${inbox.id}/status`, { json: { status: 'registered', number: 'ОБ-1', date: '2026-11-22' } });
    expect(registered.status, registered.text).toBeLessThan(300);
    await eventually(() => sim.events(r).length === 2, 'RECEIVED and REGISTERED in eJournal');
    expect(sim.events(r).map((e) => [e.status, e.serviceCode, e.administration, e.channel])).toEqual([
      ['RECEIVED', '1234', '000000002', 'seos'], ['REGISTERED', '1234', '000000002', 'seos'],
    ]);
    const timeline = (await beta('GET', path(r))).json;
    expect(timeline.documents).toMatchObject([{ id: inbox.id, direction: 'in' }]);
    expect(timeline.events.map((e: any) => e.lifecycle)).toEqual(['seos.received', 'seos.registered']);
  });

  it('a document sent with an RNU carries it in DocAddData; Бета reports received, registered and rejected under it', async () => {
    const r1 = rnu('SEOS');
    const r2 = rnu('SEOS');
    const s1 = await alfa('POST', '/v1/documents', { json: { recipient: '000000002', rnu: r1, document: { kind: 'Молба', service: { name: 'Удостоверение', type: 'Нормална', code: '2079' } } } });
    const s2 = await alfa('POST', '/v1/documents', { json: { recipient: '000000002', rnu: r2, document: { kind: 'Жалба' } } });
    expect([s1.status, s2.status], s1.text + s2.text).toEqual([201, 201]);
    expect(net.alfa.gateway.db.prepare('SELECT rnu FROM documents WHERE id = ?').get(s1.json.id)).toEqual({ rnu: r1 });
    const inbox = async (guid: string) => eventuallyAsync(async () => (await beta('GET', '/v1/inbox')).json?.items?.find((i: any) => i.documentGuid === guid), 'received');
    const d1 = await inbox(s1.json.documentGuid);
    const d2 = await inbox(s2.json.documentGuid);
    expect((await beta('GET', `/v1/documents/${d1.id}`)).json.rnu).toBe(r1);
    await eventually(() => sim.events(r1).length === 1 && sim.events(r2).length === 1, 'RECEIVED for both');
    await beta('POST', `/v1/inbox/${d1.id}/status`, { json: { status: 'registered', number: 'ОБ-2', date: '2026-11-22' } });
    await beta('POST', `/v1/inbox/${d2.id}/status`, { json: { status: 'rejected', reason: 'Не е подписан.' } });
    await eventually(() => sim.events(r1).length === 2 && sim.events(r2).length === 2, 'the decisions in eJournal');
    expect(sim.events(r1).map((e) => [e.status, e.serviceCode, e.documentRegNumber])).toEqual([['RECEIVED', '2079', expect.any(String)], ['REGISTERED', '2079', 'ОБ-2']]);
    expect(sim.events(r2).map((e) => [e.status, e.serviceCode])).toEqual([['RECEIVED', '2079'], ['DENIED', '2079']]);
    expect(sim.orderViolations().filter((v) => v.rnu === r1 || v.rnu === r2)).toEqual([]);
  });
});

describe('order per RNU across a restart', () => {
  it('keeps delivering in order, each event once, when the gateway stops mid-delivery and starts again on the same data', async () => {
    const rnus = Array.from({ length: 20 }, () => rnu('RESTART'));
    const events = Array.from({ length: 8 }, (_, i) => rnus.map((r) => ({ rnu: r, status: ['RECEIVED', 'REGISTERED', 'IN_PROGRESS', 'PAYMENT_REQUESTED', 'RESULT_READY', 'RESULT_SENT', 'DELIVERED', 'CLOSED'][i], occurredAt: at(1000 + i) }))).flat();
    sim.setDelay([5, 30]);
    try {
      const answer = await alfa('POST', '/v1/services/events', { json: { events } });
      expect(answer.status, answer.text).toBe(200);
      await eventually(() => rnus.reduce((n, r) => n + delivered(net.alfa, r), 0) >= 20, 'some delivered', 20_000);
      await net.alfa.stop();
      const mid = rnus.reduce((n, r) => n + sim.events(r).length, 0);
      expect(mid).toBeLessThan(160);
      const logStream = new Writable({ write(chunk, _enc, done) { net.alfa.logs.push(String(chunk)); done(); } });
      net.alfa.gateway = await createGateway(loadConfig({ file: net.alfa.configPath, env: {} }), { logStream });
      await net.alfa.gateway.start();
      await eventually(() => rnus.every((r) => delivered(net.alfa, r) === 8), 'all delivered after the restart', 30_000);
    } finally {
      sim.setDelay(0);
    }
    for (const r of rnus) {
      expect(sim.events(r).map((e) => e.occurredAt)).toEqual(Array.from({ length: 8 }, (_, i) => at(1000 + i)));
    }
    expect(sim.orderViolations().filter((v) => rnus.includes(v.rnu))).toEqual([]);
  });
});

describe('with serve\'s delivery thread', () => {
  it('delivers large batches each event once and in order per RNU when the thread takes the rows serve hands it', async () => {
    // What `seos-gateway serve` runs: the deliveries on their own thread, which takes each row serve schedules. A
    // carrier job there claims ready events as companions while serve is still handing the same rows over.
    await net.alfa.stop();
    const logStream = new Writable({ write(chunk, _enc, done) { net.alfa.logs.push(String(chunk)); done(); } });
    net.alfa.gateway = await createGateway(loadConfig({ file: net.alfa.configPath, env: {} }), {
      logStream, deliveryThread: { configFile: net.alfa.configPath, env: {} },
    });
    await net.alfa.gateway.start();
    const rnus = Array.from({ length: 200 }, () => rnu('THREAD'));
    const statuses = ['RECEIVED', 'REGISTERED', 'IN_PROGRESS', 'RESULT_READY', 'RESULT_SENT'];
    const before = { posts: sim.stats.posts, duplicates: sim.stats.duplicates };
    // Four requests at once, 250 events each (every RNU's five events in one of them).
    const requests = Array.from({ length: 4 }, (_, k) => rnus.slice(k * 50, (k + 1) * 50)
      .flatMap((r) => statuses.map((status, i) => ({ rnu: r, status, occurredAt: at(2000 + i), serviceCode: '2079' }))));
    const answers = await Promise.all(requests.map((events) => alfa('POST', '/v1/services/events', { json: { events } })));
    for (const a of answers) expect(a.status, a.text).toBe(200);
    await eventually(() => rnus.every((r) => delivered(net.alfa, r) === 5), 'all 1,000 delivered', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // time enough for a second sending to show
    expect(sim.stats.posts - before.posts).toBe(1000); // each event sent once
    expect(sim.stats.duplicates - before.duplicates).toBe(0);
    expect(sim.orderViolations().filter((v) => rnus.includes(v.rnu))).toEqual([]);
    for (const r of rnus) expect(sim.events(r).map((e) => e.occurredAt)).toEqual(statuses.map((_, i) => at(2000 + i)));
  }, 90_000);
});

describe('personal data', () => {
  it('never writes an RNU, a description or a registration number into the operational logs', async () => {
    const r = rnu('LOGS');
    await alfa('POST', `${path(r)}/events`, { json: { status: 'RECEIVED', occurredAt: at(1), description: 'Иван Иванов, ЕГН 8501011234', documentRegNumber: 'ВХ-99-77' } });
    await alfa('POST', `${path(r)}/events`, { json: { status: 'NOPE', occurredAt: at(2) } });
    await alfa('GET', path(r));
    await eventually(() => delivered(net.alfa, r) === 1, 'delivered');
    const logs = [...net.alfa.logs, ...net.beta.logs].join('');
    expect(logs).toContain('/v1/services/{rnu}/events'); // the request is logged, with the RNU masked
    for (const used of usedRnus) expect(logs).not.toContain(used);
    for (const used of usedRnus) expect(logs).not.toContain(encodeURIComponent(used));
    expect(logs).not.toContain('8501011234');
    expect(logs).not.toContain('ВХ-99-77');
  });
});

describe('OpenAPI', () => {
  it('describes the eJournal routes with their schemas', async () => {
    const doc = (await call(net.alfa, 'GET', '/docs/json')).json;
    for (const [p, method] of [['/v1/services/{rnu}/events', 'post'], ['/v1/services/events', 'post'], ['/v1/services/{rnu}', 'get'], ['/v1/statistics/services', 'get'],
      ['/v1/documents/{id}/rnu', 'post'], ['/v1/operator/ejournal/events', 'get'], ['/v1/operator/ejournal/events/{id}/resend', 'post'], ['/v1/operator/ejournal/events/{id}/skip', 'post']]) {
      expect(doc.paths[p]?.[method], `${method} ${p}`).toBeDefined();
    }
    for (const name of ['ServiceEventRequest', 'ServiceEventBatchRequest', 'ServiceTimeline', 'ServiceStatistics', 'AttachRnuRequest', 'EjournalAttentionList']) {
      expect(doc.components.schemas[name], name).toBeDefined();
    }
  });
});

describe('the RNU a SEOS document carries (pure functions)', () => {
  it('reads DocAddData in any namespace and case, or DocService/ServiceCode written RNU:…, and reports a bad one without taking it', () => {
    expect(rnuCarriedBy({ additionalData: additionalDataWithRnu(undefined, 'BGEM11115H0') })).toEqual({ rnu: 'BGEM11115H0', from: 'DocAddData', serviceCode: null, problem: null });
    expect(rnuCarriedBy({ additionalData: { xml: '<x:Data xmlns:x="urn:a"><x:rnu> {7060efa8-0000-4000-8000-000000000001} </x:rnu></x:Data>' } }).rnu)
      .toBe('{7060efa8-0000-4000-8000-000000000001}');
    expect(rnuCarriedBy({ additionalData: { xml: '<Other>1</Other>' }, service: { name: 'Удостоверение', type: 'Нормална', code: '2079' } }))
      .toEqual({ rnu: null, from: null, serviceCode: '2079', problem: null });
    expect(rnuCarriedBy({ service: { name: 'У', type: 'Н', code: 'РНУ:BG-1/2' } })).toEqual({ rnu: 'BG-1/2', from: 'DocService', serviceCode: null, problem: null });
    expect(rnuCarriedBy({ additionalData: { xml: '<RNU>A</RNU>' }, service: { name: 'У', type: 'Н', code: 'RNU:B' } }).rnu).toBe('A');
    const bad = rnuCarriedBy({ additionalData: { xml: `<RNU>${'x'.repeat(65)}</RNU>` } });
    expect(bad).toMatchObject({ rnu: null, problem: expect.stringMatching(/DocAddData\/RNU: 65 characters/) });
    expect(rnuCarriedBy({ additionalData: { xml: '<RNU>A</RNU><RNU>B</RNU>' } }).problem).toMatch(/several different/);
    expect(rnuCarriedBy({ additionalData: { xml: '<RNU>A&amp;B</RNU>' } }).rnu).toBe('A&B');
    expect(additionalDataWithRnu(undefined, 'A<B&C').xml).toBe('<RNU xmlns="urn:seos-gateway:ejournal:1">A&lt;B&amp;C</RNU>');
    expect(additionalDataWithRnu({ xml: '<Keep/>' }, 'R').xml).toBe('<Keep/><RNU xmlns="urn:seos-gateway:ejournal:1">R</RNU>');
    expect(() => additionalDataWithRnu({ xml: '<RNU>A</RNU>' }, 'B')).toThrow(/GW_ERR_EJOURNAL_RNU_CONFLICT/);
  });
});

async function eventuallyAsync<T>(check: () => Promise<T | undefined | false | null>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
