import { ERRORS, isGatewayError, type ErrorCode } from '../errors/index.ts';
import { verifySignedMessage } from '../seos/index.ts';
import type { ContentStore } from '../store/content-store.ts';
import type { Db } from '../store/database.ts';
import { GENESIS_HASH, canonicalJson, chainHash } from './canonical-json.ts';

export interface VerifyDeliveryLogOptions {
  /** Check that every archived file an entry names (wireSha256, replySha256) is there and hashes to its name. */
  readonly archive?: ContentStore;
  /** With `archive`: verify again the XML signature of the messages of message-sent / message-received entries. */
  readonly reverifySignatures?: boolean;
  /** Start at this seq (the chain is joined to the stored hash of entry from-1); default 1. */
  readonly from?: number;
}

/** The first entry at which the log or its evidence does not hold. */
export interface BrokenEntry {
  readonly seq: number;
  /** GW_ERR_AUDIT_CHAIN_BROKEN, GW_ERR_AUDIT_ARCHIVE_MISSING, GW_ERR_AUDIT_ARCHIVE_CORRUPT, or the GW_ERR_SIG_* code. */
  readonly code: ErrorCode;
  /** Technical, English. */
  readonly reason: string;
  /** For auditors, Bulgarian. */
  readonly reasonBg: string;
}

export interface DeliveryLogVerification {
  readonly ok: boolean;
  /** Entries read (up to and including the broken one). */
  readonly entries: number;
  readonly firstBroken?: BrokenEntry;
  /** Archived files found and hashed. */
  readonly archiveChecked: number;
  /** Archived messages whose signature was verified again. */
  readonly signaturesChecked: number;
  /**
   * The last entry verified, when the log is intact. Record it somewhere else (a ticket, a signed e-mail, eJournal):
   * whoever could rewrite the whole chain after an entry could not also rewrite a head kept outside the gateway.
   */
  readonly head?: { readonly seq: number; readonly hash: string };
}

interface Row { seq: number; at: string; entry_json: string; prev_hash: string; hash: string }

const SIGNED_MESSAGE_TYPES = new Set(['message-sent', 'message-received']);
const EVIDENCE_FIELDS = ['wireSha256', 'replySha256'] as const;

/**
 * Recomputes the hash chain of the delivery log (and, if asked, checks the archive and the signatures) and names
 * the first entry that does not hold. What it detects, and where it points:
 * - an entry whose content or hash column was changed: that entry (its content no longer hashes to its hash);
 * - a deleted entry: the missing seq; a deleted tail: the first missing seq (sqlite_sequence remembers the highest
 *   seq ever given);
 * - an inserted, moved or re-linked entry: the first entry whose prev_hash is not its predecessor's hash.
 * A broken log is reported, never thrown; only a failure to read (the database, an unreadable archive file) throws.
 * It reads one consistent snapshot in a read transaction, so it may run while the gateway appends.
 */
export function verifyDeliveryLog(db: Db, options: VerifyDeliveryLogOptions = {}): DeliveryLogVerification {
  return db.transaction(() => verifySnapshot(db, options))();
}

function verifySnapshot(db: Db, options: VerifyDeliveryLogOptions): DeliveryLogVerification {
  const from = options.from ?? 1;
  if (!Number.isSafeInteger(from) || from < 1) throw new TypeError(`from must be a positive integer, got ${from}`);
  const archive = options.archive;
  const reverify = Boolean(options.reverifySignatures && archive);
  let entries = 0;
  let archiveChecked = 0;
  let signaturesChecked = 0;
  const result = (firstBroken?: BrokenEntry, head?: { seq: number; hash: string }): DeliveryLogVerification => ({
    ok: firstBroken === undefined, entries, archiveChecked, signaturesChecked,
    ...(firstBroken ? { firstBroken } : {}), ...(head ? { head } : {}),
  });

  let expectedSeq = from;
  let expectedPrev = GENESIS_HASH;
  if (from > 1) {
    const before = db.prepare('SELECT hash FROM delivery_log WHERE seq = ?').get(from - 1) as { hash: string } | undefined;
    if (!before) {
      const exists = db.prepare('SELECT 1 FROM delivery_log WHERE seq >= ? LIMIT 1').get(from);
      if (!exists) return result(); // nothing to verify from there on
      return result(chainBroken(from - 1, 'the entry is missing (deleted)', 'записът липсва (изтрит е)'));
    }
    expectedPrev = before.hash;
  }
  const highWater = (db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'delivery_log'").get() as { seq: number } | undefined)?.seq ?? 0;

  // One row at a time (flat memory on a long log). No other statement may run on the connection while the
  // iterator is open (better-sqlite3's rule); the archive checks are file I/O only.
  let last: { seq: number; hash: string } | undefined;
  for (const row of db.prepare('SELECT seq, at, entry_json, prev_hash, hash FROM delivery_log WHERE seq >= ? ORDER BY seq').iterate(from) as Iterable<Row>) {
    entries++;
    const broken = checkRow(row, expectedSeq, expectedPrev);
    if (broken) return result(broken);
    const entry = JSON.parse(row.entry_json) as Record<string, unknown>;
    if (archive) {
      const evidence = checkEvidence(archive, row.seq, entry, reverify);
      archiveChecked += evidence.archiveChecked;
      signaturesChecked += evidence.signaturesChecked;
      if (evidence.broken) return result(evidence.broken);
    }
    expectedSeq = row.seq + 1;
    expectedPrev = row.hash;
    last = { seq: row.seq, hash: row.hash };
  }
  if (highWater >= expectedSeq) {
    return result(chainBroken(expectedSeq,
      `the entries from №${expectedSeq} to №${highWater} were deleted (the log had reached №${highWater})`,
      `записите от №${expectedSeq} до №${highWater} са изтрити (дневникът е достигал №${highWater})`));
  }
  return result(undefined, last);
}

/** The chain checks of one row, in the order that names the cause most precisely. */
function checkRow(row: Row, expectedSeq: number, expectedPrev: string): BrokenEntry | undefined {
  if (row.seq !== expectedSeq) {
    return chainBroken(expectedSeq,
      `the entry is missing (deleted); the next one is №${row.seq}`,
      `записът липсва (изтрит е); следващият е №${row.seq}`);
  }
  if (row.prev_hash !== expectedPrev) {
    return chainBroken(row.seq,
      `its prev_hash is not the hash of entry №${row.seq - 1} (an entry was inserted, moved or altered)`,
      `полето prev_hash не съвпада с хеша на запис №${row.seq - 1} (запис е вмъкнат, преместен или променен)`);
  }
  if (chainHash(row.prev_hash, row.entry_json) !== row.hash) {
    return chainBroken(row.seq,
      'the entry does not hash to its stored hash (the entry or its hash was altered)',
      'съдържанието на записа не съответства на хеша му (записът или хешът му е променен)');
  }
  let entry: unknown;
  try {
    entry = JSON.parse(row.entry_json);
  } catch {
    entry = undefined;
  }
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry) || canonicalJson(entry) !== row.entry_json) {
    return chainBroken(row.seq, 'entry_json is not canonical JSON of an object', 'записът не е във формата, в който дневникът записва');
  }
  const { seq, at } = entry as { seq?: unknown; at?: unknown };
  if (seq !== row.seq || at !== row.at) {
    return chainBroken(row.seq,
      'the seq or at column differs from the hashed entry',
      'номерът или времето на записа се различават от хешираните в него');
  }
  return undefined;
}

function checkEvidence(
  archive: ContentStore,
  seq: number,
  entry: Record<string, unknown>,
  reverify: boolean,
): { broken?: BrokenEntry; archiveChecked: number; signaturesChecked: number } {
  let archiveChecked = 0;
  let signaturesChecked = 0;
  const signed = reverify && SIGNED_MESSAGE_TYPES.has(String(entry.type));
  for (const field of EVIDENCE_FIELDS) {
    const sha = entry[field];
    if (sha === undefined) continue; // an empty reply has no file
    if (typeof sha !== 'string' || !/^[0-9a-f]{64}$/.test(sha)) {
      return { archiveChecked, signaturesChecked, broken: {
        seq, code: 'GW_ERR_AUDIT_ARCHIVE_MISSING',
        reason: `${field} is not a SHA-256`, reasonBg: `полето ${field} не е SHA-256 контролна сума`,
      } };
    }
    let bytes: Buffer | undefined;
    try {
      // The whole message is needed to verify its signature; otherwise it is hashed in steps.
      if (signed) bytes = archive.read(sha);
      else {
        const state = archive.check(sha);
        if (state !== 'ok') throw new ArchiveProblem(state === 'missing' ? 'GW_ERR_AUDIT_ARCHIVE_MISSING' : 'GW_ERR_AUDIT_ARCHIVE_CORRUPT');
      }
    } catch (error) {
      const code = error instanceof ArchiveProblem ? error.code : isGatewayError(error) ? error.code : undefined;
      if (code !== 'GW_ERR_AUDIT_ARCHIVE_MISSING' && code !== 'GW_ERR_AUDIT_ARCHIVE_CORRUPT') throw error;
      const what = code === 'GW_ERR_AUDIT_ARCHIVE_MISSING' ? ['is missing', 'липсва'] : ['does not match its SHA-256', 'е променено (контролната сума не съвпада)'];
      return { archiveChecked, signaturesChecked, broken: {
        seq, code,
        reason: `the archived message ${field} ${sha} ${what[0]}`,
        reasonBg: `архивираното съобщение (${field} ${sha}) ${what[1]}`,
      } };
    }
    archiveChecked++;
    if (bytes) {
      signaturesChecked++;
      try {
        verifySignedMessage(bytes);
      } catch (error) {
        if (!isGatewayError(error)) throw error;
        return { archiveChecked, signaturesChecked, broken: {
          seq, code: error.code,
          reason: `the signature of the archived message ${field} ${sha} does not verify: ${error.code}${error.detail ? ` ${error.detail}` : ''}`,
          reasonBg: `подписът на архивираното съобщение (${field} ${sha}) не е валиден: ${ERRORS[error.code].bg}`,
        } };
      }
    }
  }
  return { archiveChecked, signaturesChecked };
}

class ArchiveProblem extends Error {
  constructor(readonly code: 'GW_ERR_AUDIT_ARCHIVE_MISSING' | 'GW_ERR_AUDIT_ARCHIVE_CORRUPT') {
    super(code);
  }
}

function chainBroken(seq: number, reason: string, reasonBg: string): BrokenEntry {
  return { seq, code: 'GW_ERR_AUDIT_CHAIN_BROKEN', reason, reasonBg };
}
