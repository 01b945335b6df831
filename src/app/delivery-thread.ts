import { Worker } from 'node:worker_threads';
import type { HandedOff } from '../delivery/engine.ts';

/**
 * The serve process's deliveries, on a thread of their own.
 *
 * Accepting a document and delivering one both run on a Node event loop, and on one loop they queue behind each
 * other: each accept waits for the RSA signature and the WAL sync, and every time it comes back it waits behind
 * whatever delivery work (peer replies, signature checks, settling commits) arrived meanwhile; a flooded API, in
 * turn, starves delivery. Measured on two cores (pipeline benchmark): with the API flooded, 166 documents/s
 * delivered on one loop (while it accepted 620/s), 240/s with this thread. The thread has its own event loop,
 * which the kernel runs on the other core.
 *
 * The thread builds the same gateway as `seos-gateway worker` (its own SQLite connection, Redis connections and
 * handlers) from the same configuration file and environment. The serve process hands it every row due now with
 * the job sequence it gave the row (`handOff`: a message, no Redis round trip); the thread's engine delivers it as
 * its own direct delivery, and it alone runs the reconciler, since only it knows which rows it holds. Rows due
 * later, and rows handed off while the thread is not running, go through the queue, which the thread's worker also
 * serves. A thread that stops unexpectedly is started again; whatever it held is still pending in SQLite, and its
 * reconciler finds it.
 */
export interface AttemptSummary {
  readonly kind: string;
  readonly createdAt: string;
  readonly result: 'delivered' | 'failed' | 'retry' | 'defer';
  readonly code?: string;
}

export interface DeliveryThreadOptions {
  /** The configuration file serve was started with (undefined: $SEOS_GATEWAY_CONFIG, else environment and defaults). */
  readonly configFile: string | undefined;
  /** The environment serve read its configuration with (default: the process's). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Every settled attempt, for the serve process's metrics. */
  readonly attempted: (attempt: AttemptSummary) => void;
  readonly log: { info(o: object, m?: string): void; error(o: object, m?: string): void };
  /** Before an unexpected stop is answered with a new thread (ms). */
  readonly restartDelayMs?: number;
}

type FromThread =
  | { type: 'ready' }
  | { type: 'attempted'; attempt: AttemptSummary }
  | { type: 'counts'; id: number; active: number; waiting: number }
  | { type: 'failed'; message: string };

const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

// The thread loads TypeScript like the process it runs in: tsx registers itself in the thread first.
const THREAD_SOURCE = `
const { workerData } = require('node:worker_threads');
import(workerData.tsx).then(({ register }) => { register(); return import(workerData.entry); })
  .catch((error) => { require('node:worker_threads').parentPort.postMessage({ type: 'failed', message: String(error && error.stack || error) }); });
`;

export class DeliveryThread {
  #worker: Worker | undefined;
  /** The current worker has not exited (it may be starting). */
  #alive = false;
  #ready = false;
  #stopping = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #countsId = 0;
  readonly #countsWaiting = new Map<number, (counts: { active: number; waiting: number }) => void>();

  private constructor(private readonly options: DeliveryThreadOptions) {}

  /** Starts the thread; resolves once its engine runs (rejects with the thread's error if it cannot start). */
  static async start(options: DeliveryThreadOptions): Promise<DeliveryThread> {
    const thread = new DeliveryThread(options);
    await thread.#spawn();
    return thread;
  }

  /** Gives the thread a row due now; false when it is not running (the caller queues the row instead). */
  handOff(job: HandedOff): boolean {
    if (!this.#ready || !this.#worker) return false;
    this.#worker.postMessage({ type: 'deliver', job });
    return true;
  }

  /** The rows the thread holds without a queue job (zero when it is not running). */
  counts(): Promise<{ active: number; waiting: number }> {
    if (!this.#ready || !this.#worker) return Promise.resolve({ active: 0, waiting: 0 });
    const id = ++this.#countsId;
    this.#worker.postMessage({ type: 'counts', id });
    return new Promise((resolve) => {
      this.#countsWaiting.set(id, resolve);
      // A thread that stops meanwhile never answers.
      setTimeout(() => { if (this.#countsWaiting.delete(id)) resolve({ active: 0, waiting: 0 }); }, 1000).unref();
    });
  }

  /** Whether the thread runs and takes rows (false while it starts again after an unexpected stop). */
  get running(): boolean {
    return this.#ready;
  }

  /** Ends the thread at once, as a crash would; it is started again (for tests). */
  async kill(): Promise<void> {
    await this.#worker?.terminate();
  }

  /** Lets the thread finish its deliveries in flight and close its connections, then ends it. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    const worker = this.#worker;
    if (!worker || !this.#alive) return; // none, or it stopped and was waiting to start again
    this.#ready = false;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'stop' });
    const timer = setTimeout(() => {
      this.options.log.error({ timeoutMs: STOP_TIMEOUT_MS }, 'delivery thread did not stop in time; ending it (its rows stay pending)');
      void worker.terminate();
    }, STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  #spawn(): Promise<void> {
    const worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: {
        tsx: import.meta.resolve('tsx/esm/api'),
        entry: new URL('./delivery-thread-main.ts', import.meta.url).href,
        configFile: this.options.configFile,
        env: { ...(this.options.env ?? process.env) },
      },
    });
    this.#worker = worker;
    this.#alive = true;
    return new Promise<void>((resolve, reject) => {
      let started = false;
      const startTimer = setTimeout(() => { if (!started) void worker.terminate(); }, START_TIMEOUT_MS);
      worker.on('message', (message: FromThread) => {
        if (message.type === 'ready') {
          started = true;
          this.#ready = true;
          clearTimeout(startTimer);
          resolve();
        } else if (message.type === 'attempted') this.options.attempted(message.attempt);
        else if (message.type === 'counts') {
          const answer = this.#countsWaiting.get(message.id);
          this.#countsWaiting.delete(message.id);
          answer?.({ active: message.active, waiting: message.waiting });
        } else if (message.type === 'failed') {
          this.options.log.error({ err: message.message.slice(0, 2000) }, 'delivery thread failed');
          if (!started) reject(new Error(`delivery thread failed to start: ${message.message.split('\n')[0]}`));
          void worker.terminate();
        }
      });
      worker.on('error', (error) => {
        this.options.log.error({ err: error.message }, 'delivery thread failed');
        if (!started) reject(error);
      });
      worker.on('exit', (code) => {
        if (this.#worker === worker) {
          this.#alive = false;
          this.#ready = false;
        }
        clearTimeout(startTimer);
        if (!started) {
          reject(new Error(`delivery thread stopped while starting (exit code ${code})`));
          return;
        }
        if (this.#stopping || this.#worker !== worker) return;
        // Not asked to stop: start it again. Meanwhile rows due now go through the queue.
        this.options.log.error({ exitCode: code }, 'delivery thread stopped unexpectedly; starting it again');
        this.#restartLater(this.options.restartDelayMs ?? 1000);
      });
    });
  }

  #restartLater(delayMs: number): void {
    if (this.#stopping) return;
    this.#restartTimer = setTimeout(() => {
      this.#spawn().then(
        () => this.options.log.info({}, 'delivery thread started again'),
        (error) => {
          this.options.log.error({ err: (error as Error).message, restartInMs: delayMs * 2 }, 'delivery thread could not start again');
          this.#restartLater(Math.min(delayMs * 2, 60_000));
        },
      );
    }, delayMs);
    this.#restartTimer.unref();
  }
}
