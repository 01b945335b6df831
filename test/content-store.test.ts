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
