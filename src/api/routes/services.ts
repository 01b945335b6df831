import type { FastifyInstance, FastifyReply } from 'fastify';
import { getOutboxEntry } from '../../delivery/outbox.ts';
import {
  deliveryState, eventIdOf, eventsNeedingAttention, isSkipped, resendServiceEvent, serviceStatistics, serviceTimeline, skipServiceEvent,
  statisticsCsv, validateRnu, type RecordResult, type ServiceEventInput,
} from '../../ejournal/index.ts';
import type { EjournalApi } from '../../ejournal/intake.ts';
import { GatewayError } from '../../errors/index.ts';
import { actorOf } from '../auth.ts';
import { addRoute, type ApiContext } from '../context.ts';

/**
 * eJournal: the status changes of e-services, by RNU (docs/ejournal-contract.md):
 * - POST /v1/services/{rnu}/events         the records system reports one stage of a service
 * - POST /v1/services/events               many stages in one request (one transaction, all or none)
 * - GET  /v1/services/{rnu}                the service's timeline, each event with its delivery state
 * - GET  /v1/statistics/services           counts for a period by status, service code, channel, delivery (JSON or CSV)
 * - POST /v1/documents/{id}/rnu            attach an RNU to a document later
 * - GET  /v1/operator/ejournal/events      rejected and dead events
 * - POST /v1/operator/ejournal/events/{id}/resend | /skip
 * The RNU in a path is percent-encoded (a `/` in it as %2F). It never reaches a log: the request log shows the
 * path with `{rnu}` in its place (server.ts), and error details name the field, never the value.
 */
interface EventJson {
  rnu?: string;
  status: string;
  occurredAt: string;
  administration?: string;
  serviceCode?: string;
  documentRegNumber?: string | null;
  description?: string | null;
  channel?: string | null;
  documentId?: string | null;
}

const EVENT_BODY_LIMIT = 64 * 1024;

export function registerServiceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { options, schemas } = ctx;
  const { db } = options;
  const ejournal = (): EjournalApi => {
    if (!options.ejournal) throw new GatewayError('GW_ERR_EJOURNAL_DISABLED');
    return options.ejournal;
  };
  const rnuParams = schemas.inline('RnuParams');
  const eventIdParams = schemas.inline('ServiceEventIdParams');
  // Room for the largest batch the configuration allows (an event is well under 4 KiB of JSON).
  const batchBodyLimit = Math.max(1024 * 1024, (options.ejournal?.maxEventsPerRequest ?? 0) * 4096);

  addRoute(app, {
    method: 'POST', url: '/services/:rnu/events', roles: ['connector'], bodyLimit: EVENT_BODY_LIMIT,
    schema: {
      summary: 'Report a stage of a service (an eJournal event)',
      description: 'Recorded with its delivery to eJournal in one transaction, then delivered in the order the stages happened. '
        + 'Idempotent on (RNU, status, occurredAt): the first answer is 201, a repeat 200 (not sent again).',
      tags: ['services'],
      params: rnuParams,
      body: { $ref: 'ServiceEventRequest#' },
      response: { 200: { $ref: 'ServiceEventRecorded#' }, 201: { $ref: 'ServiceEventRecorded#' } },
    },
    handler: async (request, reply) => {
      const rnu = validateRnu((request.params as { rnu: string }).rnu);
      const [result] = ejournal().intake.record([eventInput({ ...(request.body as EventJson), rnu })]);
      reply.header('location', `/v1/services/${encodeURIComponent(rnu)}`);
      return reply.code(result.duplicate ? 200 : 201).send(recordedView(result));
    },
  });

  addRoute(app, {
    method: 'POST', url: '/services/events', roles: ['connector'], bodyLimit: batchBodyLimit,
    schema: {
      summary: 'Report many stages at once (the fast way)',
      description: 'Up to ejournal.maxEventsPerRequest events, any RNUs, recorded in one transaction: all or none (a bad event refuses the '
        + 'batch with a code naming it as events[i]). Events of one RNU keep their order (by occurredAt, then their order here). '
        + 'Delivery jobs carry many events each, so this is how the records system reaches thousands of events per second.',
      tags: ['services'],
      body: { $ref: 'ServiceEventBatchRequest#' },
      response: { 200: { $ref: 'ServiceEventBatchResponse#' } },
    },
    handler: async (request, reply) => {
      const api = ejournal();
      const events = (request.body as { events: EventJson[] }).events;
      if (events.length > api.maxEventsPerRequest) {
        throw new GatewayError('GW_ERR_API_TOO_LARGE', `body.events: ${events.length} events, at most ${api.maxEventsPerRequest} (ejournal.maxEventsPerRequest)`);
      }
      const inputs = events.map((e, i) => eventInput({ ...e, rnu: validateRnu(e.rnu, `body.events[${i}].rnu`) }));
      const results = api.intake.record(inputs, { batch: true });
      const recorded = results.filter((r) => !r.duplicate).length;
      return reply.code(200).send({ recorded, repeats: results.length - recorded, events: results.map(recordedView) });
    },
  });

  addRoute(app, {
    method: 'GET', url: '/services/:rnu', roles: ['connector', 'operator', 'auditor'],
    schema: {
      summary: 'The timeline of a service',
      description: 'Every event of the RNU in the order it happened, with its delivery to eJournal (pending, waiting, sending, retrying, delivered, '
        + 'rejected, dead, skipped), and the documents that carry the RNU.',
      tags: ['services'],
      params: rnuParams,
      response: { 200: { $ref: 'ServiceTimeline#' } },
    },
    handler: async (request) => {
      ejournal();
      return serviceTimeline(db, (request.params as { rnu: string }).rnu);
    },
  });

  addRoute(app, {
    method: 'GET', url: '/statistics/services', roles: ['connector', 'operator', 'auditor'],
    schema: {
      summary: 'Service statistics for a period',
      description: 'Counts of the events that happened in [from, to): by status, by service code, by channel (as reported) and by delivery state. JSON or CSV.',
      tags: ['services'],
      querystring: schemas.inline('ServiceStatisticsQuery'),
      produces: ['application/json', 'text/csv'],
      response: { 200: { $ref: 'ServiceStatistics#' } },
    },
    handler: async (request, reply: FastifyReply) => {
      ejournal();
      const q = request.query as { from: string; to: string; format?: 'json' | 'csv' };
      const stats = serviceStatistics(db, { from: q.from, to: q.to });
      if (q.format !== 'csv') return stats;
      return reply.header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="service-statistics.csv"')
        .send(`\uFEFF${statisticsCsv(stats)}`);
    },
  });

  addRoute(app, {
    method: 'POST', url: '/documents/:id/rnu', roles: ['connector'], bodyLimit: EVENT_BODY_LIMIT,
    schema: {
      summary: 'Attach an RNU to a document',
      description: 'For a document sent or received without one. The stages a received document already passed are reported now, with their original times.',
      tags: ['services'],
      params: schemas.inline('IdParams'),
      body: { $ref: 'AttachRnuRequest#' },
      response: { 200: { $ref: 'AttachRnuResponse#' } },
    },
    handler: async (request) => {
      const body = request.body as { rnu: string; serviceCode?: string };
      const rnu = validateRnu(body.rnu);
      const documentId = (request.params as { id: string }).id;
      const result = ejournal().intake.attach(documentId, rnu, body.serviceCode);
      return {
        documentId: result.documentId, rnu: result.rnu,
        events: result.events.map((e) => (isSkipped(e)
          ? { stage: null, recorded: false, id: null, status: null, skipped: e.skipped, code: e.code ?? null }
          : { stage: e.event.lifecycle, recorded: !e.duplicate, id: e.event.id, status: e.event.status, skipped: null, code: null })),
      };
    },
  });

  addRoute(app, {
    method: 'GET', url: '/operator/ejournal/events', roles: ['operator'],
    schema: {
      summary: 'eJournal events that need a person',
      description: 'Rejected by eJournal (the later events of the RNU went on) and dead (retries spent; they hold back the later events of their RNU). Oldest first.',
      tags: ['operator'],
      response: { 200: { $ref: 'EjournalAttentionList#' } },
    },
    handler: async () => {
      ejournal();
      return { items: eventsNeedingAttention(db, { limit: options.config.maxPageSize }) };
    },
  });

  addRoute(app, {
    method: 'POST', url: '/operator/ejournal/events/:id/resend', roles: ['operator'],
    schema: {
      summary: 'Send a rejected or dead event again',
      description: 'With a new retry budget, after eJournal or the configuration was fixed. Logged with the operator key\'s id.',
      tags: ['operator'],
      params: eventIdParams,
      response: { 202: { $ref: 'EjournalActionResult#' } },
    },
    handler: async (request, reply) => {
      const api = ejournal();
      const id = (request.params as { id: number }).id;
      // The job in the same transaction: a worker process must not take the row up before its sequence is raised.
      db.transaction(() => api.schedule(resendServiceEvent(db, id, { log: options.log, actor: actorOf(request) })))();
      return reply.code(202).send({ id, action: 'resend', delivery: 'pending', woken: null });
    },
  });

  addRoute(app, {
    method: 'POST', url: '/operator/ejournal/events/:id/skip', roles: ['operator'],
    schema: {
      summary: 'Give up a dead event',
      description: 'It is never sent; the later events of its RNU may go. Logged with the operator key\'s id.',
      tags: ['operator'],
      params: eventIdParams,
      response: { 200: { $ref: 'EjournalActionResult#' } },
    },
    handler: async (request) => {
      const api = ejournal();
      const id = (request.params as { id: number }).id;
      const next = db.transaction(() => {
        const woken = skipServiceEvent(db, id, { log: options.log, actor: actorOf(request) });
        if (woken) api.schedule(woken);
        return woken;
      })();
      return { id, action: 'skip', delivery: 'skipped', woken: next ? eventIdOf(next) ?? null : null };
    },
  });

  function recordedView(r: RecordResult) {
    const e = r.event;
    const outbox = r.duplicate ? getOutboxEntry(db, e.outboxId) : undefined;
    return {
      id: e.id, eventId: e.eventUid, rnu: e.rnu, sequence: e.sequence, status: e.status, occurredAt: e.occurredAt,
      created: !r.duplicate, differences: [...r.differences], parked: r.parked, outOfOrder: r.outOfOrder || e.outOfOrder,
      delivery: outbox ? deliveryState(e, outbox) : r.parked ? 'waiting' : 'pending',
    };
  }
}

function eventInput(e: EventJson & { rnu: string }): ServiceEventInput {
  return {
    rnu: e.rnu, status: e.status, occurredAt: e.occurredAt, source: 'records-system',
    ...(e.administration !== undefined ? { administration: e.administration } : {}),
    ...(e.serviceCode !== undefined ? { serviceCode: e.serviceCode } : {}),
    documentRegNumber: e.documentRegNumber ?? null, description: e.description ?? null, channel: e.channel ?? null, documentId: e.documentId ?? null,
  };
}
