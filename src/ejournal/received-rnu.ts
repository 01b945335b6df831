import type { DeliveryLogEntry } from '../audit/index.ts';
import type { AdditionalData, ServiceItem } from '../seos/model.ts';
import type { Db } from '../store/database.ts';
import { rnuCarriedBy } from './carried-rnu.ts';
import { registerRnu } from './events.ts';
import { isDemoRnu } from './rnu.ts';

/**
 * For the SEOS receiver, inside the transaction that stores a received document: the RNU the document carries
 * (see carried-rnu.ts), to be stored on the document row before the lifecycle hears of it, so that the
 * automatic eJournal events (received, registered, rejected, ...) are raised for it. The RNU is remembered with
 * the service code from DocService, which those events then use.
 *
 * An RNU that is there but invalid is not taken and never refuses the document: a delivery-log entry says why
 * (the reason, never the value), so an operator can attach the right RNU later through the API.
 */
export function rnuOfReceivedDocument(
  db: Db, log: { append(entry: DeliveryLogEntry): unknown },
  document: { readonly additionalData?: AdditionalData; readonly service?: ServiceItem },
  context: { readonly documentGuid?: string; readonly counterparty?: { guid?: string; eik?: string; name?: string } } = {},
): string | null {
  const carried = rnuCarriedBy(document);
  if (carried.problem !== null && carried.rnu === null) {
    log.append({
      type: 'ejournal-event', direction: 'in', outcome: 'rnu-not-taken', actor: 'gateway', detail: carried.problem,
      ...(context.counterparty ? { counterparty: context.counterparty } : {}),
      ...(context.documentGuid ? { documentGuid: context.documentGuid } : {}),
    });
  }
  if (carried.rnu === null) return null;
  registerRnu(db, { rnu: carried.rnu, origin: 'given', demo: isDemoRnu(carried.rnu) }, carried.serviceCode ?? undefined);
  return carried.rnu;
}
