import type { DeliveryLog } from '../audit/index.ts';
import type { GatewayConfig } from '../config/index.ts';
import type { DeliveryHandler } from '../delivery/engine.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import {
  EJOURNAL_OUTBOX_KIND, createEjournalHandler, createEjournalLifecycleListener, ejournalClientFromConfig, logEjournalDead, vocabularyFromConfig,
  type RecordOptions,
} from '../ejournal/index.ts';
import { EventIntake, type EjournalApi } from '../ejournal/intake.ts';
import type { Db } from '../store/database.ts';
import type { LifecycleListener } from './lifecycle.ts';

/**
 * eJournal in the composition root, when `ejournal.enabled`: the client of the configured contract, the
 * automatic events (a Lifecycle listener), the delivery handler for outbox kind `ejournal-event` (carrier mode:
 * `ejournal.delivery.eventsPerJob` ready events per job), its dead-letter entry, and what the API routes need.
 */
export interface EjournalWiringDeps {
  readonly db: Db;
  readonly log: DeliveryLog;
  /** engine.schedule itself: the handler calls it inside the engine's settle transaction (handler.ts), the intake inside its recording transaction (intake.ts). */
  readonly schedule: (entry: Pick<OutboxRow, 'id' | 'nextAttemptAt'>) => void;
}

export interface EjournalWiring {
  readonly listener: LifecycleListener;
  readonly handlers: Readonly<Record<string, DeliveryHandler>>;
  readonly api: EjournalApi;
  /** For the engine's `dead` event: true when the entry is an eJournal event (its dead-letter entry is then written). */
  markDead(entry: OutboxRow, code: string): boolean;
  close(): void;
}

export function createEjournalWiring(config: GatewayConfig, deps: EjournalWiringDeps): EjournalWiring {
  const e = config.ejournal;
  const vocabulary = vocabularyFromConfig(e);
  const record: RecordOptions = {
    log: deps.log, vocabulary, administration: e.administration ?? config.self?.eik, defaultServiceCode: e.defaultServiceCode,
    lateEvents: e.lateEvents, demoMode: e.demo, maxFutureSkewMs: e.maxFutureSkewMs, parkMs: e.ordering.parkMs,
  };
  const client = ejournalClientFromConfig(e);
  const eventsPerJob = e.delivery.eventsPerJob;
  const handler = createEjournalHandler({
    db: deps.db, client, log: deps.log, schedule: deps.schedule,
    ordering: { parkMs: e.ordering.parkMs, shortDeferMs: e.ordering.shortDeferMs },
    requestTimeoutMs: e.endpoint.timeoutMs, claimMarginMs: e.ordering.claimMarginMs, demoMode: e.demo,
    eventsPerJob, followUpJobs: e.delivery.followUpJobs,
  });
  const intake = new EventIntake({ db: deps.db, record, schedule: (row) => deps.schedule(row), eventsPerJob });
  return {
    listener: createEjournalLifecycleListener({ db: deps.db, ...record }),
    handlers: { [EJOURNAL_OUTBOX_KIND]: handler },
    api: { intake, vocabulary, maxEventsPerRequest: e.maxEventsPerRequest, schedule: (row) => deps.schedule(row) },
    markDead(entry, code) {
      if (entry.kind !== EJOURNAL_OUTBOX_KIND) return false;
      // The event stays pending and holds back its RNU until an operator resends or skips it (operator.ts).
      logEjournalDead(deps.log, entry, code);
      return true;
    },
    close() {
      client.close();
    },
  };
}
