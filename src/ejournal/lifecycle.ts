import type { ErrorCode } from '../errors/index.ts';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import type { Db } from '../store/database.ts';
import { getDocument, statusHistory, updateDocument } from '../store/documents.ts';
import { recordServiceEvent, type RecordOptions, type RecordResult } from './events.ts';
import { validateRnu } from './rnu.ts';
import { DEFAULT_VOCABULARY, type LifecycleEvent } from './vocabulary.ts';

/**
 * Events the gateway raises itself when a stage of a service passes through it: a SEOS document received,
 * registered, rejected, stopped or closed; an SSEV message received, sent or delivered; a result ready or sent.
 * They are raised only for documents and messages that carry an RNU, mapped to statuses by the vocabulary
 * (a stage mapped to null is not reported).
 *
 * Raised inside the transaction of the change that caused them, and never allowed to break it: a document
 * received over SEOS must be received even if its RNU is malformed or its service code unknown. Such an event
 * is not stored; the reason is returned and written to the delivery log for the operator.
 */
export interface LifecycleContext {
  /** The RNU; defaults to the document's. */
  readonly rnu?: string | null;
  readonly documentId?: string | null;
  /** When the stage happened; defaults to now. */
  readonly occurredAt?: string | Date;
  /** From the document's DocService/ServiceCode or the message's service data; else the RNU's earlier code, else the configured default. */
  readonly serviceCode?: string;
  /** Defaults to the document's registration number (ours). */
  readonly documentRegNumber?: string | null;
  readonly description?: string | null;
  /** Defaults to seos for seos.*, ssev for ssev.*. */
  readonly channel?: string | null;
}

export type LifecycleSkip = {
  readonly skipped: 'no-rnu' | 'not-reported' | 'invalid';
  readonly code?: ErrorCode;
  readonly detail?: string;
};

export type LifecycleResult = RecordResult | LifecycleSkip;

export function isSkipped(result: LifecycleResult): result is LifecycleSkip {
  return 'skipped' in result;
}

export function raiseLifecycleEvent(db: Db, lifecycle: LifecycleEvent, context: LifecycleContext, options: RecordOptions): LifecycleResult {
  const vocabulary = options.vocabulary ?? DEFAULT_VOCABULARY;
  const status = vocabulary.statusFor(lifecycle);
  if (status === null) return { skipped: 'not-reported' };
  const document = context.documentId ? getDocument(db, context.documentId) : undefined;
  const rnu = context.rnu ?? document?.rnu ?? null;
  if (rnu === null || rnu === '') return { skipped: 'no-rnu' };
  const channel = context.channel !== undefined ? context.channel : lifecycle.startsWith('seos.') ? 'seos' : lifecycle.startsWith('ssev.') ? 'ssev' : null;
  try {
    return recordServiceEvent(db, {
      rnu, status, lifecycle, source: 'gateway', channel,
      occurredAt: context.occurredAt ?? options.now?.() ?? new Date(),
      ...(context.serviceCode !== undefined ? { serviceCode: context.serviceCode } : {}),
      documentId: context.documentId ?? null,
      documentRegNumber: context.documentRegNumber !== undefined ? context.documentRegNumber : document?.ourNumber ?? null,
      description: context.description ?? null,
    }, options);
  } catch (error) {
    if (!isGatewayError(error) || !String(error.code).startsWith('GW_ERR_EJOURNAL_')) throw error; // a database error aborts the caller, as it should
    options.log.append({
      type: 'ejournal-event', direction: 'out', counterparty: { name: 'eJournal' }, status, outcome: 'not-recorded', actor: 'gateway',
      ...(context.documentId ? { documentId: context.documentId } : {}),
      detail: `${lifecycle}: ${error.code}${error.detail ? ` ${error.detail}` : ''}`,
    });
    return { skipped: 'invalid', code: error.code, detail: error.detail };
  }
}

const SEOS_STAGE: Readonly<Record<string, LifecycleEvent>> = {
  DS_WAIT_REGISTRATION: 'seos.received',
  DS_REGISTERED: 'seos.registered',
  DS_REJECTED: 'seos.rejected',
  DS_STOPPED: 'seos.stopped',
  DS_CLOSED: 'seos.closed',
};

export interface AttachRnuResult {
  readonly documentId: string;
  readonly rnu: string;
  /** The stages the document had already passed, reported now with their original times (received SEOS documents). */
  readonly events: readonly LifecycleResult[];
}

/**
 * The records system attaches an RNU to a document after the fact. Idempotent for the same RNU; a different RNU
 * is refused (GW_ERR_EJOURNAL_RNU_CONFLICT). For a document received over SEOS the stages it has already passed
 * are reported with their original times; that they come late is what the late-event rule is for.
 * Callable inside a transaction; schedule the `outbox` rows of the returned events after the commit.
 */
export function attachRnu(db: Db, documentId: string, rnuInput: string, options: RecordOptions & { serviceCode?: string; backfill?: boolean }): AttachRnuResult {
  const rnu = validateRnu(rnuInput);
  const run = (): AttachRnuResult => {
    const document = getDocument(db, documentId);
    if (!document) throw new GatewayError('GW_ERR_EJOURNAL_NOT_FOUND', 'documentId: no such document in the gateway');
    if (document.rnu !== null && document.rnu !== rnu) throw new GatewayError('GW_ERR_EJOURNAL_RNU_CONFLICT', 'the document carries another RNU');
    if (document.rnu === null) updateDocument(db, documentId, { rnu });
    const events: LifecycleResult[] = [];
    if (options.backfill !== false && document.direction === 'in' && document.channel === 'seos') {
      const seen = new Set<LifecycleEvent>();
      for (const change of statusHistory(db, documentId)) {
        const stage = SEOS_STAGE[change.status];
        if (!stage || seen.has(stage)) continue;
        seen.add(stage);
        events.push(raiseLifecycleEvent(db, stage, {
          rnu, documentId, occurredAt: change.at, ...(options.serviceCode !== undefined ? { serviceCode: options.serviceCode } : {}),
        }, options));
      }
    }
    return { documentId, rnu, events };
  };
  return db.inTransaction ? run() : db.transaction(run).immediate();
}
