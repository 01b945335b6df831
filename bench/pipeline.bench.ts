/**
 * Pipeline benchmark: the records-system REST API driven over HTTP against two gateways on loopback, both separate
 * `seos-gateway serve` processes (A sends, B receives), a private redis-server, default delivery settings.
 *
 *   npm run bench:pipeline                           # full run (~3-4 minutes)
 *   npx tsx bench/pipeline.bench.ts --quick          # 5 s phases and a 20 MiB large document: a smoke check
 *   npx tsx bench/pipeline.bench.ts --profile        # CPU profiles of A and B, cut to phase 1's load and phase 2
 *   npx tsx bench/pipeline.bench.ts --keep           # leave the temp dir (configs, logs, databases) for inspection
 *   npx tsx bench/pipeline.bench.ts --rate 100 --open-seconds 10 --concurrency 64 --big-size 50m --strict
 *   npx tsx bench/pipeline.bench.ts --big-only       # phase 3 alone (one large document, RSS of A and B); stderr only
 *
 * Phases, in one run:
 *   1. open loop: POST /v1/documents at a fixed rate (200/s) with a fresh 10 KiB base64 attachment each, whatever the
 *      answers do: accept latency (from each request's scheduled moment), errors, and for every accepted document the
 *      time until A's status history shows the recipient's DS_WAIT_REGISTRATION; then a bounded drain;
 *   2. saturation: a fixed number of requests kept in flight (32): accepted/s and delivered/s sustained;
 *   3. one large document (100 MiB) via POST /v1/documents/multipart, streamed from a file, until
 *      DS_WAIT_REGISTRATION, then fetched by B's records system (GET /v1/inbox/{id} and the attachment), on a
 *      fresh pair of gateways, with both processes' RSS sampled every 50 ms.
 *
 * The load generator is written here with node:http and a keep-alive Agent. A's database is read through a second,
 * read-only SQLite connection (WAL lets it read while A writes). Markdown goes to stdout and bench/out/pipeline.md;
 * progress to stderr. See bench/README.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { makeTestPki, type TestPkiManifest } from '../certs/test-pki.ts';
import { createApiKey } from '../src/api/api-keys.ts';
import { freePort, startRedisServer, type RedisServer } from '../src/devtools/redis-server.ts';
import { openDatabase } from '../src/store/database.ts';
import { makeTempDir, parseSize, removeQuietly, removeTempDirs, sizeLabel, writeRandomFile } from './lib/files.ts';
import { machineInfo, machineMarkdown, rsaSignsPerSecond, toolVersion } from './lib/machine.ts';
import { fmtBytes, fmtMs, fmtRate, markdownTable, passFail } from './lib/markdown.ts';
import { mean, percentile } from './lib/stats.ts';
import { summarizeProfile, type CpuProfile, type ProfileSummary } from './lib/cpu-profile.ts';
import { childrenOf, cpuMs, machineBusyMs, redisPid } from './lib/proc.ts';
import { scrapeHistogram, summarize, type HistogramSummary } from './lib/prometheus.ts';

const THIS_FILE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(THIS_FILE), '..');
const OUT_FILE = path.join(ROOT, 'bench', 'out', 'pipeline.md');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

const KiB = 1024;
const MiB = 1024 * KiB;
const ATTACHMENT_BYTES = 10 * KiB;

const TARGET_ACCEPT_RATE = 200;
const TARGET_ACCEPT_P99_MS = 20;
const TARGET_DELIVERED_RATE = 200;
const TARGET_BIG_GROWTH = 100 * MiB;

const ALFA = { guid: '{0a1f0000-0000-4000-8000-00000000fe01}', eik: '000000001', name: 'Община Алфа', admin: 'obshtina-alfa' };
const BETA = { guid: '{0b2e0000-0000-4000-8000-00000000fe02}', eik: '000000002', name: 'Община Бета', admin: 'obshtina-beta' };
/** Statuses that end a document's wait in this benchmark (the first is success). */
const DELIVERED = 'DS_WAIT_REGISTRATION';
const FAILED = ['SENT_FAILED', 'DS_REJECTED'];

const RUN = crypto.randomBytes(4).toString('hex');
const log = (msg: string) => process.stderr.write(`[pipeline] ${msg}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, Math.max(0, ms)));

// ---------------------------------------------------------------------------------------------------------------
// Options

interface Options {
  quick: boolean;
  rate: number;
  openSeconds: number;
  drainSeconds: number;
  answerCapSeconds: number;
  satSeconds: number;
  satWarmupSeconds: number;
  /** Documents sent through the pipeline before phase 1 (not reported). */
  warmUp: number;
  concurrency: number;
  bigBytes: number;
  profile: boolean;
  keep: boolean;
  strict: boolean;
  bigOnly: boolean;
  /** A's deliveries in a separate `seos-gateway worker` process (delivery.inProcessWorkers false). */
  workerProcess: boolean;
  /** A's delivery.perDestinationConcurrency (and worker concurrency, at least 32); undefined = the defaults (16, 32). */
  perDestination: number | undefined;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      rate: { type: 'string' },
      'open-seconds': { type: 'string' },
      'drain-seconds': { type: 'string' },
      'sat-seconds': { type: 'string' },
      concurrency: { type: 'string' },
      'warm-up': { type: 'string' },
      'big-size': { type: 'string' },
      profile: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      'big-only': { type: 'boolean', default: false },
      'worker-process': { type: 'boolean', default: false },
      'per-destination': { type: 'string' },
    },
  });
  const quick = values.quick ?? false;
  const num = (v: string | undefined, d: number) => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`);
    return n;
  };
  return {
    quick,
    rate: num(values.rate, TARGET_ACCEPT_RATE),
    openSeconds: num(values['open-seconds'], quick ? 5 : 15),
    drainSeconds: num(values['drain-seconds'], quick ? 15 : 40),
    answerCapSeconds: quick ? 45 : 120,
    satSeconds: num(values['sat-seconds'], quick ? 5 : 15),
    satWarmupSeconds: quick ? 1 : 2,
    concurrency: Math.round(num(values.concurrency, 32)),
    warmUp: Math.round(num(values['warm-up'], quick ? 200 : 2000)),
    bigBytes: parseSize(values['big-size'] ?? (quick ? '20m' : '100m')),
    profile: values.profile ?? false,
    keep: values.keep ?? false,
    strict: values.strict ?? false,
    bigOnly: values['big-only'] ?? false,
    workerProcess: values['worker-process'] ?? false,
    perDestination: values['per-destination'] === undefined ? undefined : Math.round(num(values['per-destination'], 4)),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Processes: /proc

/** VmRSS and VmHWM (peak RSS since start or since the last reset) in bytes. */
function memoryOf(pid: number): { rss?: number; hwm?: number } {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => {
      const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    return { rss: field('VmRSS'), hwm: field('VmHWM') };
  } catch {
    return {};
  }
}

/** Resets the kernel's peak-RSS mark of a process (same user): VmHWM then counts from now. */
function resetPeak(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    const { rss, hwm } = memoryOf(pid);
    return rss !== undefined && hwm !== undefined && hwm <= rss + 4 * MiB;
  } catch {
    return false;
  }
}

/** CPU ms of A, B, redis-server, this process (the load generator) and everything else, over a window. */
interface CpuWindow { a: number; b: number; redis: number; bench: number; others: number; wallMs: number }

function cpuMeter(pids: { a: number; aWorker?: number; b: number; redis?: number }): () => CpuWindow {
  const t0 = performance.now();
  const read = () => ({ a: cpuMs(pids.a) + (pids.aWorker ? cpuMs(pids.aWorker) : 0), b: cpuMs(pids.b), redis: cpuMs(pids.redis), bench: cpuMs(process.pid), all: machineBusyMs() });
  const s0 = read();
  return () => {
    const s1 = read();
    const d = { a: s1.a - s0.a, b: s1.b - s0.b, redis: s1.redis - s0.redis, bench: s1.bench - s0.bench };
    const ours = d.a + d.b + d.bench + (Number.isNaN(d.redis) ? 0 : d.redis);
    return { ...d, others: Math.max(0, s1.all - s0.all - ours), wallMs: performance.now() - t0 };
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Gateways: `tsx src/cli/main.ts serve --config <file>` processes

/** Every child this run started, killed at exit whatever happens (the gateway is tsx's child: both pids). */
const liveChildren = new Set<{ tsx: ChildProcess; pid?: number }>();
process.on('exit', () => {
  for (const c of liveChildren) {
    if (c.pid) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    try { c.tsx.kill('SIGKILL'); } catch { /* gone */ }
  }
});

interface GatewayProcess {
  readonly name: string;
  /** The node process running the gateway (tsx's child). */
  readonly pid: number;
  readonly apiPort: number;
  readonly dbFile: string;
  /** performance.now() when it exited after stop(). */
  exitedAt?: number;
  stop(): Promise<void>;
}

function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health', timeout: 1000, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

async function startGateway(name: string, configPath: string, apiPort: number, dbFile: string, logPath: string, profileDir?: string, command: 'serve' | 'worker' = 'serve'): Promise<GatewayProcess> {
  const out = fs.openSync(logPath, 'a');
  const nodeFlags = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const tsx = spawn(TSX, [...nodeFlags, 'src/cli/main.ts', command, '--config', configPath], {
    cwd: ROOT, stdio: ['ignore', out, out], env: { ...process.env, NODE_ENV: 'production' },
  });
  fs.closeSync(out);
  const entry: { tsx: ChildProcess; pid?: number } = { tsx };
  liveChildren.add(entry);
  const exited = new Promise<void>((resolve) => tsx.once('exit', () => resolve()));
  const deadline = Date.now() + 45_000;
  for (;;) {
    if (tsx.exitCode !== null) throw new Error(`gateway ${name} exited with code ${tsx.exitCode} during start-up; see ${logPath}`);
    // A worker has no API: it is up once its Node process runs (then a moment for its queue connections).
    if (command === 'worker' ? childrenOf(tsx.pid!).length > 0 && (await sleep(2000), true) : await healthy(apiPort)) break;
    if (Date.now() > deadline) throw new Error(`gateway ${name} did not answer /health within 45 s; see ${logPath}`);
    await sleep(100);
  }
  const pid = childrenOf(tsx.pid!).find((p) => {
    try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('main.ts'); } catch { return false; }
  }) ?? tsx.pid!;
  entry.pid = pid;
  const gw: GatewayProcess = {
    name, pid, apiPort, dbFile,
    async stop() {
      if (tsx.exitCode === null && tsx.signalCode === null) {
        // SIGTERM to the gateway itself, not to tsx: tsx relays a signal only if the child confirms it within 30 ms,
        // else it sends SIGKILL, and a gateway whose event loop is busy (a backlog of deliveries) misses that
        // window: it would die without its clean shutdown (and without writing its CPU profile).
        try { process.kill(pid, 'SIGTERM'); } catch { tsx.kill('SIGTERM'); }
        const timer = setTimeout(() => {
          log(`gateway ${name} did not stop within 15 s: SIGKILL`);
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
          tsx.kill('SIGKILL');
        }, 15_000);
        await exited;
        clearTimeout(timer);
      }
      gw.exitedAt = performance.now();
      liveChildren.delete(entry);
    },
  };
  return gw;
}

interface Setup {
  tmp: string;
  pki: TestPkiManifest;
  redis: RedisServer;
  ports: { aApi: number; aSeos: number; bApi: number; bSeos: number };
  participants: Array<Record<string, string>>;
}

interface Pair {
  a: GatewayProcess;
  /** A's delivery worker process (with --worker-process). */
  aWorker?: GatewayProcess;
  b: GatewayProcess;
  /** A connector API key of A. */
  key: string;
  /** A connector API key of B (the recipient's records system fetches the large document). */
  bKey: string;
  stop(): Promise<void>;
}

/** Writes both configs (fresh data dirs under `tag`), creates A's connector key in A's database, starts B then A. */
async function startPair(s: Setup, tag: string, profileDir?: string, workerProcess = false, perDestination?: number): Promise<Pair> {
  const write = (who: typeof ALFA, apiPort: number, seosPort: number) => {
    const cert = s.pki.admins.find((x) => x.name === who.admin)!;
    const dataDir = path.join(s.tmp, `${tag}-${who.admin}`);
    const file = path.join(s.tmp, `${tag}-${who.admin}.json`);
    fs.writeFileSync(file, JSON.stringify({
      host: '127.0.0.1', port: apiPort, dataDir, redisUrl: s.redis.url, logLevel: 'info',
      self: { eik: who.eik, name: who.name, guid: who.guid },
      signing: { pkcs12Path: cert.p12Path, password: s.pki.p12Password },
      seos: { endpoint: { port: seosPort }, client: { allowInsecureHttp: true } },
      registry: { participants: s.participants },
      ...(who === ALFA && (workerProcess || perDestination !== undefined) ? {
        delivery: {
          ...(workerProcess ? { inProcessWorkers: false } : {}),
          // More deliveries to one destination than the worker runs at once would not be more: both together.
          ...(perDestination !== undefined ? { perDestinationConcurrency: perDestination, concurrency: Math.max(32, perDestination) } : {}),
        },
      } : {}),
    }, null, 2));
    return { file, dataDir, dbFile: path.join(dataDir, 'gateway.db') };
  };
  const a = write(ALFA, s.ports.aApi, s.ports.aSeos);
  const b = write(BETA, s.ports.bApi, s.ports.bSeos);
  // The key exists before A starts, as `seos-gateway apikey create` would leave it.
  const db = openDatabase(a.dbFile);
  const { key } = createApiKey(db, { name: 'bench connector', role: 'connector' });
  db.close();
  const dbB = openDatabase(b.dbFile);
  const { key: bKey } = createApiKey(dbB, { name: 'bench connector', role: 'connector' });
  dbB.close();
  const gb = await startGateway('B', b.file, s.ports.bApi, b.dbFile, path.join(s.tmp, `${tag}-b.log`), profileDir);
  let ga: GatewayProcess;
  try {
    ga = await startGateway('A', a.file, s.ports.aApi, a.dbFile, path.join(s.tmp, `${tag}-a.log`), profileDir);
  } catch (error) {
    await gb.stop();
    throw error;
  }
  let gw: GatewayProcess | undefined;
  if (workerProcess) {
    try {
      gw = await startGateway('A worker', a.file, 0, a.dbFile, path.join(s.tmp, `${tag}-a-worker.log`), profileDir, 'worker');
    } catch (error) {
      await Promise.all([ga.stop(), gb.stop()]);
      throw error;
    }
  }
  return { a: ga, aWorker: gw, b: gb, key, bKey, stop: async () => { await Promise.all([ga.stop(), gb.stop(), gw?.stop()]); } };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP: the load generator

interface HttpAnswer { status: number; body: string }

/** One request; `body` is a buffer, or a function that writes (and ends) the request itself. */
function httpRequest(
  agent: http.Agent, port: number, method: string, urlPath: string, headers: http.OutgoingHttpHeaders,
  body?: Buffer | ((req: http.ClientRequest) => Promise<void>), timeoutMs = 60_000,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else body(req).catch((e: Error) => req.destroy(e));
  });
}

/** GET a (large) body, hashing it as it streams: nothing of it is kept. */
function downloadSha256(port: number, urlPath: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, timeout: 120_000 }, (res) => {
      const hash = crypto.createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => { hash.update(c); bytes += c.length; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, sha256: hash.digest('hex') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('no answer within 120 s')));
  });
}

let docCounter = 0;

/** A POST /v1/documents body: Cyrillic metadata, one correspondent, a fresh random 10 KiB attachment. */
function documentBody(): Buffer {
  docCounter++;
  return Buffer.from(JSON.stringify({
    recipient: BETA.eik,
    externalId: `bench-${RUN}-${docCounter}`,
    document: {
      kind: 'Заявление',
      about: 'Искане за предоставяне на информация по преписка',
      correspondents: [{ name: 'Иван Петров Иванов', city: 'Алфа' }],
      // Random bytes every time: the spool is content-addressed, a repeated attachment would skip its write and fsync.
      attachments: [{ fileName: 'приложение.pdf', mimeType: 'application/pdf', content: crypto.randomBytes(ATTACHMENT_BYTES).toString('base64') }],
    },
  }));
}

/** One request's record (performance.now() times; acceptWall is Date.now() when a 201 arrived). */
interface Sent {
  due: number;
  start: number;
  end: number;
  status: number;
  id?: string;
  documentGuid?: string;
  acceptWall?: number;
  error?: string;
}

async function postDocument(agent: http.Agent, pair: Pair, due: number): Promise<Sent> {
  const body = documentBody();
  const start = performance.now();
  try {
    const r = await httpRequest(agent, pair.a.apiPort, 'POST', '/v1/documents', {
      authorization: `Bearer ${pair.key}`, 'content-type': 'application/json', 'content-length': body.length,
    }, body);
    const end = performance.now();
    if (r.status !== 201) return { due, start, end, status: r.status, error: `HTTP ${r.status}: ${r.body.slice(0, 200)}` };
    const json = JSON.parse(r.body) as { id: string; documentGuid: string };
    return { due, start, end, status: r.status, id: json.id, documentGuid: json.documentGuid, acceptWall: Date.now() };
  } catch (error) {
    return { due, start, end: performance.now(), status: 0, error: (error as Error).message };
  }
}

/** Resolves when the request can take more, rejects when it closed first. */
function drained(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = () => { req.off('close', onClose); resolve(); };
    const onClose = () => { req.off('drain', onDrain); reject(new Error('request closed while sending')); };
    req.once('drain', onDrain);
    req.once('close', onClose);
  });
}

/** POST /v1/documents/multipart: the metadata part, then the file streamed from disk (hashed on the way). */
async function postMultipartFile(agent: http.Agent, pair: Pair, file: string, fileName: string): Promise<{ answer: HttpAnswer; sha256: string; bytes: number }> {
  const boundary = `----seos-bench-${crypto.randomBytes(12).toString('hex')}`;
  const size = fs.statSync(file).size;
  const metadata = JSON.stringify({
    recipient: BETA.eik,
    externalId: `bench-${RUN}-big-${++docCounter}`,
    document: { kind: 'Писмо', about: 'Голямо приложение', attachments: [{ fileName, mimeType: 'application/octet-stream' }] },
  });
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n\r\n${metadata}\r\n`
    + `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="attachment.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const hash = crypto.createHash('sha256');
  let bytes = 0;
  const answer = await httpRequest(agent, pair.a.apiPort, 'POST', '/v1/documents/multipart', {
    authorization: `Bearer ${pair.key}`, 'content-type': `multipart/form-data; boundary=${boundary}`,
    'content-length': head.length + size + tail.length,
  }, async (req) => {
    req.write(head);
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 * MiB }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (!req.write(chunk)) await drained(req);
    }
    req.end(tail);
  }, 180_000);
  return { answer, sha256: hash.digest('hex'), bytes };
}

// ---------------------------------------------------------------------------------------------------------------
// Deliveries: A's status history, read through a second, read-only connection

class DeliveryTracker {
  private readonly db: Database.Database;
  private readonly stmt: Database.Statement;
  private lastId = 0;
  private timer: NodeJS.Timeout | undefined;
  /** document id -> `at` (ms since epoch) of its first DS_WAIT_REGISTRATION. */
  readonly delivered = new Map<string, number>();
  readonly failed = new Map<string, string>();
  /** `at` of every DS_WAIT_REGISTRATION row, in id order (for rates over windows). */
  readonly deliveryTimes: number[] = [];

  constructor(file: string) {
    this.db = new Database(file, { readonly: true, fileMustExist: true });
    this.db.pragma('busy_timeout = 2000');
    this.stmt = this.db.prepare(`SELECT id, document_id AS documentId, status, at FROM status_history
      WHERE id > ? AND status IN ('${DELIVERED}', ${FAILED.map((s) => `'${s}'`).join(', ')}) ORDER BY id`);
  }

  poll(): void {
    const rows = this.stmt.all(this.lastId) as Array<{ id: number; documentId: string; status: string; at: string }>;
    for (const row of rows) {
      this.lastId = Math.max(this.lastId, row.id);
      if (row.status === DELIVERED) {
        const at = Date.parse(row.at);
        this.deliveryTimes.push(at);
        if (!this.delivered.has(row.documentId)) this.delivered.set(row.documentId, at);
      } else if (!this.failed.has(row.documentId)) {
        this.failed.set(row.documentId, row.status);
      }
    }
  }

  start(intervalMs: number): void {
    const tick = () => {
      try { this.poll(); } catch (e) { log(`tracker: ${(e as Error).message}`); }
      this.timer = setTimeout(tick, intervalMs);
    };
    tick();
  }

  /** Waits until every id is delivered or failed, or the deadline (Date.now() ms) passes. */
  async waitFor(ids: readonly string[], deadline: number): Promise<boolean> {
    for (;;) {
      this.poll();
      if (ids.every((id) => this.delivered.has(id) || this.failed.has(id))) return true;
      if (Date.now() > deadline) return false;
      await sleep(25);
    }
  }

  deliveriesBetween(fromWall: number, toWall: number): number[] {
    return this.deliveryTimes.filter((t) => t >= fromWall && t < toWall);
  }

  count(sql: string): number {
    return (this.db.prepare(sql).get() as { n: number }).n;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.db.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Statistics

interface LatencyStats { n: number; p50: number; p90: number; p99: number; max: number; mean: number }

/** p99 of accept latency for each second of the schedule: shows whether slow answers cluster (a stall) or spread. */
function perSecondP99(accepted: Array<{ due: number; end: number }>, t0: number, seconds: number): number[] {
  return Array.from({ length: Math.ceil(seconds) }, (_, i) => {
    const inSecond = accepted.filter((s) => s.due >= t0 + i * 1000 && s.due < t0 + (i + 1) * 1000).map((s) => s.end - s.due);
    return inSecond.length ? percentile(inSecond, 99) : Number.NaN;
  });
}

function latencyStats(xs: number[]): LatencyStats {
  return { n: xs.length, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: xs.length ? Math.max(...xs) : Number.NaN, mean: mean(xs) };
}

/**
 * Percentiles of a sample where some values are only known to exceed a bound (documents not delivered when the
 * wait ended): nearest rank over all of them, the censored ones counted as larger than every measured value.
 */
interface CensoredValue { value?: number; atLeast?: number }

function censoredPercentile(known: number[], censoredBounds: number[], p: number): CensoredValue {
  const n = known.length + censoredBounds.length;
  if (n === 0) return {};
  const idx = Math.max(0, Math.ceil((p / 100) * n) - 1);
  const s = [...known].sort((x, y) => x - y);
  if (idx < s.length) return { value: s[idx] };
  return { atLeast: Math.min(...censoredBounds) };
}

const fmtCensored = (c: CensoredValue) => (c.value !== undefined ? fmtMs(c.value) : c.atLeast !== undefined ? `> ${fmtMs(c.atLeast)}` : 'n/a');

// ---------------------------------------------------------------------------------------------------------------
// Phases

interface Ctx {
  pair: Pair;
  tracker: DeliveryTracker;
  redisPid?: number;
}

const meterOf = (ctx: Ctx) => cpuMeter({ a: ctx.pair.a.pid, aWorker: ctx.pair.aWorker?.pid, b: ctx.pair.b.pid, redis: ctx.redisPid });

/** A few documents through the whole pipeline first (JIT, connections, caches); not reported. */
async function warmUp(ctx: Ctx, n: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  try {
    const ids: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < n) {
        next++;
        const r = await postDocument(agent, ctx.pair, performance.now());
        if (r.error) throw new Error(`warm-up: ${r.error}`);
        ids.push(r.id!);
      }
    }));
    if (!(await ctx.tracker.waitFor(ids, Date.now() + 60_000))) log('warm-up: not every document was delivered within 60 s');
  } finally {
    agent.destroy();
  }
}

interface OpenResult {
  rate: number;
  seconds: number;
  offered: number;
  accepted: number;
  errors: number;
  errorSamples: string[];
  /** Achieved request rate (requests started per second). */
  sendRate: number;
  acceptedPerSecond: number;
  /** From each request's scheduled moment to its answer (includes any wait for a socket or a late start). */
  latency: LatencyStats;
  /** Accept latency p99 within each second of the schedule. */
  perSecondP99: number[];
  /** From the moment the request was actually written to its answer. */
  service: LatencyStats;
  /** How late the generator started requests. */
  lag: LatencyStats;
  maxInFlight: number;
  /** Requests still unanswered `answerCapSeconds` after the last one was sent, aborted (counted in errors). */
  aborted: number;
  answerCapSeconds: number;
  cpu: CpuWindow;
  /** performance.now() bounds of the load (first scheduled request to last answer). */
  window: { start: number; end: number };
  /** A's waits on the disk during the load, from its /metrics: WAL fsyncs awaited, and pauses to restart the WAL. */
  disk: { sync: HistogramSummary; restartPause: HistogramSummary };
  delivery: {
    deliveredInPhase: number;
    deliveredPerSecondInPhase: number;
    /** Delivered between the first request and the last answer (the profile's phase-1 window). */
    deliveredInLoad: number;
    deliveredTotal: number;
    failed: number;
    undelivered: number;
    p50: CensoredValue;
    p90: CensoredValue;
    p99: CensoredValue;
    max?: number;
    /** Accepted first to delivered last, per second (only when all were delivered). */
    endToEndRate?: number;
    /** From the end of the load to the last delivery (when all were delivered). */
    drainMs?: number;
    drainLimitSeconds: number;
    /** Deliveries per second after the load stopped (A's event loop free for delivery). */
    drainRate: number;
  };
}

async function scrapeDisk(port: number) {
  return {
    sync: await scrapeHistogram(port, 'seos_gateway_wal_sync_seconds'),
    restartPause: await scrapeHistogram(port, 'seos_gateway_wal_restart_pause_seconds'),
  };
}

/** Requests on a fixed schedule (rate per second) for `seconds`, whatever the answers do; then a bounded drain. */
async function openLoop(ctx: Ctx, rate: number, seconds: number, drainSeconds: number, answerCapSeconds: number): Promise<OpenResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const sent: Sent[] = [];
  const pending = new Set<Promise<void>>();
  let maxInFlight = 0;
  const diskBefore = await scrapeDisk(ctx.pair.a.apiPort);
  const stopCpu = meterOf(ctx);
  const t0 = performance.now() + 5;
  const t0Wall = performance.timeOrigin + t0;
  for (let i = 0; i < total; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const p: Promise<void> = postDocument(agent, ctx.pair, due).then((r) => { sent.push(r); pending.delete(p); });
    pending.add(p);
    maxInFlight = Math.max(maxInFlight, pending.size);
  }
  const lastStart = performance.now();
  // Bounded: whatever is still unanswered long after the last request is aborted and counted as an error.
  const everything = Promise.all(pending);
  let capTimer: NodeJS.Timeout | undefined;
  const capped = await Promise.race([everything.then(() => false), new Promise<boolean>((r) => { capTimer = setTimeout(() => r(true), answerCapSeconds * 1000); })]);
  clearTimeout(capTimer);
  let aborted = 0;
  if (capped) {
    aborted = pending.size;
    log(`open loop: ${aborted} requests unanswered ${answerCapSeconds} s after the last one was sent: aborting them`);
    agent.destroy();
    await everything;
  }
  const loadEnd = performance.now();
  const loadEndWall = performance.timeOrigin + loadEnd;
  const diskAfter = await scrapeDisk(ctx.pair.a.apiPort);
  agent.destroy();
  const accepted = sent.filter((s) => s.id);
  const errors = sent.filter((s) => !s.id);
  log(`open loop: ${accepted.length}/${total} accepted, ${errors.length} errors; draining (at most ${drainSeconds} s)`);
  const perSecond = perSecondP99(accepted, t0, seconds);
  log(`open loop: accept latency p99 per second: ${perSecond.map((x) => x.toFixed(0)).join(' ')} ms`);
  const ids = accepted.map((s) => s.id!);
  const drained = await ctx.tracker.waitFor(ids, Date.now() + drainSeconds * 1000);
  const cpu = stopCpu();
  const waitEndWall = Date.now();

  const known: number[] = [];
  const censored: number[] = [];
  let failed = 0;
  for (const s of accepted) {
    const at = ctx.tracker.delivered.get(s.id!);
    if (at !== undefined) known.push(at - s.acceptWall!);
    else if (ctx.tracker.failed.has(s.id!)) failed++;
    else censored.push(waitEndWall - s.acceptWall!);
  }
  const deliveredAts = accepted.map((s) => ctx.tracker.delivered.get(s.id!)).filter((x): x is number => x !== undefined);
  const phaseEndWall = t0Wall + seconds * 1000;
  const deliveredInPhase = deliveredAts.filter((t) => t < phaseEndWall).length;
  const afterLoad = deliveredAts.filter((t) => t >= loadEndWall);
  const lastDelivery = deliveredAts.length ? Math.max(...deliveredAts) : Number.NaN;
  const firstAccept = accepted.length ? Math.min(...accepted.map((s) => s.acceptWall!)) : Number.NaN;
  const allDone = drained && censored.length === 0;
  const drainWindowMs = (allDone ? lastDelivery : waitEndWall) - loadEndWall;
  return {
    rate, seconds, offered: total, accepted: accepted.length, errors: errors.length,
    errorSamples: [...new Set(errors.map((e) => e.error ?? `HTTP ${e.status}`))].slice(0, 3),
    sendRate: total / ((lastStart - t0) / 1000),
    acceptedPerSecond: accepted.length / ((loadEnd - t0) / 1000),
    latency: latencyStats(accepted.map((s) => s.end - s.due)),
    perSecondP99: perSecond,
    service: latencyStats(accepted.map((s) => s.end - s.start)),
    lag: latencyStats(sent.map((s) => s.start - s.due)),
    maxInFlight, aborted, answerCapSeconds, cpu, window: { start: t0, end: loadEnd },
    disk: { sync: summarize(diskBefore.sync, diskAfter.sync), restartPause: summarize(diskBefore.restartPause, diskAfter.restartPause) },
    delivery: {
      deliveredInPhase, deliveredPerSecondInPhase: deliveredInPhase / seconds, deliveredInLoad: deliveredAts.length - afterLoad.length, deliveredTotal: known.length, failed, undelivered: censored.length,
      p50: censoredPercentile(known, censored, 50), p90: censoredPercentile(known, censored, 90), p99: censoredPercentile(known, censored, 99),
      max: censored.length === 0 && known.length ? Math.max(...known) : undefined,
      endToEndRate: allDone && known.length ? known.length / ((lastDelivery - firstAccept) / 1000) : undefined,
      drainMs: allDone ? Math.max(0, lastDelivery - loadEndWall) : undefined,
      drainLimitSeconds: drainSeconds,
      drainRate: drainWindowMs > 0 ? afterLoad.length / (drainWindowMs / 1000) : Number.NaN,
    },
  };
}

interface SatResult {
  concurrency: number;
  seconds: number;
  warmupSeconds: number;
  acceptedInWindow: number;
  acceptedPerSecond: number;
  errors: number;
  errorSamples: string[];
  accept: LatencyStats;
  deliveredInWindow: number;
  deliveredPerSecond: number;
  deliveredPerSecondRange: { min: number; median: number; max: number };
  deliveredPerSecondSeries: number[];
  /** Documents accepted but neither delivered nor failed when the phase ended (A's backlog). */
  backlogAtEnd: number;
  cpu: CpuWindow;
  /** performance.now() bounds of the measured window. */
  window: { start: number; end: number };
}

/** `concurrency` requests kept in flight for `seconds`; rates counted in the window after `warmupSeconds`. */
async function saturation(ctx: Ctx, concurrency: number, seconds: number, warmupSeconds: number): Promise<SatResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const windowStart = t0 + warmupSeconds * 1000;
  const sent: Sent[] = [];
  let stopCpu: (() => CpuWindow) | undefined;
  const opened = setTimeout(() => { stopCpu = meterOf(ctx); }, windowStart - performance.now());
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) sent.push(await postDocument(agent, ctx.pair, performance.now()));
  }));
  clearTimeout(opened);
  const cpu = (stopCpu ?? meterOf(ctx))();
  agent.destroy();
  await sleep(100);
  ctx.tracker.poll();
  const wall = (t: number) => performance.timeOrigin + t;
  const windowSeconds = (end - windowStart) / 1000;
  const inWindow = sent.filter((s) => s.id && s.end >= windowStart && s.end < end);
  const deliveries = ctx.tracker.deliveriesBetween(wall(windowStart), wall(end));
  const buckets = Array.from({ length: Math.floor(windowSeconds) }, () => 0);
  for (const t of deliveries) {
    const i = Math.floor((t - wall(windowStart)) / 1000);
    if (i < buckets.length) buckets[i]++;
  }
  log(`saturation: delivered per second: ${buckets.join(' ')}`);
  const errors = sent.filter((s) => !s.id);
  const backlogAtEnd = ctx.tracker.count("SELECT COUNT(*) AS n FROM documents WHERE direction = 'out' AND status = 'PENDING'");
  return {
    concurrency, seconds, warmupSeconds, acceptedInWindow: inWindow.length, acceptedPerSecond: inWindow.length / windowSeconds,
    errors: errors.length, errorSamples: [...new Set(errors.map((e) => e.error ?? `HTTP ${e.status}`))].slice(0, 3),
    accept: latencyStats(sent.filter((s) => s.id && s.end >= windowStart).map((s) => s.end - s.start)),
    deliveredInWindow: deliveries.length, deliveredPerSecond: deliveries.length / windowSeconds,
    deliveredPerSecondSeries: buckets,
    deliveredPerSecondRange: buckets.length ? { min: Math.min(...buckets), median: percentile(buckets, 50), max: Math.max(...buckets) } : { min: NaN, median: NaN, max: NaN },
    backlogAtEnd, cpu, window: { start: windowStart, end },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Phase 3: one large document, RSS sampled every 50 ms

interface MemSeries { baseline: number; sampledPeak: number; sampledPeakAt: number; hwmAtEnd?: number; hwmReset: boolean; end: number; samples: number }

class RssSampler {
  private readonly series = new Map<string, MemSeries>();
  private timer: NodeJS.Timeout | undefined;
  private t0 = 0;

  constructor(private readonly pids: Record<string, number | undefined>) {}

  /** Baseline = median VmRSS over `ms` (quiet processes), then resets each process's peak mark. */
  async baseline(ms: number): Promise<void> {
    const acc = new Map<string, number[]>();
    const until = performance.now() + ms;
    while (performance.now() < until) {
      for (const [name, pid] of Object.entries(this.pids)) {
        const rss = pid ? memoryOf(pid).rss : undefined;
        if (rss !== undefined) acc.set(name, [...(acc.get(name) ?? []), rss]);
      }
      await sleep(50);
    }
    for (const [name, pid] of Object.entries(this.pids)) {
      const base = percentile(acc.get(name) ?? [], 50);
      const hwmReset = pid ? resetPeak(pid) : false;
      this.series.set(name, { baseline: base, sampledPeak: base, sampledPeakAt: 0, hwmReset, end: base, samples: 0 });
    }
  }

  start(intervalMs: number): void {
    this.t0 = performance.now();
    const tick = () => {
      const t = performance.now() - this.t0;
      for (const [name, pid] of Object.entries(this.pids)) {
        const s = this.series.get(name);
        const rss = pid ? memoryOf(pid).rss : undefined;
        if (!s || rss === undefined) continue;
        s.samples++;
        s.end = rss;
        if (rss > s.sampledPeak) { s.sampledPeak = rss; s.sampledPeakAt = t; }
      }
    };
    tick();
    this.timer = setInterval(tick, intervalMs);
  }

  /** ms since start(). */
  elapsed(): number {
    return performance.now() - this.t0;
  }

  stop(): Map<string, MemSeries> {
    clearInterval(this.timer);
    for (const [name, pid] of Object.entries(this.pids)) {
      const s = this.series.get(name);
      if (s && pid && s.hwmReset) s.hwmAtEnd = memoryOf(pid).hwm;
    }
    return this.series;
  }
}

interface BigResult {
  bytes: number;
  acceptMs: number;
  acceptedAtMs: number;
  deliveredAtMs?: number;
  toDeliveredMs?: number;
  status: number;
  error?: string;
  intact?: boolean;
  /** B's records system fetched the document and downloaded the attachment: the SHA-256 of what it got matches. */
  fetchedIntact?: boolean;
  fetchMs?: number;
  mem: Map<string, MemSeries>;
  cpu: CpuWindow;
}

async function bigDocument(ctx: Ctx, file: string, bytes: number, benchPid: number): Promise<BigResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  try {
    // Warm-up: three small uploads through to DS_WAIT_REGISTRATION (multipart, signing and verifying code loaded).
    const small = path.join(path.dirname(file), 'warm.bin');
    for (let i = 0; i < 3; i++) {
      writeRandomFile(small, 256 * KiB);
      const r = await postMultipartFile(agent, ctx.pair, small, `загрявка-${i}.bin`);
      if (r.answer.status !== 201) throw new Error(`large document warm-up: HTTP ${r.answer.status} ${r.answer.body.slice(0, 300)}`);
      await ctx.tracker.waitFor([JSON.parse(r.answer.body).id], Date.now() + 30_000);
    }
    removeQuietly(small);
    await sleep(1000);
    const sampler = new RssSampler({ A: ctx.pair.a.pid, B: ctx.pair.b.pid, 'redis-server': ctx.redisPid, 'benchmark (load generator)': benchPid });
    await sampler.baseline(1000);
    const stopCpu = meterOf(ctx);
    sampler.start(50);
    const t0 = performance.now();
    const up = await postMultipartFile(agent, ctx.pair, file, 'голямо-приложение.bin');
    const acceptMs = performance.now() - t0;
    const acceptedAtMs = sampler.elapsed();
    const acceptWall = Date.now();
    if (up.answer.status !== 201) {
      const mem = sampler.stop();
      return { bytes, acceptMs, acceptedAtMs, status: up.answer.status, error: up.answer.body.slice(0, 300), mem, cpu: stopCpu() };
    }
    const { id, documentGuid } = JSON.parse(up.answer.body) as { id: string; documentGuid: string };
    log(`large document accepted in ${fmtMs(acceptMs)}; waiting for ${DELIVERED}`);
    const done = await ctx.tracker.waitFor([id], Date.now() + 150_000);
    const at = ctx.tracker.delivered.get(id);
    const deliveredAtMs = at !== undefined ? sampler.elapsed() - (Date.now() - at) : undefined;
    await sleep(500); // anything that still grows right after the status is written
    // The recipient stored the same bytes: its attachment row has the file's size and SHA-256.
    let intact: boolean | undefined;
    let inboundId: string | undefined;
    try {
      const bdb = new Database(ctx.pair.b.dbFile, { readonly: true, fileMustExist: true });
      const row = bdb.prepare(`SELECT d.id, a.sha256, a.size FROM attachments a JOIN documents d ON d.id = a.document_id
        WHERE d.direction = 'in' AND d.document_guid = ?`).get(documentGuid) as { id: string; sha256: string; size: number } | undefined;
      bdb.close();
      intact = row ? row.sha256 === up.sha256 && row.size === bytes : false;
      inboundId = row?.id;
    } catch {
      intact = undefined;
    }
    // The whole pipeline ends at B's records system: it reads the document and downloads the attachment (RSS still sampled).
    let fetchedIntact: boolean | undefined;
    let fetchMs: number | undefined;
    if (inboundId) {
      const f0 = performance.now();
      const headers = { authorization: `Bearer ${ctx.pair.bKey}` };
      const doc = await httpRequest(agent, ctx.pair.b.apiPort, 'GET', `/v1/inbox/${inboundId}`, headers);
      const download = doc.status === 200 ? await downloadSha256(ctx.pair.b.apiPort, `/v1/inbox/${inboundId}/attachments/1`, headers) : undefined;
      fetchMs = performance.now() - f0;
      fetchedIntact = download?.status === 200 && download.sha256 === up.sha256 && download.bytes === bytes;
      if (!fetchedIntact) log(`phase 3: fetching at B: document HTTP ${doc.status}, attachment ${download ? `HTTP ${download.status}, ${download.bytes} bytes` : 'not asked'}`);
    }
    await sleep(500);
    const mem = sampler.stop();
    const cpu = stopCpu();
    return {
      bytes, acceptMs, acceptedAtMs, deliveredAtMs, toDeliveredMs: at !== undefined ? at - acceptWall : undefined, status: up.answer.status,
      error: done ? (ctx.tracker.failed.get(id) ? `document ${ctx.tracker.failed.get(id)}` : undefined) : `no ${DELIVERED} within 150 s`,
      intact, fetchedIntact, fetchMs, mem, cpu,
    };
  } finally {
    agent.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// CPU profiles (--profile): self time by area and function, cut to a window

/** Each gateway's profile file is parsed once and cut to several windows. */
const profileCache = new Map<string, CpuProfile>();

function loadProfile(dir: string, gw: GatewayProcess, window: { start: number; end: number }): ProfileSummary | undefined {
  if (!fs.existsSync(dir) || gw.exitedAt === undefined) return undefined;
  // The main thread's profile: CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile (thread id 0).
  const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile') && f.includes(`.${gw.pid}.0.`));
  if (!file) return undefined;
  const full = path.join(dir, file);
  const profile = profileCache.get(full) ?? (JSON.parse(fs.readFileSync(full, 'utf8')) as CpuProfile);
  profileCache.set(full, profile);
  return summarizeProfile(profile, { root: ROOT, window: { fromEndMs: gw.exitedAt - window.start, toEndMs: gw.exitedAt - window.end }, areas: 14, functions: 16 });
}

// ---------------------------------------------------------------------------------------------------------------
// Report

const ms = fmtMs;
const share = (cpu: number, wall: number) => (Number.isFinite(cpu) && wall > 0 ? `${((cpu / wall) * 100).toFixed(0)}%` : 'n/a');
const pct = (part: number, whole: number) => (whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : 'n/a');
const perDoc = (cpu: number, n: number) => (n > 0 && Number.isFinite(cpu) ? fmtMs(cpu / n) : 'n/a');
const rate = (x: number) => fmtRate(x, '/s');

interface Results {
  opts: Options;
  header: string;
  loadAtEnd: string;
  /** RSA-2048 signatures per second on one thread, before the gateways started and after the last phase. */
  speed: { start: number; end: number };
  open: OpenResult;
  sat: SatResult;
  peakRss: { a?: number; b?: number; redis?: number };
  big?: BigResult;
  bigError?: string;
  profiles?: { open: { a?: ProfileSummary; b?: ProfileSummary }; sat: { a?: ProfileSummary; b?: ProfileSummary } };
}

function bigGrowth(s: MemSeries | undefined): { peak: number; growth: number } | undefined {
  if (!s) return undefined;
  const peak = Math.max(s.sampledPeak, s.hwmAtEnd ?? 0);
  return { peak, growth: peak - s.baseline };
}

function targets(r: Results): Array<{ name: string; measured: string; ok: boolean | undefined }> {
  const { open, sat, big } = r;
  const acceptOk = open.errors === 0 && open.latency.p99 < TARGET_ACCEPT_P99_MS && open.acceptedPerSecond >= open.rate * 0.98;
  const deliveredOk = sat.deliveredPerSecond >= TARGET_DELIVERED_RATE;
  const a = bigGrowth(big?.mem.get('A'));
  const b = bigGrowth(big?.mem.get('B'));
  const bigOk = big && !big.error && a && b ? a.growth <= TARGET_BIG_GROWTH && b.growth <= TARGET_BIG_GROWTH : big || r.bigError ? false : undefined;
  return [
    {
      name: `API accept p99 < ${TARGET_ACCEPT_P99_MS} ms at ${open.rate} requests/s`,
      measured: `p99 ${ms(open.latency.p99)} (p50 ${ms(open.latency.p50)}, max ${ms(open.latency.max)}); ${rate(open.acceptedPerSecond)} accepted, ${open.errors} errors`,
      ok: acceptOk,
    },
    {
      name: `≥ ${TARGET_DELIVERED_RATE} documents/s delivered end to end (10 KiB attachments)`,
      measured: `${rate(sat.deliveredPerSecond)} sustained at saturation (per second ${sat.deliveredPerSecondRange.min}–${sat.deliveredPerSecondRange.max}); ${rate(open.delivery.deliveredPerSecondInPhase)} during the open loop`,
      ok: deliveredOk,
    },
    {
      name: `${sizeLabel(r.opts.bigBytes)} attachment through the pipeline raises no process's RSS by more than ${fmtBytes(TARGET_BIG_GROWTH)}`,
      measured: r.bigError ? `not measured: ${r.bigError}` : big?.error ? `${big.error}; A +${fmtBytes(a?.growth)}, B +${fmtBytes(b?.growth)}` : `A +${fmtBytes(a?.growth)}, B +${fmtBytes(b?.growth)}`,
      ok: bigOk,
    },
  ];
}

function render(r: Results): string {
  const out: string[] = [];
  const { open, sat, big, opts } = r;
  out.push(`# Pipeline benchmark: REST API → gateway A → SEOS → gateway B${opts.quick ? ' (--quick: short phases, smoke check only)' : ''}`, '', r.header, `- Load average at end: ${r.loadAtEnd}`,
    `- Machine speed (RSA-2048 signatures per second, one thread, 1 s, nothing else of ours running): ${r.speed.start.toFixed(0)}/s at the start, ${r.speed.end.toFixed(0)}/s at the end. On this shared VM it moved by a quarter from one minute to the next: compare runs at similar speeds.`, '');
  out.push('Two `seos-gateway serve` processes on loopback (`tsx src/cli/main.ts serve --config …`), a private redis-server, static',
    'participants, plain HTTP, log level info (to files), default delivery and retry settings. The load generator (this process,',
    '`node:http` with a keep-alive Agent) calls A\'s REST API with a connector API key; A signs, stores and queues each document,',
    'delivers it to B, B verifies and stores it and answers with a signed DS_WAIT_REGISTRATION, which A verifies and applies.',
    'Deliveries are observed through a read-only SQLite connection to A\'s database (`status_history`).', '');
  if (opts.workerProcess) {
    out.push('**With `--worker-process`:** A\'s deliveries run in a separate `seos-gateway worker` process (A\'s `delivery.inProcessWorkers: false`),',
      'so A is two processes: `serve` accepts, `worker` delivers. A\'s CPU below is the sum of both (the large-document phase keeps one process).', '');
  }
  if (opts.perDestination !== undefined) {
    out.push(`**With \`--per-destination ${opts.perDestination}\`:** A keeps up to ${opts.perDestination} deliveries to B in flight (\`delivery.perDestinationConcurrency\`; the default is 16) and its worker runs ${Math.max(32, opts.perDestination)} jobs at once (the default is 32). The large-document phase keeps the defaults.`, '');
  }

  out.push('## Targets', '');
  out.push(markdownTable(['target', 'measured', 'result'], targets(r).map((t) => [t.name, t.measured, passFail(t.ok)]), ['left', 'left', 'center']), '');

  const d = open.delivery;
  out.push(`## Phase 1: open loop, ${open.rate} requests/s for ${open.seconds} s`, '');
  out.push(`POST /v1/documents with a fresh ${ATTACHMENT_BYTES / KiB} KiB attachment (base64 in JSON, unique externalId), sent on a fixed schedule whatever the answers do, after ${opts.warmUp} warm-up documents (not reported). Accept p99 per second of the phase: ${r.open.perSecondP99.map((x) => x.toFixed(0)).join(' ')} ms.`, '');
  out.push(markdownTable(['measure', 'n', 'p50', 'p90', 'p99', 'max'], [
    ['accept latency (scheduled moment → 201)', String(open.latency.n), ms(open.latency.p50), ms(open.latency.p90), ms(open.latency.p99), ms(open.latency.max)],
    ['accept service time (request written → 201)', String(open.service.n), ms(open.service.p50), ms(open.service.p90), ms(open.service.p99), ms(open.service.max)],
    ['generator start lag', String(open.lag.n), ms(open.lag.p50), ms(open.lag.p90), ms(open.lag.p99), ms(open.lag.max)],
    [`201 → ${DELIVERED} in A's status history`, `${d.deliveredTotal}/${open.accepted}`, fmtCensored(d.p50), fmtCensored(d.p90), fmtCensored(d.p99), d.max !== undefined ? ms(d.max) : d.undelivered ? `> ${d.drainLimitSeconds} s after the load` : 'n/a'],
  ]), '');
  const drainText = d.drainMs !== undefined
    ? `everything delivered ${ms(d.drainMs)} after the last answer (${rate(d.drainRate)} meanwhile)`
    : `${d.undelivered} of ${open.accepted} not delivered ${d.drainLimitSeconds} s after the last answer (delivering ${rate(d.drainRate)} meanwhile${d.drainRate > 0 ? `: about ${Math.round(d.undelivered / d.drainRate)} s more at that rate` : ''})`;
  out.push(markdownTable(['measure', 'value'], [
    ['offered / accepted / errors', `${open.offered} / ${open.accepted} / ${open.errors}${open.aborted ? ` (${open.aborted} aborted: unanswered ${open.answerCapSeconds} s after the last request)` : ''}${open.errorSamples.length ? ` (${open.errorSamples.join('; ')})` : ''}`],
    ['requests sent / accepted per second', `${rate(open.sendRate)} / ${rate(open.acceptedPerSecond)} (first request → last answer, ${((open.window.end - open.window.start) / 1000).toFixed(1)} s)`],
    ['most requests in flight', String(open.maxInFlight)],
    [`delivered during the ${open.seconds} s phase`, `${d.deliveredInPhase} (${rate(d.deliveredPerSecondInPhase)})`],
    ['delivered/s, first accept → last delivery', d.endToEndRate !== undefined ? rate(d.endToEndRate) : 'n/a (not all delivered)'],
    ['after the load stopped', drainText],
    ['failed (SENT_FAILED / DS_REJECTED)', String(d.failed)],
  ], ['left', 'left']), '');
  const atMost = (x: number) => (Number.isFinite(x) ? `≤ ${ms(x)}` : Number.isNaN(x) ? 'n/a' : '> 1 s');
  const diskRow = (name: string, h: HistogramSummary) => [name, String(h.count), Number.isNaN(h.meanMs) ? 'n/a' : ms(h.meanMs), atMost(h.p50AtMostMs), atMost(h.p99AtMostMs), atMost(h.maxAtMostMs)];
  out.push('A\'s waits on the disk during the load (its `/metrics` histograms, read before and after; percentiles are bucket bounds). An accept waits for one WAL fsync; a restart pause holds up every request in flight on the event loop:', '');
  out.push(markdownTable(['measure', 'n', 'mean', 'p50', 'p99', 'max'], [
    diskRow('WAL fsync awaited (`seos_gateway_wal_sync_seconds`)', open.disk.sync),
    diskRow('pause to restart the WAL (`seos_gateway_wal_restart_pause_seconds`)', open.disk.restartPause),
  ]), '');

  out.push(`## Phase 2: saturation, ${sat.concurrency} requests in flight for ${sat.seconds} s`, '');
  out.push(markdownTable(['measure', 'value'], [
    [`accepted/s (last ${sat.seconds - sat.warmupSeconds} s)`, `${rate(sat.acceptedPerSecond)} (${sat.acceptedInWindow} documents; ${sat.errors} errors${sat.errorSamples.length ? `: ${sat.errorSamples.join('; ')}` : ''})`],
    ['accept service time p50 / p90 / p99 / max', `${ms(sat.accept.p50)} / ${ms(sat.accept.p90)} / ${ms(sat.accept.p99)} / ${ms(sat.accept.max)}`],
    [`delivered/s (${DELIVERED} rows in the same window)`, `${rate(sat.deliveredPerSecond)} (${sat.deliveredInWindow}; per second min ${sat.deliveredPerSecondRange.min}, median ${sat.deliveredPerSecondRange.median}, max ${sat.deliveredPerSecondRange.max}: ${sat.deliveredPerSecondSeries.join(' ')})`],
    ['A\'s backlog at the end (documents still PENDING)', String(sat.backlogAtEnd)],
  ], ['left', 'left']), '');
  out.push('Deliveries in the window include documents left over from phase 1: the pipeline is saturated either way, so this is its sustained rate.', '');

  out.push('## CPU (share of one core; 2 cores = 200%)', '');
  const cpuRow = (name: string, c: CpuWindow, accepted: number, delivered: number) => [name, share(c.a, c.wallMs), share(c.b, c.wallMs), share(c.redis, c.wallMs), share(c.bench, c.wallMs), share(c.others, c.wallMs),
    `${accepted} / ${delivered}`, perDoc(c.a, accepted), perDoc(c.b, delivered)];
  const satDelivered = sat.deliveredInWindow;
  out.push(markdownTable(['window', 'A', 'B', 'redis', 'load generator', 'others', 'accepted / delivered', 'A CPU per accepted', 'B CPU per delivered'], [
    cpuRow(`phase 1 (load + drain, ${(open.cpu.wallMs / 1000).toFixed(0)} s)`, open.cpu, open.accepted, d.deliveredTotal),
    cpuRow(`phase 2 (last ${sat.seconds - sat.warmupSeconds} s)`, sat.cpu, sat.acceptedInWindow, satDelivered),
    ...(big ? [cpuRow(`phase 3 (${sizeLabel(big.bytes)} document)`, big.cpu, 1, 1)] : []),
  ]), '');
  out.push('A\'s CPU covers both its accepting and its delivering, so *per accepted* is an upper bound of the accept path when it also delivered in the window.', '');
  out.push('*others* is every other process on the machine in the same window (other builds and tests); when it is high the absolute rates say more about the machine than about this code.', '');

  out.push('## Peak RSS, phases 1-2', '');
  out.push(markdownTable(['process', 'peak RSS (VmHWM)'], [
    ['A (`serve`)', fmtBytes(r.peakRss.a)], ['B (`serve`)', fmtBytes(r.peakRss.b)], ['redis-server', fmtBytes(r.peakRss.redis)],
  ]), '');

  out.push(`## Phase 3: one ${sizeLabel(opts.bigBytes)} attachment`, '');
  if (r.bigError) {
    out.push(`Not measured: ${r.bigError}`, '');
  } else if (big) {
    out.push(`A fresh pair of gateways (new data dirs, Redis flushed) after three 256 KiB warm-up uploads. POST /v1/documents/multipart, the \`metadata\` part then the file streamed from disk; RSS of each process from /proc/<pid>/status every 50 ms. Baseline = median VmRSS over 1 s before the upload; the kernel's peak mark (VmHWM) is reset at that moment, so peak = max(sampled VmRSS, VmHWM at the end).`, '');
    out.push(markdownTable(['measure', 'value'], [
      ['upload + accept (request start → 201)', ms(big.acceptMs)],
      [`201 → ${DELIVERED}`, big.toDeliveredMs !== undefined ? ms(big.toDeliveredMs) : 'n/a'],
      ['total', big.toDeliveredMs !== undefined ? ms(big.acceptMs + big.toDeliveredMs) : 'n/a'],
      ['B stored the same bytes (size and SHA-256)', big.intact === undefined ? 'n/a' : big.intact ? 'yes' : 'NO'],
      ['B\'s records system fetched the document and downloaded the same bytes (GET /v1/inbox/{id}, …/attachments/1; RSS sampled meanwhile)', big.fetchedIntact === undefined ? 'n/a' : `${big.fetchedIntact ? 'yes' : 'NO'} (${ms(big.fetchMs ?? 0)})`],
      ...(big.error ? [['error', big.error]] : []),
    ], ['left', 'left']), '');
    const sec = (t: number) => `+${(t / 1000).toFixed(2)} s`;
    const when = (t: number) => (t <= big.acceptedAtMs ? `during upload (${sec(t)})` : big.deliveredAtMs === undefined || t <= big.deliveredAtMs ? `after 201, before ${DELIVERED} (${sec(t)})` : `after ${DELIVERED} (${sec(t)})`);
    out.push(markdownTable(['process', 'baseline', 'peak sampled', 'VmHWM since baseline', 'growth', 'peak first sampled', 'at end', `≤ ${fmtBytes(TARGET_BIG_GROWTH)}`], [...big.mem.entries()].map(([name, s]) => {
      const g = bigGrowth(s)!;
      const inTarget = name === 'A' || name === 'B';
      return [name, fmtBytes(s.baseline), fmtBytes(s.sampledPeak), s.hwmReset ? fmtBytes(s.hwmAtEnd) : 'n/a (reset failed)', `+${fmtBytes(g.growth)}`, when(s.sampledPeakAt), fmtBytes(s.end),
        inTarget ? passFail(g.growth <= TARGET_BIG_GROWTH) : '(not a target)'];
    })), '');
    out.push(`Timeline from the start of the upload: 201 at ${sec(big.acceptedAtMs)}${big.deliveredAtMs !== undefined ? `, ${DELIVERED} written at ${sec(big.deliveredAtMs)}` : ''}; samples every 50 ms, so a peak "after" the status within 50 ms is the same moment.`, '');
  }

  if (r.profiles) {
    out.push('## Where the time goes (CPU profiles)', '');
    out.push('Both gateways ran with `--cpu-prof` through phases 1-2 (the profiler costs a few percent); the samples are cut to each window. Self time on the main thread; a thread blocked in a synchronous call (fsync, a SQLite commit) counts as time in that call; *(idle)* is the event loop waiting, so a process with little idle time is at its limit even when its CPU share is low.', '');
    const windows = [
      { title: `phase 1 load (${open.rate}/s offered, first request → last answer)`, p: r.profiles.open, accepted: open.accepted, delivered: d.deliveredInLoad },
      { title: `phase 2 window (${sat.concurrency} in flight)`, p: r.profiles.sat, accepted: sat.acceptedInWindow, delivered: satDelivered },
    ];
    for (const w of windows) {
      for (const [name, p] of [['A', w.p.a], ['B', w.p.b]] as const) {
        if (!p) { out.push(`${name}, ${w.title}: no profile found.`, ''); continue; }
        const n = name === 'A' ? w.accepted : w.delivered;
        const per = name === 'A' ? 'per accepted' : 'per delivered';
        out.push(`### ${name}, ${w.title}: ${ms(p.totalMs)} sampled, idle ${pct(p.idleMs, p.totalMs)}; busy ${per} document ${perDoc(p.totalMs - p.idleMs, n)} (${n})`, '');
        out.push(markdownTable(['area', 'self time', 'share', per], p.byArea.map(([k, v]) => [k, ms(v), pct(v, p.totalMs), perDoc(v, n)]), ['left', 'right', 'right', 'right']), '');
        out.push(markdownTable(['function (top by self time)', 'self time', 'share'], p.byFunction.slice(0, 12).map(([k, v]) => [k, ms(v), pct(v, p.totalMs)]), ['left', 'right', 'right']), '');
      }
    }
  }

  out.push('## Notes', '');
  out.push(`- Accept latency is measured from each request's scheduled moment (so a stalled server or a late generator start counts, no coordinated omission); the service time from when the request was actually written. Time to ${DELIVERED} = the \`at\` of A's status-history row (A's clock, written when B's verified reply was applied) minus the moment the 201 arrived here (the same clock).`,
    `- Percentiles of the time to ${DELIVERED} count documents not delivered by the end of the wait as larger than every measured value; a "> x" entry means that percentile falls among them (x = the shortest of their waits).`,
    '- Both gateways share 2 cores with the load generator, redis-server and whatever else runs on the machine.',
    '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const opts = options();
  const info = machineInfo();
  const header = machineMarkdown(info, { 'redis-server': toolVersion('redis-server', ['--version']) });
  const speedAtStart = rsaSignsPerSecond();
  log(`machine speed: ${speedAtStart.toFixed(0)} RSA-2048 signatures/s on one thread`);
  const started = performance.now();
  // --keep leaves the temp dir (configs, logs, databases, profiles; not the large file) for inspection.
  const tmp = opts.keep ? fs.mkdtempSync(path.join(os.tmpdir(), 'seos-bench-pipeline-')) : makeTempDir('seos-bench-pipeline-');
  log(`working in ${tmp}`);
  // Bounded in time whatever happens: the exit handlers kill the gateways and redis-server, and remove the temp dir.
  const watchdog = setTimeout(() => { log('time limit (10 min) reached: giving up'); process.exit(3); }, 10 * 60_000);
  watchdog.unref();

  const pki = makeTestPki({ out: path.join(tmp, 'pki') });
  const redis = await startRedisServer();
  const bigFile = path.join(tmp, 'big-attachment.bin');
  let pair: Pair | undefined;
  let tracker: DeliveryTracker | undefined;
  try {
    const ports = { aApi: await freePort(), aSeos: await freePort(), bApi: await freePort(), bSeos: await freePort() };
    const cert = (name: string) => pki.admins.find((x) => x.name === name)!;
    const participants = [
      { guid: ALFA.guid, eik: ALFA.eik, name: ALFA.name, certificateSN: cert(ALFA.admin).serialHex, endpointUrl: `http://127.0.0.1:${ports.aSeos}/seos` },
      { guid: BETA.guid, eik: BETA.eik, name: BETA.name, certificateSN: cert(BETA.admin).serialHex, endpointUrl: `http://127.0.0.1:${ports.bSeos}/seos` },
    ];
    const setup: Setup = { tmp, pki, redis, ports, participants };
    const rPid = redisPid(redis.port);
    const profDir = opts.profile ? path.join(tmp, 'prof') : undefined;

    if (opts.bigOnly) {
      log(`phase 3 only: writing a ${sizeLabel(opts.bigBytes)} file; starting a pair of gateways`);
      writeRandomFile(bigFile, opts.bigBytes);
      pair = await startPair(setup, 'big');
      tracker = new DeliveryTracker(pair.a.dbFile);
      tracker.start(25);
      const big = await bigDocument({ pair, tracker, redisPid: rPid }, bigFile, opts.bigBytes, process.pid);
      const row = (name: string) => {
        const s = big.mem.get(name);
        const g = bigGrowth(s);
        return `${name}: baseline ${fmtBytes(s?.baseline)}, peak ${fmtBytes(g?.peak)} (sampled ${fmtBytes(s?.sampledPeak)}, VmHWM ${fmtBytes(s?.hwmAtEnd)}), growth +${fmtBytes(g?.growth)}`;
      };
      log(`phase 3: ${sizeLabel(big.bytes)} document: HTTP ${big.status}, accept ${ms(big.acceptMs)}, to ${DELIVERED} ${ms(big.toDeliveredMs)}, intact at B: ${big.intact}${big.error ? `; ${big.error}` : ''}`);
      for (const name of big.mem.keys()) log(`  ${row(name)}`);
      const a = bigGrowth(big.mem.get('A'));
      const b = bigGrowth(big.mem.get('B'));
      const ok = !big.error && a !== undefined && b !== undefined && a.growth <= TARGET_BIG_GROWTH && b.growth <= TARGET_BIG_GROWTH;
      log(`target (no process's RSS +${fmtBytes(TARGET_BIG_GROWTH)} or more): ${ok ? 'met' : 'NOT met'}; load average ${machineInfo().loadAverage}`);
      if (opts.strict && !ok) process.exitCode = 1;
      return;
    }

    log(`starting gateways B and A (serve)${opts.profile ? ' with --cpu-prof' : ''}`);
    pair = await startPair(setup, 'load', profDir, opts.workerProcess, opts.perDestination);
    tracker = new DeliveryTracker(pair.a.dbFile);
    tracker.start(25);
    const ctx: Ctx = { pair, tracker, redisPid: rPid };

    log(`warm-up: ${opts.warmUp} documents through the pipeline`);
    await warmUp(ctx, opts.warmUp);

    log(`phase 1: open loop at ${opts.rate} requests/s for ${opts.openSeconds} s`);
    const open = await openLoop(ctx, opts.rate, opts.openSeconds, opts.drainSeconds, opts.answerCapSeconds);
    log(`phase 1: accept p50 ${ms(open.latency.p50)} p99 ${ms(open.latency.p99)}; delivered ${open.delivery.deliveredTotal}/${open.accepted}, p50 ${fmtCensored(open.delivery.p50)} p99 ${fmtCensored(open.delivery.p99)}`);

    log(`phase 2: saturation, ${opts.concurrency} in flight for ${opts.satSeconds} s`);
    const sat = await saturation(ctx, opts.concurrency, opts.satSeconds, opts.satWarmupSeconds);
    log(`phase 2: ${sat.acceptedPerSecond.toFixed(1)} accepted/s, ${sat.deliveredPerSecond.toFixed(1)} delivered/s, backlog ${sat.backlogAtEnd}`);
    const peakRss = { a: Math.max(memoryOf(pair.a.pid).hwm ?? 0, pair.aWorker ? memoryOf(pair.aWorker.pid).hwm ?? 0 : 0) || undefined, b: memoryOf(pair.b.pid).hwm, redis: rPid ? memoryOf(rPid).hwm : undefined };

    tracker.close();
    tracker = undefined;
    log('stopping the first pair of gateways');
    const first = pair;
    pair = undefined;
    await first.stop();
    let profiles: Results['profiles'];
    if (profDir) {
      profiles = {
        open: { a: loadProfile(profDir, first.a, open.window), b: loadProfile(profDir, first.b, open.window) },
        sat: { a: loadProfile(profDir, first.a, sat.window), b: loadProfile(profDir, first.b, sat.window) },
      };
    }

    let big: BigResult | undefined;
    let bigError: string | undefined;
    try {
      await redis.flushAll(); // the first pair's queued jobs belong to a database that is no longer used
      log(`phase 3: writing a ${sizeLabel(opts.bigBytes)} file; starting a fresh pair of gateways`);
      writeRandomFile(bigFile, opts.bigBytes);
      pair = await startPair(setup, 'big');
      tracker = new DeliveryTracker(pair.a.dbFile);
      tracker.start(25);
      log(`phase 3: one ${sizeLabel(opts.bigBytes)} document via /v1/documents/multipart`);
      big = await bigDocument({ pair, tracker, redisPid: rPid }, bigFile, opts.bigBytes, process.pid);
      const g = (name: string) => bigGrowth(big!.mem.get(name))?.growth;
      log(`phase 3: accept ${ms(big.acceptMs)}, to ${DELIVERED} ${ms(big.toDeliveredMs)}; RSS growth A +${fmtBytes(g('A'))}, B +${fmtBytes(g('B'))}${big.error ? `; ${big.error}` : ''}`);
    } catch (error) {
      bigError = (error as Error).message;
      log(`phase 3 failed: ${bigError}`);
    }

    tracker?.close();
    tracker = undefined;
    await pair?.stop();
    pair = undefined;
    const speed = { start: speedAtStart, end: rsaSignsPerSecond() };
    log(`machine speed: ${speed.end.toFixed(0)} RSA-2048 signatures/s on one thread`);
    const results: Results = { opts, header, loadAtEnd: machineInfo().loadAverage, speed, open, sat, peakRss, big, bigError, profiles };
    const report = render(results);
    fs.mkdirSync(path.dirname(OUT_FILE), { recursive: true });
    fs.writeFileSync(OUT_FILE, report + '\n');
    process.stdout.write(report + '\n');
    log(`report written to ${path.relative(process.cwd(), OUT_FILE)} (${((performance.now() - started) / 1000).toFixed(0)} s)`);
    if (opts.strict && targets(results).some((t) => t.ok !== true)) process.exitCode = 1;
  } finally {
    tracker?.close();
    await pair?.stop().catch((e) => log(`stopping gateways: ${(e as Error).message}`));
    await redis.stop().catch((e) => log(`stopping redis-server: ${(e as Error).message}`));
    removeQuietly(bigFile);
    removeTempDirs();
    if (opts.keep) log(`kept ${tmp}`);
    clearTimeout(watchdog);
  }
}

await main();
