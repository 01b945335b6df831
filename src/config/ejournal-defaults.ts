/**
 * The defaults of the `ejournal` section that code outside configuration needs (the vocabulary, the field map, the
 * response rules). A leaf module without imports: ejournal-config.ts imports the readers, which import
 * load-config.ts, which imports ejournal-config.ts, so a module that imported constants from there first would
 * meet them uninitialized.
 */

/** Protocols §5.3 A4, the provisional status vocabulary. */
export const DEFAULT_EJOURNAL_STATUSES: readonly string[] = [
  'RECEIVED', 'REGISTERED', 'VALIDATION_FAILED', 'PAYMENT_REQUESTED', 'IN_PROGRESS', 'DENIED',
  'RESULT_READY', 'RESULT_SENT', 'DELIVERED', 'TERMINATED', 'CLOSED', 'CANCELED_BY_USER',
];

/** Stages of a service the gateway itself sees. */
export const LIFECYCLE_EVENTS = [
  'seos.received', 'seos.registered', 'seos.rejected', 'seos.stopped', 'seos.closed',
  'ssev.received', 'ssev.sent', 'ssev.delivered', 'result.ready', 'result.sent',
] as const;
export type LifecycleEvent = (typeof LIFECYCLE_EVENTS)[number];

/** null: the stage is not reported. */
export const DEFAULT_LIFECYCLE_MAPPING: Readonly<Record<LifecycleEvent, string | null>> = {
  'seos.received': 'RECEIVED',
  'seos.registered': 'REGISTERED',
  'seos.rejected': 'DENIED',
  'seos.stopped': 'TERMINATED',
  'seos.closed': 'CLOSED',
  'ssev.received': 'RECEIVED',
  'ssev.sent': 'RESULT_SENT',
  'ssev.delivered': 'DELIVERED',
  'result.ready': 'RESULT_READY',
  'result.sent': 'RESULT_SENT',
};

/** Channels the records system may name on an event (statistics group by them). */
export const DEFAULT_EJOURNAL_CHANNELS: readonly string[] = ['seos', 'ssev', 'counter', 'email', 'portal', 'post', 'phone', 'other'];

/** Where each event field goes in the JSON body; dotted paths nest (`service.code`), null leaves the field out. */
export interface EjournalFieldMap {
  readonly eventId: string | null;
  readonly rnu: string;
  readonly status: string;
  readonly occurredAt: string;
  readonly administration: string | null;
  readonly serviceCode: string | null;
  readonly documentRegNumber: string | null;
  readonly description: string | null;
  readonly channel: string | null;
  readonly sequence: string | null;
}

export const DEFAULT_EJOURNAL_FIELDS: EjournalFieldMap = {
  eventId: 'eventId', rnu: 'rnu', status: 'status', occurredAt: 'occurredAt', administration: 'administration',
  serviceCode: 'serviceCode', documentRegNumber: 'documentRegNumber', description: 'description', channel: 'channel', sequence: null,
};

/** How an HTTP answer of eJournal is classified. Codes in no list are `otherwise`. 401 always renews the token once first. */
export interface EjournalResponseRules {
  readonly accepted: readonly number[];
  readonly duplicate: readonly number[];
  readonly rejected: readonly number[];
  readonly transient: readonly number[];
  readonly otherwise: 'transient' | 'rejected';
  /** A 2xx answer whose JSON has this field with one of these values is a duplicate (for APIs that answer 200 to a repeat). */
  readonly duplicateWhen?: { readonly field: string; readonly values: readonly string[] };
  /** JSON field of eJournal's own id for the event, kept with the event. */
  readonly remoteIdField: string | null;
  /** JSON fields of an error answer kept (clipped) as the reason. */
  readonly errorCodeField: string | null;
  readonly errorMessageField: string | null;
}

export const DEFAULT_EJOURNAL_RESPONSES: EjournalResponseRules = {
  accepted: [200, 201, 202, 204],
  duplicate: [409],
  rejected: [400, 403, 404, 410, 413, 415, 422],
  transient: [408, 425, 429, 500, 502, 503, 504],
  otherwise: 'transient',
  remoteIdField: 'id',
  errorCodeField: 'error',
  errorMessageField: 'message',
};
