import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { csvHeader, csvLine, jsonLine, queryDeliveryLog, type DeliveryLogFilter } from '../../audit/index.ts';
import { addRoute, type ApiContext } from '../context.ts';

/**
 * GET /v1/audit: the delivery log for auditors, filtered by time, counterparty, GUID, status and type; a JSON
 * page, or a CSV (for Excel) or JSON-lines export of the whole selection. The export is read in chunks of
 * complete queries, so it neither holds the gateway's database connection between chunks nor grows in memory.
 */
const CHUNK = 1000;

type Query = { from?: string; to?: string; counterparty?: string; guid?: string; status?: string; type?: string; format: 'json' | 'csv' | 'jsonl'; limit?: number; afterSeq?: number };

export function registerAuditRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { options, schemas } = ctx;
  const { db, config } = options;

  addRoute(app, {
    method: 'GET', url: '/audit', roles: ['auditor'],
    schema: {
      summary: 'Query or export the delivery log',
      description: 'Entries hold metadata and hashes, never contents. `from`/`to` take a date (Bulgarian time) or a date-time with a zone.',
      tags: ['audit'],
      querystring: schemas.inline('AuditQuery'),
      produces: ['application/json', 'text/csv', 'application/jsonl'],
      response: { 200: { $ref: 'AuditPage#' } },
    },
    handler: async (request, reply) => {
      const q = request.query as Query;
      const filter: DeliveryLogFilter = {
        ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}), ...(q.counterparty ? { counterparty: q.counterparty } : {}),
        ...(q.guid ? { guid: q.guid } : {}), ...(q.status ? { status: q.status } : {}), ...(q.type ? { type: q.type } : {}),
        ...(q.afterSeq !== undefined ? { afterSeq: q.afterSeq } : {}),
      };
      if (q.format === 'json') {
        const limit = Math.min(q.limit ?? config.defaultPageSize, config.maxPageSize);
        const entries = queryDeliveryLog(db, { ...filter, limit: limit + 1 });
        const page = entries.slice(0, limit);
        return { entries: page, nextAfterSeq: entries.length > limit ? page[page.length - 1].seq : null };
      }
      queryDeliveryLog(db, { ...filter, limit: 1 }); // bad filters fail here, before the answer starts
      const csv = q.format === 'csv';
      const stream = Readable.from(exportChunks(filter, q.limit, csv));
      return reply
        .header('content-type', csv ? 'text/csv; charset=utf-8' : 'application/jsonl; charset=utf-8')
        .header('content-disposition', `attachment; filename="delivery-log.${csv ? 'csv' : 'jsonl'}"`)
        .send(stream);
    },
  });

  function* exportChunks(filter: DeliveryLogFilter, limit: number | undefined, csv: boolean): Generator<string> {
    if (csv) yield `\uFEFF${csvHeader()}`;
    let left = limit ?? Number.POSITIVE_INFINITY;
    let afterSeq = filter.afterSeq ?? 0;
    while (left > 0) {
      const entries = queryDeliveryLog(db, { ...filter, afterSeq, limit: Math.min(CHUNK, left) });
      if (entries.length === 0) return;
      yield entries.map(csv ? csvLine : jsonLine).join('');
      left -= entries.length;
      afterSeq = entries[entries.length - 1].seq;
      if (entries.length < CHUNK) return;
    }
  }
}
