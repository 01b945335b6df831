import type { DeliveryLog } from '../audit/index.ts';
import { documentChangesOf, type StatusReport } from '../seos/outbound.ts';
import type { Db } from '../store/database.ts';
import { getDocument, updateDocument, type DocumentRow } from '../store/documents.ts';

/**
 * POST /v1/inbox/{id}/status for a document received over SSEV. SSEV carries no document statuses (a reply would
 * be a new message, sent like any other document), so nothing is pushed to the sender: the status, number, date
 * or reason are recorded on the document, in its history and the delivery log, and told to the lifecycle in the
 * same transaction (webhooks to other listeners, eJournal events when the document has an RNU).
 *
 * A report equal to the current state is a repeat and changes nothing; the SEOS rules for impossible changes apply.
 */
export function reportSsevStatus(
  deps: { db: Db; log: DeliveryLog; lifecycle?: { statusChanged(document: DocumentRow, previous: string, source: string): void } },
  doc: DocumentRow, report: StatusReport, actor: string,
  /** Throws when the change is impossible (a rejected document, a second registration); called after the repeat check. */
  refuseImpossible: () => void = () => undefined,
): { repeated: boolean } {
  const expectedCloseDate = 'expectedCloseDate' in report ? report.expectedCloseDate : undefined;
  const same = doc.status === report.status && (report.status === 'DS_REGISTERED' ? doc.ourNumber === report.number && doc.ourDate === report.date
    : report.status === 'DS_REJECTED' ? doc.rejectionReason === report.reason
      : expectedCloseDate === undefined || expectedCloseDate === doc.expectedCloseDate);
  if (same) return { repeated: true };
  refuseImpossible();
  deps.db.transaction(() => {
    updateDocument(deps.db, doc.id, documentChangesOf(report), { source: actor, detail: 'ssev: recorded, not sent (SSEV carries no statuses)' });
    deps.log.append({
      type: 'status-change', direction: 'in', counterparty: { guid: doc.counterpartyGuid }, documentGuid: doc.documentGuid, documentId: doc.id,
      messageType: 'ssev-message', status: report.status, actor, detail: 'recorded only: SSEV carries no statuses',
    });
    deps.lifecycle?.statusChanged(getDocument(deps.db, doc.id)!, doc.status, actor);
  }).immediate();
  return { repeated: false };
}
