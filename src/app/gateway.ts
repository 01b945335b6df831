import path from 'node:path';
import type { ConnectionOptions } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { buildSeosEndpoint } from '../api/seos-endpoint.ts';
import { buildServer, createLogger } from '../api/server.ts';
import { DeliveryLog } from '../audit/index.ts';
import type { GatewayConfig } from '../config/index.ts';
import { readTlsFiles } from '../config/tls-files.ts';
import { DeliveryEngine } from '../delivery/engine.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import { GatewayError } from '../errors/index.ts';
import { loadSigningIdentity, type SigningIdentity } from '../pki/index.ts';
import type { Participant as SeosParticipant } from '../seos/model.ts';
import { createSeosOutbound, type RecipientInfo } from '../seos/outbound.ts';
import { createSeosReceiver } from '../seos/receiver.ts';
import { ParticipantDirectory, RegistrySync, createRegistryClient, type Participant } from '../seos/registry/index.ts';
import { createSeosClient } from '../seos/soap/index.ts';
import { WEBHOOK_KIND, createWebhookHandler, createWebhookNotifier } from '../webhooks/index.ts';
import { Lifecycle } from './lifecycle.ts';
import { createGatewayMetrics } from './metrics.ts';
import { registerHealthRoutes } from '../api/health.ts';
import { ContentStore } from '../store/content-store.ts';
import { openDatabase, type Db } from '../store/database.ts';
import type { DestinationStream } from 'pino';

/**
 * The composition root: one gateway instance, built from its configuration. Tests start two of these as two
 * municipalities; `serve` starts one; `worker` starts one without listeners.
 */
export interface GatewayOptions {
  readonly logStream?: DestinationStream;
  /**
   * serve: listeners, plus delivery workers unless they run apart (`delivery.inProcessWorkers: false`);
   * worker: delivery workers only; cli: neither, for a command that changes something and hands it to Redis.
   */
  readonly mode?: 'serve' | 'worker' | 'cli';
}

export interface Gateway {
  readonly config: GatewayConfig;
  readonly db: Db;
  readonly directory: ParticipantDirectory;
  readonly engine: DeliveryEngine;
  readonly outbound: ReturnType<typeof createSeosOutbound>;
  readonly api: FastifyInstance;
  readonly seos: FastifyInstance;
  readonly archive: ContentStore;
  readonly spool: ContentStore;
  readonly log: DeliveryLog;
  readonly identity: SigningIdentity;
  readonly registrySync?: RegistrySync;
  start(): Promise<{ apiUrl: string; seosUrl: string }>;
  stop(): Promise<void>;
}

export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const self = config.self;
  if (!self) throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.self: who this administration is (eik, name, guid) is required to exchange documents');
  const mode = options.mode ?? 'serve';
  const logger = createLogger(config.logLevel, options.logStream);
  const identity = loadIdentity(config);
  const db = openDatabase(path.join(config.dataDir, 'gateway.db'));
  const spool = new ContentStore(path.join(config.dataDir, 'spool'));
  const archive = new ContentStore(path.join(config.dataDir, 'archive'));
  const log = new DeliveryLog(db);
  const directory = new ParticipantDirectory(db);
  directory.setStatic(config.registry.participants.map((p) => ({ ...p })));

  const registrySync = config.registry.url
    ? new RegistrySync({
      client: createRegistryClient({ url: config.registry.url, tls: readTlsFiles(config.registry.tls, '$.registry.tls') as never, allowInsecureHttp: config.registry.allowInsecureHttp }),
      directory, intervalMs: config.registry.syncIntervalMinutes * 60_000, fullEveryMs: config.registry.fullSyncHours * 3600_000,
      logger: logger.child({ component: 'registry' }),
    })
    : undefined;

  const client = createSeosClient({
    tls: readTlsFiles(config.seos.client.tls, '$.seos.client.tls') as never,
    rejectUnauthorized: config.seos.client.rejectUnauthorized,
    connectTimeoutMs: config.seos.client.connectTimeoutMs,
    responseTimeoutMs: config.seos.client.responseTimeoutMs,
    allowInsecureHttp: config.seos.client.allowInsecureHttp,
  });

  const selfParticipant: SeosParticipant = { identifier: self.eik, administrativeBodyName: self.name, guid: self.guid };
  const profileFor = (peer: string) => config.seos.peers[peer.toLowerCase()]?.signatureProfile ?? 'rsa-sha256';
  const recipientInfo = (p: Participant): RecipientInfo => ({
    guid: p.guid, eik: p.eik, name: p.name, status: p.status, endpointUrl: p.endpointUrl, certificateSerialNormalized: p.certificateSerialNormalized,
  });

  let engine!: DeliveryEngine;
  // Scheduled once the current synchronous transaction has committed, never from inside it.
  const schedule = (entry: OutboxRow) => setImmediate(() => engine.schedule(entry));
  const metrics = createGatewayMetrics(db, () => engine.queueCounts());
  const lifecycle = new Lifecycle([
    createWebhookNotifier(db, config.webhooks),
    { documentReceived: (doc) => { metrics.documentReceived(doc.channel); } },
  ], (entry) => engine.schedule(entry));
  const seosOutbound = createSeosOutbound({
    db, self: selfParticipant, identity, archive, spool, log,
    requireRecipient: (guidOrEik) => recipientInfo(directory.requireActiveEndpoint(guidOrEik).participant),
    lookupParticipant: (guid) => { const p = directory.byGuid(guid); return p ? recipientInfo(p) : undefined; },
    submit: (url, message, expect) => client.submit(url, message, expect),
    signatureProfileFor: profileFor,
    statusPollIntervalMs: config.delivery.statusPollIntervalMs,
    schedule,
    lifecycle,
  });
  const outbound: typeof seosOutbound = {
    ...seosOutbound,
    async sendDocument(input) {
      const sent = await seosOutbound.sendDocument(input);
      if (sent.created) metrics.documentAccepted('seos');
      return sent;
    },
  };

  engine = new DeliveryEngine({
    db, connection: redisConnection(config.redisUrl), prefix: `sgw-${self.guid.replace(/[{}]/g, '')}`,
    handlers: { ...outbound.handlers, [WEBHOOK_KIND]: createWebhookHandler(config.webhooks) },
    retryPolicyFor: () => config.delivery.retry,
    destinationPolicy: { downAfter: config.delivery.downAfterFailures, probeIntervalMs: config.delivery.probeIntervalMs },
    concurrency: config.delivery.concurrency,
    perDestinationConcurrency: config.delivery.perDestinationConcurrency,
    reconcileIntervalMs: config.delivery.reconcileIntervalMs,
    lockDurationMs: config.delivery.lockDurationMs,
    runWorker: mode === 'worker' || (mode === 'serve' && config.delivery.inProcessWorkers),
    events: {
      attempted: (entry, outcome) => metrics.attempt(entry, outcome),
      dead: (entry, code, detail) => outbound.markDead(entry, code, detail),
      // Refused deliveries of our own SEOS messages tell the lifecycle in their commit; others (webhooks) here.
      failed: (entry, code, detail) => { if (!entry.kind.startsWith('seos-')) db.transaction(() => lifecycle.deliveryFailed(entry, code, detail))(); },
    },
    log: logger.child({ component: 'delivery' }),
  });

  const receiver = createSeosReceiver({
    db, self: selfParticipant, identity, spool, archive, log,
    lookupSender: (guid) => {
      const p = directory.byGuid(guid);
      return p ? { guid: p.guid, eik: p.eik, name: p.name, status: p.status, certificateSN: p.certificateSN ?? null } : undefined;
    },
    signatureProfileFor: profileFor,
    limits: { maxBytes: config.seos.endpoint.maxMessageBytes },
    lifecycle,
  });

  const api = await buildServer(config, { logStream: options.logStream });
  registerHealthRoutes(api, {
    db, queueCounts: () => engine.queueCounts(), certificate: identity.certificate, metrics: metrics.registry,
    ...(registrySync ? { registry: { lastSync: () => directory.lastSync(), maxAgeMs: 3 * config.registry.syncIntervalMinutes * 60_000 } } : {}),
  });
  // The records-system REST API (/v1, OpenAPI at /docs); loaded only where it listens, to keep CLI start-up short.
  if (config.api.enabled && mode === 'serve') {
    const { recordsApi } = await import('../api/records-api.ts');
    await api.register(recordsApi, { config: config.api, db, outbound, spool, archive, log, schedule, lifecycle });
    // The queue dashboard for IT staff, behind the operator role.
    const [{ registerQueueDashboard }, { ApiKeyVerifier }] = await Promise.all([import('../api/queue-dashboard.ts'), import('../api/api-keys.ts')]);
    const verifier = new ApiKeyVerifier(db);
    await registerQueueDashboard(api, { queue: engine.bullQueue, roleOfKey: (key) => verifier.verify(key)?.role });
  }
  const seos = buildSeosEndpoint({ config: config.seos.endpoint, receive: receiver.receive, logger: logger.child({ component: 'seos-endpoint' }) });

  let stopped = false;
  return {
    config, db, directory, engine, outbound, api, seos, archive, spool, log, identity, registrySync,
    async start() {
      if (mode === 'cli') return { apiUrl: '', seosUrl: '' };
      await engine.start();
      if (mode === 'worker') return { apiUrl: '', seosUrl: '' };
      registrySync?.start();
      const apiUrl = await api.listen({ host: config.host, port: config.port });
      const seosUrl = await seos.listen({ host: config.seos.endpoint.host, port: config.seos.endpoint.port });
      return { apiUrl, seosUrl: `${seosUrl}${config.seos.endpoint.path}` };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // Stop taking work first, then let deliveries in flight finish, then close the stores.
      await Promise.allSettled([api.close(), seos.close()]);
      await registrySync?.stop();
      await engine.close();
      client.close();
      db.close();
    },
  };
}

function loadIdentity(config: GatewayConfig): SigningIdentity {
  const s = config.signing;
  if (s.pkcs12Path) return loadSigningIdentity({ pkcs12Path: s.pkcs12Path, password: s.password?.reveal() ?? '' });
  if (s.keyPath && s.certPath) return loadSigningIdentity({ keyPath: s.keyPath, certPath: s.certPath, passphrase: s.password?.reveal() });
  throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.signing: a PKCS#12 file (pkcs12Path) or a PEM key and certificate (keyPath, certPath) is required');
}

/** BullMQ connection options from a redis:// URL (BullMQ needs maxRetriesPerRequest null on its connections). */
export function redisConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  return {
    host: u.hostname, port: Number(u.port || 6379),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
  };
}

