/**
 * The SEOS registry: the SOAP rpc/encoded client, the protocol's endpoint-selection rules, the local copy of the
 * registry merged with configured participants, and the job that keeps that copy fresh.
 */
export {
  REGISTRY_OPERATIONS, PARTICIPANT_STATUSES,
  type RegistryOperation, type RegistryService, type RegistryContact, type RegistryEntity, type RegistryAnswer,
  type ParticipantStatus,
} from './types.ts';
export {
  REGISTRY_NS, MAX_REGISTRY_RESPONSE_BYTES, registrySoapAction, registryRequestPart, buildRegistryRequest,
  parseRegistryResponse, isRegistryGuid,
} from './rpc-encoded.ts';
export {
  DOCUMENT_EXCHANGE_SERVICE_GUID, canonicalGuid, parseParticipantStatus, selectService, selectEndpoint,
  type SelectedEndpoint,
} from './select-endpoint.ts';
export { createRegistryClient, type RegistryClient, type RegistryClientOptions, type RegistryClientTls } from './client.ts';
export {
  ParticipantDirectory, foldForSearch,
  type Participant, type StaticParticipant, type ApplyRegistryOptions, type ApplyRegistryResult, type LastSync,
} from './directory.ts';
export { RegistrySync, type RegistrySyncOptions, type RegistrySyncResult, type RegistrySyncLogger } from './sync.ts';
