import { GatewayError } from '../errors/index.ts';
import type { SsevAttachmentInput, SsevProfile, SsevSendInput } from '../ssev/index.ts';

/**
 * A document the records system sent to POST /v1/documents (JSON or multipart), as an SSEV message, once routing
 * chose SSEV. SSEV carries a subject, a text, files, an RNU and a registration number; the SEOS-only parts of the
 * document (correspondents, service, parentId, requested close date, attention-to, URI) have no place in it and
 * stay with the records system.
 *
 *   subject ← document.about, else document.kind (SSEV allows 255 characters: longer is a coded 400)
 *   text    ← comment (the message comment), else document.comment
 */
export interface SendBodyForSsev {
  readonly comment?: string;
  readonly externalId?: string;
  readonly rnu?: string;
  readonly document: {
    readonly kind: string;
    readonly about?: string;
    readonly comment?: string;
    readonly id?: { documentGuid?: string; number?: { docNumber: string; docDate: string } };
  };
}

export function toSsevInput(
  body: SendBodyForSsev, recipient: SsevProfile, attachments: readonly SsevAttachmentInput[],
  extra: { idempotencyKey?: string; channelReason: string },
): SsevSendInput {
  const d = body.document;
  const text = body.comment ?? d.comment;
  const guid = d.id?.documentGuid?.toLowerCase();
  if (d.about === undefined && d.kind.trim() === '') throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', 'body.document.about: a subject is required for SSEV');
  return {
    recipient,
    subject: d.about ?? d.kind,
    ...(text !== undefined ? { text } : {}),
    attachments,
    kind: d.kind,
    channelReason: extra.channelReason,
    ...(guid ? { documentGuid: guid.startsWith('{') ? guid : `{${guid}}` } : {}),
    ...(d.id?.number ? { regNumber: d.id.number.docNumber, regDate: d.id.number.docDate } : {}),
    ...(body.externalId !== undefined ? { externalId: body.externalId } : {}),
    ...(extra.idempotencyKey !== undefined ? { idempotencyKey: extra.idempotencyKey } : {}),
    ...(body.rnu !== undefined ? { rnu: body.rnu } : {}),
  };
}
