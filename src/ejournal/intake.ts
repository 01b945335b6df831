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
 * stores nothing), then handed to the delivery engine.
 *
 * Jobs: an event's delivery job may carry up to `eventsPerJob` ready events (handler.ts, carrier mode), so a
 * batch of n ready events gets ceil(n / eventsPerJob) jobs, not n: every `eventsPerJob`-th row is scheduled, and
 * the rows in between are picked up by those jobs (or, should a job be lost, by the engine's reconciler). Parked
 * events (behind an unresolved earlier event of their RNU) get no job: their predecessor wakes them.
 */
export interface EventIntakeOptions {
  readonly db: Db;
  readonly record: RecordOptions;
  /** engine.schedule, called after the commit. */
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
    const results = db.transaction(() => inputs.map((input, i) => {
      try {
        return recordServiceEvent(db, input, record);
      } catch (error) {
        if (options.batch && isGatewayError(error) && !error.detail?.startsWith('body.events[')) {
          throw new GatewayError(error.code, `body.events[${i}].${error.detail ?? 'invalid'}`);
        }
        throw error;
      }
    })).immediate();
    this.#scheduleCarriers(results.map((r) => r.outbox));
    return results;
  }

  /** The records system attaches an RNU to a document; the stages it already passed are reported (lifecycle.ts). */
  attach(documentId: string, rnu: string, serviceCode?: string): AttachRnuResult {
    const { db, record } = this.#options;
    const result = attachRnu(db, documentId, rnu, { ...record, ...(serviceCode !== undefined ? { serviceCode } : {}) });
    this.#scheduleCarriers(result.events.map((e) => (isSkipped(e) ? null : e.outbox)));
    return result;
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
}
