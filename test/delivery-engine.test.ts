import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DeliveryEngine, QUEUE_NAME, type DeliveryEngineOptions, type DeliveryHandler } from '../src/delivery/engine.ts';
import { addOutboxEntry, getOutboxEntry, listAttempts, pendingEntries } from '../src/delivery/outbox.ts';
import { startRedisServer, type RedisServer } from '../src/devtools/redis-server.ts';
import { openDatabase, type Db } from '../src/store/database.ts';

/** The delivery engine on real Redis and a real SQLite file: rows due now are delivered without a queue job. */
let redis: RedisServer;
let dir: string;
let db: Db;
let engine: DeliveryEngine | undefined;
let prefix: string;
let seq = 0;

beforeAll(async () => { redis = await startRedisServer(); });
afterAll(async () => { await redis.stop(); });
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'engine-'));
  db = openDatabase(path.join(dir, 'g.db'));
  prefix = `engine-test-${++seq}`;
});
afterEach(async () => {
  await engine?.close();
  engine = undefined;
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const connection = () => ({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null });

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!check()) throw new Error(`timed out waiting for ${what}`);
}

/** Entries in the queue's event stream: BullMQ records there every job it is given (completed jobs are removed). */
async function eventsRecorded(queuePrefix = prefix): Promise<number> {
  const client = new Redis({ host: '127.0.0.1', port: redis.port });
  try {
    return await client.xlen(`${queuePrefix}:${QUEUE_NAME}:events`);
  } finally {
    client.disconnect();
  }
}

function startEngine(handler: DeliveryHandler, options: Partial<Pick<DeliveryEngineOptions, 'runWorker' | 'directLimit' | 'perDestinationConcurrency' | 'destinationPolicy'>> = {}): Promise<void> {
  engine = new DeliveryEngine({ db, connection: connection(), prefix, handlers: { test: handler }, reconcileIntervalMs: 60_000, ...options });
  return engine.start();
}

describe('delivery without a queue job', () => {
  it('delivers a row due now in the process that scheduled it, and never puts a job in Redis for it', async () => {
    const calls: string[] = [];
    await startEngine(async (row) => { calls.push(row.id); return { result: 'delivered' }; });
    const queue = new Queue(QUEUE_NAME, { connection: connection(), prefix });
    const row = addOutboxEntry(db, { kind: 'test', destination: 'b' });
    engine!.schedule(row);
    await eventually(() => getOutboxEntry(db, row.id)?.state === 'delivered', 'the delivery');
    expect(calls).toEqual([row.id]);
    expect(listAttempts(db, row.id).map((a) => a.outcome)).toEqual(['delivered']);
    expect(await eventsRecorded()).toBe(0);
    await queue.close();
  });

  it('uses the queue for a row due later, and in a process that only accepts (its deliveries run in worker processes)', async () => {
    await startEngine(async () => ({ result: 'delivered' }), { runWorker: false });
    const queue = new Queue(QUEUE_NAME, { connection: connection(), prefix });
    const now = addOutboxEntry(db, { kind: 'test', destination: 'b' });
    const later = addOutboxEntry(db, { kind: 'test', destination: 'b', notBefore: new Date(Date.now() + 60_000) });
    engine!.schedule(now);
    engine!.schedule(later);
    await engine!.flush();
    expect(await queue.getJobCounts('waiting', 'delayed')).toEqual({ waiting: 1, delayed: 1 });
    expect(await eventsRecorded()).toBeGreaterThan(0);
    await queue.close();
  });

  it('does nothing for a sequence bumped in a transaction that was rolled back', async () => {
    const calls: string[] = [];
    await startEngine(async (row) => { calls.push(row.id); return { result: 'delivered' }; });
    addOutboxEntry(db, { kind: 'test', destination: 'b' });
    const row = pendingEntries(db)[0]; // read back: its scheduling bumps the sequence
    try {
      db.transaction(() => {
        engine!.schedule(row);
        throw new Error('rolled back');
      })();
    } catch {
      // expected
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(calls).toEqual([]);
    expect(getOutboxEntry(db, row.id)).toMatchObject({ state: 'pending', jobSeq: 1 });
  });

  it('gives a new row its first job without writing, and bumps the sequence for every later one', async () => {
    await startEngine(async () => ({ result: 'delivered' }), { runWorker: false });
    const queue = new Queue(QUEUE_NAME, { connection: connection(), prefix });
    const row = addOutboxEntry(db, { kind: 'test', destination: 'b' });
    const changesBefore = db.prepare('SELECT total_changes() AS n').get() as { n: number };
    engine!.schedule(row);
    await engine!.flush();
    expect(db.prepare('SELECT total_changes() AS n').get()).toEqual(changesBefore);
    engine!.schedule(row); // the same object again: its first sequence is taken
    engine!.schedule(getOutboxEntry(db, row.id)!);
    await engine!.flush();
    expect(getOutboxEntry(db, row.id)?.jobSeq).toBe(3);
    expect((await queue.getJobs(['waiting'])).map((j) => j.id).sort()).toEqual([`${row.id}.1`, `${row.id}.2`, `${row.id}.3`]);
    await queue.close();
  });

  it('lets close wait for a delivery in flight, and counts it as active meanwhile', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    await startEngine(async () => { await gate; return { result: 'delivered' }; });
    const row = addOutboxEntry(db, { kind: 'test', destination: 'b' });
    engine!.schedule(row);
    expect((await engine!.queueCounts()).active).toBe(1);
    const closing = engine!.close();
    setTimeout(release, 50);
    await closing;
    engine = undefined;
    expect(getOutboxEntry(db, row.id)?.state).toBe('delivered');
  });

  it('holds many more rows than there are destination slots without queueing them, and delivers each once, in order', async () => {
    const calls: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    await startEngine(async (row) => {
      calls.push(row.id);
      await gate;
      return { result: 'delivered' };
    }, { perDestinationConcurrency: 1 });
    const rows = Array.from({ length: 60 }, () => addOutboxEntry(db, { kind: 'test', destination: 'b' }));
    for (const row of rows) engine!.schedule(row);
    await eventually(() => calls.length === 1, 'the first delivery');
    expect(await engine!.queueCounts()).toMatchObject({ active: 1, waiting: 59 }); // one holds the slot, the rest wait in memory
    release();
    await eventually(() => rows.every((r) => getOutboxEntry(db, r.id)?.state === 'delivered'), 'every delivery');
    expect(calls).toEqual(rows.map((r) => r.id));
    expect(await eventsRecorded()).toBe(0);
  });

  it('puts rows beyond directLimit in the queue, and every row in it with a limit of 0', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    await startEngine(async () => { await gate; return { result: 'delivered' }; }, { directLimit: 2 });
    const queue = new Queue(QUEUE_NAME, { connection: connection(), prefix });
    const rows = Array.from({ length: 5 }, () => addOutboxEntry(db, { kind: 'test', destination: 'b' }));
    for (const row of rows) engine!.schedule(row);
    await engine!.flush();
    expect(await eventsRecorded()).toBeGreaterThan(0); // three rows went to Redis
    release();
    await eventually(() => rows.every((r) => getOutboxEntry(db, r.id)?.state === 'delivered'), 'every delivery');
    await engine!.close();
    const none = new DeliveryEngine({ db, connection: connection(), prefix: `${prefix}-zero`, handlers: { test: async () => ({ result: 'delivered' }) }, directLimit: 0 });
    engine = none;
    await none.start();
    const row = addOutboxEntry(db, { kind: 'test', destination: 'b' });
    none.schedule(row);
    await none.flush();
    await eventually(() => getOutboxEntry(db, row.id)?.state === 'delivered', 'the queued delivery');
    expect(await eventsRecorded(`${prefix}-zero`)).toBeGreaterThan(0);
    await queue.close();
  });

  it('spends no attempt of a held row once the deliveries ahead of it marked the destination down', async () => {
    let calls = 0;
    await startEngine(async () => {
      calls++;
      return { result: 'retry', code: 'GW_ERR_SEOS_TRANSPORT', transport: true };
    }, { perDestinationConcurrency: 1, destinationPolicy: { downAfter: 2, probeIntervalMs: 60_000 } });
    const rows = Array.from({ length: 10 }, () => addOutboxEntry(db, { kind: 'test', destination: 'b' }));
    for (const row of rows) engine!.schedule(row);
    await eventually(() => rows.every((r) => getOutboxEntry(db, r.id)!.nextAttemptAt > new Date(Date.now() + 30_000).toISOString()), 'every row put off');
    expect(calls).toBe(2);
    expect(rows.map((r) => getOutboxEntry(db, r.id)!.attempts)).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('on close, finishes the delivery in flight and releases the held ones untouched (pending, no attempt)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const calls: string[] = [];
    await startEngine(async (row) => { calls.push(row.id); await gate; return { result: 'delivered' }; }, { perDestinationConcurrency: 1 });
    const rows = Array.from({ length: 5 }, () => addOutboxEntry(db, { kind: 'test', destination: 'b' }));
    for (const row of rows) engine!.schedule(row);
    await eventually(() => calls.length === 1, 'the first delivery');
    const closing = engine!.close();
    setTimeout(release, 50);
    await closing;
    engine = undefined;
    expect(calls).toEqual([rows[0].id]);
    expect(rows.map((r) => getOutboxEntry(db, r.id)?.state)).toEqual(['delivered', 'pending', 'pending', 'pending', 'pending']);
    expect(rows.slice(1).map((r) => listAttempts(db, r.id).length)).toEqual([0, 0, 0, 0]);
  });
});
