import type { Readable } from 'node:stream';

/**
 * What the SSEV channel needs from an SSEV API, whichever one the configuration chose: the ESB REST API
 * (rest-client.ts) and the SOAP integration service (soap-client.ts) both implement `SsevApi`. The channel,
 * the pollers and the routing know only this interface.
 */
export type SsevApiKind = 'rest' | 'soap';

/** SSEV target groups (esb: targetGroupId 1..3; soap: eProfileType Person / LegalPerson / Institution). */
export type SsevSubjectKind = 'person' | 'legal-entity' | 'institution';

export const TARGET_GROUP_OF: Readonly<Record<SsevSubjectKind, number>> = { person: 1, 'legal-entity': 2, institution: 3 };
export const KIND_OF_TARGET_GROUP: Readonly<Record<number, SsevSubjectKind>> = { 1: 'person', 2: 'legal-entity', 3: 'institution' };

/** Who to look up or send to: an ЕГН/ЛНЧ (person) or an ЕИК/БУЛСТАТ (company or administration). */
export interface SsevAddress {
  readonly identifier: string;
  /** When known; otherwise the lookup tries the kinds an identifier of this shape can be. */
  readonly kind?: SsevSubjectKind;
}

export interface SsevProfile {
  readonly kind: SsevSubjectKind;
  readonly identifier: string;
  readonly name: string;
  /** REST profile id; the SOAP API addresses recipients by identifier and type and has none. */
  readonly profileId?: number;
}

export interface SsevOutgoingAttachment {
  readonly fileName: string;
  readonly mimeType: string;
  readonly bytes: Buffer;
}

export interface SsevOutgoingMessage {
  readonly recipient: SsevProfile;
  readonly subject: string;
  readonly text?: string;
  /** The records system's RNU (REST passes it on; SSEV currently stores its own, protocols.md §4.3). */
  readonly rnu?: string;
  /** Our registration number, put on every attached document (SOAP DocumentRegistrationNumber). */
  readonly regNumber?: string;
  readonly attachments: readonly SsevOutgoingAttachment[];
}

export interface SsevSentStatus {
  /** The recipient opened the message. */
  readonly delivered: boolean;
  /** As SSEV reports it (local time without offset in the REST API). */
  readonly dateReceived?: string;
  readonly dateSent?: string;
  readonly rnu?: string;
  /** The raw answer, kept as evidence of delivery. */
  readonly evidence: Buffer;
}

export interface SsevSender {
  readonly profileId?: number;
  readonly name: string;
  /** ЕГН/ЕИК when SSEV tells it (REST profile lookup); '' otherwise. */
  readonly identifier: string;
  readonly kind?: SsevSubjectKind;
}

export interface SsevReceivedAttachment {
  readonly fileName: string;
  readonly mimeType: string;
  readonly sha256: string;
  readonly size: number;
}

export interface SsevReceivedMessage {
  readonly messageId: number;
  readonly subject: string;
  /** The message text (SOAP MessageText; REST: the text fields of the template, in order). */
  readonly text: string;
  readonly rnu?: string;
  readonly dateSent?: string;
  readonly dateReceived?: string;
  readonly sender: SsevSender;
  /** Already in the spool, in message order. */
  readonly attachments: readonly SsevReceivedAttachment[];
  /** The raw answer of "open" (without blob contents), kept as evidence. */
  readonly evidence: Buffer;
}

/** Where received files go: the attachment spool (content-addressed, fsynced). */
export interface SsevSpool {
  putBuffer(bytes: Buffer): { sha256: string; size: number };
  putStream(source: Readable, options?: { maxBytes?: number }): Promise<{ sha256: string; size: number }>;
}

export interface SsevApi {
  readonly kind: SsevApiKind;
  /** Registration check: the profile that can receive, or null when there is none (not an error). */
  lookup(address: SsevAddress): Promise<SsevProfile | null>;
  /** Sends one message (uploading attachments first where the API needs it); returns SSEV's message id. */
  send(message: SsevOutgoingMessage): Promise<number>;
  sentStatus(messageId: number): Promise<SsevSentStatus>;
  /**
   * Ids of inbox messages not yet taken. `isKnown` tells the client which ids the gateway has already taken, so
   * that it can stop paging early and leave them out.
   */
  listInbox(options?: { isKnown?: (messageId: number) => boolean }): Promise<number[]>;
  /** Opens a received message (this is what SSEV counts as delivery) and spools its attachments. */
  receive(messageId: number, spool: SsevSpool): Promise<SsevReceivedMessage>;
  close(): void;
}
