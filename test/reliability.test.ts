import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../src/app/gateway.ts';
import { loadConfig } from '../src/config/index.ts';
import { newGuid } from '../src/seos/index.ts';
import { createApiKey } from '../src/api/api-keys.ts';
import { openDatabase, type Db } from '../src/store/database.ts';
import { BETA_GUID, eventually, startTwoGateways, type Municipality, type TwoGateways } from './support/gateways.ts';
import { sampleDocument } from './support/messages.ts';

/**
 * Nothing accepted is lost: the sending gateway killed with SIGKILL in the middle of a load, Redis flushed in the
 * middle of a load. Real processes, real Redis, real SQLite files; the recipient is a second real gateway.
 */
// Node itself with tsx's loader, not the tsx launcher: the launcher runs the program as a child, and a SIGKILL of
// the launcher would leave that child (the gateway) running.
const TSX_LOADER = path.resolve('node_modules/tsx/dist/loader.mjs');
let net: TwoGateways | undefined;
const processes: ChildProcess[] = [];
const extra: Gateway[] = [];

afterEach(async () => {
  for (const p of processes) if (p.exitCode === null) p.kill('SIGKILL');
  processes.length = 0;
  for (const g of extra) await g.stop();
  extra.length = 0;
  await net?.stop();
  net = undefined;
});

function serve(m: Municipality, command: 'serve' | 'worker' = 'serve'): ChildProcess {
  const child = spawn(process.execPath, ['--import', pathToFileURL(TSX_LOADER).href, 'src/cli/main.ts', command, '--config', m.configPath], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } });
  processes.push(child);
  return child;
}

async function waitHealthy(m: Municipality): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${m.apiPort}/health`)).ok) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error(`${m.name} did not start`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function count(db: Db, sql: string, ...args: unknown[]): number {
  return (db.prepare(sql).get(...args) as { n: number }).n;
}

const freshDocument = () => sampleDocument({ id: { number: { docNumber: 'ОА-9', docDate: '2026-11-22' }, documentGuid: newGuid() } });

describe('nothing accepted is lost', () => {
  it('delivers every accepted document exactly once after the sending gateway is killed with SIGKILL mid-load', async () => {
    net = await startTwoGateways({ startInProcess: false });
    const alfaProcess = serve(net.alfa);
    serve(net.beta);
    await Promise.all([waitHealthy(net.alfa), waitHealthy(net.beta)]);
    // The records system's side: accept documents into Алфа's database (as its API would), hand them to Redis.
    const accept = await createGateway(loadConfig({ file: net.alfa.configPath, env: {} }), { mode: 'cli', logStream: { write: () => true } as never });
    extra.push(accept);
    const N = 200;
    const guids: string[] = [];
    for (let i = 0; i < N; i++) guids.push((await accept.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument() })).documentGuid);
    await accept.engine.flush();
    const betaDb = openDatabase(path.join(net.beta.dataDir, 'gateway.db'));
    const alfaDb = openDatabase(path.join(net.alfa.dataDir, 'gateway.db'));
    try {
      await eventually(() => count(betaDb, "SELECT COUNT(*) AS n FROM documents WHERE direction = 'in'") >= 20, 'some delivered before the kill', 30_000);
      alfaProcess.kill('SIGKILL');
      await new Promise((resolve) => alfaProcess.once('exit', resolve));
      const deliveredAtKill = count(alfaDb, "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'seos-document' AND state = 'delivered'");
      expect(deliveredAtKill).toBeLessThan(N); // the kill really was mid-load
      serve(net.alfa);
      await waitHealthy(net.alfa);
      await eventually(() => count(alfaDb, "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'seos-document' AND state = 'delivered'") === N, 'all delivered after restart', 90_000);
      // Exactly once at the recipient: each document once, each registration request's MessageGUID once.
      expect(count(betaDb, "SELECT COUNT(*) AS n FROM documents WHERE direction = 'in'")).toBe(N);
      expect(count(betaDb, "SELECT COUNT(DISTINCT document_guid) AS n FROM documents WHERE direction = 'in'")).toBe(N);
      expect(count(betaDb, "SELECT COUNT(*) AS n FROM messages WHERE direction = 'in' AND message_type = 'MSG_DocumentRegistrationRequest'")).toBe(N);
      for (const guid of guids) expect(count(betaDb, "SELECT COUNT(*) AS n FROM documents WHERE document_guid = ?", guid.toLowerCase())).toBe(1);
      expect(count(alfaDb, "SELECT COUNT(*) AS n FROM documents WHERE direction = 'out' AND status = 'DS_WAIT_REGISTRATION'")).toBe(N);
    } finally {
      betaDb.close();
      alfaDb.close();
    }
  }, 180_000);

  it('delivers from a separate `seos-gateway worker` process while `serve` accepts through the API, each document once', async () => {
    // Scale-out: the serving process only accepts (inProcessWorkers: false); a worker process on the same database
    // and Redis delivers. (The race between two processes' transactions is tested deterministically in
    // durability.test.ts; here the whole arrangement must deliver everything once.)
    net = await startTwoGateways({ startInProcess: false, delivery: { inProcessWorkers: false } });
    const setup = openDatabase(path.join(net.alfa.dataDir, 'gateway.db'));
    const { key } = createApiKey(setup, { name: 'records system', role: 'connector' });
    setup.close();
    serve(net.alfa);
    serve(net.beta);
    await Promise.all([waitHealthy(net.alfa), waitHealthy(net.beta)]);
    serve(net.alfa, 'worker');
    const N = 120;
    const post = (i: number) => fetch(`http://127.0.0.1:${net!.alfa.apiPort}/v1/documents`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        recipient: '000000002', externalId: `worker-${i}`,
        document: { kind: 'Молба', attachments: [{ fileName: 'молба.txt', mimeType: 'text/plain', content: Buffer.from(`молба ${i}`).toString('base64') }] },
      }),
    });
    const statuses: number[] = [];
    for (let i = 0; i < N; i += 20) {
      // Twenty at once, while the worker is already delivering the earlier ones.
      const answers = await Promise.all(Array.from({ length: 20 }, (_, j) => post(i + j)));
      statuses.push(...answers.map((a) => a.status));
    }
    expect(statuses.filter((st) => st !== 201)).toEqual([]);
    const betaDb = openDatabase(path.join(net.beta.dataDir, 'gateway.db'));
    const alfaDb = openDatabase(path.join(net.alfa.dataDir, 'gateway.db'));
    try {
      await eventually(() => count(alfaDb, "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'seos-document' AND state = 'delivered'") === N, 'all delivered by the worker', 90_000);
      expect(count(betaDb, "SELECT COUNT(*) AS n FROM documents WHERE direction = 'in'")).toBe(N);
      expect(count(betaDb, "SELECT COUNT(DISTINCT document_guid) AS n FROM documents WHERE direction = 'in'")).toBe(N);
      expect(count(alfaDb, "SELECT COUNT(*) AS n FROM documents WHERE direction = 'out' AND status = 'DS_WAIT_REGISTRATION'")).toBe(N);
    } finally {
      betaDb.close();
      alfaDb.close();
    }
  }, 180_000);

  it('loses nothing when Redis is flushed in the middle of a load: the reconciler re-schedules from SQLite', async () => {
    net = await startTwoGateways();
    const alfaDb = net.alfa.gateway.db;
    const N = 300;
    const delivered = () => count(alfaDb, "SELECT COUNT(*) AS n FROM outbox WHERE kind = 'seos-document' AND state = 'delivered'");
    // The first half is sent while the peer is down, so that its next attempts are certainly waiting in Redis as
    // delayed jobs when the flush comes (a row due now is delivered without a job, and on a fast machine a load
    // sent to a live peer may be all delivered before any flush).
    await net.beta.stop();
    for (let i = 0; i < N / 2; i++) await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument() });
    const waitingInRedis = async () => (await net!.alfa.gateway.engine.queueCounts()).delayed;
    for (const deadline = Date.now() + 30_000; await waitingInRedis() < N / 2;) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for the first half's delayed jobs (${await waitingInRedis()} of ${N / 2})`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(delivered()).toBe(0);
    await net.redis.flushAll();
    // FLUSHALL dropped all N / 2 of them. (Not counted again here: the engine is at work meanwhile, and a retry or a
    // reconciler round may add jobs back between the flush and a count.)
    await net.beta.start();
    // The second half goes to the live peer, and Redis is flushed again while it is on its way.
    for (let i = 0; i < N / 2; i++) await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument() });
    await eventually(() => delivered() >= 10, 'some delivered', 30_000);
    await net.redis.flushAll();
    await eventually(() => delivered() === N, 'all delivered after the flushes', 60_000);
    expect(count(net.beta.gateway.db, "SELECT COUNT(*) AS n FROM documents WHERE direction = 'in'")).toBe(N);
    expect(count(alfaDb, "SELECT COUNT(*) AS n FROM documents WHERE direction = 'out' AND status = 'DS_WAIT_REGISTRATION'")).toBe(N);
  }, 120_000);
});
