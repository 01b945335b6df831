import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { beforeEach, describe, expect, it } from 'vitest';
import { isGatewayError } from '../src/errors/index.ts';
import { ContentStore, ContentTooLargeError } from '../src/store/content-store.ts';
import { openDatabase, type Db } from '../src/store/database.ts';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'content-store-'));
});

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Every stored file under the store (not its layout marker), relative to its root. */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name !== '.layout')
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

function expectCode(fn: () => unknown, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(isGatewayError(thrown), String(thrown)).toBe(true);
  expect((thrown as { code: string }).code).toBe(code);
}

/** Overwrites a stored (read-only) file in place, as someone with shell access could. */
function tamper(file: string, content: Buffer | string): void {
  fs.chmodSync(file, 0o600);
  fs.writeFileSync(file, content);
}

describe('ContentStore', () => {
  it('stores a buffer under root/ab/<sha256> and reads it back, verified', () => {
    const store = new ContentStore(root);
    const bytes = Buffer.from('<Message>Община Алфа</Message>', 'utf8');
    const put = store.putBuffer(bytes);
    expect(put).toEqual({ sha256: sha256(bytes), size: bytes.length });
    const expectedPath = path.join(root, put.sha256.slice(0, 2), put.sha256);
    expect(store.path(put.sha256)).toBe(expectedPath);
    expect(fs.readFileSync(expectedPath)).toEqual(bytes);
    expect(store.has(put.sha256)).toBe(true);
    expect(store.read(put.sha256)).toEqual(bytes);
    expect(store.size(put.sha256)).toBe(bytes.length);
    expect(store.check(put.sha256)).toBe('ok');
    // Written read-only: evidence is not edited in place by accident.
    expect(fs.statSync(expectedPath).mode & 0o222).toBe(0);
    expect(filesUnder(path.join(root, 'tmp'))).toEqual([]);
  });

  it('stores a stream and gives the same address as the same bytes in a buffer; createReadStream returns them', async () => {
    const store = new ContentStore(root);
    const parts = ['първа част, ', 'втора част, ', 'трета'];
    const put = await store.putStream(Readable.from(parts.map((p) => Buffer.from(p, 'utf8'))));
    expect(put.sha256).toBe(sha256(parts.join('')));
    expect(put.size).toBe(Buffer.byteLength(parts.join('')));
    expect(await text(store.createReadStream(put.sha256))).toBe(parts.join(''));
  });

  it('deduplicates: an identical file already there is kept as it is', async () => {
    const store = new ContentStore(root);
    const bytes = Buffer.from('same bytes');
    const first = store.putBuffer(bytes);
    const file = store.path(first.sha256);
    const before = fs.statSync(file);
    const again = store.putBuffer(bytes);
    const streamed = await store.putStream(Readable.from([bytes]));
    expect(again).toEqual(first);
    expect(streamed).toEqual(first);
    const after = fs.statSync(file);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(filesUnder(root)).toEqual([path.relative(root, file)]);
  });

  it('refuses a stream over maxBytes and leaves nothing behind', async () => {
    const store = new ContentStore(root);
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    const source = Readable.from((function* () {
      for (let i = 0; i < 100; i++) yield chunk;
    })());
    const error = await store.putStream(source, { maxBytes: 200 * 1024 }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ContentTooLargeError);
    expect((error as ContentTooLargeError).code).toBe('GW_ERR_STORE_IO');
    expect((error as ContentTooLargeError).limit).toBe(200 * 1024);
    expect(source.destroyed).toBe(true);
    expect(filesUnder(root)).toEqual([]);
    expect(fs.readdirSync(root).sort()).toEqual(['.layout', 'tmp']); // no fan-out directory either
    // exactly maxBytes is fine
    const ok = await store.putStream(Readable.from([chunk]), { maxBytes: chunk.length });
    expect(ok.size).toBe(chunk.length);
  });

  it('detects a file whose bytes were changed, and a missing one, on every read path', async () => {
    const store = new ContentStore(root);
    const { sha256: sha } = store.putBuffer(Buffer.from('original evidence'));
    tamper(store.path(sha), 'altered evidence!');
    expectCode(() => store.read(sha), 'GW_ERR_AUDIT_ARCHIVE_CORRUPT');
    expect(store.check(sha)).toBe('corrupt');
    const streamError = await text(store.createReadStream(sha)).then(() => undefined, (e: unknown) => e);
    expect(isGatewayError(streamError, 'GW_ERR_AUDIT_ARCHIVE_CORRUPT')).toBe(true);

    const absent = sha256('never stored');
    expect(store.has(absent)).toBe(false);
    expectCode(() => store.read(absent), 'GW_ERR_AUDIT_ARCHIVE_MISSING');
    expectCode(() => store.createReadStream(absent), 'GW_ERR_AUDIT_ARCHIVE_MISSING');
    expectCode(() => store.size(absent), 'GW_ERR_AUDIT_ARCHIVE_MISSING');
    expect(store.check(absent)).toBe('missing');
  });

  it('moves a store written with the earlier two-level layout (root/ab/cd/<sha256>) to the current one, once', () => {
    const bytes = Buffer.from('архивирано от по-ранна версия', 'utf8');
    const sha = sha256(bytes);
    const legacy = path.join(root, sha.slice(0, 2), sha.slice(2, 4));
    fs.mkdirSync(legacy, { recursive: true });
    fs.writeFileSync(path.join(legacy, sha), bytes);
    const store = new ContentStore(root);
    expect(store.read(sha)).toEqual(bytes);
    expect(store.check(sha)).toBe('ok');
    expect(fs.existsSync(legacy)).toBe(false);
    expect(fs.readFileSync(path.join(root, '.layout'), 'utf8').trim()).toBe('sha256-fanout-1');
    // A second opening finds the marker and changes nothing.
    expect(new ContentStore(root).read(sha)).toEqual(bytes);
  });

  it('builds a path from nothing but 64 lowercase hex characters', () => {
    const store = new ContentStore(root);
    const good = sha256('x');
    fs.writeFileSync(path.join(root, 'x'), 'outside the fan-out');
    const attempts = [
      '../x',
      `../${good.slice(3)}`,
      `${good.slice(0, 62)}/x`,
      good.toUpperCase(),
      good.slice(0, 63),
      `${good}0`,
      `${good.slice(0, 63)}g`,
      '',
      `${good}\n`,
      '/etc/passwd',
    ];
    for (const bad of attempts) {
      for (const call of [() => store.path(bad), () => store.has(bad), () => store.read(bad), () => store.size(bad), () => store.createReadStream(bad), () => store.check(bad)]) {
        expectCode(call, 'GW_ERR_STORE_IO');
      }
    }
  });

  it('cleans temp files a crashed write left behind, but not another writer\'s work in progress', () => {
    const tmp = path.join(root, 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '']).pid!; // a process that has exited
    const token = (n: number) => n.toString(16).padStart(16, '0');
    const names = {
      deadProcess: `${dead}.${token(1)}.${token(2)}.tmp`,
      earlierRunOfOurPid: `${process.pid}.${token(3)}.${token(4)}.tmp`, // a container restart gets the same pid
      liveProcessFresh: `${process.ppid}.${token(5)}.${token(6)}.tmp`,
      liveProcessStale: `${process.ppid}.${token(7)}.${token(8)}.tmp`,
      strangerStale: 'whatever.tmp',
      strangerFresh: 'another.tmp',
    };
    for (const name of Object.values(names)) fs.writeFileSync(path.join(tmp, name), 'partial');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const name of [names.liveProcessStale, names.strangerStale]) fs.utimesSync(path.join(tmp, name), twoHoursAgo, twoHoursAgo);

    new ContentStore(root);
    expect(fs.readdirSync(tmp).sort()).toEqual([names.liveProcessFresh, names.strangerFresh].sort());
  });

  it('a second store opened on the same root (audit verify next to the gateway) does not break a write in progress', async () => {
    const store = new ContentStore(root);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const pending = store.putStream((async function* () {
      yield Buffer.from('first half, ');
      await gate;
      yield Buffer.from('second half');
    })());
    await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync(path.join(root, 'tmp'))).toHaveLength(1);
    new ContentStore(root);
    release();
    const put = await pending;
    expect(put.sha256).toBe(sha256('first half, second half'));
    expect(store.read(put.sha256).toString()).toBe('first half, second half');
  });

  // Memory is checked through its cause, not through RSS (which follows the garbage collector's mood): every chunk
  // read must already be on disk before the next one is asked for, so the store never holds more than a chunk or two.
  it('streams 50 MiB to disk as it reads (memory does not hold the content) and removes the temp file', async () => {
    const store = new ContentStore(root);
    const MiB = 1024 * 1024;
    const chunks = 50;
    const expected = createHash('sha256');
    const tmp = path.join(root, 'tmp');
    let laggingBehind = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (let i = 0; i < chunks; i++) {
        // What has been read must already be on disk, give or take a chunk in flight: a store that collected the
        // stream in memory before writing would have an empty temp file here.
        const [temp] = fs.readdirSync(tmp);
        const written = temp ? fs.statSync(path.join(tmp, temp)).size : 0;
        if (written < (i - 1) * MiB) laggingBehind++;
        const chunk = Buffer.alloc(MiB, i); // a fresh buffer each time, as a socket gives
        expected.update(chunk);
        yield chunk;
      }
    }
    const put = await store.putStream(source());
    expect(laggingBehind).toBe(0);
    expect(put.size).toBe(chunks * MiB);
    expect(put.sha256).toBe(expected.digest('hex'));
    expect(store.size(put.sha256)).toBe(chunks * MiB);
    expect(store.check(put.sha256)).toBe('ok');
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});

describe('ContentStore with small content in the database', () => {
  const open = (file = path.join(root, 'g.db')) => openDatabase(file);
  const small = (db: Db, name = 'archive', maxBytes = 1024) => new ContentStore(path.join(root, name), { smallInDatabase: { db, name, maxBytes } });
  const rows = (db: Db) => (db.prepare('SELECT COUNT(*) AS n FROM content_blobs').get() as { n: number }).n;

  it('keeps content up to maxBytes as a row, not a file, and reads it like a file: has, read, size, check, stream', async () => {
    const db = open();
    const store = small(db);
    const bytes = Buffer.from('<Message>малко съобщение</Message>');
    const staged = store.stageBuffer(bytes);
    const put = store.putBuffer(Buffer.from('друго'));
    const chunked = store.stageChunks([Buffer.from('на '), Buffer.from('части')]);
    expect(staged).toEqual({ sha256: sha256(bytes), size: bytes.length });
    expect(chunked.sha256).toBe(sha256('на части'));
    await store.sync([staged, put, chunked, { ...staged }]); // rows: nothing to fsync, copies included
    expect(filesUnder(path.join(root, 'archive'))).toEqual([]);
    expect(fs.readdirSync(path.join(root, 'archive', 'tmp'))).toEqual([]);
    expect(rows(db)).toBe(3);
    for (const c of [staged, put, chunked]) {
      expect(store.has(c.sha256)).toBe(true);
      expect(store.size(c.sha256)).toBe(c.size);
      expect(store.check(c.sha256)).toBe('ok');
    }
    expect(store.read(staged.sha256)).toEqual(bytes);
    expect(await text(store.createReadStream(chunked.sha256))).toBe('на части');
    // The same content again is the same row.
    expect(store.stageBuffer(bytes)).toEqual(staged);
    expect(rows(db)).toBe(3);
    // Committed: another connection (the CLI's `audit verify`, a worker process) reads it through its own store.
    const other = open();
    expect(small(other).read(staged.sha256)).toEqual(bytes);
    other.close();
    db.close();
  });

  it('puts larger content, streams, and pieces that outgrow maxBytes midway in files', async () => {
    const db = open();
    const store = small(db, 'spool', 1024);
    const large = Buffer.alloc(1025, 7);
    const a = store.stageBuffer(large);
    // A producer that reuses one buffer for every piece (as a decoder may): rows hold copies, files get each piece.
    const piece = Buffer.alloc(400);
    function* reused(fills: number[]) {
      for (const f of fills) yield piece.fill(f);
    }
    const grown = store.stageChunks(reused([1, 2, 3]));
    const stayed = store.stageChunks(reused([4, 5]));
    const streamed = await store.putStream(Readable.from([Buffer.from('поток')]));
    await store.sync([a, grown]);
    expect(fs.existsSync(store.path(a.sha256))).toBe(true);
    expect(fs.readFileSync(store.path(grown.sha256))).toEqual(Buffer.concat([Buffer.alloc(400, 1), Buffer.alloc(400, 2), Buffer.alloc(400, 3)]));
    expect(fs.existsSync(store.path(stayed.sha256))).toBe(false);
    expect(store.read(stayed.sha256)).toEqual(Buffer.concat([Buffer.alloc(400, 4), Buffer.alloc(400, 5)]));
    expect(fs.existsSync(store.path(streamed.sha256))).toBe(true);
    expect(rows(db)).toBe(1);
    db.close();
  });

  it('gives a stream a file even when the same bytes are a row already (callers of a streamed upload use its path)', async () => {
    const db = open();
    const store = small(db, 'spool');
    const row = store.putBuffer(Buffer.from('един и същ'));
    const streamed = await store.putStream(Readable.from([Buffer.from('един и същ')]));
    expect(streamed.sha256).toBe(row.sha256);
    expect(fs.readFileSync(store.path(streamed.sha256), 'utf8')).toBe('един и същ');
    db.close();
  });

  it('puts everything new in files with maxBytes 0, and still reads the rows stored before', () => {
    const db = open();
    const before = small(db, 'archive', 1024).putBuffer(Buffer.from('от преди'));
    const files = small(db, 'archive', 0);
    const now = files.stageBuffer(Buffer.from('сега'));
    const empty = files.stageChunks([]);
    expect(fs.existsSync(files.path(now.sha256))).toBe(true);
    expect(fs.existsSync(files.path(empty.sha256))).toBe(true);
    expect(files.read(before.sha256).toString()).toBe('от преди');
    expect(rows(db)).toBe(1);
    db.close();
  });

  it('keeps the spool and the archive apart in one database', () => {
    const db = open();
    const spool = small(db, 'spool');
    const archive = small(db, 'archive');
    const c = spool.putBuffer(Buffer.from('само в спула'));
    expect(spool.has(c.sha256)).toBe(true);
    expect(archive.has(c.sha256)).toBe(false);
    expectCode(() => archive.read(c.sha256), 'GW_ERR_AUDIT_ARCHIVE_MISSING');
    db.close();
  });

  it('reports a row altered in the database as corrupt, in read, check and stream', async () => {
    const db = open();
    const store = small(db);
    const c = store.putBuffer(Buffer.from('<Message>доказателство</Message>'));
    db.prepare('UPDATE content_blobs SET bytes = ? WHERE sha256 = ?').run(Buffer.from('<Message>подменено</Message>'), c.sha256);
    expect(store.check(c.sha256)).toBe('corrupt');
    expectCode(() => store.read(c.sha256), 'GW_ERR_AUDIT_ARCHIVE_CORRUPT');
    const failed = await text(store.createReadStream(c.sha256)).then(() => undefined, (e: unknown) => e);
    expect(isGatewayError(failed) && failed.code).toBe('GW_ERR_AUDIT_ARCHIVE_CORRUPT');
    db.prepare('DELETE FROM content_blobs WHERE sha256 = ?').run(c.sha256);
    expect(store.check(c.sha256)).toBe('missing');
    expect(store.has(c.sha256)).toBe(false);
    db.close();
  });

  it('refuses anything but a content address before touching the database', () => {
    const db = open();
    const store = small(db);
    for (const bad of ['', '../../etc/passwd', "x' OR 1=1 --", 'AB'.repeat(32)]) {
      for (const call of [() => store.has(bad), () => store.read(bad), () => store.size(bad), () => store.check(bad), () => store.createReadStream(bad)]) {
        expectCode(call, 'GW_ERR_STORE_IO');
      }
    }
    db.close();
  });
});
