import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GatewayError } from '../errors/index.ts';
import { Checkpointer } from './checkpointer.ts';
import { WalSync, attachWalSync } from './durability.ts';
import { MIGRATIONS, type Migration } from './migrations.ts';

export type Db = Database.Database;

const statements = new WeakMap<Db, Map<string, Database.Statement>>();

/**
 * A prepared statement, prepared once per connection and SQL text: preparing on every call cost about a tenth of
 * a busy gateway's CPU. Callers build SQL from a small fixed set of shapes, so the cache stays small.
 */
export function statement(db: Db, sql: string): Database.Statement {
  let cache = statements.get(db);
  if (!cache) {
    cache = new Map();
    statements.set(db, cache);
  }
  let prepared = cache.get(sql);
  if (!prepared) {
    prepared = db.prepare(sql);
    cache.set(sql, prepared);
  }
  return prepared;
}

/**
 * The system of record: one SQLite file in WAL mode. Everything the gateway acknowledges is committed here
 * first (with its delivery-log entry, in the same transaction); Redis only drives delivery.
 *
 * An acknowledged document must survive a power cut, not only a process crash. By default each commit syncs
 * the WAL (`synchronous = FULL`): right for the CLI and anything short-lived. A serving gateway opens with
 * `groupCommit`: commits only write the WAL (`synchronous = NORMAL`) and the gateway awaits `durable(db)`
 * (store/durability.ts) before each acknowledgement, so concurrent requests share one fsync made off the event
 * loop instead of each blocking the process in its own.
 */
export interface OpenDatabaseOptions {
  readonly migrations?: readonly Migration[];
  readonly groupCommit?: boolean;
  /** Where the checkpoint worker reports trouble (group commit only). */
  readonly log?: { warn(o: object, m?: string): void };
  /**
   * False: this connection never checkpoints, because another connection of the same process (the serve
   * thread's, with its checkpoint worker) does it for the whole database. Group commit only.
   */
  readonly checkpoints?: boolean;
}

export function openDatabase(file: string, options: OpenDatabaseOptions = {}): Db {
  if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const groupCommit = options.groupCommit === true && file !== ':memory:';
  db.pragma(groupCommit ? 'synchronous = NORMAL' : 'synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  immediateByDefault(db);
  migrate(db, options.migrations ?? MIGRATIONS);
  // A serving gateway also moves checkpoints off its event loop (store/checkpointer.ts).
  if (groupCommit) {
    const resolved = path.resolve(file);
    const checkpointer = options.checkpoints === false ? undefined : new Checkpointer(db, resolved, { log: options.log });
    if (!checkpointer) db.pragma('wal_autocheckpoint = 0'); // another connection checkpoints (see `checkpoints`)
    attachWalSync(db, new WalSync(resolved, db), checkpointer);
  }
  return db;
}

/**
 * Makes `db.transaction(fn)()` begin with BEGIN IMMEDIATE. The gateway's transactions read and then write; with
 * several processes on one database (`serve` and `seos-gateway worker`, or a CLI command next to a running
 * gateway) a deferred transaction that has read fails with SQLITE_BUSY the moment it tries to write after another
 * process committed, and busy_timeout does not help there. IMMEDIATE takes the write lock at BEGIN, where
 * busy_timeout waits. `.deferred()` stays available for a transaction that only reads.
 */
function immediateByDefault(db: Db): void {
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn: (...args: never[]) => unknown) => {
    const tx = transaction(fn);
    return Object.assign((...args: never[]) => tx.immediate(...args), {
      default: tx.immediate, deferred: tx.deferred, immediate: tx.immediate, exclusive: tx.exclusive,
    });
  }) as Db['transaction'];
}

/** Applies, in order and each in its own transaction, every migration newer than the database. */
export function migrate(db: Db, migrations: readonly Migration[]): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)');
  const current = (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
  const known = migrations.reduce((max, m) => Math.max(max, m.version), 0);
  if (current > known) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `the database is at schema version ${current}, newer than this gateway (${known}); upgrade the gateway`);
  }
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, new Date().toISOString());
    })();
  }
}

export function schemaVersion(db: Db): number {
  return (db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }).v;
}
