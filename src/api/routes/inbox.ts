import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../../errors/index.ts';
import { parseMessageFile } from '../../seos/message-file.ts';
import { parseMessageDocument, parseMessageXml } from '../../seos/parse.ts';
import type { StatusReport } from '../../seos/outbound.ts';
import { statement } from '../../store/database.ts';
import { getDocument, listAttachments, statusHistory, updateDocument, type DocumentRow } from '../../store/documents.ts';
import { actorOf } from '../auth.ts';
import { reportSsevStatus } from '../ssev-status-report.ts';
import { addRoute, type ApiContext } from '../context.ts';
import { decodeCursor, encodeCursor } from '../cursor.ts';
import { contentDisposition, safeMimeType } from '../file-names.ts';
import { attachmentsOf, counterpartyOf, historyOf, inboxHref, inboxItem } from '../views.ts';

/** Archived messages above this size are read through their skeleton when the inbox shows what was sent. */
const READ_IN_MEMORY_BYTES = 4 * 1024 * 1024;

/**
 * The inbox: documents other administrations sent us.
 * - GET  /v1/inbox                         paged (oldest first), by status, arrival time, sender, acknowledged
 * - GET  /v1/inbox/{id}                    the document as the sender sent it, its attachments and history
 * - GET  /v1/inbox/{id}/attachments/{n}    the file, streamed from the spool
 * - POST /v1/inbox/{id}/ack                the records system has taken it (idempotent)
 * - POST /v1/inbox/{id}/status             registered / rejected / stopped / closed, pushed to the sender
 */
type Query = { status?: string[]; acknowledged?: boolean; from?: string; to?: string; sender?: string; limit?: number; cursor?: string };

export function registerInboxRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { options, schemas } = ctx;
  const { db, config } = options;
  const idParams = schemas.inline('IdParams');

  addRoute(app, {
    method: 'GET', url: '/inbox', roles: ['connector'],
    schema: {
      summary: 'List received documents',
      description: 'Oldest first. Page with `limit` and the `nextCursor` of the previous page.',
      tags: ['inbox'],
      querystring: schemas.inline('InboxQuery'),
      response: { 200: { $ref: 'InboxList#' } },
    },
    handler: async (request) => {
      const q = request.query as Query;
      const limit = Math.min(q.limit ?? config.defaultPageSize, config.maxPageSize);
      const where = ["direction = 'in'"];
      const params: unknown[] = [];
      if (q.status?.length) {
        where.push(`status IN (${q.status.map(() => '?').join(', ')})`);
        params.push(...q.status);
      }
      if (q.acknowledged !== undefined) where.push(q.acknowledged ? 'acknowledged_at IS NOT NULL' : 'acknowledged_at IS NULL');
      if (q.from) { where.push('created_at >= ?'); params.push(new Date(q.from).toISOString()); }
      if (q.to) { where.push('created_at < ?'); params.push(new Date(q.to).toISOString()); }
      if (q.sender) {
        const s = q.sender.trim().toLowerCase();
        where.push('(counterparty_guid = ? OR counterparty_eik = ?)');
        params.push(/^[0-9a-f-]{36}$/.test(s) ? `{${s}}` : s, s);
      }
      if (q.cursor) {
        const [at, id] = decodeCursor(q.cursor);
        where.push('(created_at, id) > (?, ?)');
        params.push(at, id);
      }
      const rows = db.prepare(`SELECT id FROM documents WHERE ${where.join(' AND ')} ORDER BY created_at, id LIMIT ?`)
        .all(...params, limit + 1) as Array<{ id: string }>;
      const docs = rows.slice(0, limit).map((r) => getDocument(db, r.id)!);
      const last = docs[docs.length - 1];
      return { items: docs.map((d) => inboxItem(db, d)), nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null };
    },
  });

  addRoute(app, {
    method: 'GET', url: '/inbox/:id', roles: ['connector'],
    schema: {
      summary: 'Fetch one received document',
      description: 'With everything the sender sent (correspondents, service, comment, read from the archived signed message) and links to its attachments.',
      tags: ['inbox'],
      params: idParams,
      response: { 200: { $ref: 'InboxDocument#' } },
    },
    handler: async (request) => {
      const doc = received((request.params as { id: string }).id);
      return { ...inboxItem(db, doc), document: await sentDocument(doc), attachments: attachmentsOf(db, doc, inboxHref(doc)), history: historyOf(db, doc.id) };
    },
  });

  addRoute(app, {
    method: 'GET', url: '/inbox/:id/attachments/:n', roles: ['connector'],
    schema: {
      summary: 'Download an attachment of a received document',
      tags: ['inbox'],
      params: schemas.inline('AttachmentParams'),
      produces: ['application/octet-stream'],
    },
    handler: async (request, reply) => {
      const { id, n } = request.params as { id: string; n: number };
      const doc = received(id);
      const attachment = listAttachments(db, doc.id).find((a) => a.position === n);
      if (!attachment) throw new GatewayError('GW_ERR_NOT_FOUND', `attachment ${n}`);
      const stream = options.spool.createReadStream(attachment.sha256);
      return reply
        .header('content-type', safeMimeType(attachment.mimeType))
        .header('content-length', String(attachment.size))
        .header('content-disposition', contentDisposition(attachment.fileName))
        .header('x-content-type-options', 'nosniff')
        .header('digest', `sha-256=${Buffer.from(attachment.sha256, 'hex').toString('base64')}`)
        .send(stream);
    },
  });

  addRoute(app, {
    method: 'POST', url: '/inbox/:id/ack', roles: ['connector'],
    schema: {
      summary: 'Acknowledge a received document',
      description: 'The records system has taken the document. Idempotent: a repeat answers with the first time.',
      tags: ['inbox'],
      params: idParams,
      response: { 200: { $ref: 'AckResponse#' } },
    },
    handler: async (request) => {
      const id = (request.params as { id: string }).id;
      const actor = actorOf(request);
      return db.transaction(() => {
        const doc = received(id);
        if (doc.acknowledgedAt) return { id: doc.id, acknowledgedAt: doc.acknowledgedAt, alreadyAcknowledged: true };
        const at = new Date().toISOString();
        updateDocument(db, doc.id, { acknowledgedAt: at });
        options.log.append({
          type: 'acknowledged', direction: 'in', counterparty: counterpartyOf(doc), documentGuid: doc.documentGuid, documentId: doc.id,
          messageGuid: doc.messageGuid ?? undefined, status: doc.status, actor,
        });
        return { id: doc.id, acknowledgedAt: at, alreadyAcknowledged: false };
      }).immediate();
    },
  });

  addRoute(app, {
    method: 'POST', url: '/inbox/:id/status', roles: ['connector'],
    schema: {
      summary: 'Report what happened to a received document',
      description: 'registered (with our number and date), rejected (with the reason), stopped or closed. Each becomes a signed status message '
        + 'pushed to the sender. Repeating the same report changes nothing; a rejected document stays rejected, and a registered one keeps its number.',
      tags: ['inbox'],
      params: idParams,
      body: { $ref: 'StatusReport#' },
      response: { 200: { $ref: 'StatusReportResponse#' }, 202: { $ref: 'StatusReportResponse#' } },
    },
    handler: async (request, reply) => {
      const doc = received((request.params as { id: string }).id);
      const report = toReport(request.body as ReportJson);
      if (doc.channel === 'ssev') {
        // SSEV carries no statuses: recorded here (history, webhooks, eJournal), not sent to the sender.
        const { repeated } = reportSsevStatus(options, doc, report, actorOf(request), () => refuseImpossible(doc, report));
        return reply.code(200).send({ id: doc.id, status: report.status, messageGuid: '', repeated, senderNotified: false });
      }
      const repeated = sameAsLastReport(doc, report);
      if (repeated) return reply.code(200).send({ id: doc.id, status: doc.status, messageGuid: repeated, repeated: true });
      refuseImpossible(doc, report);
      const { messageGuid } = await Promise.resolve(options.outbound.reportStatus(doc.id, report, actorOf(request)));
      return reply.code(202).send({ id: doc.id, status: report.status, messageGuid, repeated: false });
    },
  });

  function received(id: string): DocumentRow {
    const doc = getDocument(db, id);
    if (!doc || doc.direction !== 'in') throw new GatewayError('GW_ERR_API_DOCUMENT_NOT_FOUND', 'no received document with this id');
    return doc;
  }

  /**
   * What the sender sent, from the archived signed registration request (the table keeps only kind and subject).
   * A large message is read through its skeleton (seos/message-file.ts): its attachment bodies, which this answer
   * leaves out anyway, stay in the file, so fetching a 100 MiB document does not load it. The archive's hash check
   * is left to `audit verify` there (it would read the whole file); a small one is read and checked as before.
   */
  async function sentDocument(doc: DocumentRow) {
    const row = statement(db, `SELECT wire_sha256 AS sha FROM messages WHERE direction = 'in' AND document_id = ?
      AND message_type = 'MSG_DocumentRegistrationRequest' ORDER BY created_at LIMIT 1`).get(doc.id) as { sha: string } | undefined;
    if (!row) return { kind: doc.kind ?? '' };
    const size = options.archive.size(row.sha);
    const message = size > READ_IN_MEMORY_BYTES
      ? parseMessageDocument((await parseMessageFile(options.archive.path(row.sha), { maxBytes: size })).document)
      : parseMessageXml(options.archive.read(row.sha));
    if (message.body.type !== 'MSG_DocumentRegistrationRequest') return { kind: doc.kind ?? '' };
    const { attachments: _files, additionalData: _extra, ...rest } = message.body.document;
    return { ...rest, messageComment: message.body.comment };
  }

  /** The MessageGUID of the last push when this report repeats the current state exactly, else undefined. */
  function sameAsLastReport(doc: DocumentRow, report: StatusReport): string | undefined {
    if (doc.status !== report.status) return undefined;
    const same = report.status === 'DS_REGISTERED' ? doc.ourNumber === report.number && doc.ourDate === report.date
      : report.status === 'DS_REJECTED' ? doc.rejectionReason === report.reason
        : (report.expectedCloseDate ?? null) === (doc.expectedCloseDate ?? null) || report.expectedCloseDate === undefined;
    if (!same) return undefined;
    const last = statement(db, `SELECT message_guid AS guid FROM messages WHERE direction = 'out' AND document_id = ?
      AND message_type = 'MSG_DocumentStatusResponse' ORDER BY created_at DESC LIMIT 1`).get(doc.id) as { guid: string } | undefined;
    return last?.guid;
  }

  function refuseImpossible(doc: DocumentRow, report: StatusReport): void {
    if (doc.status === 'DS_REJECTED') throw new GatewayError('GW_ERR_API_CONFLICT', 'the document was rejected; its status cannot change any more');
    if (report.status === 'DS_REGISTERED') {
      const registered = statusHistory(db, doc.id).some((h) => h.status === 'DS_REGISTERED');
      if (registered) throw new GatewayError('GW_ERR_API_CONFLICT', 'the document is already registered (with another number or date)');
    }
  }
}

type ReportJson =
  | { status: 'registered'; number: string; date: string; expectedCloseDate?: string }
  | { status: 'rejected'; reason: string }
  | { status: 'stopped' | 'closed'; expectedCloseDate?: string };

function toReport(body: ReportJson): StatusReport {
  switch (body.status) {
    case 'registered':
      return { status: 'DS_REGISTERED', number: body.number, date: body.date, ...(body.expectedCloseDate ? { expectedCloseDate: body.expectedCloseDate } : {}) };
    case 'rejected':
      return { status: 'DS_REJECTED', reason: body.reason };
    case 'stopped':
    case 'closed':
      return { status: body.status === 'stopped' ? 'DS_STOPPED' : 'DS_CLOSED', ...(body.expectedCloseDate ? { expectedCloseDate: body.expectedCloseDate } : {}) };
  }
}
