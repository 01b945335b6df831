import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { destinationHealth, mayAttempt, recordSuccess, recordTransportFailure } from '../src/delivery/destinations.ts';
import { openDatabase, type Db } from '../src/store/database.ts';

/** Destination health on a real SQLite file: down after repeated transport failures, one probe at a time, back up on success. */
let dir: string;
let db: Db;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'destinations-'));
  db = openDatabase(path.join(dir, 'g.db'));
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const POLICY = { downAfter: 3, probeIntervalMs: 60_000 };
const changes = () => (db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;

describe('destination health', () => {
  it('lets a healthy destination go, and records a healthy answer, without writing anything', () => {
    const before = changes();
    expect(mayAttempt(db, 'b', POLICY)).toEqual({ go: true, probe: false });
    expect(recordSuccess(db, 'b')).toBe(false);
    expect(changes()).toBe(before);
    expect(db.prepare('SELECT COUNT(*) AS n FROM destinations').get()).toEqual({ n: 0 });
  });

  it('marks a destination down after downAfter transport failures in a row, and a success in between starts the count again', () => {
    expect(recordTransportFailure(db, 'b', 'ECONNREFUSED', POLICY)).toBe(false);
    expect(recordTransportFailure(db, 'b', 'ECONNREFUSED', POLICY)).toBe(false);
    expect(recordSuccess(db, 'b')).toBe(false); // it answered: the count starts again (a write, failures were counted)
    expect(destinationHealth(db, 'b')).toMatchObject({ state: 'up', consecutiveFailures: 0, lastError: null });
    expect(recordTransportFailure(db, 'b', 'ECONNREFUSED', POLICY)).toBe(false);
    expect(recordTransportFailure(db, 'b', 'ECONNREFUSED', POLICY)).toBe(false);
    expect(recordTransportFailure(db, 'b', 'ECONNREFUSED', POLICY)).toBe(true);
    expect(destinationHealth(db, 'b')).toMatchObject({ state: 'down', consecutiveFailures: 3, lastError: 'ECONNREFUSED' });
  });

  it('holds deliveries to a down destination until its probe time, lets one probe go then, and comes back up on its success', () => {
    const t0 = new Date('2026-11-22T10:00:00Z');
    for (let i = 0; i < 3; i++) recordTransportFailure(db, 'b', 'ETIMEDOUT', POLICY, t0);
    const held = mayAttempt(db, 'b', POLICY, new Date(t0.getTime() + 1000));
    expect(held).toEqual({ go: false, until: new Date(t0.getTime() + 60_000) });
    const probeTime = new Date(t0.getTime() + 61_000);
    expect(mayAttempt(db, 'b', POLICY, probeTime)).toEqual({ go: true, probe: true });
    // The next delivery at the same moment is not a second probe: the probe time moved on.
    expect(mayAttempt(db, 'b', POLICY, probeTime)).toEqual({ go: false, until: new Date(probeTime.getTime() + 60_000) });
    expect(recordSuccess(db, 'b')).toBe(true);
    expect(mayAttempt(db, 'b', POLICY)).toEqual({ go: true, probe: false });
  });
});
