import type { OutboxRow } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import { statement } from '../store/database.ts';
import { EJOURNAL_OUTBOX_KIND, type ServiceEvent } from './events.ts';
import { claimInTransaction, type OrderingOptions } from './ordering.ts';

/**
 * Carrier mode: one delivery job carries several READY events (handler.ts), so the cost of a BullMQ job and of
 * the engine's commits is shared by many events. Every event keeps its own outbox row, retry budget, attempts,
 * dead-letter state and timeline; only the job is shared.
 *
 * A READY event is one that could be claimed now: pending, not parked, its outbox row pending and due, and the
 * first unresolved event of its RNU (the head). A job takes at most one event per RNU (the head), so the order
 * within an RNU is kept exactly as with one job per event: the next event of an RNU becomes ready only when its
 * predecessor resolves (and is woken by it).
 *
 * Taking a companion, in the carrier's claim transaction: its row's job sequence is bumped (a job it had is now
 * superseded and does nothing), its next attempt is moved to the claim's expiry (a job the reconciler might give it
 * meanwhile waits until the claim has lapsed), and it is claimed like any event (ordering.ts). The carrier's settle
 * applies each companion's outcome only while the companion's claim is still the carrier's (`ownsClaim`).
 */
const READY = `SELECT o.id, o.kind, o.document_id AS documentId, o.destination, o.payload_sha256 AS payloadSha256,
    o.payload_json AS payloadJson, o.state, o.attempts, o.job_seq AS jobSeq, o.next_attempt_at AS nextAttemptAt,
    o.last_error AS lastError, o.created_at AS createdAt, o.updated_at AS updatedAt
  FROM outbox o JOIN ejournal_events e ON e.id = json_extract(o.payload_json, '$.eventId') AND e.outbox_id = o.id
  WHERE o.state = 'pending' AND o.next_attempt_at <= ? AND o.kind = '${EJOURNAL_OUTBOX_KIND}' AND o.id <> ?
    AND e.state = 'pending' AND e.waiting = 0
    AND NOT EXISTS (SELECT 1 FROM ejournal_events p WHERE p.rnu = e.rnu AND p.state IN ('pending', 'sending')
      AND (p.occurred_at < e.occurred_at OR (p.occurred_at = e.occurred_at AND p.rnu_seq < e.rnu_seq)))
  ORDER BY o.next_attempt_at LIMIT ?`;

/** Ready rows, oldest due first (at most one per RNU by construction). */
export function readyRows(db: Db, limit: number, now = new Date(), exceptOutboxId = ''): OutboxRow[] {
  if (limit <= 0) return [];
  return statement(db, READY).all(now.toISOString(), exceptOutboxId, limit) as OutboxRow[];
}

export interface CompanionClaim {
  /** The row as the carrier owns it (its bumped job sequence). */
  readonly row: OutboxRow;
  readonly event: ServiceEvent;
}

/** Claims up to `limit` ready events other than the carrier's own. Call inside the carrier's IMMEDIATE claim transaction. */
export function claimCompanions(db: Db, carrierOutboxId: string, limit: number, options: OrderingOptions, now = new Date()): CompanionClaim[] {
  const out: CompanionClaim[] = [];
  const at = now.toISOString();
  const holdUntil = new Date(now.getTime() + options.claimMs).toISOString();
  for (const candidate of readyRows(db, limit, now, carrierOutboxId)) {
    const bumped = statement(db, `UPDATE outbox SET job_seq = job_seq + 1, next_attempt_at = ?, updated_at = ? WHERE id = ? AND state = 'pending'
      RETURNING job_seq AS s`).get(holdUntil, at, candidate.id) as { s: number } | undefined;
    if (!bumped) continue;
    const row: OutboxRow = { ...candidate, jobSeq: bumped.s, nextAttemptAt: holdUntil, updatedAt: at };
    const claim = claimInTransaction(db, row, options, now);
    if (claim.kind !== 'claimed') {
      // Not ready after all (cannot happen inside one transaction, but never strand a row): due again, no claim.
      statement(db, 'UPDATE outbox SET next_attempt_at = ? WHERE id = ?').run(at, row.id);
      continue;
    }
    out.push({ row, event: claim.event });
  }
  return out;
}

/** Inside the settle transaction: is the event still claimed by this carrier for this row? */
export function ownsClaim(db: Db, eventId: number, outboxId: string, claimSeq: number): boolean {
  const row = statement(db, `SELECT 1 FROM ejournal_events e JOIN outbox o ON o.id = e.outbox_id
    WHERE e.id = ? AND e.outbox_id = ? AND e.state = 'sending' AND e.claim_seq = ? AND o.state = 'pending'`).get(eventId, outboxId, claimSeq);
  return row !== undefined;
}
