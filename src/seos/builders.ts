import type {
  DocumentId, DocumentStatus, ErrorKind, MessageBody, Participant, SeosDocument, SeosMessage, AdditionalData,
} from './model.ts';
import { SEOS_VERSION } from './model.ts';
import { formatDateTime, newGuid } from './values.ts';

/**
 * Constructors for the four message kinds with the header filled in the way the reference fills it: version
 * "1.0", a new lowercase braced MessageGUID, and the current local time with its offset.
 */
export interface Parties {
  sender: Participant;
  recipient: Participant;
  /** Defaults to a new GUID; a retry must reuse the first one, so callers that persist messages pass it. */
  messageGuid?: string;
  /** Defaults to now. */
  messageDate?: string;
}

function message(parties: Parties, body: MessageBody): SeosMessage {
  return {
    header: {
      version: SEOS_VERSION,
      messageType: body.type,
      messageDate: parties.messageDate ?? formatDateTime(new Date()),
      sender: parties.sender,
      recipient: parties.recipient,
      messageGuid: parties.messageGuid ?? newGuid(),
    },
    body,
  };
}

/** `comment` defaults to the first correspondent's name, as the reference does, or to the document kind. */
export function buildRegistrationRequest(parties: Parties, document: SeosDocument, comment?: string): SeosMessage {
  return message(parties, {
    type: 'MSG_DocumentRegistrationRequest',
    document,
    comment: comment ?? document.correspondents?.[0]?.name ?? document.kind,
  });
}

export function buildStatusRequest(parties: Parties, docId: DocumentId): SeosMessage {
  return message(parties, { type: 'MSG_DocumentStatusRequest', docId });
}

export interface StatusResponseInput {
  docId: DocumentId;
  status: DocumentStatus;
  rejectionReason?: string;
  expectedCloseDate?: string;
  additionalData?: AdditionalData;
}

export function buildStatusResponse(parties: Parties, input: StatusResponseInput): SeosMessage {
  return message(parties, { type: 'MSG_DocumentStatusResponse', ...input });
}

export function buildErrorMessage(
  parties: Parties,
  input: { description: string; errorType?: ErrorKind; messageGuid?: string },
): SeosMessage {
  return message(parties, {
    type: 'MSG_Error',
    ...(input.messageGuid ? { messageGuid: input.messageGuid } : {}),
    errorType: input.errorType ?? 'ERR_EXTERNAL',
    description: input.description,
  });
}
