import type { DeliveryLog } from '../audit/index.ts';
import { getOutboxEntry, updateOutbox, type OutboxRow } from '../delivery/outbox.ts';
import { GatewayError } from '../errors/index.ts';
import { statement, type Db } from '../store/database.ts';
import { getDocument, updateDocument, type DocumentRow } from '../store/documents.ts';

/**
 * Failed and stuck deliveries for operators (Domibus's failed-message monitoring is the model), and resending
 * them. A resend puts the same outbox row back to work: its archived signed bytes, so the same MessageGUID, go
 * out again (architecture principle 2; the receiver deduplicates), with a fresh retry budget. The attempts so far
 * stay in the history.
 *
 * "Stuck" means pending and, for longer than the threshold, either overdue (its time came and nobody settled it)
 * or still failing (attempted, not delivered); or pending towards a destination that is down. A status poll
 * waiting for its hour is not stuck.
 */
export type ProblemState = 'failed' | 'dead' | 'stuck';

export interface DeliveryFilter {
  readonly states: readonly ProblemState[];
  readonly stuckAfterSeconds: number;
  readonly destination?: string;
  readonly kind?: string;
  readonly createdFrom?: string;
  readonly createdTo?: string;
  readonly limit: number;
  /** Keyset: rows after this (createdAt, id). */
  readonly after?: readonly [string, string];
}

export function findProblemDeliveries(db: Db, filter: DeliveryFilter, now = new Date()): OutboxRow[] {
  const threshold = new Date(now.getTime() - filter.stuckAfterSeconds * 1000).toISOString();
  const states: string[] = [];
  const params: unknown[] = [];
  if (filter.states.includes('failed')) states.push("state = 'failed'");
  if (filter.states.includes('dead')) states.push("state = 'dead'");
  if (filter.states.includes('stuck')) {
    states.push(`(state = 'pending' AND (next_attempt_at <= ? OR (attempts > 0 AND created_at <= ?)
      OR destination IN (SELECT id FROM destinations WHERE state = 'down')))`);
    params.push(threshold, threshold);
  }
  if (states.length === 0) return [];
  const where = [`(${states.join(' OR ')})`];
  if (filter.destination) { where.push('destination = ?'); params.push(filter.destination); }
  if (filter.kind) { where.push('kind = ?'); params.push(filter.kind); }
  if (filter.createdFrom) { where.push('created_at >= ?'); params.push(new Date(filter.createdFrom).toISOString()); }
  if (filter.createdTo) { where.push('created_at < ?'); params.push(new Date(filter.createdTo).toISOString()); }
  if (filter.after) { where.push('(created_at, id) > (?, ?)'); params.push(filter.after[0], filter.after[1]); }
  const ids = db.prepare(`SELECT id FROM outbox WHERE ${where.join(' AND ')} ORDER BY created_at, id LIMIT ?`).all(...params, filter.limit) as Array<{ id: string }>;
  return ids.map((r) => getOutboxEntry(db, r.id)!);
}

export interface ResendContext {
  readonly db: Db;
  readonly log: DeliveryLog;
  readonly actor: string;
  readonly lifecycle?: { statusChanged(document: DocumentRow, previous: string, source: string): void };
}

/**
 * Puts the rows back to pending with a new budget, each with an `operator-action` entry in the delivery log, all
 * in one transaction. Returns the rows to schedule once it has committed. A delivered row is a conflict when it
 * was asked for by id (`strict`), and skipped in a batch.
 */
export function resendDeliveries(ctx: ResendContext, ids: readonly string[], options: { strict: boolean }): OutboxRow[] {
  const { db, log, actor } = ctx;
  return db.transaction(() => {
    const resent: OutboxRow[] = [];
    for (const id of ids) {
      const row = getOutboxEntry(db, id);
      if (!row) throw new GatewayError('GW_ERR_API_DELIVERY_NOT_FOUND');
      if (row.state === 'delivered') {
        if (options.strict) throw new GatewayError('GW_ERR_API_CONFLICT', 'this delivery was delivered; there is nothing to resend');
        continue;
      }
      updateOutbox(db, row.id, { state: 'pending', attempts: 0, nextAttemptAt: new Date() });
      const doc = row.documentId ? getDocument(db, row.documentId) : undefined;
      if (doc && row.kind === 'seos-document' && doc.status === 'SENT_FAILED') {
        updateDocument(db, doc.id, { status: 'PENDING' }, { source: 'operator', detail: 'resend' });
        ctx.lifecycle?.statusChanged(getDocument(db, doc.id)!, doc.status, actor);
      }
      const participant = statement(db, 'SELECT guid, eik, name FROM participants WHERE guid = ?').get(row.destination) as
        { guid: string; eik: string; name: string } | undefined;
      const message = row.payloadSha256
        ? statement(db, "SELECT message_guid AS guid, message_type AS type FROM messages WHERE direction = 'out' AND wire_sha256 = ?").get(row.payloadSha256) as
          { guid: string; type: string } | undefined
        : undefined;
      log.append({
        type: 'operator-action', direction: 'out', outcome: 'resend', actor,
        ...(participant ? { counterparty: participant } : {}),
        ...(doc ? { documentId: doc.id, documentGuid: doc.documentGuid } : {}),
        ...(message ? { messageGuid: message.guid, messageType: message.type } : {}),
        ...(row.payloadSha256 ? { wireSha256: row.payloadSha256 } : {}),
        detail: `delivery ${row.id} (${row.kind}) was ${row.state} after ${row.attempts} attempts`,
      });
      resent.push(getOutboxEntry(db, row.id)!);
    }
    return resent;
  }).immediate();
}
