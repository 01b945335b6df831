import type { OutboxRow } from '../delivery/outbox.ts';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import type { Db } from '../store/database.ts';
import { recordServiceEvent, type RecordOptions, type RecordResult } from './events.ts';
import type { ServiceEventInput } from './event-input.ts';
import { attachRnu, type AttachRnuResult, isSkipped } from './lifecycle.ts';
import type { Vocabulary } from './vocabulary.ts';

/**
 * Where the records system's events come in (the API): one event or a batch, recorded in ONE immediate
 * transaction (all or nothing: a batch with one bad event is refused whole, naming the event by its index, and
 * stores nothing), and handed to the delivery engine in that same transaction.
 *
 * Jobs: an event's delivery job may carry up to `eventsPerJob` ready events (handler.ts, carrier mode), so a
 * batch of n ready events gets ceil(n / eventsPerJob) jobs, not n: every `eventsPerJob`-th row is scheduled, and
 * the rows in between are picked up by those jobs (or, should a job be lost, by the engine's reconciler). Parked
 * events (behind an unresolved earlier event of their RNU) get no job: their predecessor wakes them.
 */
export interface EventIntakeOptions {
  readonly db: Db;
  readonly record: RecordOptions;
  /**
   * engine.schedule on the same connection, called INSIDE the recording transaction: the job-sequence bump commits
   * with the events (the job is enqueued after the commit, BullMQ's add being asynchronous). Bumped after the
   * commit instead, an event another process (`seos-gateway worker`) has meanwhile claimed, as a carrier's
   * companion or for a follow-up job, would get a second job that takes the claim over and sends it again.
   */
  readonly schedule: (row: OutboxRow) => void;
  /** How many events one delivery job may carry (1: a job per event). */
  readonly eventsPerJob?: number;
}

export class EventIntake {
  readonly #options: EventIntakeOptions;

  constructor(options: EventIntakeOptions) {
    this.#options = options;
  }

  /** Records the events in order in one transaction; throws the first event's coded error (detail prefixed `events[i].` in a batch). */
  record(inputs: readonly ServiceEventInput[], options: { batch?: boolean } = {}): RecordResult[] {
    const { db, record } = this.#options;
    return db.transaction(() => {
      const results = inputs.map((input, i) => {
        try {
          return recordServiceEvent(db, input, record);
        } catch (error) {
          if (options.batch && isGatewayError(error) && !error.detail?.startsWith('body.events[')) {
            throw new GatewayError(error.code, `body.events[${i}].${error.detail ?? 'invalid'}`);
          }
          throw error;
        }
      });
      this.#scheduleCarriers(results.map((r) => r.outbox));
      return results;
    }).immediate();
  }

  /** The records system attaches an RNU to a document; the stages it already passed are reported (lifecycle.ts). */
  attach(documentId: string, rnu: string, serviceCode?: string): AttachRnuResult {
    const { db, record } = this.#options;
    return db.transaction(() => {
      const result = attachRnu(db, documentId, rnu, { ...record, ...(serviceCode !== undefined ? { serviceCode } : {}) });
      this.#scheduleCarriers(result.events.map((e) => (isSkipped(e) ? null : e.outbox)));
      return result;
    }).immediate();
  }

  #scheduleCarriers(rows: ReadonlyArray<OutboxRow | null>): void {
    const every = Math.max(1, this.#options.eventsPerJob ?? 1);
    let n = 0;
    for (const row of rows) {
      if (!row) continue;
      if (n++ % every === 0) this.#options.schedule(row);
    }
  }
}

/** What the records-system API's eJournal routes work with (src/api/routes/services.ts). */
export interface EjournalApi {
  readonly intake: EventIntake;
  readonly vocabulary: Vocabulary;
  /** Events in one POST /v1/services/events request, at most. */
  readonly maxEventsPerRequest: number;
  /** Gives a row its delivery job; call it inside the transaction that made the row ready (see EventIntake). */
  readonly schedule: (row: OutboxRow) => void;
}
