import type { DeliveryLog } from '../audit/index.ts';
import type { CompanionOutcome, DeliveryHandler, DeliveryOutcome, SingleOutcome } from '../delivery/engine.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import type { EjournalEventMessage, PushResult } from './client.ts';
import { claimCompanions, ownsClaim, readyRows, type CompanionClaim } from './carrier.ts';
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
  readonly client: {
    pushStatus(event: EjournalEventMessage): Promise<PushResult>;
    /** Several events at once (the batch form of the contract, or parallel requests); results in order. */
    pushMany?(events: readonly EjournalEventMessage[]): Promise<PushResult[]>;
  };
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
  /**
   * Carrier mode (carrier.ts): a job carries up to this many ready events, its own and others', and a finished job
   * starts follow-up jobs for events still ready. Default 1: a job per event.
   */
  readonly eventsPerJob?: number;
  /** Carrier mode: follow-up jobs a finished job starts, at most (default 4). */
  readonly followUpJobs?: number;
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

  const eventsPerJob = Math.max(1, options.eventsPerJob ?? 1);
  const followUpJobs = Math.max(1, options.followUpJobs ?? 4);

  /** The engine outcome of one sent (or refused before sending) event; its commit resolves the claim and reports what it woke. */
  const outcomeOf = (event: ServiceEvent, claimSeq: number, answer: PushResult | 'demo', woken: (target: WakeTarget | undefined) => void): SingleOutcome => {
    if (answer === 'demo') {
      return {
        result: 'failed', code: 'GW_ERR_EJOURNAL_RNU_INVALID', detail: 'a demo RNU outside demo mode is never sent',
        commit: () => { woken(resolveClaim(db, event, claimSeq, { kind: 'rejected' }, now())); logOutcome(event, 'rejected', 'demo RNU outside demo mode'); },
      };
    }
    switch (answer.outcome) {
      case 'accepted':
      case 'duplicate':
        return {
          result: 'delivered', detail: `${answer.outcome} (HTTP ${answer.httpStatus})`,
          commit: () => {
            woken(resolveClaim(db, event, claimSeq, { kind: 'delivered', remoteOutcome: answer.outcome as 'accepted' | 'duplicate', remoteId: (answer as { remoteId?: string }).remoteId }, now()));
            logOutcome(event, answer.outcome === 'accepted' ? 'delivered' : 'duplicate', `HTTP ${answer.httpStatus}`);
          },
        };
      case 'rejected':
        return {
          result: 'failed', code: answer.code, detail: answer.reason,
          commit: () => {
            woken(resolveClaim(db, event, claimSeq, { kind: 'rejected' }, now()));
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

  const sendAll = async (events: readonly ServiceEvent[]): Promise<PushResult[]> => {
    const messages = events.map(toMessage);
    try {
      return client.pushMany ? await client.pushMany(messages) : await Promise.all(messages.map((m) => client.pushStatus(m)));
    } catch (error) {
      const failure: PushResult = { outcome: 'transient', code: 'GW_ERR_EJOURNAL_UNAVAILABLE', reason: `client error: ${(error as Error).message}`.slice(0, 200), transport: false };
      return events.map(() => failure);
    }
  };

  /** Carrier mode: this job's event (when it may go) and up to eventsPerJob - 1 other ready events, sent together. */
  const carry = async (entry: OutboxRow): Promise<DeliveryOutcome> => {
    const { own: claim, more: companions } = await claims.claimWith(entry, (own) =>
      claimCompanions(db, entry.id, eventsPerJob - (own.kind === 'claimed' ? 1 : 0), ordering, now()));
    const sendable: Array<{ event: ServiceEvent; claimSeq: number; companion?: CompanionClaim }> = [
      ...(claim.kind === 'claimed' ? [{ event: claim.event, claimSeq: entry.jobSeq }] : []),
      ...companions.map((c) => ({ event: c.event, claimSeq: c.row.jobSeq, companion: c })),
    ];
    const toSend = sendable.filter((s) => !(s.event.demo && !options.demoMode));
    const answers = toSend.length > 0 ? await sendAll(toSend.map((s) => s.event)) : [];
    const answerOf = new Map(toSend.map((s, i) => [s, answers[i]] as const));
    const woken = (_target: WakeTarget | undefined) => undefined; // woken events are due now: the follow-up jobs below take them
    const outcomes = new Map(sendable.map((s) => [s, outcomeOf(s.event, s.claimSeq, answerOf.get(s) ?? 'demo', woken)] as const));

    const companionOutcomes: CompanionOutcome[] = sendable.filter((s) => s.companion).map((s) => ({
      row: s.companion!.row, outcome: outcomes.get(s)!, owns: () => ownsClaim(db, s.event.id, s.companion!.row.id, s.claimSeq),
    }));
    const settled = () => {
      // Follow-up carriers for what is ready now (events this job woke included): one job per eventsPerJob events.
      const ready = readyRows(db, eventsPerJob * followUpJobs, now());
      for (let i = 0; i < ready.length; i += eventsPerJob) options.schedule({ id: ready[i].id, nextAttemptAt: ready[i].nextAttemptAt });
    };
    const extras = { companions: companionOutcomes, settled };
    const own = sendable.find((s) => !s.companion);
    if (own) return { ...outcomes.get(own)!, ...extras };
    return { ...ownOutcomeWithoutSend(claim), ...extras };
  };

  const ownOutcomeWithoutSend = (claim: Awaited<ReturnType<ClaimBatcher['claim']>>): SingleOutcome => {
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
        throw new Error('unreachable: a claimed event is sent');
    }
  };

  return async (entry): Promise<DeliveryOutcome> => {
    if (eventsPerJob > 1) return carry(entry);
    const claim = await claims.claim(entry);
    if (claim.kind !== 'claimed') return ownOutcomeWithoutSend(claim);
    const event = claim.event;
    const claimSeq = entry.jobSeq;
    if (event.demo && !options.demoMode) return outcomeOf(event, claimSeq, 'demo', wake);
    let answer: PushResult;
    try {
      answer = await client.pushStatus(toMessage(event));
    } catch (error) {
      answer = { outcome: 'transient', code: 'GW_ERR_EJOURNAL_UNAVAILABLE', reason: `client error: ${(error as Error).message}`.slice(0, 200), transport: false };
    }
    return outcomeOf(event, claimSeq, answer, wake);
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
