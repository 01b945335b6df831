import type { EjournalConfig } from '../config/ejournal-config.ts';
import {
  DEFAULT_EJOURNAL_CHANNELS, DEFAULT_EJOURNAL_STATUSES, DEFAULT_LIFECYCLE_MAPPING, LIFECYCLE_EVENTS, type LifecycleEvent,
} from '../config/ejournal-defaults.ts';
import { GatewayError } from '../errors/index.ts';

export { DEFAULT_EJOURNAL_STATUSES, DEFAULT_LIFECYCLE_MAPPING, DEFAULT_EJOURNAL_CHANNELS, LIFECYCLE_EVENTS, type LifecycleEvent };

/**
 * The status vocabulary eJournal accepts and the mapping from the stages the gateway sees itself (a SEOS
 * document received, registered, ...) to those statuses. Both are configuration (`ejournal.statuses`,
 * `ejournal.lifecycle`) until the RNU standard defines them; the defaults are the provisional list of
 * protocols.md §5.3 A4. Statuses are opaque, case-sensitive codes: the gateway never interprets them, except
 * through this mapping.
 */
export interface Vocabulary {
  readonly statuses: readonly string[];
  readonly channels: readonly string[];
  isStatus(status: string): boolean;
  isChannel(channel: string): boolean;
  /** The status a lifecycle stage is reported as, or null when the stage is not reported. */
  statusFor(lifecycle: LifecycleEvent): string | null;
  /** Throws GW_ERR_EJOURNAL_STATUS_UNKNOWN unless `status` is in the vocabulary. */
  requireStatus(status: unknown): string;
}

export function createVocabulary(options: {
  statuses?: readonly string[];
  lifecycle?: Partial<Record<LifecycleEvent, string | null>>;
  channels?: readonly string[];
} = {}): Vocabulary {
  const statuses = Object.freeze([...(options.statuses ?? DEFAULT_EJOURNAL_STATUSES)]);
  const channels = Object.freeze([...(options.channels ?? DEFAULT_EJOURNAL_CHANNELS)]);
  const statusSet = new Set(statuses);
  const channelSet = new Set(channels);
  const mapping = new Map<LifecycleEvent, string | null>();
  for (const event of LIFECYCLE_EVENTS) {
    const status = options.lifecycle && Object.hasOwn(options.lifecycle, event) ? options.lifecycle[event]! : DEFAULT_LIFECYCLE_MAPPING[event];
    if (status !== null && !statusSet.has(status)) {
      throw new GatewayError('GW_ERR_CONFIG_INVALID', `ejournal lifecycle "${event}" maps to "${status}", which is not in the status vocabulary`);
    }
    mapping.set(event, status ?? null);
  }
  return {
    statuses,
    channels,
    isStatus: (status) => statusSet.has(status),
    isChannel: (channel) => channelSet.has(channel),
    statusFor: (lifecycle) => {
      if (!mapping.has(lifecycle)) throw new GatewayError('GW_ERR_EJOURNAL_EVENT_INVALID', `unknown lifecycle event (expected one of: ${LIFECYCLE_EVENTS.join(', ')})`);
      return mapping.get(lifecycle)!;
    },
    requireStatus: (status) => {
      if (typeof status !== 'string' || status === '') {
        throw new GatewayError('GW_ERR_EJOURNAL_STATUS_UNKNOWN', 'status: required (a code from the status vocabulary)');
      }
      if (!statusSet.has(status)) {
        // Echo the value only when it is a plain code: whatever else it is must not reach a log.
        const shown = /^[A-Za-z0-9_.:-]{1,64}$/.test(status) ? `"${status}"` : 'the given status';
        throw new GatewayError('GW_ERR_EJOURNAL_STATUS_UNKNOWN', `${shown} is not one of: ${statuses.join(', ')}`);
      }
      return status;
    },
  };
}

export const DEFAULT_VOCABULARY: Vocabulary = createVocabulary();

export function vocabularyFromConfig(config: Pick<EjournalConfig, 'statuses' | 'lifecycle' | 'channels'>): Vocabulary {
  return createVocabulary({ statuses: config.statuses, lifecycle: config.lifecycle, channels: config.channels });
}

export function isLifecycleEvent(value: unknown): value is LifecycleEvent {
  return typeof value === 'string' && (LIFECYCLE_EVENTS as readonly string[]).includes(value);
}
