import type { FastifyInstance } from 'fastify';
import type { DeliveryLog } from '../audit/index.ts';
import type { GatewayConfig } from '../config/index.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import { GatewayError } from '../errors/index.ts';
import type { SigningIdentity } from '../pki/index.ts';
import { createSsevApiFromConfig, createSsevChannel, ssevPushEndpoint, type SsevChannel, type SsevLogger } from '../ssev/index.ts';
import type { ContentStore } from '../store/content-store.ts';
import type { Db } from '../store/database.ts';
import type { Lifecycle } from './lifecycle.ts';

/**
 * SSEV in the composition root: the client the configuration chose, the channel with the gateway's stores,
 * scheduler and lifecycle, and where its push endpoint listens. Built only when `ssev.enabled`.
 *
 * Received documents, SENT / DELIVERED / SENT_FAILED and failed deliveries reach the Lifecycle inside the
 * transaction of each change, so webhooks and eJournal events commit with them, exactly as for SEOS.
 */
export interface SsevWiringDeps {
  readonly db: Db;
  readonly spool: ContentStore;
  readonly archive: ContentStore;
  readonly log: DeliveryLog;
  readonly identity: SigningIdentity;
  readonly schedule: (entry: OutboxRow) => void;
  readonly lifecycle: Lifecycle;
  readonly logger: SsevLogger;
  /** Counts a document accepted for SSEV (metrics). */
  readonly accepted?: () => void;
}

export interface SsevWiring {
  readonly channel: SsevChannel;
  /** Registers the push endpoint on the configured listener (before it listens). */
  mountPush(listeners: { api: FastifyInstance; seos: FastifyInstance }): Promise<void>;
  /** Stops polling, waits for work in flight, closes the client. */
  close(): Promise<void>;
}

export function createSsevWiring(config: GatewayConfig, deps: SsevWiringDeps): SsevWiring {
  const s = config.ssev;
  if (s.pushListener === 'seos' && s.pushPath === config.seos.endpoint.path) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.ssev.pushPath: must differ from $.seos.endpoint.path (both are on the SEOS listener)');
  }
  const client = createSsevApiFromConfig(s, { identity: deps.identity });
  const base = createSsevChannel({
    db: deps.db, client, spool: deps.spool, archive: deps.archive, log: deps.log, schedule: deps.schedule,
    lifecycle: deps.lifecycle, logger: deps.logger, limits: s.limits,
    pollIntervalMs: s.pollIntervalMs, statusPollIntervalMs: s.statusPollIntervalMs, statusPollMaxAgeMs: s.statusPollMaxAgeMs,
  });
  const channel: SsevChannel = {
    ...base,
    sendViaSsev(input) {
      const queued = base.sendViaSsev(input);
      if (queued.created) deps.accepted?.();
      return queued;
    },
  };
  return {
    channel,
    async mountPush(listeners) {
      if (s.pushListener === 'none') return;
      await listeners[s.pushListener].register(ssevPushEndpoint, { channel, path: s.pushPath });
    },
    async close() {
      await channel.stop();
      client.close();
    },
  };
}
