import { statement, type Db } from '../store/database.ts';

/**
 * Destination health, kept in SQLite so every worker process agrees and it survives a restart. After
 * `downAfter` consecutive transport failures a destination is down: its deliveries wait for the probe time
 * without spending attempts, and one delivery acts as the probe; its success brings the destination back.
 */
export interface DestinationPolicy {
  readonly downAfter: number;
  readonly probeIntervalMs: number;
}

export const DEFAULT_DESTINATION_POLICY: DestinationPolicy = { downAfter: 5, probeIntervalMs: 5 * 60_000 };

export interface DestinationHealth {
  id: string;
  state: 'up' | 'down';
  consecutiveFailures: number;
  downSince: string | null;
  nextProbeAt: string | null;
  lastError: string | null;
}

export function destinationHealth(db: Db, id: string): DestinationHealth {
  const row = statement(db, `SELECT id, state, consecutive_failures AS consecutiveFailures, down_since AS downSince,
    next_probe_at AS nextProbeAt, last_error AS lastError FROM destinations WHERE id = ?`).get(id) as DestinationHealth | undefined;
  return row ?? { id, state: 'up', consecutiveFailures: 0, downSince: null, nextProbeAt: null, lastError: null };
}

export function listDownDestinations(db: Db): DestinationHealth[] {
  return statement(db, `SELECT id, state, consecutive_failures AS consecutiveFailures, down_since AS downSince,
    next_probe_at AS nextProbeAt, last_error AS lastError FROM destinations WHERE state = 'down'`).all() as DestinationHealth[];
}

/**
 * Whether a delivery to this destination may go now. When the destination is down and its probe time has come,
 * the caller's delivery is the probe, and the next probe moves on so that concurrent workers do not all probe.
 */
export function mayAttempt(db: Db, id: string, policy: DestinationPolicy, now = new Date()): { go: true; probe: boolean } | { go: false; until: Date } {
  // Nearly always up: answered from one read, without taking the write lock for a transaction that writes nothing.
  if (destinationHealth(db, id).state === 'up') return { go: true, probe: false };
  return db.transaction(() => {
    const h = destinationHealth(db, id);
    if (h.state === 'up') return { go: true as const, probe: false };
    const probeAt = h.nextProbeAt ? new Date(h.nextProbeAt) : now;
    if (probeAt > now) return { go: false as const, until: probeAt };
    const next = new Date(now.getTime() + policy.probeIntervalMs);
    statement(db, 'UPDATE destinations SET next_probe_at = ?, updated_at = ? WHERE id = ?').run(next.toISOString(), now.toISOString(), id);
    return { go: true as const, probe: true };
  }).immediate();
}

export function recordSuccess(db: Db, id: string): boolean {
  const before = destinationHealth(db, id);
  // Healthy already (or never failed, so no row): nothing to write, which is every delivery of a healthy gateway.
  if (before.state === 'up' && before.consecutiveFailures === 0 && before.lastError === null) return false;
  statement(db, `INSERT INTO destinations (id, state, consecutive_failures, updated_at) VALUES (?, 'up', 0, ?)
    ON CONFLICT (id) DO UPDATE SET state = 'up', consecutive_failures = 0, down_since = NULL, next_probe_at = NULL, last_error = NULL, updated_at = excluded.updated_at`)
    .run(id, new Date().toISOString());
  return before.state === 'down';
}

/** Returns true when this failure marked the destination down. */
export function recordTransportFailure(db: Db, id: string, error: string, policy: DestinationPolicy, now = new Date()): boolean {
  const h = destinationHealth(db, id);
  const failures = h.consecutiveFailures + 1;
  const down = failures >= policy.downAfter;
  statement(db, `INSERT INTO destinations (id, state, consecutive_failures, down_since, next_probe_at, last_error, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET state = excluded.state, consecutive_failures = excluded.consecutive_failures, down_since = excluded.down_since,
    next_probe_at = excluded.next_probe_at, last_error = excluded.last_error, updated_at = excluded.updated_at`)
    .run(id, down ? 'down' : 'up', failures, down ? (h.downSince ?? now.toISOString()) : null,
      down ? new Date(now.getTime() + policy.probeIntervalMs).toISOString() : null, error.slice(0, 500), now.toISOString());
  return down && h.state === 'up';
}
