import type { Statement } from 'better-sqlite3';
import type { Db } from '../store/database.ts';
import { GENESIS_HASH, canonicalJson, chainHash } from './canonical-json.ts';

export type DeliveryLogEntryType =
  | 'message-sent'
  | 'message-received'
  | 'attempt'
  | 'status-change'
  | 'webhook'
  | 'operator-action'
  | 'registry-sync'
  | (string & {}); // keeps the known names suggested by editors while allowing new ones

/** An administration (never a person): GUID and ЕИК as in the SEOS registry, the administration's name. */
export interface DeliveryLogCounterparty {
  readonly guid?: string;
  readonly eik?: string;
  readonly name?: string;
}

/**
 * One entry of the auditors' delivery log: metadata and hashes of an exchange, never its content.
 *
 * PERSONAL DATA MUST NEVER BE PUT IN AN ENTRY (architecture principle 7; the log is append-only, so whatever goes
 * in can never be taken out, not even on a GDPR erasure request): no ЕГН or ЛНЧ, no names of persons (applicants,
 * correspondents, officials: `actor` is an account or role id such as `operator:it-admin-2` or `records-system`,
 * not a person's name), no document numbers, subjects, file names or contents, no text copied from a received
 * message. Names of administrations are public and fine. What a document contains lives in the evidence archive,
 * referenced here only by `wireSha256`/`replySha256`.
 *
 * `wireSha256` is the SHA-256 of the exact signed SEOS Message XML as it went on the wire (the text of Submit's
 * `request`, not the SOAP envelope); `replySha256` that of the synchronous reply (SubmitResult), absent when the
 * reply was empty. Both files are in the archive (ContentStore) before the entry is committed.
 */
export interface DeliveryLogEntry {
  readonly type: DeliveryLogEntryType;
  readonly direction?: 'in' | 'out';
  readonly counterparty?: DeliveryLogCounterparty;
  readonly messageGuid?: string;
  readonly documentGuid?: string;
  /** The gateway's own document id (documents.id). */
  readonly documentId?: string;
  readonly messageType?: string;
  /** A delivery attempt's typed outcome: delivered | rejected | transport-failure | duplicate | ... */
  readonly outcome?: string;
  /** A document status (DS_* or the gateway's own). */
  readonly status?: string;
  readonly wireSha256?: string;
  readonly replySha256?: string;
  /** Who did it: `gateway`, `records-system`, `peer`, or an operator's account id. */
  readonly actor?: string;
  /** Short technical text in English (an error code, an HTTP status); cut at 500 characters (other texts at 200). */
  readonly detail?: string;
}

/** An entry as stored: the entry with its place in the chain. */
export interface LoggedEntry extends DeliveryLogEntry {
  readonly seq: number;
  /** When it was appended, ISO-8601 UTC with milliseconds. */
  readonly at: string;
  readonly prevHash: string;
  readonly hash: string;
}

export const MAX_DETAIL_LENGTH = 500;
const MAX_FIELD_LENGTH = 200;
const STRING_FIELDS = [
  'type', 'direction', 'messageGuid', 'documentGuid', 'documentId', 'messageType', 'outcome', 'status',
  'wireSha256', 'replySha256', 'actor', 'detail',
] as const;
const COUNTERPARTY_FIELDS = ['guid', 'eik', 'name'] as const;
const SHA256_RE = /^[0-9a-f]{64}$/;

/**
 * The hash-chained, append-only delivery log (X-Road's message log is the model): each entry's hash covers the
 * previous entry's hash and the entry, so an entry that is changed, removed, inserted or moved breaks the chain at
 * that point, which `verifyDeliveryLog` reports. The triggers of migration 1 refuse UPDATE and DELETE.
 */
export class DeliveryLog {
  readonly #db: Db;
  readonly #clock: () => Date;
  readonly #last: Statement;
  readonly #highWater: Statement;
  readonly #insert: Statement;

  constructor(db: Db, options: { clock?: () => Date } = {}) {
    this.#db = db;
    this.#clock = options.clock ?? (() => new Date());
    this.#last = db.prepare('SELECT seq, hash FROM delivery_log ORDER BY seq DESC LIMIT 1');
    this.#highWater = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'delivery_log'");
    this.#insert = db.prepare('INSERT INTO delivery_log (seq, at, entry_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?)');
  }

  /**
   * Appends an entry and returns its place in the chain. Synchronous, on the same connection: call it inside the
   * transaction that commits the business change, so that the change and its entry are committed together or not
   * at all. Outside a transaction it opens its own IMMEDIATE one.
   *
   * The last entry is read and the new one written in one transaction, and better-sqlite3 is synchronous, so
   * within one process nothing can come between. Another process (the CLI, a second gateway worker) is kept out
   * by SQLite's write lock: callers should open their transactions with `.immediate()`. A deferred transaction
   * that read an older snapshot cannot fork the chain either: in WAL mode its first write fails with
   * SQLITE_BUSY_SNAPSHOT instead, and the seq PRIMARY KEY refuses a second entry with the same number.
   */
  append(entry: DeliveryLogEntry): { seq: number; hash: string } {
    const clean = sanitize(entry);
    const run = (): { seq: number; hash: string } => {
      const last = this.#last.get() as { seq: number; hash: string } | undefined;
      const highWater = (this.#highWater.get() as { seq: number } | undefined)?.seq ?? 0;
      // Past the highest seq ever given (sqlite_sequence), not only past the last row: if the tail of the log was
      // deleted behind the triggers' back, the gap stays visible to the verifier instead of being filled in.
      const seq = Math.max(last?.seq ?? 0, highWater) + 1;
      const prevHash = last?.hash ?? GENESIS_HASH;
      const at = this.#clock().toISOString();
      const entryJson = canonicalJson({ ...clean, seq, at });
      const hash = chainHash(prevHash, entryJson);
      this.#insert.run(seq, at, entryJson, prevHash, hash);
      return { seq, hash };
    };
    return this.#db.inTransaction ? run() : this.#db.transaction(run).immediate();
  }
}

/**
 * Checks the shape of an entry and returns it in its stored form (GUIDs lowercase, text clipped, no unknown
 * fields). Unknown fields are refused rather than dropped: a field nobody reviewed is how personal data slips into a
 * log that can never be cleaned. Those, like a malformed hash, are programming errors, hence TypeError and not a
 * catalogue code.
 */
function sanitize(entry: DeliveryLogEntry): DeliveryLogEntry {
  if (entry === null || typeof entry !== 'object') throw new TypeError('a delivery-log entry must be an object');
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(entry)) {
    const value = (entry as unknown as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (key === 'counterparty') {
      out.counterparty = sanitizeCounterparty(value);
      continue;
    }
    if (!(STRING_FIELDS as readonly string[]).includes(key)) {
      throw new TypeError(`unknown delivery-log field "${key}" (entries hold only reviewed metadata fields)`);
    }
    if (typeof value !== 'string') throw new TypeError(`delivery-log field "${key}" must be a string`);
    const text = clip(value, key === 'detail' ? MAX_DETAIL_LENGTH : MAX_FIELD_LENGTH);
    out[key] = key === 'messageGuid' || key === 'documentGuid' ? text.toLowerCase() : text;
  }
  if (typeof out.type !== 'string' || out.type === '') throw new TypeError('a delivery-log entry needs a type');
  if (out.direction !== undefined && out.direction !== 'in' && out.direction !== 'out') {
    throw new TypeError('delivery-log field "direction" must be "in" or "out"');
  }
  for (const key of ['wireSha256', 'replySha256'] as const) {
    if (out[key] !== undefined && !SHA256_RE.test(out[key] as string)) {
      throw new TypeError(`delivery-log field "${key}" must be a SHA-256 in lowercase hex`);
    }
  }
  return out as unknown as DeliveryLogEntry;
}

function sanitizeCounterparty(value: unknown): DeliveryLogCounterparty {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError('delivery-log field "counterparty" must be an object');
  }
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (!(COUNTERPARTY_FIELDS as readonly string[]).includes(key)) throw new TypeError(`unknown counterparty field "${key}"`);
    if (typeof v !== 'string') throw new TypeError(`counterparty field "${key}" must be a string`);
    out[key] = key === 'guid' ? clip(v, MAX_FIELD_LENGTH).toLowerCase() : clip(v, MAX_FIELD_LENGTH);
  }
  return out;
}

/**
 * Over-long text is cut, not refused: a long administration name from the registry or a long error detail must not
 * make the business transaction it belongs to fail.
 */
function clip(value: string, limit: number): string {
  return value.length > limit ? `${value.slice(0, limit - 1)}…` : value;
}

/** Parses a stored row into the entry as the auditor sees it. Throws on a row that is not valid JSON. */
export function parseLogRow(row: { seq: number; at: string; entry_json: string; prev_hash: string; hash: string }): LoggedEntry {
  const parsed = JSON.parse(row.entry_json) as Record<string, unknown>;
  return { ...(parsed as unknown as DeliveryLogEntry), seq: row.seq, at: row.at, prevHash: row.prev_hash, hash: row.hash };
}
