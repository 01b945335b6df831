import type { DeliveryLog } from '../audit/index.ts';
import type { DeliveryHandler, DeliveryOutcome } from '../delivery/engine.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import type { EjournalEventMessage, PushResult } from './client.ts';
import { EJOURNAL_DESTINATION, type ServiceEvent } from './events.ts';
import { ClaimBatcher, DEFAULT_ORDERING, jobSeqOf, preclaim, resolveClaim, type OrderingOptions, type WakeTarget } from './ordering.ts';

/**
 * The delivery handler for outbox kind `ejournal-event`: claim (ordering.ts), send, and turn eJournal's answer into
 * the engine's typed outcome, whose commit records the event's new state (and wakes the next event of its RNU) in
 * the engine's settle transaction.
 */
export interface EjournalHandlerOptions {
  /** The engine's own connection: the wake-up is scheduled inside the engine's settle transaction. */
  readonly db: Db;
  readonly client: { pushStatus(event: EjournalEventMessage): Promise<PushResult> };
  readonly log: DeliveryLog;
  /**
   * `engine.schedule`. Called inside the settle transaction on the same connection: it bumps the row's job
   * sequence there (committed with the wake-up, no extra fsync) and enqueues after the commit (BullMQ's add is
   * asynchronous). Wiring it through setImmediate instead is correct too, one commit slower.
   */
  readonly schedule: (entry: Pick<OutboxRow, 'id' | 'nextAttemptAt'>) => void;
  readonly ordering?: Partial<Pick<OrderingOptions, 'parkMs' | 'shortDeferMs'>>;
  /** The client's request timeout; a claim lasts this plus `claimMarginMs`. */
  readonly requestTimeoutMs?: number;
  readonly claimMarginMs?: number;
  /** Demo mode: events of invented (DEMO-) RNUs may be sent. Outside it they are refused here as well as at recording. */
  readonly demoMode?: boolean;
  readonly now?: () => Date;
}

export function createEjournalHandler(options: EjournalHandlerOptions): DeliveryHandler {
  const { db, client, log } = options;
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  const ordering: OrderingOptions = {
    parkMs: options.ordering?.parkMs ?? DEFAULT_ORDERING.parkMs,
    shortDeferMs: options.ordering?.shortDeferMs ?? DEFAULT_ORDERING.shortDeferMs,
    claimMs: requestTimeoutMs + (options.claimMarginMs ?? 30_000),
    minClaimLeftMs: requestTimeoutMs,
  };
  const now = () => options.now?.() ?? new Date();
  const claims = new ClaimBatcher(db, ordering);

  const logOutcome = (event: ServiceEvent, outcome: string, detail: string) => log.append({
    type: 'ejournal-event', direction: 'out', counterparty: { name: 'eJournal' }, status: event.status, outcome, actor: 'gateway',
    ...(event.documentId ? { documentId: event.documentId } : {}),
    detail: `event ${event.eventUid}; ${detail}`,
  });
  // Schedules the woken event; when `schedule` bumped its job sequence right here (engine.schedule does, inside
  // the settle transaction), the event is claimed for that job in the same commit.
  const wake = (target: WakeTarget | undefined) => {
    if (!target) return;
    const before = jobSeqOf(db, target.id);
    options.schedule({ id: target.id, nextAttemptAt: target.nextAttemptAt });
    const after = jobSeqOf(db, target.id);
    if (before !== undefined && after === before + 1) preclaim(db, target.eventId, after, ordering, now());
  };

  return async (entry): Promise<DeliveryOutcome> => {
    const claim = await claims.claim(entry);
    switch (claim.kind) {
      case 'missing':
        return { result: 'failed', code: 'GW_ERR_EJOURNAL_NOT_FOUND', detail: 'no eJournal event for this outbox row' };
      case 'superseded':
        // The engine ignores the outcome of a superseded job (its settle checks the job sequence).
        return { result: 'retry', code: 'GW_ERR_INTERNAL', detail: 'superseded by a newer job', transport: false };
      case 'blocked':
        return { result: 'defer', until: claim.until, detail: 'waiting for an earlier event of the same RNU' };
      case 'done':
        return claim.event.state === 'delivered'
          ? { result: 'delivered', detail: 'already delivered' }
          : { result: 'failed', code: claim.event.state === 'rejected' ? 'GW_ERR_EJOURNAL_REJECTED' : 'GW_ERR_EJOURNAL_EVENT_STATE', detail: `already ${claim.event.state}` };
      case 'claimed':
        break;
    }
    const event = claim.event;
    const claimSeq = entry.jobSeq;
    if (event.demo && !options.demoMode) {
      return {
        result: 'failed', code: 'GW_ERR_EJOURNAL_RNU_INVALID', detail: 'a demo RNU outside demo mode is never sent',
        commit: () => { wake(resolveClaim(db, event, claimSeq, { kind: 'rejected' }, now())); logOutcome(event, 'rejected', 'demo RNU outside demo mode'); },
      };
    }
    let answer: PushResult;
    try {
      answer = await client.pushStatus(toMessage(event));
    } catch (error) {
      answer = { outcome: 'transient', code: 'GW_ERR_EJOURNAL_UNAVAILABLE', reason: `client error: ${(error as Error).message}`.slice(0, 200), transport: false };
    }
    switch (answer.outcome) {
      case 'accepted':
      case 'duplicate':
        return {
          result: 'delivered', detail: `${answer.outcome} (HTTP ${answer.httpStatus})`,
          commit: () => {
            wake(resolveClaim(db, event, claimSeq, { kind: 'delivered', remoteOutcome: answer.outcome as 'accepted' | 'duplicate', remoteId: (answer as { remoteId?: string }).remoteId }, now()));
            logOutcome(event, answer.outcome === 'accepted' ? 'delivered' : 'duplicate', `HTTP ${answer.httpStatus}`);
          },
        };
      case 'rejected':
        return {
          result: 'failed', code: answer.code, detail: answer.reason,
          commit: () => {
            wake(resolveClaim(db, event, claimSeq, { kind: 'rejected' }, now()));
            // Only the HTTP status and eJournal's error code: its message might quote the event's text.
            const code = /^HTTP \d{3}(: [A-Za-z0-9_.:-]{1,80})?/.exec(answer.reason)?.[0] ?? `HTTP ${answer.httpStatus}`;
            logOutcome(event, 'rejected', code);
          },
        };
      case 'transient':
        return {
          result: 'retry', code: answer.code, detail: answer.reason, transport: answer.transport,
          commit: () => { resolveClaim(db, event, claimSeq, { kind: 'released' }, now()); },
        };
    }
  };
}

export function toMessage(event: ServiceEvent): EjournalEventMessage {
  return {
    eventId: event.eventUid, rnu: event.rnu, status: event.status, occurredAt: event.occurredAt, administration: event.administration,
    serviceCode: event.serviceCode, documentRegNumber: event.documentRegNumber, description: event.description, channel: event.channel,
    sequence: event.sequence,
  };
}

/** For the engine's `events.dead`: the delivery-log entry of an event whose retries are spent (it now blocks its RNU). */
export function logEjournalDead(log: DeliveryLog, entry: OutboxRow, code: string): void {
  if (entry.destination !== EJOURNAL_DESTINATION) return;
  log.append({
    type: 'ejournal-event', direction: 'out', counterparty: { name: 'eJournal' }, outcome: 'dead', actor: 'gateway',
    ...(entry.documentId ? { documentId: entry.documentId } : {}), detail: `outbox ${entry.id}; ${code}`,
  });
}
