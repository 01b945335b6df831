import { randomUUID } from 'node:crypto';
import type { DeliveryLog } from '../audit/index.ts';
import { addOutboxEntry, type OutboxRow } from '../delivery/outbox.ts';
import { GatewayError } from '../errors/index.ts';
import type { Db } from '../store/database.ts';
import { normalizeServiceEvent, type EventSource, type NormalizedEvent, type ServiceEventInput } from './event-input.ts';
import type { IssuedRnu, RnuOrigin } from './rnu.ts';
import { statement } from '../store/database.ts';
import { DEFAULT_VOCABULARY, type LifecycleEvent, type Vocabulary } from './vocabulary.ts';

/**
 * The store of service status events (schema v3) and `recordServiceEvent`, which the SEOS receiver, the SSEV
 * parts and the API call INSIDE the transaction that commits the change the event reports: the business change,
 * the event and its outbox row are committed together or not at all. After the commit, the caller hands the
 * returned outbox row (when there is one) to `engine.schedule`.
 */
export const EJOURNAL_OUTBOX_KIND = 'ejournal-event';
/** One destination for the engine's health tracking and per-destination concurrency. */
export const EJOURNAL_DESTINATION = 'ejournal';

export type EventState = 'pending' | 'sending' | 'delivered' | 'rejected' | 'skipped';

export interface ServiceEvent {
  readonly id: number;
  /** Sent to eJournal as the event id and Idempotency-Key. */
  readonly eventUid: string;
  readonly rnu: string;
  /** 1, 2, ... per RNU in the order recorded. */
  readonly sequence: number;
  readonly status: string;
  readonly occurredAt: string;
  readonly administration: string;
  readonly serviceCode: string;
  readonly documentRegNumber: string | null;
  readonly description: string | null;
  readonly channel: string | null;
  readonly source: EventSource;
  readonly lifecycle: LifecycleEvent | null;
  readonly documentId: string | null;
  readonly demo: boolean;
  readonly state: EventState;
  readonly waiting: boolean;
  readonly defers: number;
  readonly claimSeq: number | null;
  readonly claimExpiresAt: string | null;
  readonly firstSentAt: string | null;
  readonly deliveredAt: string | null;
  readonly remoteOutcome: string | null;
  readonly remoteId: string | null;
  readonly outOfOrder: boolean;
  readonly outboxId: string;
  readonly recordedAt: string;
  readonly updatedAt: string;
}

export const EVENT_COLUMNS = `e.id, e.event_uid AS eventUid, e.rnu, e.rnu_seq AS sequence, e.status, e.occurred_at AS occurredAt,
  e.administration, e.service_code AS serviceCode, e.document_reg_number AS documentRegNumber, e.description, e.channel, e.source,
  e.lifecycle, e.document_id AS documentId, e.demo, e.state, e.waiting, e.defers, e.claim_seq AS claimSeq,
  e.claim_expires_at AS claimExpiresAt, e.first_sent_at AS firstSentAt, e.delivered_at AS deliveredAt,
  e.remote_outcome AS remoteOutcome, e.remote_id AS remoteId, e.out_of_order AS outOfOrder, e.outbox_id AS outboxId,
  e.recorded_at AS recordedAt, e.updated_at AS updatedAt`;

export function toServiceEvent(row: Record<string, unknown>): ServiceEvent {
  return { ...row, demo: row.demo === 1, waiting: row.waiting === 1, outOfOrder: row.outOfOrder === 1 } as unknown as ServiceEvent;
}

export function getServiceEvent(db: Db, id: number): ServiceEvent | undefined {
  const row = statement(db, `SELECT ${EVENT_COLUMNS} FROM ejournal_events e WHERE e.id = ?`).get(id) as Record<string, unknown> | undefined;
  return row && toServiceEvent(row);
}

/** The event of an outbox row (kind ejournal-event): its id is in the row's payload. */
export function eventIdOf(entry: Pick<OutboxRow, 'payloadJson'>): number | undefined {
  try {
    const id = (JSON.parse(entry.payloadJson ?? 'null') as { eventId?: unknown } | null)?.eventId;
    return typeof id === 'number' && Number.isInteger(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

export function getServiceEventByOutbox(db: Db, entry: Pick<OutboxRow, 'id' | 'payloadJson'>): ServiceEvent | undefined {
  const id = eventIdOf(entry);
  const event = id === undefined ? undefined : getServiceEvent(db, id);
  return event?.outboxId === entry.id ? event : undefined;
}

export function serviceEventsOf(db: Db, rnu: string): ServiceEvent[] {
  return (statement(db, `SELECT ${EVENT_COLUMNS} FROM ejournal_events e WHERE e.rnu = ? ORDER BY e.occurred_at, e.rnu_seq`).all(rnu) as Array<Record<string, unknown>>)
    .map(toServiceEvent);
}

/** The service code an RNU was first reported with, if any. */
export function knownServiceCode(db: Db, rnu: string): string | undefined {
  const row = statement(db, 'SELECT service_code AS code FROM ejournal_rnus WHERE rnu = ?').get(rnu) as { code: string | null } | undefined;
  return row?.code ?? undefined;
}

/** Remembers an RNU a provider issued (its origin shows in the timeline). Idempotent. */
export function registerRnu(db: Db, issued: IssuedRnu, serviceCode?: string, now = new Date()): void {
  statement(db, `INSERT INTO ejournal_rnus (rnu, origin, demo, service_code, created_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (rnu) DO UPDATE SET service_code = excluded.service_code WHERE ejournal_rnus.service_code IS NULL AND excluded.service_code IS NOT NULL`)
    .run(issued.rnu, issued.origin, issued.demo ? 1 : 0, serviceCode ?? null, now.toISOString());
}

export interface RecordOptions {
  /** The delivery log of the same connection; an entry is appended in the same transaction. */
  readonly log: DeliveryLog;
  readonly vocabulary?: Vocabulary;
  /** ЕИК/OID used when the event names none. */
  readonly administration?: string;
  /** Service code when the event has none and its RNU has none on record. */
  readonly defaultServiceCode?: string;
  /** An event earlier than one already sent for its RNU: deliver it flagged (default) or refuse it. */
  readonly lateEvents?: 'deliver' | 'reject';
  readonly demoMode?: boolean;
  readonly maxFutureSkewMs?: number;
  /** Safety-net delay of an event parked behind an earlier one (default 5 minutes). */
  readonly parkMs?: number;
  /** Where the RNU came from, when it is new to the gateway (default: given). */
  readonly origin?: RnuOrigin;
  readonly now?: () => Date;
}

export interface RecordResult {
  readonly event: ServiceEvent;
  /**
   * The outbox row to hand to `engine.schedule` after the commit, or null when there is nothing to schedule now:
   * a duplicate, or an event parked behind an earlier unresolved event of its RNU (that one wakes it when it
   * resolves; the reconciler gives it a safety-net job). Never schedule inside the transaction.
   */
  readonly outbox: OutboxRow | null;
  /** The same (RNU, status, time) was recorded before: nothing new is stored or sent, `event` is the stored one. */
  readonly duplicate: boolean;
  /** For a duplicate: the fields in which the repeat differs from the stored event (the stored one stands). */
  readonly differences: readonly string[];
  readonly parked: boolean;
  /** Recorded after a later event of its RNU had already been sent: delivered anyway, flagged. */
  readonly outOfOrder: boolean;
}

const DUPLICATE_FIELDS = ['administration', 'serviceCode', 'documentRegNumber', 'description', 'channel', 'documentId'] as const;

/**
 * Records one status change of a service and its outbox row. Synchronous; call it inside the caller's
 * transaction (open it with `.immediate()` so that concurrent writers queue instead of failing); outside one it
 * opens its own. Invalid input throws a coded GatewayError before anything is written.
 *
 * Idempotent on (RNU, status, occurredAt): a repeat returns the stored event with `duplicate: true`.
 */
export function recordServiceEvent(db: Db, input: ServiceEventInput, options: RecordOptions): RecordResult {
  const now = options.now?.() ?? new Date();
  const event = normalizeServiceEvent(input, {
    vocabulary: options.vocabulary ?? DEFAULT_VOCABULARY,
    administration: options.administration,
    fallbackServiceCode: () => knownServiceCode(db, input.rnu) ?? options.defaultServiceCode,
    demoMode: options.demoMode,
    maxFutureSkewMs: options.maxFutureSkewMs,
    now,
  });
  const run = () => insertEvent(db, event, options, now);
  return db.inTransaction ? run() : db.transaction(run).immediate();
}

function insertEvent(db: Db, event: NormalizedEvent, options: RecordOptions, now: Date): RecordResult {
  if (event.documentId !== null && !statement(db, 'SELECT 1 FROM documents WHERE id = ?').get(event.documentId)) {
    throw new GatewayError('GW_ERR_EJOURNAL_EVENT_INVALID', 'documentId: no such document in the gateway');
  }
  const existing = statement(db, `SELECT ${EVENT_COLUMNS} FROM ejournal_events e WHERE e.rnu = ? AND e.status = ? AND e.occurred_at = ?`)
    .get(event.rnu, event.status, event.occurredAt) as Record<string, unknown> | undefined;
  if (existing) {
    const stored = toServiceEvent(existing);
    const differences = DUPLICATE_FIELDS.filter((f) => (stored[f] ?? null) !== (event[f] ?? null));
    return { event: stored, outbox: null, duplicate: true, differences, parked: false, outOfOrder: false };
  }

  // Late: a later event of this RNU has been claimed for sending, so eJournal may already have it.
  const late = statement(db, 'SELECT 1 FROM ejournal_events WHERE rnu = ? AND occurred_at > ? AND first_sent_at IS NOT NULL LIMIT 1')
    .get(event.rnu, event.occurredAt) !== undefined;
  if (late && options.lateEvents === 'reject') {
    throw new GatewayError('GW_ERR_EJOURNAL_OUT_OF_ORDER', `occurredAt: ${event.occurredAt} is earlier than an event already sent for this RNU`);
  }
  // Parked: an earlier (or equally timed, recorded before) event of this RNU is not resolved yet. This event
  // has the highest rnu_seq, so every unresolved event not later than it precedes it.
  const parked = statement(db, `SELECT 1 FROM ejournal_events WHERE rnu = ? AND state IN ('pending', 'sending') AND occurred_at <= ? LIMIT 1`)
    .get(event.rnu, event.occurredAt) !== undefined;

  const at = now.toISOString();
  const eventUid = randomUUID();
  // The event's id goes into its outbox row's payload (the handler's lookup); we hold the write lock from the
  // outbox insert on, and the primary key refuses a second row with this id should anything race.
  const id = (statement(db, 'SELECT COALESCE(MAX(id), 0) + 1 AS id FROM ejournal_events').get() as { id: number }).id;
  const outbox = addOutboxEntry(db, {
    kind: EJOURNAL_OUTBOX_KIND, destination: EJOURNAL_DESTINATION, documentId: event.documentId, payload: { eventId: id, eventUid },
    notBefore: parked ? new Date(now.getTime() + (options.parkMs ?? 5 * 60_000)) : now,
  });
  const sequence = (statement(db, 'SELECT COALESCE(MAX(rnu_seq), 0) + 1 AS s FROM ejournal_events WHERE rnu = ?').get(event.rnu) as { s: number }).s;
  statement(db, `INSERT INTO ejournal_events (id, event_uid, rnu, rnu_seq, status, occurred_at, administration, service_code,
      document_reg_number, description, channel, source, lifecycle, document_id, demo, state, waiting, out_of_order, outbox_id, recorded_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)`)
    .run(id, eventUid, event.rnu, sequence, event.status, event.occurredAt, event.administration, event.serviceCode, event.documentRegNumber,
      event.description, event.channel, event.source, event.lifecycle, event.documentId, event.demo ? 1 : 0, parked ? 1 : 0, late ? 1 : 0,
      outbox.id, at, at);
  // Written only for an RNU new to the gateway (or one still without a service code): an unchanged row costs a page.
  statement(db, `INSERT INTO ejournal_rnus (rnu, origin, demo, service_code, created_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (rnu) DO UPDATE SET service_code = excluded.service_code WHERE ejournal_rnus.service_code IS NULL`)
    .run(event.rnu, event.demo ? 'demo' : (options.origin ?? 'given'), event.demo ? 1 : 0, event.serviceCode, at);
  // No RNU, description or registration number in the delivery log: they relate to a person's request.
  options.log.append({
    type: 'ejournal-event', direction: 'out', counterparty: { name: 'eJournal' }, status: event.status,
    outcome: late ? 'recorded-out-of-order' : 'recorded', actor: event.source,
    ...(event.documentId ? { documentId: event.documentId } : {}),
    detail: `event ${eventUid}${event.lifecycle ? ` (${event.lifecycle})` : ''}`,
  });
  const stored: ServiceEvent = {
    ...event, id, eventUid, sequence, state: 'pending', waiting: parked, defers: 0, claimSeq: null,
    claimExpiresAt: null, firstSentAt: null, deliveredAt: null, remoteOutcome: null, remoteId: null, outOfOrder: late, outboxId: outbox.id,
    recordedAt: at, updatedAt: at,
  };
  return { event: stored, outbox: parked ? null : outbox, duplicate: false, differences: [], parked, outOfOrder: late };
}
