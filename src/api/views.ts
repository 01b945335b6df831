import { destinationHealth } from '../delivery/destinations.ts';
import { entriesForDocument, listAttempts, type OutboxRow } from '../delivery/outbox.ts';
import { getChannelReason, ssevMessageOfDocument } from '../ssev/index.ts';
import { statement, type Db } from '../store/database.ts';
import { listAttachments, statusHistory, type DocumentRow } from '../store/documents.ts';

/**
 * How the API shows what the store holds. Plain functions from rows to JSON-ready objects; the answers' JSON
 * Schemas (schemas/api) describe the same shapes.
 */
export function counterpartyOf(doc: DocumentRow): { guid: string; eik: string; name: string } {
  return { guid: doc.counterpartyGuid, eik: doc.counterpartyEik, name: doc.counterpartyName };
}

export function attachmentsOf(db: Db, doc: DocumentRow, hrefBase?: string) {
  return listAttachments(db, doc.id).map((a) => ({
    position: a.position, fileName: a.fileName, mimeType: a.mimeType, comment: a.comment, size: a.size, sha256: a.sha256,
    ...(hrefBase ? { href: `${hrefBase}/attachments/${a.position}` } : {}),
  }));
}

export function historyOf(db: Db, documentId: string) {
  return statusHistory(db, documentId).map((h) => ({ status: h.status, at: h.at, source: h.source, detail: h.detail }));
}

/** A delivery (outbox row) with its attempts; `down` caches destination health for lists. */
export function deliveryView(db: Db, row: OutboxRow, down: Map<string, boolean> = new Map()) {
  if (!down.has(row.destination)) down.set(row.destination, destinationHealth(db, row.destination).state === 'down');
  const participant = statement(db, 'SELECT name FROM participants WHERE guid = ?').get(row.destination) as { name: string } | undefined;
  const message = row.payloadSha256
    ? statement(db, "SELECT message_guid AS guid FROM messages WHERE direction = 'out' AND wire_sha256 = ?").get(row.payloadSha256) as { guid: string } | undefined
    : undefined;
  const doc = row.documentId ? statement(db, 'SELECT document_guid AS guid FROM documents WHERE id = ?').get(row.documentId) as { guid: string } | undefined : undefined;
  return {
    id: row.id, kind: row.kind, state: row.state, destination: row.destination, destinationName: participant?.name ?? null,
    destinationDown: down.get(row.destination)!, documentId: row.documentId, documentGuid: doc?.guid ?? null,
    messageGuid: message?.guid ?? null, attemptCount: row.attempts, lastError: row.lastError, nextAttemptAt: row.nextAttemptAt,
    createdAt: row.createdAt, updatedAt: row.updatedAt,
    attempts: listAttempts(db, row.id).map((a) => ({ at: a.at, outcome: a.outcome, detail: a.detail, durationMs: a.durationMs })),
  };
}

/** GET /v1/documents/{id}: status, numbers, rejection reason, every status change and every delivery attempt. */
export function documentView(db: Db, doc: DocumentRow) {
  const down = new Map<string, boolean>();
  return {
    id: doc.id, direction: doc.direction, channel: doc.channel, documentGuid: doc.documentGuid, messageGuid: doc.messageGuid,
    counterparty: counterpartyOf(doc), status: doc.status, kind: doc.kind, about: doc.about,
    ourNumber: doc.ourNumber, ourDate: doc.ourDate, theirNumber: doc.theirNumber, theirDate: doc.theirDate,
    rejectionReason: doc.rejectionReason, expectedCloseDate: doc.expectedCloseDate, externalId: doc.externalId, rnu: doc.rnu,
    acknowledgedAt: doc.acknowledgedAt, createdAt: doc.createdAt, updatedAt: doc.updatedAt,
    ...channelOf(db, doc),
    attachments: attachmentsOf(db, doc),
    history: historyOf(db, doc.id),
    deliveries: entriesForDocument(db, doc.id).map((row) => deliveryView(db, row, down)),
  };
}

/** Why the document took its channel, and its SSEV message (status, delivery time) when it went over SSEV. */
export function channelOf(db: Db, doc: DocumentRow) {
  const reason = getChannelReason(db, doc.id);
  const m = doc.channel === 'ssev' ? ssevMessageOfDocument(db, doc.id) : undefined;
  return {
    ...(reason ? { channelReason: JSON.parse(reason) as { code: string; bg: string; en: string } } : {}),
    ...(m ? { ssev: { messageId: m.messageId, api: m.api, state: m.state, sentAt: m.dateSent, deliveredAt: m.dateReceived, ssevRnu: m.ssevRnu } } : {}),
  };
}

export function inboxHref(doc: DocumentRow): string {
  return `/v1/inbox/${doc.id}`;
}

/** One received document in the inbox list. */
export function inboxItem(db: Db, doc: DocumentRow) {
  const count = (statement(db, 'SELECT COUNT(*) AS n FROM attachments WHERE document_id = ?').get(doc.id) as { n: number }).n;
  return {
    id: doc.id, documentGuid: doc.documentGuid, messageGuid: doc.messageGuid, sender: counterpartyOf(doc), status: doc.status,
    kind: doc.kind, about: doc.about, theirNumber: doc.theirNumber, theirDate: doc.theirDate, ourNumber: doc.ourNumber, ourDate: doc.ourDate,
    rejectionReason: doc.rejectionReason, expectedCloseDate: doc.expectedCloseDate,
    receivedAt: doc.createdAt, updatedAt: doc.updatedAt, acknowledgedAt: doc.acknowledgedAt, attachmentCount: count, href: inboxHref(doc),
  };
}
