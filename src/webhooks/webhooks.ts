import type { LifecycleListener } from '../app/lifecycle.ts';
import type { WebhookConfig, WebhookEvent } from '../config/webhooks-config.ts';
import type { DeliveryHandler } from '../delivery/engine.ts';
import { addOutboxEntry, type OutboxRow } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import type { DocumentRow } from '../store/documents.ts';
import { SIGNATURE_HEADER, signWebhook } from './signature.ts';

/**
 * Webhooks to the records system: a new inbound document, a status change of a document, a failed delivery.
 * Each is an outbox row (kind `webhook`) committed with the change that caused it, delivered and retried by the
 * same engine as documents; a failed one stays visible with its attempts like any other delivery.
 *
 * The body is the JSON stored in the row, sent byte for byte on every attempt, so its signature and the
 * `X-Seos-Gateway-Delivery` id let the records system deduplicate retries.
 */
export const WEBHOOK_KIND = 'webhook';

export interface WebhookBody {
  id: string;
  type: WebhookEvent;
  occurredAt: string;
  data: Record<string, unknown>;
}

function documentData(doc: DocumentRow): Record<string, unknown> {
  return {
    documentId: doc.id, documentGuid: doc.documentGuid, direction: doc.direction, channel: doc.channel, status: doc.status,
    counterparty: { guid: doc.counterpartyGuid, eik: doc.counterpartyEik, name: doc.counterpartyName },
    externalId: doc.externalId, ourNumber: doc.ourNumber, ourDate: doc.ourDate, theirNumber: doc.theirNumber, theirDate: doc.theirDate,
    rejectionReason: doc.rejectionReason, expectedCloseDate: doc.expectedCloseDate, rnu: doc.rnu,
  };
}

export function createWebhookNotifier(db: Db, webhooks: readonly WebhookConfig[]): LifecycleListener {
  const queue = (type: WebhookEvent, data: Record<string, unknown>, documentId: string | null): OutboxRow[] =>
    webhooks.filter((w) => w.events.includes(type)).map((w) => {
      const row = addOutboxEntry(db, { kind: WEBHOOK_KIND, destination: `webhook:${w.id}`, documentId });
      const body: WebhookBody = { id: row.id, type, occurredAt: new Date().toISOString(), data };
      db.prepare('UPDATE outbox SET payload_json = ? WHERE id = ?').run(JSON.stringify(body), row.id);
      return row;
    });
  return {
    documentReceived: (doc) => queue('document.received', documentData(doc), doc.id),
    // The records system does not need to hear about a change it made itself.
    statusChanged: (doc, previous, source) => source === 'records-system' ? [] : queue('document.status', { ...documentData(doc), previousStatus: previous }, doc.id),
    deliveryFailed: (entry, code, detail) => entry.kind === WEBHOOK_KIND ? [] : queue('delivery.failed', {
      deliveryId: entry.id, kind: entry.kind, documentId: entry.documentId, destination: entry.destination, code, detail: detail ?? null,
    }, entry.documentId),
  };
}

export function createWebhookHandler(webhooks: readonly WebhookConfig[]): DeliveryHandler {
  const byDestination = new Map(webhooks.map((w) => [`webhook:${w.id}`, w]));
  return async (entry, context) => {
    const hook = byDestination.get(entry.destination);
    if (!hook) return { result: 'failed', code: 'GW_ERR_CONFIG_INVALID', detail: `webhook ${entry.destination} is no longer configured` };
    const body = entry.payloadJson ?? '{}';
    let response: Response;
    try {
      response = await fetch(hook.url, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          [SIGNATURE_HEADER]: signWebhook(hook.secret.reveal(), body),
          'x-seos-gateway-event': (JSON.parse(body) as WebhookBody).type,
          'x-seos-gateway-delivery': entry.id,
          'x-seos-gateway-attempt': String(context.attempt),
        },
        signal: AbortSignal.timeout(hook.timeoutMs),
        redirect: 'manual',
      });
      await response.arrayBuffer().catch(() => undefined);
    } catch (error) {
      const timeout = (error as Error).name === 'TimeoutError';
      return { result: 'retry', code: 'GW_ERR_WEBHOOK_UNREACHABLE', detail: `webhook ${hook.id}: ${timeout ? 'timeout' : (error as Error).message.slice(0, 200)}`, transport: true };
    }
    if (response.status >= 200 && response.status < 300) return { result: 'delivered', detail: `HTTP ${response.status}` };
    // A records system that says the request itself is wrong will not change its mind; it may be busy or down.
    if (response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429) {
      return { result: 'failed', code: 'GW_ERR_WEBHOOK_REFUSED', detail: `webhook ${hook.id}: HTTP ${response.status}` };
    }
    return { result: 'retry', code: 'GW_ERR_WEBHOOK_UNREACHABLE', detail: `webhook ${hook.id}: HTTP ${response.status}`, transport: response.status >= 500 };
  };
}
