import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import type { ErrorCode } from '../errors/index.ts';
import type { Db } from '../store/database.ts';
import {
  DEFAULT_DESTINATION_POLICY, mayAttempt, recordSuccess, recordTransportFailure, type DestinationPolicy,
} from './destinations.ts';
import { getOutboxEntry, takeJobSeq, pendingEntries, recordAttempt, updateOutbox, type OutboxRow } from './outbox.ts';
import { DEFAULT_RETRY_POLICY, retryDelay, type RetryPolicy } from './retry-policy.ts';

/**
 * The delivery engine: BullMQ on Redis drives the outbox rows in SQLite. Redis holds only pointers
 * (outbox id + job sequence); the row is the truth. A job whose sequence is not the row's current one is stale
 * and does nothing, so a reconciler may re-schedule freely: at boot and on a timer it gives every pending row
 * without a live job a new one, which is how a Redis flush or restart loses nothing. A row due now, scheduled in
 * a process that runs a worker, is delivered there without a job (see `schedule`), and serve hands such a row to
 * its delivery thread by message (`handOff`); retries, delayed rows and rows scheduled by a process that only
 * accepts go through the queue.
 *
 * Handlers say what happened as a typed outcome; the engine applies the retry policy, destination health and
 * the handler's own changes in one transaction with the attempt record.
 */
export type SingleOutcome =
  /** Done. */
  | { result: 'delivered'; detail?: string; commit?: () => void }
  /** The other side refused; trying again will not help. */
  | { result: 'failed'; code: ErrorCode; detail?: string; commit?: () => void }
  /** Try again later; `transport` failures count against the destination's health. */
  | { result: 'retry'; code: ErrorCode; detail?: string; transport: boolean; commit?: () => void }
  /** Not now, and not a failure: come back at `until` without spending an attempt (e.g. an earlier event of the same RNU is still on its way). */
  | { result: 'defer'; until: Date; detail?: string };

/**
 * A row that a job delivered together with its own (one job carrying many small deliveries, e.g. eJournal
 * events): settled in the same transaction as the job's row, with its own retry policy and attempt record.
 */
export interface CompanionOutcome {
  readonly row: OutboxRow;
  readonly outcome: SingleOutcome;
  /**
   * Inside the settle transaction: does this delivery still own the row? Default: the row's job sequence is still
   * `row.jobSeq`. A row that is no longer owned is left alone (its outcome and commit are dropped).
   */
  readonly owns?: () => boolean;
}

export type DeliveryOutcome = SingleOutcome & {
  /** Rows delivered by the same job, settled with it. */
  companions?: readonly CompanionOutcome[];
  /** Inside the settle transaction, after the row and its companions are applied (schedule follow-up work here). */
  settled?: () => void;
};

export interface DeliveryContext {
  /** 1-based number of this attempt. */
  readonly attempt: number;
  /** This attempt probes a destination that is down. */
  readonly probe: boolean;
}

export type DeliveryHandler = (entry: OutboxRow, context: DeliveryContext) => Promise<DeliveryOutcome>;

export interface DeliveryEvents {
  /** Every settled attempt (metrics). */
  attempted?(entry: OutboxRow, outcome: DeliveryOutcome): void;
  delivered?(entry: OutboxRow): void;
  failed?(entry: OutboxRow, code: ErrorCode, detail?: string): void;
  dead?(entry: OutboxRow, code: ErrorCode, detail?: string): void;
}

export interface DeliveryEngineOptions {
  readonly db: Db;
  readonly connection: ConnectionOptions;
  /** Keeps the queues of two gateways on one Redis apart. */
  readonly prefix: string;
  readonly handlers: Readonly<Record<string, DeliveryHandler>>;
  readonly retryPolicyFor?: (entry: OutboxRow) => RetryPolicy;
  readonly destinationPolicy?: DestinationPolicy;
  /** Jobs processed at once by this process's worker. */
  readonly concurrency?: number;
  /** Deliveries to one destination at once, per process. */
  readonly perDestinationConcurrency?: number;
  /**
   * Deliveries this process holds without a queue job, in flight or waiting for a slot at their destination
   * (see `schedule`). Beyond it, rows due now go through the queue. 0 sends every row through the queue.
   */
  readonly directLimit?: number;
  readonly reconcileIntervalMs?: number;
  /**
   * How long a worker holds a job without renewing its lock. A job held by a killed process is taken up again
   * about this long after the kill (BullMQ's stalled-job check).
   */
  readonly lockDurationMs?: number;
  /** False for a process that only accepts (its jobs run in `seos-gateway worker` processes). */
  readonly runWorker?: boolean;
  /**
   * In an engine without a worker: offers a row due now, with the job sequence this engine gave it, to the
   * delivery thread of the same process (`takeHandOff` there). False, when the thread is not running, sends it
   * through the queue instead.
   */
  readonly handOff?: (job: HandedOff) => boolean;
  /** False where another engine of this process reconciles (the delivery thread's, which alone sees its held rows). */
  readonly reconcile?: boolean;
  readonly events?: DeliveryEvents;
  readonly log?: { info(o: object, m?: string): void; warn(o: object, m?: string): void; error(o: object, m?: string): void };
}

export const QUEUE_NAME = 'delivery';
// Used when no configuration gives them; the same as the configuration's defaults (config/exchange-config.ts).
const DEFAULT_DIRECT_LIMIT = 1000;
const DEFAULT_CONCURRENCY = 32;
const DEFAULT_PER_DESTINATION_CONCURRENCY = 16;

interface Applied {
  readonly row: OutboxRow;
  readonly outcome: SingleOutcome;
  readonly reschedule?: Date;
  readonly final?: 'delivered' | 'failed' | 'dead';
}

interface JobData {
  outboxId: string;
  seq: number;
}

/** A row due now, handed from serve's engine to its delivery thread's: the job sequence serve gave it. */
export type HandedOff = Readonly<JobData>;

export class DeliveryEngine {
  private readonly queue: Queue<JobData>;
  private worker: Worker<JobData> | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  private closing = false;
  private readonly adding = new Set<Promise<unknown>>();
  /** Deliveries this process started without a queue job (`schedule`'s fast path), by `<outbox id>.<job seq>`. */
  private readonly direct = new Map<string, Promise<unknown>>();
  /** Of those, how many hold a destination slot (the rest wait for one). */
  private directActive = 0;

  constructor(private readonly options: DeliveryEngineOptions) {
    this.queue = new Queue<JobData>(QUEUE_NAME, { connection: options.connection, prefix: options.prefix });
    // A Redis outage must not crash the process; the reconciler repairs what was missed.
    this.queue.on('error', (error) => options.log?.warn({ err: error.message }, 'delivery queue error'));
  }

  async start(): Promise<void> {
    if (this.options.runWorker !== false) {
      this.worker = new Worker<JobData>(QUEUE_NAME, (job) => this.process(job.data), {
        connection: this.options.connection,
        prefix: this.options.prefix,
        concurrency: this.options.concurrency ?? DEFAULT_CONCURRENCY,
        // A job left active by a killed process comes back after the lock expires; its row decides what to do.
        maxStalledCount: 1000,
        lockDuration: this.options.lockDurationMs ?? 30_000,
        stalledInterval: Math.max(500, Math.floor((this.options.lockDurationMs ?? 30_000) / 2)),
      });
      this.worker.on('error', (error) => this.options.log?.warn({ err: error.message }, 'delivery worker error'));
    }
    if (this.options.reconcile === false) return;
    await this.reconcile().catch((error) => this.options.log?.warn({ err: (error as Error).message }, 'reconcile failed; will retry'));
    const interval = this.options.reconcileIntervalMs ?? 60_000;
    const tick = () => {
      this.reconcileTimer = setTimeout(() => {
        this.reconcile().catch((error) => this.options.log?.warn({ err: (error as Error).message }, 'reconcile failed'))
          .finally(() => { if (!this.closing) tick(); });
      }, interval);
      this.reconcileTimer.unref();
    };
    tick();
  }

  /**
   * Gives a committed outbox row its job. Safe to call after the commit that created the row, best effort:
   * if Redis is unreachable the reconciler schedules it later, so callers never wait for Redis to answer.
   *
   * A row due now, in a process that runs a delivery worker, is delivered here directly, without a queue job, as
   * long as fewer than `directLimit` such deliveries are held: a job costs three Redis scripts (add, take,
   * finish), which were the largest single cost of a busy exchange after SQLite (about an eighth of all CPU, Redis
   * included). The limit is large (a held delivery is a row id waiting for its destination's slot) because a
   * small one made the system bistable: a short delay at the peer filled it, every later row took the dearer
   * queue path, and the extra work kept the backlog up for seconds. Nothing else changes: the row still
   * carries the job sequence that owns it, the attempt is settled the same way, and a delivery lost with the
   * process is found by the reconciler like a lost job (at start and every `reconcileIntervalMs`). Another
   * process's reconciler cannot see these deliveries: with several worker processes, one still in flight a second
   * after it started may be given a second attempt through the queue; the peer answers a repeated MessageGUID with
   * the document's current status, and only the attempt holding the row's current sequence settles it.
   */
  schedule(entry: Pick<OutboxRow, 'id' | 'nextAttemptAt'>): void {
    // The sequence is taken now, in the caller's transaction if there is one (a bump, unless the row is new):
    // whatever claims the row after this (an eJournal carrier taking it as a companion) bumps it again, and this
    // job then does nothing.
    const seq = takeJobSeq(this.options.db, entry);
    const delay = Math.max(0, new Date(entry.nextAttemptAt).getTime() - Date.now());
    const job = { outboxId: entry.id, seq };
    if (delay === 0 && !this.worker && !this.closing && this.options.handOff) {
      // On the next turn (as `deliverDirectly` explains): after our commit, and never for a rolled-back bump.
      const handing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        if (!this.options.handOff!(job)) this.addJob(job, 0);
      });
      this.adding.add(handing);
      void handing.finally(() => this.adding.delete(handing));
      return;
    }
    this.dispatch(job, delay);
  }

  /** A row handed off by serve's engine (see `handOff`), with the sequence serve gave it. */
  takeHandOff(job: HandedOff): void {
    this.dispatch(job, 0);
  }

  /** A direct delivery (due now, in a process with a worker, below the limit) or a queue job. */
  private dispatch(job: JobData, delay: number): void {
    if (delay === 0 && this.worker && !this.closing && this.direct.size < (this.options.directLimit ?? DEFAULT_DIRECT_LIMIT)) {
      this.deliverDirectly(job);
      return;
    }
    this.addJob(job, delay);
  }

  private addJob(job: JobData, delay: number): void {
    const adding = this.queue.add('deliver', job, {
      jobId: `${job.outboxId}.${job.seq}`, delay, removeOnComplete: true, removeOnFail: 1000, attempts: 1,
    }).catch((error) => this.options.log?.warn({ err: (error as Error).message, outboxId: job.outboxId }, 'could not enqueue; the reconciler will'));
    this.adding.add(adding);
    void adding.finally(() => this.adding.delete(adding));
  }

  private deliverDirectly(data: JobData): void {
    const key = `${data.outboxId}.${data.seq}`;
    // On the next turn: `schedule` may be called inside the transaction that bumped the sequence, which must
    // commit first (a rolled-back bump leaves a sequence no row has, and the delivery finds nothing to do).
    const run = new Promise((resolve) => setImmediate(resolve))
      .then(() => this.process(data, true))
      .catch((error) => this.options.log?.warn({ err: (error as Error).message, outboxId: data.outboxId }, 'delivery failed before it was settled; the reconciler will retry it'))
      .finally(() => this.direct.delete(key));
    this.direct.set(key, run);
  }

  /** Waits until the jobs handed to Redis so far are there (for short-lived processes such as the CLI). */
  async flush(): Promise<void> {
    // Rows handed over just now are scheduled on the next turn (after their transaction): let that happen first.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.adding.size > 0) await Promise.allSettled([...this.adding]);
  }

  /** Schedules every pending row that has no live job. Returns how many it scheduled. */
  async reconcile(): Promise<number> {
    // Rows scheduled or settled after this moment may have jobs the snapshot below does not show yet: they are
    // left to the next round rather than given a second job (which would send the same message twice).
    const snapshotAt = new Date(Date.now() - 1000).toISOString();
    const live = new Set<string>(this.direct.keys());
    const states = ['waiting', 'delayed', 'active', 'prioritized', 'waiting-children'] as const;
    const page = 1000;
    for (let start = 0; ; start += page) {
      const jobs = await this.queue.getJobs([...states], start, start + page - 1);
      for (const job of jobs) if (job?.data) live.add(`${job.data.outboxId}.${job.data.seq}`);
      if (jobs.length < page) break;
    }
    let scheduled = 0;
    for (const row of pendingEntries(this.options.db)) {
      if (live.has(`${row.id}.${row.jobSeq}`) || row.updatedAt >= snapshotAt) continue;
      this.schedule(row);
      scheduled++;
    }
    if (scheduled > 0) this.options.log?.info({ scheduled }, 'reconciler re-scheduled pending deliveries');
    return scheduled;
  }

  /** The BullMQ queue, for the operators' dashboard only: it is read and acted on there, never bypassing the outbox. */
  get bullQueue(): Queue {
    return this.queue as unknown as Queue;
  }

  /** Deliveries held without a queue job: holding a destination slot (active) or waiting for one. */
  directCounts(): { active: number; waiting: number } {
    return { active: this.directActive, waiting: this.direct.size - this.directActive };
  }

  /** Counts of jobs by state, for /ready and metrics. */
  async queueCounts(): Promise<Record<string, number>> {
    const counts = await this.queue.getJobCounts('waiting', 'delayed', 'active', 'failed');
    // Deliveries without a job count too: those holding a destination slot as active, the rest as waiting.
    const direct = this.directCounts();
    return { ...counts, active: (counts.active ?? 0) + direct.active, waiting: (counts.waiting ?? 0) + direct.waiting };
  }

  /**
   * Stops taking work; jobs in flight finish (or are released to come back after restart). Without Redis a
   * graceful close would wait for it forever: after `timeoutMs` the connections are dropped (a job left active
   * comes back as stalled, and its outbox row decides what happens, so nothing is lost).
   */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closing = true;
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    const graceful = (async () => {
      await this.flush();
      while (this.direct.size > 0) await Promise.allSettled([...this.direct.values()]);
      await this.worker?.close();
      await this.queue.close();
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      graceful.then(() => false, () => false),
      new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.options.log?.warn({ timeoutMs }, 'delivery engine did not close in time (Redis unreachable?); dropping connections');
      const force = Promise.allSettled([this.worker?.close(true), this.queue.close()]);
      await Promise.race([force, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      void this.worker?.disconnect().catch(() => undefined);
      void this.queue.disconnect().catch(() => undefined);
    }
  }

  private async process(data: JobData, direct = false): Promise<void> {
    const { db } = this.options;
    const current = () => {
      const found = getOutboxEntry(db, data.outboxId);
      return found && found.state === 'pending' && found.jobSeq === data.seq ? found : undefined; // else done, or superseded
    };
    const queued = current();
    if (!queued) return;
    const waitForSlot = this.acquire(queued.destination);
    if (waitForSlot) await waitForSlot;
    if (direct) this.directActive++;
    let outcome: DeliveryOutcome;
    let row: OutboxRow | undefined;
    const started = Date.now();
    try {
      // Read again if this delivery waited for its slot: meanwhile the row may have been settled or superseded, or
      // the destination marked down by the deliveries ahead of it. A slot taken at once leaves no gap to check.
      row = waitForSlot ? current() : queued;
      if (!row) return;
      if (direct && this.closing) return; // released: the row stays pending and is taken up after restart
      const permission = mayAttempt(db, row.destination, this.destinationPolicy());
      if (!permission.go) {
        // The destination is down: wait for its probe without spending an attempt.
        updateOutbox(db, row.id, { nextAttemptAt: permission.until });
        this.schedule({ id: row.id, nextAttemptAt: permission.until.toISOString() });
        return;
      }
      const handler = this.options.handlers[row.kind];
      outcome = handler
        ? await handler(row, { attempt: row.attempts + 1, probe: permission.probe })
        : { result: 'failed', code: 'GW_ERR_INTERNAL', detail: `no handler for ${row.kind}` };
    } catch (error) {
      outcome = { result: 'retry', code: 'GW_ERR_INTERNAL', detail: (error as Error).message.slice(0, 300), transport: false };
    } finally {
      if (direct) this.directActive--;
      this.release(queued.destination);
    }
    if (row) this.settle(row, outcome, Date.now() - started);
  }

  private settle(row: OutboxRow, outcome: DeliveryOutcome, durationMs: number): void {
    const { db } = this.options;
    const companions = outcome.companions ?? [];
    this.options.events?.attempted?.(row, outcome);
    for (const c of companions) this.options.events?.attempted?.(c.row, c.outcome);
    if (outcome.result === 'defer' && companions.length === 0 && !outcome.settled) {
      updateOutbox(db, row.id, { nextAttemptAt: outcome.until });
      this.schedule({ id: row.id, nextAttemptAt: outcome.until.toISOString() });
      return;
    }
    const applied: Applied[] = [];
    const answered = new Set<string>(); // destinations whose health was recorded in this settle (once is enough)
    // IMMEDIATE: it reads, then writes; with workers in several processes a deferred one fails with SQLITE_BUSY_SNAPSHOT.
    db.transaction(() => {
      const sameJob = (r: OutboxRow) => () => getOutboxEntry(db, r.id)?.jobSeq === r.jobSeq;
      const own = this.apply(row, outcome, durationMs, sameJob(row), answered); // superseded while we were delivering: undefined
      if (own) applied.push(own);
      for (const c of companions) {
        const done = this.apply(c.row, c.outcome, durationMs, c.owns ?? sameJob(c.row), answered);
        if (done) applied.push(done);
      }
      outcome.settled?.();
    }).immediate();
    const ev = this.options.events;
    for (const a of applied) {
      if (a.reschedule) this.schedule({ id: a.row.id, nextAttemptAt: a.reschedule.toISOString() });
      if (!a.final || !(ev?.delivered || ev?.failed || ev?.dead)) continue;
      const after = getOutboxEntry(db, a.row.id) ?? a.row;
      if (a.final === 'delivered') this.options.events?.delivered?.(after);
      if (a.final === 'failed' && a.outcome.result === 'failed') this.options.events?.failed?.(after, a.outcome.code, a.outcome.detail);
      if (a.final === 'dead' && a.outcome.result === 'retry') this.options.events?.dead?.(after, a.outcome.code, a.outcome.detail);
    }
  }

  /** One row's outcome, inside the settle transaction. */
  private apply(row: OutboxRow, outcome: SingleOutcome, durationMs: number, owns: () => boolean, answered: Set<string>): Applied | undefined {
    const { db } = this.options;
    if (!owns()) return undefined;
    if (outcome.result === 'defer') {
      updateOutbox(db, row.id, { nextAttemptAt: outcome.until });
      return { row, outcome, reschedule: outcome.until };
    }
    const attempts = row.attempts + 1;
    outcome.commit?.();
    recordAttempt(db, row.id, { outcome: outcome.result === 'delivered' ? 'delivered' : `${outcome.result}:${outcome.code}`, detail: outcome.detail ?? null, durationMs });
    const answeredBy = (destination: string) => {
      if (answered.has(destination)) return;
      answered.add(destination);
      recordSuccess(db, destination);
    };
    if (outcome.result === 'delivered') {
      answeredBy(row.destination);
      updateOutbox(db, row.id, { state: 'delivered', attempts, lastError: null });
      return { row, outcome, final: 'delivered' };
    }
    if (outcome.result === 'failed') {
      answeredBy(row.destination); // it answered: the destination is up, the message is refused
      updateOutbox(db, row.id, { state: 'failed', attempts, lastError: `${outcome.code}: ${outcome.detail ?? ''}`.slice(0, 500) });
      return { row, outcome, final: 'failed' };
    }
    if (outcome.transport) recordTransportFailure(db, row.destination, outcome.code, this.destinationPolicy());
    const delay = retryDelay(this.retryPolicy(row), attempts);
    if (delay === null) {
      updateOutbox(db, row.id, { state: 'dead', attempts, lastError: `${outcome.code}: ${outcome.detail ?? ''}`.slice(0, 500) });
      return { row, outcome, final: 'dead' };
    }
    const reschedule = new Date(Date.now() + delay);
    updateOutbox(db, row.id, { attempts, nextAttemptAt: reschedule, lastError: `${outcome.code}: ${outcome.detail ?? ''}`.slice(0, 500) });
    return { row, outcome, reschedule };
  }

  private retryPolicy(row: OutboxRow): RetryPolicy {
    return this.options.retryPolicyFor?.(row) ?? DEFAULT_RETRY_POLICY;
  }

  private destinationPolicy(): DestinationPolicy {
    return this.options.destinationPolicy ?? DEFAULT_DESTINATION_POLICY;
  }

  /** Takes a slot at the destination: undefined when one was free now, else a promise that resolves with one. */
  private acquire(destination: string): Promise<void> | undefined {
    const limit = this.options.perDestinationConcurrency ?? DEFAULT_PER_DESTINATION_CONCURRENCY;
    const active = this.inFlight.get(destination) ?? 0;
    if (active < limit) {
      this.inFlight.set(destination, active + 1);
      return undefined;
    }
    return new Promise<void>((resolve) => {
      const queue = this.waiting.get(destination) ?? [];
      queue.push(resolve);
      this.waiting.set(destination, queue);
    });
  }

  private release(destination: string): void {
    const next = this.waiting.get(destination)?.shift();
    if (next) next(); // hand the slot over
    else this.inFlight.set(destination, (this.inFlight.get(destination) ?? 1) - 1);
  }
}
