import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors/index.ts';

/**
 * The queue dashboard for IT staff (bull-board) at /queues, behind the operator role. Browsers cannot send our
 * API-key header, so the key is also accepted as the password of HTTP Basic authentication (any user name):
 * the browser asks for it once. The dashboard shows the delivery queue; the outbox in SQLite stays the truth
 * (a job retried or removed here is re-created by the reconciler while its row is pending).
 */
export interface QueueDashboardOptions {
  readonly queue: Queue;
  /** Returns the role of a valid, unrevoked key. */
  readonly roleOfKey: (key: string) => string | undefined;
  readonly basePath?: string;
}

export async function registerQueueDashboard(app: FastifyInstance, options: QueueDashboardOptions): Promise<void> {
  const basePath = options.basePath ?? '/queues';
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({ queues: [new BullMQAdapter(options.queue)], serverAdapter, options: { uiConfig: { boardTitle: 'seos-gateway' } } });
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      const key = presentedKey(request.headers.authorization, request.headers['x-api-key']);
      const role = key ? options.roleOfKey(key) : undefined;
      if (role === 'operator') return;
      // Answered here rather than thrown: bull-board installs its own error handler in this scope.
      const error = new GatewayError(role ? 'GW_ERR_API_FORBIDDEN' : 'GW_ERR_API_UNAUTHORIZED', 'the queue dashboard is for the operator role');
      return reply.code(error.status).header('www-authenticate', 'Basic realm="seos-gateway operator", charset="UTF-8"').send(error.toJSON());
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: basePath });
  });
}

function presentedKey(authorization: string | undefined, apiKey: string | string[] | undefined): string | undefined {
  if (typeof apiKey === 'string') return apiKey.trim();
  if (!authorization) return undefined;
  const bearer = /^Bearer[ ]+(\S+)$/i.exec(authorization.trim());
  if (bearer) return bearer[1];
  const basic = /^Basic[ ]+([A-Za-z0-9+/=]+)$/i.exec(authorization.trim());
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
}
