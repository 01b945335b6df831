import type { DeliveryLog } from '../audit/index.ts';
import { getOutboxEntry, type OutboxRow } from '../delivery/outbox.ts';
import { GatewayError } from '../errors/index.ts';
import type { Db } from '../store/database.ts';
import { EVENT_COLUMNS, getServiceEvent, toServiceEvent, type ServiceEvent } from './events.ts';
import { wakeNext } from './ordering.ts';
import { statement } from '../store/database.ts';

/**
 * What an operator does with an event that needs a person: resend a dead or rejected one (after eJournal or the
 * configuration was fixed), or skip a dead one so that the later events of its RNU may go. Every action is in the
 * delivery log with the operator's account id. Each returns the outbox row to schedule (in the caller's transaction).
 */
export interface AttentionEvent {
  readonly event: ServiceEvent;
  /** rejected: eJournal refused it; dead: retries spent, it blocks the later events of its RNU. */
  readonly problem: 'rejected' | 'dead';
  readonly attempts: number;
  readonly lastError: string | null;
}

/** Rejected and dead events, oldest first. */
export function eventsNeedingAttention(db: Db, options: { limit?: number } = {}): AttentionEvent[] {
  // From the outbox's state index: refused rows are 'failed', spent ones 'dead' (a skipped event keeps its dead row).
  const rows = statement(db, `SELECT ${EVENT_COLUMNS}, o.state AS outboxState, o.attempts AS attempts, o.last_error AS lastError
    FROM outbox o JOIN ejournal_events e ON e.id = json_extract(o.payload_json, '$.eventId') AND e.outbox_id = o.id
    WHERE o.state IN ('failed', 'dead') AND o.kind = 'ejournal-event' AND (e.state = 'rejected' OR (e.state = 'pending' AND o.state = 'dead'))
    ORDER BY e.recorded_at LIMIT ?`)
    .all(options.limit ?? 1000) as Array<Record<string, unknown> & { outboxState: string; attempts: number; lastError: string | null }>;
  return rows.map((r) => ({
    event: toServiceEvent(r), problem: r.outboxState === 'dead' ? 'dead' : 'rejected', attempts: r.attempts, lastError: r.lastError,
  }));
}

function load(db: Db, eventId: number): { event: ServiceEvent; outbox: OutboxRow } {
  const event = getServiceEvent(db, eventId);
  if (!event) throw new GatewayError('GW_ERR_EJOURNAL_NOT_FOUND', `no eJournal event ${eventId}`);
  return { event, outbox: getOutboxEntry(db, event.outboxId)! };
}

/** Sends a dead or rejected event again, with a fresh retry budget. A resent event that is now late is flagged. */
export function resendServiceEvent(db: Db, eventId: number, options: { log: DeliveryLog; actor: string; now?: Date }): OutboxRow {
  const run = (): OutboxRow => {
    const { event, outbox } = load(db, eventId);
    const dead = event.state === 'pending' && outbox.state === 'dead';
    if (!dead && event.state !== 'rejected') {
      throw new GatewayError('GW_ERR_EJOURNAL_EVENT_STATE', `event ${eventId} is ${outbox.state === 'pending' ? event.state : outbox.state}; only dead or rejected events are resent`);
    }
    const at = (options.now ?? new Date()).toISOString();
    const late = statement(db, 'SELECT 1 FROM ejournal_events WHERE rnu = ? AND occurred_at > ? AND first_sent_at IS NOT NULL LIMIT 1')
      .get(event.rnu, event.occurredAt) !== undefined;
    statement(db, `UPDATE ejournal_events SET state = 'pending', waiting = 0, defers = 0, remote_outcome = NULL,
      out_of_order = MAX(out_of_order, ?), updated_at = ? WHERE id = ?`).run(late ? 1 : 0, at, eventId);
    statement(db, `UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, last_error = NULL, updated_at = ? WHERE id = ?`)
      .run(at, at, outbox.id);
    options.log.append({
      type: 'operator-action', direction: 'out', counterparty: { name: 'eJournal' }, status: event.status, outcome: 'resend',
      actor: options.actor, ...(event.documentId ? { documentId: event.documentId } : {}), detail: `event ${event.eventUid}`,
    });
    return getOutboxEntry(db, outbox.id)!;
  };
  return db.inTransaction ? run() : db.transaction(run).immediate();
}

/** Gives up a dead event: it is never sent, and the next event of its RNU may go (returned for scheduling). */
export function skipServiceEvent(db: Db, eventId: number, options: { log: DeliveryLog; actor: string; now?: Date }): OutboxRow | undefined {
  const run = (): OutboxRow | undefined => {
    const { event, outbox } = load(db, eventId);
    if (!(event.state === 'pending' && outbox.state === 'dead')) {
      throw new GatewayError('GW_ERR_EJOURNAL_EVENT_STATE', `event ${eventId} is not dead; only a dead event can be skipped`);
    }
    const now = options.now ?? new Date();
    statement(db, `UPDATE ejournal_events SET state = 'skipped', waiting = 0, updated_at = ? WHERE id = ?`).run(now.toISOString(), eventId);
    options.log.append({
      type: 'operator-action', direction: 'out', counterparty: { name: 'eJournal' }, status: event.status, outcome: 'skip',
      actor: options.actor, ...(event.documentId ? { documentId: event.documentId } : {}), detail: `event ${event.eventUid}`,
    });
    const next = wakeNext(db, event.rnu, now);
    return next ? getOutboxEntry(db, next.id) : undefined;
  };
  return db.inTransaction ? run() : db.transaction(run).immediate();
}
