import { ERRORS, type ErrorCode, type ErrorSpec } from './catalogue.ts';

export { ERRORS, type ErrorCode, type ErrorSpec, type SeosErrorKey } from './catalogue.ts';

/**
 * An error from the catalogue. `detail` is technical and in English (an element path, what was expected); it
 * must never carry personal data or document content, because it may reach operational logs.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = ERRORS[code];
    super(detail ? `${code}: ${spec.en} ${detail}` : `${code}: ${spec.en}`, options);
    this.name = 'GatewayError';
    this.code = code;
    this.detail = detail;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  /** The Bulgarian text municipal staff read, with the technical detail appended where there is one. */
  get descriptionBg(): string {
    const spec: ErrorSpec = ERRORS[this.code];
    return this.detail ? `${spec.bg} (${this.detail})` : spec.bg;
  }

  get seosKey(): ErrorSpec['seos'] {
    return (ERRORS[this.code] as ErrorSpec).seos;
  }

  toJSON(): { code: ErrorCode; message: string; messageEn: string; detail?: string } {
    const spec: ErrorSpec = ERRORS[this.code];
    return { code: this.code, message: spec.bg, messageEn: spec.en, ...(this.detail ? { detail: this.detail } : {}) };
  }
}

export function isGatewayError(value: unknown, code?: ErrorCode): value is GatewayError {
  return value instanceof GatewayError && (code === undefined || value.code === code);
}
