import fs from 'node:fs';
import path from 'node:path';
import type { ConnectionOptions } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { buildSeosEndpoint } from '../api/seos-endpoint.ts';
import { buildServer, createLogger } from '../api/server.ts';
import { DeliveryLog } from '../audit/index.ts';
import type { GatewayConfig } from '../config/index.ts';
import { readTlsFiles } from '../config/tls-files.ts';
import { DeliveryEngine, type DeliveryOutcome, type HandedOff } from '../delivery/engine.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import { GatewayError } from '../errors/index.ts';
import { loadSigningIdentity, type SigningIdentity } from '../pki/index.ts';
import type { Participant as SeosParticipant } from '../seos/model.ts';
import { createSeosOutbound, type RecipientInfo } from '../seos/outbound.ts';
import { createSeosReceiver } from '../seos/receiver.ts';
import { StatusPoller } from '../seos/status-poller.ts';
import { ParticipantDirectory, RegistrySync, createRegistryClient, type Participant } from '../seos/registry/index.ts';
import { createSeosClient } from '../seos/soap/index.ts';
import type { SsevChannel } from '../ssev/index.ts';
import { WEBHOOK_KIND, createWebhookHandler, createWebhookNotifier } from '../webhooks/index.ts';
import { withRnuOnTheWire } from '../ejournal/carried-rnu.ts';
import { DeliveryThread } from './delivery-thread.ts';
import { Lifecycle } from './lifecycle.ts';
import { createGatewayMetrics } from './metrics.ts';
import { registerHealthRoutes } from '../api/health.ts';
import { openGatewayStore, type ContentStore } from '../store/content-store.ts';
import { openDatabase, type Db } from '../store/database.ts';
import { closeDatabase, durable } from '../store/durability.ts';
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
  /**
   * serve: run the deliveries on a thread of their own, built from this configuration file (see
   * delivery-thread.ts). Without it they share the event loop that answers the API.
   */
  readonly deliveryThread?: { readonly configFile: string | undefined; readonly env?: Readonly<Record<string, string | undefined>> };
  /** Inside serve's delivery thread: serve's connection checkpoints the database for both (see OpenDatabaseOptions). */
  readonly checkpoints?: boolean;
  /** Every settled delivery attempt, besides this gateway's own metrics (the delivery thread reports them to serve). */
  readonly attempted?: (entry: OutboxRow, outcome: DeliveryOutcome) => void;
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
  /** SSEV, the second channel, when `ssev.enabled`. */
  readonly ssev?: SsevChannel;
  /** serve's delivery thread, once started (`GatewayOptions.deliveryThread`). */
  readonly deliveryThread: DeliveryThread | undefined;
  start(): Promise<{ apiUrl: string; seosUrl: string }>;
  stop(): Promise<void>;
}

export async function createGateway(config: GatewayConfig, options: GatewayOptions = {}): Promise<Gateway> {
  const self = config.self;
  if (!self) throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.self: who this administration is (eik, name, guid) is required to exchange documents');
  const mode = options.mode ?? 'serve';
  const logger = createLogger(config.logLevel, options.logStream);
  const identity = loadIdentity(config);
  // Serving and worker processes group their commits (see store/durability.ts); a CLI command syncs each commit.
  const db = openDatabase(path.join(config.dataDir, 'gateway.db'), { groupCommit: mode !== 'cli', log: logger, checkpoints: options.checkpoints });
  const spool = openGatewayStore(config.dataDir, 'spool', db, config.contentInDatabaseMaxBytes);
  const archive = openGatewayStore(config.dataDir, 'archive', db, config.contentInDatabaseMaxBytes);
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
  const inProcessDeliveries = mode === 'worker' || (mode === 'serve' && config.delivery.inProcessWorkers);
  const threadOptions = mode === 'serve' && config.delivery.inProcessWorkers ? options.deliveryThread : undefined;
  let thread: DeliveryThread | undefined;
  const queueCounts = async () => {
    const [counts, held] = await Promise.all([engine.queueCounts(), thread?.counts()]);
    return held ? { ...counts, active: (counts.active ?? 0) + held.active, waiting: (counts.waiting ?? 0) + held.waiting } : counts;
  };
  const metrics = createGatewayMetrics(db, queueCounts);
  // eJournal, when configured: automatic events (a lifecycle listener), their delivery handler and API routes.
  const ejournal = config.ejournal.enabled
    ? (await import('./ejournal-wiring.ts')).createEjournalWiring(config, { db, log, schedule: (entry) => engine.schedule(entry) })
    : undefined;
  const lifecycle = new Lifecycle([
    createWebhookNotifier(db, config.webhooks),
    { documentReceived: (doc) => { metrics.documentReceived(doc.channel); } },
    ...(ejournal ? [ejournal.listener] : []),
  ], (entry) => engine.schedule(entry));
  const seosOutbound = createSeosOutbound({
    db, self: selfParticipant, identity, archive, spool, log,
    requireRecipient: (guidOrEik) => recipientInfo(directory.requireActiveEndpoint(guidOrEik).participant),
    lookupParticipant: (guid) => { const p = directory.byGuid(guid); return p ? recipientInfo(p) : undefined; },
    submit: (url, message, expect) => client.submit(url, message, expect),
    signatureProfileFor: profileFor,
    schedule,
    lifecycle,
  });
  const outbound: typeof seosOutbound = {
    ...seosOutbound,
    async sendDocument(input) {
      // A document's RNU goes on the wire in DocAddData (validated first: a bad one is refused before anything is stored).
      const sent = await seosOutbound.sendDocument(withRnuOnTheWire(input));
      if (sent.created) metrics.documentAccepted('seos');
      return sent;
    },
  };

  // SSEV, the second channel (people, companies, administrations outside SEOS), when configured; loaded only then.
  const ssev = config.ssev.enabled
    ? (await import('./ssev-wiring.ts')).createSsevWiring(config, {
      db, spool, archive, log, identity, schedule, lifecycle, logger: logger.child({ component: 'ssev' }), accepted: () => metrics.documentAccepted('ssev'),
    })
    : undefined;

  engine = new DeliveryEngine({
    db, connection: redisConnection(config.redisUrl), prefix: `sgw-${self.guid.replace(/[{}]/g, '')}`,
    handlers: { ...outbound.handlers, ...ssev?.channel.handlers, ...ejournal?.handlers, [WEBHOOK_KIND]: createWebhookHandler(config.webhooks) },
    retryPolicyFor: () => config.delivery.retry,
    destinationPolicy: { downAfter: config.delivery.downAfterFailures, probeIntervalMs: config.delivery.probeIntervalMs },
    concurrency: config.delivery.concurrency,
    perDestinationConcurrency: config.delivery.perDestinationConcurrency,
    directLimit: config.delivery.directLimit,
    reconcileIntervalMs: config.delivery.reconcileIntervalMs,
    lockDurationMs: config.delivery.lockDurationMs,
    runWorker: inProcessDeliveries && !threadOptions,
    ...(threadOptions ? { handOff: (job: HandedOff) => thread?.handOff(job) ?? false, reconcile: false } : {}),
    events: {
      attempted: (entry, outcome) => {
        metrics.attempt(entry, outcome);
        options.attempted?.(entry, outcome);
      },
      // Each channel settles its own dead entries (SSEV's by kind); the SEOS outbound settles the rest (webhooks too).
      dead: (entry, code, detail) => {
        if (ejournal?.markDead(entry, code)) return; // an eJournal event: logged, held for the operator (resend or skip)
        return ssev && entry.kind in ssev.channel.handlers ? ssev.channel.markDead(entry, code, detail) : outbound.markDead(entry, code, detail);
      },
      // Refused deliveries of our own SEOS and SSEV messages tell the lifecycle in their commit; others (webhooks) here.
      failed: (entry, code, detail) => {
        if (!entry.kind.startsWith('seos-') && !entry.kind.startsWith('ssev-')) db.transaction(() => lifecycle.deliveryFailed(entry, code, detail))();
      },
    },
    log: logger.child({ component: 'delivery' }),
  });

  // Sent documents still waiting for registration are asked about on a schedule (serve only: one sweeper).
  const statusPoller = new StatusPoller({ db, intervalMs: config.delivery.statusPollIntervalMs, schedule, log: logger.child({ component: 'status-poller' }) });

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
  // A request that changed something is answered only once its commit is on disk (group commit).
  api.addHook('onSend', async (request, _reply, payload) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') await durable(db);
    return payload;
  });
  registerHealthRoutes(api, {
    db, queueCounts, certificate: identity.certificate, metrics: metrics.registry,
    ...(threadOptions ? { deliveryThreadRunning: () => thread?.running ?? false } : {}),
    ...(registrySync ? { registry: { lastSync: () => directory.lastSync(), maxAgeMs: 3 * config.registry.syncIntervalMinutes * 60_000 } } : {}),
  });
  // The records-system REST API (/v1, OpenAPI at /docs); loaded only where it listens, to keep CLI start-up short.
  if (config.api.enabled && mode === 'serve') {
    const { recordsApi } = await import('../api/records-api.ts');
    // With SSEV, POST /v1/documents chooses the channel (SEOS, else SSEV); without it every document goes over SEOS.
    const channels = ssev
      ? { ...(await import('./document-channels.ts')).createDocumentChannels({ directory, ssevLookup: ssev.channel.lookupProfile }), ssev: ssev.channel }
      : undefined;
    await api.register(recordsApi, {
      config: config.api, db, outbound, spool, archive, log, schedule, lifecycle, ...(channels ? { channels } : {}), ...(ejournal ? { ejournal: ejournal.api } : {}),
    });
    // The queue dashboard for IT staff, behind the operator role.
    const [{ registerQueueDashboard }, { ApiKeyVerifier }] = await Promise.all([import('../api/queue-dashboard.ts'), import('../api/api-keys.ts')]);
    const verifier = new ApiKeyVerifier(db);
    await registerQueueDashboard(api, { queue: engine.bullQueue, roleOfKey: (key) => verifier.verify(key)?.role });
  }
  // Large inbound messages are streamed to files here (they may hold personal data: inside dataDir, not /tmp).
  const inboundDir = path.join(config.dataDir, 'inbound');
  const seos = buildSeosEndpoint({ config: config.seos.endpoint, receive: receiver.receive, logger: logger.child({ component: 'seos-endpoint' }), tempDir: inboundDir });
  // SSEV's push notifications: on the SEOS listener by default (the one reachable from outside), see ssev.pushListener.
  if (ssev && mode === 'serve') await ssev.mountPush({ api, seos });

  let stopped = false;
  return {
    config, db, directory, engine, outbound, api, seos, archive, spool, log, identity, registrySync, ...(ssev ? { ssev: ssev.channel } : {}),
    get deliveryThread() { return thread; },
    async start() {
      if (mode === 'cli') return { apiUrl: '', seosUrl: '' };
      await engine.start();
      if (mode === 'worker') return { apiUrl: '', seosUrl: '' };
      if (threadOptions) {
        thread = await DeliveryThread.start({
          configFile: threadOptions.configFile, ...(threadOptions.env ? { env: threadOptions.env } : {}), log: logger.child({ component: 'delivery-thread' }),
          attempted: (attempt) => metrics.attempt(attempt, attempt),
        });
      }
      registrySync?.start();
      statusPoller.start();
      // Files of messages that were arriving when the previous run stopped were never answered: the senders retry.
      fs.rmSync(inboundDir, { recursive: true, force: true });
      const apiUrl = await api.listen({ host: config.host, port: config.port });
      const seosUrl = await seos.listen({ host: config.seos.endpoint.host, port: config.seos.endpoint.port });
      ssev?.channel.start(); // SSEV inbox and sent-status polling, each once now and then on its interval
      return { apiUrl, seosUrl: `${seosUrl}${config.seos.endpoint.path}` };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // Stop taking work first, then let deliveries in flight finish, then close the stores.
      await Promise.allSettled([api.close(), seos.close()]);
      await registrySync?.stop();
      statusPoller.stop();
      await ssev?.close(); // SSEV polling stopped and its work in flight finished before the engine and the database
      await thread?.stop();
      await engine.close();
      ejournal?.close();
      client.close();
      spool.close();
      archive.close();
      await closeDatabase(db);
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

