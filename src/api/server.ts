import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { GatewayConfig, LogLevel } from '../config/index.ts';
import { GatewayError, isGatewayError } from '../errors/index.ts';

export { GATEWAY_VERSION } from '../version.ts';
import { GATEWAY_VERSION } from '../version.ts';

/**
 * Log paths pino replaces with "[redacted]". Credentials first; personal data (ЕГН, names) must never be logged
 * at all, but when a later issue adds a field that might carry it, add its path here too.
 */
export const LOG_REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'password',
  '*.password',
  '*.*.password',
  // A Redis URL may carry a password (redis://:secret@host); the whole URL goes, the config is not worth a leak.
  'redisUrl',
  '*.redisUrl',
];

/**
 * The gateway's pino logger. Fastify requests are logged as method, path (without the query string, which could
 * carry personal data), host and peer address; no headers, no body.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' },
    serializers: { req: serializeRequest },
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

/**
 * One log line per request, when it is answered: method, path, host and peer (the `req` serializer), status and
 * time. Fastify's own request logging writes two (on arrival and on answer); at a few hundred requests a second
 * the arrival line cost CPU and told nothing the answered line does not. Fastify's other lines (errors it handles,
 * unknown routes) stay as they are.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest(): void {
    // the answered line carries the request too
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored');
    else reply.log.info({ req: request, res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

interface RequestLike {
  method: string;
  url: string;
  host?: string;
  ip?: string;
  raw: unknown;
}

function serializeRequest(req: unknown): unknown {
  // Anything other than a Fastify request (someone logging `{ req: {...} }` by hand) passes through; the redact
  // paths above still apply to it.
  if (typeof req !== 'object' || req === null || !('raw' in req)) return req;
  const request = req as RequestLike;
  return {
    method: request.method,
    url: loggablePath(request.url.split('?', 1)[0]),
    host: request.host,
    remoteAddress: request.ip,
  };
}

/**
 * A request path as it may be logged: an RNU in it (/v1/services/{rnu}...) is replaced by `{rnu}`. It relates to
 * a person's request, like the records the service is about.
 */
export function loggablePath(path: string): string {
  return path.replace(/^(\/v1\/services\/)(?!events$)[^/]+/, '$1{rnu}');
}

export interface BuildServerOptions {
  /** Where log lines go (default: stdout). Tests pass a stream to read them. */
  logStream?: DestinationStream;
}

/**
 * Builds the HTTP server without starting it: the caller decides where it listens (`app.listen`) or injects
 * requests. Today it answers only GET /health; the records-system API and the SEOS endpoint are added as plugins.
 */
export async function buildServer(config: GatewayConfig, options: BuildServerOptions = {}): Promise<FastifyInstance> {
  // Typed as Fastify's base logger so the instance is a plain FastifyInstance for plugins and callers.
  const loggerInstance: FastifyBaseLogger = createLogger(config.logLevel, options.logStream);
  const app = Fastify({ loggerInstance, logController: new OneLinePerRequest() });

  app.get('/health', async () => ({ status: 'ok', version: GATEWAY_VERSION }));

  // No detail on purpose: a path can carry identifiers, and details may reach the logs.
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send(new GatewayError('GW_ERR_NOT_FOUND').toJSON()));

  app.setErrorHandler(async (error, request, reply) => {
    if (!isGatewayError(error)) throw error; // Fastify's default handler answers everything else
    request.log[error.status >= 500 ? 'error' : 'info']({ code: error.code, detail: error.detail }, 'request failed');
    return reply.code(error.status).send(error.toJSON());
  });

  return app;
}
