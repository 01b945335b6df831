import { GatewayError } from '../errors/index.ts';
import type { Db } from '../store/database.ts';
import { EVENT_COLUMNS, toServiceEvent, type ServiceEvent } from './events.ts';
import { validateRnu, type RnuOrigin } from './rnu.ts';
import { statement } from '../store/database.ts';

/**
 * Reading a service back (`GET /v1/services/{rnu}`): its events in the order they happened, each with where its
 * delivery to eJournal stands, and the documents that carry the RNU.
 */
export type DeliveryState =
  /** Due, not yet tried. */
  | 'pending'
  /** Behind an earlier event of the same RNU that is not resolved yet. */
  | 'waiting'
  | 'sending'
  /** Failed for a reason that may pass; tried again later. */
  | 'retrying'
  | 'delivered'
  /** eJournal refused it; an operator may resend it. */
  | 'rejected'
  /** Retries spent: it holds back the later events of its RNU until an operator resends or skips it. */
  | 'dead'
  | 'skipped';

export interface TimelineEvent {
  readonly id: number;
  readonly eventId: string;
  readonly sequence: number;
  readonly status: string;
  readonly occurredAt: string;
  readonly recordedAt: string;
  readonly administration: string;
  readonly serviceCode: string;
  readonly channel: string | null;
  readonly documentRegNumber: string | null;
  readonly description: string | null;
  readonly documentId: string | null;
  readonly source: string;
  readonly lifecycle: string | null;
  readonly delivery: {
    readonly state: DeliveryState;
    readonly attempts: number;
    readonly lastError: string | null;
    readonly nextAttemptAt: string | null;
    readonly deliveredAt: string | null;
    /** eJournal said it already had the event. */
    readonly duplicate: boolean;
    readonly remoteId: string | null;
    /** Recorded after a later event of the RNU had been sent. */
    readonly outOfOrder: boolean;
  };
}

export interface ServiceTimeline {
  readonly rnu: string;
  readonly origin: RnuOrigin | null;
  readonly demo: boolean;
  readonly serviceCode: string | null;
  /** The latest event by time that eJournal has (delivered). */
  readonly lastDelivered: { readonly status: string; readonly occurredAt: string } | null;
  readonly events: readonly TimelineEvent[];
  readonly documents: ReadonlyArray<{ id: string; direction: string; channel: string; status: string; registrationNumber: string | null; createdAt: string }>;
}

type Row = Record<string, unknown> & { outboxState: string; attempts: number; lastError: string | null; nextAttemptAt: string };

export function deliveryState(event: ServiceEvent, outbox: { state: string; attempts: number }): DeliveryState {
  switch (event.state) {
    case 'delivered': return 'delivered';
    case 'rejected': return 'rejected';
    case 'skipped': return 'skipped';
    case 'sending': return 'sending';
    default:
      if (outbox.state === 'dead') return 'dead';
      if (event.waiting) return 'waiting';
      return outbox.attempts > 0 ? 'retrying' : 'pending';
  }
}

/** The timeline of one service; GW_ERR_EJOURNAL_RNU_INVALID for a bad RNU, GW_ERR_EJOURNAL_NOT_FOUND when the gateway knows nothing of it. */
export function serviceTimeline(db: Db, rnuInput: string): ServiceTimeline {
  const rnu = validateRnu(rnuInput);
  const rows = statement(db, `SELECT ${EVENT_COLUMNS}, o.state AS outboxState, o.attempts AS attempts, o.last_error AS lastError,
      o.next_attempt_at AS nextAttemptAt
    FROM ejournal_events e JOIN outbox o ON o.id = e.outbox_id WHERE e.rnu = ? ORDER BY e.occurred_at, e.rnu_seq`).all(rnu) as Row[];
  const documents = statement(db, `SELECT id, direction, channel, status, our_number AS registrationNumber, created_at AS createdAt
    FROM documents WHERE rnu = ? ORDER BY created_at`).all(rnu) as ServiceTimeline['documents'][number][];
  const known = statement(db, 'SELECT origin, demo, service_code AS serviceCode FROM ejournal_rnus WHERE rnu = ?').get(rnu) as
    { origin: RnuOrigin; demo: number; serviceCode: string | null } | undefined;
  if (rows.length === 0 && documents.length === 0 && !known) {
    throw new GatewayError('GW_ERR_EJOURNAL_NOT_FOUND', 'no event or document with this RNU');
  }
  const events = rows.map((row): TimelineEvent => {
    const e = toServiceEvent(row);
    const state = deliveryState(e, { state: row.outboxState, attempts: row.attempts });
    return {
      id: e.id, eventId: e.eventUid, sequence: e.sequence, status: e.status, occurredAt: e.occurredAt, recordedAt: e.recordedAt,
      administration: e.administration, serviceCode: e.serviceCode, channel: e.channel, documentRegNumber: e.documentRegNumber,
      description: e.description, documentId: e.documentId, source: e.source, lifecycle: e.lifecycle,
      delivery: {
        state, attempts: row.attempts, lastError: row.lastError,
        nextAttemptAt: state === 'pending' || state === 'retrying' || state === 'waiting' ? row.nextAttemptAt : null,
        deliveredAt: e.deliveredAt, duplicate: e.remoteOutcome === 'duplicate', remoteId: e.remoteId, outOfOrder: e.outOfOrder,
      },
    };
  });
  const delivered = events.filter((e) => e.delivery.state === 'delivered');
  const last = delivered[delivered.length - 1];
  return {
    rnu, origin: known?.origin ?? null, demo: known?.demo === 1, serviceCode: known?.serviceCode ?? events[0]?.serviceCode ?? null,
    lastDelivered: last ? { status: last.status, occurredAt: last.occurredAt } : null, events, documents,
  };
}
