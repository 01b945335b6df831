/**
 * eJournal benchmark: service status events posted to the records-system API of a real gateway (`seos-gateway serve`,
 * i.e. createGateway, in its own process) and delivered to the eJournal simulator (its own process), order per RNU
 * checked by the simulator. See bench/README.md.
 *
 *   npx tsx bench/ejournal.bench.ts                  # 3 runs of each scenario, 1000 RNUs x 10 events, paced 2,000/s for 5 s
 *   npx tsx bench/ejournal.bench.ts --quick          # 1 run, 200 RNUs x 10 events, paced 2 s (smoke check)
 *   npx tsx bench/ejournal.bench.ts --runs 5 --rnus 2000 --events 10 --batch 200 --streams 4 --rate 2000 --seconds 5
 *   npx tsx bench/ejournal.bench.ts --only burst,paced --layouts single,split
 *
 * Scenarios, each on a fresh gateway (fresh SQLite, Redis prefix) and a reset simulator:
 * - reference: the same load generator POSTs the same events straight to the simulator's batch endpoint (no gateway):
 *   what the transport and the simulator cost alone; the gateway's rates are given as ratios to it.
 * - burst: every event offered as fast as the API takes it (`--streams` concurrent requests of `--batch` events;
 *   a stream owns a set of RNUs and sends their events in time order, round by round).
 * - paced: `--rate` events/s offered for `--seconds` (requests every 10 ms); p99 time to delivery under that load.
 * - per-event: the burst through `POST /v1/services/{rnu}/events` (one event per request) with a job per event and one
 *   event per eJournal request (`eventsPerJob: 1`, no batch contract): the way events went before batching.
 * Layouts: `single` = one gateway process (API and delivery workers); `split` = `serve` with
 * `delivery.inProcessWorkers: false` plus a `worker` process on the same database and Redis (the two cores used).
 *
 * Times: accepted = the API answered (committed); delivered = the gateway recorded eJournal's answer
 * (ejournal_events.delivered_at); time to delivery = delivered_at - recorded_at per event. Medians of the runs.
 * Markdown goes to stdout and to bench/out/ejournal.md; progress to stderr.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { createApiKey } from '../src/api/api-keys.ts';
import { freePort, startRedisServer, type RedisServer } from '../src/devtools/redis-server.ts';
import { openDatabase } from '../src/store/database.ts';
import { makeTestPki, type TestPkiManifest } from '../certs/test-pki.ts';
import { machineInfo, machineMarkdown } from './lib/machine.ts';
import { fmtMs, fmtRatio, markdownTable } from './lib/markdown.ts';
import { median, percentile } from './lib/stats.ts';
import { nowMs } from './lib/timing.ts';
import { makeTempDir, removeTempDirs } from './lib/files.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(THIS_FILE), '..');
const OUT_FILE = path.join(ROOT, 'bench', 'out', 'ejournal.md');
const TARGET = 2000;
const STATUSES = ['RECEIVED', 'REGISTERED', 'VALIDATION_FAILED', 'PAYMENT_REQUESTED', 'IN_PROGRESS', 'DENIED', 'RESULT_READY', 'RESULT_SENT', 'DELIVERED', 'TERMINATED', 'CLOSED', 'CANCELED_BY_USER'];

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    rnus: { type: 'string' },
    events: { type: 'string', default: '10' },
    batch: { type: 'string', default: '200' },
    streams: { type: 'string', default: '4' },
    rate: { type: 'string', default: String(TARGET) },
    seconds: { type: 'string' },
    'events-per-job': { type: 'string', default: '100' },
    only: { type: 'string' },
    layouts: { type: 'string', default: 'single,split' },
  },
});
const RUNS = Number(args.runs ?? (args.quick ? 1 : 3));
const RNUS = Number(args.rnus ?? (args.quick ? 200 : 1000));
const PER_RNU = Math.min(Number(args.events), STATUSES.length);
const BATCH = Number(args.batch);
const STREAMS = Number(args.streams);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds ?? (args.quick ? 2 : 5));
const EVENTS_PER_JOB = Number(args['events-per-job']);
const want = (name: string) => !args.only || args.only.split(',').includes(name);
const LAYOUTS = args.layouts.split(',') as Array<'single' | 'split'>;

const progress = (text: string) => process.stderr.write(`${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const children = new Set<ChildProcess>();
process.once('exit', () => { for (const c of children) c.kill('SIGKILL'); });

// ── processes ──

function node(args: string[], logFile: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, stdio: ['ignore', out, out], env: { ...process.env, NODE_ENV: 'production' } });
  fs.closeSync(out);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

interface Sim { url: string; tokenUrl: string; child: ChildProcess }

async function startSimulator(logDir: string): Promise<Sim> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/simulators/ejournal-simulator.ts'), '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const line = await new Promise<string>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => { buffer += chunk.toString(); const i = buffer.indexOf('\n'); if (i >= 0) resolve(buffer.slice(0, i)); });
    child.once('exit', (code) => reject(new Error(`simulator exited with ${code} (logs in ${logDir})`)));
  });
  const { url, tokenUrl } = JSON.parse(line) as { url: string; tokenUrl: string };
  return { url, tokenUrl, child };
}

interface SimReport { stats: Record<string, number>; events: number; orderViolations: number; cpuMicros: { user: number; system: number } }
async function simReport(sim: Sim, reset = false): Promise<SimReport> {
  const res = await fetch(`${sim.url}/_simulator/${reset ? 'reset' : 'report'}`, { method: reset ? 'POST' : 'GET' });
  return (await res.json()) as SimReport;
}

// ── the gateway under test ──

interface Gw { port: number; key: string; dbFile: string; processes: ChildProcess[]; stop(): Promise<void> }
let gwCounter = 0;

async function startGatewayUnderTest(ctx: Ctx, layout: 'single' | 'split', perEvent: boolean): Promise<Gw> {
  const tag = `gw-${++gwCounter}`;
  const dataDir = path.join(ctx.tmp, tag);
  const port = await freePort();
  const seosPort = await freePort();
  const admin = ctx.pki.admins[0];
  const file = path.join(ctx.tmp, `${tag}.json`);
  fs.writeFileSync(file, JSON.stringify({
    host: '127.0.0.1', port, dataDir, redisUrl: ctx.redis.url, logLevel: 'warn',
    self: { eik: '000696327', name: 'Община Алфа', guid: '{0a1f0000-0000-4000-8000-0000000000b1}' },
    signing: { pkcs12Path: admin.p12Path, password: ctx.pki.p12Password },
    seos: { endpoint: { port: seosPort }, client: { allowInsecureHttp: true } },
    registry: { participants: [] },
    delivery: {
      concurrency: 32, perDestinationConcurrency: perEvent ? 64 : 8, inProcessWorkers: layout === 'single',
      retry: { firstDelayMs: 200, factor: 2, maxAttempts: 20, jitter: 0.1 },
    },
    api: { maxJsonBytes: 8 * 1024 * 1024 },
    ejournal: {
      enabled: true, defaultServiceCode: '2079', maxEventsPerRequest: 10_000,
      endpoint: { url: ctx.sim.url, allowInsecureHttp: true, timeoutMs: 30_000, ...(perEvent ? {} : { batch: { path: '/v1/events/batch', maxEvents: 100 } }) },
      oauth: { tokenUrl: ctx.sim.tokenUrl, clientId: 'gateway', clientSecret: 'gateway-secret' },
      delivery: { eventsPerJob: perEvent ? 1 : EVENTS_PER_JOB, followUpJobs: 4 },
    },
  }));
  fs.mkdirSync(dataDir, { recursive: true });
  const dbFile = path.join(dataDir, 'gateway.db');
  const db = openDatabase(dbFile);
  const { key } = createApiKey(db, { name: 'bench connector', role: 'connector' });
  db.close();
  const processes = [node(['src/cli/main.ts', 'serve', '--config', file], path.join(ctx.tmp, `${tag}-serve.log`))];
  if (layout === 'split') processes.push(node(['src/cli/main.ts', 'worker', '--config', file], path.join(ctx.tmp, `${tag}-worker.log`)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (processes[0].exitCode !== null) throw new Error(`gateway exited during start-up; see ${ctx.tmp}/${tag}-serve.log`);
    try { if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break; } catch { /* not yet */ }
    if (Date.now() > deadline) throw new Error('gateway did not start within 60 s');
    await sleep(100);
  }
  return { port, key, dbFile, processes, async stop() { await Promise.all(processes.map(stopChild)); } };
}

// ── load ──

interface Ctx { tmp: string; pki: TestPkiManifest; redis: RedisServer; sim: Sim; agent: http.Agent }

function post(ctx: Ctx, port: number, urlPath: string, body: string, key?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: ctx.agent, headers: {
      'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(key ? { authorization: `Bearer ${key}` } : {}),
    } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const T0 = Date.now() - 3600_000;
interface Ev { rnu: string; status: string; occurredAt: string; serviceCode: string; channel: string }
const eventOf = (tag: string, r: number, i: number): Ev => ({ rnu: `${tag}-${r}`, status: STATUSES[i], occurredAt: new Date(T0 + i * 1000).toISOString(), serviceCode: '2079', channel: 'portal' });

/** Streams own disjoint RNUs and send their events round by round (event i of every RNU of the stream, then i + 1), so each RNU's events are recorded in time order. */
function streamsOf(tag: string, rnus: number, perRnu: number, streams: number): Ev[][][] {
  return Array.from({ length: streams }, (_, s) => {
    const mine = Array.from({ length: rnus }, (_, r) => r).filter((r) => r % streams === s);
    return Array.from({ length: perRnu }, (_, i) => mine.map((r) => eventOf(tag, r, i)));
  });
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}

type Send = (events: Ev[]) => Promise<void>;

function gatewayBatchSender(ctx: Ctx, gw: Gw, latencies: number[]): Send {
  return async (events) => {
    const t = nowMs();
    const res = await post(ctx, gw.port, '/v1/services/events', JSON.stringify({ events }), gw.key);
    latencies.push(nowMs() - t);
    if (res.status !== 200) throw new Error(`API answered ${res.status}: ${res.text.slice(0, 300)}`);
  };
}

function gatewaySingleSender(ctx: Ctx, gw: Gw, latencies: number[]): Send {
  return async (events) => {
    await Promise.all(events.map(async (e) => {
      const t = nowMs();
      const { rnu, ...rest } = e;
      const res = await post(ctx, gw.port, `/v1/services/${encodeURIComponent(rnu)}/events`, JSON.stringify(rest), gw.key);
      latencies.push(nowMs() - t);
      if (res.status !== 201 && res.status !== 200) throw new Error(`API answered ${res.status}: ${res.text.slice(0, 300)}`);
    }));
  };
}

async function token(ctx: Ctx): Promise<string> {
  const res = await fetch(ctx.sim.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('gateway:gateway-secret').toString('base64')}` }, body: 'grant_type=client_credentials' });
  return ((await res.json()) as { access_token: string }).access_token;
}

/** The reference: the same batches straight to the simulator (the transport and eJournal alone). */
function simulatorSender(ctx: Ctx, bearer: string, latencies: number[], deliveredAt: number[]): Send {
  const port = Number(new URL(ctx.sim.url).port);
  return async (events) => {
    for (const part of chunks(events, 100)) {
      const t = nowMs();
      const body = JSON.stringify({ events: part.map((e, i) => ({ ...e, administration: '000696327', eventId: `${e.rnu}-${i}` })) });
      const res = await new Promise<number>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: '/v1/events/batch', method: 'POST', agent: ctx.agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${bearer}` } }, (r) => { r.resume(); r.on('end', () => resolve(r.statusCode ?? 0)); });
        req.on('error', reject);
        req.end(body);
      });
      if (res !== 200) throw new Error(`simulator answered ${res}`);
      const done = nowMs();
      latencies.push(done - t);
      for (let k = 0; k < part.length; k++) deliveredAt.push(done - t);
    }
  };
}

/** Burst: each stream sends its rounds in requests of `batch` events, one request at a time. */
async function burst(streams: Ev[][][], batch: number, send: Send): Promise<void> {
  await Promise.all(streams.map(async (rounds) => {
    for (const round of rounds) for (const part of chunks(round, batch)) await send(part);
  }));
}

/**
 * Paced: every 10 ms the events due by then (RNUs cycle), in requests of at most `batch`. Requests run concurrently;
 * one that carries the next event of an RNU is sent only after the request with its previous event was answered.
 */
async function paced(tag: string, rate: number, seconds: number, batch: number, send: Send): Promise<void> {
  const total = Math.round(rate * seconds);
  // Enough RNUs that none gets more events than the status list has (each (RNU, status, time) is a new event).
  const rnus = Math.max(RNUS, Math.ceil(total / PER_RNU));
  const next = new Map<number, number>();
  const started = nowMs();
  let offered = 0;
  const lastOf = new Map<string, Promise<void>>();
  const all: Array<Promise<void>> = [];
  while (offered < total) {
    const due = Math.min(total, Math.ceil(((nowMs() - started) / 1000 + 0.01) * rate));
    const events: Ev[] = [];
    for (; offered < due; offered++) {
      const r = offered % rnus;
      const i = next.get(r) ?? 0;
      next.set(r, i + 1);
      events.push(eventOf(tag, r, i));
    }
    for (const part of chunks(events, batch)) {
      const before = new Set(part.map((e) => lastOf.get(e.rnu)).filter((p): p is Promise<void> => p !== undefined));
      const request = Promise.all(before).then(() => send(part));
      for (const e of part) lastOf.set(e.rnu, request);
      all.push(request);
    }
    await sleep(Math.max(0, started + (offered / rate) * 1000 - nowMs()));
  }
  await Promise.all(all);
}

// ── one run ──

interface Run {
  scenario: string; layout: string; events: number; acceptedPerSecond: number; deliveredPerSecond: number;
  p50: number; p99: number; apiP99: number; violations: number; once: boolean; requests: number; gatewayCpuMs: number;
}

function cpuMsOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
  } catch { return 0; }
}

async function waitDelivered(dbFile: string, n: number, timeoutMs: number): Promise<void> {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const count = db.prepare(`SELECT COUNT(*) AS n FROM ejournal_events WHERE state IN ('delivered', 'rejected')`);
    const deadline = Date.now() + timeoutMs;
    while ((count.get() as { n: number }).n < n) {
      if (Date.now() > deadline) throw new Error(`only ${(count.get() as { n: number }).n} of ${n} delivered after ${timeoutMs} ms`);
      await sleep(20);
    }
  } finally { db.close(); }
}

function deliveryTimes(dbFile: string): { latencies: number[]; firstRecorded: number; lastDelivered: number } {
  const db = new Database(dbFile, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT recorded_at AS r, delivered_at AS d FROM ejournal_events WHERE delivered_at IS NOT NULL').all() as Array<{ r: string; d: string }>;
    const latencies = rows.map((x) => Date.parse(x.d) - Date.parse(x.r));
    return { latencies, firstRecorded: Math.min(...rows.map((x) => Date.parse(x.r))), lastDelivered: Math.max(...rows.map((x) => Date.parse(x.d))) };
  } finally { db.close(); }
}

async function gatewayRun(ctx: Ctx, scenario: 'burst' | 'paced' | 'per-event', layout: 'single' | 'split', run: number): Promise<Run> {
  const gw = await startGatewayUnderTest(ctx, layout, scenario === 'per-event');
  try {
    const tag = `${scenario}-${layout}-${run}`;
    const apiLatencies: number[] = [];
    // Warm-up: code paths compiled, token fetched.
    await gatewayBatchSender(ctx, gw, [])([eventOf(`warm-${tag}`, 0, 0)]);
    await waitDelivered(gw.dbFile, 1, 30_000);
    await simReport(ctx.sim, true);
    const cpu0 = gw.processes.reduce((n, p) => n + cpuMsOf(p.pid), 0);
    const started = Date.now();
    const events = scenario === 'paced' ? Math.round(RATE * SECONDS) : RNUS * PER_RNU;
    if (scenario === 'paced') await paced(tag, RATE, SECONDS, BATCH, gatewayBatchSender(ctx, gw, apiLatencies));
    else if (scenario === 'burst') await burst(streamsOf(tag, RNUS, PER_RNU, STREAMS), BATCH, gatewayBatchSender(ctx, gw, apiLatencies));
    else await burst(streamsOf(tag, RNUS, PER_RNU, STREAMS), 16, gatewaySingleSender(ctx, gw, apiLatencies));
    const accepted = Date.now();
    await waitDelivered(gw.dbFile, events + 1, 600_000);
    const cpu = gw.processes.reduce((n, p) => n + cpuMsOf(p.pid), 0) - cpu0;
    const report = await simReport(ctx.sim);
    if (report.events !== events || report.stats.duplicates !== 0) progress(`${tag}: the simulator recorded ${report.events} of ${events} events, ${report.stats.duplicates} duplicates (${JSON.stringify(report.stats)})`);
    const times = deliveryTimes(gw.dbFile);
    const lastDelivered = times.lastDelivered;
    const latencies = times.latencies.slice(1); // without the warm-up event
    return {
      scenario, layout, events, acceptedPerSecond: events / ((accepted - started) / 1000), deliveredPerSecond: events / ((lastDelivered - started) / 1000),
      p50: percentile(latencies, 50), p99: percentile(latencies, 99), apiP99: percentile(apiLatencies, 99),
      violations: report.orderViolations, once: report.events === events && report.stats.duplicates === 0,
      requests: scenario === 'per-event' ? report.stats.posts : report.stats.batches, gatewayCpuMs: cpu / events,
    };
  } finally {
    await gw.stop();
  }
}

async function referenceRun(ctx: Ctx, scenario: 'burst' | 'paced', run: number): Promise<Run> {
  await simReport(ctx.sim, true);
  const bearer = await token(ctx);
  const latencies: number[] = [];
  const deliveredAfter: number[] = [];
  const send = simulatorSender(ctx, bearer, latencies, deliveredAfter);
  const tag = `ref-${scenario}-${run}`;
  const started = nowMs();
  const events = scenario === 'paced' ? Math.round(RATE * SECONDS) : RNUS * PER_RNU;
  if (scenario === 'paced') await paced(tag, RATE, SECONDS, BATCH, send);
  else await burst(streamsOf(tag, RNUS, PER_RNU, STREAMS), BATCH, send);
  const seconds = (nowMs() - started) / 1000;
  const report = await simReport(ctx.sim);
  return {
    scenario, layout: 'reference', events, acceptedPerSecond: events / seconds, deliveredPerSecond: events / seconds,
    p50: percentile(deliveredAfter, 50), p99: percentile(deliveredAfter, 99), apiP99: percentile(latencies, 99),
    violations: report.orderViolations, once: report.events === events && report.stats.duplicates === 0, requests: report.stats.batches, gatewayCpuMs: 0,
  };
}

// ── report ──

function medianRun(runs: Run[]): Run {
  const m = (f: (r: Run) => number) => median(runs.map(f));
  return {
    ...runs[0], acceptedPerSecond: m((r) => r.acceptedPerSecond), deliveredPerSecond: m((r) => r.deliveredPerSecond), p50: m((r) => r.p50),
    p99: m((r) => r.p99), apiP99: m((r) => r.apiP99), requests: m((r) => r.requests), gatewayCpuMs: m((r) => r.gatewayCpuMs),
    violations: Math.max(...runs.map((r) => r.violations)), once: runs.every((r) => r.once),
  };
}

const rate = (x: number) => `${Math.round(x).toLocaleString('en-US')} /s`;

async function main(): Promise<void> {
  const info = machineInfo();
  const tmp = makeTempDir('ejournal-bench-');
  progress(`ejournal bench: ${RUNS} run(s); ${RNUS} RNUs x ${PER_RNU} events, batches of ${BATCH}, ${STREAMS} streams; paced ${RATE}/s for ${SECONDS} s; temp ${tmp}`);
  const pki = makeTestPki({ out: path.join(tmp, 'pki') });
  const redis = await startRedisServer();
  const sim = await startSimulator(tmp);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const ctx: Ctx = { tmp, pki, redis, sim, agent };
  const medians: Run[] = [];
  try {
    const scenarios: Array<'burst' | 'paced'> = (['burst', 'paced'] as const).filter(want);
    for (const scenario of scenarios) {
      const refs: Run[] = [];
      for (let i = 0; i < RUNS; i++) { progress(`reference ${scenario}, run ${i + 1}…`); refs.push(await referenceRun(ctx, scenario, i)); }
      medians.push(medianRun(refs));
      for (const layout of LAYOUTS) {
        const runs: Run[] = [];
        for (let i = 0; i < RUNS; i++) { progress(`${scenario} ${layout}, run ${i + 1}…`); runs.push(await gatewayRun(ctx, scenario, layout, i)); }
        medians.push(medianRun(runs));
      }
    }
    if (want('per-event')) {
      const runs: Run[] = [];
      for (let i = 0; i < Math.min(RUNS, 2); i++) { progress(`per-event single, run ${i + 1}…`); runs.push(await gatewayRun(ctx, 'per-event', 'single', i)); }
      medians.push(medianRun(runs));
    }

    const ref = (scenario: string) => medians.find((r) => r.layout === 'reference' && r.scenario === (scenario === 'per-event' ? 'burst' : scenario));
    const table = markdownTable(
      ['scenario', 'layout', 'events', 'accepted/s', 'delivered/s', 'delivered ÷ reference', 'p50 to delivery', 'p99 to delivery', 'API p99', 'eJournal requests', 'gateway CPU / event', 'order violations', 'each once'],
      medians.map((r) => [
        r.scenario, r.layout, String(r.events), rate(r.acceptedPerSecond), rate(r.deliveredPerSecond),
        r.layout === 'reference' ? '1' : fmtRatio(r.deliveredPerSecond / (ref(r.scenario)?.deliveredPerSecond ?? NaN)),
        fmtMs(r.p50), fmtMs(r.p99), fmtMs(r.apiP99), String(Math.round(r.requests)), r.layout === 'reference' ? '—' : fmtMs(r.gatewayCpuMs),
        String(r.violations), r.once ? 'yes' : 'NO',
      ]),
    );
    const gatewayRuns = medians.filter((r) => r.layout !== 'reference' && r.scenario !== 'per-event');
    const best = gatewayRuns.reduce<Run | undefined>((b, r) => (!b || Math.min(r.acceptedPerSecond, r.deliveredPerSecond) > Math.min(b.acceptedPerSecond, b.deliveredPerSecond) ? r : b), undefined);
    const bestRate = best ? Math.min(best.acceptedPerSecond, best.deliveredPerSecond) : NaN;
    const orderOk = medians.every((r) => r.violations === 0 && r.once);
    const pacedRuns = gatewayRuns.filter((r) => r.scenario === 'paced');
    const md = [
      '# eJournal benchmark',
      '',
      machineMarkdown(info),
      `- Load: ${RNUS} RNUs x ${PER_RNU} events (burst, ${STREAMS} concurrent streams, ${BATCH} events per request to POST /v1/services/events); `
        + `paced ${RATE.toLocaleString('en-US')} events/s for ${SECONDS} s. Medians of ${RUNS} run(s); every run on a fresh gateway.`,
      `- Gateway: \`seos-gateway serve\` (createGateway) in its own process; eJournal batch contract (100 events per request), ${EVENTS_PER_JOB} events per delivery job; `
        + 'the simulator in its own process; a private redis-server; SQLite as the gateway configures it.',
      '- The machine is shared (load average above): trust the ratios to the reference, measured in the same run, over absolute rates.',
      '',
      '## Results',
      '',
      table,
      '',
      '"reference": the same events sent by the same load generator straight to the simulator\'s batch endpoint (no gateway). '
        + '"delivered/s": events divided by the time from the first request to the last delivery recorded by the gateway. '
        + '"to delivery": per event, from its commit to the commit of eJournal\'s answer (for the reference: the batch request\'s round trip). '
        + '"API p99": per request. "per-event": one event per request, a job per event and one event per eJournal request, as before batching.',
      '',
      '## Target',
      '',
      markdownTable(['target', 'measured', 'result'], [
        [`≥ ${TARGET.toLocaleString('en-US')} events/s accepted through the API and delivered, order per RNU intact`,
          best ? `${rate(bestRate)} (${best.scenario}, ${best.layout}: the lower of accepted/s and delivered/s)` : '—', best && bestRate >= TARGET && orderOk ? 'PASS' : 'FAIL'],
        ...pacedRuns.map((r) => [`paced ${RATE.toLocaleString('en-US')}/s kept up (${r.layout})`, `delivered ${rate(r.deliveredPerSecond)}, p99 to delivery ${fmtMs(r.p99)}`,
          r.deliveredPerSecond >= RATE * 0.95 ? 'PASS' : 'FAIL']),
        ['order per RNU intact, each event once', orderOk ? 'yes, every run' : 'NO', orderOk ? 'PASS' : 'FAIL'],
      ], ['left', 'left', 'center']),
      '',
    ].join('\n');
    fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
    fs.writeFileSync(OUT_FILE, md);
    process.stdout.write(md);
  } finally {
    agent.destroy();
    await stopChild(sim.child);
    await redis.stop();
    removeTempDirs();
  }
}

await main();
