import { statement, type Db } from './database.ts';
import { timeOrderedUuid } from '../time-ordered-uuid.ts';

/**
 * Documents exchanged with other administrations, their SEOS messages and status history. Plain synchronous
 * functions over the db, so callers compose them inside one transaction with the delivery-log entry.
 */
export type Direction = 'in' | 'out';

/** DS_* wire statuses plus the gateway's own states of a document we send. */
export type DocumentState =
  | 'DS_WAIT_REGISTRATION' | 'DS_REGISTERED' | 'DS_STOPPED' | 'DS_CLOSED' | 'DS_NOT_FOUND' | 'DS_ALREADY_RECEIVED' | 'DS_REJECTED'
  | 'PENDING' | 'SENT_FAILED'
  /** SSEV: the message was accepted by SSEV (it has an SSEV message id) / the recipient opened it. */
  | 'SENT' | 'DELIVERED';

export interface DocumentRow {
  id: string;
  direction: Direction;
  documentGuid: string;
  counterpartyGuid: string;
  counterpartyEik: string;
  counterpartyName: string;
  channel: string;
  status: DocumentState;
  ourNumber: string | null;
  ourDate: string | null;
  theirNumber: string | null;
  theirDate: string | null;
  rejectionReason: string | null;
  expectedCloseDate: string | null;
  kind: string | null;
  about: string | null;
  externalId: string | null;
  idempotencyKey: string | null;
  rnu: string | null;
  messageGuid: string | null;
  acknowledgedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface AttachmentRow {
  documentId: string;
  position: number;
  fileName: string;
  mimeType: string;
  comment: string | null;
  sha256: string;
  size: number;
}

export interface StatusChange {
  id: number;
  documentId: string;
  status: string;
  at: string;
  source: string;
  detail: string | null;
}

const COLUMNS: Record<keyof DocumentRow, string> = {
  id: 'id', direction: 'direction', documentGuid: 'document_guid', counterpartyGuid: 'counterparty_guid',
  counterpartyEik: 'counterparty_eik', counterpartyName: 'counterparty_name', channel: 'channel', status: 'status',
  ourNumber: 'our_number', ourDate: 'our_date', theirNumber: 'their_number', theirDate: 'their_date',
  rejectionReason: 'rejection_reason', expectedCloseDate: 'expected_close_date', kind: 'kind', about: 'about',
  externalId: 'external_id', idempotencyKey: 'idempotency_key', rnu: 'rnu', messageGuid: 'message_guid',
  acknowledgedAt: 'acknowledged_at', createdAt: 'created_at', updatedAt: 'updated_at',
};
const SELECT = `SELECT ${Object.entries(COLUMNS).map(([k, c]) => `${c} AS "${k}"`).join(', ')} FROM documents`;

export function newId(): string {
  return timeOrderedUuid();
}

export function findDocument(db: Db, direction: Direction, documentGuid: string, counterpartyGuid: string): DocumentRow | undefined {
  return statement(db, `${SELECT} WHERE direction = ? AND document_guid = ? AND counterparty_guid = ?`)
    .get(direction, documentGuid.toLowerCase(), counterpartyGuid.toLowerCase()) as DocumentRow | undefined;
}

export function getDocument(db: Db, id: string): DocumentRow | undefined {
  return statement(db, `${SELECT} WHERE id = ?`).get(id) as DocumentRow | undefined;
}

export function findDocumentByMessage(db: Db, direction: Direction, messageGuid: string): DocumentRow | undefined {
  return statement(db, `${SELECT} WHERE id = (SELECT document_id FROM messages WHERE direction = ? AND message_guid = ?)`)
    .get(direction, messageGuid.toLowerCase()) as DocumentRow | undefined;
}

export type NewDocument = Pick<DocumentRow, 'direction' | 'documentGuid' | 'counterpartyGuid' | 'counterpartyEik' | 'counterpartyName' | 'status'>
  & Partial<Omit<DocumentRow, 'id' | 'createdAt' | 'updatedAt'>> & { id?: string; at?: string };

export function insertDocument(db: Db, doc: NewDocument): DocumentRow {
  const at = doc.at ?? new Date().toISOString();
  const row: DocumentRow = {
    id: doc.id ?? newId(), direction: doc.direction, documentGuid: doc.documentGuid.toLowerCase(),
    counterpartyGuid: doc.counterpartyGuid.toLowerCase(), counterpartyEik: doc.counterpartyEik, counterpartyName: doc.counterpartyName,
    channel: doc.channel ?? 'seos', status: doc.status, ourNumber: doc.ourNumber ?? null, ourDate: doc.ourDate ?? null,
    theirNumber: doc.theirNumber ?? null, theirDate: doc.theirDate ?? null, rejectionReason: doc.rejectionReason ?? null,
    expectedCloseDate: doc.expectedCloseDate ?? null, kind: doc.kind ?? null, about: doc.about ?? null,
    externalId: doc.externalId ?? null, idempotencyKey: doc.idempotencyKey ?? null, rnu: doc.rnu ?? null,
    messageGuid: doc.messageGuid?.toLowerCase() ?? null, acknowledgedAt: doc.acknowledgedAt ?? null, createdAt: at, updatedAt: at,
  };
  const keys = Object.keys(COLUMNS) as Array<keyof DocumentRow>;
  statement(db, `INSERT INTO documents (${keys.map((k) => COLUMNS[k]).join(', ')}) VALUES (${keys.map(() => '?').join(', ')})`)
    .run(...keys.map((k) => row[k]));
  addStatusChange(db, row.id, row.status, 'gateway', doc.direction === 'in' ? 'received' : 'accepted', at);
  return row;
}

export type DocumentUpdate = Partial<Pick<DocumentRow, 'status' | 'ourNumber' | 'ourDate' | 'theirNumber' | 'theirDate'
  | 'rejectionReason' | 'expectedCloseDate' | 'acknowledgedAt' | 'rnu' | 'messageGuid'>>;

/** Updates fields; a status change is also written to the history, with its source and time. */
export function updateDocument(db: Db, id: string, update: DocumentUpdate, change?: { source: string; detail?: string; at?: string }): void {
  const at = change?.at ?? new Date().toISOString();
  const entries = Object.entries(update).filter(([, v]) => v !== undefined) as Array<[keyof DocumentRow, unknown]>;
  if (entries.length === 0) return;
  const before = update.status !== undefined ? getDocument(db, id)?.status : undefined;
  statement(db, `UPDATE documents SET ${entries.map(([k]) => `${COLUMNS[k]} = ?`).join(', ')}, updated_at = ? WHERE id = ?`)
    .run(...entries.map(([, v]) => v), at, id);
  if (update.status !== undefined && update.status !== before) {
    addStatusChange(db, id, update.status, change?.source ?? 'gateway', change?.detail, at);
  }
}

function addStatusChange(db: Db, documentId: string, status: string, source: string, detail: string | undefined, at: string): void {
  statement(db, 'INSERT INTO status_history (document_id, status, at, source, detail) VALUES (?, ?, ?, ?, ?)')
    .run(documentId, status, at, source, detail ?? null);
}

export function statusHistory(db: Db, documentId: string): StatusChange[] {
  return statement(db, 'SELECT id, document_id AS documentId, status, at, source, detail FROM status_history WHERE document_id = ? ORDER BY id')
    .all(documentId) as StatusChange[];
}

export function insertAttachments(db: Db, documentId: string, attachments: Array<Omit<AttachmentRow, 'documentId' | 'position'>>): void {
  const stmt = statement(db, 'INSERT INTO attachments (document_id, position, file_name, mime_type, comment, sha256, size) VALUES (?, ?, ?, ?, ?, ?, ?)');
  attachments.forEach((a, i) => stmt.run(documentId, i + 1, a.fileName, a.mimeType, a.comment ?? null, a.sha256, a.size));
}

export function listAttachments(db: Db, documentId: string): AttachmentRow[] {
  return statement(db, 'SELECT document_id AS documentId, position, file_name AS fileName, mime_type AS mimeType, comment, sha256, size FROM attachments WHERE document_id = ? ORDER BY position')
    .all(documentId) as AttachmentRow[];
}

export interface MessageRecord {
  direction: Direction;
  messageGuid: string;
  messageType: string;
  documentId: string | null;
  counterpartyGuid: string;
  wireSha256: string;
  replySha256?: string | null;
  at?: string;
}

export function messageSeen(db: Db, direction: Direction, messageGuid: string): boolean {
  return statement(db, 'SELECT 1 FROM messages WHERE direction = ? AND message_guid = ?').get(direction, messageGuid.toLowerCase()) !== undefined;
}

export function insertMessage(db: Db, m: MessageRecord): void {
  statement(db, 'INSERT INTO messages (direction, message_guid, message_type, document_id, counterparty_guid, wire_sha256, reply_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
    .run(m.direction, m.messageGuid.toLowerCase(), m.messageType, m.documentId, m.counterpartyGuid.toLowerCase(), m.wireSha256, m.replySha256 ?? null, m.at ?? new Date().toISOString());
}

export function setMessageReply(db: Db, direction: Direction, messageGuid: string, replySha256: string): void {
  statement(db, 'UPDATE messages SET reply_sha256 = ? WHERE direction = ? AND message_guid = ?').run(replySha256, direction, messageGuid.toLowerCase());
}

/**
 * The next receipt number we give an incoming document before the records system registers it. Call inside the
 * transaction that stores the document: a rollback gives the number back.
 */
export function nextReceiptNumber(db: Db, prefix: string): string {
  const n = (statement(db, "UPDATE counters SET value = value + 1 WHERE name = 'receipt' RETURNING value").get() as { value: number }).value;
  return `${prefix}${String(n).padStart(6, '0')}`;
}
