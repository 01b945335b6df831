/**
 * The SEOS registry's data as it comes off the wire (EgovRegistry.wsdl, namespace `uri:egovmsg`). Strings stay
 * exactly as the registry gives them (GUIDs with or without braces, statuses as names or numbers); the directory
 * normalizes them when it stores a participant.
 */

/** The five operations of EgovRegistry.wsdl; the SOAPAction of each is `uri:egovmsg/<operation>`. */
export const REGISTRY_OPERATIONS = [
  'GetAllRecords', 'GetNewRecords', 'GetByEntityIdentifier', 'GetByGuid', 'GetByCertificateSN',
] as const;
export type RegistryOperation = (typeof REGISTRY_OPERATIONS)[number];

/** Registry `Service`: one service an administration publishes (the document exchange among them). */
export interface RegistryService {
  guid: string;
  name: string;
  /** The endpoint; may be empty. */
  uri: string;
  /** Active | Inactive | TemporarilyInactive, or 1 | 0 | 2. */
  status: string;
  type: string;
  /** xsd:integer, kept as text. */
  version: string;
}

export interface RegistryContact {
  phone?: string;
  fax?: string;
  emailAddress?: string;
}

/** Registry `Entity`: one participant (an administration or one of its units). */
export interface RegistryEntity {
  /** ЕИК/БУЛСТАТ. */
  entityIdentifier: string;
  guid: string;
  parentGuid?: string;
  administrativeBodyName: string;
  contact: RegistryContact;
  /** The hex serial of the certificate the participant signs with, as the registry holds it. */
  certificateSN?: string;
  services: RegistryService[];
  /** xsd:dateTime, lexical form kept. */
  lastChange?: string;
  status: string;
}

/** Registry `EGovMessageDir`: what every operation returns. */
export interface RegistryAnswer {
  entities: RegistryEntity[];
  /** xsd:dateTime of the registry's latest change, lexical form kept. */
  lastChange?: string;
}

/** Participant status in the protocol's enumeration (`eEntityServiceStatus`: Inactive=0, Active=1, TemporarilyInactive=2). */
export const PARTICIPANT_STATUSES = ['Inactive', 'Active', 'TemporarilyInactive'] as const;
export type ParticipantStatus = (typeof PARTICIPANT_STATUSES)[number];
