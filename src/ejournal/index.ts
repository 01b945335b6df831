/**
 * eJournal and RNU: every status change of an e-service, by RNU, delivered to eJournal in order.
 * See docs/ejournal-contract.md for the assumed contract and src/ejournal/ordering.ts for the ordering rule.
 */
export {
  validateRnu, isDemoRnu, RNU_MAX_LENGTH, DEMO_RNU_PREFIX,
  GivenRnuProvider, CentralRnuProvider, DemoRnuProvider, createRnuProvider,
  type RnuProvider, type RnuRequest, type IssuedRnu, type RnuOrigin, type CentralRnuOptions,
} from './rnu.ts';
export {
  createVocabulary, vocabularyFromConfig, isLifecycleEvent, DEFAULT_VOCABULARY,
  DEFAULT_EJOURNAL_STATUSES, DEFAULT_LIFECYCLE_MAPPING, DEFAULT_EJOURNAL_CHANNELS, LIFECYCLE_EVENTS,
  type Vocabulary, type LifecycleEvent,
} from './vocabulary.ts';
export { normalizeTime, type ServiceEventInput, type EventSource } from './event-input.ts';
export {
  recordServiceEvent, registerRnu, getServiceEvent, getServiceEventByOutbox, eventIdOf, serviceEventsOf,
  EJOURNAL_OUTBOX_KIND, EJOURNAL_DESTINATION,
  type ServiceEvent, type EventState, type RecordOptions, type RecordResult,
} from './events.ts';
export {
  raiseLifecycleEvent, attachRnu, isSkipped,
  type LifecycleContext, type LifecycleResult, type LifecycleSkip, type AttachRnuResult,
} from './lifecycle.ts';
export { createEjournalLifecycleListener, type EjournalListenerOptions } from './listener.ts';
export {
  claimEvent, claimInTransaction, resolveClaim, wakeNext, ClaimBatcher, DEFAULT_ORDERING, type OrderingOptions, type ClaimResult,
} from './ordering.ts';
export { createEjournalHandler, logEjournalDead, toMessage, type EjournalHandlerOptions } from './handler.ts';
export {
  EjournalClient, ejournalClientFromConfig,
  type EjournalClientOptions, type EjournalEventMessage, type PushResult,
} from './client.ts';
export { OAuth2ClientCredentials, TokenError, type OAuth2Options } from './oauth.ts';
export { eventsNeedingAttention, resendServiceEvent, skipServiceEvent, type AttentionEvent } from './operator.ts';
export { serviceTimeline, deliveryState, type ServiceTimeline, type TimelineEvent, type DeliveryState } from './timeline.ts';
export { serviceStatistics, statisticsCsv, type ServiceStatistics } from './stats.ts';
