import { isGatewayError } from '../errors/index.ts';
import { getDocument, updateDocument, type DocumentRow } from '../store/documents.ts';
import { OUTBOX_KIND, afterCommit, errorText, noLogger, type SsevChannelDeps } from './context.ts';
import { dueStatusChecks, getSsevMessage, recordDelivered, recordStatusCheck } from './store.ts';
import type { SsevSentStatus } from './types.ts';

/**
 * Delivery of what we sent. In SSEV a message is delivered when the recipient opens it (REST: the recipient's
 * `dateReceived` in /messages/{id}/view; SOAP: `DateReceived` of GetSentMessageStatus). Two ways lead here:
 * the status poller asks about every SENT message on a schedule, and a `Delivered` push notification asks about
 * one message at once. Either way the gateway acts only on SSEV's own answer, never on the push body alone (a
 * push is unauthenticated).
 *
 * Delivered means, in one transaction: the SSEV row 'delivered', the document DELIVERED (status history), the
 * answer archived as evidence, a delivery-log entry. Then `onDelivered(document)`, which the composition root
 * connects to the webhook and, when the document has an RNU, the eJournal DELIVERED event.
 */
export type DeliveryCheck = 'delivered' | 'already-delivered' | 'pending' | 'unknown';

export function createSsevStatusPoller(deps: SsevChannelDeps) {
  const logger = deps.logger ?? noLogger;
  const interval = deps.statusPollIntervalMs ?? 15 * 60_000;
  const maxAge = deps.statusPollMaxAgeMs ?? 90 * 24 * 3600_000;

  function markDelivered(messageId: number, status: SsevSentStatus): DocumentRow | undefined {
    const evidence = deps.archive?.putBuffer(status.evidence);
    const doc = deps.db.transaction(() => {
      const row = getSsevMessage(deps.db, 'out', messageId);
      if (!row || row.state === 'delivered' || !row.documentId) return undefined;
      recordDelivered(deps.db, messageId, {
        ...(status.dateReceived ? { dateReceived: status.dateReceived } : {}), ...(status.dateSent ? { dateSent: status.dateSent } : {}),
        ...(status.rnu ? { ssevRnu: status.rnu } : {}),
      });
      const before = getDocument(deps.db, row.documentId)?.status ?? 'SENT';
      updateDocument(deps.db, row.documentId, { status: 'DELIVERED' }, { source: 'peer', detail: `SSEV dateReceived ${status.dateReceived ?? '(set)'}` });
      const d = getDocument(deps.db, row.documentId)!;
      // Webhooks (document.status) and eJournal (DELIVERED when the document has an RNU) commit with the change.
      deps.lifecycle?.statusChanged(d, before, 'peer');
      deps.log.append({
        type: 'status-change', direction: 'out', counterparty: { guid: d.counterpartyGuid }, documentGuid: d.documentGuid, documentId: d.id,
        messageType: OUTBOX_KIND, status: 'DELIVERED', actor: 'peer', ...(evidence ? { replySha256: evidence.sha256 } : {}),
        detail: `ssev message ${messageId} opened by the recipient`,
      });
      return d;
    }).immediate();
    if (doc) {
      afterCommit(() => {
        deps.onDelivered?.(doc);
        deps.onStatusChanged?.(doc);
      });
    }
    return doc;
  }

  /** Asks SSEV about one message we sent (a Delivered push, or an operator). */
  async function checkDelivered(messageId: number): Promise<DeliveryCheck> {
    const row = getSsevMessage(deps.db, 'out', messageId);
    if (!row) return 'unknown';
    if (row.state === 'delivered') return 'already-delivered';
    const status = await deps.client.sentStatus(messageId);
    if (!status.delivered) return 'pending';
    return markDelivered(messageId, status) ? 'delivered' : 'already-delivered';
  }

  let running: Promise<{ checked: number; delivered: number }> | undefined;

  /** Asks about every SENT message whose check is due. Stops early while SSEV is unavailable. */
  function pollSentStatus(now = new Date()): Promise<{ checked: number; delivered: number }> {
    running ??= (async () => {
      let checked = 0;
      let delivered = 0;
      for (const row of dueStatusChecks(deps.db, now)) {
        if (now.getTime() - Date.parse(row.createdAt) > maxAge) {
          recordStatusCheck(deps.db, row.messageId, { state: 'unconfirmed', error: 'no delivery within the polling period' });
          continue;
        }
        checked++;
        try {
          const status = await deps.client.sentStatus(row.messageId);
          if (status.delivered) {
            if (markDelivered(row.messageId, status)) delivered++;
          } else {
            recordStatusCheck(deps.db, row.messageId, { nextCheckAt: new Date(Date.now() + interval) });
          }
        } catch (error) {
          recordStatusCheck(deps.db, row.messageId, { nextCheckAt: new Date(Date.now() + interval), error: errorText(error) });
          logger.warn({ code: isGatewayError(error) ? error.code : 'error', messageId: row.messageId }, 'ssev status check failed');
          if (isGatewayError(error, 'GW_ERR_SSEV_UNAVAILABLE')) break; // SSEV is down: the rest waits for the next round
        }
      }
      return { checked, delivered };
    })().finally(() => { running = undefined; });
    return running;
  }

  return { checkDelivered, pollSentStatus, markDelivered };
}
