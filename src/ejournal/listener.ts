import type { LifecycleListener } from '../app/lifecycle.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import type { DocumentRow } from '../store/documents.ts';
import type { RecordOptions } from './events.ts';
import { isSkipped, raiseLifecycleEvent } from './lifecycle.ts';
import type { LifecycleEvent } from './vocabulary.ts';

/**
 * The automatic eJournal events as a listener of the gateway's Lifecycle (src/app/lifecycle.ts): called inside the
 * transaction of each document change, it records the event for documents that carry an RNU and returns the outbox
 * rows to schedule after the commit. Wiring: add `createEjournalLifecycleListener({ db, log, ... })` to the
 * listeners in createGateway.
 *
 * Which document changes are stages of a service:
 * - a document received (SEOS or SSEV) and the records system's decisions on it: received, registered, rejected,
 *   stopped, closed (the `seos.*` stages; the event's channel says which channel the document came by);
 * - an SSEV message we sent: sent, delivered (opened by the recipient);
 * - a SEOS document we sent reaching the other administration is NOT reported by default: it may be the service's
 *   result, or a request to another administration while the service is in progress, and only the records system
 *   knows which. Set `outboundSeos: 'result.sent'` where every outgoing document with an RNU is a result, or post the
 *   event through the API.
 * The service code comes from the RNU's earlier events or `defaultServiceCode`: documents do not store one.
 */
export interface EjournalListenerOptions extends RecordOptions {
  readonly db: Db;
  readonly outboundSeos?: LifecycleEvent | null;
}

const INBOUND: Readonly<Record<string, LifecycleEvent>> = {
  DS_REGISTERED: 'seos.registered',
  DS_REJECTED: 'seos.rejected',
  DS_STOPPED: 'seos.stopped',
  DS_CLOSED: 'seos.closed',
};

export function createEjournalLifecycleListener(options: EjournalListenerOptions): LifecycleListener {
  const { db } = options;
  const raise = (stage: LifecycleEvent | null | undefined, document: DocumentRow, occurredAt: string): OutboxRow[] => {
    if (!stage || !document.rnu) return [];
    const result = raiseLifecycleEvent(db, stage, { documentId: document.id, channel: document.channel, occurredAt }, options);
    return !isSkipped(result) && result.outbox ? [result.outbox] : [];
  };
  return {
    documentReceived: (document) =>
      raise(document.channel === 'ssev' ? 'ssev.received' : 'seos.received', document, document.createdAt),
    statusChanged: (document) => {
      if (document.direction === 'in') return raise(INBOUND[document.status], document, document.updatedAt);
      if (document.channel === 'ssev') {
        return raise(document.status === 'SENT' ? 'ssev.sent' : document.status === 'DELIVERED' ? 'ssev.delivered' : null, document, document.updatedAt);
      }
      return raise(document.status === 'DS_WAIT_REGISTRATION' ? options.outboundSeos : null, document, document.updatedAt);
    },
  };
}
