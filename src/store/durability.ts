import fs from 'node:fs';
import type { Checkpointer } from './checkpointer.ts';
import { statement, type Db } from './database.ts';

/** WAL fsyncs one connection runs at once (see `WalSync.sync`). */
const MAX_CONCURRENT_FSYNCS = 2;

/**
 * Group commit for a SQLite database in WAL mode opened with `synchronous = NORMAL`.
 *
 * With `synchronous = FULL` every commit fsyncs the WAL on the event loop's thread (better-sqlite3 is
 * synchronous), so a busy gateway spent most of its time blocked in fsync, one per commit. With NORMAL a commit
 * only writes the WAL; it survives a crash of the process but not of the machine until the WAL is synced. The
 * gateway therefore syncs the WAL itself, off the event loop (libuv's thread pool), before it acknowledges
 * anything: `await durable(db)` after the commit and before the answer. Callers waiting at the same moment share
 * one fsync, which is what makes this cheaper than a sync per commit.
 *
 * The ordering this gives is the one `synchronous = FULL` gives for an acknowledgement: nothing is answered
 * before the commit it reports is on disk. SQLite itself still syncs the WAL before each checkpoint copies it
 * into the database file, so the database file never gets ahead of the WAL.
 */
export class WalSync {
  readonly #walFile: string;
  readonly #db: Db;
  /** The fsyncs under way, oldest first, each with the changes counted (`total_changes()`) when it started. */
  readonly #running: Array<{ readonly mark: number; readonly run: Promise<void> }> = [];
  /** Changes counted when the last completed fsync started: every commit up to them is on disk. */
  #durableMark = -1;
  #next: Promise<void> | undefined;
  #syncs = 0;
  #fd: number | undefined;
  #opening: Promise<number> | undefined;
  #observe: ((seconds: number) => void) | undefined;

  /**
   * The connection's change counter tells whether a caller has commits no fsync covers yet: one that has none need
   * not wait for another fsync.
   */
  constructor(databaseFile: string, db: Db) {
    this.#walFile = `${databaseFile}-wal`;
    this.#db = db;
  }

  /**
   * Reports how long each fsync took, from asking libuv's thread pool to its answer (metrics): what an
   * acknowledgement waits for when the disk is slow.
   */
  observeSyncs(observe: (seconds: number) => void): void {
    this.#observe = observe;
  }

  /** How many fsyncs of the WAL this process has made (for the benchmarks and tests). */
  get syncs(): number {
    return this.#syncs;
  }

  /**
   * Resolves once every commit made before the call is on disk: at once when the last completed fsync started
   * after the connection's last change, with a running fsync when one did, and otherwise with a new one: started
   * at once while fewer than two run, else the next after them, which all callers arriving meanwhile share.
   */
  sync(): Promise<void> {
    const mark = this.#changes();
    if (mark !== undefined && mark <= this.#durableMark) return Promise.resolve();
    const covering = mark === undefined ? undefined : this.#running.find((r) => r.mark >= mark);
    if (covering) return covering.run;
    // A commit that came after the running fsync started does not wait for it to finish before its own starts:
    // under load an fsync takes milliseconds (the disk is also taking checkpoints and the peer's syncs), and
    // waiting for one and then doing another doubled the accept tail. Two at most; later callers share the next.
    if (this.#running.length < MAX_CONCURRENT_FSYNCS) return this.#start();
    const newest = this.#running[this.#running.length - 1].run;
    this.#next ??= newest.then(
      () => { this.#next = undefined; return this.#start(); },
      () => { this.#next = undefined; return this.#start(); },
    );
    return this.#next;
  }

  #start(): Promise<void> {
    // Read before the fsync is asked for: every commit counted here is already written to the WAL (commits are
    // synchronous), so the fsync covers it.
    const mark = this.#changes() ?? -1;
    const run = this.#fsync()
      .then(() => { this.#durableMark = Math.max(this.#durableMark, mark); })
      .finally(() => { this.#running.splice(this.#running.findIndex((r) => r.run === run), 1); });
    this.#running.push({ mark, run });
    return run;
  }

  /**
   * The connection's count of changed rows since it opened, which grows with every commit that changes anything.
   * Undefined inside a transaction (the count includes changes not yet committed, which no fsync covers yet) and
   * once the connection is closed.
   */
  #changes(): number | undefined {
    const db = this.#db;
    if (!db.open || db.inTransaction) return undefined;
    return (statement(db, 'SELECT total_changes() AS n').get() as { n: number }).n;
  }

  async #fsync(): Promise<void> {
    // The WAL keeps its inode while any connection is open (SQLite resets it in place after a checkpoint and
    // deletes it only when the last connection closes), so one descriptor serves every sync.
    if (this.#fd === undefined) {
      // Concurrent first fsyncs share one open.
      this.#opening ??= new Promise<number>((resolve, reject) => fs.open(this.#walFile, 'r', (e, fd) => (e ? reject(e) : resolve(fd))))
        .finally(() => { this.#opening = undefined; });
      try {
        this.#fd = await this.#opening;
      } catch (error) {
        // No WAL file: every commit is already in the database file (checkpointed and synced by SQLite).
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
    }
    const fd = this.#fd;
    // fdatasync, as SQLite syncs its WAL itself: the data and the size, without the timestamps, which spares the
    // file system a journal commit whenever the WAL is rewritten in place (after each restart).
    const started = performance.now();
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
    this.#syncs++;
    this.#observe?.((performance.now() - started) / 1000);
  }

  /** Releases the WAL's descriptor (with the database connection: closeDatabase). */
  async close(): Promise<void> {
    const fd = this.#fd;
    this.#fd = undefined;
    await Promise.allSettled(this.#running.map((r) => r.run));
    if (fd !== undefined) await new Promise<void>((resolve) => fs.close(fd, () => resolve()));
  }
}

const walSyncs = new WeakMap<Db, WalSync>();
const checkpointers = new WeakMap<Db, Checkpointer>();

/**
 * Registers the group commit of a connection opened with `synchronous = NORMAL`, and the worker that checkpoints
 * its WAL (done by openDatabase).
 */
export function attachWalSync(db: Db, sync: WalSync, checkpointer?: Checkpointer): void {
  walSyncs.set(db, sync);
  if (checkpointer) checkpointers.set(db, checkpointer);
}

/** The worker checkpointing the connection's WAL, when it has one. */
export function checkpointerOf(db: Db): Checkpointer | undefined {
  return checkpointers.get(db);
}

/** The connection's group commit, when it has one (a database opened with `groupCommit`). */
export function walSyncOf(db: Db): WalSync | undefined {
  return walSyncs.get(db);
}

/** Closes a connection, and the group commit's descriptor and the checkpoint worker with it. */
export async function closeDatabase(db: Db): Promise<void> {
  // The worker's connection first: the last connection to close checkpoints the whole WAL and removes it.
  await checkpointers.get(db)?.stop();
  await walSyncs.get(db)?.close();
  db.close();
}

/**
 * Resolves once everything committed on this connection so far survives a power cut. Call it after a commit and
 * before acknowledging it. Immediate for a connection with `synchronous = FULL` (each commit was synced already).
 */
export function durable(db: Db): Promise<void> {
  return walSyncs.get(db)?.sync() ?? Promise.resolve();
}
