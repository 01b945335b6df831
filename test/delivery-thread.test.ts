import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway, type Gateway } from '../src/app/gateway.ts';
import { loadConfig } from '../src/config/index.ts';
import { QUEUE_NAME } from '../src/delivery/engine.ts';
import { entriesForDocument, listAttempts } from '../src/delivery/outbox.ts';
import { newGuid } from '../src/seos/index.ts';
import { getDocument } from '../src/store/documents.ts';
import { BETA_GUID, eventually, startTwoGateways, type TwoGateways } from './support/gateways.ts';
import { sampleDocument } from './support/messages.ts';

/**
 * serve with its deliveries on a thread of their own (what `seos-gateway serve` runs): Община Алфа's gateway
 * built with a delivery thread from its real configuration file, Община Бета's a plain gateway, real Redis and
 * SQLite. The thread loads the TypeScript sources itself, as it does under `serve`.
 */
let net: TwoGateways | undefined;
let alfa: Gateway | undefined;

afterEach(async () => {
  await alfa?.stop();
  alfa = undefined;
  await net?.stop();
  net = undefined;
});

async function startAlfaWithThread(): Promise<{ gateway: Gateway; logs: string[] }> {
  net = await startTwoGateways({ startInProcess: false });
  await net.beta.start();
  return restartAlfa();
}

async function restartAlfa(): Promise<{ gateway: Gateway; logs: string[] }> {
  const logs: string[] = [];
  const logStream = new Writable({ write(chunk, _enc, done) { logs.push(String(chunk)); done(); } });
  alfa = await createGateway(loadConfig({ file: net!.alfa.configPath, env: {} }), {
    logStream, deliveryThread: { configFile: net!.alfa.configPath, env: {} },
  });
  await alfa.start();
  return { gateway: alfa, logs };
}

const sendOne = (gateway: Gateway) => gateway.outbound.sendDocument({ recipient: BETA_GUID, document: sampleDocument({ id: { documentGuid: newGuid() } }) });

function delivered(gateway: Gateway, documentId: string): boolean {
  return getDocument(gateway.db, documentId)?.status === 'DS_WAIT_REGISTRATION';
}

async function queueEvents(gateway: Gateway): Promise<number> {
  const client = new Redis(net!.redis.url);
  try {
    return await client.xlen(`sgw-${gateway.config.self!.guid.replace(/[{}]/g, '')}:${QUEUE_NAME}:events`);
  } finally {
    client.disconnect();
  }
}

describe('serve with a delivery thread', () => {
  it('hands each document to the thread without a queue job; serve counts the delivery in its metrics', async () => {
    const { gateway } = await startAlfaWithThread();
    expect(gateway.deliveryThread?.running).toBe(true);
    const sent = await Promise.all([sendOne(gateway), sendOne(gateway), sendOne(gateway)]);
    await eventually(() => sent.every((s) => delivered(gateway, s.documentId)), 'three documents delivered');
    for (const s of sent) {
      expect(listAttempts(gateway.db, entriesForDocument(gateway.db, s.documentId)[0].id).map((a) => a.outcome)).toEqual(['delivered']);
    }
    expect(await queueEvents(gateway)).toBe(0); // handed over by message, never through Redis
    // The thread reports each attempt just after its commit.
    let metrics = '';
    for (let i = 0; i < 100 && !/deliveries_delivered_total\{kind="seos-document"\} 3\b/.test(metrics); i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50));
      metrics = (await gateway.api.inject({ method: 'GET', url: '/metrics' })).body;
    }
    expect(metrics).toMatch(/seos_gateway_deliveries_delivered_total\{kind="seos-document"\} 3\b/);
    expect(metrics).toMatch(/seos_gateway_delivery_latency_seconds_count\{kind="seos-document"\} 3\b/);
    expect(metrics).toMatch(/seos_gateway_queue_depth\{state="active"\} 0\b/);
  });

  it('starts a thread that died again; a document accepted meanwhile goes through the queue and is delivered once', async () => {
    const { gateway, logs } = await startAlfaWithThread();
    const thread = gateway.deliveryThread!;
    await thread.kill();
    expect(thread.running).toBe(false);
    const notReady = await gateway.api.inject({ method: 'GET', url: '/ready' });
    expect(notReady.statusCode).toBe(503); // IT staff see that deliveries have stopped
    expect(notReady.json().checks.deliveryThread).toEqual({ ok: false });
    const during = await sendOne(gateway); // no thread to hand it to: a queue job, taken by the restarted thread's worker
    await eventually(() => thread.running, 'the thread running again');
    const ready = await gateway.api.inject({ method: 'GET', url: '/ready' });
    expect(ready.json().checks.deliveryThread).toEqual({ ok: true });
    await eventually(() => delivered(gateway, during.documentId), 'the document accepted while it was down');
    expect(await queueEvents(gateway)).toBeGreaterThan(0);
    const after = await sendOne(gateway);
    await eventually(() => delivered(gateway, after.documentId), 'a document accepted after the restart');
    for (const s of [during, after]) {
      expect(listAttempts(gateway.db, entriesForDocument(gateway.db, s.documentId)[0].id).map((a) => a.outcome)).toEqual(['delivered']);
    }
    expect(logs.join('')).toContain('delivery thread stopped unexpectedly');
  });

  it('stops at once when the thread died and waits to start again, and does not start it afterwards', async () => {
    const { gateway } = await startAlfaWithThread();
    const thread = gateway.deliveryThread!;
    await thread.kill();
    const started = Date.now();
    await gateway.stop();
    alfa = undefined;
    expect(Date.now() - started).toBeLessThan(5000); // not the 30 s a stop waits for a thread that does not answer
    await new Promise((resolve) => setTimeout(resolve, 1500)); // past the restart delay
    expect(thread.running).toBe(false);
  });

  it('stops the thread with the gateway; a document left undelivered is delivered once after the restart', async () => {
    const { gateway } = await startAlfaWithThread();
    const thread = gateway.deliveryThread!;
    const sent = await sendOne(gateway);
    await gateway.stop();
    alfa = undefined;
    expect(thread.running).toBe(false);
    const { gateway: again } = await restartAlfa();
    await eventually(() => delivered(again, sent.documentId), 'delivered after the restart');
    expect(listAttempts(again.db, entriesForDocument(again.db, sent.documentId)[0].id).map((a) => a.outcome)).toEqual(['delivered']);
  });
});
