import { GatewayError } from '../errors/index.ts';
import type { Db } from '../store/database.ts';
import { normalizeTime } from './event-input.ts';
import { statement } from '../store/database.ts';

/**
 * Statistics of reported service events for a period (by the time the stages happened, `from` inclusive, `to`
 * exclusive): counts by status, by service code, by channel (as the records system reported it; none given
 * counts as "unknown") and by delivery state, as JSON and as CSV.
 */
export interface ServiceStatistics {
  readonly from: string;
  readonly to: string;
  readonly events: number;
  /** Distinct RNUs with at least one event in the period. */
  readonly services: number;
  readonly byStatus: Readonly<Record<string, number>>;
  readonly byServiceCode: Readonly<Record<string, number>>;
  readonly byChannel: Readonly<Record<string, number>>;
  /** delivered, rejected, skipped, dead, in-progress (pending, waiting, sending, retrying). */
  readonly byDelivery: Readonly<Record<string, number>>;
}

/** A period bound: a date-time with a zone, or a date (YYYY-MM-DD, midnight UTC). */
function bound(value: string | Date, field: string): string {
  if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(value)) value = `${value}T00:00:00Z`;
  return normalizeTime(value, field, { maxFutureSkewMs: Number.POSITIVE_INFINITY });
}

export function serviceStatistics(db: Db, period: { from: string | Date; to: string | Date }): ServiceStatistics {
  const from = bound(period.from, 'from');
  const to = bound(period.to, 'to');
  if (from >= to) throw new GatewayError('GW_ERR_EJOURNAL_EVENT_INVALID', 'from: must be earlier than to');
  const group = (expression: string) => Object.fromEntries(
    (statement(db, `SELECT ${expression} AS k, COUNT(*) AS n FROM ejournal_events e JOIN outbox o ON o.id = e.outbox_id
      WHERE e.occurred_at >= ? AND e.occurred_at < ? GROUP BY k ORDER BY n DESC, k`).all(from, to) as Array<{ k: string; n: number }>)
      .map((r) => [r.k, r.n]),
  ) as Record<string, number>;
  const totals = statement(db, 'SELECT COUNT(*) AS events, COUNT(DISTINCT rnu) AS services FROM ejournal_events WHERE occurred_at >= ? AND occurred_at < ?')
    .get(from, to) as { events: number; services: number };
  return {
    from, to, events: totals.events, services: totals.services,
    byStatus: group('e.status'),
    byServiceCode: group('e.service_code'),
    byChannel: group(`COALESCE(e.channel, 'unknown')`),
    byDelivery: group(`CASE WHEN e.state IN ('delivered', 'rejected', 'skipped') THEN e.state WHEN o.state = 'dead' THEN 'dead' ELSE 'in-progress' END`),
  };
}

/** CSV (RFC 4180, CRLF, UTF-8): `dimension,key,count`. Cells that a spreadsheet would run as a formula are quoted with a leading apostrophe. */
export function statisticsCsv(stats: ServiceStatistics): string {
  const lines: string[][] = [
    ['dimension', 'key', 'count'],
    ['period', 'from', stats.from], ['period', 'to', stats.to],
    ['total', 'events', String(stats.events)], ['total', 'services', String(stats.services)],
  ];
  const add = (dimension: string, counts: Readonly<Record<string, number>>) => {
    for (const [key, n] of Object.entries(counts)) lines.push([dimension, key, String(n)]);
  };
  add('status', stats.byStatus);
  add('serviceCode', stats.byServiceCode);
  add('channel', stats.byChannel);
  add('delivery', stats.byDelivery);
  return lines.map((cells) => cells.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
