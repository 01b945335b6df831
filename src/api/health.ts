import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { CertificateInfo } from '../pki/index.ts';
import type { Db } from '../store/database.ts';
import { schemaVersion } from '../store/database.ts';

/**
 * GET /ready and GET /metrics. /health (liveness) is in server.ts and never touches a dependency; /ready says
 * whether this gateway can do its work now: 200 when the database, Redis and the signing certificate are fine,
 * 503 otherwise, always with every check so IT staff see which one failed.
 */
export interface ReadinessDeps {
  readonly db: Db;
  readonly queueCounts: () => Promise<Record<string, number>>;
  readonly certificate: CertificateInfo;
  /** Absent when participants come only from the configuration. */
  readonly registry?: { lastSync(): { lastIncrementalAt?: string; lastFullAt?: string }; maxAgeMs: number };
  readonly metrics: Registry;
  /** serve with a delivery thread: whether it runs (deliveries stop while it starts again after a crash). */
  readonly deliveryThreadRunning?: () => boolean;
}

type Check = { ok: boolean; [key: string]: unknown };

export function registerHealthRoutes(app: FastifyInstance, deps: ReadinessDeps): void {
  app.get('/ready', async (_request, reply) => {
    const checks: Record<string, Check> = {};
    try {
      deps.db.prepare('SELECT 1').get();
      checks.database = { ok: true, schemaVersion: schemaVersion(deps.db) };
    } catch (error) {
      checks.database = { ok: false, error: (error as Error).message.slice(0, 200) };
    }
    try {
      const counts = await Promise.race([
        deps.queueCounts(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('Redis did not answer within 2 s')), 2000).unref()),
      ]);
      checks.redis = { ok: true, queue: counts };
    } catch (error) {
      checks.redis = { ok: false, error: (error as Error).message.slice(0, 200) };
    }
    const now = Date.now();
    const cert = deps.certificate;
    const daysLeft = Math.floor((cert.notAfter.getTime() - now) / 86_400_000);
    checks.signingCertificate = {
      ok: now >= cert.notBefore.getTime() && now <= cert.notAfter.getTime(),
      serial: cert.serialHex, notAfter: cert.notAfter.toISOString(), daysToExpiry: daysLeft, expiresSoon: daysLeft < 30,
    };
    if (deps.registry) {
      const last = deps.registry.lastSync();
      const latest = [last.lastIncrementalAt, last.lastFullAt].filter(Boolean).map((t) => new Date(t!).getTime());
      const age = latest.length ? now - Math.max(...latest) : undefined;
      // A stale copy still works (participants rarely change); it is reported, not fatal.
      checks.registry = { ok: true, fresh: age !== undefined && age <= deps.registry.maxAgeMs, lastSyncAt: latest.length ? new Date(Math.max(...latest)).toISOString() : null };
    } else {
      checks.registry = { ok: true, source: 'configuration' };
    }
    const outbox = Object.fromEntries((deps.db.prepare('SELECT state, COUNT(*) AS n FROM outbox GROUP BY state').all() as Array<{ state: string; n: number }>).map((r) => [r.state, r.n]));
    checks.deliveries = { ok: true, pending: outbox.pending ?? 0, failed: outbox.failed ?? 0, dead: outbox.dead ?? 0 };
    if (deps.deliveryThreadRunning) checks.deliveryThread = { ok: deps.deliveryThreadRunning() };
    const ready = Object.values(checks).every((c) => c.ok);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not-ready', checks });
  });

  app.get('/metrics', async (_request, reply) => {
    const body = await deps.metrics.metrics();
    return reply.header('content-type', deps.metrics.contentType).send(body);
  });
}
