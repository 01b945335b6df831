import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/store/database.ts';
import { WriteLock, createWriteLockBuffer, releaseAbandonedWriteLock } from '../src/store/write-lock.ts';

// Another thread of the process, as serve's delivery thread is: it takes the lock word as owner 2 (the protocol
// WriteLock follows) and says so in `flags[0]`; with `releaseAfterMs` it then holds it that long, marks `flags[1]`
// and frees it; without, it ends still holding it.
const HOLDER = `
const { workerData } = require('node:worker_threads');
const word = new Int32Array(workerData.lock, 0, 1);
const flags = new Int32Array(workerData.flags);
while (Atomics.compareExchange(word, 0, 0, 2) !== 0) Atomics.wait(word, 0, Atomics.load(word, 0), 50);
Atomics.store(flags, 0, 1); Atomics.notify(flags, 0);
if (workerData.releaseAfterMs !== undefined) {
  Atomics.wait(flags, 2, 0, workerData.releaseAfterMs);
  Atomics.store(flags, 1, 1);
  Atomics.store(word, 0, 0); Atomics.notify(word, 0, 1);
}
`;

function startHolder(lock: SharedArrayBuffer, releaseAfterMs?: number) {
  const flags = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  const worker = new Worker(HOLDER, { eval: true, workerData: { lock, flags: flags.buffer, releaseAfterMs } });
  // Until the other thread holds the lock.
  while (Atomics.load(flags, 0) === 0) Atomics.wait(flags, 0, 0, 50);
  return { flags, exited: new Promise<void>((resolve) => worker.once('exit', () => resolve())) };
}

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'write-lock-')); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the write lock that serve shares with its delivery thread', () => {
  it('makes a thread wait until the other has let go, then runs it', async () => {
    const buffer = createWriteLockBuffer();
    const holder = startHolder(buffer, 100);
    // Blocks this thread until the other has finished what it held the lock for.
    expect(new WriteLock(buffer, 1).hold(() => Atomics.load(holder.flags, 1))).toBe(1);
    await holder.exited;
    expect(Atomics.load(new Int32Array(buffer), 0)).toBe(0);
  });

  it('lets the thread that holds it in again, and frees it only when the outer hold ends', () => {
    const buffer = createWriteLockBuffer();
    const lock = new WriteLock(buffer, 1);
    const word = new Int32Array(buffer);
    const inner = lock.hold(() => lock.hold(() => Atomics.load(word, 0)));
    expect(inner).toBe(1);
    expect(Atomics.load(word, 0)).toBe(0);
    expect(() => lock.hold(() => { throw new Error('fails inside'); })).toThrow('fails inside');
    expect(Atomics.load(word, 0)).toBe(0); // freed on the way out of an exception too
  });

  it('goes on without it after the wait limit, leaving the wait to SQLite, when a thread never lets go', async () => {
    const buffer = createWriteLockBuffer();
    const holder = startHolder(buffer); // ends still holding it
    await holder.exited;
    const lock = new WriteLock(buffer, 1, { waitLimitMs: 30 });
    expect(lock.hold(() => 'ran')).toBe('ran');
    expect(Atomics.load(new Int32Array(buffer), 0)).toBe(2); // not ours to free
    // Serve frees what its ended delivery thread held, and the lock works as before.
    releaseAbandonedWriteLock(buffer, 3); // someone else's: nothing happens
    expect(Atomics.load(new Int32Array(buffer), 0)).toBe(2);
    releaseAbandonedWriteLock(buffer, 2);
    expect(Atomics.load(new Int32Array(buffer), 0)).toBe(0);
    expect(new WriteLock(buffer, 1, { waitLimitMs: 0 }).hold(() => Atomics.load(new Int32Array(buffer), 0))).toBe(1);
  });

  it('is held by every write transaction and by a writing statement outside one, on a connection opened with it', async () => {
    const buffer = createWriteLockBuffer();
    const db = openDatabase(path.join(dir, 'g.db'), { writeLock: new WriteLock(buffer, 1) });
    db.exec('CREATE TABLE t (x INTEGER)');
    const word = new Int32Array(buffer);
    const heldIn: number[] = [];
    db.function('holder', () => Atomics.load(word, 0));
    db.transaction(() => { heldIn.push((db.prepare('SELECT holder() AS h').get() as { h: number }).h); })();
    const { statement } = await import('../src/store/database.ts');
    statement(db, 'INSERT INTO t (x) VALUES (holder())').run();
    heldIn.push((db.prepare('SELECT x FROM t').get() as { x: number }).x);
    // A read-only transaction and a reading statement do not take it.
    heldIn.push(db.transaction(() => (db.prepare('SELECT holder() AS h').get() as { h: number }).h).deferred());
    heldIn.push((statement(db, 'SELECT holder() AS h').get() as { h: number }).h);
    expect(heldIn).toEqual([1, 1, 0, 0]);
    db.close();
  });
});
