import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createGateway, type Gateway } from '../../src/app/gateway.ts';
import { loadConfig } from '../../src/config/index.ts';
import { freePort, startRedisServer, type RedisServer } from '../../src/devtools/redis-server.ts';
import { makeTestIdentities, type TestIdentities } from './pki.ts';

/**
 * Two real gateways on loopback, Община Алфа and Община Бета, each with its own SQLite file, spool, archive,
 * signing certificate and SEOS endpoint, sharing one real redis-server (their queues apart by prefix). Each is
 * configured through a real JSON configuration file, and each lists the other as a static participant.
 */
export const ALFA_GUID = '{0a1f0000-0000-4000-8000-000000000001}';
export const BETA_GUID = '{0b2e0000-0000-4000-8000-000000000002}';

export interface Municipality {
  readonly name: 'alfa' | 'beta';
  readonly guid: string;
  readonly eik: string;
  readonly title: string;
  readonly seosPort: number;
  readonly apiPort: number;
  readonly dataDir: string;
  readonly configPath: string;
  gateway: Gateway;
  /** Log lines the gateway wrote (to check that personal data never reaches them). */
  readonly logs: string[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface TwoGateways {
  readonly pki: TestIdentities;
  readonly redis: RedisServer;
  readonly alfa: Municipality;
  readonly beta: Municipality;
  stop(): Promise<void>;
}

export interface TwoGatewaysOptions {
  /** Write the configurations but start nothing (a test that runs the gateways as processes). */
  readonly startInProcess?: boolean;
  /** Retry timing made short for tests. */
  readonly retry?: { firstDelayMs?: number; maxAttempts?: number; factor?: number };
  readonly delivery?: Record<string, unknown>;
  /** Extra static participants for both (e.g. a stand-in peer). */
  readonly extraParticipants?: Array<Record<string, unknown>>;
  /** Settings merged into both SEOS endpoints (e.g. a small maxMessageBytes). */
  readonly endpoint?: Record<string, unknown>;
  /** Extra top-level configuration per municipality (e.g. webhooks). */
  readonly extraConfig?: { alfa?: Record<string, unknown>; beta?: Record<string, unknown> };
}

export async function startTwoGateways(options: TwoGatewaysOptions = {}): Promise<TwoGateways> {
  const pki = makeTestIdentities();
  const redis = await startRedisServer();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-e2e-'));
  const ports = { alfa: await freePort(), beta: await freePort() };
  const apiPorts = { alfa: await freePort(), beta: await freePort() };
  const participants = [
    { guid: ALFA_GUID, eik: '000000001', name: 'Община Алфа', certificateSN: pki.alfa.certificate.serialHex, endpointUrl: `http://127.0.0.1:${ports.alfa}/seos` },
    { guid: BETA_GUID, eik: '000000002', name: 'Община Бета', certificateSN: pki.beta.certificate.serialHex, endpointUrl: `http://127.0.0.1:${ports.beta}/seos` },
    ...(options.extraParticipants ?? []),
  ];

  const make = (name: 'alfa' | 'beta', guid: string, eik: string, title: string): Municipality => {
    const dataDir = path.join(root, name);
    const configPath = path.join(root, `${name}.json`);
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(configPath, JSON.stringify({
      port: apiPorts[name], dataDir, redisUrl: redis.url, logLevel: 'info',
      self: { eik, name: title, guid },
      signing: { pkcs12Path: pki.manifest.admins.find((a) => a.name === `obshtina-${name}`)!.p12Path, password: pki.manifest.p12Password },
      seos: { endpoint: { port: ports[name], ...options.endpoint }, client: { allowInsecureHttp: true, connectTimeoutMs: 1000, responseTimeoutMs: 10_000 } },
      registry: { participants },
      delivery: {
        retry: { firstDelayMs: 300, factor: 1.5, maxAttempts: 20, jitter: 0, ...options.retry },
        reconcileIntervalMs: 500, statusPollIntervalMs: 3600_000, probeIntervalMs: 500, downAfterFailures: 3, lockDurationMs: 2000,
        ...options.delivery,
      },
      ...options.extraConfig?.[name],
    }, null, 2));
    const logs: string[] = [];
    const logStream = new Writable({ write(chunk, _enc, done) { logs.push(String(chunk)); done(); } });
    const m: Municipality = {
      name, guid, eik, title, seosPort: ports[name], apiPort: apiPorts[name], dataDir, configPath, logs,
      gateway: undefined as unknown as Gateway,
      async start() {
        m.gateway = await createGateway(loadConfig({ file: configPath, env: {} }), { logStream });
        await m.gateway.start();
      },
      async stop() {
        await m.gateway.stop();
      },
    };
    return m;
  };

  const alfa = make('alfa', ALFA_GUID, '000000001', 'Община Алфа');
  const beta = make('beta', BETA_GUID, '000000002', 'Община Бета');
  if (options.startInProcess !== false) {
    await alfa.start();
    await beta.start();
  }
  return {
    pki, redis, alfa, beta,
    async stop() {
      await Promise.allSettled([alfa.gateway && alfa.stop(), beta.gateway && beta.stop()]);
      await redis.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` returns a truthy value (real asynchronous delivery: no fixed sleeps). */
export async function eventually<T>(check: () => T | undefined | false | null, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
