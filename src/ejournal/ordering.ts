import type { OutboxRow } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import { EVENT_COLUMNS, eventIdOf, toServiceEvent, type ServiceEvent } from './events.ts';
import { statement } from '../store/database.ts';

/**
 * The ordering rule: events of one RNU reach eJournal strictly in the order they happened, (occurred_at,
 * rnu_seq), with any number of workers in any number of processes and across restarts; different RNUs do not
 * wait for each other.
 *
 *   An event may be sent only when every earlier event of its RNU is RESOLVED: delivered (eJournal has it),
 *   rejected (eJournal refused it for good: it is shown to the operator and does not hold its RNU hostage), or
 *   skipped (an operator gave up a dead event). A pending event (new, retrying, or dead: the engine gave up but
 *   nobody decided) and an event being sent block everything after it.
 *
 * SQLite is the arbiter. A worker CLAIMS an event in one IMMEDIATE transaction (SQLite's write lock makes it
 * atomic across processes): it checks that its job is the row's current one, that nobody else holds a live
 * claim, and that no earlier event is unresolved; only then does it mark the event `sending` and record the
 * first send time, and only then does it call eJournal. A worker that finds an earlier event unresolved marks
 * itself `waiting` and returns `defer` (no attempt spent).
 *
 * Waking instead of polling: when an event resolves, the engine's settle transaction (through the outcome's
 * commit) finds the first unresolved event of the RNU; if it is waiting, it is made due and scheduled there and
 * then, so a chain of events of one RNU costs one job per event, not one per event per predecessor. In the same
 * transaction the woken event is claimed for its new job (pre-claim): nothing can come before it any more (its
 * predecessor just resolved, and a late event recorded from now on sees it claimed), so its job sends without
 * a claim commit of its own. Claims that do need a commit (the first event of an RNU) are grouped: those
 * started in one turn of the event loop share one IMMEDIATE transaction (ClaimBatcher). An event
 * recorded behind an unresolved one is parked (not scheduled; `waiting`), and the reconciler gives it a
 * safety-net job at `parkMs`. A wake-up can race with the waiting job's own defer (both reschedule the row); the
 * deferring side then waits `shortDeferMs`, doubling, never the full park time: a predecessor that is in flight
 * or due gets the short wait, one that is backing off, dead or itself waiting gets `parkMs` and relies on the wake.
 *
 * Only the outbox row's current job may act (the engine's job sequence): a claim made for an older job of the row
 * is taken over at once by the current one, and the claim's expiry (request timeout plus a margin) matters only
 * to the job that made it, which sends under it only while a whole request still fits. A worker that dies
 * mid-request leaves the event `sending`; the job that comes back (BullMQ's stall detection, or the reconciler)
 * sends it again; eJournal deduplicates by (RNU, status, time) and the repeat counts as delivered.
 *
 * LATE EVENTS (decided here): an event recorded after a later event of its RNU was already claimed is stored,
 * flagged `out_of_order`, and delivered as soon as its own predecessors allow: losing a true status change is
 * worse than reporting it late, and eJournal gets its true time. With `ejournal.lateEvents: "reject"` it is
 * refused instead (GW_ERR_EJOURNAL_OUT_OF_ORDER). The check runs in the recording transaction against
 * `first_sent_at`, which the claim writes before the request, so it is exact, not best effort.
 */
export interface OrderingOptions {
  readonly parkMs: number;
  readonly shortDeferMs: number;
  /** How long a claim holds: request timeout + margin. */
  readonly claimMs: number;
  /** A job sends under an existing claim only if this much of it is left (the request timeout). */
  readonly minClaimLeftMs: number;
}

export const DEFAULT_ORDERING: OrderingOptions = { parkMs: 5 * 60_000, shortDeferMs: 50, claimMs: 60_000, minClaimLeftMs: 30_000 };

export type ClaimResult =
  | { readonly kind: 'claimed'; readonly event: ServiceEvent }
  /** No event for this outbox row. */
  | { readonly kind: 'missing' }
  /** A newer job owns the row; this one must do nothing. */
  | { readonly kind: 'superseded' }
  /** Already delivered, rejected or skipped. */
  | { readonly kind: 'done'; readonly event: ServiceEvent }
  /** An earlier event of the RNU is not resolved. */
  | { readonly kind: 'blocked'; readonly until: Date; readonly blockerId: number };

interface Blocker {
  id: number;
  state: 'pending' | 'sending';
  waiting: number;
  outboxState: string;
  nextAttemptAt: string;
}

const SELECT_FOR_CLAIM = `SELECT ${EVENT_COLUMNS}, o.job_seq AS jobSeq FROM ejournal_events e JOIN outbox o ON o.id = e.outbox_id WHERE e.id = ? AND e.outbox_id = ?`;
const FIRST_UNRESOLVED_BEFORE = `SELECT e.id, e.state, e.waiting, o.state AS outboxState, o.next_attempt_at AS nextAttemptAt
  FROM ejournal_events e JOIN outbox o ON o.id = e.outbox_id
  WHERE e.rnu = ? AND e.state IN ('pending', 'sending') AND (e.occurred_at < ? OR (e.occurred_at = ? AND e.rnu_seq < ?))
  ORDER BY e.occurred_at, e.rnu_seq LIMIT 1`;

/** The claim (see above). Runs its own IMMEDIATE transaction; call it outside any transaction. */
export function claimEvent(db: Db, entry: Pick<OutboxRow, 'id' | 'jobSeq' | 'payloadJson'>, options: OrderingOptions, now = new Date()): ClaimResult {
  return db.transaction(() => claimInTransaction(db, entry, options, now)).immediate();
}

/** The claim, for a caller that holds an IMMEDIATE transaction (the ClaimBatcher runs many in one). */
export function claimInTransaction(db: Db, entry: Pick<OutboxRow, 'id' | 'jobSeq' | 'payloadJson'>, options: OrderingOptions, now = new Date()): ClaimResult {
  const eventId = eventIdOf(entry);
  const row = eventId === undefined ? undefined
    : statement(db, SELECT_FOR_CLAIM).get(eventId, entry.id) as (Record<string, unknown> & { jobSeq: number }) | undefined;
  if (!row) return { kind: 'missing' };
  if (row.jobSeq !== entry.jobSeq) return { kind: 'superseded' };
  const event = toServiceEvent(row);
  if (event.state === 'delivered' || event.state === 'rejected' || event.state === 'skipped') return { kind: 'done', event };
  const at = now.toISOString();
  // Claimed for this very job (by the wake-up that scheduled it, or by this job before a stall): it may send under
  // that claim if a whole request fits in what is left, else the claim is renewed below. A claim held for any other
  // job of this row belongs to a superseded job (this one passed the job-sequence check): the engine discards that
  // job's outcome whatever it does, so waiting for its claim to expire could only add delay, never save a repeat;
  // this job takes the claim over. (If the superseded job is in the middle of sending, eJournal gets the event
  // twice and deduplicates it; nothing later of the RNU can go before this job settles.)
  if (event.state === 'sending' && event.claimSeq === entry.jobSeq && event.claimExpiresAt !== null
    && Date.parse(event.claimExpiresAt) - now.getTime() >= options.minClaimLeftMs) {
    return { kind: 'claimed', event };
  }
  const blocker = statement(db, FIRST_UNRESOLVED_BEFORE).get(event.rnu, event.occurredAt, event.occurredAt, event.sequence) as Blocker | undefined;
  if (blocker) {
    const moving = blocker.state === 'sending'
      || (blocker.outboxState === 'pending' && blocker.waiting === 0 && blocker.nextAttemptAt <= new Date(now.getTime() + options.shortDeferMs).toISOString());
    const delay = moving ? Math.min(options.shortDeferMs * 2 ** Math.min(event.defers, 20), options.parkMs) : options.parkMs;
    statement(db, `UPDATE ejournal_events SET state = 'pending', waiting = 1, defers = defers + 1, claim_seq = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?`)
      .run(at, event.id);
    return { kind: 'blocked', until: new Date(now.getTime() + delay), blockerId: blocker.id };
  }
  statement(db, `UPDATE ejournal_events SET state = 'sending', claim_seq = ?, claim_expires_at = ?, waiting = 0, defers = 0,
    first_sent_at = COALESCE(first_sent_at, ?), updated_at = ? WHERE id = ?`)
    .run(entry.jobSeq, new Date(now.getTime() + options.claimMs).toISOString(), at, at, event.id);
  return { kind: 'claimed', event: { ...event, state: 'sending', claimSeq: entry.jobSeq, waiting: false, firstSentAt: event.firstSentAt ?? at } };
}

/**
 * Group commit for claims: the claims that workers of this process start in the same turn of the event loop run
 * in one IMMEDIATE transaction, one fsync for all. Each claim is still checked against everything committed and
 * everything claimed before it in the batch, so the rule is unchanged; a batch that fails (a database error)
 * fails each of its claims.
 */
export class ClaimBatcher {
  readonly #db: Db;
  readonly #options: OrderingOptions;
  #pending: Array<{
    entry: Pick<OutboxRow, 'id' | 'jobSeq' | 'payloadJson'>; more?: (own: ClaimResult) => unknown;
    resolve: (r: { own: ClaimResult; more: unknown }) => void; reject: (e: unknown) => void;
  }> = [];
  #scheduled = false;

  constructor(db: Db, options: OrderingOptions) {
    this.#db = db;
    this.#options = options;
  }

  async claim(entry: Pick<OutboxRow, 'id' | 'jobSeq' | 'payloadJson'>): Promise<ClaimResult> {
    return (await this.claimWith(entry)).own;
  }

  /** The claim, and then `more` (e.g. claiming companion events) in the same transaction. */
  claimWith<T>(entry: Pick<OutboxRow, 'id' | 'jobSeq' | 'payloadJson'>, more?: (own: ClaimResult) => T): Promise<{ own: ClaimResult; more: T }> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ entry, more, resolve: resolve as (r: { own: ClaimResult; more: unknown }) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    let results: Array<{ own: ClaimResult; more: unknown }>;
    try {
      const now = new Date();
      results = this.#db.transaction(() => batch.map((b) => {
        const own = claimInTransaction(this.#db, b.entry, this.#options, now);
        return { own, more: b.more?.(own) };
      })).immediate();
    } catch (error) {
      for (const b of batch) b.reject(error);
      return;
    }
    batch.forEach((b, i) => b.resolve(results[i]));
  }
}

/**
 * Claims a woken event for the job that was just scheduled for it, inside the settle transaction that woke it: its
 * job then starts sending without a claim commit of its own (the common case of a chain of events of one RNU).
 * The claim lasts `claimMs` from now; if the job is not running within `claimMs - requestTimeout`, it would not
 * finish inside the claim, so the job claims again the ordinary way (see claimInTransaction).
 */
export function preclaim(db: Db, eventId: number, jobSeq: number, options: OrderingOptions, now = new Date()): void {
  const at = now.toISOString();
  statement(db, `UPDATE ejournal_events SET state = 'sending', claim_seq = ?, claim_expires_at = ?, waiting = 0, defers = 0,
    first_sent_at = COALESCE(first_sent_at, ?), updated_at = ? WHERE id = ? AND state = 'pending'`)
    .run(jobSeq, new Date(now.getTime() + options.claimMs).toISOString(), at, at, eventId);
}

export function jobSeqOf(db: Db, outboxId: string): number | undefined {
  return (statement(db, 'SELECT job_seq AS s FROM outbox WHERE id = ?').get(outboxId) as { s: number } | undefined)?.s;
}

export type Resolution =
  | { readonly kind: 'delivered'; readonly remoteOutcome: 'accepted' | 'duplicate'; readonly remoteId?: string }
  | { readonly kind: 'rejected' }
  /** A transient failure: back to pending, still blocking its successors. */
  | { readonly kind: 'released' };

/** The row to hand to engine.schedule (the next event of the RNU, made due now), and that event. */
export interface WakeTarget {
  readonly id: string;
  readonly nextAttemptAt: string;
  readonly eventId: number;
}

/**
 * Applies the result of a send to the claimed event. Call it inside the engine's settle transaction (the
 * outcome's commit), so it commits together with the outbox row's new state. Returns the event to wake, if any.
 */
export function resolveClaim(db: Db, event: Pick<ServiceEvent, 'id' | 'rnu'>, claimSeq: number, resolution: Resolution, now = new Date()): WakeTarget | undefined {
  const at = now.toISOString();
  let changed: number;
  if (resolution.kind === 'released') {
    statement(db, `UPDATE ejournal_events SET state = 'pending', claim_seq = NULL, claim_expires_at = NULL, updated_at = ?
      WHERE id = ? AND state = 'sending' AND claim_seq = ?`).run(at, event.id, claimSeq);
    return undefined;
  }
  if (resolution.kind === 'delivered') {
    changed = statement(db, `UPDATE ejournal_events SET state = 'delivered', delivered_at = ?, remote_outcome = ?, remote_id = ?, claim_seq = NULL,
      claim_expires_at = NULL, updated_at = ? WHERE id = ? AND state = 'sending' AND claim_seq = ?`)
      .run(at, resolution.remoteOutcome, resolution.remoteId ?? null, at, event.id, claimSeq).changes;
  } else {
    changed = statement(db, `UPDATE ejournal_events SET state = 'rejected', remote_outcome = 'rejected', claim_seq = NULL, claim_expires_at = NULL,
      updated_at = ? WHERE id = ? AND state = 'sending' AND claim_seq = ?`).run(at, event.id, claimSeq).changes;
  }
  return changed > 0 ? wakeNext(db, event.rnu, now) : undefined;
}

/**
 * If the first unresolved event of the RNU is waiting, clears its flag and makes its outbox row due now (so that
 * even a lost job is picked up at once by the reconciler) and returns it for scheduling. Call inside a write
 * transaction.
 */
export function wakeNext(db: Db, rnu: string, now = new Date()): WakeTarget | undefined {
  const head = statement(db, `SELECT e.id, e.state, e.waiting, e.outbox_id AS outboxId, o.state AS outboxState FROM ejournal_events e
    JOIN outbox o ON o.id = e.outbox_id WHERE e.rnu = ? AND e.state IN ('pending', 'sending') ORDER BY e.occurred_at, e.rnu_seq LIMIT 1`)
    .get(rnu) as { id: number; state: string; waiting: number; outboxId: string; outboxState: string } | undefined;
  if (!head || head.state !== 'pending' || head.waiting !== 1 || head.outboxState !== 'pending') return undefined;
  const at = now.toISOString();
  statement(db, 'UPDATE ejournal_events SET waiting = 0, updated_at = ? WHERE id = ?').run(at, head.id);
  statement(db, 'UPDATE outbox SET next_attempt_at = ?, updated_at = ? WHERE id = ?').run(at, at, head.outboxId);
  return { id: head.outboxId, nextAttemptAt: at, eventId: head.id };
}
