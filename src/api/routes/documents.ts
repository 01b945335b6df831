import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Multipart } from '@fastify/multipart';
import { GatewayError } from '../../errors/index.ts';
import type { Attachment } from '../../seos/model.ts';
import type { QueuedDocument, SendDocumentInput } from '../../seos/outbound.ts';
import { getChannelReason, reasonJson, ssevMessageOfDocument, type ChannelReason, type RoutingDecision, type SsevAttachmentInput } from '../../ssev/index.ts';
import { statement } from '../../store/database.ts';
import { getDocument, type DocumentRow } from '../../store/documents.ts';
import { actorOf, principalOf } from '../auth.ts';
import { addRoute, type ApiContext } from '../context.ts';
import { requireSafeFileName } from '../file-names.ts';
import { drainParts, readMetadataPart, spoolFileParts, type AttachmentMetadata } from '../upload.ts';
import { toSsevInput } from '../ssev-documents.ts';
import { counterpartyOf, documentView } from '../views.ts';

/**
 * Sending documents and reading them back:
 * - POST /v1/documents            JSON, attachments in base64 (up to api.maxJsonBytes)
 * - POST /v1/documents/multipart  metadata + files, streamed to the spool (up to api.maxUploadBytes)
 * - GET  /v1/documents/{id}       status, numbers, history, deliveries with attempts
 * - POST /v1/documents/{id}/request-status
 *
 * A repeat (same `externalId`, or same `Idempotency-Key` from the same connector) answers 200 with the first
 * result and changes nothing; the first answer is 201. The same id for another recipient is a 409.
 */
interface DocumentIdJson {
  documentGuid?: string;
  number?: { docNumber: string; docDate: string };
  uri?: Record<string, string>;
}

interface DocumentJson {
  id?: DocumentIdJson;
  parentId?: DocumentIdJson;
  kind: string;
  correspondents?: Array<Record<string, string>>;
  attachments?: Array<{ fileName: string; mimeType: string; content?: string; comment?: string }>;
  about?: string;
  service?: { name: string; type: string; code: string };
  comment?: string;
  requestedCloseDate?: string;
  attentionTo?: string;
}

interface SendJson {
  recipient: string;
  /** Forces a channel; otherwise the gateway chooses (SEOS, else SSEV). */
  channel?: 'seos' | 'ssev';
  document: DocumentJson;
  comment?: string;
  externalId?: string;
  rnu?: string;
}

interface SendAnswer extends QueuedDocument {
  readonly status: string;
  readonly channel?: string;
  readonly channelReason?: ChannelReason;
}

export function registerDocumentRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { options, schemas, validators, uploads } = ctx;
  const { db, config } = options;
  const idParams = schemas.inline('IdParams');

  addRoute(app, {
    method: 'POST', url: '/documents', roles: ['connector'], bodyLimit: config.maxJsonBytes,
    schema: {
      summary: 'Send a document (JSON, attachments in base64)',
      description: 'Recipient by ЕИК/БУЛСТАТ, SEOS GUID or ЕГН/ЛНЧ. The gateway chooses the channel (SEOS for an active SEOS participant, else SSEV '
        + 'when the recipient has an SSEV profile; `channel` forces one) before anything is stored, and answers with it and the reason. '
        + 'Answers once the document is committed with its delivery-log entry; delivery follows.',
      tags: ['documents'],
      headers: schemas.inline('SendDocumentHeaders'),
      body: { $ref: 'SendDocumentRequest#' },
      response: { 200: { $ref: 'SendDocumentResponse#' }, 201: { $ref: 'SendDocumentResponse#' } },
    },
    handler: async (request, reply) => {
      const body = request.body as SendJson;
      checkAttachments(body.document.attachments ?? [], 'body', config.maxAttachments);
      const idempotencyKey = scopedIdempotencyKey(request);
      const repeat = findRepeat(body, idempotencyKey);
      if (repeat) return answer(reply, repeatAnswer(repeat, body));
      // SEOS or SSEV, decided before anything is stored; no channel → a coded error and nothing queued.
      const decision = await decideChannel(body);
      if (decision?.channel === 'ssev') {
        const files: SsevAttachmentInput[] = (body.document.attachments ?? []).map((a) => ({
          fileName: a.fileName, mimeType: a.mimeType, content: Buffer.from(a.content ?? '', 'base64'), ...(a.comment !== undefined ? { comment: a.comment } : {}),
        }));
        return answer(reply, sendViaSsev(body, decision, files, idempotencyKey));
      }
      const attachments: Attachment[] = (body.document.attachments ?? []).map((a) => ({
        fileName: a.fileName, mimeType: a.mimeType, ...(a.comment !== undefined ? { comment: a.comment } : {}),
        content: { source: 'bytes' as const, bytes: Buffer.from(a.content ?? '', 'base64') },
      }));
      const sent = await options.outbound.sendDocument(toSendInput(body, attachments, idempotencyKey, decision ? reasonJson(decision.reason) : undefined));
      return answer(reply, sentOverSeos(sent, body, decision));
    },
  });

  addRoute(app, {
    method: 'POST', url: '/documents/multipart', roles: ['connector'],
    schema: {
      summary: 'Send a document (multipart upload, for large files)',
      description: 'Parts: `metadata` first (JSON text, schema SendDocumentMetadata), then one `file` part per attachment, in order. '
        + 'File names and types come from metadata.document.attachments[i] when given (the counts must then match), else from each part. '
        + 'Files are streamed to disk; their total is limited by api.maxUploadBytes.',
      tags: ['documents'],
      consumes: ['multipart/form-data'],
      headers: schemas.inline('SendDocumentHeaders'),
      response: { 200: { $ref: 'SendDocumentResponse#' }, 201: { $ref: 'SendDocumentResponse#' } },
    },
    handler: async (request, reply) => {
      if (!request.isMultipart()) throw new GatewayError('GW_ERR_API_UNSUPPORTED_MEDIA_TYPE', 'multipart/form-data is expected');
      const declared = Number(request.headers['content-length']);
      // A declared size far beyond the limit is refused before a byte is read (the metadata part may take 1 MiB).
      if (Number.isFinite(declared) && declared > config.maxUploadBytes + 2 * 1024 * 1024) {
        throw new GatewayError('GW_ERR_API_TOO_LARGE', `limit ${config.maxUploadBytes} bytes`);
      }
      const parts = request.parts()[Symbol.asyncIterator]() as AsyncIterator<Multipart>;
      const session = uploads.begin();
      try {
        const text = await readMetadataPart(parts);
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          throw new GatewayError('GW_ERR_API_VALIDATION', 'metadata: is not valid JSON');
        }
        const body = validators.check<SendJson>('SendDocumentMetadata', json, 'metadata');
        const described = body.document.attachments as AttachmentMetadata[] | undefined;
        checkAttachments(described ?? [], 'metadata', config.maxAttachments);
        const idempotencyKey = scopedIdempotencyKey(request);
        const repeat = findRepeat(body, idempotencyKey);
        if (repeat) {
          const result = repeatAnswer(repeat, body);
          await drainParts(parts).catch(() => reply.header('connection', 'close'));
          return answer(reply, result);
        }
        // The channel is chosen before the files are read: no channel → a coded error before any upload.
        const decision = await decideChannel(body);
        const files = await spoolFileParts(parts, session, { maxUploadBytes: config.maxUploadBytes, maxAttachments: config.maxAttachments, described });
        if (decision?.channel === 'ssev') {
          const spooled: SsevAttachmentInput[] = files.map((f) => ({ fileName: f.fileName, mimeType: f.mimeType, sha256: f.sha256, ...(f.comment !== undefined ? { comment: f.comment } : {}) }));
          return answer(reply, sendViaSsev(body, decision, spooled, idempotencyKey));
        }
        const attachments: Attachment[] = files.map((f) => ({
          fileName: f.fileName, mimeType: f.mimeType, ...(f.comment !== undefined ? { comment: f.comment } : {}),
          content: { source: 'file' as const, path: session.path(f.sha256) },
        }));
        const sent = await options.outbound.sendDocument(toSendInput(body, attachments, idempotencyKey, decision ? reasonJson(decision.reason) : undefined));
        return answer(reply, sentOverSeos(sent, body, decision));
      } finally {
        session.end();
      }
    },
  });

  addRoute(app, {
    method: 'GET', url: '/documents/:id', roles: ['connector', 'operator'],
    schema: {
      summary: 'Read one document',
      description: 'Current status, the recipient\'s registration number and date, rejection reason, every status change with its time, '
        + 'every delivery with each attempt and its outcome; the channel and why it was chosen; for SSEV, the SSEV message with its state and '
        + 'delivery time (`ssev.deliveredAt`: when the recipient opened it).',
      tags: ['documents'],
      params: idParams,
      response: { 200: { $ref: 'DocumentView#' } },
    },
    handler: async (request) => {
      const doc = getDocument(db, (request.params as { id: string }).id);
      if (!doc) throw new GatewayError('GW_ERR_API_DOCUMENT_NOT_FOUND');
      return documentView(db, doc);
    },
  });

  addRoute(app, {
    method: 'POST', url: '/documents/:id/request-status', roles: ['connector'],
    schema: {
      summary: 'Ask the recipient for the current status of a sent document',
      description: 'Queues a signed MSG_DocumentStatusRequest; the answer updates the document (read it with GET /v1/documents/{id}). '
        + 'For a document sent over SSEV the gateway asks SSEV at once whether the recipient opened it (deliveryId is then empty).',
      tags: ['documents'],
      params: idParams,
      response: { 202: { $ref: 'RequestStatusResponse#' } },
    },
    handler: async (request, reply) => {
      const id = (request.params as { id: string }).id;
      const doc = getDocument(db, id);
      if (!doc || doc.direction !== 'out') throw new GatewayError('GW_ERR_API_DOCUMENT_NOT_FOUND', 'no sent document with this id');
      if (doc.channel === 'ssev') {
        // SSEV has no status request: the gateway asks SSEV now whether the recipient opened the message.
        const message = ssevMessageOfDocument(db, doc.id);
        if (!options.channels?.ssev || !message) throw new GatewayError('GW_ERR_API_CONFLICT', 'SSEV has not accepted the message yet: there is nothing to ask about');
        await options.channels.ssev.checkDelivered(message.messageId);
        return reply.code(202).send({ id: doc.id, deliveryId: '', status: getDocument(db, doc.id)!.status });
      }
      const actor = actorOf(request);
      // The request and its delivery-log entry commit together; the outbox row is scheduled after the commit.
      const row = db.transaction(() => {
        const queued = options.outbound.requestStatus(id);
        options.log.append({
          type: 'status-request', direction: 'out', counterparty: counterpartyOf(doc), documentGuid: doc.documentGuid, documentId: doc.id,
          messageType: 'MSG_DocumentStatusRequest', status: doc.status, actor, detail: `delivery ${queued.id}`,
        });
        return queued;
      }).immediate();
      return reply.code(202).send({ id: doc.id, deliveryId: row.id, status: doc.status });
    },
  });

  /** SEOS or SSEV (src/app/document-channels.ts); undefined when the gateway has no channel choice (SEOS only). */
  async function decideChannel(body: SendJson): Promise<RoutingDecision | undefined> {
    if (options.channels) return options.channels.choose(body.recipient, body.channel);
    if (body.channel === 'ssev' || /^\d{10}$/.test(body.recipient)) throw new GatewayError('GW_ERR_SSEV_NOT_CONFIGURED');
    return undefined;
  }

  /** Commits the document for SSEV with its outbox row (limits checked first: a coded 4xx changes nothing). */
  function sendViaSsev(body: SendJson, decision: Extract<RoutingDecision, { channel: 'ssev' }>, files: SsevAttachmentInput[], idempotencyKey: string | undefined): SendAnswer {
    const ssev = options.channels?.ssev;
    if (!ssev) throw new GatewayError('GW_ERR_SSEV_NOT_CONFIGURED');
    const sent = ssev.sendViaSsev(toSsevInput(body, decision.ssev, files, { channelReason: reasonJson(decision.reason), ...(idempotencyKey ? { idempotencyKey } : {}) }));
    if (!sent.created) return repeatAnswer(getDocument(db, sent.documentId)!, body);
    return { documentId: sent.documentId, documentGuid: sent.documentGuid, messageGuid: '', created: true, status: 'PENDING', channel: 'ssev', channelReason: decision.reason };
  }

  /** A SEOS document accepted (or answered again); its routing reason was stored in its own transaction. */
  function sentOverSeos(sent: QueuedDocument, body: SendJson, decision: RoutingDecision | undefined): SendAnswer {
    if (!sent.created) return repeatAnswer(getDocument(db, sent.documentId)!, body);
    return { ...sent, status: 'PENDING', channel: 'seos', ...(decision ? { channelReason: decision.reason } : {}) };
  }

  function repeatAnswer(doc: DocumentRow, body: SendJson): SendAnswer {
    const reason = getChannelReason(db, doc.id);
    return { ...repeatOf(doc, body), channel: doc.channel, ...(reason ? { channelReason: JSON.parse(reason) as ChannelReason } : {}) };
  }

  function scopedIdempotencyKey(request: FastifyRequest): string | undefined {
    const key = request.headers['idempotency-key'];
    // Scoped to the connector (the key's name, stable across key rotation): two connectors never collide.
    return typeof key === 'string' ? `${principalOf(request).name}:${key}` : undefined;
  }

  function findRepeat(body: SendJson, idempotencyKey: string | undefined): DocumentRow | undefined {
    const byExternal = body.externalId
      ? statement(db, 'SELECT id FROM documents WHERE external_id = ?').get(body.externalId) as { id: string } | undefined : undefined;
    const byKey = !byExternal && idempotencyKey
      ? statement(db, 'SELECT id FROM documents WHERE idempotency_key = ?').get(idempotencyKey) as { id: string } | undefined : undefined;
    const id = byExternal?.id ?? byKey?.id;
    return id ? getDocument(db, id) : undefined;
  }
}

/** A repeat must be the same document: the same recipient (and DocumentGUID, when the caller gave one). */
function repeatOf(doc: DocumentRow, body: SendJson): SendAnswer {
  const recipient = body.recipient.toLowerCase();
  const guid = /^\d+$/.test(recipient) ? undefined : normalizeGuid(recipient);
  const sameRecipient = doc.direction === 'out' && (guid ? doc.counterpartyGuid === guid : doc.counterpartyEik === recipient);
  const givenGuid = body.document.id?.documentGuid ? normalizeGuid(body.document.id.documentGuid) : undefined;
  if (!sameRecipient || (givenGuid && givenGuid !== doc.documentGuid)) {
    throw new GatewayError('GW_ERR_API_CONFLICT', `${body.externalId ? 'body.externalId' : 'Idempotency-Key'}: already used for another document (${doc.id})`);
  }
  return { documentId: doc.id, documentGuid: doc.documentGuid, messageGuid: doc.messageGuid ?? '', created: false, status: doc.status };
}

function answer(reply: FastifyReply, sent: SendAnswer): FastifyReply {
  reply.header('location', `/v1/documents/${sent.documentId}`);
  if (!sent.created) reply.header('idempotent-replayed', 'true');
  return reply.code(sent.created ? 201 : 200).send({
    id: sent.documentId, documentGuid: sent.documentGuid, messageGuid: sent.messageGuid, status: sent.status, created: sent.created,
    channel: sent.channel ?? 'seos', ...(sent.channelReason ? { channelReason: sent.channelReason } : {}),
  });
}

function normalizeGuid(value: string): string {
  const v = value.toLowerCase();
  return v.startsWith('{') ? v : `{${v}}`;
}

function checkAttachments(attachments: ReadonlyArray<{ fileName: string }>, context: string, max: number): void {
  if (attachments.length > max) throw new GatewayError('GW_ERR_API_TOO_LARGE', `${context}.document.attachments: more than ${max} attachments`);
  attachments.forEach((a, i) => requireSafeFileName(a.fileName, `${context}.document.attachments[${i}].fileName`));
}

function toSendInput(body: SendJson, attachments: Attachment[], idempotencyKey: string | undefined, channelReason: string | undefined): SendDocumentInput {
  const d = body.document;
  const id = (value: DocumentIdJson | undefined) =>
    value ? { ...value, ...(value.documentGuid ? { documentGuid: normalizeGuid(value.documentGuid) } : {}) } : undefined;
  if (d.parentId && !d.parentId.documentGuid) throw new GatewayError('GW_ERR_API_VALIDATION', 'body.document.parentId.documentGuid: is required');
  const documentId = id(d.id);
  const parentId = id(d.parentId);
  return {
    recipient: /^\d+$/.test(body.recipient) ? body.recipient : normalizeGuid(body.recipient),
    document: {
      kind: d.kind,
      ...(documentId ? { id: documentId } : {}),
      ...(parentId ? { parentId: parentId as never } : {}),
      ...(d.correspondents ? { correspondents: d.correspondents as never } : {}),
      ...(attachments.length ? { attachments } : {}),
      ...(d.about !== undefined ? { about: d.about } : {}),
      ...(d.service ? { service: d.service } : {}),
      ...(d.comment !== undefined ? { comment: d.comment } : {}),
      ...(d.requestedCloseDate !== undefined ? { requestedCloseDate: d.requestedCloseDate } : {}),
      ...(d.attentionTo !== undefined ? { attentionTo: d.attentionTo } : {}),
    },
    ...(body.comment !== undefined ? { comment: body.comment } : {}),
    ...(body.externalId !== undefined ? { externalId: body.externalId } : {}),
    ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
    ...(body.rnu !== undefined ? { rnu: body.rnu } : {}),
    ...(channelReason !== undefined ? { channelReason } : {}),
  };
}
