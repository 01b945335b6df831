/**
 * Exchange benchmark: two gateways on this machine exchange registration requests with a 10 KiB attachment.
 * Gateway A runs in this process (the benchmark calls `A.outbound.sendDocument` like the records-system API
 * does); gateway B is a separate `seos-gateway serve` process. Both on loopback, a private redis-server, static
 * participants, default delivery settings (nothing tuned). See bench/README.md.
 *
 *   npm run bench:exchange                          # full run (~2 minutes)
 *   npx tsx bench/exchange.bench.ts --quick         # 5 s phases: a smoke check (~40 s)
 *   npx tsx bench/exchange.bench.ts --profile always --strict
 *   npx tsx bench/exchange.bench.ts --per-destination 4    # A keeps at most 4 deliveries to B in flight (default 16)
 *
 * Phases, in one run:
 *   1. floor: this process builds, signs and submits straight to B with createSeosClient (no outbox, no queue),
 *      one at a time and at 4 and 16 in flight: the least an exchange costs with the same code on both ends;
 *   2. open loop at 50 exchanges/s (the latency target), sends on a fixed schedule whatever the replies do;
 *   3. saturation: a fixed number of exchanges kept outstanding (closed loop) to find the sustained rate;
 *   4. fsync: a micro-measurement of this disk, and (with strace) the fsyncs each process makes per exchange;
 *   5. where the time goes (when a target fails, or --profile always): CPU profiles of both processes under
 *      saturation, summarized by area and by function.
 *
 * Markdown goes to stdout and bench/out/exchange.md; progress goes to stderr.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { makeTestPki, type TestPkiManifest } from '../certs/test-pki.ts';
import { createGateway, type Gateway } from '../src/app/gateway.ts';
import { loadConfig } from '../src/config/index.ts';
import { freePort, startRedisServer, type RedisServer } from '../src/devtools/redis-server.ts';
import { loadSigningIdentity, type SigningIdentity } from '../src/pki/index.ts';
import { buildRegistrationRequest, newGuid, signMessage, verifySignedMessage, type Participant, type SeosDocument } from '../src/seos/index.ts';
import { createSeosClient } from '../src/seos/soap/index.ts';
import { ContentStore } from '../src/store/content-store.ts';
import { formatDate } from '../src/seos/values.ts';
import { machineInfo, machineMarkdown, toolVersion } from './lib/machine.ts';
import { fmtBytes, fmtMs, fmtRate, fmtRatio, markdownTable, passFail } from './lib/markdown.ts';
import { mean, percentile } from './lib/stats.ts';
import { makeTempDir } from './lib/files.ts';
import { summarizeProfile, type CpuProfile, type ProfileSummary } from './lib/cpu-profile.ts';
import { childrenOf, cpuMs, machineBusyMs, redisPid } from './lib/proc.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(THIS_FILE), '..');
const OUT_FILE = path.join(ROOT, 'bench', 'out', 'exchange.md');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

const KiB = 1024;
const ATTACHMENT_BYTES = 10 * KiB;
const TARGET_RATE = 250;
const TARGET_P99_MS = 250;
const TARGET_OPEN_RATE = 50;
/** Accepts (sendDocument calls) the saturation driver keeps in flight at once. */
const MAX_ACCEPTING = 16;
/** A second counts as quiet when other processes used less than this share of one core. */
const QUIET_OTHERS = 0.25;

const ALFA_GUID = '{0a1f0000-0000-4000-8000-00000000be01}';
const BETA_GUID = '{0b2e0000-0000-4000-8000-00000000be02}';
const ALFA: Participant = { identifier: '000000001', administrativeBodyName: 'Община Алфа', guid: ALFA_GUID };
const BETA: Participant = { identifier: '000000002', administrativeBodyName: 'Община Бета', guid: BETA_GUID };

const log = (msg: string) => process.stderr.write(`[exchange] ${msg}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

// ---------------------------------------------------------------------------------------------------------------
// Options

interface Options {
  quick: boolean;
  openRate: number;
  openSeconds: number;
  satSeconds: number;
  satWarmupSeconds: number;
  concurrency: number;
  /** Gateway A's delivery.perDestinationConcurrency; undefined = the default (16). */
  perDestination: number | undefined;
  profile: 'on-fail' | 'always' | 'never';
  profileSeconds: number;
  strace: boolean;
  strict: boolean;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rate: { type: 'string' },
      'open-seconds': { type: 'string' },
      'sat-seconds': { type: 'string' },
      concurrency: { type: 'string' },
      'per-destination': { type: 'string' },
      profile: { type: 'string', default: 'on-fail' },
      'no-strace': { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
    },
  });
  const quick = values.quick ?? false;
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  const profile = values.profile as Options['profile'];
  if (!['on-fail', 'always', 'never'].includes(profile)) throw new Error('--profile must be on-fail, always or never');
  return {
    quick,
    openRate: num(values.rate, TARGET_OPEN_RATE),
    openSeconds: num(values['open-seconds'], quick ? 5 : 20),
    satSeconds: num(values['sat-seconds'], quick ? 6 : 20),
    satWarmupSeconds: quick ? 1 : 3,
    concurrency: num(values.concurrency, 64),
    perDestination: values['per-destination'] === undefined ? undefined : Number(values['per-destination']),
    profile,
    profileSeconds: quick ? 4 : 10,
    strace: !(values['no-strace'] ?? false),
    strict: values.strict ?? false,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Processes: CPU and peak RSS from /proc

/** VmHWM (peak RSS over the process's life) in bytes. */
function peakRss(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU ms used in a window by A, B, redis-server and everything else on the machine (other people's work). */
interface CpuWindow { a: number; b: number; redis: number; others: number; wallMs: number; aSystem: number; bSystem: number }

class CpuMeter {
  constructor(private readonly pids: { a: number; b: () => number; redis?: number }) {}
  start(): () => CpuWindow {
    const t0 = performance.now();
    const a0 = cpuMs(this.pids.a);
    const bPid = this.pids.b();
    const b0 = cpuMs(bPid);
    const r0 = this.pids.redis ? cpuMs(this.pids.redis) : Number.NaN;
    const m0 = machineBusyMs();
    const as0 = cpuMs(this.pids.a, { system: true });
    const bs0 = cpuMs(bPid, { system: true });
    return () => {
      const a = cpuMs(this.pids.a) - a0;
      const b = cpuMs(bPid) - b0;
      const redis = this.pids.redis ? cpuMs(this.pids.redis) - r0 : Number.NaN;
      const others = Math.max(0, machineBusyMs() - m0 - a - b - (Number.isNaN(redis) ? 0 : redis));
      const aSystem = cpuMs(this.pids.a, { system: true }) - as0;
      const bSystem = cpuMs(bPid, { system: true }) - bs0;
      return { a, b, redis, others, wallMs: performance.now() - t0, aSystem, bSystem };
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Gateway B: a separate `seos-gateway serve` process

interface ProcessB {
  /** The node process running the gateway (tsx's child). */
  readonly pid: number;
  stop(): Promise<void>;
}

async function startB(configPath: string, apiPort: number, logPath: string, profileDir?: string): Promise<ProcessB> {
  const out = fs.openSync(logPath, 'a');
  const nodeFlags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child: ChildProcess = spawn(TSX, [...nodeFlags, 'src/cli/main.ts', 'serve', '--config', configPath], {
    cwd: ROOT, stdio: ['ignore', out, out], env: { ...process.env, NODE_ENV: 'production' },
  });
  fs.closeSync(out);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gateway B exited with code ${child.exitCode} during start-up; see ${logPath}`);
    if (await healthy(apiPort)) break;
    if (Date.now() > deadline) throw new Error(`gateway B did not answer /health within 30 s; see ${logPath}`);
    await sleep(100);
  }
  // tsx runs the program in a child node process; that one is the gateway.
  const pid = childrenOf(child.pid!).find((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('main.ts'); } catch { return false; }
  }) ?? child.pid!;
  return {
    pid,
    async stop() {
      process.off('exit', killOnExit);
      if (child.exitCode !== null) return;
      child.kill('SIGTERM'); // tsx relays it; serve shuts down cleanly (and writes its CPU profile)
      const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } child.kill('SIGKILL'); }, 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The exchange: documents, completion tracking

let docCounter = 0;

/** A registration request's document: Cyrillic metadata, one correspondent, a fresh 10 KiB attachment. */
function makeDocument(): SeosDocument {
  docCounter++;
  return {
    id: { number: { docNumber: `БЕНЧ-${docCounter}`, docDate: formatDate(new Date()) }, documentGuid: newGuid() },
    kind: 'Заявление',
    about: 'Искане за предоставяне на информация по преписка',
    correspondents: [{ name: 'Община Алфа', city: 'Алфа' }],
    // Random bytes every time: the spool is content-addressed, a repeated attachment would skip its write and fsync.
    attachments: [{ fileName: 'приложение.pdf', mimeType: 'application/pdf', content: { source: 'bytes', bytes: crypto.randomBytes(ATTACHMENT_BYTES) } }],
  };
}

interface Completion { documentId: string; acceptedAt: number; repliedAt: number; latencyMs: number }

/**
 * Watches A's status history (cheap incremental reads by row id) for the peer's verified answer to each document
 * the benchmark sent. The latency of one exchange is the `at` of the status row written from B's verified reply
 * (inside the transaction that settles the delivery attempt, just before its commit) minus the wall-clock moment
 * `sendDocument` returned. Polling only tells the closed loop when to send more; it does not time anything.
 */
class CompletionTracker {
  private lastId: number;
  private readonly accepted = new Map<string, number>();
  private readonly early = new Map<string, { at: number; failed: boolean }>();
  private readonly stmt;
  private timer: NodeJS.Timeout | undefined;
  private waiters: Array<() => void> = [];
  readonly completions: Completion[] = [];
  failures = 0;

  constructor(private readonly gateway: Gateway) {
    this.stmt = gateway.db.prepare(`SELECT id, document_id AS documentId, status, at FROM status_history
      WHERE id > ? AND status IN ('DS_WAIT_REGISTRATION', 'DS_REGISTERED', 'SENT_FAILED', 'DS_REJECTED') ORDER BY id`);
    this.lastId = (gateway.db.prepare('SELECT COALESCE(MAX(id), 0) AS id FROM status_history').get() as { id: number }).id;
  }

  get outstanding(): number {
    return this.accepted.size;
  }

  start(intervalMs: number): void {
    const tick = () => {
      this.poll();
      this.timer = setTimeout(tick, intervalMs);
    };
    tick();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
  }

  accept(documentId: string, acceptedAt: number): void {
    const seen = this.early.get(documentId);
    if (seen) {
      this.early.delete(documentId);
      this.settle(documentId, acceptedAt, seen.at, seen.failed);
    } else {
      this.accepted.set(documentId, acceptedAt);
    }
  }

  /** Resolves at the next completion (or failure). */
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  reset(): void {
    this.completions.length = 0;
    this.failures = 0;
  }

  private poll(): void {
    const rows = this.stmt.all(this.lastId) as Array<{ id: number; documentId: string; status: string; at: string }>;
    let any = false;
    for (const row of rows) {
      this.lastId = Math.max(this.lastId, row.id);
      const failed = row.status === 'SENT_FAILED' || row.status === 'DS_REJECTED';
      const acceptedAt = this.accepted.get(row.documentId);
      const at = Date.parse(row.at);
      if (acceptedAt === undefined) {
        this.early.set(row.documentId, { at, failed });
        continue;
      }
      this.accepted.delete(row.documentId);
      this.settle(row.documentId, acceptedAt, at, failed);
      any = true;
    }
    if (any) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    }
  }

  private settle(documentId: string, acceptedAt: number, repliedAt: number, failed: boolean): void {
    if (failed) this.failures++;
    else this.completions.push({ documentId, acceptedAt, repliedAt, latencyMs: repliedAt - acceptedAt });
  }

  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.accepted.size > 0 && Date.now() < deadline) await Promise.race([this.next(), sleep(200)]);
    return this.accepted.size === 0;
  }
}

interface Sent { acceptMs: number; lagMs: number }

/** One send through A's pipeline: the records-system call; returns when the document is committed and queued. */
async function sendOne(A: Gateway, tracker: CompletionTracker): Promise<number> {
  return (await sendTracked(A, tracker)).acceptMs;
}

async function sendTracked(A: Gateway, tracker: CompletionTracker): Promise<{ acceptMs: number; documentId: string }> {
  const t0 = performance.now();
  const queued = await A.outbound.sendDocument({ recipient: BETA_GUID, document: makeDocument() });
  const acceptMs = performance.now() - t0;
  tracker.accept(queued.documentId, Date.now());
  return { acceptMs, documentId: queued.documentId };
}

// ---------------------------------------------------------------------------------------------------------------
// Phases

interface LatencyStats { n: number; p50: number; p90: number; p99: number; max: number; mean: number }

function latencyStats(xs: number[]): LatencyStats {
  return { n: xs.length, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: xs.length ? Math.max(...xs) : Number.NaN, mean: mean(xs) };
}

interface FloorResult {
  sequential: { sign: LatencyStats; roundTrip: LatencyStats };
  parallel: Array<{ inFlight: number; rate: number; roundTrip: LatencyStats; cpu: CpuWindow; n: number }>;
}

/** The floor: sign here, submit straight to B, verify B's signed reply (pinned to B's registered certificate). */
async function floorPhase(identity: SigningIdentity, bUrl: string, bSerial: string, meter: CpuMeter, quick: boolean): Promise<FloorResult> {
  const client = createSeosClient({ allowInsecureHttp: true });
  const verifyReply = (reply: Buffer) => {
    const v = verifySignedMessage(reply);
    if (v.signature.signer.serialHex.replace(/^0+/, '').toUpperCase() !== bSerial) throw new Error('reply signed by another certificate');
    return v;
  };
  const one = async (): Promise<{ signMs: number; rtMs: number }> => {
    const t0 = performance.now();
    const doc = makeDocument();
    const message = buildRegistrationRequest({ sender: ALFA, recipient: BETA }, doc);
    const bytes = signMessage(message, identity);
    const t1 = performance.now();
    const outcome = await client.submit(bUrl, bytes, { messageGuid: message.header.messageGuid, documentGuid: doc.id.documentGuid, verifyReply });
    const t2 = performance.now();
    if (outcome.kind !== 'delivered' || outcome.status !== 'DS_WAIT_REGISTRATION') throw new Error(`floor: B answered ${outcome.kind} ${'status' in outcome ? outcome.status : ''}`);
    return { signMs: t1 - t0, rtMs: t2 - t1 };
  };
  try {
    for (let i = 0; i < 30; i++) await one(); // warm-up: JIT, connections, B's caches
    const seqRuns = quick ? 100 : 300;
    log(`floor: ${seqRuns} raw exchanges one at a time`);
    const sign: number[] = [];
    const rt: number[] = [];
    for (let i = 0; i < seqRuns; i++) {
      const r = await one();
      sign.push(r.signMs);
      rt.push(r.rtMs);
    }
    const parallel: FloorResult['parallel'] = [];
    for (const inFlight of [4, 16]) {
      const seconds = quick ? 3 : 6;
      log(`floor: ${inFlight} raw exchanges in flight for ${seconds} s`);
      const lat: number[] = [];
      const end = performance.now() + seconds * 1000;
      const done = meter.start();
      const workers = Array.from({ length: inFlight }, async () => {
        while (performance.now() < end) lat.push((await one()).rtMs);
      });
      await Promise.all(workers);
      const cpu = done();
      parallel.push({ inFlight, rate: (lat.length * 1000) / cpu.wallMs, roundTrip: latencyStats(lat), cpu, n: lat.length });
    }
    return { sequential: { sign: latencyStats(sign), roundTrip: latencyStats(rt) }, parallel };
  } finally {
    client.close();
  }
}

interface OpenLoopResult {
  offered: number;
  rate: number;
  seconds: number;
  sent: number;
  completed: number;
  failed: number;
  incomplete: number;
  latency: LatencyStats;
  /** From the moment each send was due (generator lag + accept + the exchange): what a records system on that schedule sees. */
  fromSchedule: LatencyStats;
  accept: LatencyStats;
  lag: LatencyStats;
  cpu: CpuWindow;
  achievedRate: number;
  /**
   * Per second of sending: how many were accepted then and their latency (p50, max); the longest event-loop delay
   * A saw in that second; and the CPU other processes used then (share of one core), to tell our stalls from theirs.
   */
  bySecond: Array<{ second: number; n: number; p50: number; max: number; loopMaxMs?: number; othersShare?: number }>;
  /** Latency of the exchanges sent in seconds when other processes used under a quarter of a core. */
  quietSeconds: { latency: LatencyStats; seconds: number; of: number };
}

/** Sends on a fixed schedule (rate per second) for `seconds`, whatever the replies do; then waits for the stragglers. */
async function openLoop(A: Gateway, tracker: CompletionTracker, meter: CpuMeter, rate: number, seconds: number): Promise<OpenLoopResult> {
  tracker.reset();
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const sent: Sent[] = [];
  const beforeAccept = new Map<string, number>();
  const done = meter.start();
  const t0 = performance.now();
  const wall0 = Date.now();
  const perSecond: Array<{ loopMaxMs: number; othersShare: number }> = [];
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  let second = meter.start();
  const ticker = setInterval(() => {
    const c = second();
    perSecond.push({ loopMaxMs: loop.max / 1e6, othersShare: c.others / c.wallMs });
    loop.reset();
    second = meter.start();
  }, 1000);
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    // Behind schedule, still let the event loop handle I/O between two sends, as it does between two HTTP
    // requests. Sends are one at a time: at 50/s an accept (a few ms) leaves the schedule room; the lag is reported.
    if (wait > 0) await sleep(wait);
    else await new Promise((r) => setImmediate(r));
    const lagMs = performance.now() - due;
    const { acceptMs, documentId } = await sendTracked(A, tracker);
    sent.push({ acceptMs, lagMs });
    beforeAccept.set(documentId, lagMs + acceptMs);
  }
  const sendSeconds = (performance.now() - t0) / 1000;
  const drained = await tracker.drain(60_000);
  clearInterval(ticker);
  loop.disable();
  const cpu = done();
  if (!drained) log(`open loop: ${tracker.outstanding} exchanges still without a reply after 60 s`);
  const lat = tracker.completions.map((c) => c.latencyMs);
  const buckets = new Map<number, number[]>();
  for (const c of tracker.completions) {
    const sec = Math.floor((c.acceptedAt - wall0) / 1000);
    buckets.set(sec, [...(buckets.get(sec) ?? []), c.latencyMs]);
  }
  const bySecond = [...buckets.entries()].sort((x, y) => x[0] - y[0])
    .map(([sec, xs]) => ({ second: sec, n: xs.length, p50: percentile(xs, 50), max: Math.max(...xs), ...perSecond[sec] }));
  const quiet = [...buckets.entries()].filter(([sec]) => perSecond[sec] !== undefined && perSecond[sec].othersShare < QUIET_OTHERS);
  return {
    offered: total, rate, seconds, sent: sent.length, completed: lat.length, failed: tracker.failures, incomplete: tracker.outstanding,
    latency: latencyStats(lat),
    fromSchedule: latencyStats(tracker.completions.map((c) => c.latencyMs + (beforeAccept.get(c.documentId) ?? 0))),
    accept: latencyStats(sent.map((s) => s.acceptMs)), lag: latencyStats(sent.map((s) => s.lagMs)), cpu,
    achievedRate: sent.length / sendSeconds, bySecond,
    quietSeconds: { latency: latencyStats(quiet.flatMap(([, xs]) => xs)), seconds: quiet.length, of: buckets.size },
  };
}

interface SaturationResult {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  completedInWindow: number;
  rate: number;
  perSecond: { min: number; median: number; max: number };
  /** Exchanges actually outstanding, sampled every 100 ms in the window (the driver shares A's event loop). */
  meanOutstanding: number;
  latency: LatencyStats;
  accept: LatencyStats;
  failed: number;
  cpu: CpuWindow;
  /** performance.now() bounds of the measured window. */
  window: { start: number; end: number };
}

/**
 * Keeps up to `concurrency` exchanges outstanding (accepted, no verified reply yet) for `seconds`; the sustained
 * rate is the number of verified replies whose timestamps fall in the window after the warm-up, per second.
 * Sending shares A's event loop with A's delivery workers, as the records-system API does in `serve`: the driver
 * yields after every send, and whether it kept the target outstanding is reported (mean outstanding).
 */
async function saturation(A: Gateway, tracker: CompletionTracker, meter: CpuMeter, concurrency: number, seconds: number, warmupSeconds: number): Promise<SaturationResult> {
  tracker.reset();
  const accept: number[] = [];
  const start = Date.now();
  const end = start + seconds * 1000;
  const windowStart = start + warmupSeconds * 1000;
  const perf0 = performance.now();
  let stopCpu: (() => CpuWindow) | undefined;
  let cpu: CpuWindow | undefined;
  const outstandingSamples: number[] = [];
  let sampler: NodeJS.Timeout | undefined;
  const opened = setTimeout(() => {
    stopCpu = meter.start();
    sampler = setInterval(() => outstandingSamples.push(tracker.outstanding), 100);
  }, windowStart - Date.now());
  const closed = setTimeout(() => {
    cpu = stopCpu?.();
    clearInterval(sampler);
  }, end - Date.now());
  // Several accepts at once, as concurrent API requests are: an accept waits for its fsyncs, and one at a time
  // would make the driver, not the gateway, the limit.
  let accepting = 0;
  const acceptDone: Array<() => void> = [];
  while (Date.now() < end) {
    while (tracker.outstanding + accepting < concurrency && accepting < MAX_ACCEPTING && Date.now() < end) {
      accepting++;
      // A refused accept rejects unhandled and stops the benchmark: it must not pass unnoticed.
      void sendOne(A, tracker).then((ms) => { accept.push(ms); }).finally(() => { accepting--; acceptDone.shift()?.(); });
      await new Promise((r) => setImmediate(r));
    }
    await Promise.race([tracker.next(), sleep(20), new Promise<void>((r) => acceptDone.push(r))]);
  }
  while (accepting > 0) await sleep(5);
  while (!cpu) await sleep(5); // the closing timer fires at `end`
  clearTimeout(opened);
  clearTimeout(closed);
  await tracker.drain(60_000);
  const inWindow = tracker.completions.filter((c) => c.repliedAt >= windowStart && c.repliedAt < end);
  const windowSeconds = (end - windowStart) / 1000;
  const buckets = new Map<number, number>();
  for (const c of inWindow) {
    const sec = Math.floor((c.repliedAt - windowStart) / 1000);
    buckets.set(sec, (buckets.get(sec) ?? 0) + 1);
  }
  const perSecond = Array.from({ length: Math.floor(windowSeconds) }, (_, i) => buckets.get(i) ?? 0);
  return {
    concurrency, seconds, warmupSeconds, completedInWindow: inWindow.length, rate: inWindow.length / windowSeconds,
    perSecond: { min: Math.min(...perSecond), median: percentile(perSecond, 50), max: Math.max(...perSecond) },
    meanOutstanding: mean(outstandingSamples),
    latency: latencyStats(inWindow.map((c) => c.latencyMs)), accept: latencyStats(accept), failed: tracker.failures, cpu,
    window: { start: perf0 + warmupSeconds * 1000, end: perf0 + seconds * 1000 },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// fsync: this disk, and what each process does per exchange

interface FsyncMicro {
  fileFsync: LatencyStats;
  dirFsync: LatencyStats;
  putBuffer: LatencyStats;
  putNoSync: LatencyStats;
  sqliteFull: LatencyStats;
  sqliteNormal: LatencyStats;
}

function timeEach(n: number, fn: (i: number) => void): LatencyStats {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn(i);
    xs.push(performance.now() - t0);
  }
  return latencyStats(xs);
}

/** The same disk as the gateways' data (os.tmpdir()); 17 KiB is about the signed message of a 10 KiB attachment. */
function fsyncMicro(dir: string): FsyncMicro {
  const n = 300;
  const bufs = Array.from({ length: n }, () => crypto.randomBytes(17 * KiB));
  fs.mkdirSync(path.join(dir, 'raw'), { recursive: true });
  const fileFsync = timeEach(n, (i) => {
    const fd = fs.openSync(path.join(dir, 'raw', `f${i}`), 'w');
    fs.writeSync(fd, bufs[i]);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  });
  const dirFsync = timeEach(n, () => {
    const fd = fs.openSync(path.join(dir, 'raw'), 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  });
  const store = new ContentStore(path.join(dir, 'store'));
  const fresh = Array.from({ length: n }, () => crypto.randomBytes(17 * KiB));
  const putBuffer = timeEach(n, (i) => store.putBuffer(fresh[i]));
  // What putBuffer would cost without durability: temp write, rename into a fanned-out directory, no fsync.
  const nosync = path.join(dir, 'nosync');
  const again = Array.from({ length: n }, () => crypto.randomBytes(17 * KiB));
  const putNoSync = timeEach(n, (i) => {
    const sha = crypto.createHash('sha256').update(again[i]).digest('hex');
    const final = path.join(nosync, sha.slice(0, 2));
    fs.mkdirSync(final, { recursive: true });
    const tmp = path.join(nosync, `${sha}.tmp`);
    fs.writeFileSync(tmp, again[i]);
    fs.renameSync(tmp, path.join(final, sha));
  });
  const sqlite = (mode: 'FULL' | 'NORMAL') => {
    const db = new Database(path.join(dir, `commit-${mode}.db`));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${mode}`);
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const small = crypto.randomBytes(300);
    const stats = timeEach(500, () => insert.run(small));
    db.close();
    return stats;
  };
  return { fileFsync, dirFsync, putBuffer, putNoSync, sqliteFull: sqlite('FULL'), sqliteNormal: sqlite('NORMAL') };
}

interface SyscallCount { calls: number; seconds: number }
/** Sync calls by the thread that made them: the event loop's (the process's own pid) or any other (libuv's pool). */
interface ThreadSplit { loop: SyscallCount; pool: SyscallCount }
interface FsyncTrace { exchanges: number; a?: ThreadSplit; b?: ThreadSplit; note?: string }

/**
 * strace over both processes while `exchanges` go through one at a time: fsyncs per exchange, split by thread. A
 * sync on the event loop's thread blocks the whole process; one in libuv's pool only delays its own request.
 */
async function traceFsyncs(A: Gateway, tracker: CompletionTracker, bPid: number, exchanges: number): Promise<FsyncTrace> {
  if (spawnSync('sh', ['-c', 'command -v strace']).status !== 0) return { exchanges, note: 'strace is not installed' };
  const dir = makeTempDir('exchange-strace-');
  const attach = (pid: number) => {
    const out = path.join(dir, `${pid}.trace`);
    const child = spawn('strace', ['-f', '-T', '-e', 'trace=fsync,fdatasync,sync_file_range', '-o', out, '-p', String(pid)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let text = '';
    child.stderr!.on('data', (d: Buffer) => { text += d.toString(); });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return { child, exited, out, pid, ready: () => text.includes('attached') };
  };
  const ta = attach(process.pid);
  const tb = attach(bPid);
  const deadline = Date.now() + 5000;
  while (!(ta.ready() && tb.ready()) && Date.now() < deadline) await sleep(50);
  if (!(ta.ready() && tb.ready())) {
    ta.child.kill('SIGKILL');
    tb.child.kill('SIGKILL');
    return { exchanges, note: 'strace could not attach (ptrace not permitted?)' };
  }
  await sleep(300);
  tracker.reset();
  for (let i = 0; i < exchanges; i++) {
    await sendOne(A, tracker);
    await tracker.drain(10_000);
  }
  await sleep(300);
  ta.child.kill('SIGINT');
  tb.child.kill('SIGINT');
  await Promise.all([ta.exited, tb.exited]);
  const split = (t: { out: string; pid: number }) => splitByThread(fs.existsSync(t.out) ? fs.readFileSync(t.out, 'utf8') : '', t.pid);
  return { exchanges, a: split(ta), b: split(tb) };
}

/** Lines of `strace -f -T -o`: `<tid> fsync(23) = 0 <0.000412>`. */
function splitByThread(text: string, pid: number): ThreadSplit {
  const split: ThreadSplit = { loop: { calls: 0, seconds: 0 }, pool: { calls: 0, seconds: 0 } };
  for (const line of text.split('\n')) {
    const m = /^(\d+)\s+(?:fsync|fdatasync|sync_file_range)\(.*<([\d.]+)>\s*$/.exec(line);
    if (!m) continue;
    const bucket = Number(m[1]) === pid ? split.loop : split.pool;
    bucket.calls++;
    bucket.seconds += Number(m[2]);
  }
  return split;
}

// ---------------------------------------------------------------------------------------------------------------
// Where the time goes: CPU profiles

interface ProfileResult {
  a: ProfileSummary;
  b?: ProfileSummary;
  rate: number;
  meanOutstanding: number;
  cpu: CpuWindow;
  seconds: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const ms = fmtMs;
const pct = (part: number, whole: number) => (whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : 'n/a');
const perExchange = (cpuMsTotal: number, n: number) => (n > 0 ? fmtMs(cpuMsTotal / n) : 'n/a');
const coreShare = (cpuMsTotal: number, wallMs: number) => `${((cpuMsTotal / wallMs) * 100).toFixed(0)}%`;

function latencyRow(name: string, l: LatencyStats): string[] {
  return [name, String(l.n), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max)];
}

interface Results {
  opts: Options;
  header: string;
  floor: FloorResult;
  open: OpenLoopResult;
  sat: SaturationResult;
  micro: FsyncMicro;
  trace?: FsyncTrace;
  profile?: ProfileResult;
  rss: { a?: number; b?: number; bProfiled?: number };
}

function render(r: Results): string {
  const out: string[] = [];
  const { open, sat, floor } = r;
  const cores = machineInfo().cores;
  out.push(`# SEOS exchange benchmark${r.opts.quick ? ' (--quick: short phases, smoke check only)' : ''}`, '', r.header, '');
  out.push('Two gateways on loopback: A in the benchmark process (`sendDocument`, in-process delivery workers), B a separate',
    '`seos-gateway serve` process; a private redis-server; SQLite in WAL mode with group commit and fsynced content stores',
    '(docs/durability.md); log level info (to files); delivery settings: ' +
    (r.opts.perDestination === undefined ? 'worker concurrency 32, 16 deliveries at once per destination (the defaults).' : `worker concurrency ${Math.max(32, r.opts.perDestination)}, **${r.opts.perDestination} deliveries at once per destination** (\`delivery.perDestinationConcurrency\`; the defaults are 32 and 16).`) + ' Each exchange: a',
    `registration request with a fresh ${ATTACHMENT_BYTES / KiB} KiB attachment, signed by A, verified and stored by B, answered with B's signed`,
    'DS_WAIT_REGISTRATION, verified by A and applied to the document.', '');

  const p99Ok = open.incomplete === 0 && open.failed === 0 && open.latency.p99 < TARGET_P99_MS;
  const rateOk = sat.rate >= TARGET_RATE && sat.failed === 0;
  const busy = [['floor (4 in flight)', floor.parallel[0].cpu], ['open loop', open.cpu], ['saturation', sat.cpu]] as const;
  const noisy = busy.filter(([, c]) => c.others / c.wallMs > 0.5);
  if (noisy.length) {
    out.push(`> **The machine was busy**: other processes used ${noisy.map(([name, c]) => `${coreShare(c.others, c.wallMs)} of a core during ${name}`).join(', ')}` +
      ` (of ${cores} cores). The absolute rates and latencies below measure that contention too; re-run on a quiet machine before believing them. Ratios to the floor, CPU per exchange and fsync counts hold up better.`, '');
  }
  out.push('## Targets', '');
  out.push(markdownTable(['target', 'measured', 'result'], [
    [`≥ ${TARGET_RATE} exchanges/s sustained`, `${fmtRate(sat.rate, 'exchanges/s')} (up to ${sat.concurrency} outstanding, ${sat.meanOutstanding.toFixed(0)} on average; ${sat.seconds - sat.warmupSeconds} s window, per second ${sat.perSecond.min}–${sat.perSecond.max})`, passFail(rateOk)],
    [`p99 send → verified reply < ${TARGET_P99_MS} ms at ${open.rate} exchanges/s`, `p99 ${ms(open.latency.p99)} (p50 ${ms(open.latency.p50)}, max ${ms(open.latency.max)}; ${open.completed}/${open.offered} completed${open.incomplete ? `, ${open.incomplete} without reply` : ''}${open.failed ? `, ${open.failed} failed` : ''})`, passFail(p99Ok)],
  ], ['left', 'left', 'center']), '');

  const withSys = (total: number, system: number, wall: number) => `${coreShare(total, wall)} (sys ${coreShare(system, wall)})`;
  const cpuCells = (c: CpuWindow) => [withSys(c.a, c.aSystem, c.wallMs), withSys(c.b, c.bSystem, c.wallMs), coreShare(c.redis, c.wallMs), coreShare(c.others, c.wallMs)];
  out.push('## Pipeline', '');
  out.push(markdownTable(['phase', 'offered', 'completed', 'rate', 'p50', 'p90', 'p99', 'max', 'accept p50 / p99', 'CPU A', 'CPU B', 'CPU redis', 'CPU others'], [
    [`open loop ${open.rate}/s × ${open.seconds} s`, String(open.offered), `${open.completed}${open.failed ? ` (+${open.failed} failed)` : ''}`,
      fmtRate(open.achievedRate, '/s'), ms(open.latency.p50), ms(open.latency.p90), ms(open.latency.p99), ms(open.latency.max),
      `${ms(open.accept.p50)} / ${ms(open.accept.p99)}`, ...cpuCells(open.cpu)],
    [`saturation, ≤ ${sat.concurrency} outstanding`, '—', `${sat.completedInWindow} in ${sat.seconds - sat.warmupSeconds} s${sat.failed ? ` (+${sat.failed} failed)` : ''}`,
      fmtRate(sat.rate, '/s'), ms(sat.latency.p50), ms(sat.latency.p90), ms(sat.latency.p99), ms(sat.latency.max),
      `${ms(sat.accept.p50)} / ${ms(sat.accept.p99)}`, ...cpuCells(sat.cpu)],
  ]), '');
  out.push(`- Latency = the \`at\` of A's status row written from B's verified reply (inside the transaction that settles the attempt, just before its commit: add one SQLite commit, ${ms(r.micro.sqliteFull.p50)} idle here, for the moment it is visible) minus the wall-clock moment \`sendDocument\` returned. Both are A's clock. The status rows are read incrementally every 5 ms only to know when to send more.`,
    '- accept = the `sendDocument` call itself (sign, spool and archive writes with fsync, one SQLite commit): what the records system waits for.',
    `- Open loop: sends on a fixed schedule (yielding to the event loop between sends, as between two HTTP requests); it started sends late by p99 ${ms(open.lag.p99)} (max ${ms(open.lag.max)}), time A's event loop was busy with other work. Counted from when each send was due (lag + accept + exchange), the latency is p50 ${ms(open.fromSchedule.p50)}, p99 ${ms(open.fromSchedule.p99)}, max ${ms(open.fromSchedule.max)}.`,
    `- Saturation: the driver keeps up to ${sat.concurrency} exchanges outstanding (up to ${MAX_ACCEPTING} of them being accepted at once, like concurrent API requests); it shares A's event loop with A's workers (as the records-system API does in \`serve\`), so when that loop is the limit it cannot keep them all outstanding (mean ${sat.meanOutstanding.toFixed(1)}). Latency there is mostly waiting in the queue.`,
    `- CPU = utime+stime from /proc as a share of one core (${cores} cores), with the kernel's part (stime: syscalls, including the fsync path) in brackets. *CPU others* is everything else on the machine in the same window (other people's builds and tests): when it is high the absolute numbers are not this code's. Per exchange at saturation: A ${perExchange(sat.cpu.a, sat.completedInWindow)}, B ${perExchange(sat.cpu.b, sat.completedInWindow)}, redis ${perExchange(sat.cpu.redis, sat.completedInWindow)} of CPU.`,
    '');

  const q = open.quietSeconds;
  out.push(`Only the exchanges sent in the ${q.seconds} of ${q.of} seconds when other processes used under ${QUIET_OTHERS * 100}% of a core: p50 ${ms(q.latency.p50)}, p99 ${ms(q.latency.p99)}, max ${ms(q.latency.max)} (n=${q.latency.n}). A hint at a dedicated machine, not the measurement: the target above is judged on all of them.`, '');
  out.push('Open loop over time, by the second each exchange was sent: latency p50 / max, the longest event-loop delay in A in that second, and the CPU other processes used then (a spike with a long loop delay and quiet neighbours is ours; one with busy neighbours may be theirs):', '');
  out.push(markdownTable(['second', 'sent', 'p50', 'max', 'A loop delay max', 'CPU others'], open.bySecond.map((b) => [
    String(b.second), String(b.n), ms(b.p50), ms(b.max), b.loopMaxMs === undefined ? '' : ms(b.loopMaxMs), b.othersShare === undefined ? '' : `${Math.round(b.othersShare * 100)}%`,
  ])), '');

  out.push('## Floor: raw round trip (no outbox, no queue)', '');
  out.push('The benchmark process builds and signs a registration request and submits it straight to B with `createSeosClient`, verifying B\'s signed reply against B\'s certificate serial: the same code on both ends without A\'s durability and queueing. B does its full work (verify, store with fsync, sign the reply).', '');
  const par = floor.parallel;
  out.push(markdownTable(['case', 'n', 'p50', 'p90', 'p99', 'max', 'rate', 'CPU bench', 'CPU B', 'CPU others'], [
    ['build + sign (here)', String(floor.sequential.sign.n), ms(floor.sequential.sign.p50), ms(floor.sequential.sign.p90), ms(floor.sequential.sign.p99), ms(floor.sequential.sign.max), '', '', '', ''],
    ['submit → verified reply, 1 in flight', String(floor.sequential.roundTrip.n), ms(floor.sequential.roundTrip.p50), ms(floor.sequential.roundTrip.p90), ms(floor.sequential.roundTrip.p99), ms(floor.sequential.roundTrip.max), fmtRate(1000 / (floor.sequential.sign.mean + floor.sequential.roundTrip.mean), '/s'), '', '', ''],
    ...par.map((p) => [`submit → verified reply, ${p.inFlight} in flight`, String(p.n), ms(p.roundTrip.p50), ms(p.roundTrip.p90), ms(p.roundTrip.p99), ms(p.roundTrip.max), fmtRate(p.rate, '/s'),
      withSys(p.cpu.a, p.cpu.aSystem, p.cpu.wallMs), withSys(p.cpu.b, p.cpu.bSystem, p.cpu.wallMs), coreShare(p.cpu.others, p.cpu.wallMs)]),
  ]), '');
  const floor4 = par.find((p) => p.inFlight === 4)!;
  const floorBest = par.reduce((best, p) => (p.rate > best.rate ? p : best));
  out.push('Pipeline against the floor:', '');
  out.push(markdownTable(['measure', 'pipeline', 'floor', 'pipeline / floor'], [
    ['sustained rate (floor: 4 in flight)', fmtRate(sat.rate, '/s'), fmtRate(floor4.rate, '/s'), fmtRatio(sat.rate / floor4.rate)],
    [`sustained rate (floor: best, ${floorBest.inFlight} in flight)`, fmtRate(sat.rate, '/s'), fmtRate(floorBest.rate, '/s'), fmtRatio(sat.rate / floorBest.rate)],
    [`p50 latency (pipeline at ${open.rate}/s; floor: 1 in flight)`, ms(open.latency.p50), ms(floor.sequential.roundTrip.p50), fmtRatio(open.latency.p50 / floor.sequential.roundTrip.p50)],
    ['CPU per exchange, A side (floor: the benchmark process, 4 in flight)', perExchange(sat.cpu.a, sat.completedInWindow), perExchange(floor4.cpu.a, floor4.n), fmtRatio((sat.cpu.a / sat.completedInWindow) / (floor4.cpu.a / floor4.n))],
    ['CPU per exchange, B', perExchange(sat.cpu.b, sat.completedInWindow), perExchange(floor4.cpu.b, floor4.n), fmtRatio((sat.cpu.b / sat.completedInWindow) / (floor4.cpu.b / floor4.n))],
  ], ['left', 'right', 'right', 'right']), '');

  out.push('## Peak RSS', '');
  out.push(markdownTable(['process', 'peak RSS (VmHWM)'], [
    ['A: the benchmark process with gateway A', fmtBytes(r.rss.a)],
    ['B: `seos-gateway serve`', fmtBytes(r.rss.b)],
    ...(r.rss.bProfiled ? [['B restarted with --cpu-prof (profile phase)', fmtBytes(r.rss.bProfiled)]] : []),
  ]), '');

  out.push('## fsync', '');
  const m = r.micro;
  out.push('On this disk (the file system of `os.tmpdir()`, where both gateways keep their data), one at a time, nothing else of ours running:', '');
  out.push(markdownTable(['operation', 'n', 'p50', 'p90', 'p99', 'max'], [
    latencyRow('write 17 KiB + fsync (new file)', m.fileFsync),
    latencyRow('fsync of a directory', m.dirFsync),
    latencyRow('ContentStore.putBuffer 17 KiB (temp write, fsync, rename, dir fsyncs)', m.putBuffer),
    latencyRow('the same without any fsync', m.putNoSync),
    latencyRow('SQLite WAL commit of one row, synchronous=FULL', m.sqliteFull),
    latencyRow('SQLite WAL commit of one row, synchronous=NORMAL', m.sqliteNormal),
  ]), '');
  if (r.trace?.a && r.trace.b) {
    const t = { exchanges: r.trace.exchanges, a: r.trace.a, b: r.trace.b };
    const per = (c: SyscallCount) => [(c.calls / t.exchanges).toFixed(1), ms((c.seconds * 1000) / t.exchanges)];
    const row = (name: string, split: ThreadSplit) => {
      // Nothing counted means strace did not see the process (an attach that failed quietly), not zero fsyncs.
      if (split.loop.calls + split.pool.calls === 0) return [name, 'n/a', 'n/a', 'n/a', 'n/a'];
      return [name, ...per(split.loop), ...per(split.pool)];
    };
    out.push(`Counted with \`strace -f -T\` attached to both processes while ${t.exchanges} exchanges went through one after another, split by the thread that made the call (strace slows every syscall down, so the times are upper bounds). A sync on the event loop's thread blocks the whole process; one in libuv's thread pool (the content store's \`sync\`, the WAL group commit) delays only the request waiting for it:`, '');
    out.push(markdownTable(['process', 'event loop: syncs per exchange', 'time per exchange', 'thread pool: syncs per exchange', 'time per exchange'], [row('A (benchmark + gateway A)', t.a), row('B (serve)', t.b)]), '');
    const worst = Math.max(t.a.loop.seconds, t.b.loop.seconds) * 1000 / t.exchanges;
    if (worst > 0) out.push(`From the event loop's syncs alone a process could not exceed ${fmtRate(1000 / worst, 'exchanges/s')}.`, '');
  } else if (r.trace?.note) {
    out.push(`fsync counting skipped: ${r.trace.note}.`, '');
  }

  if (r.profile) {
    const p = r.profile;
    out.push('## Where the time goes', '');
    out.push(`CPU profiles of both processes during ${p.seconds} s of saturation (${fmtRate(p.rate, 'exchanges/s')} with the profilers on, ${p.meanOutstanding.toFixed(0)} outstanding on average; CPU A ${coreShare(p.cpu.a, p.cpu.wallMs)}, B ${coreShare(p.cpu.b, p.cpu.wallMs)}, others ${coreShare(p.cpu.others, p.cpu.wallMs)} of one core). A is profiled in-process with the inspector, B with \`--cpu-prof\` (start-up and shutdown cut off); main threads only. Self time, which counts a thread blocked in a synchronous call (fsync, a SQLite commit) as time in that call; (idle) is the event loop waiting for I/O, so a thread with little idle time is the one at its limit.`, '');
    for (const [name, sum] of [['A', p.a], ['B', p.b]] as const) {
      if (!sum) continue;
      out.push(`### ${name}: ${ms(sum.totalMs)} sampled, idle ${pct(sum.idleMs, sum.totalMs)}; per exchange ${perExchange(sum.totalMs - sum.idleMs, p.rate * p.seconds)} busy`, '');
      out.push(markdownTable(['area', 'self time', 'share', 'per exchange'], sum.byArea.map(([k, v]) => [k, ms(v), pct(v, sum.totalMs), perExchange(v, p.rate * p.seconds)]), ['left', 'right', 'right', 'right']), '');
      out.push(markdownTable(['function (top by self time)', 'self time', 'share'], sum.byFunction.slice(0, 15).map(([k, v]) => [k, ms(v), pct(v, sum.totalMs)]), ['left', 'right', 'right']), '');
      if (sum.unclassified.length) out.push(`Largest in *other*: ${sum.unclassified.map(([k, v]) => `\`${k}\` ${ms(v)}`).join(', ')}.`, '');
    }
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const opts = options();
  const info = machineInfo();
  const header = machineMarkdown(info, { 'redis-server': toolVersion('redis-server', ['--version']), strace: opts.strace ? toolVersion('strace', ['-V']) : 'not used' });
  const tmp = makeTempDir('seos-bench-exchange-');
  log(`working in ${tmp}`);

  const pki: TestPkiManifest = makeTestPki({ out: path.join(tmp, 'pki') });
  const alfaCert = pki.admins.find((a) => a.name === 'obshtina-alfa')!;
  const betaCert = pki.admins.find((a) => a.name === 'obshtina-beta')!;
  const redis: RedisServer = await startRedisServer();
  const ports = { aSeos: await freePort(), bSeos: await freePort(), bApi: await freePort() };
  const participants = [
    { guid: ALFA_GUID, eik: ALFA.identifier, name: ALFA.administrativeBodyName, certificateSN: alfaCert.serialHex, endpointUrl: `http://127.0.0.1:${ports.aSeos}/seos` },
    { guid: BETA_GUID, eik: BETA.identifier, name: BETA.administrativeBodyName, certificateSN: betaCert.serialHex, endpointUrl: `http://127.0.0.1:${ports.bSeos}/seos` },
  ];
  const writeConfig = (name: 'a' | 'b', self: Participant, cert: typeof alfaCert, apiPort: number, seosPort: number) => {
    const file = path.join(tmp, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify({
      port: apiPort, dataDir: path.join(tmp, name), redisUrl: redis.url, logLevel: 'info',
      self: { eik: self.identifier, name: self.administrativeBodyName, guid: self.guid },
      signing: { pkcs12Path: cert.p12Path, password: pki.p12Password },
      seos: { endpoint: { port: seosPort }, client: { allowInsecureHttp: true } },
      registry: { participants },
      // More deliveries to one destination than the worker runs at once would not be more: raise both together.
      ...(name === 'a' && opts.perDestination !== undefined
        ? { delivery: { perDestinationConcurrency: opts.perDestination, concurrency: Math.max(32, opts.perDestination) } } : {}),
    }, null, 2));
    return file;
  };
  const aConfig = writeConfig('a', ALFA, alfaCert, 0, ports.aSeos);
  const bConfig = writeConfig('b', BETA, betaCert, ports.bApi, ports.bSeos);
  const bLog = path.join(tmp, 'b.log');

  let B: ProcessB | undefined;
  let A: Gateway | undefined;
  let aLog: fs.WriteStream | undefined;
  try {
    log('starting gateway B (seos-gateway serve) and gateway A (in this process)');
    B = await startB(bConfig, ports.bApi, bLog);
    aLog = fs.createWriteStream(path.join(tmp, 'a.log'));
    A = await createGateway(loadConfig({ file: aConfig, env: {} }), { logStream: aLog });
    await A.start();
    const tracker = new CompletionTracker(A);
    tracker.start(5);
    const bRef = { pid: B.pid };
    const meter = new CpuMeter({ a: process.pid, b: () => bRef.pid, redis: redisPid(redis.port) });

    log('warm-up: 100 exchanges through the pipeline');
    for (let i = 0; i < 100; i++) {
      await sendOne(A, tracker);
      if (i % 10 === 9) await tracker.drain(20_000);
    }
    await tracker.drain(30_000);

    const identity = loadSigningIdentity({ pkcs12Path: alfaCert.p12Path, password: pki.p12Password });
    const floor = await floorPhase(identity, participants[1].endpointUrl, betaCert.serialHex.replace(/^0+/, '').toUpperCase(), meter, opts.quick);

    log(`open loop: ${opts.openRate} exchanges/s for ${opts.openSeconds} s`);
    const open = await openLoop(A, tracker, meter, opts.openRate, opts.openSeconds);
    log(`open loop: p50 ${ms(open.latency.p50)}, p99 ${ms(open.latency.p99)}, ${open.completed}/${open.offered} completed`);

    log(`saturation: ${opts.concurrency} outstanding for ${opts.satSeconds} s`);
    const sat = await saturation(A, tracker, meter, opts.concurrency, opts.satSeconds, opts.satWarmupSeconds);
    log(`saturation: ${sat.rate.toFixed(1)} exchanges/s, CPU A ${coreShare(sat.cpu.a, sat.cpu.wallMs)}, B ${coreShare(sat.cpu.b, sat.cpu.wallMs)}`);

    log('fsync: micro-measurement of this disk');
    const micro = fsyncMicro(path.join(tmp, 'fsync'));
    let trace: FsyncTrace | undefined;
    if (opts.strace) {
      log('fsync: counting sync calls per exchange with strace');
      trace = await traceFsyncs(A, tracker, B.pid, opts.quick ? 100 : 200);
    }

    const rss: Results['rss'] = { b: peakRss(B.pid) };
    const failed = !(sat.rate >= TARGET_RATE && sat.failed === 0) || !(open.incomplete === 0 && open.failed === 0 && open.latency.p99 < TARGET_P99_MS);
    let profile: ProfileResult | undefined;
    if (opts.profile === 'always' || (opts.profile === 'on-fail' && failed)) {
      log(`profile: restarting B with --cpu-prof; ${opts.profileSeconds} s of saturation with both profilers on`);
      await B.stop();
      const profDir = path.join(tmp, 'prof');
      B = await startB(bConfig, ports.bApi, bLog, profDir);
      bRef.pid = B.pid;
      const session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
      const run = await saturation(A, tracker, meter, opts.concurrency, opts.profileSeconds + 1, 1);
      const aStoppedAt = performance.now();
      const { profile: aProfile } = await session.post('Profiler.stop');
      session.disconnect();
      rss.bProfiled = peakRss(B.pid);
      const bPid = B.pid;
      await B.stop();
      const bExitedAt = performance.now();
      B = undefined;
      // The main thread's profile is CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile (tid 0); others are worker threads.
      const files = fs.existsSync(profDir) ? fs.readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
      const main = files.find((f) => f.includes(`.${bPid}.0.`)) ?? files.map((f) => path.join(profDir, f)).sort((x, y) => fs.statSync(y).size - fs.statSync(x).size)[0];
      const file = main ? path.resolve(profDir, main) : undefined;
      // The raw profiles stay beside the report, for a look with Chrome DevTools or a caller analysis.
      fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
      fs.writeFileSync(path.join(path.dirname(OUT_FILE), 'exchange-A.cpuprofile'), JSON.stringify(aProfile));
      if (file) fs.copyFileSync(file, path.join(path.dirname(OUT_FILE), 'exchange-B.cpuprofile'));
      const windowOf = (endAt: number) => ({ fromEndMs: endAt - run.window.start, toEndMs: endAt - run.window.end });
      profile = {
        a: summarizeProfile(aProfile as unknown as CpuProfile, { root: ROOT, window: windowOf(aStoppedAt) }),
        b: file ? summarizeProfile(JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile, { root: ROOT, window: windowOf(bExitedAt) }) : undefined,
        rate: run.rate, cpu: run.cpu, seconds: opts.profileSeconds, meanOutstanding: run.meanOutstanding,
      };
    }
    tracker.stop();
    rss.a = peakRss(process.pid);

    const report = render({ opts, header, floor, open, sat, micro, trace, profile, rss });
    fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
    fs.writeFileSync(OUT_FILE, report + '\n');
    process.stdout.write(report + '\n');
    log(`report written to ${path.relative(process.cwd(), OUT_FILE)}`);
    if (opts.strict && failed) process.exitCode = 1;
  } finally {
    await A?.stop().catch((e) => log(`stopping A: ${(e as Error).message}`));
    aLog?.end();
    await B?.stop().catch((e) => log(`stopping B: ${(e as Error).message}`));
    await redis.stop();
  }
}

await main();
