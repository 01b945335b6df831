import type { DeliveryLogEntry } from '../audit/index.ts';
import { NO_LIFECYCLE, type Lifecycle } from '../app/lifecycle.ts';
import { GatewayError } from '../errors/index.ts';
import type { DeliveryHandler, DeliveryOutcome } from '../delivery/engine.ts';
import { addOutboxEntry, type OutboxRow } from '../delivery/outbox.ts';
import type { SigningIdentity } from '../pki/index.ts';
import type { StoredContent } from '../store/content-store.ts';
import { statement, type Db } from '../store/database.ts';
import { durable } from '../store/durability.ts';
import {
  findDocument, getDocument, insertAttachments, insertDocument, insertMessage, setMessageReply, updateDocument,
  type DocumentRow, type DocumentState,
} from '../store/documents.ts';
import type { SignatureProfileName } from '../xmldsig/algorithms.ts';
import { attachmentBase64 } from './build.ts';
import { buildRegistrationRequest, buildStatusRequest, buildStatusResponse } from './builders.ts';
import type { DocumentId, DocumentStatus, Participant, SeosDocument, SeosMessage } from './model.ts';
import type { SubmitOutcome } from './soap/client.ts';
import { signMessage, signMessageAsync, writeSignedMessage } from './sign-message.ts';
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import { newGuid, normalizeGuid } from './values.ts';
import { verifySignedMessage, type VerifiedMessage } from './verify-message.ts';

/**
 * Everything this gateway sends over SEOS: registration requests for the records system's documents, status
 * pushes about documents we received, and status requests about documents we sent. Each is committed as an
 * outbox row (with the signed bytes in the archive when they must be re-sent identically) in the same
 * transaction as the document change, then delivered by the engine through the handlers below.
 */
export interface RecipientInfo {
  readonly guid: string;
  readonly eik: string;
  readonly name: string;
  readonly endpointUrl?: string;
  readonly certificateSerialNormalized?: string;
  readonly status: string;
}

export interface ContentSink {
  putBuffer(bytes: Buffer): StoredContent;
  putStream(source: AsyncIterable<Uint8Array>): Promise<StoredContent>;
  stageBuffer(bytes: Buffer): StoredContent;
  sync(contents: readonly StoredContent[]): Promise<void>;
}

/** Above this many attachment bytes (or with any attachment in a file) the message is signed while streaming. */
const IN_MEMORY_LIMIT = 8 * 1024 * 1024;

export interface OutboundDeps {
  readonly db: Db;
  readonly self: Participant;
  readonly identity: SigningIdentity;
  /** Resolves an active participant with a usable endpoint, or throws a PARTICIPANT error. */
  readonly requireRecipient: (guidOrEik: string) => RecipientInfo;
  readonly lookupParticipant: (guid: string) => RecipientInfo | undefined;
  readonly archive: ContentSink & { read(sha256: string): Buffer; path(sha256: string): string; size(sha256: string): number };
  readonly spool: ContentSink;
  readonly log: { append(entry: DeliveryLogEntry): unknown };
  readonly submit: (url: string, message: Buffer | { path: string }, expect: { messageGuid: string; documentGuid?: string; verifyReply: (reply: Buffer) => VerifiedMessage }) => Promise<SubmitOutcome>;
  readonly signatureProfileFor?: (peerGuid: string) => SignatureProfileName;
  /** After an outbox row is committed: hand it to the delivery engine. */
  readonly schedule: (entry: OutboxRow) => void;
  /** Told inside each transaction what changed (webhooks, eJournal). */
  readonly lifecycle?: Lifecycle;
}

export interface SendDocumentInput {
  /** The recipient's SEOS GUID or ЕИК. */
  readonly recipient: string;
  readonly document: Omit<SeosDocument, 'id'> & { id?: Partial<DocumentId> };
  readonly comment?: string;
  readonly externalId?: string;
  readonly idempotencyKey?: string;
  readonly rnu?: string;
  /** Why this channel was chosen (JSON {code, bg, en}), stored with the document in its own transaction. */
  readonly channelReason?: string;
}

export interface QueuedDocument {
  readonly documentId: string;
  readonly documentGuid: string;
  readonly messageGuid: string;
  readonly created: boolean;
}

export type StatusReport =
  | { status: 'DS_REGISTERED'; number: string; date: string; expectedCloseDate?: string }
  | { status: 'DS_REJECTED'; reason: string }
  | { status: 'DS_STOPPED' | 'DS_CLOSED'; expectedCloseDate?: string };

/** What a status report changes on the received document (the same whichever channel it came by). */
export function documentChangesOf(report: StatusReport) {
  const expectedCloseDate = 'expectedCloseDate' in report ? report.expectedCloseDate : undefined;
  return {
    status: report.status,
    ...(report.status === 'DS_REGISTERED' ? { ourNumber: report.number, ourDate: report.date } : {}),
    ...(report.status === 'DS_REJECTED' ? { rejectionReason: report.reason } : {}),
    ...(expectedCloseDate ? { expectedCloseDate } : {}),
  };
}

export function createSeosOutbound(deps: OutboundDeps) {
  const profileFor = deps.signatureProfileFor ?? (() => 'rsa-sha256' as const);
  const lifecycle = deps.lifecycle ?? NO_LIFECYCLE;

  /**
   * Accepts a document for delivery: signed, archived and committed with its outbox row before returning.
   * Large attachments (or attachments already in files) never sit in memory: their spool copy and the signed
   * message are both written while streaming.
   */
  async function sendDocument(input: SendDocumentInput): Promise<QueuedDocument> {
    const repeat = findRepeat(input);
    if (repeat) return { documentId: repeat.id, documentGuid: repeat.documentGuid, messageGuid: repeat.messageGuid ?? '', created: false };
    const recipient = deps.requireRecipient(input.recipient);
    const documentGuid = input.document.id?.documentGuid ?? newGuid();
    if (findDocument(deps.db, 'out', documentGuid, recipient.guid)) {
      throw new GatewayError('GW_ERR_DOCUMENT_EXISTS', `DocumentGUID ${documentGuid} to ${recipient.guid}`);
    }
    const document: SeosDocument = { ...input.document, id: { ...input.document.id, documentGuid } };
    const message = buildRegistrationRequest({ sender: deps.self, recipient: participantOf(recipient) }, document, input.comment);
    const attachments = document.attachments ?? [];
    const streaming = attachments.some((a) => a.content.source === 'file')
      || attachments.reduce((n, a) => n + (a.content.source === 'bytes' ? a.content.bytes.length : a.content.source === 'base64' ? a.content.text.length : 0), 0) > IN_MEMORY_LIMIT;
    // Files written now are fsynced together, off the event loop, before the transaction that refers to them.
    const files: Array<{ fileName: string; mimeType: string; comment: string | null; sha256: string; size: number }> = [];
    const staged: StoredContent[] = [];
    for (const a of attachments) {
      let stored: StoredContent;
      if (a.content.source === 'file') stored = await deps.spool.putStream(createReadStream(a.content.path));
      else staged.push(stored = deps.spool.stageBuffer(a.content.source === 'bytes' ? a.content.bytes : Buffer.from(attachmentBase64(a.content), 'base64')));
      files.push({ fileName: a.fileName, mimeType: a.mimeType, comment: a.comment ?? null, ...stored });
    }
    const profile = profileFor(recipient.guid);
    let archived: { sha256: string; size: number };
    if (streaming) {
      const pipe = new PassThrough({ highWaterMark: 1024 * 1024 });
      const storing = deps.archive.putStream(pipe);
      const written = writeSignedMessage(message, deps.identity, pipe, { profile }).then((r) => { pipe.end(); return r; }, (e) => { pipe.destroy(e as Error); throw e; });
      const [stored] = await Promise.all([storing, written]);
      archived = stored;
      await deps.spool.sync(staged);
    } else {
      archived = deps.archive.stageBuffer(await signMessageAsync(message, deps.identity, { profile }));
      await Promise.all([deps.spool.sync(staged), deps.archive.sync([archived])]);
    }
    let entry!: OutboxRow;
    const row = deps.db.transaction(() => {
      const again = findRepeat(input); // a concurrent identical request committed first
      if (again) return again;
      const doc = insertDocument(deps.db, {
        direction: 'out', documentGuid, counterpartyGuid: recipient.guid, counterpartyEik: recipient.eik, counterpartyName: recipient.name,
        status: 'PENDING', kind: document.kind, about: document.about ?? null, externalId: input.externalId ?? null,
        idempotencyKey: input.idempotencyKey ?? null, rnu: input.rnu ?? null, messageGuid: message.header.messageGuid,
        ourNumber: document.id.number?.docNumber ?? null, ourDate: document.id.number?.docDate ?? null,
      });
      if (input.channelReason) statement(deps.db, 'UPDATE documents SET channel_reason = ? WHERE id = ?').run(input.channelReason, doc.id);
      insertAttachments(deps.db, doc.id, files);
      insertMessage(deps.db, { direction: 'out', messageGuid: message.header.messageGuid, messageType: message.header.messageType, documentId: doc.id, counterpartyGuid: recipient.guid, wireSha256: archived.sha256 });
      entry = addOutboxEntry(deps.db, { kind: 'seos-document', destination: recipient.guid, documentId: doc.id, payloadSha256: archived.sha256 });
      deps.log.append({ type: 'message-queued', direction: 'out', counterparty: counterpartyOf(recipient), messageGuid: message.header.messageGuid,
        documentGuid, documentId: doc.id, messageType: message.header.messageType, status: 'PENDING', wireSha256: archived.sha256, actor: 'records-system' });
      return doc;
    })();
    await durable(deps.db); // accepted means on disk: the caller is answered after this
    if (row.messageGuid !== message.header.messageGuid) {
      return { documentId: row.id, documentGuid: row.documentGuid, messageGuid: row.messageGuid ?? '', created: false };
    }
    deps.schedule(entry);
    return { documentId: row.id, documentGuid, messageGuid: message.header.messageGuid, created: true };
  }

  function findRepeat(input: SendDocumentInput): DocumentRow | undefined {
    if (input.externalId) {
      const row = statement(deps.db, "SELECT id FROM documents WHERE external_id = ?").get(input.externalId) as { id: string } | undefined;
      if (row) return getDocument(deps.db, row.id);
    }
    if (input.idempotencyKey) {
      const row = statement(deps.db, "SELECT id FROM documents WHERE idempotency_key = ?").get(input.idempotencyKey) as { id: string } | undefined;
      if (row) return getDocument(deps.db, row.id);
    }
    return undefined;
  }

  /**
   * The records system registered, rejected, stopped or closed a document we received: tell its sender with a
   * signed MSG_DocumentStatusResponse, queued and retried like a document (it is the sender's only news).
   */
  function reportStatus(documentId: string, report: StatusReport, actor = 'records-system'): { messageGuid: string } {
    const doc = getDocument(deps.db, documentId);
    if (!doc || doc.direction !== 'in') throw new GatewayError('GW_ERR_SEOS_DOCUMENT_NOT_FOUND', `received document ${documentId}`);
    if (doc.channel !== 'seos') throw new GatewayError('GW_ERR_API_CONFLICT', `document ${documentId} came over ${doc.channel}: its sender cannot be sent a SEOS status`);
    const sender = deps.lookupParticipant(doc.counterpartyGuid);
    if (!sender) throw new GatewayError('GW_ERR_PARTICIPANT_NOT_FOUND', doc.counterpartyGuid);
    const number = report.status === 'DS_REGISTERED' ? report.number : doc.ourNumber;
    const date = report.status === 'DS_REGISTERED' ? report.date : doc.ourDate;
    const docId: DocumentId = { documentGuid: doc.documentGuid, ...(number && date ? { number: { docNumber: number, docDate: date } } : {}) };
    const expectedCloseDate = 'expectedCloseDate' in report ? report.expectedCloseDate : undefined;
    const message = buildStatusResponse({ sender: deps.self, recipient: participantOf(sender) }, {
      docId, status: report.status,
      ...(report.status === 'DS_REJECTED' ? { rejectionReason: report.reason } : {}),
      ...(expectedCloseDate ? { expectedCloseDate } : {}),
    });
    const signed = signMessage(message, deps.identity, { profile: profileFor(sender.guid) });
    const archived = deps.archive.putBuffer(signed);
    let entry!: OutboxRow;
    deps.db.transaction(() => {
      updateDocument(deps.db, doc.id, documentChangesOf(report), { source: actor });
      insertMessage(deps.db, { direction: 'out', messageGuid: message.header.messageGuid, messageType: message.header.messageType, documentId: doc.id, counterpartyGuid: sender.guid, wireSha256: archived.sha256 });
      entry = addOutboxEntry(deps.db, { kind: 'seos-status-push', destination: sender.guid, documentId: doc.id, payloadSha256: archived.sha256 });
      lifecycle.statusChanged(getDocument(deps.db, doc.id)!, doc.status, actor);
      deps.log.append({ type: 'status-change', direction: 'out', counterparty: counterpartyOf(sender), messageGuid: message.header.messageGuid,
        documentGuid: doc.documentGuid, documentId: doc.id, messageType: message.header.messageType, status: report.status, wireSha256: archived.sha256, actor });
    })();
    deps.schedule(entry);
    return { messageGuid: message.header.messageGuid };
  }

  /** Asks the recipient for the current status of a document we sent (now, or after `delayMs`). */
  function requestStatus(documentId: string, options: { delayMs?: number } = {}): OutboxRow {
    const doc = getDocument(deps.db, documentId);
    if (!doc || doc.direction !== 'out') throw new GatewayError('GW_ERR_SEOS_DOCUMENT_NOT_FOUND', `sent document ${documentId}`);
    const entry = deps.db.transaction(() => queueStatusRequest(doc, options.delayMs ?? 0))();
    deps.schedule(entry);
    return entry;
  }

  function queueStatusRequest(doc: DocumentRow, delayMs: number): OutboxRow {
    return addOutboxEntry(deps.db, { kind: 'seos-status-request', destination: doc.counterpartyGuid, documentId: doc.id, notBefore: new Date(Date.now() + delayMs) });
  }

  // ── delivery handlers ──

  const deliverDocument: DeliveryHandler = async (entry) => {
    const doc = getDocument(deps.db, entry.documentId!);
    if (!doc) return { result: 'failed', code: 'GW_ERR_SEOS_DOCUMENT_NOT_FOUND', detail: entry.documentId ?? '' };
    const target = endpointOf(entry.destination);
    if ('result' in target) return target;
    // A large message goes from the archive file to the socket; a small one is simply read (and checked once more).
    const sha = entry.payloadSha256!;
    const message = deps.archive.size(sha) > IN_MEMORY_LIMIT ? { path: deps.archive.path(sha) } : deps.archive.read(sha);
    const outcome = await deps.submit(target.url, message, { messageGuid: doc.messageGuid!, documentGuid: doc.documentGuid, verifyReply: replyVerifier(target.recipient) });
    return settleSubmit(entry, doc, target.recipient, outcome, 'registration');
  };

  const deliverStatusPush: DeliveryHandler = async (entry) => {
    const doc = getDocument(deps.db, entry.documentId!);
    if (!doc) return { result: 'failed', code: 'GW_ERR_SEOS_DOCUMENT_NOT_FOUND', detail: entry.documentId ?? '' };
    const target = endpointOf(entry.destination);
    if ('result' in target) return target;
    const bytes = deps.archive.read(entry.payloadSha256!);
    const messageGuid = (verifySignedMessage(bytes).message.header.messageGuid);
    const outcome = await deps.submit(target.url, bytes, { messageGuid, verifyReply: replyVerifier(target.recipient) });
    return settleSubmit(entry, doc, target.recipient, outcome, 'push');
  };

  const deliverStatusRequest: DeliveryHandler = async (entry) => {
    const doc = getDocument(deps.db, entry.documentId!);
    if (!doc) return { result: 'failed', code: 'GW_ERR_SEOS_DOCUMENT_NOT_FOUND', detail: entry.documentId ?? '' };
    const target = endpointOf(entry.destination);
    if ('result' in target) return target;
    const docId: DocumentId = { documentGuid: doc.documentGuid, ...(doc.ourNumber && doc.ourDate ? { number: { docNumber: doc.ourNumber, docDate: doc.ourDate } } : {}) };
    // A fresh message each attempt: a status request changes nothing, so it need not be byte-identical.
    const message = buildStatusRequest({ sender: deps.self, recipient: participantOf(target.recipient) }, docId);
    const bytes = await signMessageAsync(message, deps.identity, { profile: profileFor(target.recipient.guid) });
    const outcome = await deps.submit(target.url, bytes, { messageGuid: message.header.messageGuid, documentGuid: doc.documentGuid, verifyReply: replyVerifier(target.recipient) });
    return settleSubmit(entry, doc, target.recipient, outcome, 'status-request', { message, bytes });
  };

  function endpointOf(guid: string): { url: string; recipient: RecipientInfo } | DeliveryOutcome {
    const recipient = deps.lookupParticipant(guid);
    if (!recipient) return { result: 'failed', code: 'GW_ERR_PARTICIPANT_NOT_FOUND', detail: guid };
    // Inactive or without an endpoint may be temporary (a registry change): retried, not burned at once.
    if (recipient.status !== 'Active') return { result: 'retry', code: 'GW_ERR_PARTICIPANT_INACTIVE', detail: recipient.status, transport: false };
    if (!recipient.endpointUrl) return { result: 'retry', code: 'GW_ERR_PARTICIPANT_NO_ENDPOINT', detail: guid, transport: false };
    return { url: recipient.endpointUrl, recipient };
  }

  /** A reply must be signed by the certificate the peer is registered with. */
  function replyVerifier(recipient: RecipientInfo): (reply: Buffer) => VerifiedMessage {
    return (reply) => {
      const verified = verifySignedMessage(reply);
      const serial = verified.signature.signer.serialHex.replace(/^0+/, '').toUpperCase();
      if (!recipient.certificateSerialNormalized || serial !== recipient.certificateSerialNormalized) {
        throw new GatewayError('GW_ERR_SIG_CERT_NOT_TRUSTED', `reply signed by serial ${verified.signature.signer.serialHex}`);
      }
      return verified;
    };
  }

  /** Archives the evidence (durable before the settling transaction refers to it) and says how to settle. */
  async function settleSubmit(
    entry: OutboxRow, doc: DocumentRow, recipient: RecipientInfo, outcome: SubmitOutcome,
    kind: 'registration' | 'push' | 'status-request', sent?: { message: SeosMessage; bytes: Buffer },
  ): Promise<DeliveryOutcome> {
    const base = { direction: 'out' as const, counterparty: counterpartyOf(recipient), documentGuid: doc.documentGuid, documentId: doc.id };
    switch (outcome.kind) {
      case 'delivered': {
        // The evidence is the signed inner reply (re-verifiable), not the SOAP envelope around it.
        const replyBytes = outcome.reply?.bytes;
        const sentStored = sent ? deps.archive.stageBuffer(sent.bytes) : undefined;
        const replyStored = replyBytes ? deps.archive.stageBuffer(replyBytes) : undefined;
        await deps.archive.sync([sentStored, replyStored].filter((c): c is StoredContent => c !== undefined));
        return {
          result: 'delivered',
          detail: outcome.status,
          commit: () => {
            const sentSha = sentStored?.sha256 ?? entry.payloadSha256 ?? undefined;
            const replySha = replyStored?.sha256;
            if (sent) insertMessage(deps.db, { direction: 'out', messageGuid: sent.message.header.messageGuid, messageType: sent.message.header.messageType, documentId: doc.id, counterpartyGuid: recipient.guid, wireSha256: sentSha! });
            const messageGuid = sent?.message.header.messageGuid ?? (kind === 'registration' ? doc.messageGuid! : undefined);
            if (messageGuid && replySha) setMessageReply(deps.db, 'out', messageGuid, replySha);
            if (kind !== 'push' && outcome.reply) {
              recordReplyMessage(outcome.reply.message, replySha, doc, recipient);
              applyPeerStatus(doc, outcome.status, outcome.reply.message);
            } else if (kind === 'registration') {
              applyPeerStatus(doc, outcome.status);
            }
            deps.log.append({ ...base, type: 'attempt', messageGuid, outcome: 'delivered', status: outcome.status, wireSha256: sentSha, replySha256: replySha });
          },
        };
      }
      case 'duplicate':
      case 'unverified-reply':
        // Probably delivered (a retry after a lost reply, or a reply we cannot trust): confirm by asking.
        return {
          result: 'delivered', detail: outcome.kind,
          commit: () => {
            deps.log.append({ ...base, type: 'attempt', outcome: outcome.kind, detail: 'confirming with a status request' });
            if (kind !== 'push') deps.schedule(queueStatusRequest(doc, 0));
          },
        };
      case 'rejected': {
        const evidence = outcome.reply?.bytes ?? outcome.replyBytes;
        const replyStored = evidence && evidence.length > 0 ? deps.archive.stageBuffer(evidence) : undefined;
        if (replyStored) await deps.archive.sync([replyStored]);
        return {
          result: 'failed', code: outcome.code, detail: outcome.text?.slice(0, 300),
          commit: () => {
            const replySha = replyStored?.sha256;
            if (kind === 'registration') {
              updateDocument(deps.db, doc.id, { status: 'SENT_FAILED' }, { source: 'peer', detail: outcome.code });
              lifecycle.statusChanged(getDocument(deps.db, doc.id)!, doc.status, 'peer');
            }
            lifecycle.deliveryFailed(entry, outcome.code, outcome.text?.slice(0, 300));
            deps.log.append({ ...base, type: 'attempt', outcome: 'rejected', detail: outcome.code, replySha256: replySha });
          },
        };
      }
      case 'transport-failure':
        return {
          result: 'retry', code: outcome.code, detail: outcome.detail?.slice(0, 300), transport: true,
          commit: () => deps.log.append({ ...base, type: 'attempt', outcome: 'transport-failure', detail: outcome.code }),
        };
    }
  }

  function recordReplyMessage(reply: SeosMessage, replySha: string | undefined, doc: DocumentRow, recipient: RecipientInfo): void {
    if (!replySha) return;
    const exists = statement(deps.db, "SELECT 1 FROM messages WHERE direction = 'in' AND message_guid = ?").get(normalizeGuid(reply.header.messageGuid));
    if (!exists) insertMessage(deps.db, { direction: 'in', messageGuid: reply.header.messageGuid, messageType: reply.header.messageType, documentId: doc.id, counterpartyGuid: recipient.guid, wireSha256: replySha });
  }

  /** A status the peer reported (reply, push or poll) becomes our document's status (StatusPoller asks again while it waits). */
  function applyPeerStatus(doc: DocumentRow, status: DocumentStatus, reply?: SeosMessage): void {
    const state: DocumentState = status === 'DS_ALREADY_RECEIVED' ? 'DS_WAIT_REGISTRATION' : status;
    const body = reply?.body.type === 'MSG_DocumentStatusResponse' ? reply.body : undefined;
    if (status !== 'DS_NOT_FOUND') {
      updateDocument(deps.db, doc.id, {
        status: state,
        theirNumber: body?.docId.number?.docNumber, theirDate: body?.docId.number?.docDate,
        rejectionReason: body?.rejectionReason, expectedCloseDate: body?.expectedCloseDate,
      }, { source: 'peer', detail: status });
    }
    const after = getDocument(deps.db, doc.id);
    if (after) lifecycle.statusChanged(after, doc.status, 'peer');
  }

  /** Exhausted retries: the document failed; the records system is told through the status change. */
  function markDead(entry: OutboxRow, code: string, detail?: string): void {
    deps.db.transaction(() => {
      const before = entry.documentId ? getDocument(deps.db, entry.documentId) : undefined;
      if (entry.kind === 'seos-document' && before) {
        updateDocument(deps.db, before.id, { status: 'SENT_FAILED' }, { source: 'gateway', detail: 'retries exhausted' });
        deps.log.append({ type: 'status-change', direction: 'out', documentId: before.id, documentGuid: before.documentGuid, status: 'SENT_FAILED', outcome: 'dead', actor: 'gateway' });
        lifecycle.statusChanged(getDocument(deps.db, before.id)!, before.status, 'gateway');
      }
      lifecycle.deliveryFailed(entry, code, detail);
    })();
  }

  return {
    sendDocument, reportStatus, requestStatus, markDead,
    handlers: { 'seos-document': deliverDocument, 'seos-status-push': deliverStatusPush, 'seos-status-request': deliverStatusRequest },
    findDocument: (direction: 'in' | 'out', documentGuid: string, counterpartyGuid: string) => findDocument(deps.db, direction, documentGuid, counterpartyGuid),
  };
}

function participantOf(r: RecipientInfo): Participant {
  return { identifier: r.eik, administrativeBodyName: r.name, guid: r.guid };
}

function counterpartyOf(r: RecipientInfo) {
  return { guid: r.guid, eik: r.eik, name: r.name };
}

