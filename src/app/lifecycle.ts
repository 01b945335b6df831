import type { OutboxRow } from '../delivery/outbox.ts';
import type { DocumentRow } from '../store/documents.ts';

/**
 * What happens to documents, announced to whoever must act on it (webhooks to the records system, eJournal
 * events). Listeners are called INSIDE the transaction that makes the change, so the outbox rows they add
 * commit with it or not at all; the rows they return are given their jobs in that same transaction.
 */
export interface LifecycleListener {
  documentReceived?(document: DocumentRow): OutboxRow[] | void;
  /** A document's status changed (either direction); `previous` is the status before; `source` who changed it. */
  statusChanged?(document: DocumentRow, previous: string, source: string): OutboxRow[] | void;
  /** A delivery the gateway owed failed for good (refused, or retries exhausted). */
  deliveryFailed?(entry: OutboxRow, code: string, detail: string | undefined): OutboxRow[] | void;
}

export class Lifecycle {
  constructor(
    private readonly listeners: readonly LifecycleListener[],
    private readonly schedule: (entry: OutboxRow) => void,
  ) {}

  documentReceived(document: DocumentRow): void {
    for (const l of this.listeners) this.later(l.documentReceived?.(document));
  }

  statusChanged(document: DocumentRow, previous: string, source: string): void {
    if (document.status === previous) return;
    for (const l of this.listeners) this.later(l.statusChanged?.(document, previous, source));
  }

  deliveryFailed(entry: OutboxRow, code: string, detail?: string): void {
    for (const l of this.listeners) this.later(l.deliveryFailed?.(entry, code, detail));
  }

  private later(rows: OutboxRow[] | void): void {
    if (!Array.isArray(rows)) return;
    // Inside the caller's transaction: the row's job sequence is raised in the same commit as the row. Scheduled
    // after the commit, a worker in another process could take the new row up first (its own reconciler or
    // follow-up job) and this job, carrying a newer sequence, would then send it a second time. The job itself
    // reaches Redis only after the transaction: nothing is sent before the synchronous commit has run.
    for (const row of rows) this.schedule(row);
  }
}

/** For components used without listeners (tests, CLI). */
export const NO_LIFECYCLE = new Lifecycle([], () => undefined);
