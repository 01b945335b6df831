import { describe, expect, it } from 'vitest';
import { addOutboxEntry } from '../src/delivery/outbox.ts';
import { newGuid, isGuid } from '../src/seos/values.ts';
import { openDatabase } from '../src/store/database.ts';
import { newId } from '../src/store/documents.ts';
import { timeOrderedUuid } from '../src/time-ordered-uuid.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('time-ordered ids and GUIDs (UUID version 7)', () => {
  it('carry the time in milliseconds first, then version 7, the RFC variant and random bits', () => {
    const at = Date.UTC(2026, 10, 22, 18, 0, 0, 123);
    const id = timeOrderedUuid(at);
    expect(id).toMatch(UUID_V7);
    expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(at);
    // 74 random bits: a thousand made in the same millisecond are all different.
    expect(new Set(Array.from({ length: 1000 }, () => timeOrderedUuid(at))).size).toBe(1000);
  });

  it('sort as text in the order they were made, so index inserts land at the end', () => {
    const made = [0, 1, 2, 1_000, 86_400_000, 2 ** 40].map((dt) => timeOrderedUuid(1_700_000_000_000 + dt));
    expect([...made].sort()).toEqual(made);
  });

  it('are what the gateway uses for its document and outbox ids and for the SEOS GUIDs it makes, which stay valid GUIDs', () => {
    expect(newId()).toMatch(UUID_V7);
    const db = openDatabase(':memory:');
    expect(addOutboxEntry(db, { kind: 'seos-document', destination: newGuid() }).id).toMatch(UUID_V7);
    db.close();
    const guid = newGuid();
    expect(isGuid(guid)).toBe(true);
    expect(guid.slice(1, -1)).toMatch(UUID_V7);
  });
});
