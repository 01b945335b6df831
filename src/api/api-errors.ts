import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import { ContentTooLargeError } from '../store/content-store.ts';
import { describeValidationErrors } from './validation.ts';

/**
 * Everything that can go wrong in an API request becomes one catalogued GatewayError: Fastify's validation
 * errors (naming the field), size limits, media types, multipart limits, a malformed JSON body. The text of an
 * unexpected error is never sent: V8's JSON syntax errors, for one, quote the body, which may hold personal data.
 */
const TOO_LARGE = new Set(['FST_ERR_CTP_BODY_TOO_LARGE', 'FST_REQ_FILE_TOO_LARGE', 'FST_FILES_LIMIT', 'FST_PARTS_LIMIT', 'FST_FIELDS_LIMIT']);

export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof ContentTooLargeError) return new GatewayError('GW_ERR_API_TOO_LARGE', `limit ${error.limit} bytes`);
  if (isGatewayError(error)) {
    // The audit query reports bad filters with the CLI's code; over HTTP they are validation errors.
    if (error.code === 'GW_ERR_CLI_USAGE') return new GatewayError('GW_ERR_API_VALIDATION', `querystring.${error.detail ?? ''}`);
    return error;
  }
  const e = error as Partial<FastifyError> & { validationContext?: string; code?: string; name?: string };
  if (e && Array.isArray(e.validation)) return new GatewayError('GW_ERR_API_VALIDATION', describeValidationErrors(e.validation as never, e.validationContext ?? 'request'));
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code && TOO_LARGE.has(code)) return new GatewayError('GW_ERR_API_TOO_LARGE', code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'request body' : code);
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || code === 'FST_INVALID_MULTIPART_CONTENT_TYPE') {
    return new GatewayError('GW_ERR_API_UNSUPPORTED_MEDIA_TYPE');
  }
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return new GatewayError('GW_ERR_API_VALIDATION', 'body: is required (the JSON body is empty)');
  if (code === 'FST_PROTO_VIOLATION') return new GatewayError('GW_ERR_API_VALIDATION', 'body: a part is named after an Object.prototype property');
  if (e?.name === 'SyntaxError' || code === 'FST_ERR_CTP_INVALID_JSON_BODY') return new GatewayError('GW_ERR_API_VALIDATION', 'body: is not valid JSON');
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new GatewayError('GW_ERR_API_CONFLICT', 'a concurrent request recorded the same thing first; repeat the request to get its result');
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) return new GatewayError('GW_ERR_API_VALIDATION', code ? `request: refused (${code})` : 'request: refused');
  return new GatewayError('GW_ERR_INTERNAL');
}

/** The error handler of the API's context. */
export async function handleApiError(error: unknown, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const mapped = toGatewayError(error);
  if (mapped.status >= 500) {
    const e = error as { name?: string; code?: string; stack?: string };
    // Name, code and where, never the message: a message may quote input.
    request.log.error({ code: mapped.code, err: { name: e?.name, code: e?.code, at: e?.stack?.split('\n').slice(1, 8).join('\n') } }, 'request failed');
  } else {
    request.log.info({ code: mapped.code, detail: mapped.detail }, 'request refused');
  }
  if (mapped.code === 'GW_ERR_API_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="seos-gateway"');
  return reply.code(mapped.status).send(mapped.toJSON());
}
