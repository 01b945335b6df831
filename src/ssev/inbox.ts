import { randomUUID } from 'node:crypto';
import { isGatewayError } from '../errors/index.ts';
import { insertAttachments, insertDocument, nextReceiptNumber, type DocumentRow } from '../store/documents.ts';
import { durable } from '../store/durability.ts';
import { afterCommit, errorText, logCounterparty, noLogger, type SsevChannelDeps } from './context.ts';
import { claimIncoming, getSsevMessage, incomingSettled, recordStored, recordTakeFailure, unfinishedClaims } from './store.ts';
import type { SsevReceivedMessage } from './types.ts';

/**
 * Receiving over SSEV: messages in the administration's SSEV inbox become inbound documents for the records
 * system, like SEOS ones (direction 'in', status DS_WAIT_REGISTRATION, a receipt number, attachments in the
 * spool), here with channel 'ssev' and the sender profile as counterparty.
 *
 * Each message is taken once, even across restarts and with several gateway processes on one database: its id
 * is claimed (a row in ssev_messages, primary key direction + message id) *before* it is opened or downloaded,
 * and it is stored in the same transaction as its document and delivery-log entry. A take that fails (SSEV down
 * halfway, a blob that will not download) leaves the claim; the next poll retakes it by id, because opening it
 * made it "not new" for SSEV's own lists. A claim of a process that died is taken over after a lease. A message
 * that keeps failing is set aside ('refused') after `maxTakeAttempts`, and one SSEV says is not ours at once.
 */
export function createSsevInbox(deps: SsevChannelDeps) {
  const logger = deps.logger ?? noLogger;
  const owner = randomUUID();
  const leaseMs = deps.claimLeaseMs ?? 10 * 60_000;
  const maxAttempts = deps.maxTakeAttempts ?? 10;
  const inFlight = new Set<number>();
  let polling: Promise<InboxPollResult> | undefined;

  interface InboxPollResult {
    readonly taken: DocumentRow[];
    readonly failed: number;
  }

  /** Lists the inbox (and unfinished claims) and takes every message not taken yet. Not reentrant: a second call joins the first. */
  function pollInbox(): Promise<InboxPollResult> {
    polling ??= (async () => {
      const listed = await deps.client.listInbox({ isKnown: (id) => incomingSettled(deps.db, id) });
      const ids = [...new Set([...unfinishedClaims(deps.db), ...listed])];
      const taken: DocumentRow[] = [];
      let failed = 0;
      for (const id of ids) {
        const result = await takeMessage(id);
        if (result.outcome === 'taken') taken.push(result.document);
        else if (result.outcome === 'failed') failed++;
        // SSEV down: the rest waits for the next poll.
        if (result.outcome === 'failed' && result.code === 'GW_ERR_SSEV_UNAVAILABLE') break;
      }
      if (taken.length > 0 || failed > 0) logger.info({ taken: taken.length, failed }, 'ssev inbox polled');
      return { taken, failed };
    })().finally(() => { polling = undefined; });
    return polling;
  }

  type TakeResult =
    | { outcome: 'taken'; document: DocumentRow }
    | { outcome: 'skipped' }
    | { outcome: 'failed'; code: string };

  /** Takes one message by id (a poll, or a Received push). */
  async function takeMessage(messageId: number): Promise<TakeResult> {
    if (!Number.isInteger(messageId) || messageId <= 0 || inFlight.has(messageId)) return { outcome: 'skipped' };
    inFlight.add(messageId);
    try {
      if (!claimIncoming(deps.db, { messageId, api: deps.client.kind, owner, leaseMs })) return { outcome: 'skipped' };
      let received: SsevReceivedMessage;
      try {
        // Opening counts as delivery in SSEV and drops the message from its "new" lists: the claim must be on disk
        // first (group commit), or a machine crash could forget a message SSEV will not list again.
        await durable(deps.db);
        received = await deps.client.receive(messageId, deps.spool);
      } catch (error) {
        const code = isGatewayError(error) ? error.code : 'GW_ERR_INTERNAL';
        // Not ours or gone (404/403/a SOAP fault about it): logged and set aside, not retried forever.
        const notOurs = code === 'GW_ERR_SSEV_NOT_FOUND' || code === 'GW_ERR_SSEV_REJECTED' || code === 'GW_ERR_SSEV_SOAP_FAULT';
        return failure(messageId, code, error, notOurs);
      }
      let document: DocumentRow;
      try {
        document = store(received);
      } catch (error) {
        return failure(messageId, isGatewayError(error) ? error.code : 'GW_ERR_INTERNAL', error, false);
      }
      afterCommit(() => deps.onReceived?.(document));
      return { outcome: 'taken', document };
    } finally {
      inFlight.delete(messageId);
    }
  }

  function failure(messageId: number, code: string, error: unknown, notOurs: boolean): TakeResult {
    const before = getSsevMessage(deps.db, 'in', messageId)?.attempts ?? 0;
    const refuse = notOurs || before + 1 >= maxAttempts;
    recordTakeFailure(deps.db, messageId, errorText(error), refuse);
    if (refuse) logger.error({ code, messageId, attempts: before + 1 }, 'ssev message set aside (refused); an operator should look at it');
    else logger.warn({ code, messageId, attempts: before + 1 }, 'ssev message not taken; will retry');
    return { outcome: 'failed', code };
  }

  function store(m: SsevReceivedMessage): DocumentRow {
    // The message text travels as the first attachment, so the records system gets it like any file.
    const files = [
      ...(m.text.trim() !== '' ? [{ fileName: 'message.txt', mimeType: 'text/plain', comment: 'SSEV message text', ...deps.spool.putBuffer(Buffer.from(m.text, 'utf8')) }] : []),
      ...m.attachments.map((a) => ({ fileName: a.fileName, mimeType: a.mimeType, comment: null, sha256: a.sha256, size: a.size })),
    ];
    const evidence = deps.archive?.putBuffer(m.evidence);
    const key = m.sender.profileId !== undefined ? `ssev:profile:${m.sender.profileId}` : 'ssev:profile:unknown';
    const rnu = m.rnu && m.rnu.length <= 64 ? m.rnu : null;
    return deps.db.transaction(() => {
      const row = getSsevMessage(deps.db, 'in', m.messageId);
      if (row?.state === 'stored') throw new Error('unreachable: stored twice'); // the claim makes this impossible
      const doc = insertDocument(deps.db, {
        direction: 'in', documentGuid: documentGuidOf(m.messageId), counterpartyGuid: key, counterpartyEik: m.sender.identifier,
        counterpartyName: m.sender.name, channel: 'ssev', status: 'DS_WAIT_REGISTRATION', about: m.subject, rnu,
        theirDate: m.dateSent?.slice(0, 10) ?? null, ourNumber: nextReceiptNumber(deps.db, deps.receiptPrefix ?? 'SSEV-'),
        ourDate: new Date().toISOString().slice(0, 10),
      });
      insertAttachments(deps.db, doc.id, files);
      recordStored(deps.db, m.messageId, {
        documentId: doc.id, ...(m.dateSent ? { dateSent: m.dateSent } : {}), ...(m.dateReceived ? { dateReceived: m.dateReceived } : {}),
        ...(m.rnu ? { ssevRnu: m.rnu.slice(0, 64) } : {}),
      });
      deps.log.append({
        type: 'message-received', direction: 'in', counterparty: logCounterparty(key, m.sender.kind, m.sender.identifier, m.sender.name),
        documentGuid: doc.documentGuid, documentId: doc.id, messageType: 'ssev-message', status: doc.status, outcome: 'document-received',
        ...(evidence ? { wireSha256: evidence.sha256 } : {}), detail: `ssev ${deps.client.kind} message ${m.messageId}, ${files.length} file(s)`,
      });
      // The same webhook (document.received) as a SEOS document, committed with it.
      deps.lifecycle?.documentReceived(doc);
      return doc;
    }).immediate();
  }

  return { pollInbox, takeMessage };
}

/**
 * The DocumentGUID of a received SSEV message, derived from its id: the same message can never become two
 * documents (UNIQUE direction + document_guid + counterparty), and the records system gets a GUID like for SEOS.
 */
export function documentGuidOf(messageId: number): string {
  return `{55e50000-0000-4000-8000-${messageId.toString(16).padStart(12, '0')}}`;
}
