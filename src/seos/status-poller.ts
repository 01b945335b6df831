import type { OutboxRow } from '../delivery/outbox.ts';
import { addOutboxEntry } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import { statement } from '../store/database.ts';

/**
 * Documents we sent over SEOS that still wait for registration are asked about on a schedule: the protocol does
 * not retry its status pushes, so a lost push would otherwise leave them waiting for ever.
 *
 * One sweep, not one delayed job per document: a municipality may have thousands of documents waiting for days,
 * and each would otherwise sit in Redis as a delayed job (and cost a queue round trip when it was sent). A
 * document is due when it has had no news (no status change) for `intervalMs` and no status request for it is
 * pending or was queued within the interval.
 */
export interface StatusPollerOptions {
  readonly db: Db;
  readonly intervalMs: number;
  /** Hands a committed outbox row to the delivery engine. */
  readonly schedule: (entry: OutboxRow) => void;
  readonly log?: { warn(o: object, m?: string): void };
  /** Documents queued per sweep at most (the rest wait for the next sweep). */
  readonly batch?: number;
}

const DUE_SQL = `
  SELECT d.id, d.counterparty_guid AS destination FROM documents d
  WHERE d.direction = 'out' AND d.channel = 'seos' AND d.status = 'DS_WAIT_REGISTRATION' AND d.updated_at < @cutoff
    AND NOT EXISTS (
      SELECT 1 FROM outbox o
      WHERE o.document_id = d.id AND o.kind = 'seos-status-request' AND (o.state = 'pending' OR o.created_at >= @cutoff)
    )
  ORDER BY d.updated_at LIMIT @limit`;

/** Queues a status request for every document due now; returns the rows (already committed). */
export function queueDueStatusPolls(db: Db, intervalMs: number, limit = 500, now = new Date()): OutboxRow[] {
  const cutoff = new Date(now.getTime() - intervalMs).toISOString();
  return db.transaction(() => {
    const due = statement(db, DUE_SQL).all({ cutoff, limit }) as Array<{ id: string; destination: string }>;
    return due.map((d) => addOutboxEntry(db, { kind: 'seos-status-request', destination: d.destination, documentId: d.id }));
  }).immediate();
}

export class StatusPoller {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(private readonly options: StatusPollerOptions) {}

  /** Sweeps every `min(interval / 4, 1 min)`, so a document is asked about at most a quarter interval late. */
  start(): void {
    const every = Math.max(1000, Math.min(this.options.intervalMs / 4, 60_000));
    const tick = () => {
      this.#timer = setTimeout(() => {
        try {
          this.sweep();
        } catch (error) {
          this.options.log?.warn({ err: (error as Error).message }, 'status poll sweep failed; will retry');
        }
        if (!this.#stopped) tick();
      }, every);
      this.#timer.unref();
    };
    tick();
  }

  sweep(): number {
    const rows = queueDueStatusPolls(this.options.db, this.options.intervalMs, this.options.batch ?? 500);
    for (const row of rows) this.options.schedule(row);
    return rows.length;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }
}
