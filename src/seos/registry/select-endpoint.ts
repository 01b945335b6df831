import type { ParticipantStatus, RegistryEntity, RegistryService } from './types.ts';

/**
 * The protocol's rules for turning a registry entity into "where do I send, and may I" (protocols.md §3.3,
 * after `Utils/RegisteredEntitiesHelper.cs` GetEntityService and `DatabaseQueries.UpdateRegisteredEntities`):
 *
 * - the endpoint is the URI of the document-exchange service ("Документооборот", GUID below) when that service
 *   has a URI and is Active; otherwise the URI of the first service that has any URI;
 * - an Active entity takes the status of that chosen service (Inactive when there is none); any other entity
 *   keeps its own status.
 *
 * Where we are more tolerant than the reference: GUIDs compare case-insensitively with braces optional, status
 * names compare case-insensitively and may come as the enum's numbers, and a URI of only spaces counts as empty.
 * A status we cannot read is taken as Inactive: never send to a state we do not understand.
 */
export const DOCUMENT_EXCHANGE_SERVICE_GUID = '{7060efa8-f1fa-4938-8b2b-12a78c86988f}';

/** Lowercase with braces, for comparing and storing GUIDs that may come with or without braces. */
export function canonicalGuid(value: string): string {
  const v = value.trim().toLowerCase();
  return v.startsWith('{') ? v : `{${v}}`;
}

const STATUS_BY_TEXT: Record<string, ParticipantStatus> = {
  '0': 'Inactive', inactive: 'Inactive',
  '1': 'Active', active: 'Active',
  '2': 'TemporarilyInactive', temporarilyinactive: 'TemporarilyInactive',
};

/** Inactive=0, Active=1, TemporarilyInactive=2, by name (any case) or number; undefined when unreadable. */
export function parseParticipantStatus(value: string | number | undefined | null): ParticipantStatus | undefined {
  if (value === undefined || value === null) return undefined;
  return STATUS_BY_TEXT[String(value).trim().toLowerCase()];
}

function hasUri(service: RegistryService): boolean {
  return typeof service.uri === 'string' && service.uri.trim() !== '';
}

/** The service whose URI we deliver to, or undefined when no service has a URI. */
export function selectService(services: readonly RegistryService[]): RegistryService | undefined {
  const docExchange = services.find((s) =>
    typeof s.guid === 'string' && s.guid.trim() !== '' &&
    canonicalGuid(s.guid) === DOCUMENT_EXCHANGE_SERVICE_GUID &&
    hasUri(s) && parseParticipantStatus(s.status) === 'Active');
  return docExchange ?? services.find(hasUri);
}

export interface SelectedEndpoint {
  /** The chosen service's URI (trimmed), absent when no service has one. */
  endpointUrl?: string;
  service?: RegistryService;
  /** The participant's effective status. */
  status: ParticipantStatus;
}

export function selectEndpoint(entity: Pick<RegistryEntity, 'services' | 'status'>): SelectedEndpoint {
  const service = selectService(entity.services);
  const own = parseParticipantStatus(entity.status) ?? 'Inactive';
  const status = own === 'Active' ? (service ? parseParticipantStatus(service.status) ?? 'Inactive' : 'Inactive') : own;
  return service ? { endpointUrl: service.uri.trim(), service, status } : { status };
}
