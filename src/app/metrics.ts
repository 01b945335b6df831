import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DeliveryOutcome } from '../delivery/engine.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import type { Db } from '../store/database.ts';
import { checkpointerOf, walSyncOf } from '../store/durability.ts';

/**
 * Prometheus metrics of one gateway (its own registry: two gateways in one process — tests, the demo — must not
 * share counters). Counts come from the events themselves; depths are read when scraped.
 */
export interface GatewayMetrics {
  readonly registry: Registry;
  documentAccepted(channel: string): void;
  documentReceived(channel: string): void;
  attempt(entry: Pick<OutboxRow, 'kind' | 'createdAt'>, outcome: Pick<DeliveryOutcome, 'result'> & { readonly code?: string }): void;
}

/** Disk waits are milliseconds when all is well; the upper buckets show a disk that holds acknowledgements back. */
const DISK_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export function createGatewayMetrics(db: Db, queueCounts: () => Promise<Record<string, number>>): GatewayMetrics {
  const registry = new Registry();
  const accepted = new Counter({ name: 'seos_gateway_documents_accepted_total', help: 'Documents accepted from the records system for delivery', labelNames: ['channel'], registers: [registry] });
  const received = new Counter({ name: 'seos_gateway_documents_received_total', help: 'Documents received from other administrations', labelNames: ['channel'], registers: [registry] });
  const delivered = new Counter({ name: 'seos_gateway_deliveries_delivered_total', help: 'Deliveries completed', labelNames: ['kind'], registers: [registry] });
  const failed = new Counter({ name: 'seos_gateway_deliveries_failed_total', help: 'Deliveries refused by the other side (not retried)', labelNames: ['kind', 'code'], registers: [registry] });
  const retries = new Counter({ name: 'seos_gateway_delivery_retries_total', help: 'Attempts that failed and will be retried', labelNames: ['kind', 'code'], registers: [registry] });
  const latency = new Histogram({
    name: 'seos_gateway_delivery_latency_seconds', help: 'From acceptance (outbox row created) to delivery', labelNames: ['kind'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 900, 3600, 86400], registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'seos_gateway_queue_depth', help: 'Jobs in the delivery queue by state', labelNames: ['state'], registers: [registry],
    async collect() {
      try {
        for (const [state, n] of Object.entries(await queueCounts())) this.set({ state }, n);
      } catch {
        // Redis unreachable: the depth is unknown, /ready says why.
      }
    },
  });
  new Gauge({
    name: 'seos_gateway_outbox', help: 'Outbox rows by state (dead = retries exhausted, waiting for an operator)', labelNames: ['state'], registers: [registry],
    collect() {
      for (const state of ['pending', 'delivered', 'failed', 'dead']) this.set({ state }, 0);
      for (const r of db.prepare('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state').all() as Array<{ state: string; n: number }>) this.set({ state: r.state }, r.n);
    },
  });
  void queueDepth;
  // What an acknowledgement waits for on the disk, and the pauses of the event loop when the WAL starts over
  // (docs/durability.md): the first thing to look at when answers to the records system or to peers are slow.
  const walSync = new Histogram({
    name: 'seos_gateway_wal_sync_seconds', help: 'fsyncs of the WAL awaited before acknowledging (group commit), thread-pool queue included',
    buckets: DISK_BUCKETS, registers: [registry],
  });
  const walRestart = new Histogram({
    name: 'seos_gateway_wal_restart_pause_seconds', help: 'Event-loop pauses to finish a checkpoint so that the WAL starts over',
    buckets: DISK_BUCKETS, registers: [registry],
  });
  walSyncOf(db)?.observeSyncs((seconds) => walSync.observe(seconds));
  checkpointerOf(db)?.observeFinishes((seconds) => walRestart.observe(seconds));
  return {
    registry,
    documentAccepted: (channel) => accepted.inc({ channel }),
    documentReceived: (channel) => received.inc({ channel }),
    attempt(entry, outcome) {
      if (outcome.result === 'delivered') {
        delivered.inc({ kind: entry.kind });
        latency.observe({ kind: entry.kind }, Math.max(0, (Date.now() - new Date(entry.createdAt).getTime()) / 1000));
      } else if (outcome.result === 'failed') failed.inc({ kind: entry.kind, code: outcome.code ?? '' });
      else if (outcome.result === 'retry') retries.inc({ kind: entry.kind, code: outcome.code ?? '' });
    },
  };
}
