import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../../errors/index.ts';
import { actorOf } from '../auth.ts';
import { addRoute, type ApiContext } from '../context.ts';
import { decodeCursor, encodeCursor } from '../cursor.ts';
import { findProblemDeliveries, resendDeliveries, type ProblemState } from '../deliveries.ts';
import { deliveryView } from '../views.ts';

/**
 * Operator actions:
 * - GET  /v1/operator/deliveries               failed, dead and stuck deliveries with their attempt history
 * - POST /v1/operator/deliveries/{id}/resend   one
 * - POST /v1/operator/deliveries/resend        every one that matches a filter
 * Each resend is logged in the delivery log as an `operator-action` with the operator key's id as actor.
 */
const ALL_PROBLEMS: readonly ProblemState[] = ['failed', 'dead', 'stuck'];

export function registerOperatorRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { options, schemas } = ctx;
  const { db, config } = options;

  addRoute(app, {
    method: 'GET', url: '/operator/deliveries', roles: ['operator'],
    schema: {
      summary: 'List failed, dead and stuck deliveries',
      description: 'Each with its destination, document, MessageGUID, last error and every attempt. Oldest first; page with `cursor`.',
      tags: ['operator'],
      querystring: schemas.inline('DeliveriesQuery'),
      response: { 200: { $ref: 'DeliveryList#' } },
    },
    handler: async (request) => {
      const q = request.query as { state?: ProblemState[]; stuckAfterSeconds?: number; destination?: string; kind?: string; limit?: number; cursor?: string };
      const limit = Math.min(q.limit ?? config.defaultPageSize, config.maxPageSize);
      const rows = findProblemDeliveries(db, {
        states: q.state?.length ? q.state : ALL_PROBLEMS, stuckAfterSeconds: q.stuckAfterSeconds ?? config.stuckAfterSeconds,
        ...(q.destination ? { destination: guidForm(q.destination) } : {}), ...(q.kind ? { kind: q.kind } : {}),
        ...(q.cursor ? { after: decodeCursor(q.cursor) } : {}), limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const down = new Map<string, boolean>();
      const last = page[page.length - 1];
      return {
        items: page.map((row) => deliveryView(db, row, down)),
        nextCursor: rows.length > limit && last ? encodeCursor(last.createdAt, last.id) : null,
      };
    },
  });

  addRoute(app, {
    method: 'POST', url: '/operator/deliveries/:id/resend', roles: ['operator'],
    schema: {
      summary: 'Resend one delivery',
      description: 'The same signed bytes and MessageGUID go out again, with a new retry budget.',
      tags: ['operator'],
      params: schemas.inline('IdParams'),
      response: { 202: { $ref: 'ResendResult#' } },
    },
    handler: async (request, reply) => {
      const [row] = resendDeliveries(resendContext(request), [(request.params as { id: string }).id], { strict: true });
      options.schedule(row);
      return reply.code(202).send({ resent: 1, ids: [row.id] });
    },
  });

  addRoute(app, {
    method: 'POST', url: '/operator/deliveries/resend', roles: ['operator'],
    schema: {
      summary: 'Resend every delivery that matches a filter',
      tags: ['operator'],
      body: { $ref: 'ResendFilter#' },
      response: { 202: { $ref: 'ResendResult#' } },
    },
    handler: async (request, reply) => {
      const f = request.body as { state: ProblemState[]; destination?: string; kind?: string; createdFrom?: string; createdTo?: string; stuckAfterSeconds?: number; limit?: number };
      const limit = f.limit ?? config.maxResendBatch;
      if (limit > config.maxResendBatch) throw new GatewayError('GW_ERR_API_VALIDATION', `body.limit: must be at most ${config.maxResendBatch} (api.maxResendBatch)`);
      const rows = findProblemDeliveries(db, {
        states: f.state, stuckAfterSeconds: f.stuckAfterSeconds ?? config.stuckAfterSeconds, limit,
        ...(f.destination ? { destination: guidForm(f.destination) } : {}), ...(f.kind ? { kind: f.kind } : {}),
        ...(f.createdFrom ? { createdFrom: f.createdFrom } : {}), ...(f.createdTo ? { createdTo: f.createdTo } : {}),
      });
      const resent = resendDeliveries(resendContext(request), rows.map((r) => r.id), { strict: false });
      for (const row of resent) options.schedule(row);
      return reply.code(202).send({ resent: resent.length, ids: resent.map((r) => r.id) });
    },
  });

  function resendContext(request: Parameters<typeof actorOf>[0]) {
    return { db, log: options.log, actor: actorOf(request), ...(options.lifecycle ? { lifecycle: options.lifecycle } : {}) };
  }
}

function guidForm(value: string): string {
  const v = value.toLowerCase();
  return v.startsWith('{') ? v : `{${v}}`;
}
