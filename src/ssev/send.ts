import type { DeliveryHandler, DeliveryOutcome } from '../delivery/engine.ts';
import { addOutboxEntry, type OutboxRow } from '../delivery/outbox.ts';
import { GatewayError, isGatewayError, type ErrorCode } from '../errors/index.ts';
import { newGuid } from '../seos/values.ts';
import { findDocument, getDocument, insertAttachments, insertDocument, updateDocument, type DocumentRow } from '../store/documents.ts';
import {
  OUTBOX_KIND, SSEV_DESTINATION, afterCommit, errorText, logCounterparty, noLogger, recipientKey, type SsevChannelDeps,
} from './context.ts';
import { checkLimits, resolveLimits } from './limits.ts';
import { cacheProfile, cachedProfile, recordSent, sentMessageOfDocument, setChannelReason } from './store.ts';
import type { SsevAddress, SsevProfile, SsevSubjectKind } from './types.ts';

/**
 * Sending over SSEV: `sendViaSsev` checks the limits, spools the files and commits the document (channel
 * 'ssev', status PENDING), its attachments, its outbox row (kind 'ssev-message') and the delivery-log entry in
 * one transaction; the delivery engine then runs `deliverSsevMessage` with the same retry, destination-health
 * and dead-letter machinery as SEOS. The handler says what happened as a typed outcome:
 *   - SSEV accepted the message → delivered (the document becomes SENT, its SSEV message id is recorded);
 *   - SSEV unreachable, timed out or 5xx → retry (counts against SSEV's health); credentials refused → retry;
 *   - refused (4xx, SOAP Fault, no profile any more, a malformed answer) → failed, the document SENT_FAILED.
 */
export interface SsevAttachmentInput {
  readonly fileName: string;
  readonly mimeType: string;
  /** The bytes, or a file already in the spool. */
  readonly content?: Buffer;
  readonly sha256?: string;
  /** Kept on the document's attachment row (SSEV itself has no per-file comment). */
  readonly comment?: string;
}

export interface SsevSendInput {
  /** Who receives it, as routing found it (chooseChannel's `ssev`), or at least kind + identifier + name. */
  readonly recipient: SsevProfile;
  readonly subject: string;
  readonly text?: string;
  readonly attachments?: readonly SsevAttachmentInput[];
  readonly externalId?: string;
  readonly idempotencyKey?: string;
  /** The records system's DocumentGUID, when it gave one (else a new one). */
  readonly documentGuid?: string;
  readonly rnu?: string;
  /** Our registration number and date of the document. */
  readonly regNumber?: string;
  readonly regDate?: string;
  /** Document kind (Писмо, Заповед, ...), kept on the document. */
  readonly kind?: string;
  /** Why SSEV (routing's reason, JSON), kept on the document. */
  readonly channelReason?: string;
}

export interface QueuedSsevDocument {
  readonly documentId: string;
  readonly documentGuid: string;
  /** False when an earlier request with the same externalId or Idempotency-Key is answered again. */
  readonly created: boolean;
}

interface Payload {
  v: 1;
  recipient: { kind: SsevSubjectKind; identifier: string; name: string; profileId?: number };
  subject: string;
  text?: string;
  rnu?: string;
  regNumber?: string;
  attachments: Array<{ fileName: string; mimeType: string; sha256: string; size: number }>;
}

const KINDS: readonly SsevSubjectKind[] = ['person', 'legal-entity', 'institution'];

export function createSsevSender(deps: SsevChannelDeps) {
  const logger = deps.logger ?? noLogger;
  const limits = resolveLimits(deps.client.kind, deps.limits);
  const statusPollIntervalMs = deps.statusPollIntervalMs ?? 15 * 60_000;
  const profileCacheMs = deps.profileCacheMs ?? 24 * 3600_000;

  function sizes(input: SsevSendInput) {
    return (input.attachments ?? []).map((a, i) => {
      if (a.content !== undefined) return { fileName: a.fileName, mimeType: a.mimeType, size: a.content.length };
      if (a.sha256 !== undefined && deps.spool.has(a.sha256)) return { fileName: a.fileName, mimeType: a.mimeType, size: deps.spool.read(a.sha256).length };
      throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', `attachment ${i + 1}: neither content nor a spooled file`);
    });
  }

  /** Throws the coded error the records system should see; changes nothing. */
  function check(input: SsevSendInput): void {
    const r = input.recipient;
    if (!r || !KINDS.includes(r.kind) || typeof r.identifier !== 'string' || !/^(\d{9}|\d{10}|\d{13})$/.test(r.identifier)) {
      throw new GatewayError('GW_ERR_SSEV_INVALID_RECIPIENT', 'an SSEV recipient needs a kind and an ЕГН/ЛНЧ or ЕИК/БУЛСТАТ');
    }
    checkLimits({ subject: input.subject, text: input.text, rnu: input.rnu, attachments: sizes(input) }, limits, deps.client.kind);
  }

  function findRepeat(input: SsevSendInput): DocumentRow | undefined {
    for (const [column, value] of [['external_id', input.externalId], ['idempotency_key', input.idempotencyKey]] as const) {
      if (!value) continue;
      const row = deps.db.prepare(`SELECT id FROM documents WHERE ${column} = ?`).get(value) as { id: string } | undefined;
      if (row) return getDocument(deps.db, row.id);
    }
    return undefined;
  }

  function sendViaSsev(input: SsevSendInput): QueuedSsevDocument {
    const repeat = findRepeat(input);
    if (repeat) return { documentId: repeat.id, documentGuid: repeat.documentGuid, created: false };
    check(input);
    // Files first (each fsynced); the transaction that refers to them commits after.
    const files = (input.attachments ?? []).map((a) => {
      const stored = a.content !== undefined ? deps.spool.putBuffer(a.content) : { sha256: a.sha256!, size: deps.spool.read(a.sha256!).length };
      return { fileName: a.fileName, mimeType: a.mimeType, comment: a.comment ?? null, ...stored };
    });
    const r = input.recipient;
    const payload: Payload = {
      v: 1,
      recipient: { kind: r.kind, identifier: r.identifier, name: r.name, ...(r.profileId !== undefined ? { profileId: r.profileId } : {}) },
      subject: input.subject,
      ...(input.text ? { text: input.text } : {}), ...(input.rnu ? { rnu: input.rnu } : {}), ...(input.regNumber ? { regNumber: input.regNumber } : {}),
      attachments: files.map(({ fileName, mimeType, sha256, size }) => ({ fileName, mimeType, sha256, size })),
    };
    const key = recipientKey(r.kind, r.identifier);
    const documentGuid = input.documentGuid ?? newGuid();
    if (input.documentGuid && findDocument(deps.db, 'out', documentGuid, key)) {
      throw new GatewayError('GW_ERR_DOCUMENT_EXISTS', `DocumentGUID ${documentGuid} was already sent to this SSEV recipient`);
    }
    let entry: OutboxRow | undefined;
    const row = deps.db.transaction(() => {
      const again = findRepeat(input);
      if (again) return again;
      const doc = insertDocument(deps.db, {
        direction: 'out', documentGuid, counterpartyGuid: key, counterpartyEik: r.identifier, counterpartyName: r.name,
        channel: 'ssev', status: 'PENDING', kind: input.kind ?? null, about: input.subject, externalId: input.externalId ?? null,
        idempotencyKey: input.idempotencyKey ?? null, rnu: input.rnu ?? null, ourNumber: input.regNumber ?? null, ourDate: input.regDate ?? null,
      });
      if (input.channelReason) setChannelReason(deps.db, doc.id, input.channelReason);
      insertAttachments(deps.db, doc.id, files);
      entry = addOutboxEntry(deps.db, { kind: OUTBOX_KIND, destination: SSEV_DESTINATION, documentId: doc.id, payload });
      deps.log.append({
        type: 'message-queued', direction: 'out', counterparty: logCounterparty(key, r.kind, r.identifier, r.name),
        documentGuid: doc.documentGuid, documentId: doc.id, messageType: OUTBOX_KIND, status: 'PENDING', actor: 'records-system',
        detail: `ssev ${deps.client.kind}, ${files.length} attachment(s)`,
      });
      return doc;
    }).immediate();
    if (!entry) return { documentId: row.id, documentGuid: row.documentGuid, created: false };
    deps.schedule(entry);
    return { documentId: row.id, documentGuid: row.documentGuid, created: true };
  }

  /** The recipient's profile as SSEV knows it now: from the cache, else looked up (and cached). */
  async function resolveProfile(address: SsevAddress & { kind: SsevSubjectKind }): Promise<SsevProfile | null> {
    const cached = cachedProfile(deps.db, deps.client.kind, address.identifier, address.kind, profileCacheMs);
    if (cached && (deps.client.kind === 'soap' || cached.profileId !== undefined)) return cached;
    const found = await deps.client.lookup(address);
    if (found) cacheProfile(deps.db, deps.client.kind, found);
    return found;
  }

  /** For routing: a lookup with the cache in front, any kind this identifier may be. */
  async function lookupProfile(address: SsevAddress): Promise<SsevProfile | null> {
    if (address.kind) return resolveProfile({ ...address, kind: address.kind });
    const found = await deps.client.lookup(address);
    if (found) cacheProfile(deps.db, deps.client.kind, found);
    return found;
  }

  const deliverSsevMessage: DeliveryHandler = async (entry) => {
    const doc = entry.documentId ? getDocument(deps.db, entry.documentId) : undefined;
    if (!doc) return { result: 'failed', code: 'GW_ERR_SEOS_DOCUMENT_NOT_FOUND', detail: entry.documentId ?? '' };
    const already = sentMessageOfDocument(deps.db, doc.id);
    if (already) return { result: 'delivered', detail: `already sent as SSEV message ${already.messageId}` };
    let payload: Payload;
    try {
      payload = JSON.parse(entry.payloadJson ?? '') as Payload;
      if (payload.v !== 1) throw new Error('version');
    } catch {
      return failed(entry, doc, 'GW_ERR_INTERNAL', 'the outbox payload is unreadable');
    }
    const counterparty = logCounterparty(doc.counterpartyGuid, payload.recipient.kind, payload.recipient.identifier, payload.recipient.name);
    try {
      const profile = await resolveProfile({ identifier: payload.recipient.identifier, kind: payload.recipient.kind });
      if (!profile) throw new GatewayError('GW_ERR_SSEV_NO_PROFILE', `${payload.recipient.kind} profile no longer found`);
      const attachments = payload.attachments.map((a) => ({ fileName: a.fileName, mimeType: a.mimeType, bytes: deps.spool.read(a.sha256) }));
      const messageId = await deps.client.send({
        recipient: profile, subject: payload.subject, attachments,
        ...(payload.text ? { text: payload.text } : {}), ...(payload.rnu ? { rnu: payload.rnu } : {}), ...(payload.regNumber ? { regNumber: payload.regNumber } : {}),
      });
      return {
        result: 'delivered', detail: `SSEV message ${messageId}`,
        commit: () => {
          recordSent(deps.db, { messageId, api: deps.client.kind, documentId: doc.id, nextCheckAt: new Date(Date.now() + statusPollIntervalMs) });
          const before = getDocument(deps.db, doc.id)!.status;
          updateDocument(deps.db, doc.id, { status: 'SENT' }, { source: 'peer', detail: `SSEV message ${messageId}` });
          deps.lifecycle?.statusChanged(getDocument(deps.db, doc.id)!, before, 'peer');
          deps.log.append({
            type: 'attempt', direction: 'out', counterparty, documentGuid: doc.documentGuid, documentId: doc.id, messageType: OUTBOX_KIND,
            outcome: 'delivered', status: 'SENT', detail: `ssev ${deps.client.kind} message ${messageId}`,
          });
          afterCommit(() => notify(doc.id, 'SENT'));
        },
      };
    } catch (error) {
      const code: ErrorCode = isGatewayError(error) ? error.code : 'GW_ERR_INTERNAL';
      const detail = errorText(error);
      if (code === 'GW_ERR_SSEV_UNAVAILABLE' || code === 'GW_ERR_SSEV_AUTH' || code === 'GW_ERR_INTERNAL' || code === 'GW_ERR_STORE_IO') {
        // SSEV down (transport) or our credentials refused (an operator fixes them): try again later.
        logger.warn({ code, documentId: doc.id }, 'ssev send not done; will retry');
        return {
          result: 'retry', code, detail, transport: code === 'GW_ERR_SSEV_UNAVAILABLE',
          commit: () => deps.log.append({ type: 'attempt', direction: 'out', counterparty, documentId: doc.id, messageType: OUTBOX_KIND, outcome: 'transport-failure', detail: code }),
        };
      }
      return failed(entry, doc, code, detail, counterparty);
    }
  };

  function failed(entry: OutboxRow, doc: DocumentRow, code: ErrorCode, detail: string, counterparty?: ReturnType<typeof logCounterparty>): DeliveryOutcome {
    logger.warn({ code, documentId: doc.id }, 'ssev send refused');
    return {
      result: 'failed', code, detail,
      commit: () => {
        const before = getDocument(deps.db, doc.id)!.status;
        updateDocument(deps.db, doc.id, { status: 'SENT_FAILED' }, { source: 'peer', detail: code });
        // Told here, in the engine's commit (the composition root leaves ssev-* kinds out of its own "failed" event).
        deps.lifecycle?.statusChanged(getDocument(deps.db, doc.id)!, before, 'peer');
        deps.lifecycle?.deliveryFailed(entry, code, detail);
        deps.log.append({ type: 'attempt', direction: 'out', counterparty, documentId: doc.id, messageType: OUTBOX_KIND, outcome: 'rejected', status: 'SENT_FAILED', detail: code });
        afterCommit(() => notify(doc.id, 'SENT_FAILED'));
      },
    };
  }

  /**
   * Retries exhausted (the engine's dead event): the document failed; the records system hears it as a status
   * change and a failed delivery, told to the lifecycle in the same transaction.
   */
  function markDead(entry: OutboxRow, code: string = 'GW_ERR_SSEV_UNAVAILABLE', detail?: string): void {
    if (entry.kind !== OUTBOX_KIND || !entry.documentId) return;
    deps.db.transaction(() => {
      const before = getDocument(deps.db, entry.documentId!);
      updateDocument(deps.db, entry.documentId!, { status: 'SENT_FAILED' }, { source: 'gateway', detail: 'retries exhausted' });
      deps.log.append({ type: 'status-change', direction: 'out', documentId: entry.documentId!, messageType: OUTBOX_KIND, status: 'SENT_FAILED', outcome: 'dead', actor: 'gateway' });
      if (before) deps.lifecycle?.statusChanged(getDocument(deps.db, entry.documentId!)!, before.status, 'gateway');
      deps.lifecycle?.deliveryFailed(entry, code, detail);
    })();
    notify(entry.documentId, 'SENT_FAILED');
  }

  function notify(documentId: string, expected: string): void {
    const after = getDocument(deps.db, documentId);
    if (after && after.status === expected) deps.onStatusChanged?.(after);
  }

  return { sendViaSsev, checkLimits: check, deliverSsevMessage, markDead, lookupProfile, limits };
}
