import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { GatewayError } from '../errors/index.ts';
import { statement, type Db } from './database.ts';

/** What was stored: the content address (lowercase hex SHA-256) and the size in bytes. */
export interface StoredContent {
  readonly sha256: string;
  readonly size: number;
}

/** The answer of `check`: whether the file named by a hash is there and still holds exactly those bytes. */
export type ContentCheck = 'ok' | 'missing' | 'corrupt';

/**
 * Small content kept in the gateway's database (table `content_blobs`) instead of in files of its own. A file costs
 * a create, a write, a rename and two fsyncs (the file and its directory), about a millisecond of CPU each on this
 * kind of machine, and a busy exchange stores three per message on each side; a row costs a few page writes to the
 * WAL, made durable by the group commit that the rows referring to it need anyway.
 */
export interface SmallContentInDatabase {
  readonly db: Db;
  /** Which store the rows belong to (`spool`, `archive`): two stores never see each other's content. */
  readonly name: string;
  /** Content up to this size goes to the database; larger content, and every stream, to files. 0: no new rows. */
  readonly maxBytes?: number;
}

/** Small enough that a row costs less than a file, and that readers load it whole anyway (they do up to 4 MiB). */
export const SMALL_CONTENT_MAX_BYTES = 256 * 1024;

/**
 * Raised by `putStream` when the content exceeds `maxBytes`. It carries GW_ERR_STORE_IO (the catalogue has no
 * "content too large" code for the store); callers that must answer 413 test `instanceof ContentTooLargeError`.
 */
export class ContentTooLargeError extends GatewayError {
  readonly limit: number;
  constructor(limit: number) {
    super('GW_ERR_STORE_IO', `the content exceeds the limit of ${limit} bytes; nothing was stored`);
    this.name = 'ContentTooLargeError';
    this.limit = limit;
  }
}

const SHA256_RE = /^[0-9a-f]{64}$/;
/** Temp files live in `<root>/tmp`, on the same file system as the final files so that rename is atomic. */
const TMP_DIR = 'tmp';
/** Temp names are `<pid>.<process token>.<random>.tmp`: the token tells our own in-flight writes from a crashed run's. */
const TMP_RE = /^(\d+)\.([0-9a-f]{16})\.[0-9a-f]{16}\.tmp$/;
/** A temp file of a live process idle this long is abandoned (guards against a recycled pid). */
const STALE_TEMP_MS = 60 * 60 * 1000;
const READ_CHUNK = 1024 * 1024;
/** Stored files are immutable: read-only for the owner and group, nothing for others (they may hold personal data). */
const FILE_MODE = 0o440;
const DIR_MODE = 0o750;
const PROCESS_TOKEN = randomBytes(8).toString('hex');
/** Written once a store has the one-level layout (`root/ab/<sha256>`). */
const LAYOUT_MARKER = '.layout';
const LAYOUT_VERSION = 'sha256-fanout-1';

/**
 * Content-addressed storage: content is named by the SHA-256 of its bytes. With `smallInDatabase`, content up to
 * its `maxBytes` that arrives in memory or in pieces is a row in the database (see SmallContentInDatabase); the
 * rest are files. Readers need not know which: `has`, `read`, `createReadStream`, `size` and `check` look in both;
 * only `path` is about files (callers use it for content larger than they read into memory).
 *
 * A row is committed on the gateway's connection before the rows that refer to it, so whatever makes those durable
 * (each commit's own sync, or the group commit awaited before an acknowledgement) makes it durable too: after a
 * crash SQLite recovers a prefix of the commits, never a reference without its content.
 *
 * Files: each file is named by the SHA-256 of its bytes, under `root/ab/<sha256>` (256
 * directories: a million files make about 4,000 per directory, which ext4 and xfs index; one level, so that a new
 * file rarely needs a new directory, whose creation would have to be synced into its parent as well). Used for attachment spool files and for the evidence archive of the exact
 * bytes that went on the wire (architecture principle 3): a name is a promise about the content, so a file is
 * written to a temp file, fsynced, renamed into place and its directory fsynced before `put*` returns. Once a put
 * has returned, the file survives a crash or a power cut.
 *
 * Only a 64-character lowercase hex string is ever turned into a path, so no caller can reach outside the root.
 */
export class ContentStore {
  readonly root: string;
  readonly #tmp: string;
  /**
   * Directories created for staged files whose own entries are not yet durable. Every `sync` fsyncs all of them
   * (a file may land in a directory another caller's stage created a moment before) and forgets them only after.
   */
  readonly #unsyncedDirs = new Set<string>();
  /** The fsync a stage started, by the object it returned (weak: forgotten with it). */
  readonly #syncing = new WeakMap<StoredContent, Promise<void>>();
  /** Fan-out directories known to exist: no mkdir for them again. */
  readonly #knownDirs = new Set<string>();
  /**
   * Open descriptors of the fan-out directories (at most 257), so `sync` fsyncs a directory without opening it
   * (a busy gateway syncs one per staged file). Only `sync` uses them; `close` releases them.
   */
  readonly #dirFds = new Map<string, number>();
  readonly #small: Required<SmallContentInDatabase> | undefined;
  /** What `#putRow` returned (weak: forgotten with it), so `sync` need not look for the row again. */
  readonly #rows = new WeakSet<StoredContent>();

  constructor(root: string, options: { smallInDatabase?: SmallContentInDatabase } = {}) {
    this.root = path.resolve(root);
    const small = options.smallInDatabase;
    this.#small = small ? { maxBytes: SMALL_CONTENT_MAX_BYTES, ...small } : undefined;
    this.#tmp = path.join(this.root, TMP_DIR);
    try {
      fs.mkdirSync(this.#tmp, { recursive: true, mode: DIR_MODE });
    } catch (error) {
      throw ioError(`cannot create ${this.#tmp}`, error);
    }
    this.#cleanTemps();
    this.#upgradeLayout();
  }

  /** Releases the directory descriptors kept for syncing (the gateway closes its stores when it stops). */
  close(): void {
    for (const fd of this.#dirFds.values()) closeQuietly(fd);
    this.#dirFds.clear();
  }

  /**
   * Stores bytes held in memory; identical content already there is kept as it is. A file is durable when this
   * returns; a row (small content in the database) as soon as anything committed after it is (class comment).
   */
  putBuffer(buf: Uint8Array): StoredContent {
    return this.#writeBuffer(buf, true);
  }

  /**
   * Stores content produced piece by piece, synchronously (for callers inside one synchronous unit of work, such
   * as the SEOS receiver decoding a large attachment slice by slice): memory holds one piece at a time.
   */
  putChunksSync(pieces: Iterable<Uint8Array>): StoredContent {
    return this.#writeChunks(pieces, true);
  }

  /**
   * Like putBuffer, without waiting for the disk: the file is in place (readable by its name) but survives a
   * power cut only once `sync` has resolved for it. A caller storing several files stages them all, awaits one
   * `sync` (the fsyncs run in parallel off the event loop) and only then commits the rows that refer to them.
   */
  stageBuffer(buf: Uint8Array): StoredContent {
    return this.#writeBuffer(buf, false);
  }

  /** Like putChunksSync, without waiting for the disk (see stageBuffer). */
  stageChunks(pieces: Iterable<Uint8Array>): StoredContent {
    return this.#writeChunks(pieces, false);
  }

  /**
   * Makes staged files durable: each file and the directory entries that name it, fsynced in libuv's thread pool.
   * Always syncs every file given, even one that was already there: an identical file staged a moment earlier by
   * a concurrent caller may not be on disk yet.
   */
  async sync(contents: readonly StoredContent[]): Promise<void> {
    const dirs = new Set<string>();
    const files: Promise<void>[] = [];
    for (const content of contents) {
      // A row: committed already, ahead of anything that will refer to it (see the class comment).
      if (this.#rows.has(content) || this.#smallRow(content.sha256, 'exists')) continue;
      const file = this.path(content.sha256);
      dirs.add(path.dirname(file));
      // The fsync a stage started on its own descriptor, or (content that was already there, or a copy of the
      // object a stage returned) a fresh one: an identical file staged by a concurrent caller may not be on disk yet.
      files.push(this.#syncing.get(content) ?? fsyncPath(file));
    }
    const created = [...this.#unsyncedDirs];
    for (const d of created) dirs.add(d);
    try {
      await Promise.all(files);
      await Promise.all([...dirs].map((d) => fsyncFd(this.#dirFd(d))));
    } catch (error) {
      throw ioError('cannot make stored content durable', error);
    }
    for (const d of created) this.#unsyncedDirs.delete(d);
  }

  #writeBuffer(buf: Uint8Array, durable: boolean): StoredContent {
    const sha256 = createHash('sha256').update(buf).digest('hex');
    const size = buf.byteLength;
    if (this.#small && this.#small.maxBytes > 0 && size <= this.#small.maxBytes) return this.#putRow(sha256, buf);
    if (this.#hasFile(sha256)) return { sha256, size };
    const tmp = this.#tempName();
    let fd: number | undefined;
    try {
      fd = fs.openSync(tmp, 'wx', FILE_MODE);
      let offset = 0;
      while (offset < size) offset += fs.writeSync(fd, buf, offset, size - offset);
      return this.#finish(fd, tmp, sha256, size, durable);
    } catch (error) {
      if (fd !== undefined) closeQuietly(fd);
      removeQuietly(tmp);
      throw ioError(`cannot store ${sha256}`, error);
    }
  }

  #writeChunks(pieces: Iterable<Uint8Array>, durable: boolean): StoredContent {
    const hash = createHash('sha256');
    let tmp: string | undefined;
    let size = 0;
    let fd: number | undefined;
    const open = () => fs.openSync(tmp = this.#tempName(), 'wx', FILE_MODE);
    // Small content is collected (copied: a producer may reuse its buffer) until it proves too large for a row.
    let held: Buffer[] | undefined = this.#small && this.#small.maxBytes > 0 ? [] : undefined;
    const write = (chunk: Uint8Array) => {
      let offset = 0;
      while (offset < chunk.byteLength) offset += fs.writeSync(fd!, chunk, offset, chunk.byteLength - offset);
    };
    try {
      for (const chunk of pieces) {
        hash.update(chunk);
        size += chunk.byteLength;
        if (held && size <= this.#small!.maxBytes) {
          held.push(Buffer.from(chunk));
          continue;
        }
        fd ??= open();
        if (held) {
          for (const earlier of held) write(earlier);
          held = undefined;
        }
        write(chunk);
      }
      const sha256 = hash.digest('hex');
      if (held) return this.#putRow(sha256, Buffer.concat(held, size));
      fd ??= open();
      if (this.#hasFile(sha256)) {
        fs.closeSync(fd);
        removeQuietly(tmp!);
        return { sha256, size };
      }
      return this.#finish(fd, tmp!, sha256, size, durable);
    } catch (error) {
      if (fd !== undefined) closeQuietly(fd);
      if (tmp !== undefined) removeQuietly(tmp);
      throw ioError('cannot store content', error);
    }
  }

  /**
   * A complete temp file, still open: durable, it is fsynced and closed now and renamed; staged, it is renamed now
   * and its descriptor handed to an fsync in the thread pool (no second open), which `sync` awaits.
   */
  #finish(fd: number, tmp: string, sha256: string, size: number, durable: boolean): StoredContent {
    const stored: StoredContent = { sha256, size };
    if (durable) {
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      this.#commit(tmp, sha256, true);
      return stored;
    }
    this.#commit(tmp, sha256, false);
    const synced = new Promise<void>((resolve, reject) => {
      fs.fsync(fd, (syncError) => fs.close(fd, (closeError) => {
        if (syncError ?? closeError) reject(syncError ?? closeError);
        else resolve();
      }));
    });
    synced.catch(() => undefined); // awaited by `sync`; a stage whose caller gave up must not crash the process
    this.#syncing.set(stored, synced);
    return stored;
  }

  /**
   * Stores a stream, hashing it on the way, with memory that does not grow with its size. Beyond `maxBytes` the
   * write stops, the temp file is removed and a ContentTooLargeError is thrown (the source is destroyed).
   */
  async putStream(source: Readable | AsyncIterable<Uint8Array | string>, options: { maxBytes?: number } = {}): Promise<StoredContent> {
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    const hash = createHash('sha256');
    const tmp = this.#tempName();
    let size = 0;
    let handle: fs.promises.FileHandle | undefined;
    try {
      handle = await fs.promises.open(tmp, 'wx', FILE_MODE);
      for await (const piece of source as AsyncIterable<Uint8Array | string>) {
        const chunk = typeof piece === 'string' ? Buffer.from(piece, 'utf8') : piece;
        size += chunk.byteLength;
        if (size > maxBytes) throw new ContentTooLargeError(maxBytes);
        hash.update(chunk);
        let offset = 0;
        while (offset < chunk.byteLength) offset += (await handle.write(chunk, offset, chunk.byteLength - offset)).bytesWritten;
      }
      await handle.sync();
      await handle.close();
      handle = undefined;
      const sha256 = hash.digest('hex');
      if (this.#hasFile(sha256)) removeQuietly(tmp); // dedup: the file already there is the same content
      else this.#commit(tmp, sha256, true);
      return { sha256, size };
    } catch (error) {
      if (handle) await handle.close().catch(() => undefined);
      removeQuietly(tmp);
      if (error instanceof GatewayError) throw error;
      throw ioError('cannot store a stream', error);
    }
  }

  has(sha256: string): boolean {
    return this.#hasFile(sha256) || this.#smallRow(sha256, 'exists') !== undefined;
  }

  #hasFile(sha256: string): boolean {
    return fs.existsSync(this.path(sha256));
  }

  /**
   * The file's path, whether or not the file is there: content kept in the database has none (callers use `path`
   * only for content larger than SMALL_CONTENT_MAX_BYTES, which is always a file). Refuses anything but 64
   * lowercase hex characters (no path can be built from other input).
   */
  path(sha256: string): string {
    if (typeof sha256 !== 'string' || !SHA256_RE.test(sha256)) {
      throw new GatewayError('GW_ERR_STORE_IO', `not a content address (64 lowercase hex characters): "${String(sha256).slice(0, 80)}"`);
    }
    return path.join(this.root, sha256.slice(0, 2), sha256);
  }

  /** Reads a whole file, checking its hash: GW_ERR_AUDIT_ARCHIVE_MISSING or GW_ERR_AUDIT_ARCHIVE_CORRUPT otherwise. */
  read(sha256: string): Buffer {
    const file = this.path(sha256);
    let buf: Buffer | undefined = this.#smallRow(sha256, 'bytes');
    try {
      buf ??= fs.readFileSync(file);
    } catch (error) {
      if (errno(error) === 'ENOENT') throw new GatewayError('GW_ERR_AUDIT_ARCHIVE_MISSING', sha256);
      throw ioError(`cannot read ${sha256}`, error);
    }
    if (createHash('sha256').update(buf).digest('hex') !== sha256) {
      throw new GatewayError('GW_ERR_AUDIT_ARCHIVE_CORRUPT', `${sha256} holds other bytes`);
    }
    return buf;
  }

  /**
   * A stream of the file's bytes. A missing file throws at once; a file whose bytes do not match its name makes
   * the stream fail with GW_ERR_AUDIT_ARCHIVE_CORRUPT at its end, so a consumer must not act on the bytes before
   * the stream has finished cleanly.
   */
  createReadStream(sha256: string): Readable {
    const row = this.#smallRow(sha256, 'bytes');
    const source = row ? Readable.from([row]) : undefined;
    const fd = source ? undefined : this.#open(sha256);
    const hash = createHash('sha256');
    const checker = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
      flush(done) {
        done(hash.digest('hex') === sha256 ? null : new GatewayError('GW_ERR_AUDIT_ARCHIVE_CORRUPT', `${sha256} holds other bytes`));
      },
    });
    const file: Readable = source ?? fs.createReadStream('', { fd, autoClose: true });
    file.on('error', (error: Error) => checker.destroy(ioError(`cannot read ${sha256}`, error)));
    checker.on('close', () => file.destroy());
    return file.pipe(checker);
  }

  size(sha256: string): number {
    const rowSize = this.#smallRow(sha256, 'size');
    if (rowSize !== undefined) return rowSize;
    try {
      return fs.statSync(this.path(sha256)).size;
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      if (errno(error) === 'ENOENT') throw new GatewayError('GW_ERR_AUDIT_ARCHIVE_MISSING', sha256);
      throw ioError(`cannot stat ${sha256}`, error);
    }
  }

  /**
   * Whether the file is there and hashes to its name, read in 1 MiB steps (flat memory, synchronous: the offline
   * verifier uses it). Read errors other than absence throw GW_ERR_STORE_IO.
   */
  check(sha256: string): ContentCheck {
    const row = this.#smallRow(sha256, 'bytes');
    if (row) return createHash('sha256').update(row).digest('hex') === sha256 ? 'ok' : 'corrupt';
    let fd: number;
    try {
      fd = this.#open(sha256);
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'GW_ERR_AUDIT_ARCHIVE_MISSING') return 'missing';
      throw error;
    }
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    try {
      for (let n; (n = fs.readSync(fd, buf, 0, READ_CHUNK, null)) > 0;) hash.update(buf.subarray(0, n));
    } catch (error) {
      throw ioError(`cannot read ${sha256}`, error);
    } finally {
      closeQuietly(fd);
    }
    return hash.digest('hex') === sha256 ? 'ok' : 'corrupt';
  }

  /** Stores small content as a row (an identical row already there is kept as it is). */
  #putRow(sha256: string, bytes: Uint8Array): StoredContent {
    const small = this.#small!;
    try {
      statement(small.db, 'INSERT OR IGNORE INTO content_blobs (store, sha256, bytes) VALUES (?, ?, ?)')
        .run(small.name, sha256, Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (error) {
      throw ioError(`cannot store ${sha256} in the database`, error);
    }
    const stored = { sha256, size: bytes.byteLength };
    // Inside a transaction the row is not committed yet (and may be rolled back): `sync` looks for it then.
    if (!small.db.inTransaction) this.#rows.add(stored);
    return stored;
  }

  /** A row's existence, bytes or size; undefined when the content is not a row (or this store keeps none). */
  #smallRow(sha256: string, what: 'exists'): true | undefined;
  #smallRow(sha256: string, what: 'bytes'): Buffer | undefined;
  #smallRow(sha256: string, what: 'size'): number | undefined;
  #smallRow(sha256: string, what: 'exists' | 'bytes' | 'size'): true | Buffer | number | undefined {
    const small = this.#small;
    if (!small) return undefined;
    this.path(sha256); // the same refusal of anything but a content address, rows or files
    const column = what === 'bytes' ? 'bytes' : what === 'size' ? 'length(bytes)' : '1';
    const row = statement(small.db, `SELECT ${column} AS v FROM content_blobs WHERE store = ? AND sha256 = ?`).get(small.name, sha256) as { v: Buffer | number } | undefined;
    if (!row) return undefined;
    return what === 'exists' ? true : row.v;
  }

  #open(sha256: string): number {
    const file = this.path(sha256);
    try {
      return fs.openSync(file, 'r');
    } catch (error) {
      if (errno(error) === 'ENOENT') throw new GatewayError('GW_ERR_AUDIT_ARCHIVE_MISSING', sha256);
      throw ioError(`cannot open ${sha256}`, error);
    }
  }

  #tempName(): string {
    return path.join(this.#tmp, `${process.pid}.${PROCESS_TOKEN}.${randomBytes(8).toString('hex')}.tmp`);
  }

  /**
   * Moves a complete temp file to its name. Durable: the file was fsynced and the new directory entries are
   * fsynced now. Staged: the directories to fsync are remembered for `sync`.
   */
  #commit(tmp: string, sha256: string, durable: boolean): void {
    const final = this.path(sha256);
    const dir = path.dirname(final);
    const known = this.#knownDirs.has(dir);
    let created = false;
    if (!known) {
      try {
        fs.mkdirSync(dir, { mode: DIR_MODE });
        created = true;
      } catch (error) {
        if (errno(error) !== 'EEXIST') throw error;
      }
      this.#knownDirs.add(dir);
    }
    try {
      fs.renameSync(tmp, final);
    } catch (error) {
      if (errno(error) !== 'ENOENT' || !known) throw error;
      // The directory went away behind our back (removed by hand): forget it and make it again.
      this.#knownDirs.delete(dir);
      return this.#commit(tmp, sha256, durable);
    }
    // A directory made just now must itself be recorded in the root, or a crash could lose the file.
    if (!durable) {
      if (created) this.#unsyncedDirs.add(this.root);
      return;
    }
    fsyncDir(dir);
    if (created) fsyncDir(this.root);
  }

  #dirFd(dir: string): number {
    let fd = this.#dirFds.get(dir);
    if (fd === undefined) {
      fd = fs.openSync(dir, 'r');
      this.#dirFds.set(dir, fd);
    }
    return fd;
  }

  /**
   * Stores written before the one-level layout kept files under `root/ab/cd/<sha256>`: they are moved up once
   * (renames within the store), and a marker records that the store has the current layout.
   */
  #upgradeLayout(): void {
    const marker = path.join(this.root, LAYOUT_MARKER);
    if (fs.existsSync(marker)) return;
    try {
      for (const first of fs.readdirSync(this.root, { withFileTypes: true })) {
        if (!first.isDirectory() || !/^[0-9a-f]{2}$/.test(first.name)) continue;
        const dir = path.join(this.root, first.name);
        for (const second of fs.readdirSync(dir, { withFileTypes: true })) {
          if (!second.isDirectory() || !/^[0-9a-f]{2}$/.test(second.name)) continue;
          const old = path.join(dir, second.name);
          for (const name of fs.readdirSync(old)) {
            if (SHA256_RE.test(name)) fs.renameSync(path.join(old, name), path.join(dir, name));
          }
          fs.rmdirSync(old);
        }
        fsyncDir(dir);
      }
      fs.writeFileSync(marker, `${LAYOUT_VERSION}\n`, { mode: 0o640 });
      fsyncDir(this.root);
    } catch (error) {
      throw ioError(`cannot bring ${this.root} to the current layout`, error);
    }
  }

  /**
   * Removes temp files a crashed write left behind. A temp file is another writer's in-flight work, and is left
   * alone, when it was made by this very process (same token) or by another live process and touched within the
   * last hour; `audit verify` opening the archive must not break the running gateway's uploads. A file of our own
   * pid with another token belongs to an earlier run that crashed (in a container the gateway is pid 1 every time).
   */
  #cleanTemps(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.#tmp);
    } catch (error) {
      throw ioError(`cannot list ${this.#tmp}`, error);
    }
    const now = Date.now();
    for (const name of names) {
      const file = path.join(this.#tmp, name);
      const m = TMP_RE.exec(name);
      if (m && m[2] === PROCESS_TOKEN) continue;
      let abandoned: boolean;
      if (m && Number(m[1]) === process.pid) abandoned = true;
      else if (m && !processAlive(Number(m[1]))) abandoned = true;
      else {
        try {
          abandoned = now - fs.statSync(file).mtimeMs > STALE_TEMP_MS;
        } catch {
          continue; // gone already
        }
      }
      if (abandoned) removeQuietly(file);
    }
  }
}

/**
 * One of a gateway's two stores, `spool` (attachments) or `archive` (the evidence: the exact bytes on the wire),
 * under its data directory, with small content in its database: every process of a gateway (serve, worker, CLI)
 * must open them the same way to find what the others stored.
 */
export function openGatewayStore(dataDir: string, name: 'spool' | 'archive', db: Db, maxBytes = SMALL_CONTENT_MAX_BYTES): ContentStore {
  // Rows written under a larger limit earlier stay readable: only where new content goes depends on it.
  return new ContentStore(path.join(dataDir, name), { smallInDatabase: { db, name, maxBytes } });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errno(error) === 'EPERM'; // alive, but someone else's
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve())));
}

/** open, fsync, close in libuv's thread pool (callbacks: FileHandle's promises cost several times more CPU here). */
function fsyncPath(file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    fs.open(file, 'r', (openError, fd) => {
      if (openError) return reject(openError);
      fs.fsync(fd, (syncError) => fs.close(fd, (closeError) => {
        if (syncError ?? closeError) reject(syncError ?? closeError);
        else resolve();
      }));
    });
  });
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed or never valid: nothing to release
  }
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // a temp file we cannot remove is cleaned at the next start
  }
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function ioError(what: string, error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  const code = errno(error);
  return new GatewayError('GW_ERR_STORE_IO', code ? `${what} (${code})` : what, { cause: error });
}
