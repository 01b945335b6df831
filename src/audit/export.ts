import { GatewayError } from '../errors/index.ts';
import type { Db } from '../store/database.ts';
import { parseLogRow, type LoggedEntry } from './delivery-log.ts';

/**
 * A selection of delivery-log entries for auditors. All conditions must hold.
 * - `from` / `to`: an ISO-8601 date-time with a zone (`2024-05-06T10:00:00+03:00`, `...Z`), or a date
 *   (`2024-05-06`), which means that whole day in Bulgarian time (Europe/Sofia). `from` is inclusive; `to` is
 *   exclusive for a date-time and includes the whole day for a date.
 * - `counterparty`: the administration's GUID (any case, braces optional) or ЕИК.
 * - `guid`: a MessageGUID or a DocumentGUID.
 * - `afterSeq` and `limit` page through the log in seq order (keyset pagination).
 */
export interface DeliveryLogFilter {
  readonly from?: string;
  readonly to?: string;
  readonly counterparty?: string;
  readonly guid?: string;
  readonly status?: string;
  readonly type?: string;
  readonly limit?: number;
  readonly afterSeq?: number;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
const BARE_GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The entries that match, parsed, in seq order. For the auditor API: page with `limit` and `afterSeq`. */
export function queryDeliveryLog(db: Db, filter: DeliveryLogFilter = {}): LoggedEntry[] {
  return [...iterateDeliveryLog(db, filter)];
}

/**
 * The same, one entry at a time (flat memory for a full export). While the iterator is open no other statement can
 * run on this connection, so a long export should use its own connection (the CLI does: it is its own process).
 */
export function* iterateDeliveryLog(db: Db, filter: DeliveryLogFilter = {}): Generator<LoggedEntry> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.from !== undefined) {
    where.push('at >= ?');
    params.push(instant(filter.from, 'from'));
  }
  if (filter.to !== undefined) {
    where.push('at < ?');
    params.push(instant(filter.to, 'to'));
  }
  if (filter.counterparty !== undefined) {
    where.push("(json_extract(entry_json, '$.counterparty.guid') = ? OR json_extract(entry_json, '$.counterparty.eik') = ?)");
    params.push(guidForm(filter.counterparty), filter.counterparty.trim());
  }
  if (filter.guid !== undefined) {
    where.push("(json_extract(entry_json, '$.messageGuid') = ? OR json_extract(entry_json, '$.documentGuid') = ?)");
    params.push(guidForm(filter.guid), guidForm(filter.guid));
  }
  if (filter.status !== undefined) {
    where.push("json_extract(entry_json, '$.status') = ?");
    params.push(filter.status);
  }
  if (filter.type !== undefined) {
    where.push("json_extract(entry_json, '$.type') = ?");
    params.push(filter.type);
  }
  if (filter.afterSeq !== undefined) {
    if (!Number.isSafeInteger(filter.afterSeq) || filter.afterSeq < 0) throw usage(`afterSeq must be a non-negative integer, got ${filter.afterSeq}`);
    where.push('seq > ?');
    params.push(filter.afterSeq);
  }
  let limit = '';
  if (filter.limit !== undefined) {
    if (!Number.isSafeInteger(filter.limit) || filter.limit < 1) throw usage(`limit must be a positive integer, got ${filter.limit}`);
    limit = ' LIMIT ?';
    params.push(filter.limit);
  }
  const sql = `SELECT seq, at, entry_json, prev_hash, hash FROM delivery_log${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq${limit}`;
  for (const row of db.prepare(sql).iterate(...params) as Iterable<Parameters<typeof parseLogRow>[0]>) yield parseLogRow(row);
}

/**
 * The CSV columns, in order. counterparty_* come from the nested counterparty object; prev_hash and hash let an
 * auditor re-check the chain of an exported range offline.
 */
export const CSV_COLUMNS = [
  'seq', 'at', 'type', 'direction', 'counterparty_guid', 'counterparty_eik', 'counterparty_name', 'message_guid',
  'document_guid', 'document_id', 'message_type', 'outcome', 'status', 'wire_sha256', 'reply_sha256', 'actor',
  'detail', 'prev_hash', 'hash',
] as const;

const BOM = '\uFEFF';

/**
 * RFC 4180 CSV: CRLF line ends, every field that holds a comma, quote, CR or LF quoted, quotes doubled. The text
 * starts with a UTF-8 byte order mark so that Excel reads Cyrillic correctly (pass `{ bom: false }` for a page that
 * is not the start of a file). A field that starts with = + - @ TAB or CR gets a leading apostrophe so that a
 * spreadsheet shows it as text instead of running it as a formula (OWASP "CSV injection"): counterparty names come
 * from other administrations. JSON lines are the exact form.
 */
export function toCsv(entries: Iterable<LoggedEntry>, options: { bom?: boolean; header?: boolean } = {}): string {
  let out = options.bom === false ? '' : BOM;
  if (options.header !== false) out += csvHeader();
  for (const entry of entries) out += csvLine(entry);
  return out;
}

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(',')}\r\n`;
}

/** One entry as one CSV record, CRLF included. */
export function csvLine(entry: LoggedEntry): string {
  const c = entry.counterparty ?? {};
  const values: Record<(typeof CSV_COLUMNS)[number], string | number | undefined> = {
    seq: entry.seq, at: entry.at, type: entry.type, direction: entry.direction,
    counterparty_guid: c.guid, counterparty_eik: c.eik, counterparty_name: c.name,
    message_guid: entry.messageGuid, document_guid: entry.documentGuid, document_id: entry.documentId,
    message_type: entry.messageType, outcome: entry.outcome, status: entry.status,
    wire_sha256: entry.wireSha256, reply_sha256: entry.replySha256, actor: entry.actor, detail: entry.detail,
    prev_hash: entry.prevHash, hash: entry.hash,
  };
  return `${CSV_COLUMNS.map((col) => csvField(values[col])).join(',')}\r\n`;
}

function csvField(value: string | number | undefined): string {
  if (value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** JSON lines: one entry per line, LF-terminated, exactly as stored plus seq, at, prevHash and hash. */
export function toJsonLines(entries: Iterable<LoggedEntry>): string {
  let out = '';
  for (const entry of entries) out += jsonLine(entry);
  return out;
}

export function jsonLine(entry: LoggedEntry): string {
  return `${JSON.stringify(entry)}\n`;
}

/** An ISO instant as the log stores it (`Date.toISOString`), so that text comparison orders by time. */
function instant(value: string, which: 'from' | 'to'): string {
  const v = value.trim();
  const date = DATE_RE.exec(v);
  if (date) {
    const [y, m, d] = [Number(date[1]), Number(date[2]), Number(date[3])];
    const day = new Date(Date.UTC(y, m - 1, d));
    if (day.getUTCFullYear() !== y || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) throw usage(`${which} "${value}" is not a date`);
    return new Date(sofiaMidnight(y, m - 1, which === 'to' ? d + 1 : d)).toISOString();
  }
  const t = DATETIME_RE.test(v) ? Date.parse(v) : Number.NaN;
  if (Number.isNaN(t)) throw usage(`${which} "${value}" is not a date (YYYY-MM-DD) or a date-time with a zone (2024-05-06T10:00:00+03:00)`);
  return new Date(t).toISOString();
}

/** The instant at which the given day (month 0-based; the day may overflow) begins in Europe/Sofia. */
function sofiaMidnight(year: number, month: number, day: number): number {
  const utcMidnight = Date.UTC(year, month, day);
  // Bulgaria is UTC+2 or UTC+3 and changes at 03:00/04:00 local time, never at midnight: the offset two hours
  // before UTC midnight is the offset at local midnight.
  return utcMidnight - sofiaOffsetMs(utcMidnight - 2 * 3600_000);
}

const SOFIA = new Intl.DateTimeFormat('en-US', {
  timeZone: 'Europe/Sofia', hourCycle: 'h23',
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
});

function sofiaOffsetMs(at: number): number {
  const parts = Object.fromEntries(SOFIA.formatToParts(new Date(at)).map((p) => [p.type, p.value]));
  const local = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second));
  return local - Math.floor(at / 1000) * 1000;
}

function guidForm(value: string): string {
  const v = value.trim().toLowerCase();
  return BARE_GUID_RE.test(v) ? `{${v}}` : v;
}

function usage(detail: string): GatewayError {
  return new GatewayError('GW_ERR_CLI_USAGE', detail);
}
