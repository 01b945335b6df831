import { createHash } from 'node:crypto';
import type { DeliveryLogEntry } from '../audit/index.ts';
import { NO_LIFECYCLE, type Lifecycle } from '../app/lifecycle.ts';
import { rnuOfReceivedDocument } from '../ejournal/received-rnu.ts';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import { normalizeSerial, type SigningIdentity } from '../pki/index.ts';
import type { StoredContent } from '../store/content-store.ts';
import type { Db } from '../store/database.ts';
import { durable } from '../store/durability.ts';
import {
  findDocument, findDocumentByMessage, insertAttachments, insertDocument, insertMessage, messageSeen,
  nextReceiptNumber, setMessageReply, updateDocument, type DocumentRow,
} from '../store/documents.ts';
import type { SignatureProfileName } from '../xmldsig/algorithms.ts';
import type { VerifiedSignature } from '../xmldsig/verify.ts';
import { parseXml, type XmlLimits } from '../xml/parse.ts';
import { readRange } from '../xml/skeleton.ts';
import type { XmlDocument } from '../xml/tree.ts';
import { attachmentBytes } from './build.ts';
import { buildErrorMessage, buildStatusResponse } from './builders.ts';
import type { Attachment, DocumentId, DocumentStatus, MessageHeader, Participant, SeosMessage } from './model.ts';
import { parseMessageDocument, parseMessageHeader } from './parse.ts';
import { signMessageAsync } from './sign-message.ts';
import { parseMessageFile, skeletonAttachmentBytes, verifySkeletonSignature, type MessageSkeleton } from './message-file.ts';
import { formatDate, normalizeGuid, sameGuid } from './values.ts';
import { verifyMessageSignature } from './verify-message.ts';

/**
 * Our SEOS endpoint's receiver pipeline, in the protocol's order: safe parse, schema check, recipient is us,
 * sender known and active in the registry, signature valid, signing certificate equal to the sender's
 * registered one, MessageGUID not seen before; then the message is applied and answered. Every failure after
 * the header could be read is answered with a signed MSG_Error in Bulgarian; what cannot be addressed at all
 * gets a SOAP Fault (the transport layer builds it from the thrown error).
 *
 * Nothing is answered before it is committed and on disk: a registration request is stored (document, attachments
 * in the spool, the exact wire bytes in the archive, the delivery-log entry) in one transaction before the reply
 * is signed, and the reply's own record is synced before it is returned. A sender that lost our reply and
 * retries with the same MessageGUID gets the document's current status, not DuplicateMessageGuid: its retry must
 * not turn into a failure.
 */
export interface KnownSender {
  readonly guid: string;
  readonly eik: string;
  readonly name: string;
  readonly status: string;
  /** As the registry gives it (hex, any case or separators). */
  readonly certificateSN: string | null;
}

export interface ContentSink {
  stageBuffer(bytes: Buffer): StoredContent;
  stageChunks(pieces: Iterable<Uint8Array>): StoredContent;
  sync(contents: readonly StoredContent[]): Promise<void>;
  /** Stores a stream (a large attachment decoded from a message file, the file itself); durable when it resolves. */
  putStream(source: AsyncIterable<Uint8Array>): Promise<StoredContent>;
}

/** A large inbound message the endpoint streamed to a file (see api/seos-endpoint.ts); the caller removes the file. */
export interface InboundFile {
  readonly file: string;
}

/** The exact bytes of an inbound message: in memory, or in a file read through its skeleton (seos/message-file.ts). */
type Wire = Buffer | MessageSkeleton;

export interface LogSink {
  append(entry: DeliveryLogEntry): unknown;
}

export interface ReceiverDeps {
  readonly db: Db;
  /** Who we are in SEOS. */
  readonly self: Participant;
  readonly identity: SigningIdentity;
  readonly lookupSender: (guid: string) => KnownSender | undefined;
  /** Attachment spool and evidence archive (content-addressed; staged, then synced before the commit). */
  readonly spool: ContentSink;
  readonly archive: ContentSink;
  readonly log: LogSink;
  readonly signatureProfileFor?: (peerGuid: string) => SignatureProfileName;
  readonly limits?: Partial<XmlLimits>;
  /** Prefix of the receipt numbers we give incoming documents until the records system registers them. */
  readonly receiptPrefix?: string;
  /** Told inside each transaction what changed (webhooks, eJournal). */
  readonly lifecycle?: Lifecycle;
}

export interface ReceiverResult {
  /** The signed reply for SubmitResult, or null for the empty reply. */
  readonly reply: Buffer | null;
  /** What happened, for the operational log (no personal data). */
  readonly outcome: string;
}

/** Errors of our own storage: the sender should retry later (HTTP 503), not be told its message is wrong. */
const OUR_TROUBLE = new Set(['GW_ERR_INTERNAL', 'GW_ERR_STORE_IO']);

export function createSeosReceiver(deps: ReceiverDeps) {
  const profileFor = deps.signatureProfileFor ?? (() => 'rsa-sha256' as const);
  const lifecycle = deps.lifecycle ?? NO_LIFECYCLE;

  /**
   * Handles the exact bytes of one inner SEOS message. Throws only when no MSG_Error can be addressed (or on our
   * own trouble). Every step that writes follows one order: files staged, their fsync awaited (off the event
   * loop), the transaction that refers to them committed, and the WAL synced before the reply is returned, so
   * concurrent messages share fsyncs instead of blocking the process one after another.
   */
  async function receive(input: Buffer | InboundFile): Promise<ReceiverResult> {
    if (!Buffer.isBuffer(input)) return receiveFile(input.file);
    const document = parseXml(input, deps.limits);
    return handle(document, input, () => verifyMessageSignature(document));
  }

  /**
   * receive for a message held in a file (a large one): the same pipeline over its skeleton, whose attachment
   * bodies stay in the file; the digest streams them, the spool gets them decoded slice by slice and the archive
   * gets a copy of the file. Memory does not grow with the attachments.
   */
  async function receiveFile(file: string): Promise<ReceiverResult> {
    const skeleton = await parseMessageFile(file, deps.limits);
    return handle(skeleton.document, skeleton, () => verifySkeletonSignature(skeleton));
  }

  async function handle(document: XmlDocument, wire: Wire, verify: () => VerifiedSignature | Promise<VerifiedSignature>): Promise<ReceiverResult> {
    // Without a usable header there is nobody to address an MSG_Error to: the error propagates (a SOAP Fault).
    const header = parseMessageHeader(document);
    let result: ReceiverResult;
    try {
      const message = parseMessageDocument(document);
      if (!sameGuid(header.recipient.guid, deps.self.guid)) {
        throw new GatewayError('GW_ERR_SEOS_WRONG_RECIPIENT', `Recipient/GUID ${header.recipient.guid}`);
      }
      const sender = deps.lookupSender(normalizeGuid(header.sender.guid));
      if (!sender || sender.status !== 'Active') {
        throw new GatewayError('GW_ERR_SEOS_UNKNOWN_SENDER', `Sender/GUID ${header.sender.guid}${sender ? ` is ${sender.status}` : ' is not in the registry'}`);
      }
      const signature = await verify();
      const registered = sender.certificateSN ? safeNormalize(sender.certificateSN) : undefined;
      if (!registered || normalizeSerial(signature.signer.serialHex) !== registered) {
        throw new GatewayError('GW_ERR_SIG_CERT_NOT_TRUSTED', `signed by serial ${signature.signer.serialHex}, registered ${sender.certificateSN ?? 'none'}`);
      }
      result = await dispatch(message, wire, sender);
    } catch (error) {
      if (!isGatewayError(error) || OUR_TROUBLE.has(error.code)) throw error;
      result = await answerWithError(header, wire, error);
    }
    await durable(deps.db);
    return result;
  }

  async function dispatch(message: SeosMessage, wire: Wire, sender: KnownSender): Promise<ReceiverResult> {
    const { header, body } = message;
    const replay = messageSeen(deps.db, 'in', header.messageGuid);
    switch (body.type) {
      case 'MSG_DocumentRegistrationRequest': {
        const existing = findDocument(deps.db, 'in', body.document.id.documentGuid, sender.guid);
        if (existing) {
          if (!replay) await recordIncoming(message, wire, existing.id, sender, 'duplicate-document');
          return answerDuplicate(header, existing, replay);
        }
        if (replay) throw new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE', header.messageGuid);
        const stored = await storeRegistration(message, wire, sender);
        if (!stored.created) return answerDuplicate(header, stored.row, stored.replay);
        return reply(header, stored.row, 'DS_WAIT_REGISTRATION', 'document-received');
      }
      case 'MSG_DocumentStatusRequest': {
        if (replay) throw new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE', header.messageGuid);
        const existing = findDocument(deps.db, 'in', body.docId.documentGuid, sender.guid);
        await recordIncoming(message, wire, existing?.id ?? null, sender, existing ? 'status-request' : 'status-request-unknown-document');
        if (!existing) return replyNotFound(header, body.docId);
        return reply(header, existing, existing.status as DocumentStatus, 'status-request');
      }
      case 'MSG_DocumentStatusResponse': {
        if (replay) throw new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE', header.messageGuid);
        const ours = findDocument(deps.db, 'out', body.docId.documentGuid, sender.guid);
        if (!ours) throw new GatewayError('GW_ERR_SEOS_DOCUMENT_NOT_FOUND', `DocumentGUID ${body.docId.documentGuid}`);
        const archived = await archiveWire(wire);
        deps.db.transaction(() => {
          if (messageSeen(deps.db, 'in', header.messageGuid)) return; // the same message, applied meanwhile
          const before = getAfter(ours);
          insertMessage(deps.db, messageRecord(message, ours.id, sender, archived.sha256));
          updateDocument(deps.db, ours.id, {
            status: body.status,
            theirNumber: body.docId.number?.docNumber,
            theirDate: body.docId.number?.docDate,
            rejectionReason: body.rejectionReason,
            expectedCloseDate: body.expectedCloseDate,
          }, { source: 'peer', detail: `MSG_DocumentStatusResponse ${header.messageGuid}` });
          deps.log.append(logEntry('message-received', message, sender, archived.sha256, { documentId: ours.id, status: body.status, outcome: 'status-applied' }));
          lifecycle.statusChanged(getAfter(ours), before.status, 'peer');
        })();
        return { reply: null, outcome: 'status-applied' };
      }
      case 'MSG_Error': {
        if (replay) throw new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE', header.messageGuid);
        const ours = body.messageGuid ? findDocumentByMessage(deps.db, 'out', body.messageGuid) : undefined;
        const archived = await archiveWire(wire);
        deps.db.transaction(() => {
          if (messageSeen(deps.db, 'in', header.messageGuid)) return;
          insertMessage(deps.db, messageRecord(message, ours?.id ?? null, sender, archived.sha256));
          if (ours) {
            const before = getAfter(ours);
            updateDocument(deps.db, ours.id, { status: 'SENT_FAILED' }, { source: 'peer', detail: 'MSG_Error' });
            lifecycle.statusChanged(getAfter(ours), before.status, 'peer');
          }
          deps.log.append(logEntry('message-received', message, sender, archived.sha256, { documentId: ours?.id, outcome: ours ? 'error-applied' : 'error-unmatched' }));
        })();
        return { reply: null, outcome: ours ? 'error-applied' : 'error-unmatched' };
      }
    }
  }

  /** The same document again (new MessageGUID, or a retry of the same one): its status, not an error. */
  function answerDuplicate(header: MessageHeader, existing: DocumentRow, replay: boolean): Promise<ReceiverResult> {
    const status: DocumentStatus = existing.status === 'DS_WAIT_REGISTRATION' ? 'DS_ALREADY_RECEIVED' : (existing.status as DocumentStatus);
    return reply(header, existing, status, replay ? 'replayed-message' : 'document-already-received');
  }

  function getAfter(doc: DocumentRow): DocumentRow {
    return findDocument(deps.db, doc.direction, doc.documentGuid, doc.counterpartyGuid) ?? doc;
  }

  /**
   * Stores a new document: its attachments and the exact wire bytes durable first, then one transaction. Another
   * request may have stored the same document while the files were being synced (a sender's retry racing its
   * first try): the transaction looks again and then records this message as a duplicate instead.
   */
  async function storeRegistration(message: SeosMessage, wire: Wire, sender: KnownSender): Promise<{ row: DocumentRow; created: boolean; replay: boolean }> {
    if (message.body.type !== 'MSG_DocumentRegistrationRequest') throw new Error('unreachable');
    const doc = message.body.document;
    // The objects stage* returned are what sync is given: each carries the fsync its stage already started.
    const staged = Buffer.isBuffer(wire) ? (doc.attachments ?? []).map((a) => deps.spool.stageChunks(attachmentBytes(a.content))) : [];
    const files = Buffer.isBuffer(wire)
      ? (doc.attachments ?? []).map((a, i) => ({ fileName: a.fileName, mimeType: a.mimeType, comment: a.comment ?? null, ...staged[i] }))
      : await storeFromFile(wire, doc.attachments ?? []);
    const archived = Buffer.isBuffer(wire) ? deps.archive.stageBuffer(wire) : await archiveWire(wire);
    await Promise.all([deps.spool.sync(staged.length > 0 ? staged : files), deps.archive.sync([archived])]);
    return deps.db.transaction(() => {
      const raced = findDocument(deps.db, 'in', doc.id.documentGuid, sender.guid);
      if (raced) {
        const replay = messageSeen(deps.db, 'in', message.header.messageGuid);
        if (!replay) recordIncomingNow(message, archived.sha256, raced.id, sender, 'duplicate-document');
        return { row: raced, created: false, replay };
      }
      const row = insertDocument(deps.db, {
        direction: 'in', documentGuid: doc.id.documentGuid, counterpartyGuid: sender.guid, counterpartyEik: sender.eik,
        counterpartyName: sender.name, status: 'DS_WAIT_REGISTRATION', kind: doc.kind, about: doc.about ?? null,
        theirNumber: doc.id.number?.docNumber ?? uriNumber(doc.id), theirDate: doc.id.number?.docDate ?? doc.id.uri?.receiptOrSigningDate ?? null,
        ourNumber: nextReceiptNumber(deps.db, deps.receiptPrefix ?? 'SEOS-'), ourDate: formatDate(new Date()),
        messageGuid: message.header.messageGuid,
        // An RNU the sender carried (DocAddData or DocService); a malformed one is logged, never a refusal.
        rnu: rnuOfReceivedDocument(deps.db, deps.log, doc, { documentGuid: doc.id.documentGuid, counterparty: { guid: sender.guid, eik: sender.eik, name: sender.name } }),
      });
      insertAttachments(deps.db, row.id, files);
      insertMessage(deps.db, messageRecord(message, row.id, sender, archived.sha256));
      deps.log.append(logEntry('message-received', message, sender, archived.sha256, { documentId: row.id, documentGuid: row.documentGuid, status: row.status, outcome: 'document-received' }));
      lifecycle.documentReceived(row);
      return { row, created: true, replay: false };
    })();
  }

  async function recordIncoming(message: SeosMessage, wire: Wire, documentId: string | null, sender: KnownSender, outcome: string): Promise<void> {
    const archived = await archiveWire(wire);
    deps.db.transaction(() => {
      if (!messageSeen(deps.db, 'in', message.header.messageGuid)) recordIncomingNow(message, archived.sha256, documentId, sender, outcome);
    })();
  }

  /** The exact wire bytes, durable in the archive: staged from memory, or streamed from the message file. */
  async function archiveWire(wire: Wire): Promise<StoredContent> {
    if (Buffer.isBuffer(wire)) return stageAndSync(deps.archive, wire);
    const stored = await deps.archive.putStream(readRange(wire.file, 0, wire.size));
    if (stored.sha256 !== wire.sha256) throw new GatewayError('GW_ERR_STORE_IO', 'the message file changed while it was handled');
    return stored;
  }

  /** Attachments of a message file, decoded from it into the spool one after another (durable when this resolves). */
  async function storeFromFile(skeleton: MessageSkeleton, attachments: readonly Attachment[]) {
    const files = [];
    for (const a of attachments) {
      const stored = await deps.spool.putStream(skeletonAttachmentBytes(skeleton, a.content));
      files.push({ fileName: a.fileName, mimeType: a.mimeType, comment: a.comment ?? null, ...stored });
    }
    return files;
  }

  function recordIncomingNow(message: SeosMessage, wireSha256: string, documentId: string | null, sender: KnownSender, outcome: string): void {
    insertMessage(deps.db, messageRecord(message, documentId, sender, wireSha256));
    deps.log.append(logEntry('message-received', message, sender, wireSha256, { documentId: documentId ?? undefined, outcome }));
  }

  function reply(to: MessageHeader, doc: DocumentRow, status: DocumentStatus, outcome: string): Promise<ReceiverResult> {
    const docId: DocumentId = { documentGuid: doc.documentGuid };
    if (doc.ourNumber && doc.ourDate) docId.number = { docNumber: doc.ourNumber, docDate: doc.ourDate };
    const response = buildStatusResponse(replyParties(to), {
      docId, status,
      ...(status === 'DS_REJECTED' && doc.rejectionReason ? { rejectionReason: doc.rejectionReason } : {}),
      ...(doc.expectedCloseDate ? { expectedCloseDate: doc.expectedCloseDate } : {}),
    });
    return signAndRecord(to, response, doc.id).then((bytes) => ({ reply: bytes, outcome }));
  }

  async function replyNotFound(to: MessageHeader, docId: DocumentId): Promise<ReceiverResult> {
    const response = buildStatusResponse(replyParties(to), { docId: { documentGuid: docId.documentGuid }, status: 'DS_NOT_FOUND' });
    return { reply: await signAndRecord(to, response, null), outcome: 'status-request-not-found' };
  }

  async function answerWithError(to: MessageHeader, wire: Wire, error: GatewayError): Promise<ReceiverResult> {
    const response = buildErrorMessage(replyParties(to), { description: error.descriptionBg, messageGuid: to.messageGuid, errorType: 'ERR_EXTERNAL' });
    const bytes = await signMessageAsync(response, deps.identity, { profile: profileFor(normalizeGuid(to.sender.guid)) });
    const archived = await stageAndSync(deps.archive, bytes);
    // The refused input is not archived (it may be hostile and large): its hash goes in the detail, not in
    // wireSha256, which always names a file in the archive.
    deps.log.append({
      type: 'message-refused', direction: 'in', counterparty: { guid: normalizeGuid(to.sender.guid), eik: to.sender.identifier, name: to.sender.administrativeBodyName },
      messageGuid: normalizeGuid(to.messageGuid), messageType: to.messageType, outcome: error.code, replySha256: archived.sha256,
      detail: `refused input sha256=${Buffer.isBuffer(wire) ? createHash('sha256').update(wire).digest('hex') : wire.sha256}`,
    });
    return { reply: bytes, outcome: error.code };
  }

  function replyParties(to: MessageHeader) {
    return { sender: deps.self, recipient: to.sender };
  }

  /** Signs a reply; its bytes are durable in the archive and recorded before it may be sent. */
  async function signAndRecord(to: MessageHeader, response: SeosMessage, documentId: string | null): Promise<Buffer> {
    const peer = normalizeGuid(to.sender.guid);
    const bytes = await signMessageAsync(response, deps.identity, { profile: profileFor(peer) });
    const archived = await stageAndSync(deps.archive, bytes);
    deps.db.transaction(() => {
      insertMessage(deps.db, { direction: 'out', messageGuid: response.header.messageGuid, messageType: response.header.messageType, documentId, counterpartyGuid: peer, wireSha256: archived.sha256 });
      setMessageReply(deps.db, 'in', to.messageGuid, archived.sha256);
      deps.log.append({
        type: 'message-sent', direction: 'out', counterparty: { guid: peer, eik: to.sender.identifier, name: to.sender.administrativeBodyName },
        messageGuid: normalizeGuid(response.header.messageGuid), messageType: response.header.messageType, documentId: documentId ?? undefined,
        status: response.body.type === 'MSG_DocumentStatusResponse' ? response.body.status : undefined,
        outcome: 'reply', wireSha256: archived.sha256, detail: `reply to ${normalizeGuid(to.messageGuid)}`,
      });
    })();
    return bytes;
  }

  return { receive, receiveFile };
}

async function stageAndSync(store: ContentSink, bytes: Buffer): Promise<StoredContent> {
  const stored = store.stageBuffer(bytes);
  await store.sync([stored]);
  return stored;
}

function safeNormalize(serial: string): string | undefined {
  try {
    return normalizeSerial(serial);
  } catch {
    return undefined;
  }
}

function uriNumber(id: DocumentId): string | null {
  // The reference reads a DocumentURI as "{RegisterIndex}-{SequenceNumber}".
  if (!id.uri) return null;
  return [id.uri.registerIndex, id.uri.sequenceNumber].filter(Boolean).join('-') || null;
}

function messageRecord(message: SeosMessage, documentId: string | null, sender: KnownSender, wireSha256: string) {
  return {
    direction: 'in' as const, messageGuid: message.header.messageGuid, messageType: message.header.messageType,
    documentId, counterpartyGuid: sender.guid, wireSha256,
  };
}

function logEntry(type: string, message: SeosMessage, sender: KnownSender, wireSha256: string, extra: Partial<DeliveryLogEntry>): DeliveryLogEntry {
  return {
    type, direction: 'in' as const, counterparty: { guid: sender.guid, eik: sender.eik, name: sender.name },
    messageGuid: normalizeGuid(message.header.messageGuid), messageType: message.header.messageType, wireSha256, ...extra,
  };
}
