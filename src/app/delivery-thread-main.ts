import { parentPort, workerData } from 'node:worker_threads';
import { loadConfig } from '../config/index.ts';
import type { HandedOff } from '../delivery/engine.ts';
import type { AttemptSummary } from './delivery-thread.ts';
import { createGateway } from './gateway.ts';

/**
 * Inside the delivery thread (see delivery-thread.ts): the gateway of `seos-gateway worker`, fed by the serve
 * process's messages: `deliver` (a row due now, with its job sequence), `counts`, `stop`.
 */
const port = parentPort!;
const { configFile, env } = workerData as { configFile?: string; env: Record<string, string | undefined> };
const config = loadConfig({ file: configFile, env });
const gateway = await createGateway(config, {
  mode: 'worker',
  checkpoints: false, // serve's connection, in the same process, checkpoints for both
  attempted: (entry, outcome) => {
    const attempt: AttemptSummary = { kind: entry.kind, createdAt: entry.createdAt, result: outcome.result, ...('code' in outcome ? { code: outcome.code } : {}) };
    port.postMessage({ type: 'attempted', attempt });
  },
});
await gateway.start();
port.on('message', (message: { type: 'deliver'; job: HandedOff } | { type: 'counts'; id: number } | { type: 'stop' }) => {
  if (message.type === 'deliver') gateway.engine.takeHandOff(message.job);
  else if (message.type === 'counts') port.postMessage({ type: 'counts', id: message.id, ...gateway.engine.directCounts() });
  else if (message.type === 'stop') {
    // Anything the stopped gateway left open (a timer, a socket closing) must not keep the thread alive.
    void gateway.stop().finally(() => { port.close(); setTimeout(() => process.exit(0), 1000).unref(); });
  }
});
port.postMessage({ type: 'ready' });
