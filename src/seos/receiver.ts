import { createHash } from 'node:crypto';
import type { DeliveryLogEntry } from '../audit/index.ts';
import { NO_LIFECYCLE, type Lifecycle } from '../app/lifecycle.ts';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import { normalizeSerial, type SigningIdentity } from '../pki/index.ts';
import type { Db } from '../store/database.ts';
import {
  findDocument, findDocumentByMessage, insertAttachments, insertDocument, insertMessage, messageSeen,
  nextReceiptNumber, setMessageReply, updateDocument, type DocumentRow,
} from '../store/documents.ts';
import type { SignatureProfileName } from '../xmldsig/algorithms.ts';
import { parseXml, type XmlLimits } from '../xml/parse.ts';
import { attachmentBytes } from './build.ts';
import { buildErrorMessage, buildStatusResponse } from './builders.ts';
import type { DocumentId, DocumentStatus, MessageHeader, Participant, SeosMessage } from './model.ts';
import { parseMessageDocument, parseMessageHeader } from './parse.ts';
import { signMessage } from './sign-message.ts';
import { formatDate, normalizeGuid, sameGuid } from './values.ts';
import { verifyMessageSignature } from './verify-message.ts';

/**
 * Our SEOS endpoint's receiver pipeline, in the protocol's order: safe parse, schema check, recipient is us,
 * sender known and active in the registry, signature valid, signing certificate equal to the sender's
 * registered one, MessageGUID not seen before; then the message is applied and answered. Every failure after
 * the header could be read is answered with a signed MSG_Error in Bulgarian; what cannot be addressed at all
 * gets a SOAP Fault (the transport layer builds it from the thrown error).
 *
 * Nothing is answered before it is committed: a registration request is stored (document, attachments in the
 * spool, the exact wire bytes in the archive, the delivery-log entry) in one transaction before the reply is
 * signed. A sender that lost our reply and retries with the same MessageGUID gets the document's current
 * status, not DuplicateMessageGuid: its retry must not turn into a failure.
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
  putBuffer(bytes: Buffer): { sha256: string; size: number };
  putChunksSync(pieces: Iterable<Uint8Array>): { sha256: string; size: number };
}

export interface LogSink {
  append(entry: DeliveryLogEntry): unknown;
}

export interface ReceiverDeps {
  readonly db: Db;
  /** Who we are in SEOS. */
  readonly self: Participant;
  readonly identity: SigningIdentity;
  readonly lookupSender: (guid: string) => KnownSender | undefined;
  /** Attachment spool and evidence archive (content-addressed, fsynced). */
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

export function createSeosReceiver(deps: ReceiverDeps) {
  const profileFor = deps.signatureProfileFor ?? (() => 'rsa-sha256' as const);
  const lifecycle = deps.lifecycle ?? NO_LIFECYCLE;

  /** Handles the exact bytes of one inner SEOS message. Throws only when no MSG_Error can be addressed. */
  function receive(wire: Buffer): ReceiverResult {
    const document = parseXml(wire, deps.limits);
    // Without a usable header there is nobody to address an MSG_Error to: the error propagates (a SOAP Fault).
    const header = parseMessageHeader(document);
    try {
      const message = parseMessageDocument(document);
      if (!sameGuid(header.recipient.guid, deps.self.guid)) {
        throw new GatewayError('GW_ERR_SEOS_WRONG_RECIPIENT', `Recipient/GUID ${header.recipient.guid}`);
      }
      const sender = deps.lookupSender(normalizeGuid(header.sender.guid));
      if (!sender || sender.status !== 'Active') {
        throw new GatewayError('GW_ERR_SEOS_UNKNOWN_SENDER', `Sender/GUID ${header.sender.guid}${sender ? ` is ${sender.status}` : ' is not in the registry'}`);
      }
      const signature = verifyMessageSignature(document);
      const registered = sender.certificateSN ? safeNormalize(sender.certificateSN) : undefined;
      if (!registered || normalizeSerial(signature.signer.serialHex) !== registered) {
        throw new GatewayError('GW_ERR_SIG_CERT_NOT_TRUSTED', `signed by serial ${signature.signer.serialHex}, registered ${sender.certificateSN ?? 'none'}`);
      }
      return dispatch(message, wire, sender);
    } catch (error) {
      if (!isGatewayError(error) || error.code === 'GW_ERR_INTERNAL') throw error;
      return answerWithError(header, wire, error);
    }
  }

  function dispatch(message: SeosMessage, wire: Buffer, sender: KnownSender): ReceiverResult {
    const { header, body } = message;
    const replay = messageSeen(deps.db, 'in', header.messageGuid);
    switch (body.type) {
      case 'MSG_DocumentRegistrationRequest': {
        const existing = findDocument(deps.db, 'in', body.document.id.documentGuid, sender.guid);
        if (existing) {
          // Same document again (new MessageGUID, or a retry of the same one): its status, not an error.
          const status: DocumentStatus = existing.status === 'DS_WAIT_REGISTRATION' ? 'DS_ALREADY_RECEIVED' : (existing.status as DocumentStatus);
          if (!replay) recordIncoming(message, wire, existing.id, sender, 'duplicate-document');
          return reply(header, existing, status, replay ? 'replayed-message' : 'document-already-received');
        }
        if (replay) throw new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE', header.messageGuid);
        const stored = storeRegistration(message, wire, sender);
        return reply(header, stored, 'DS_WAIT_REGISTRATION', 'document-received');
      }
      case 'MSG_DocumentStatusRequest': {
        if (replay) throw new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE', header.messageGuid);
        const existing = findDocument(deps.db, 'in', body.docId.documentGuid, sender.guid);
        recordIncoming(message, wire, existing?.id ?? null, sender, existing ? 'status-request' : 'status-request-unknown-document');
        if (!existing) return replyNotFound(header, body.docId);
        return reply(header, existing, existing.status as DocumentStatus, 'status-request');
      }
      case 'MSG_DocumentStatusResponse': {
        if (replay) throw new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE', header.messageGuid);
        const ours = findDocument(deps.db, 'out', body.docId.documentGuid, sender.guid);
        if (!ours) throw new GatewayError('GW_ERR_SEOS_DOCUMENT_NOT_FOUND', `DocumentGUID ${body.docId.documentGuid}`);
        deps.db.transaction(() => {
          const archived = deps.archive.putBuffer(wire);
          insertMessage(deps.db, messageRecord(message, ours.id, sender, archived.sha256));
          updateDocument(deps.db, ours.id, {
            status: body.status,
            theirNumber: body.docId.number?.docNumber,
            theirDate: body.docId.number?.docDate,
            rejectionReason: body.rejectionReason,
            expectedCloseDate: body.expectedCloseDate,
          }, { source: 'peer', detail: `MSG_DocumentStatusResponse ${header.messageGuid}` });
          deps.log.append(logEntry('message-received', message, sender, archived.sha256, { documentId: ours.id, status: body.status, outcome: 'status-applied' }));
          const after = findDocument(deps.db, 'out', body.docId.documentGuid, sender.guid)!;
          lifecycle.statusChanged(after, ours.status, 'peer');
        })();
        return { reply: null, outcome: 'status-applied' };
      }
      case 'MSG_Error': {
        if (replay) throw new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE', header.messageGuid);
        const ours = body.messageGuid ? findDocumentByMessage(deps.db, 'out', body.messageGuid) : undefined;
        deps.db.transaction(() => {
          const archived = deps.archive.putBuffer(wire);
          insertMessage(deps.db, messageRecord(message, ours?.id ?? null, sender, archived.sha256));
          if (ours) {
            updateDocument(deps.db, ours.id, { status: 'SENT_FAILED' }, { source: 'peer', detail: 'MSG_Error' });
            lifecycle.statusChanged(getAfter(ours), ours.status, 'peer');
          }
          deps.log.append(logEntry('message-received', message, sender, archived.sha256, { documentId: ours?.id, outcome: ours ? 'error-applied' : 'error-unmatched' }));
        })();
        return { reply: null, outcome: ours ? 'error-applied' : 'error-unmatched' };
      }
    }
  }

  function getAfter(doc: DocumentRow): DocumentRow {
    return findDocument(deps.db, doc.direction, doc.documentGuid, doc.counterpartyGuid) ?? doc;
  }

  function storeRegistration(message: SeosMessage, wire: Buffer, sender: KnownSender): DocumentRow {
    if (message.body.type !== 'MSG_DocumentRegistrationRequest') throw new Error('unreachable');
    const doc = message.body.document;
    // Files first (each fsynced); the transaction that refers to them commits after. A crash in between
    // leaves only an unreferenced file, never a reference to a missing one.
    const files = (doc.attachments ?? []).map((a) => ({
      fileName: a.fileName, mimeType: a.mimeType, comment: a.comment ?? null,
      ...deps.spool.putChunksSync(attachmentBytes(a.content)),
    }));
    const archived = deps.archive.putBuffer(wire);
    return deps.db.transaction(() => {
      const row = insertDocument(deps.db, {
        direction: 'in', documentGuid: doc.id.documentGuid, counterpartyGuid: sender.guid, counterpartyEik: sender.eik,
        counterpartyName: sender.name, status: 'DS_WAIT_REGISTRATION', kind: doc.kind, about: doc.about ?? null,
        theirNumber: doc.id.number?.docNumber ?? uriNumber(doc.id), theirDate: doc.id.number?.docDate ?? doc.id.uri?.receiptOrSigningDate ?? null,
        ourNumber: nextReceiptNumber(deps.db, deps.receiptPrefix ?? 'SEOS-'), ourDate: formatDate(new Date()),
        messageGuid: message.header.messageGuid,
      });
      insertAttachments(deps.db, row.id, files);
      insertMessage(deps.db, messageRecord(message, row.id, sender, archived.sha256));
      deps.log.append(logEntry('message-received', message, sender, archived.sha256, { documentId: row.id, documentGuid: row.documentGuid, status: row.status, outcome: 'document-received' }));
      lifecycle.documentReceived(row);
      return row;
    })();
  }

  function recordIncoming(message: SeosMessage, wire: Buffer, documentId: string | null, sender: KnownSender, outcome: string): void {
    const archived = deps.archive.putBuffer(wire);
    deps.db.transaction(() => {
      insertMessage(deps.db, messageRecord(message, documentId, sender, archived.sha256));
      deps.log.append(logEntry('message-received', message, sender, archived.sha256, { documentId: documentId ?? undefined, outcome }));
    })();
  }

  function reply(to: MessageHeader, doc: DocumentRow, status: DocumentStatus, outcome: string): ReceiverResult {
    const docId: DocumentId = { documentGuid: doc.documentGuid };
    if (doc.ourNumber && doc.ourDate) docId.number = { docNumber: doc.ourNumber, docDate: doc.ourDate };
    const response = buildStatusResponse(replyParties(to), {
      docId, status,
      ...(status === 'DS_REJECTED' && doc.rejectionReason ? { rejectionReason: doc.rejectionReason } : {}),
      ...(doc.expectedCloseDate ? { expectedCloseDate: doc.expectedCloseDate } : {}),
    });
    return { reply: signAndRecord(to, response, doc.id), outcome };
  }

  function replyNotFound(to: MessageHeader, docId: DocumentId): ReceiverResult {
    const response = buildStatusResponse(replyParties(to), { docId: { documentGuid: docId.documentGuid }, status: 'DS_NOT_FOUND' });
    return { reply: signAndRecord(to, response, null), outcome: 'status-request-not-found' };
  }

  function answerWithError(to: MessageHeader, wire: Buffer, error: GatewayError): ReceiverResult {
    const response = buildErrorMessage(replyParties(to), { description: error.descriptionBg, messageGuid: to.messageGuid, errorType: 'ERR_EXTERNAL' });
    const bytes = signMessage(response, deps.identity, { profile: profileFor(normalizeGuid(to.sender.guid)) });
    const archived = deps.archive.putBuffer(bytes);
    // The refused input is not archived (it may be hostile and large): its hash goes in the detail, not in
    // wireSha256, which always names a file in the archive.
    deps.log.append({
      type: 'message-refused', direction: 'in', counterparty: { guid: normalizeGuid(to.sender.guid), eik: to.sender.identifier, name: to.sender.administrativeBodyName },
      messageGuid: normalizeGuid(to.messageGuid), messageType: to.messageType, outcome: error.code, replySha256: archived.sha256,
      detail: `refused input sha256=${createHash('sha256').update(wire).digest('hex')}`,
    });
    return { reply: bytes, outcome: error.code };
  }

  function replyParties(to: MessageHeader) {
    return { sender: deps.self, recipient: to.sender };
  }

  function signAndRecord(to: MessageHeader, response: SeosMessage, documentId: string | null): Buffer {
    const peer = normalizeGuid(to.sender.guid);
    const bytes = signMessage(response, deps.identity, { profile: profileFor(peer) });
    const archived = deps.archive.putBuffer(bytes);
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

  return { receive };
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
