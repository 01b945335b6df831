import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lifecycle } from '../src/app/lifecycle.ts';
import { DeliveryLog, verifyDeliveryLog } from '../src/audit/index.ts';
import { loadConfig } from '../src/config/index.ts';
import { destinationHealth } from '../src/delivery/destinations.ts';
import { DeliveryEngine, type DeliveryEvents } from '../src/delivery/engine.ts';
import { getOutboxEntry, type OutboxRow } from '../src/delivery/outbox.ts';
import { startRedisServer, type RedisServer } from '../src/devtools/redis-server.ts';
import {
  CentralRnuProvider, DEFAULT_VOCABULARY, DemoRnuProvider, EJOURNAL_OUTBOX_KIND, EjournalClient, GivenRnuProvider,
  attachRnu, createEjournalHandler, createEjournalLifecycleListener, createRnuProvider, createVocabulary, eventsNeedingAttention, isSkipped, raiseLifecycleEvent,
  recordServiceEvent, resendServiceEvent, serviceStatistics, serviceTimeline, skipServiceEvent, statisticsCsv, validateRnu, vocabularyFromConfig,
  type RecordOptions, type ServiceEventInput,
} from '../src/ejournal/index.ts';
import { EventIntake } from '../src/ejournal/intake.ts';
import { GatewayError, isGatewayError } from '../src/errors/index.ts';
import { startEjournalSimulator, type EjournalSimulator, type EjournalSimulatorOptions } from '../src/simulators/ejournal-simulator.ts';
import { openDatabase, type Db } from '../src/store/database.ts';
import { getDocument, insertDocument, updateDocument } from '../src/store/documents.ts';

/** BullMQ connection options for the private redis-server (BullMQ needs maxRetriesPerRequest null). */
function redisConnection(url: string) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port), maxRetriesPerRequest: null };
}

/*
 * eJournal with real parts: a real redis-server, real SQLite files (each engine on its own connection, as separate
 * worker processes would be), real DeliveryEngines with the eJournal handler, and the eJournal simulator on loopback.
 */

const ADMIN = '000696327';
const SERVICE = '2079';
const T0 = Date.parse('2025-03-03T08:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

let redis: RedisServer;
let prefixCounter = 0;
const cleanups: Array<() => Promise<void> | void> = [];

beforeAll(async () => { redis = await startRedisServer(); });
afterAll(async () => { await redis?.stop(); });
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Harness {
  readonly dir: string;
  readonly file: string;
  readonly db: Db;
  readonly log: DeliveryLog;
  readonly sim: EjournalSimulator;
  readonly engines: Array<{ engine: DeliveryEngine; client: EjournalClient; db: Db }>;
  readonly options: RecordOptions;
  startEngine(overrides?: { concurrency?: number; events?: DeliveryEvents; runWorker?: boolean }): Promise<{ engine: DeliveryEngine; client: EjournalClient; db: Db }>;
  stopEngine(index: number): Promise<void>;
  record(input: Partial<ServiceEventInput> & { rnu: string; status: string; occurredAt: string | Date }, options?: Partial<RecordOptions>): ReturnType<typeof recordServiceEvent>;
  schedule(row: OutboxRow | null | undefined): void;
  waitUntil(check: () => boolean, timeoutMs?: number): Promise<void>;
  counts(): { events: number; outbox: number };
  states(): Record<string, number>;
}

async function harness(options: {
  simulator?: EjournalSimulatorOptions;
  retry?: { firstDelayMs?: number; maxAttempts?: number; factor?: number };
  downAfter?: number;
  record?: Partial<RecordOptions>;
  client?: Partial<ConstructorParameters<typeof EjournalClient>[0]>;
  /** Carrier mode: jobs carry up to this many ready events, sent with the batch form of the contract. */
  carrier?: { eventsPerJob: number; followUpJobs?: number; batchMaxEvents?: number };
} = {}): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-ejournal-'));
  const file = path.join(dir, 'gateway.db');
  const db = openDatabase(file);
  const log = new DeliveryLog(db);
  const sim = await startEjournalSimulator(options.simulator);
  const prefix = `ej-${process.pid}-${++prefixCounter}`;
  const engines: Harness['engines'] = [];
  const recordOptions: RecordOptions = { log, administration: ADMIN, ...options.record };
  const retry = { firstDelayMs: 100, factor: 1.5, maxAttempts: 40, jitter: 0, maxDelayMs: 2000, ...options.retry };

  const h: Harness = {
    dir, file, db, log, sim, engines, options: recordOptions,
    async startEngine(overrides = {}) {
      const conn = openDatabase(file);
      const client = new EjournalClient({
        url: sim.url, allowInsecureHttp: true, timeoutMs: 5000,
        oauth: { tokenUrl: sim.tokenUrl, clientId: 'gateway', clientSecret: 'gateway-secret' },
        ...(options.carrier ? { batch: { path: '/v1/events/batch', maxEvents: options.carrier.batchMaxEvents ?? 10 } } : {}),
        ...options.client,
      });
      let engine!: DeliveryEngine;
      const handler = createEjournalHandler({
        db: conn, client, log: new DeliveryLog(conn), schedule: (row) => engine.schedule(row),
        ordering: { parkMs: 20_000, shortDeferMs: 20 }, requestTimeoutMs: 5000, claimMarginMs: 2000,
        ...(options.carrier ? { eventsPerJob: options.carrier.eventsPerJob, followUpJobs: options.carrier.followUpJobs ?? 3 } : {}),
      });
      engine = new DeliveryEngine({
        db: conn, connection: redisConnection(redis.url), prefix, handlers: { [EJOURNAL_OUTBOX_KIND]: handler },
        concurrency: overrides.concurrency ?? 8, perDestinationConcurrency: overrides.concurrency ?? 8,
        retryPolicyFor: () => retry, destinationPolicy: { downAfter: options.downAfter ?? 1000, probeIntervalMs: 300 },
        reconcileIntervalMs: 500, events: overrides.events, runWorker: overrides.runWorker,
      });
      await engine.start();
      const entry = { engine, client, db: conn };
      engines.push(entry);
      return entry;
    },
    async stopEngine(index) {
      const entry = engines[index];
      await entry.engine.close();
      entry.client.close();
    },
    record(input, extra = {}) {
      return recordServiceEvent(db, { serviceCode: SERVICE, ...input } as ServiceEventInput, { ...recordOptions, ...extra });
    },
    schedule(row) {
      if (!row) return;
      const running = engines.find((e) => !(e as { closed?: boolean }).closed) ?? engines[0];
      running?.engine.schedule(row);
    },
    async waitUntil(check, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out; states ${JSON.stringify(h.states())}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    counts() {
      return {
        events: (db.prepare('SELECT COUNT(*) AS n FROM ejournal_events').get() as { n: number }).n,
        outbox: (db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n,
      };
    },
    states() {
      const rows = db.prepare(`SELECT e.state || '/' || o.state AS k, COUNT(*) AS n FROM ejournal_events e JOIN outbox o ON o.id = e.outbox_id GROUP BY k`).all() as Array<{ k: string; n: number }>;
      return Object.fromEntries(rows.map((r) => [r.k, r.n]));
    },
  };
  cleanups.push(async () => {
    for (const e of engines) {
      await e.engine.close().catch(() => undefined);
      e.client.close();
    }
    await sim.close();
    for (const e of engines) e.db.close();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return h;
}

function delivered(h: Harness, n: number): () => boolean {
  return () => (h.db.prepare(`SELECT COUNT(*) AS n FROM ejournal_events WHERE state = 'delivered'`).get() as { n: number }).n >= n;
}

function expectCode(fn: () => unknown, code: string): GatewayError {
  try {
    fn();
  } catch (error) {
    expect(isGatewayError(error)).toBe(true);
    expect((error as GatewayError).code).toBe(code);
    return error as GatewayError;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

/** Deterministic shuffle. */
function shuffle<T>(items: T[], seed = 7): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const STATUSES = DEFAULT_VOCABULARY.statuses;

describe('eJournal delivery: order per RNU with several workers and a restart', () => {
  it('delivers every event exactly once, in the order it happened, with two engines, concurrency 8 and an engine replaced mid-run', async () => {
    const h = await harness({ simulator: { delayMs: [0, 4] } });
    const rnus = Array.from({ length: 40 }, (_, i) => (i % 2 ? `BGEM${String(i).padStart(7, '0')}` : `5f0c${String(i).padStart(4, '0')}-1b2c-4d3e-8f40-${String(i).padStart(12, '0')}`));
    const perRnu = 12;
    const schedule = (r: ReturnType<Harness['record']>) => h.schedule(r.outbox);

    // Phase 1, before any worker runs: the first half of each RNU's events, recorded in a scrambled order.
    const first = shuffle(rnus.flatMap((rnu) => Array.from({ length: perRnu / 2 }, (_, i) => ({ rnu, i }))));
    const pendingSchedules: Array<OutboxRow | null> = [];
    for (const { rnu, i } of first) pendingSchedules.push(h.record({ rnu, status: STATUSES[i % STATUSES.length], occurredAt: at(i * 10) }).outbox);

    await h.startEngine();
    await h.startEngine();
    for (const row of pendingSchedules) h.schedule(row);

    // Phase 2, while they deliver: the second half, in order, as a records system would send them.
    for (let i = perRnu / 2; i < perRnu; i++) {
      for (const rnu of rnus) schedule(h.record({ rnu, status: STATUSES[i % STATUSES.length], occurredAt: at(i * 10) }));
      await new Promise((r) => setTimeout(r, 15));
    }
    const total = rnus.length * perRnu;

    // Replace engine 0 mid-run.
    await h.waitUntil(delivered(h, Math.floor(total * 0.4)));
    await h.stopEngine(0);
    (h.engines[0] as { closed?: boolean }).closed = true;
    await h.startEngine();
    await h.waitUntil(delivered(h, total), 60_000);
    expect(h.sim.orderViolations()).toEqual([]);
    // eJournal recorded every event exactly once.
    expect(h.sim.events()).toHaveLength(total);
    expect(new Set(h.sim.events().map((e) => `${e.rnu}|${e.status}|${e.occurredAt}`)).size).toBe(total);
    // A repeated request, which eJournal answers as a duplicate, happens only when a job is superseded while sending
    // (the engine's reconciler can re-schedule a row whose job was added during its pass; it runs every 500 ms here).
    expect(h.sim.stats.duplicates).toBeLessThanOrEqual(total * 0.02);
    for (const rnu of rnus) {
      const arrived = h.sim.events(rnu).map((e) => e.occurredAt);
      expect(arrived).toEqual([...arrived].sort());
      expect(arrived).toHaveLength(perRnu);
    }
    expect(h.states()).toEqual({ 'delivered/delivered': total });
    // Different RNUs went in parallel: events of many RNUs were in flight within the same short window.
    const arrivals = h.sim.events();
    const rnusInFirstTen = new Set(arrivals.slice(0, 10).map((e) => e.rnu));
    expect(rnusInFirstTen.size).toBeGreaterThan(5);
    expect(verifyDeliveryLog(h.db).ok).toBe(true);
  }, 90_000);

  it('carrier mode: jobs carrying many events (batch requests) keep the order with two engines and an engine replaced mid-run', async () => {
    const h = await harness({ simulator: { delayMs: [0, 4] }, carrier: { eventsPerJob: 16, batchMaxEvents: 8 } });
    const rnus = Array.from({ length: 40 }, (_, i) => `CARRIER-${i}`);
    const perRnu = 10;
    // Scheduled as the API schedules a batch: one job per eventsPerJob events; the jobs carry the rest.
    const scheduleEvery = (rows: Array<OutboxRow | null>) => rows.filter(Boolean).forEach((row, i) => { if (i % 16 === 0) h.schedule(row); });
    const first = shuffle(rnus.flatMap((rnu) => Array.from({ length: perRnu / 2 }, (_, i) => ({ rnu, i }))));
    const pending = first.map(({ rnu, i }) => h.record({ rnu, status: STATUSES[i % STATUSES.length], occurredAt: at(i * 10) }).outbox);
    await h.startEngine();
    await h.startEngine();
    scheduleEvery(pending);
    for (let i = perRnu / 2; i < perRnu; i++) {
      scheduleEvery(rnus.map((rnu) => h.record({ rnu, status: STATUSES[i % STATUSES.length], occurredAt: at(i * 10) }).outbox));
      await new Promise((r) => setTimeout(r, 15));
    }
    const total = rnus.length * perRnu;
    await h.waitUntil(delivered(h, Math.floor(total * 0.4)));
    await h.stopEngine(0);
    (h.engines[0] as { closed?: boolean }).closed = true;
    await h.startEngine();
    await h.waitUntil(delivered(h, total), 60_000);
    expect(h.sim.orderViolations()).toEqual([]);
    expect(new Set(h.sim.events().map((e) => `${e.rnu}|${e.status}|${e.occurredAt}`)).size).toBe(total);
    expect(h.sim.stats.duplicates).toBeLessThanOrEqual(total * 0.02);
    for (const rnu of rnus) expect(h.sim.events(rnu).map((e) => e.occurredAt)).toEqual(Array.from({ length: perRnu }, (_, i) => at(i * 10)));
    expect(h.states()).toEqual({ 'delivered/delivered': total });
    // Many events per request and far fewer requests than events.
    expect(h.sim.stats.batches).toBeLessThan(total / 2);
    // Every event has its own attempt record, as with one job per event.
    expect((h.db.prepare("SELECT COUNT(DISTINCT outbox_id) AS n FROM attempts WHERE outcome = 'delivered'").get() as { n: number }).n).toBe(total);
    expect(verifyDeliveryLog(h.db).ok).toBe(true);
  }, 90_000);

  it('carrier mode, split layout: an event recorded through the API is sent once when the worker process takes it up before the API has scheduled it', async () => {
    // The simulator answers slowly, so what the worker sends is still in flight when the API process schedules.
    const h = await harness({ simulator: { delayMs: 400 }, carrier: { eventsPerJob: 4, batchMaxEvents: 16 } });
    const api = await h.startEngine({ runWorker: false }); // `serve` with delivery.inProcessWorkers false: schedules, never delivers
    const worker = await h.startEngine(); // `seos-gateway worker`
    // The API's intake wired as ejournal-wiring.ts wires it: the API engine's connection and its schedule. A row the
    // intake hands over when the worker's connection can already see it could be taken up by the worker before the
    // API's job-sequence bump lands (on the bench: the bump waits for the write lock the worker holds). Such a row
    // is set aside and that moment is played out: a finished carrier's follow-up job (handler.ts `settled`) takes it
    // while it is ready, and the API's bump comes while the worker is sending it.
    const late: OutboxRow[] = [];
    const intake = new EventIntake({
      db: api.db, record: { ...h.options, log: new DeliveryLog(api.db) }, eventsPerJob: 4,
      schedule: (row) => {
        if (worker.db.prepare('SELECT 1 FROM outbox WHERE id = ?').get(row.id) !== undefined) late.push(row);
        else api.engine.schedule(row);
      },
    });
    const n = 8;
    intake.record(Array.from({ length: n }, (_, i) => ({ rnu: `SPLIT-${i}`, status: STATUSES[0], occurredAt: at(0), serviceCode: SERVICE })), { batch: true });
    const stateOf = (row: OutboxRow) => (h.db.prepare('SELECT state FROM ejournal_events WHERE outbox_id = ?').get(row.id) as { state: string }).state;
    for (const row of late) {
      if (stateOf(row) === 'pending') worker.engine.schedule(row); // the follow-up takes only a ready event
      await h.waitUntil(() => stateOf(row) !== 'pending');
      api.engine.schedule(row); // the API's late bump, with its copy of the row
    }
    await h.waitUntil(delivered(h, n));
    await new Promise((r) => setTimeout(r, 1500)); // time enough for a job that sends again to have done so
    expect(h.sim.stats.duplicates).toBe(0);
    expect(h.sim.stats.posts).toBe(n); // each event posted once (a batch request counts its events)
    expect(h.sim.events()).toHaveLength(n);
    expect(h.states()).toEqual({ 'delivered/delivered': n });
  }, 30_000);

  it('carrier mode: eJournal down then back, a rejected event and a retried one are settled per event', async () => {
    const h = await harness({ carrier: { eventsPerJob: 8, batchMaxEvents: 4 }, retry: { firstDelayMs: 100, maxAttempts: 50 } });
    await h.startEngine();
    h.sim.rejectWhen((e) => e.rnu === 'C-REJ' && e.status === STATUSES[1]);
    await h.sim.goDown();
    const rows = ['C-A', 'C-B', 'C-REJ'].flatMap((rnu) => [0, 1, 2].map((i) => h.record({ rnu, status: STATUSES[i], occurredAt: at(i) }).outbox));
    h.schedule(rows.find(Boolean));
    await new Promise((r) => setTimeout(r, 600));
    expect(h.sim.events()).toHaveLength(0);
    await h.sim.comeBack();
    await h.waitUntil(() => (h.db.prepare(`SELECT COUNT(*) AS n FROM ejournal_events WHERE state IN ('delivered', 'rejected')`).get() as { n: number }).n === 9, 20_000);
    expect(h.sim.orderViolations()).toEqual([]);
    expect(h.sim.events('C-REJ').map((e) => e.status)).toEqual([STATUSES[0], STATUSES[2]]);
    expect(eventsNeedingAttention(h.db).map((a) => [a.event.rnu, a.problem])).toEqual([['C-REJ', 'rejected']]);
    for (const rnu of ['C-A', 'C-B']) expect(h.sim.events(rnu).map((e) => e.status)).toEqual([STATUSES[0], STATUSES[1], STATUSES[2]]);
  }, 60_000);

  it('keeps the order across a Redis flush (the reconciler re-schedules from SQLite)', async () => {
    const h = await harness({ simulator: { delayMs: [10, 30] } });
    await h.startEngine({ concurrency: 4 });
    const rnus = ['R-1', 'R-2', 'R-3', 'R-4', 'R-5'];
    for (let i = 0; i < 10; i++) for (const rnu of rnus) h.schedule(h.record({ rnu, status: STATUSES[i], occurredAt: at(i) }).outbox);
    await h.waitUntil(delivered(h, 10));
    await redis.flushAll(); // every job, waiting, delayed or active, is gone
    expect(h.sim.events().length).toBeLessThan(35);
    await h.waitUntil(delivered(h, 50), 30_000);
    expect(h.sim.orderViolations()).toEqual([]);
    expect(h.sim.events()).toHaveLength(50);
  }, 60_000);
});

describe('eJournal down, tokens, rejections, duplicates', () => {
  it('holds events while eJournal is down and delivers them, in order, when it is back', async () => {
    const h = await harness({ downAfter: 3, retry: { firstDelayMs: 100, factor: 1.5, maxAttempts: 100 } });
    await h.startEngine();
    h.schedule(h.record({ rnu: 'DOWN-1', status: 'RECEIVED', occurredAt: at(0) }).outbox);
    await h.waitUntil(delivered(h, 1));
    await h.sim.goDown();
    for (let i = 1; i < 6; i++) for (const rnu of ['DOWN-1', 'DOWN-2']) h.schedule(h.record({ rnu, status: STATUSES[i], occurredAt: at(i) }).outbox);
    await h.waitUntil(() => destinationHealth(h.db, 'ejournal').state === 'down', 10_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(h.sim.events()).toHaveLength(1);
    await h.sim.comeBack();
    await h.waitUntil(delivered(h, 11), 20_000);
    expect(destinationHealth(h.db, 'ejournal').state).toBe('up');
    expect(h.sim.orderViolations()).toEqual([]);
    expect(h.sim.events('DOWN-1').map((e) => e.status)).toEqual(STATUSES.slice(0, 6));
    expect(h.sim.events('DOWN-2').map((e) => e.status)).toEqual(STATUSES.slice(1, 6));
    const retried = h.db.prepare(`SELECT MAX(o.attempts) AS n FROM outbox o`).get() as { n: number };
    expect(retried.n).toBeGreaterThan(1);
  }, 40_000);

  it('renews a 1-second token before it expires, so no request is refused', async () => {
    const h = await harness({ simulator: { tokenTtlSeconds: 1 } });
    await h.startEngine();
    for (let i = 0; i < 8; i++) {
      h.schedule(h.record({ rnu: 'TOKEN-1', status: STATUSES[i], occurredAt: at(i) }).outbox);
      await new Promise((r) => setTimeout(r, 400));
    }
    await h.waitUntil(delivered(h, 8));
    expect(h.sim.stats.tokensIssued).toBeGreaterThanOrEqual(4);
    expect(h.sim.stats.unauthorized).toBe(0);
    expect(h.sim.orderViolations()).toEqual([]);
  }, 30_000);

  it('renews once on a 401 and delivers within the same attempt', async () => {
    const h = await harness();
    await h.startEngine();
    h.schedule(h.record({ rnu: 'AUTH-1', status: 'RECEIVED', occurredAt: at(0) }).outbox);
    await h.waitUntil(delivered(h, 1));
    h.sim.revokeTokens();
    const second = h.record({ rnu: 'AUTH-1', status: 'REGISTERED', occurredAt: at(1) });
    h.schedule(second.outbox);
    await h.waitUntil(delivered(h, 2));
    expect(h.sim.stats.unauthorized).toBe(1);
    expect(h.sim.stats.tokensIssued).toBe(2);
    expect(getOutboxEntry(h.db, second.outbox!.id)!.attempts).toBe(1);
  });

  it('renews only once: a fresh token refused again is an auth failure to retry later, not a loop', async () => {
    const sim = await startEjournalSimulator();
    cleanups.push(() => sim.close());
    const client = new EjournalClient({ url: sim.url, allowInsecureHttp: true, oauth: { tokenUrl: sim.tokenUrl, clientId: 'gateway', clientSecret: 'gateway-secret' } });
    cleanups.push(() => client.close());
    sim.refuseAllTokens(true);
    const result = await client.pushStatus({ eventId: 'e-1', rnu: 'AUTH-2', status: 'RECEIVED', occurredAt: at(0), administration: ADMIN, serviceCode: SERVICE });
    expect(result).toMatchObject({ outcome: 'transient', code: 'GW_ERR_EJOURNAL_AUTH', httpStatus: 401 });
    expect(sim.stats.posts).toBe(2);
    expect(sim.stats.tokensIssued).toBe(2);
    // Wrong client credentials: the token endpoint refuses, nothing is posted.
    const wrong = new EjournalClient({ url: sim.url, allowInsecureHttp: true, oauth: { tokenUrl: sim.tokenUrl, clientId: 'gateway', clientSecret: 'wrong' } });
    cleanups.push(() => wrong.close());
    expect(await wrong.pushStatus({ eventId: 'e-2', rnu: 'AUTH-2', status: 'RECEIVED', occurredAt: at(0), administration: ADMIN, serviceCode: SERVICE }))
      .toMatchObject({ outcome: 'transient', code: 'GW_ERR_EJOURNAL_AUTH' });
    expect(sim.stats.posts).toBe(2);
  });

  it('surfaces a rejected event (failed, visible, in the log) and lets the later events of its RNU go', async () => {
    const h = await harness();
    let failed = 0;
    h.sim.rejectWhen((e) => e.status === 'DENIED', { error: 'STATUS_NOT_ALLOWED', message: 'DENIED is not allowed after RECEIVED for service 2079' });
    await h.startEngine({ events: { failed: () => { failed++; } } });
    const rows = ['RECEIVED', 'DENIED', 'CLOSED'].map((status, i) => h.record({ rnu: 'REJ-1', status, occurredAt: at(i) }));
    for (const r of rows) h.schedule(r.outbox);
    await h.waitUntil(() => h.states()['delivered/delivered'] === 2 && h.states()['rejected/failed'] === 1);
    expect(h.sim.events('REJ-1').map((e) => e.status)).toEqual(['RECEIVED', 'CLOSED']);
    expect(failed).toBe(1);
    const timeline = serviceTimeline(h.db, 'REJ-1');
    const denied = timeline.events.find((e) => e.status === 'DENIED')!;
    expect(denied.delivery.state).toBe('rejected');
    expect(denied.delivery.lastError).toContain('GW_ERR_EJOURNAL_REJECTED');
    expect(denied.delivery.lastError).toContain('STATUS_NOT_ALLOWED');
    expect(eventsNeedingAttention(h.db).map((a) => [a.event.status, a.problem])).toEqual([['DENIED', 'rejected']]);
    const logged = h.db.prepare(`SELECT entry_json FROM delivery_log WHERE entry_json LIKE '%"outcome":"rejected"%'`).all() as Array<{ entry_json: string }>;
    expect(logged).toHaveLength(1);
    expect(logged[0].entry_json).toContain('STATUS_NOT_ALLOWED');
    expect(logged[0].entry_json).not.toContain('REJ-1'); // no RNU in the delivery log
    expect(logged[0].entry_json).not.toContain('after RECEIVED'); // nor eJournal's free text

    // The operator fixes the cause and resends it: it goes, flagged late (CLOSED was sent already).
    h.sim.rejectWhen(null);
    h.schedule(resendServiceEvent(h.db, denied.id, { log: h.log, actor: 'operator:it-admin' }));
    await h.waitUntil(delivered(h, 3));
    expect(serviceTimeline(h.db, 'REJ-1').events.find((e) => e.status === 'DENIED')!.delivery.outOfOrder).toBe(true);
    expect(h.sim.orderViolations()).toHaveLength(1);
  });

  it('records a repeat (same RNU, status and time, in any zone spelling) once and sends it once', async () => {
    const h = await harness();
    await h.startEngine();
    const a = h.record({ rnu: 'DUP-1', status: 'REGISTERED', occurredAt: '2025-03-03T10:00:00.000+02:00' });
    const b = h.record({ rnu: 'DUP-1', status: 'REGISTERED', occurredAt: '2025-03-03T08:00:00Z' });
    const c = h.record({ rnu: 'DUP-1', status: 'REGISTERED', occurredAt: '2025-03-03T08:00:00Z', description: 'other text' });
    expect(a.duplicate).toBe(false);
    expect(b).toMatchObject({ duplicate: true, outbox: null, differences: [] });
    expect(c.differences).toEqual(['description']);
    expect(b.event.id).toBe(a.event.id);
    h.schedule(a.outbox);
    h.schedule(b.outbox);
    await h.waitUntil(delivered(h, 1));
    await new Promise((r) => setTimeout(r, 300));
    expect(h.counts()).toEqual({ events: 1, outbox: 1 });
    expect(h.sim.events('DUP-1')).toHaveLength(1);
    expect(h.sim.stats.posts).toBe(1);
  });

  it('treats eJournal\'s "already have it" as delivered (409, or 200 with result DUPLICATE)', async () => {
    for (const duplicateStatus of [409, 200] as const) {
      const h = await harness({ simulator: { duplicateStatus }, client: { responses: { duplicateWhen: { field: 'result', values: ['DUPLICATE'] } } } });
      h.sim.seed({ rnu: 'DUP-2', status: 'RECEIVED', occurredAt: at(0) });
      await h.startEngine();
      h.schedule(h.record({ rnu: 'DUP-2', status: 'RECEIVED', occurredAt: at(0) }).outbox);
      await h.waitUntil(delivered(h, 1));
      const event = serviceTimeline(h.db, 'DUP-2').events[0];
      expect(event.delivery).toMatchObject({ state: 'delivered', duplicate: true });
      expect(h.sim.stats.duplicates).toBe(1);
    }
  });
});

describe('ordering rules: dead events block, rejected and skipped do not, late events are flagged', () => {
  it('a dead event holds back its RNU until an operator skips it; other RNUs are not held', async () => {
    const h = await harness({ retry: { firstDelayMs: 50, maxAttempts: 2 } });
    h.sim.failWhen((e) => e.rnu === 'DEAD-1' && e.status === 'RECEIVED', 'http500');
    await h.startEngine();
    const first = h.record({ rnu: 'DEAD-1', status: 'RECEIVED', occurredAt: at(0) });
    const second = h.record({ rnu: 'DEAD-1', status: 'REGISTERED', occurredAt: at(1) });
    const other = h.record({ rnu: 'ALIVE-1', status: 'RECEIVED', occurredAt: at(0) });
    expect(second).toMatchObject({ parked: true, outbox: null });
    h.schedule(first.outbox);
    h.schedule(other.outbox);
    await h.waitUntil(() => getOutboxEntry(h.db, first.event.outboxId)!.state === 'dead');
    await h.waitUntil(delivered(h, 1));
    await new Promise((r) => setTimeout(r, 500));
    const timeline = serviceTimeline(h.db, 'DEAD-1');
    expect(timeline.events.map((e) => e.delivery.state)).toEqual(['dead', 'waiting']);
    expect(eventsNeedingAttention(h.db).map((a) => a.problem)).toEqual(['dead']);
    expect(h.sim.events('DEAD-1')).toHaveLength(0);
    expectCode(() => skipServiceEvent(h.db, second.event.id, { log: h.log, actor: 'operator:x' }), 'GW_ERR_EJOURNAL_EVENT_STATE');
    h.schedule(skipServiceEvent(h.db, first.event.id, { log: h.log, actor: 'operator:it-admin' }));
    await h.waitUntil(delivered(h, 2));
    expect(h.sim.events('DEAD-1').map((e) => e.status)).toEqual(['REGISTERED']);
    expect(serviceTimeline(h.db, 'DEAD-1').events.map((e) => e.delivery.state)).toEqual(['skipped', 'delivered']);
  });

  it('a dead event resent after eJournal recovers goes first, then the ones behind it', async () => {
    const h = await harness({ retry: { firstDelayMs: 50, maxAttempts: 2 } });
    h.sim.failWhen((e) => e.status === 'RECEIVED', 'http503');
    await h.startEngine();
    const first = h.record({ rnu: 'DEAD-2', status: 'RECEIVED', occurredAt: at(0) });
    h.schedule(first.outbox);
    for (let i = 1; i < 4; i++) h.schedule(h.record({ rnu: 'DEAD-2', status: STATUSES[i], occurredAt: at(i) }).outbox);
    await h.waitUntil(() => getOutboxEntry(h.db, first.event.outboxId)!.state === 'dead');
    h.sim.failWhen(null);
    h.schedule(resendServiceEvent(h.db, first.event.id, { log: h.log, actor: 'operator:it-admin' }));
    await h.waitUntil(delivered(h, 4));
    expect(h.sim.events('DEAD-2').map((e) => e.status)).toEqual(STATUSES.slice(0, 4));
    expect(h.sim.orderViolations()).toEqual([]);
  });

  it('events recorded out of time order are delivered in time order; one later than a sent event is flagged and delivered', async () => {
    const h = await harness();
    const late = h.record({ rnu: 'ORD-1', status: 'CLOSED', occurredAt: at(30) });
    const early = h.record({ rnu: 'ORD-1', status: 'RECEIVED', occurredAt: at(10) });
    const middle = h.record({ rnu: 'ORD-1', status: 'IN_PROGRESS', occurredAt: at(20) });
    expect([late.parked, early.parked, middle.parked]).toEqual([false, false, true]);
    await h.startEngine();
    h.schedule(late.outbox);
    h.schedule(early.outbox);
    await h.waitUntil(delivered(h, 3));
    expect(h.sim.events('ORD-1').map((e) => e.status)).toEqual(['RECEIVED', 'IN_PROGRESS', 'CLOSED']);

    const straggler = h.record({ rnu: 'ORD-1', status: 'REGISTERED', occurredAt: at(15) });
    expect(straggler.outOfOrder).toBe(true);
    h.schedule(straggler.outbox);
    await h.waitUntil(delivered(h, 4));
    expect(h.sim.orderViolations().map((v) => v.event.status)).toEqual(['REGISTERED']);
    expect(serviceTimeline(h.db, 'ORD-1').events.map((e) => [e.status, e.delivery.outOfOrder])).toEqual([
      ['RECEIVED', false], ['REGISTERED', true], ['IN_PROGRESS', false], ['CLOSED', false],
    ]);
  });

  it('refuses a late event when configured to (GW_ERR_EJOURNAL_OUT_OF_ORDER), storing nothing', async () => {
    const h = await harness({ record: { lateEvents: 'reject' } });
    await h.startEngine();
    h.schedule(h.record({ rnu: 'ORD-2', status: 'CLOSED', occurredAt: at(30) }).outbox);
    await h.waitUntil(delivered(h, 1));
    const before = h.counts();
    expectCode(() => h.record({ rnu: 'ORD-2', status: 'RECEIVED', occurredAt: at(10) }), 'GW_ERR_EJOURNAL_OUT_OF_ORDER');
    expect(h.counts()).toEqual(before);
  });
});

describe('bad input is refused with a coded error and changes nothing', () => {
  it('refuses invalid RNUs', async () => {
    const h = await harness();
    const before = h.counts();
    const bad: Array<[unknown, RegExp]> = [
      ['', /empty/], ['x'.repeat(65), /65 characters, at most 64/], ['ab\u0001c', /U\+0001 at position 3/], ['abc\n', /U\+000A/],
      [' BGEM1', /leading or trailing/], ['BGEM1 ', /leading or trailing/], ['ab\ud800c', /surrogate/], ['a\u202eb', /U\+202E/],
      [undefined, /required/], [42, /expected a string/],
    ];
    for (const [rnu, message] of bad) {
      const error = expectCode(() => h.record({ rnu: rnu as string, status: 'RECEIVED', occurredAt: at(0) }), 'GW_ERR_EJOURNAL_RNU_INVALID');
      expect(error.detail).toMatch(message);
      expect(error.status).toBe(400);
    }
    expect(validateRnu('x'.repeat(64))).toHaveLength(64);
    expect(validateRnu('{7060EFA8-f1fa-4938-8b2b-12a78c86988f}')).toBe('{7060EFA8-f1fa-4938-8b2b-12a78c86988f}'); // never case-folded
    expect(validateRnu('РНУ-2025/0001 😀')).toBe('РНУ-2025/0001 😀');
    expect(h.counts()).toEqual(before);
  });

  it('refuses unknown statuses and other invalid fields', async () => {
    const h = await harness();
    const before = h.counts();
    const e1 = expectCode(() => h.record({ rnu: 'R-1', status: 'FINISHED', occurredAt: at(0) }), 'GW_ERR_EJOURNAL_STATUS_UNKNOWN');
    expect(e1.detail).toContain('"FINISHED" is not one of: RECEIVED, REGISTERED');
    expect(expectCode(() => h.record({ rnu: 'R-1', status: 'received', occurredAt: at(0) }), 'GW_ERR_EJOURNAL_STATUS_UNKNOWN').detail).toContain('"received"');
    expectCode(() => h.record({ rnu: 'R-1', status: '', occurredAt: at(0) }), 'GW_ERR_EJOURNAL_STATUS_UNKNOWN');
    const invalid: Array<[Partial<ServiceEventInput>, RegExp]> = [
      [{ occurredAt: '2025-03-03 10:00' }, /occurredAt: expected an ISO-8601/],
      [{ occurredAt: '2025-03-03T10:00:00' }, /with a zone/],
      [{ occurredAt: '2025-02-30T10:00:00Z' }, /not a valid date-time/],
      [{ occurredAt: new Date(Date.now() + 3600_000).toISOString() }, /in the future/],
      [{ serviceCode: '' }, /serviceCode: required/],
      [{ administration: 'Община Алфа' }, /administration: expected an ЕИК/],
      [{ channel: 'fax' }, /channel: expected one of seos, ssev, counter, email/],
      [{ description: 'x'.repeat(2001) }, /description: 2001 characters/],
      [{ documentRegNumber: 'А\u0000Б' }, /documentRegNumber: contains control characters/],
      [{ documentId: 'no-such-document' }, /documentId: no such document/],
    ];
    for (const [fields, message] of invalid) {
      const error = expectCode(() => h.record({ rnu: 'R-1', status: 'RECEIVED', occurredAt: at(0), ...fields }), 'GW_ERR_EJOURNAL_EVENT_INVALID');
      expect(error.detail).toMatch(message);
    }
    expectCode(() => h.record({ rnu: 'DEMO-123', status: 'RECEIVED', occurredAt: at(0) }), 'GW_ERR_EJOURNAL_RNU_INVALID');
    expect(h.counts()).toEqual(before);
  });

  it('commits the business change, the event and its outbox row together, or none of them', async () => {
    const h = await harness();
    const doc = () => ({
      direction: 'in' as const, documentGuid: `{${crypto.randomUUID()}}`, counterpartyGuid: '{0b2e0000-0000-4000-8000-000000000002}',
      counterpartyEik: '000000002', counterpartyName: 'Община Бета', status: 'DS_WAIT_REGISTRATION' as const, rnu: 'TX-1',
    });
    const before = h.counts();
    expect(() => h.db.transaction(() => {
      const d = insertDocument(h.db, doc());
      recordServiceEvent(h.db, { rnu: 'TX-1', status: 'RECEIVED', occurredAt: at(0), serviceCode: SERVICE, documentId: d.id }, h.options);
      recordServiceEvent(h.db, { rnu: 'TX-1', status: 'NOPE', occurredAt: at(1), serviceCode: SERVICE }, h.options);
    }).immediate()).toThrow(/GW_ERR_EJOURNAL_STATUS_UNKNOWN/);
    expect(h.counts()).toEqual(before);
    expect((h.db.prepare('SELECT COUNT(*) AS n FROM documents').get() as { n: number }).n).toBe(0);

    const result = h.db.transaction(() => {
      const d = insertDocument(h.db, doc());
      return recordServiceEvent(h.db, { rnu: 'TX-1', status: 'RECEIVED', occurredAt: at(0), serviceCode: SERVICE, documentId: d.id }, h.options);
    }).immediate();
    expect(result.outbox!.kind).toBe('ejournal-event');
    expect(h.counts()).toEqual({ events: 1, outbox: 1 });
  });
});

describe('events the gateway raises itself', () => {
  it('maps lifecycle stages of a document with an RNU, skips documents without one, and never breaks the caller', async () => {
    const h = await harness({ record: { defaultServiceCode: '9999' } });
    const d = insertDocument(h.db, {
      direction: 'in', documentGuid: '{11111111-2222-4333-8444-555555555555}', counterpartyGuid: '{0b2e0000-0000-4000-8000-000000000002}',
      counterpartyEik: '000000002', counterpartyName: 'Община Бета', status: 'DS_WAIT_REGISTRATION', rnu: 'LC-1', ourNumber: 'ВХ-12',
    });
    const received = raiseLifecycleEvent(h.db, 'seos.received', { documentId: d.id, serviceCode: SERVICE, occurredAt: at(0) }, h.options);
    expect(isSkipped(received)).toBe(false);
    expect(!isSkipped(received) && received.event).toMatchObject({
      rnu: 'LC-1', status: 'RECEIVED', channel: 'seos', lifecycle: 'seos.received', documentRegNumber: 'ВХ-12', serviceCode: SERVICE, source: 'gateway',
    });
    // The service code is remembered for the RNU.
    const registered = raiseLifecycleEvent(h.db, 'seos.registered', { documentId: d.id, occurredAt: at(5) }, h.options);
    expect(!isSkipped(registered) && registered.event.serviceCode).toBe(SERVICE);

    const other = insertDocument(h.db, {
      direction: 'in', documentGuid: '{11111111-2222-4333-8444-666666666666}', counterpartyGuid: '{0b2e0000-0000-4000-8000-000000000002}',
      counterpartyEik: '000000002', counterpartyName: 'Община Бета', status: 'DS_WAIT_REGISTRATION',
    });
    expect(raiseLifecycleEvent(h.db, 'seos.received', { documentId: other.id }, h.options)).toEqual({ skipped: 'no-rnu' });
    const custom = { ...h.options, vocabulary: createVocabulary({ lifecycle: { 'ssev.sent': null } }) };
    expect(raiseLifecycleEvent(h.db, 'ssev.sent', { rnu: 'LC-1' }, custom)).toEqual({ skipped: 'not-reported' });
    // A malformed RNU on a received document: the receipt must still commit; the operator sees why in the log.
    const committed = h.db.transaction(() => {
      const bad = insertDocument(h.db, {
        direction: 'in', documentGuid: '{11111111-2222-4333-8444-777777777777}', counterpartyGuid: '{0b2e0000-0000-4000-8000-000000000002}',
        counterpartyEik: '000000002', counterpartyName: 'Община Бета', status: 'DS_WAIT_REGISTRATION', rnu: 'x'.repeat(80),
      });
      return raiseLifecycleEvent(h.db, 'seos.received', { documentId: bad.id }, h.options);
    }).immediate();
    expect(committed).toMatchObject({ skipped: 'invalid', code: 'GW_ERR_EJOURNAL_RNU_INVALID' });
    expect((h.db.prepare('SELECT COUNT(*) AS n FROM documents').get() as { n: number }).n).toBe(3);
    expect(h.db.prepare(`SELECT 1 FROM delivery_log WHERE entry_json LIKE '%not-recorded%'`).get()).toBeTruthy();
  });

  it('plugs into the gateway Lifecycle: received and decided documents, SSEV sent and delivered, given their jobs in the same transaction', async () => {
    const h = await harness({ record: { defaultServiceCode: SERVICE } });
    await h.startEngine();
    const scheduled: OutboxRow[] = [];
    let inTransaction: boolean[] = [];
    // The gateway's engine shares the lifecycle's connection and bumps the job sequence in that transaction; this
    // harness's engine has a connection of its own, so the hand-over to it waits for the commit.
    const lifecycle = new Lifecycle([createEjournalLifecycleListener({ ...h.options, db: h.db })], (row) => {
      scheduled.push(row);
      inTransaction.push(h.db.inTransaction);
      setImmediate(() => h.schedule(row));
    });
    const base = { counterpartyGuid: '{0b2e0000-0000-4000-8000-000000000002}', counterpartyEik: '000000002', counterpartyName: 'Община Бета' };
    const inbound = h.db.transaction(() => {
      const d = insertDocument(h.db, { ...base, direction: 'in', documentGuid: '{31111111-2222-4333-8444-555555555555}', status: 'DS_WAIT_REGISTRATION', rnu: 'LIFE-1', at: at(0) });
      lifecycle.documentReceived(d);
      return d;
    }).immediate();
    expect(scheduled).toHaveLength(1);
    expect(inTransaction).toEqual([true]); // from inside the transaction that recorded the event
    inTransaction = [];
    h.db.transaction(() => {
      updateDocument(h.db, inbound.id, { status: 'DS_REGISTERED', ourNumber: 'ВХ-9' }, { source: 'records-system', at: at(5) });
      lifecycle.statusChanged(getDocument(h.db, inbound.id)!, 'DS_WAIT_REGISTRATION', 'records-system');
    }).immediate();
    const outSsev = insertDocument(h.db, { ...base, direction: 'out', channel: 'ssev', documentGuid: '{31111111-2222-4333-8444-666666666666}', status: 'PENDING', rnu: 'LIFE-1', at: at(6) });
    for (const [status, t] of [['SENT', 7], ['DELIVERED', 8]] as const) {
      h.db.transaction(() => {
        updateDocument(h.db, outSsev.id, { status }, { source: 'peer', at: at(t) });
        lifecycle.statusChanged(getDocument(h.db, outSsev.id)!, 'PENDING', 'peer');
      }).immediate();
    }
    const outSeos = insertDocument(h.db, { ...base, direction: 'out', documentGuid: '{31111111-2222-4333-8444-777777777777}', status: 'PENDING', rnu: 'LIFE-1', at: at(9) });
    h.db.transaction(() => {
      updateDocument(h.db, outSeos.id, { status: 'DS_WAIT_REGISTRATION' }, { source: 'peer', at: at(10) });
      lifecycle.statusChanged(getDocument(h.db, outSeos.id)!, 'PENDING', 'peer');
    }).immediate();
    await h.waitUntil(delivered(h, 4));
    expect(h.sim.events('LIFE-1').map((e) => [e.status, e.channel, e.occurredAt])).toEqual([
      ['RECEIVED', 'seos', at(0)], ['REGISTERED', 'seos', at(5)], ['RESULT_SENT', 'ssev', at(7)], ['DELIVERED', 'ssev', at(8)],
    ]);
    expect(h.sim.events('LIFE-1')[1].documentRegNumber).toBe('ВХ-9');
  });

  it('attaches an RNU later and reports the stages the document already passed, with their times', async () => {
    const h = await harness();
    const d = insertDocument(h.db, {
      direction: 'in', documentGuid: '{21111111-2222-4333-8444-555555555555}', counterpartyGuid: '{0b2e0000-0000-4000-8000-000000000002}',
      counterpartyEik: '000000002', counterpartyName: 'Община Бета', status: 'DS_WAIT_REGISTRATION', at: at(0),
    });
    updateDocument(h.db, d.id, { status: 'DS_REGISTERED', ourNumber: 'ВХ-77' }, { source: 'records-system', at: at(60) });
    const attached = attachRnu(h.db, d.id, 'ATT-1', { ...h.options, serviceCode: SERVICE });
    expect(attached.events.map((e) => !isSkipped(e) && [e.event.status, e.event.occurredAt])).toEqual([['RECEIVED', at(0)], ['REGISTERED', at(60)]]);
    const again = attachRnu(h.db, d.id, 'ATT-1', { ...h.options, serviceCode: SERVICE });
    expect(again.events.every((e) => !isSkipped(e) && e.duplicate)).toBe(true);
    expectCode(() => attachRnu(h.db, d.id, 'ATT-2', h.options), 'GW_ERR_EJOURNAL_RNU_CONFLICT');
    expectCode(() => attachRnu(h.db, 'missing', 'ATT-2', h.options), 'GW_ERR_EJOURNAL_NOT_FOUND');
    expect(serviceTimeline(h.db, 'ATT-1').documents.map((x) => x.id)).toEqual([d.id]);
  });
});

describe('RNU providers', () => {
  it('takes a given RNU as it is, and refuses to invent one', async () => {
    const provider = new GivenRnuProvider();
    expect(await provider.obtain({ given: 'bgEM-0001' })).toEqual({ rnu: 'bgEM-0001', origin: 'given', demo: false });
    await expect(provider.obtain({})).rejects.toMatchObject({ code: 'GW_ERR_EJOURNAL_RNU_INVALID' });
    await expect(provider.obtain({ given: '' })).rejects.toMatchObject({ code: 'GW_ERR_EJOURNAL_RNU_INVALID' });
  });

  it('obtains one from the central (ORN) service with OAuth2, and reports its errors', async () => {
    const sim = await startEjournalSimulator({ clients: { orn: 'orn-secret' } });
    cleanups.push(() => sim.close());
    const provider = new CentralRnuProvider({
      url: sim.ornUrl, allowInsecureHttp: true, oauth: { tokenUrl: sim.tokenUrl, clientId: 'orn', clientSecret: 'orn-secret', scope: '/orn*' },
    });
    cleanups.push(() => provider.close());
    const issued = await provider.obtain({ applicant: '121212121', serviceCode: SERVICE });
    expect(issued).toEqual({ rnu: 'BGEJ0000001', origin: 'central', demo: false });
    expect(await provider.obtain({ given: 'FROM-EFORM-1' })).toMatchObject({ origin: 'given' });
    sim.ornFailNext(1, '7');
    await expect(provider.obtain({ applicant: '121212121', serviceCode: SERVICE })).rejects.toMatchObject({ code: 'GW_ERR_RNU_SERVICE_FAILED', detail: expect.stringContaining('return code 7') });
    await expect(provider.obtain({ serviceCode: SERVICE })).rejects.toMatchObject({ code: 'GW_ERR_EJOURNAL_RNU_INVALID' });
    sim.revokeTokens();
    expect((await provider.obtain({ applicant: '121212121', serviceCode: SERVICE })).rnu).toBe('BGEJ0000002');
    await sim.goDown();
    await expect(provider.obtain({ applicant: '121212121', serviceCode: SERVICE })).rejects.toMatchObject({ code: 'GW_ERR_RNU_SERVICE_FAILED' });
  });

  it('invents DEMO- numbers only in demo mode, and marks them', async () => {
    expect(() => new DemoRnuProvider({ demo: false })).toThrow(GatewayError);
    const provider = new DemoRnuProvider({ demo: true });
    const issued = await provider.obtain({});
    expect(issued.rnu).toMatch(/^DEMO-[0-9a-f-]{36}$/);
    expect(issued).toMatchObject({ origin: 'demo', demo: true });
    const h = await harness({ record: { demoMode: true } });
    h.record({ rnu: issued.rnu, status: 'RECEIVED', occurredAt: at(0) });
    expect(serviceTimeline(h.db, issued.rnu)).toMatchObject({ origin: 'demo', demo: true });
    expect(() => createRnuProvider(loadConfig({ env: {} }).ejournal)).not.toThrow();
  });
});

describe('reading it back', () => {
  it('gives the timeline of a service with each event\'s delivery state', async () => {
    const h = await harness();
    await h.startEngine();
    h.schedule(h.record({ rnu: 'TL-1', status: 'RECEIVED', occurredAt: at(0), channel: 'ssev', documentRegNumber: 'ВХ-1' }).outbox);
    await h.waitUntil(delivered(h, 1));
    h.sim.failWhen(() => true, 'http503');
    h.schedule(h.record({ rnu: 'TL-1', status: 'REGISTERED', occurredAt: at(10) }).outbox);
    h.record({ rnu: 'TL-1', status: 'IN_PROGRESS', occurredAt: at(20) });
    await h.waitUntil(() => serviceTimeline(h.db, 'TL-1').events[1].delivery.state === 'retrying');
    const timeline = serviceTimeline(h.db, 'TL-1');
    expect(timeline).toMatchObject({ rnu: 'TL-1', origin: 'given', demo: false, serviceCode: SERVICE, lastDelivered: { status: 'RECEIVED', occurredAt: at(0) } });
    expect(timeline.events.map((e) => [e.sequence, e.status, e.delivery.state])).toEqual([[1, 'RECEIVED', 'delivered'], [2, 'REGISTERED', 'retrying'], [3, 'IN_PROGRESS', 'waiting']]);
    expect(timeline.events[1].delivery.lastError).toContain('GW_ERR_EJOURNAL_UNAVAILABLE');
    expect(timeline.events[0]).toMatchObject({ channel: 'ssev', documentRegNumber: 'ВХ-1', administration: ADMIN });
    expectCode(() => serviceTimeline(h.db, 'UNKNOWN-RNU'), 'GW_ERR_EJOURNAL_NOT_FOUND');
    expectCode(() => serviceTimeline(h.db, ''), 'GW_ERR_EJOURNAL_RNU_INVALID');
  });

  it('counts a period by status, service code, channel and delivery, as JSON and CSV', async () => {
    const h = await harness();
    const events: Array<[string, string, string, string | null, number]> = [
      ['S-1', 'RECEIVED', '2079', 'seos', 0], ['S-1', 'REGISTERED', '2079', 'seos', 10], ['S-2', 'RECEIVED', '2079', 'counter', 20],
      ['S-3', 'RECEIVED', '=cmd()', 'email', 30], ['S-3', 'CLOSED', '=cmd()', null, 40], ['S-4', 'RECEIVED', '2079', 'ssev', 99_999],
    ];
    for (const [rnu, status, serviceCode, channel, s] of events) h.record({ rnu, status, serviceCode, channel, occurredAt: at(s) });
    const stats = serviceStatistics(h.db, { from: at(0), to: at(3600) });
    expect(stats).toMatchObject({
      events: 5, services: 3,
      byStatus: { RECEIVED: 3, REGISTERED: 1, CLOSED: 1 },
      byServiceCode: { 2079: 3, '=cmd()': 2 },
      byChannel: { seos: 2, counter: 1, email: 1, unknown: 1 },
      byDelivery: { 'in-progress': 5 },
    });
    const csv = statisticsCsv(stats);
    expect(csv.split('\r\n')[0]).toBe('dimension,key,count');
    expect(csv).toContain('status,RECEIVED,3\r\n');
    expect(csv).toContain(`serviceCode,'=cmd(),2\r\n`);
    expect(csv).toContain('channel,unknown,1\r\n');
    expect(serviceStatistics(h.db, { from: '2025-03-03', to: '2025-03-04' }).events).toBe(5);
    expectCode(() => serviceStatistics(h.db, { from: at(10), to: at(0) }), 'GW_ERR_EJOURNAL_EVENT_INVALID');
  });
});

describe('the contract is configuration', () => {
  it('reads the ejournal section with defaults and refuses a mapping to an unknown status', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-ejcfg-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const write = (ejournal: unknown) => {
      const file = path.join(dir, `${Math.random()}.json`);
      fs.writeFileSync(file, JSON.stringify({ ejournal }));
      return file;
    };
    const defaults = loadConfig({ env: {} }).ejournal;
    expect(defaults).toMatchObject({ enabled: false, lateEvents: 'deliver', rnu: { provider: 'given' } });
    expect(defaults.statuses).toContain('RESULT_SENT');
    expect(defaults.lifecycle['seos.rejected']).toBe('DENIED');

    const config = loadConfig({ env: {}, file: write({
      enabled: true, administration: '2.16.100.1.1.1.1.13', statuses: ['Q1', 'Q2'], lifecycle: { 'seos.received': 'Q1' },
      endpoint: { url: 'https://ejournal.example/api', fields: { rnu: 'service.rnu' } },
      oauth: { tokenUrl: 'https://auth.example/token', clientId: 'gw', clientSecret: 's3cret' },
    }) }).ejournal;
    expect(config.lifecycle['seos.received']).toBe('Q1');
    expect(config.lifecycle['seos.registered']).toBeNull();
    expect(config.endpoint.fields).toMatchObject({ rnu: 'service.rnu', status: 'status' });
    expect(JSON.stringify(loadConfig({ env: {}, file: write({ oauth: { tokenUrl: 'https://a.example/t', clientId: 'gw', clientSecret: 's3cret' } }) }))).not.toContain('s3cret');
    expect(vocabularyFromConfig(config).statusFor('seos.received')).toBe('Q1');

    expect(() => loadConfig({ env: {}, file: write({ lifecycle: { 'seos.received': 'NOPE' } }) })).toThrow(/ejournal.lifecycle\["seos.received"\]/);
    expect(() => loadConfig({ env: {}, file: write({ lifecycle: { 'seos.teleported': 'RECEIVED' } }) })).toThrow(/unknown lifecycle event/);
    expect(() => loadConfig({ env: {}, file: write({ enabled: true }) })).toThrow(/ejournal.endpoint.url/);
    expect(() => loadConfig({ env: {}, file: write({ rnu: { provider: 'demo' } }) })).toThrow(/demo/);
  });

  it('re-points paths, field names and status codes by configuration alone', async () => {
    const fields = { eventId: 'meta.id', rnu: 'service.rnu', status: 'service.state', occurredAt: 'meta.when', administration: 'service.adminOid', serviceCode: 'service.code' };
    const h = await harness({
      simulator: { eventsPath: '/journal/{rnu}/statuses', fields, duplicateStatus: 200 },
      client: {
        eventsPath: '/journal/{rnu}/statuses', method: 'PUT', fields: { ...fields, documentRegNumber: null, description: null, channel: null },
        responses: { duplicateWhen: { field: 'result', values: ['DUPLICATE'] } },
      },
    });
    await h.startEngine();
    h.schedule(h.record({ rnu: 'ПОРТАЛ/2025 #1', status: 'RECEIVED', occurredAt: at(0), description: 'not sent' }).outbox);
    await h.waitUntil(delivered(h, 1));
    expect(h.sim.events('ПОРТАЛ/2025 #1')[0]).toMatchObject({ status: 'RECEIVED', administration: ADMIN, serviceCode: SERVICE, description: undefined });
  });
});
