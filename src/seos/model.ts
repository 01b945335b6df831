/**
 * The SEOS message model: every element of EGovMessaging.xsd as a typed value. Names follow the schema's
 * meaning in English; the XML names are in the builder and parser next to this file.
 */
export const SEOS_NS = 'http://schemas.egov.bg/messaging/v1';
export const DOCUMENT_URI_NS = 'http://ereg.egov.bg/segment/0009-000001';
/** The version we send; "1" and "1.0" are accepted (the XSD says "1", the reference sends "1.0"). */
export const SEOS_VERSION = '1.0';

export const MESSAGE_TYPES = [
  'MSG_DocumentRegistrationRequest',
  'MSG_DocumentStatusRequest',
  'MSG_DocumentStatusResponse',
  'MSG_Error',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** Statuses that go on the wire (the reference's internal DS_TRY_SEND/DS_SENT/DS_SENT_FAILED never do). */
export const DOCUMENT_STATUSES = [
  'DS_WAIT_REGISTRATION',
  'DS_REGISTERED',
  'DS_STOPPED',
  'DS_CLOSED',
  'DS_NOT_FOUND',
  'DS_ALREADY_RECEIVED',
  'DS_REJECTED',
] as const;
export type DocumentStatus = (typeof DOCUMENT_STATUSES)[number];

export const ERROR_KINDS = ['ERR_INTERNAL', 'ERR_EXTERNAL'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export const CORRESPONDENT_KINDS = ['Corr_Applicant', 'Corr_Other'] as const;
export type CorrespondentKind = (typeof CORRESPONDENT_KINDS)[number];

/** A participant: ЕИК/БУЛСТАТ, name, and its GUID in the SEOS registry (braced). */
export interface Participant {
  identifier: string;
  administrativeBodyName: string;
  guid: string;
}

export interface MessageHeader {
  /** As received ("1" or "1.0"); we always send "1.0". */
  version: string;
  messageType: MessageType;
  /** xsd:dateTime lexical form, kept exactly (offset and fractional digits included). */
  messageDate: string;
  sender: Participant;
  recipient: Participant;
  messageGuid: string;
}

export interface DocumentNumber {
  docNumber: string;
  /** xsd:date, YYYY-MM-DD (an optional timezone is kept as received). */
  docDate: string;
}

/** Segment 0009-000001: a registered document's URI; every part optional. */
export interface DocumentUri {
  registerIndex?: string;
  sequenceNumber?: string;
  receiptOrSigningDate?: string;
}

export interface DocumentId {
  /** At most one of `number` and `uri`. */
  number?: DocumentNumber;
  uri?: DocumentUri;
  documentGuid: string;
}

export interface Correspondent {
  name: string;
  city: string;
  address?: string;
  /** ЕГН/ЛНЧ: personal data, never logged. */
  egn?: string;
  idCard?: string;
  bulstat?: string;
  email?: string;
  phone?: string;
  mobilePhone?: string;
  /** The person with material responsibility (МОЛ). */
  mol?: string;
  comment?: string;
  kind?: CorrespondentKind;
}

/**
 * Where an attachment's bytes are: in memory, in a file (streamed when signing, for large attachments), or the
 * base64 text exactly as received in an incoming message (decoded only when somebody asks).
 */
export type AttachmentContent =
  | { readonly source: 'bytes'; readonly bytes: Buffer }
  | { readonly source: 'file'; readonly path: string }
  | { readonly source: 'base64'; readonly text: Buffer };

export interface Attachment {
  fileName: string;
  content: AttachmentContent;
  comment?: string;
  mimeType: string;
}

export interface ServiceItem {
  name: string;
  type: string;
  code: string;
}

/**
 * DocAddData is `anyType`: arbitrary content we keep as is. `xml` is the element's inner content as canonical
 * XML in which every namespace the content uses is declared on the top-level elements, so it can be stored,
 * compared and written back inside a new DocAddData unchanged.
 */
export interface AdditionalData {
  xml: string;
}

export interface SeosDocument {
  id: DocumentId;
  parentId?: DocumentId;
  kind: string;
  correspondents?: Correspondent[];
  attachments?: Attachment[];
  about?: string;
  service?: ServiceItem;
  comment?: string;
  additionalData?: AdditionalData;
  /** xsd:date: the requested deadline. */
  requestedCloseDate?: string;
  attentionTo?: string;
}

export interface RegistrationRequestBody {
  type: 'MSG_DocumentRegistrationRequest';
  document: SeosDocument;
  /** Required by the schema; the reference fills it with the first correspondent's name. */
  comment: string;
}

export interface StatusRequestBody {
  type: 'MSG_DocumentStatusRequest';
  docId: DocumentId;
}

export interface StatusResponseBody {
  type: 'MSG_DocumentStatusResponse';
  /** Carries the number/URI at the receiver. */
  docId: DocumentId;
  status: DocumentStatus;
  rejectionReason?: string;
  expectedCloseDate?: string;
  additionalData?: AdditionalData;
}

export interface ErrorBody {
  type: 'MSG_Error';
  /** The GUID of the message that caused the error. */
  messageGuid?: string;
  errorType: ErrorKind;
  description: string;
}

export type MessageBody = RegistrationRequestBody | StatusRequestBody | StatusResponseBody | ErrorBody;

export interface SeosMessage {
  header: MessageHeader;
  body: MessageBody;
}
