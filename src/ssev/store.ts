import { statement, type Db } from '../store/database.ts';
import type { SsevApiKind, SsevProfile, SsevSubjectKind } from './types.ts';

/**
 * The SSEV tables of schema version 4 (store/migrations-ssev.ts): synchronous functions over the db, so callers
 * compose them inside one transaction with the document change and its delivery-log entry.
 */
export interface SsevMessageRow {
  direction: 'in' | 'out';
  messageId: number;
  api: SsevApiKind;
  documentId: string | null;
  state: 'sent' | 'delivered' | 'unconfirmed' | 'claimed' | 'stored' | 'refused';
  claimOwner: string | null;
  claimedAt: string | null;
  attempts: number;
  lastError: string | null;
  ssevRnu: string | null;
  dateSent: string | null;
  dateReceived: string | null;
  nextCheckAt: string | null;
  createdAt: string;
  updatedAt: string;
}

const SELECT = `SELECT direction, message_id AS messageId, api, document_id AS documentId, state, claim_owner AS claimOwner,
  claimed_at AS claimedAt, attempts, last_error AS lastError, ssev_rnu AS ssevRnu, date_sent AS dateSent, date_received AS dateReceived,
  next_check_at AS nextCheckAt, created_at AS createdAt, updated_at AS updatedAt FROM ssev_messages`;

export function getSsevMessage(db: Db, direction: 'in' | 'out', messageId: number): SsevMessageRow | undefined {
  return statement(db, `${SELECT} WHERE direction = ? AND message_id = ?`).get(direction, messageId) as SsevMessageRow | undefined;
}

/** The SSEV message of a document, sent or received (one per document). */
export function ssevMessageOfDocument(db: Db, documentId: string): SsevMessageRow | undefined {
  return statement(db, `${SELECT} WHERE document_id = ? LIMIT 1`).get(documentId) as SsevMessageRow | undefined;
}

export function sentMessageOfDocument(db: Db, documentId: string): SsevMessageRow | undefined {
  return statement(db, `${SELECT} WHERE direction = 'out' AND document_id = ?`).get(documentId) as SsevMessageRow | undefined;
}

// ── outgoing ──

export function recordSent(db: Db, m: { messageId: number; api: SsevApiKind; documentId: string; nextCheckAt: Date; at?: Date }): void {
  const at = (m.at ?? new Date()).toISOString();
  statement(db, `INSERT INTO ssev_messages (direction, message_id, api, document_id, state, attempts, next_check_at, created_at, updated_at)
    VALUES ('out', ?, ?, ?, 'sent', 0, ?, ?, ?)`).run(m.messageId, m.api, m.documentId, m.nextCheckAt.toISOString(), at, at);
}

export function dueStatusChecks(db: Db, now: Date, limit = 200): SsevMessageRow[] {
  return statement(db, `${SELECT} WHERE direction = 'out' AND state = 'sent' AND next_check_at <= ? ORDER BY next_check_at LIMIT ?`)
    .all(now.toISOString(), limit) as SsevMessageRow[];
}

export function recordStatusCheck(db: Db, messageId: number, update: { nextCheckAt?: Date; error?: string | null; state?: 'unconfirmed' }): void {
  statement(db, `UPDATE ssev_messages SET attempts = attempts + 1, next_check_at = COALESCE(?, next_check_at), last_error = ?,
    state = COALESCE(?, state), updated_at = ? WHERE direction = 'out' AND message_id = ?`)
    .run(update.nextCheckAt?.toISOString() ?? null, update.error ?? null, update.state ?? null, new Date().toISOString(), messageId);
}

export function recordDelivered(db: Db, messageId: number, d: { dateReceived?: string; dateSent?: string; ssevRnu?: string }): void {
  statement(db, `UPDATE ssev_messages SET state = 'delivered', date_received = ?, date_sent = COALESCE(?, date_sent), ssev_rnu = COALESCE(?, ssev_rnu),
    next_check_at = NULL, last_error = NULL, updated_at = ? WHERE direction = 'out' AND message_id = ?`)
    .run(d.dateReceived ?? null, d.dateSent ?? null, d.ssevRnu ?? null, new Date().toISOString(), messageId);
}

// ── incoming ──

/**
 * Claims an inbound message for this process run. True when the claim is ours: a new message, or one claimed
 * by us before (a retry), or one whose claim by another run is older than the lease (that run died). False
 * when it is stored, refused, or being taken by another live run.
 */
export function claimIncoming(db: Db, m: { messageId: number; api: SsevApiKind; owner: string; leaseMs: number; now?: Date }): boolean {
  const now = m.now ?? new Date();
  const stale = new Date(now.getTime() - m.leaseMs).toISOString();
  const result = statement(db, `INSERT INTO ssev_messages (direction, message_id, api, state, claim_owner, claimed_at, attempts, created_at, updated_at)
    VALUES ('in', ?, ?, 'claimed', ?, ?, 0, ?, ?)
    ON CONFLICT (direction, message_id) DO UPDATE SET claim_owner = excluded.claim_owner, claimed_at = excluded.claimed_at, updated_at = excluded.updated_at
    WHERE ssev_messages.state = 'claimed' AND (ssev_messages.claim_owner = excluded.claim_owner OR ssev_messages.claimed_at < ?)`)
    .run(m.messageId, m.api, m.owner, now.toISOString(), now.toISOString(), now.toISOString(), stale);
  return result.changes === 1;
}

export function recordTakeFailure(db: Db, messageId: number, error: string, refuse: boolean): number {
  statement(db, `UPDATE ssev_messages SET attempts = attempts + 1, last_error = ?, state = CASE WHEN ? THEN 'refused' ELSE state END, updated_at = ?
    WHERE direction = 'in' AND message_id = ? AND state = 'claimed'`).run(error.slice(0, 500), refuse ? 1 : 0, new Date().toISOString(), messageId);
  return getSsevMessage(db, 'in', messageId)?.attempts ?? 0;
}

export function recordStored(db: Db, messageId: number, d: { documentId: string; dateSent?: string; dateReceived?: string; ssevRnu?: string }): void {
  statement(db, `UPDATE ssev_messages SET state = 'stored', document_id = ?, date_sent = ?, date_received = ?, ssev_rnu = ?, last_error = NULL,
    claim_owner = NULL, updated_at = ? WHERE direction = 'in' AND message_id = ?`)
    .run(d.documentId, d.dateSent ?? null, d.dateReceived ?? null, d.ssevRnu ?? null, new Date().toISOString(), messageId);
}

/** Stored or refused: nothing more to do with it. A claimed message is not settled (it is retaken). */
export function incomingSettled(db: Db, messageId: number): boolean {
  return statement(db, "SELECT 1 FROM ssev_messages WHERE direction = 'in' AND message_id = ? AND state IN ('stored', 'refused')").get(messageId) !== undefined;
}

/** Claimed but never stored (a failed or interrupted take): retaken by id, since a list of new messages may no longer show them. */
export function unfinishedClaims(db: Db, limit = 100): number[] {
  return (statement(db, "SELECT message_id AS id FROM ssev_messages WHERE direction = 'in' AND state = 'claimed' ORDER BY created_at LIMIT ?").all(limit) as Array<{ id: number }>)
    .map((r) => r.id);
}

// ── profile cache ──

export function cacheProfile(db: Db, api: SsevApiKind, p: SsevProfile): void {
  statement(db, `INSERT INTO ssev_profiles (identifier, kind, profile_id, target_group_id, name, api, fetched_at) VALUES (?, ?, ?, NULL, ?, ?, ?)
    ON CONFLICT (identifier, kind, api) DO UPDATE SET profile_id = excluded.profile_id, name = excluded.name, fetched_at = excluded.fetched_at`)
    .run(p.identifier, p.kind, p.profileId ?? null, p.name, api, new Date().toISOString());
}

export function cachedProfile(db: Db, api: SsevApiKind, identifier: string, kind: SsevSubjectKind, maxAgeMs: number): SsevProfile | undefined {
  const row = statement(db, 'SELECT identifier, kind, profile_id AS profileId, name, fetched_at AS fetchedAt FROM ssev_profiles WHERE identifier = ? AND kind = ? AND api = ?')
    .get(identifier, kind, api) as { identifier: string; kind: SsevSubjectKind; profileId: number | null; name: string; fetchedAt: string } | undefined;
  if (!row || Date.now() - Date.parse(row.fetchedAt) > maxAgeMs) return undefined;
  return { identifier: row.identifier, kind: row.kind, name: row.name, ...(row.profileId !== null ? { profileId: row.profileId } : {}) };
}

// ── documents ──

export function setChannelReason(db: Db, documentId: string, reason: string): void {
  statement(db, 'UPDATE documents SET channel_reason = ? WHERE id = ?').run(reason, documentId);
}

export function getChannelReason(db: Db, documentId: string): string | null {
  return (statement(db, 'SELECT channel_reason AS r FROM documents WHERE id = ?').get(documentId) as { r: string | null } | undefined)?.r ?? null;
}
