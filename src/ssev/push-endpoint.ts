import type { FastifyInstance, FastifyReply } from 'fastify';
import { GatewayError } from '../errors/index.ts';
import type { PushEvent } from './channel.ts';

/**
 * The SSEV push-notification endpoint (protocols.md §4.1, manual "Push нотификации"): SSEV POSTs
 * `{"EventType":"Received"|"Delivered","MessageId":<int>}` as application/json to the URL configured on the
 * administration's profile.
 *
 *   Received  → the channel takes that message from the inbox now (in the background);
 *   Delivered → the channel asks SSEV about that message and marks it delivered when SSEV confirms;
 *   a Delivered about a message this gateway did not send → logged and ignored, 200;
 *   anything malformed → 400 GW_ERR_SSEV_PUSH_MALFORMED.
 *
 * The answer does not wait for SSEV: a push is a hint, the pollers are the certainty, and SSEV does not retry
 * pushes. The composition root registers it on the listener `ssev.pushListener` names (the SEOS listener by
 * default: see docs/ssev.md):
 *
 *   app.register(ssevPushEndpoint, { channel, path: config.ssev.pushPath });
 *
 * It is an encapsulated plugin (its raw-body parser applies to this route only).
 */
export interface SsevPushEndpointOptions {
  readonly channel: {
    pushKnown(event: PushEvent): boolean;
    handlePushLater(event: PushEvent): void;
  };
  /** Default /ssev/push. */
  readonly path?: string;
}

const MAX_BODY = 4096;

export async function ssevPushEndpoint(app: FastifyInstance, options: SsevPushEndpointOptions): Promise<void> {
  if (!options?.channel || typeof options.channel.handlePushLater !== 'function' || typeof options.channel.pushKnown !== 'function') {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', 'ssevPushEndpoint: the SSEV channel is required');
  }
  const path = options.path ?? '/ssev/push';
  if (!/^\/[A-Za-z0-9._~\-/]{0,200}$/.test(path)) throw new GatewayError('GW_ERR_CONFIG_INVALID', 'ssevPushEndpoint: path must start with /');
  const channel = options.channel;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_BODY }, (_request, body, done) => done(null, body));

  app.post(path, async (request, reply) => {
    let event: PushEvent;
    try {
      event = parsePush(request.body);
    } catch (error) {
      return refuse(reply, error as GatewayError);
    }
    if (!channel.pushKnown(event)) {
      request.log.info({ eventType: event.eventType, messageId: event.messageId }, 'ssev push about an unknown message; ignored');
      return reply.code(200).send({ status: 'ignored' });
    }
    request.log.info({ eventType: event.eventType, messageId: event.messageId }, 'ssev push accepted');
    channel.handlePushLater(event);
    return reply.code(200).send({ status: 'accepted' });
  });

  app.setErrorHandler(async (error, _request, reply) => {
    const code = (error as { code?: string }).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return refuse(reply, new GatewayError('GW_ERR_SSEV_PUSH_MALFORMED', `the body exceeds ${MAX_BODY} bytes`));
    if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return refuse(reply, new GatewayError('GW_ERR_SSEV_PUSH_MALFORMED', 'no usable body'));
    throw error;
  });
}

/** Exported for tests: the strict reading of a push body. Throws GW_ERR_SSEV_PUSH_MALFORMED. */
export function parsePush(body: unknown): PushEvent {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new GatewayError('GW_ERR_SSEV_PUSH_MALFORMED', 'the body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new GatewayError('GW_ERR_SSEV_PUSH_MALFORMED', 'the body is not a JSON object');
  const o = value as Record<string, unknown>;
  const eventType = o.EventType ?? o.eventType;
  const messageId = o.MessageId ?? o.messageId;
  if (eventType !== 'Received' && eventType !== 'Delivered') throw new GatewayError('GW_ERR_SSEV_PUSH_MALFORMED', 'EventType is not Received or Delivered');
  if (typeof messageId !== 'number' || !Number.isInteger(messageId) || messageId <= 0 || messageId > 2 ** 31 - 1) {
    throw new GatewayError('GW_ERR_SSEV_PUSH_MALFORMED', 'MessageId is not a positive integer');
  }
  return { eventType, messageId };
}

function refuse(reply: FastifyReply, error: GatewayError) {
  reply.log.info({ code: error.code, detail: error.detail }, 'ssev push refused');
  return reply.code(error.status).send(error.toJSON());
}
