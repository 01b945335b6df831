import { GatewayError } from '../errors/index.ts';
import type { SsevApiKind } from './types.ts';

/**
 * What SSEV accepts, checked before anything is queued so that the records system hears "too big" at once, in
 * its own request, and not days later from the dead-letter queue.
 *
 * SOAP (protocols.md §4.1, from the integration manual): at most 10 attachments and 10 000 KB per document;
 * the binding's maxReceivedMessageSize is 50 MB for the whole request. REST: the blobs service caps one upload
 * request at 53 477 376 bytes (about 51 MB), so one file may be that minus the multipart framing; the ESB API
 * publishes no attachment count or message total (we keep the SOAP figures: 10, and 10 files of the maximum).
 * Every figure can be lowered or raised in `ssev.limits`.
 */
export interface SsevLimits {
  readonly maxAttachments: number;
  readonly maxAttachmentBytes: number;
  readonly maxMessageBytes: number;
  readonly maxSubjectLength: number;
  readonly maxTextLength: number;
}

export const REST_MAX_BLOB_BYTES = 53_477_376 - 16 * 1024;

export const DEFAULT_LIMITS: Readonly<Record<SsevApiKind, SsevLimits>> = {
  soap: {
    maxAttachments: 10, maxAttachmentBytes: 10_000 * 1024, maxMessageBytes: 50 * 1024 * 1024,
    maxSubjectLength: 255, maxTextLength: 1_000_000,
  },
  rest: {
    maxAttachments: 10, maxAttachmentBytes: REST_MAX_BLOB_BYTES, maxMessageBytes: 10 * REST_MAX_BLOB_BYTES,
    maxSubjectLength: 255, maxTextLength: 1_000_000,
  },
};

export function resolveLimits(api: SsevApiKind, overrides: Partial<SsevLimits> = {}): SsevLimits {
  return { ...DEFAULT_LIMITS[api], ...overrides };
}

export interface LimitsInput {
  readonly subject: string;
  readonly text?: string;
  readonly rnu?: string;
  readonly attachments: ReadonlyArray<{ readonly fileName: string; readonly mimeType: string; readonly size: number }>;
}

/**
 * Throws GW_ERR_SSEV_INVALID_INPUT, GW_ERR_SSEV_TOO_MANY_ATTACHMENTS or GW_ERR_SSEV_TOO_LARGE. Details name
 * positions and sizes, never file names or text (they may be personal data).
 */
export function checkLimits(input: LimitsInput, limits: SsevLimits, api: SsevApiKind): void {
  const subject = typeof input.subject === 'string' ? input.subject.trim() : '';
  if (subject === '') throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', 'the subject is empty');
  if (input.subject.length > limits.maxSubjectLength) throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', `the subject is longer than ${limits.maxSubjectLength} characters`);
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f]/.test(input.subject + (input.text ?? ''))) throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', 'the subject or text holds control characters');
  const text = input.text ?? '';
  if (text.length > limits.maxTextLength) throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', `the text is longer than ${limits.maxTextLength} characters`);
  if (input.rnu !== undefined && (input.rnu.length === 0 || input.rnu.length > 64)) throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', 'the RNU must be 1 to 64 characters');
  const files = input.attachments;
  if (files.length === 0 && text.trim() === '') throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', 'a message needs a text or at least one attachment');
  if (files.length > limits.maxAttachments) {
    throw new GatewayError('GW_ERR_SSEV_TOO_MANY_ATTACHMENTS', `${files.length} attachments, SSEV accepts at most ${limits.maxAttachments}`);
  }
  let total = 0;
  files.forEach((f, i) => {
    const at = `attachment ${i + 1}`;
    if (typeof f.fileName !== 'string' || f.fileName.trim() === '' || f.fileName.length > 255 || /[\\/\x00-\x1f\x7f]/.test(f.fileName)) {
      throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', `${at}: the file name is empty, too long or holds a path or control characters`);
    }
    // The SOAP service requires an extension (docNameWithExtension); the REST blobs service does not.
    if (api === 'soap' && !/\.[A-Za-z0-9]{1,10}$/.test(f.fileName)) throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', `${at}: the file name has no extension (the SOAP service requires one)`);
    if (!/^[\w.+-]+\/[\w.+-]+$/.test(f.mimeType)) throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', `${at}: the media type is not type/subtype`);
    if (f.size === 0) throw new GatewayError('GW_ERR_SSEV_INVALID_INPUT', `${at}: the file is empty`);
    if (f.size > limits.maxAttachmentBytes) {
      throw new GatewayError('GW_ERR_SSEV_TOO_LARGE', `${at}: ${f.size} bytes, SSEV accepts at most ${limits.maxAttachmentBytes} per file (${api})`);
    }
    total += f.size;
  });
  if (total > limits.maxMessageBytes) throw new GatewayError('GW_ERR_SSEV_TOO_LARGE', `${total} bytes in all, SSEV accepts at most ${limits.maxMessageBytes} per message (${api})`);
}
