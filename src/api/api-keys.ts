import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { statement, type Db } from '../store/database.ts';

/**
 * API keys of the records-system API, one or more per connector, each with one role:
 * - `connector`: the records system: send documents, read them, inbox, report statuses, request statuses;
 * - `operator`: IT staff: failed and stuck deliveries, resend; may read documents;
 * - `auditor`: the delivery log only.
 *
 * A key reads `sgw_<id>_<secret>`: the id (8 random bytes, hex) finds the row, the secret (32 random bytes,
 * base64url) proves possession. Only SHA-256(secret) is stored, and it is compared in constant time. SHA-256 and
 * not scrypt: a 256-bit random secret cannot be guessed from its hash, so a deliberately slow hash (made for
 * low-entropy passwords) would protect nothing and cost every request tens of milliseconds of CPU.
 */
export const API_ROLES = ['connector', 'operator', 'auditor'] as const;
export type ApiRole = (typeof API_ROLES)[number];

export interface ApiKeyRow {
  id: string;
  name: string;
  role: ApiRole;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** Who made a request: the key's id and role (the name stays out of logs: IT staff may name a key after a person). */
export interface ApiPrincipal {
  readonly keyId: string;
  readonly name: string;
  readonly role: ApiRole;
}

const KEY_RE = /^sgw_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const NAME_RE = /^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,99}$/u;
/** Recording the last use costs a write: at most once per key in this interval. */
const LAST_USED_EVERY_MS = 5 * 60_000;
const DUMMY_HASH = Buffer.alloc(32);

export function isApiRole(value: unknown): value is ApiRole {
  return typeof value === 'string' && (API_ROLES as readonly string[]).includes(value);
}

export function isValidKeyName(name: string): boolean {
  return NAME_RE.test(name);
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

const SELECT = 'SELECT id, name, role, created_at AS createdAt, revoked_at AS revokedAt, last_used_at AS lastUsedAt FROM api_keys';

/** Creates a key and returns it with its secret, which is never stored and cannot be shown again. */
export function createApiKey(db: Db, input: { name: string; role: ApiRole }, now = new Date()): { key: string; row: ApiKeyRow } {
  if (!isValidKeyName(input.name)) throw new TypeError('an API key name is 1-100 letters, digits, spaces, dots, dashes or underscores');
  if (!isApiRole(input.role)) throw new TypeError(`an API key role is one of ${API_ROLES.join(', ')}`);
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  db.prepare('INSERT INTO api_keys (id, name, role, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?)')
    .run(id, input.name, input.role, sha256(secret).toString('hex'), now.toISOString());
  return { key: `sgw_${id}_${secret}`, row: getApiKey(db, id)! };
}

export function getApiKey(db: Db, id: string): ApiKeyRow | undefined {
  return db.prepare(`${SELECT} WHERE id = ?`).get(id) as ApiKeyRow | undefined;
}

export function listApiKeys(db: Db): ApiKeyRow[] {
  return db.prepare(`${SELECT} ORDER BY created_at, id`).all() as ApiKeyRow[];
}

/** Revokes a key at once (every request looks the key up). Returns false when there is no such key. */
export function revokeApiKey(db: Db, id: string, now = new Date()): boolean {
  const result = db.prepare('UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?').run(now.toISOString(), id);
  return result.changes > 0;
}

/**
 * The keys of one database, checked per request. The secret's hash is compared in constant time, and an
 * unknown id costs the same comparison, so the answer time says nothing about which part was wrong.
 */
export class ApiKeyVerifier {
  readonly #db: Db;
  readonly #lastUsedWritten = new Map<string, number>();

  constructor(db: Db) {
    this.#db = db;
  }

  verify(presented: string): ApiPrincipal | undefined {
    const m = KEY_RE.exec(presented);
    if (!m) return undefined;
    const row = statement(this.#db, 'SELECT id, name, role, secret_sha256 AS secret, revoked_at AS revokedAt FROM api_keys WHERE id = ?')
      .get(m[1]) as { id: string; name: string; role: ApiRole; secret: string; revokedAt: string | null } | undefined;
    const stored = row ? Buffer.from(row.secret, 'hex') : DUMMY_HASH;
    const matches = timingSafeEqual(sha256(m[2]), stored.length === 32 ? stored : DUMMY_HASH);
    if (!row || !matches || row.revokedAt !== null) return undefined;
    this.#touch(row.id);
    return { keyId: row.id, name: row.name, role: row.role };
  }

  #touch(id: string): void {
    const now = Date.now();
    if (now - (this.#lastUsedWritten.get(id) ?? 0) < LAST_USED_EVERY_MS) return;
    this.#lastUsedWritten.set(id, now);
    try {
      statement(this.#db, 'UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(new Date(now).toISOString(), id);
    } catch {
      // Best effort: a busy database must not turn a valid key away.
    }
  }
}
