import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Db } from './database.ts';

/**
 * Checkpoints a WAL-mode database from a worker thread instead of inside the commits of the event loop.
 *
 * SQLite's automatic checkpoint runs in whichever commit pushes the WAL past 1,000 pages: that commit copies the
 * WAL into the database file and fsyncs both, on the calling thread. better-sqlite3 is synchronous, so a serving
 * gateway's event loop stopped for 10–20 ms every few dozen commits (measured: commit p99 0.33 ms without it,
 * 14.7 ms with it) and spent about half of its commit time there. The gateway's connection therefore runs with
 * `wal_autocheckpoint = 0`, and a second connection in a worker thread makes a PASSIVE checkpoint every 200 ms:
 * PASSIVE never blocks the gateway's readers or writers.
 *
 * PASSIVE alone never lets the WAL start over under steady load: SQLite reuses the WAL from its beginning only when
 * a write begins while every frame is in the database file, and a checkpoint running beside a busy writer always
 * ends a few frames behind (measured: 575 MiB of WAL after 25 s at 200 documents/s). So once the WAL holds
 * `restartFrames`, the gateway's own connection finishes a worker checkpoint on the event loop with a RESTART
 * checkpoint: it copies only the frames written since the worker's began (the worker copied the megabytes),
 * waits a moment for the other connections (serve's delivery thread, a worker process, a reader) to pause, and
 * starts the WAL over itself. An earlier PASSIVE finish left the restart to our next commit, which a second
 * writer's commits kept from happening: beside the delivery thread the WAL grew to the fallback threshold every
 * few seconds, with a blocking finish on every tick meanwhile. A finish still blocks the event loop: 15-20 ms
 * (p50, up to 49 ms) in the pipeline benchmark until the worker synced the database file before it (below),
 * about 3-6 ms (p50) since.
 *
 * Durability does not change: SQLite syncs the WAL before a checkpoint copies it and the database file before
 * the WAL is reused, whichever connection checkpoints. If the worker cannot run, the gateway's own connection
 * goes back to automatic checkpoints, so the WAL never grows without bound.
 */
export interface CheckpointerOptions {
  /** How often the worker checkpoints (ms). A checkpoint with nothing new to copy costs no I/O. */
  readonly intervalMs?: number;
  /** From this many frames in the WAL on, the gateway's connection finishes a worker checkpoint (see above). */
  readonly restartFrames?: number;
  readonly log?: { warn(o: object, m?: string): void };
}

/** A few dozen exchanges' pages at a time on a busy gateway: small checkpoints, two fsyncs each, off the event loop. */
const DEFAULT_INTERVAL_MS = 200;
/**
 * About 16 MiB of WAL, four times SQLite's own threshold: a busy gateway (about 5,000 frames a second at 200
 * documents/s with its delivery thread) finishes about once a second. A longer WAL makes every read dearer: with
 * 16,000 frames both gateways spent about 8 % more CPU per document in the pipeline benchmark (two alternating
 * pairs of runs), and the accept p99 was worse although the pauses came a quarter as often.
 */
const DEFAULT_RESTART_FRAMES = 4000;

const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;

/** How long a finish waits for the other connections to pause (ms); busy, it is tried again later. */
const FINISH_BUSY_TIMEOUT_MS = 20;

/** After a finish found the database busy, the next waits this long, doubling, at most FINISH_BACKOFF_MAX_MS. */
const FINISH_BACKOFF_MS = 250;
const FINISH_BACKOFF_MAX_MS = 5000;

/** What a checkpoint found: frames in the WAL and frames of it now in the database file (SQLite's own counts). */
export interface CheckpointResult {
  readonly log: number;
  readonly checkpointed: number;
}

// Plain JavaScript: the worker must start without the TypeScript loader the gateway itself may run under.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.betterSqlite3);
const fs = require('node:fs');
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
let stopping = false;
let timer;
let dbFd;
let databaseSyncs = 0;
// SQLite syncs the database file only after a checkpoint that copied the whole WAL, which a PASSIVE one beside a
// busy writer never does: the pages it copied stayed unsynced until the gateway's RESTART finish flushed them all
// on the event loop (measured 15-20 ms, up to 49 ms, about once a second). So when a finish is due, the worker
// syncs the file itself, copies what came in meanwhile and syncs again, leaving the finish the last few frames.
// Only then: every sync is a flush of the disk, which slows every other sync (with a sync after each checkpoint
// the exchange benchmark made 261-284 exchanges/s against 292-307 without; 272-299 like this). Only a matter of
// speed: SQLite syncs the file itself before the WAL restarts.
let syncedAt = -1;
const syncDatabaseFile = (row) => {
  if (row.checkpointed === 0 || row.checkpointed === syncedAt) return; // nothing copied since the last sync
  dbFd ??= fs.openSync(workerData.file, 'r');
  fs.fdatasyncSync(dbFd);
  syncedAt = row.checkpointed;
  databaseSyncs++;
};
// PASSIVE: copies what it can without waiting for readers or writers; what it cannot copy waits for the next.
const passive = () => db.pragma('wal_checkpoint(PASSIVE)')[0];
const checkpoint = (id) => {
  try {
    let row = passive();
    if (row.log >= workerData.restartFrames) {
      syncDatabaseFile(row);
      row = passive();
      syncDatabaseFile(row);
    }
    parentPort.postMessage({ type: 'checkpointed', id, log: row.log, checkpointed: row.checkpointed, databaseSyncs });
  } catch (error) {
    parentPort.postMessage({ type: 'error', id, message: String((error && error.message) || error) });
  }
};
const tick = () => {
  if (stopping) return;
  checkpoint();
  timer = setTimeout(tick, workerData.intervalMs);
};
parentPort.on('message', (message) => {
  if (message.type === 'checkpoint') checkpoint(message.id);
  if (message.type === 'stop') {
    stopping = true;
    clearTimeout(timer);
    if (dbFd !== undefined) fs.closeSync(dbFd);
    db.close();
    process.exit(0); // in a worker thread: ends this thread only
  }
});
parentPort.postMessage({ type: 'ready' });
timer = setTimeout(tick, workerData.intervalMs);
`;

export class Checkpointer {
  readonly #worker: Worker;
  #checkpoints = 0;
  #stopped: Promise<void> | undefined;
  #exited = false;
  #lastId = 0;
  #restarts = 0;
  #inCommits = false;
  #fallbacks = 0;
  #databaseSyncs = 0;
  #observeFinish: ((seconds: number) => void) | undefined;
  /** Finishes in a row that found the database busy (a long reader, another process writing), and when to try next. */
  #busyFinishes = 0;
  #nextFinishAt = 0;
  readonly #asked = new Map<number, { resolve(r: CheckpointResult): void; reject(e: Error): void }>();
  /** Resolves when the worker has opened its connection (or has failed to: then the fallback is in place). */
  readonly ready: Promise<void>;

  constructor(private readonly db: Db, file: string, options: CheckpointerOptions = {}) {
    db.pragma('wal_autocheckpoint = 0');
    // A WAL that grew long once (a burst, or the fallback below) is cut back to this when it starts over.
    db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    const restartFrames = options.restartFrames ?? DEFAULT_RESTART_FRAMES;
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        file,
        betterSqlite3: createRequire(import.meta.url).resolve('better-sqlite3'),
        intervalMs: options.intervalMs ?? DEFAULT_INTERVAL_MS,
        restartFrames,
      },
    });
    this.#worker.unref();
    let markReady!: () => void;
    this.ready = new Promise<void>((resolve) => { markReady = resolve; });
    this.#worker.on('message', (message: { type: string; id?: number; message?: string; databaseSyncs?: number } & Partial<CheckpointResult>) => {
      if (message.type === 'ready') markReady();
      if (message.type === 'checkpointed') {
        this.#databaseSyncs = message.databaseSyncs!;
        if (message.checkpointed! > 0) this.#checkpoints++;
        this.#afterWorkerCheckpoint(message.log!, restartFrames, options.log);
      }
      if (message.type === 'error' && message.id === undefined) options.log?.warn({ err: message.message }, 'WAL checkpoint failed; will retry');
      const asked = message.id === undefined ? undefined : this.#asked.get(message.id);
      if (!asked) return;
      this.#asked.delete(message.id!);
      if (message.type === 'error') asked.reject(new Error(message.message));
      else asked.resolve({ log: message.log!, checkpointed: message.checkpointed! });
    });
    const fallBack = (reason: string) => {
      this.#exited = true;
      markReady();
      for (const asked of this.#asked.values()) asked.reject(new Error(`the checkpoint worker stopped: ${reason}`));
      this.#asked.clear();
      if (this.#stopped || !this.db.open) return;
      // Without the worker nobody checkpoints: let SQLite do it in the commits again.
      this.db.pragma('wal_autocheckpoint = 1000');
      options.log?.warn({ reason }, 'WAL checkpoint worker stopped; checkpointing in commits again');
    };
    this.#worker.on('error', (error) => fallBack(error.message));
    this.#worker.on('exit', (code) => fallBack(`exit code ${code}`));
  }

  /** Times the gateway's connection finished a checkpoint and started the WAL over (tests, benchmarks). */
  get restarts(): number {
    return this.#restarts;
  }

  /**
   * After each worker checkpoint: from `restartFrames` on, finish it here so the WAL can start over. When that keeps
   * failing (a reader that stays in its transaction; before the RESTART finish, also another process writing all
   * the time, as `serve` beside `seos-gateway worker` does: measured, the WAL passed 680 MiB in 30 s) and the WAL
   * reaches four times as many frames, SQLite's own checkpoints in the commits are switched back on until the WAL
   * has started over.
   */
  #afterWorkerCheckpoint(frames: number, restartFrames: number, log?: { warn(o: object, m?: string): void }): void {
    if (this.#stopped || !this.db.open) return;
    if (this.#inCommits && frames < restartFrames) {
      this.#inCommits = false;
      this.db.pragma('wal_autocheckpoint = 0');
    }
    if (frames < restartFrames) return;
    this.#finishOnOwnConnection(log);
    if (!this.#inCommits && frames >= 4 * restartFrames) {
      this.#inCommits = true;
      this.#fallbacks++;
      this.db.pragma('wal_autocheckpoint = 1000');
    }
  }

  /** Times the WAL grew so long that checkpoints went back into the commits for a while (tests, benchmarks). */
  get fallbacks(): number {
    return this.#fallbacks;
  }

  #finishOnOwnConnection(log?: { warn(o: object, m?: string): void }): void {
    if (this.#stopped || !this.db.open || this.db.inTransaction || Date.now() < this.#nextFinishAt) return;
    const busyTimeout = this.db.pragma('busy_timeout', { simple: true }) as number;
    try {
      this.db.pragma(`busy_timeout = ${FINISH_BUSY_TIMEOUT_MS}`);
      const started = performance.now();
      const [row] = this.db.pragma('wal_checkpoint(RESTART)') as Array<CheckpointResult & { busy: number }>;
      this.#observeFinish?.((performance.now() - started) / 1000);
      if (row && row.busy === 0) {
        this.#restarts++;
        this.#busyFinishes = 0;
      } else {
        // Someone stays in the way: do not pause the event loop again at the next tick.
        this.#nextFinishAt = Date.now() + Math.min(FINISH_BACKOFF_MAX_MS, FINISH_BACKOFF_MS * 2 ** this.#busyFinishes++);
      }
    } catch (error) {
      log?.warn({ err: (error as Error).message }, 'WAL checkpoint failed; will retry');
    } finally {
      this.db.pragma(`busy_timeout = ${busyTimeout}`);
    }
  }

  /** Checkpoints now, in the worker, rather than at the next tick (tests). */
  checkpointNow(): Promise<CheckpointResult> {
    if (this.#exited || this.#stopped) return Promise.reject(new Error('the checkpoint worker is not running'));
    const id = ++this.#lastId;
    return new Promise<CheckpointResult>((resolve, reject) => {
      this.#asked.set(id, { resolve, reject });
      this.#worker.postMessage({ type: 'checkpoint', id });
    });
  }

  /** Reports how long each finish paused the event loop (metrics), whether or not it started the WAL over. */
  observeFinishes(observe: (seconds: number) => void): void {
    this.#observeFinish = observe;
  }

  /** Times the worker synced the database file before a finish (tests). */
  get databaseSyncs(): number {
    return this.#databaseSyncs;
  }

  /** Checkpoints the worker has made that found frames in the database file (for tests and benchmarks). */
  get checkpoints(): number {
    return this.#checkpoints;
  }

  /** Closes the worker's connection; call before the gateway's own connection closes (closeDatabase does). */
  stop(): Promise<void> {
    this.#stopped ??= this.#exited
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
        this.#worker.once('exit', () => resolve());
        this.#worker.postMessage({ type: 'stop' });
      });
    return this.#stopped;
  }
}
