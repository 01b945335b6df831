import { statement, type Db } from '../store/database.ts';
import { timeOrderedUuid } from '../time-ordered-uuid.ts';

/**
 * The transactional outbox: one row per delivery the gateway owes. Rows are inserted in the same transaction as
 * the change that causes them; the queue only carries pointers to them.
 */
export type OutboxState = 'pending' | 'delivered' | 'failed' | 'dead';

export interface OutboxRow {
  id: string;
  kind: string;
  documentId: string | null;
  destination: string;
  payloadSha256: string | null;
  payloadJson: string | null;
  state: OutboxState;
  attempts: number;
  jobSeq: number;
  nextAttemptAt: string;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

const SELECT = `SELECT id, kind, document_id AS documentId, destination, payload_sha256 AS payloadSha256, payload_json AS payloadJson,
  state, attempts, job_seq AS jobSeq, next_attempt_at AS nextAttemptAt, last_error AS lastError, created_at AS createdAt, updated_at AS updatedAt FROM outbox`;

export interface NewOutboxEntry {
  kind: string;
  destination: string;
  documentId?: string | null;
  payloadSha256?: string | null;
  payload?: unknown;
  notBefore?: Date;
}

/** The job sequence a row is inserted with: its first job's, so scheduling it the first time writes nothing. */
const FIRST_JOB_SEQ = 1;

/** Rows just inserted whose first sequence no job has taken yet (see `takeJobSeq`). */
const unscheduled = new WeakSet<OutboxRow>();

export function addOutboxEntry(db: Db, entry: NewOutboxEntry): OutboxRow {
  const now = new Date().toISOString();
  const row: OutboxRow = {
    id: timeOrderedUuid(), kind: entry.kind, documentId: entry.documentId ?? null, destination: entry.destination,
    payloadSha256: entry.payloadSha256 ?? null, payloadJson: entry.payload === undefined ? null : JSON.stringify(entry.payload),
    state: 'pending', attempts: 0, jobSeq: FIRST_JOB_SEQ, nextAttemptAt: (entry.notBefore ?? new Date()).toISOString(),
    lastError: null, createdAt: now, updatedAt: now,
  };
  statement(db, `INSERT INTO outbox (id, kind, document_id, destination, payload_sha256, payload_json, state, attempts, job_seq, next_attempt_at, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)`)
    .run(row.id, row.kind, row.documentId, row.destination, row.payloadSha256, row.payloadJson, row.jobSeq, row.nextAttemptAt, now, now);
  unscheduled.add(row);
  return row;
}

export function getOutboxEntry(db: Db, id: string): OutboxRow | undefined {
  return statement(db, `${SELECT} WHERE id = ?`).get(id) as OutboxRow | undefined;
}

export function pendingEntries(db: Db, limit = 10_000): OutboxRow[] {
  return statement(db, `${SELECT} WHERE state = 'pending' ORDER BY next_attempt_at LIMIT ?`).all(limit) as OutboxRow[];
}

export function entriesForDocument(db: Db, documentId: string): OutboxRow[] {
  return statement(db, `${SELECT} WHERE document_id = ? ORDER BY created_at`).all(documentId) as OutboxRow[];
}

/** Bumps the job sequence: the job carrying the new number is the only one that may act on the row. */
function bumpJobSeq(db: Db, id: string): number {
  // updated_at moves too: the reconciler leaves alone rows touched after it looked at the queue.
  const row = statement(db, 'UPDATE outbox SET job_seq = job_seq + 1, updated_at = ? WHERE id = ? RETURNING job_seq AS s')
    .get(new Date().toISOString(), id) as { s: number } | undefined;
  return row?.s ?? 0;
}

/**
 * The sequence a new job for this row carries. The first job of a row `addOutboxEntry` just returned takes the
 * sequence the row was inserted with; every other takes a bumped one. That first bump was a write transaction of
 * its own after every accepted document, with the write lock to wait for. A row read back from the database is
 * never taken for a new one: it is a new object.
 */
export function takeJobSeq(db: Db, row: Pick<OutboxRow, 'id'>): number {
  if (unscheduled.delete(row as OutboxRow)) return FIRST_JOB_SEQ;
  return bumpJobSeq(db, row.id);
}

export interface AttemptRecord {
  outcome: string;
  detail?: string | null;
  durationMs?: number;
}

export function recordAttempt(db: Db, id: string, attempt: AttemptRecord): void {
  statement(db, 'INSERT INTO attempts (outbox_id, at, outcome, detail, duration_ms) VALUES (?, ?, ?, ?, ?)')
    .run(id, new Date().toISOString(), attempt.outcome, attempt.detail ?? null, attempt.durationMs ?? null);
}

export function listAttempts(db: Db, outboxId: string): Array<{ at: string; outcome: string; detail: string | null; durationMs: number | null }> {
  return statement(db, 'SELECT at, outcome, detail, duration_ms AS durationMs FROM attempts WHERE outbox_id = ? ORDER BY id').all(outboxId) as never;
}

export function updateOutbox(db: Db, id: string, update: { state?: OutboxState; attempts?: number; nextAttemptAt?: Date; lastError?: string | null }): void {
  const sets: string[] = [];
  const values: unknown[] = [];
  if (update.state !== undefined) { sets.push('state = ?'); values.push(update.state); }
  if (update.attempts !== undefined) { sets.push('attempts = ?'); values.push(update.attempts); }
  if (update.nextAttemptAt !== undefined) { sets.push('next_attempt_at = ?'); values.push(update.nextAttemptAt.toISOString()); }
  if (update.lastError !== undefined) { sets.push('last_error = ?'); values.push(update.lastError); }
  sets.push('updated_at = ?');
  values.push(new Date().toISOString(), id);
  statement(db, `UPDATE outbox SET ${sets.join(', ')} WHERE id = ?`).run(...values);
}
