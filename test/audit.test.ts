import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Command, CommanderError } from 'commander';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DeliveryLog, GENESIS_HASH, queryDeliveryLog, toCsv, toJsonLines, verifyDeliveryLog,
  type DeliveryLogEntry, type LoggedEntry,
} from '../src/audit/index.ts';
import { registerAuditCommands } from '../src/cli/audit-commands.ts';
import { isGatewayError } from '../src/errors/index.ts';
import { signMessage } from '../src/seos/index.ts';
import { ContentStore, openGatewayStore } from '../src/store/content-store.ts';
import { openDatabase, type Db } from '../src/store/index.ts';
import { sampleRegistration } from './support/messages.ts';
import { makeTestIdentities, type TestIdentities } from './support/pki.ts';
import { requireTool, runTool } from './support/tools.ts';

const BETA = { guid: '{0b2e0000-0000-4000-8000-000000000002}', eik: '000000002', name: 'Община Бета' };
const GAMA = { guid: '{0c3d0000-0000-4000-8000-000000000003}', eik: '000000003', name: 'Община Гама' };

let dir: string;
let file: string;
let db: Db;
const open: Db[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-'));
  file = path.join(dir, 'gateway.db');
  db = openDatabase(file);
  open.push(db);
});
afterEach(() => {
  for (const d of open.splice(0)) if (d.open) d.close();
});

/** A clock that starts at `start` and moves one minute per reading. */
function steppingClock(start = '2024-05-06T07:00:00.000Z'): () => Date {
  let t = Date.parse(start);
  return () => {
    const now = new Date(t);
    t += 60_000;
    return now;
  };
}

function sentEntry(i: number, over: Partial<DeliveryLogEntry> = {}): DeliveryLogEntry {
  return {
    type: 'message-sent', direction: 'out', counterparty: BETA,
    messageGuid: `{00000000-0000-4000-8000-${String(i).padStart(12, '0')}}`,
    documentGuid: '{5d3c8b0e-2f4a-4c1e-9b7d-0123456789ab}', messageType: 'MSG_DocumentRegistrationRequest',
    status: 'DS_WAIT_REGISTRATION', actor: 'gateway', ...over,
  };
}

function fill(log: DeliveryLog, n: number): void {
  for (let i = 1; i <= n; i++) log.append(sentEntry(i));
}

/**
 * Tampering the way an intruder with the SQLite file would: a second connection to the same file drops the
 * append-only triggers and edits rows with plain SQL. (The triggers stay dropped in that file; each test has its own.)
 */
function tamper(sql: string, ...params: unknown[]): void {
  const raw = new Database(file);
  try {
    raw.exec('DROP TRIGGER IF EXISTS delivery_log_no_update; DROP TRIGGER IF EXISTS delivery_log_no_delete;');
    raw.prepare(sql).run(...params);
  } finally {
    raw.close();
  }
}

const row = (seq: number) => db.prepare('SELECT * FROM delivery_log WHERE seq = ?').get(seq) as { seq: number; at: string; entry_json: string; prev_hash: string; hash: string };
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

describe('DeliveryLog.append', () => {
  it('chains entries by sha256(prev_hash + "\\n" + canonical JSON with seq and at), from 64 zeros', () => {
    const log = new DeliveryLog(db, { clock: steppingClock() });
    const first = log.append({ type: 'message-sent', direction: 'out', counterparty: { name: 'Община Бета', guid: '{0B2E0000-0000-4000-8000-000000000002}', eik: '000000002' }, messageGuid: '{C0FFEE00-1234-4ABC-8DEF-00000000BEEF}', status: 'DS_WAIT_REGISTRATION' });
    const r1 = row(1);
    // The exact stored form: keys sorted at every level, no whitespace, GUIDs lowercase, seq and at inside.
    expect(r1.entry_json).toBe('{"at":"2024-05-06T07:00:00.000Z","counterparty":{"eik":"000000002","guid":"{0b2e0000-0000-4000-8000-000000000002}","name":"Община Бета"},"direction":"out","messageGuid":"{c0ffee00-1234-4abc-8def-00000000beef}","seq":1,"status":"DS_WAIT_REGISTRATION","type":"message-sent"}');
    expect(r1.prev_hash).toBe('0'.repeat(64));
    expect(GENESIS_HASH).toBe('0'.repeat(64));
    expect(r1.hash).toBe(sha256(`${'0'.repeat(64)}\n${r1.entry_json}`));
    expect(first).toEqual({ seq: 1, hash: r1.hash });
    const second = log.append({ type: 'attempt', outcome: 'delivered' });
    expect(row(2).prev_hash).toBe(first.hash);
    expect(second.hash).toBe(sha256(`${first.hash}\n${row(2).entry_json}`));
  });

  it('appends many entries, alone and inside callers\' transactions, on two connections, into one intact chain', () => {
    const log = new DeliveryLog(db);
    const other = openDatabase(file);
    open.push(other);
    const otherLog = new DeliveryLog(other);
    const business = (d: Db, key: string) => d.prepare('INSERT INTO registry_state (key, value) VALUES (?, ?)').run(key, 'x');
    for (let i = 1; i <= 150; i++) {
      const [d, l] = i % 3 === 0 ? [other, otherLog] : [db, log];
      if (i % 2 === 0) {
        d.transaction(() => {
          business(d, `k${i}`);
          l.append(sentEntry(i));
        }).immediate();
      } else {
        l.append(sentEntry(i));
      }
    }
    const seqs = (db.prepare('SELECT seq FROM delivery_log ORDER BY seq').all() as Array<{ seq: number }>).map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    const result = verifyDeliveryLog(db);
    expect(result).toMatchObject({ ok: true, entries: 150, head: { seq: 150, hash: row(150).hash } });
    expect(result.firstBroken).toBeUndefined();
  });

  it('inside a transaction that rolls back, leaves no entry (and no business change); the chain still verifies', () => {
    const log = new DeliveryLog(db);
    fill(log, 3);
    expect(() => db.transaction(() => {
      db.prepare('INSERT INTO registry_state (key, value) VALUES (?, ?)').run('lastChange', '2024-05-06');
      log.append(sentEntry(4));
      throw new Error('the business change failed after the entry was written');
    })()).toThrow(/business change failed/);
    expect(db.prepare('SELECT COUNT(*) AS n FROM delivery_log').get()).toEqual({ n: 3 });
    expect(db.prepare('SELECT COUNT(*) AS n FROM registry_state').get()).toEqual({ n: 0 });
    expect(log.append(sentEntry(5)).seq).toBe(4);
    expect(verifyDeliveryLog(db)).toMatchObject({ ok: true, entries: 4 });
  });

  it('refuses fields that were not reviewed for personal data and malformed values; cuts long text', () => {
    const log = new DeliveryLog(db);
    expect(() => log.append({ type: 'message-sent', egn: '8001010000' } as unknown as DeliveryLogEntry)).toThrow(/unknown delivery-log field "egn"/);
    expect(() => log.append({ type: 'webhook', counterparty: { name: 'x', person: 'Иван Петров' } } as unknown as DeliveryLogEntry)).toThrow(/unknown counterparty field/);
    expect(() => log.append({ type: '' })).toThrow(/needs a type/);
    expect(() => log.append({ type: 'message-sent', wireSha256: 'ABC' })).toThrow(/SHA-256/);
    expect(() => log.append({ type: 'message-sent', direction: 'sideways' as 'in' })).toThrow(/"in" or "out"/);
    expect(db.prepare('SELECT COUNT(*) AS n FROM delivery_log').get()).toEqual({ n: 0 });
    // Long text is cut, not refused: it must not fail the business transaction it belongs to.
    log.append({ type: 'attempt', detail: 'x'.repeat(600), counterparty: { name: 'Я'.repeat(300) } });
    const [entry] = queryDeliveryLog(db);
    expect(entry.detail).toBe(`${'x'.repeat(499)}…`);
    expect(entry.counterparty!.name).toHaveLength(200);
  });

  it('the triggers refuse UPDATE and DELETE through normal SQL', () => {
    fill(new DeliveryLog(db), 2);
    expect(() => db.prepare("UPDATE delivery_log SET entry_json = '{}' WHERE seq = 1").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM delivery_log WHERE seq = 2').run()).toThrow(/append-only/);
    expect(verifyDeliveryLog(db)).toMatchObject({ ok: true, entries: 2 });
  });
});

describe('verifyDeliveryLog', () => {
  beforeEach(() => fill(new DeliveryLog(db, { clock: steppingClock() }), 10));

  it('names the entry whose entry_json was changed', () => {
    tamper('UPDATE delivery_log SET entry_json = replace(entry_json, ?, ?) WHERE seq = 5', 'DS_WAIT_REGISTRATION', 'DS_REGISTERED');
    const result = verifyDeliveryLog(db);
    expect(result.ok).toBe(false);
    expect(result.firstBroken).toMatchObject({ seq: 5, code: 'GW_ERR_AUDIT_CHAIN_BROKEN' });
    expect(result.firstBroken!.reason).toMatch(/does not hash to its stored hash/);
    expect(result.entries).toBe(5);
  });

  it('names a deleted middle entry', () => {
    tamper('DELETE FROM delivery_log WHERE seq = 5');
    expect(verifyDeliveryLog(db).firstBroken).toMatchObject({ seq: 5, code: 'GW_ERR_AUDIT_CHAIN_BROKEN', reason: expect.stringMatching(/missing/) });
  });

  it('names the first of two entries whose hashes were swapped', () => {
    const [h3, h4] = [row(3).hash, row(4).hash];
    tamper('UPDATE delivery_log SET hash = ? WHERE seq = 3', h4);
    tamper('UPDATE delivery_log SET hash = ? WHERE seq = 4', h3);
    expect(verifyDeliveryLog(db).firstBroken).toMatchObject({ seq: 3, code: 'GW_ERR_AUDIT_CHAIN_BROKEN' });
  });

  it('names an entry moved to another place (two entries swapped)', () => {
    const [r6, r7] = [row(6), row(7)];
    tamper('DELETE FROM delivery_log WHERE seq IN (6, 7)');
    tamper('INSERT INTO delivery_log (seq, at, entry_json, prev_hash, hash) VALUES (6, ?, ?, ?, ?)', r7.at, r7.entry_json, r7.prev_hash, r7.hash);
    tamper('INSERT INTO delivery_log (seq, at, entry_json, prev_hash, hash) VALUES (7, ?, ?, ?, ?)', r6.at, r6.entry_json, r6.prev_hash, r6.hash);
    expect(verifyDeliveryLog(db).firstBroken).toMatchObject({ seq: 6, reason: expect.stringMatching(/prev_hash/) });
  });

  it('names the entry whose at column was changed (at is covered by the hash)', () => {
    tamper("UPDATE delivery_log SET at = '2024-01-01T00:00:00.000Z' WHERE seq = 8");
    expect(verifyDeliveryLog(db).firstBroken).toMatchObject({ seq: 8, reason: expect.stringMatching(/seq or at/) });
  });

  it('notices a deleted tail, and keeps noticing it after new entries are appended', () => {
    tamper('DELETE FROM delivery_log WHERE seq >= 9');
    expect(verifyDeliveryLog(db).firstBroken).toMatchObject({ seq: 9, reason: expect.stringMatching(/from №9 to №10 were deleted/) });
    new DeliveryLog(db).append(sentEntry(11));
    expect(verifyDeliveryLog(db).firstBroken).toMatchObject({ seq: 9, reason: expect.stringMatching(/missing/) });
  });

  it('with from, checks only from that entry on, joined to the stored hash before it', () => {
    tamper("UPDATE delivery_log SET entry_json = replace(entry_json, 'gateway', 'operator') WHERE seq = 3");
    expect(verifyDeliveryLog(db, { from: 6 })).toMatchObject({ ok: true, entries: 5, head: { seq: 10 } });
    expect(verifyDeliveryLog(db, { from: 2 }).firstBroken).toMatchObject({ seq: 3 });
  });

  it('a chain rewritten from an entry to the end verifies, but its head changes: the head must be kept elsewhere', () => {
    const head = verifyDeliveryLog(db).head!;
    const raw = new Database(file);
    raw.exec('DROP TRIGGER delivery_log_no_update');
    let prev = (raw.prepare('SELECT hash FROM delivery_log WHERE seq = 4').get() as { hash: string }).hash;
    for (let seq = 5; seq <= 10; seq++) {
      const r = raw.prepare('SELECT entry_json FROM delivery_log WHERE seq = ?').get(seq) as { entry_json: string };
      const json = seq === 5 ? r.entry_json.replace('DS_WAIT_REGISTRATION', 'DS_REJECTED') : r.entry_json;
      const hash = sha256(`${prev}\n${json}`);
      raw.prepare('UPDATE delivery_log SET entry_json = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(json, prev, hash, seq);
      prev = hash;
    }
    raw.close();
    const result = verifyDeliveryLog(db);
    expect(result.ok).toBe(true);
    expect(result.head!.seq).toBe(head.seq);
    expect(result.head!.hash).not.toBe(head.hash);
  });
});

describe('verifyDeliveryLog with the evidence archive', () => {
  let pki: TestIdentities;
  beforeAll(() => {
    pki = makeTestIdentities();
  });

  it('requires every archived file an entry names, and its exact bytes', () => {
    const archive = new ContentStore(path.join(dir, 'archive'));
    const log = new DeliveryLog(db);
    const a = archive.putBuffer(Buffer.from('<Message>one</Message>'));
    const b = archive.putBuffer(Buffer.from('<Message>reply</Message>'));
    log.append({ type: 'attempt', outcome: 'delivered', wireSha256: a.sha256, replySha256: b.sha256 });
    log.append({ type: 'attempt', outcome: 'delivered', wireSha256: a.sha256 }); // an empty reply: no file
    expect(verifyDeliveryLog(db, { archive })).toMatchObject({ ok: true, archiveChecked: 3 });
    // Without the archive the chain alone is checked.
    expect(verifyDeliveryLog(db)).toMatchObject({ ok: true, archiveChecked: 0 });

    const never = createHash('sha256').update('never archived').digest('hex');
    log.append({ type: 'attempt', outcome: 'delivered', wireSha256: never });
    expect(verifyDeliveryLog(db, { archive }).firstBroken).toMatchObject({ seq: 3, code: 'GW_ERR_AUDIT_ARCHIVE_MISSING', reason: expect.stringContaining(never) });

    fs.chmodSync(archive.path(b.sha256), 0o600);
    fs.writeFileSync(archive.path(b.sha256), '<Message>other reply</Message>');
    expect(verifyDeliveryLog(db, { archive }).firstBroken).toMatchObject({ seq: 1, code: 'GW_ERR_AUDIT_ARCHIVE_CORRUPT', reason: expect.stringContaining('replySha256') });
  });

  it('verifies again the signatures of archived SEOS messages, and reports one altered after signing or in place', () => {
    const archive = new ContentStore(path.join(dir, 'archive'));
    const log = new DeliveryLog(db);
    const sent = archive.putBuffer(signMessage(sampleRegistration(), pki.alfa));
    const reply = archive.putBuffer(signMessage(sampleRegistration({ about: 'Отговор' }), pki.beta));
    log.append({ type: 'message-sent', direction: 'out', counterparty: BETA, wireSha256: sent.sha256, replySha256: reply.sha256 });
    log.append({ type: 'message-received', direction: 'in', counterparty: GAMA, wireSha256: reply.sha256 });
    expect(verifyDeliveryLog(db, { archive, reverifySignatures: true })).toMatchObject({ ok: true, archiveChecked: 3, signaturesChecked: 3 });

    // Archived after being altered (so its file hashes fine): only the signature can tell.
    const altered = signMessage(sampleRegistration(), pki.alfa).toString('utf8').replace('Удостоверение за наследници', 'Удостоверение за раждане');
    const forged = archive.putBuffer(Buffer.from(altered, 'utf8'));
    log.append({ type: 'message-received', direction: 'in', counterparty: GAMA, wireSha256: forged.sha256 });
    const bad = verifyDeliveryLog(db, { archive, reverifySignatures: true });
    expect(bad.firstBroken).toMatchObject({ seq: 3, code: 'GW_ERR_SIG_DIGEST_MISMATCH' });
    expect(bad.firstBroken!.reasonBg).toContain('подписът на архивираното съобщение');
    expect(verifyDeliveryLog(db, { archive, reverifySignatures: false })).toMatchObject({ ok: true, signaturesChecked: 0 });

    // A signed file tampered in place: its bytes no longer match its name.
    const file = archive.path(sent.sha256);
    fs.chmodSync(file, 0o600);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('Молба', 'Жалба'));
    expect(verifyDeliveryLog(db, { archive, reverifySignatures: true }).firstBroken).toMatchObject({ seq: 1, code: 'GW_ERR_AUDIT_ARCHIVE_CORRUPT' });
  });
});

describe('verifyDeliveryLog with small archived content in the database', () => {
  it('checks rows like files: a signed message altered in content_blobs is reported, a missing row too', () => {
    const pki = makeTestIdentities();
    const archive = openGatewayStore(dir, 'archive', db);
    const log = new DeliveryLog(db);
    const sent = archive.putBuffer(signMessage(sampleRegistration(), pki.alfa));
    expect(fs.existsSync(archive.path(sent.sha256))).toBe(false); // a row, not a file
    log.append({ type: 'message-sent', direction: 'out', counterparty: BETA, wireSha256: sent.sha256 });
    expect(verifyDeliveryLog(db, { archive, reverifySignatures: true })).toMatchObject({ ok: true, archiveChecked: 1, signaturesChecked: 1 });

    const bytes = archive.read(sent.sha256).toString('utf8').replace('Молба', 'Жалба');
    db.prepare('UPDATE content_blobs SET bytes = ? WHERE sha256 = ?').run(Buffer.from(bytes, 'utf8'), sent.sha256);
    expect(verifyDeliveryLog(db, { archive, reverifySignatures: true }).firstBroken).toMatchObject({ seq: 1, code: 'GW_ERR_AUDIT_ARCHIVE_CORRUPT' });
    db.prepare('DELETE FROM content_blobs WHERE sha256 = ?').run(sent.sha256);
    expect(verifyDeliveryLog(db, { archive }).firstBroken).toMatchObject({ seq: 1, code: 'GW_ERR_AUDIT_ARCHIVE_MISSING' });
  });
});

describe('queryDeliveryLog and export', () => {
  beforeEach(() => {
    const log = new DeliveryLog(db, { clock: steppingClock('2024-05-05T20:58:00.000Z') });
    log.append(sentEntry(1));                                                        // 20:58Z = 23:58 in Sofia, 5 May
    log.append(sentEntry(2, { counterparty: GAMA, status: 'DS_REGISTERED' }));        // 20:59Z
    log.append({ type: 'status-change', counterparty: BETA, documentGuid: '{AAAAAAAA-0000-4000-8000-000000000001}', status: 'DS_REGISTERED' }); // 21:00Z = 00:00, 6 May
    log.append({ type: 'attempt', outcome: 'transport-failure', detail: 'ECONNRESET' }); // 21:01Z
  });
  const seqs = (entries: LoggedEntry[]) => entries.map((e) => e.seq);

  it('filters by Bulgarian day, time, counterparty (GUID in any form or ЕИК), GUID, status and type; pages by seq', () => {
    expect(seqs(queryDeliveryLog(db))).toEqual([1, 2, 3, 4]);
    expect(seqs(queryDeliveryLog(db, { from: '2024-05-06' }))).toEqual([3, 4]);
    expect(seqs(queryDeliveryLog(db, { to: '2024-05-05' }))).toEqual([1, 2]);
    expect(seqs(queryDeliveryLog(db, { from: '2024-05-05T20:59:00Z', to: '2024-05-06T00:01:00+03:00' }))).toEqual([2, 3]);
    expect(seqs(queryDeliveryLog(db, { counterparty: '000000003' }))).toEqual([2]);
    expect(seqs(queryDeliveryLog(db, { counterparty: '0B2E0000-0000-4000-8000-000000000002' }))).toEqual([1, 3]);
    expect(seqs(queryDeliveryLog(db, { guid: '{aaaaaaaa-0000-4000-8000-000000000001}' }))).toEqual([3]);
    expect(seqs(queryDeliveryLog(db, { guid: '{00000000-0000-4000-8000-000000000002}' }))).toEqual([2]);
    expect(seqs(queryDeliveryLog(db, { status: 'DS_REGISTERED' }))).toEqual([2, 3]);
    expect(seqs(queryDeliveryLog(db, { type: 'attempt' }))).toEqual([4]);
    expect(seqs(queryDeliveryLog(db, { limit: 2, afterSeq: 1 }))).toEqual([2, 3]);
    const [first] = queryDeliveryLog(db, { limit: 1 });
    expect(first).toMatchObject({ seq: 1, at: '2024-05-05T20:58:00.000Z', type: 'message-sent', counterparty: BETA, prevHash: GENESIS_HASH, hash: row(1).hash });
    for (const bad of [{ from: '2024-13-01' }, { to: 'yesterday' }, { from: '2024-05-06T10:00:00' }, { limit: 0 }]) {
      expect(() => queryDeliveryLog(db, bad)).toThrow(/GW_ERR_CLI_USAGE/);
    }
  });

  it('writes RFC 4180 CSV with a BOM: quotes, commas, line breaks and Cyrillic survive; formulas are defused', () => {
    const log = new DeliveryLog(db);
    log.append({ type: 'operator-action', actor: 'operator:it-1', counterparty: { name: 'Община "Бета", отдел\r\nАрхив' }, detail: 'resend, "forced"\nby request' });
    log.append({ type: 'webhook', counterparty: { name: '=HYPERLINK("http://evil")' }, detail: '-1' });
    const csv = toCsv(queryDeliveryLog(db, { afterSeq: 4 }));
    const bytes = Buffer.from(csv, 'utf8');
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const lines = csv.slice(1).split('\r\n');
    expect(lines[0]).toBe('seq,at,type,direction,counterparty_guid,counterparty_eik,counterparty_name,message_guid,document_guid,document_id,message_type,outcome,status,wire_sha256,reply_sha256,actor,detail,prev_hash,hash');
    const first = queryDeliveryLog(db, { afterSeq: 4, limit: 1 })[0];
    expect(csv).toContain(`5,${first.at},operator-action,,,,"Община ""Бета"", отдел\r\nАрхив",,,,,,,,,operator:it-1,"resend, ""forced""\nby request",${first.prevHash},${first.hash}\r\n`);
    expect(csv).toContain(`,"'=HYPERLINK(""http://evil"")",`);
    expect(csv).toContain(`,'-1,`);
    expect(csv.endsWith('\r\n')).toBe(true);
    expect(bytes.includes(Buffer.from('Архив', 'utf8'))).toBe(true);
    // A minimal RFC 4180 reader gets every field back.
    const records = parseCsv(csv.slice(1));
    expect(records).toHaveLength(3);
    expect(records[1][6]).toBe('Община "Бета", отдел\r\nАрхив');
    expect(records[1][16]).toBe('resend, "forced"\nby request');
  });

  it('writes JSON lines that parse back to the entries', () => {
    const entries = queryDeliveryLog(db);
    const lines = toJsonLines(entries).split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l))).toEqual(entries);
  });
});

/** RFC 4180 records (the test's own reader, independent of the writer). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '', record: string[] = [], i = 0, quoted = false;
  while (i < text.length) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (ch === '"') { quoted = false; i++; continue; }
      field += ch; i++; continue;
    }
    if (ch === '"') { quoted = true; i++; continue; }
    if (ch === ',') { record.push(field); field = ''; i++; continue; }
    if (ch === '\r' && text[i + 1] === '\n') { record.push(field); records.push(record); record = []; field = ''; i += 2; continue; }
    field += ch; i++;
  }
  return records;
}

describe('seos-gateway audit (CLI)', () => {
  /**
   * Runs the commands in-process the way main.ts does: resolved = exit 0; a GatewayError = exit 1 (2 for
   * GW_ERR_CLI_USAGE); a commander error = its exit code, 2 for usage. Output is captured through commander.
   */
  async function run(args: string[], handles: () => { db: Db; archive?: ContentStore }): Promise<{ code: number; out: string; err: string; error?: unknown }> {
    let out = '', err = '';
    const program = new Command('seos-gateway').exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
    registerAuditCommands(program, handles);
    try {
      await program.parseAsync(args, { from: 'user' });
      return { code: 0, out, err };
    } catch (error) {
      if (error instanceof CommanderError) return { code: error.exitCode === 0 ? 0 : 2, out, err, error };
      if (isGatewayError(error)) return { code: error.code === 'GW_ERR_CLI_USAGE' ? 2 : 1, out, err, error };
      throw error;
    }
  }

  it('verify: exit 0 on an intact log; exit 1 naming the first broken entry in Bulgarian', async () => {
    const archive = new ContentStore(path.join(dir, 'archive'));
    fill(new DeliveryLog(db), 20);
    const ok = await run(['audit', 'verify'], () => ({ db, archive }));
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('Дневникът на доставките е цял (intact): 20 записа проверени.');
    expect(ok.out).toContain(`Последен запис (head): №20, хеш ${row(20).hash}`);

    tamper("UPDATE delivery_log SET entry_json = replace(entry_json, 'out', 'in') WHERE seq = 17");
    const broken = await run(['audit', 'verify'], () => ({ db, archive }));
    expect(broken.code).toBe(1);
    expect(broken.err).toContain('Веригата е нарушена при запис №17: съдържанието на записа не съответства на хеша му');
    expect(isGatewayError(broken.error, 'GW_ERR_AUDIT_CHAIN_BROKEN')).toBe(true);
    expect(broken.out).not.toContain('цял');

    const json = await run(['audit', 'verify', '--json', '--no-signatures'], () => ({ db, archive }));
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({ ok: false, entries: 17, firstBroken: { seq: 17, code: 'GW_ERR_AUDIT_CHAIN_BROKEN' } });

    expect((await run(['audit', 'verify', '--from', '18'], () => ({ db, archive }))).code).toBe(0);
    expect((await run(['audit', 'verify', '--from', 'x'], () => ({ db, archive }))).code).toBe(2);
  });

  it('does not open the database for --help', async () => {
    let opened = false;
    const r = await run(['audit', 'verify', '--help'], () => {
      opened = true;
      return { db };
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain('--no-signatures');
    expect(opened).toBe(false);
  });

  it('export: CSV to a file, JSON lines to standard output, with filters', async () => {
    const log = new DeliveryLog(db);
    log.append(sentEntry(1));
    log.append(sentEntry(2, { counterparty: GAMA }));
    log.append(sentEntry(3));
    const out = path.join(dir, 'export.csv');
    const csv = await run(['audit', 'export', '--format', 'csv', '--counterparty', BETA.eik, '-o', out], () => ({ db }));
    expect(csv.code).toBe(0);
    expect(csv.err).toContain('Изнесени записи (exported): 2');
    const text = fs.readFileSync(out, 'utf8');
    expect(text.startsWith('\uFEFFseq,at,type,')).toBe(true);
    expect(text.split('\r\n').filter(Boolean).map((l) => l.split(',')[0])).toEqual(['\uFEFFseq', '1', '3']);

    const jsonl = await run(['audit', 'export', '--format', 'json', '--guid', '{00000000-0000-4000-8000-000000000002}'], () => ({ db }));
    expect(jsonl.code).toBe(0);
    expect(jsonl.out.trim().split('\n').map((l) => JSON.parse(l).seq)).toEqual([2]);

    expect((await run(['audit', 'export', '--format', 'xml'], () => ({ db }))).code).toBe(2);
    const badDate = await run(['audit', 'export', '--from', 'вчера', '-o', path.join(dir, 'never.csv')], () => ({ db }));
    expect(badDate.code).toBe(2);
    expect(fs.existsSync(path.join(dir, 'never.csv'))).toBe(false);
  });

  it('messages: writes the archived messages of matching entries as <sha256>.xml (rows and files alike), which xmlsec1 verifies', async () => {
    requireTool('xmlsec1');
    const pki = makeTestIdentities();
    const archive = openGatewayStore(dir, 'archive', db); // reads rows and files
    const asRow = archive.putBuffer(signMessage(sampleRegistration(), pki.alfa));
    const asFile = openGatewayStore(dir, 'archive', db, 0).putBuffer(signMessage(sampleRegistration({ about: 'Отговор' }), pki.beta));
    expect(fs.existsSync(archive.path(asRow.sha256))).toBe(false);
    expect(fs.existsSync(archive.path(asFile.sha256))).toBe(true);
    const log = new DeliveryLog(db);
    log.append({ type: 'message-sent', direction: 'out', counterparty: BETA, wireSha256: asRow.sha256, replySha256: asFile.sha256 });
    log.append({ type: 'status-change', counterparty: BETA, status: 'DS_REGISTERED' });

    const out = path.join(dir, 'for-the-auditor');
    const first = await run(['audit', 'messages', '-o', out], () => ({ db, archive }));
    expect(first.code).toBe(0);
    expect(first.err).toContain('2 записани (written), 0 вече налични (already there)');
    expect(fs.readdirSync(out).sort()).toEqual([`${asFile.sha256}.xml`, `${asRow.sha256}.xml`].sort());
    expect(fs.readFileSync(path.join(out, `${asRow.sha256}.xml`))).toEqual(archive.read(asRow.sha256));
    const verified = runTool('xmlsec1', ['--verify', '--enabled-reference-uris', 'empty', '--trusted-pem', pki.manifest.ca.certPath, path.join(out, `${asRow.sha256}.xml`)]);
    expect(verified.status, verified.stderr).toBe(0);
    // Again: nothing new to write.
    expect((await run(['audit', 'messages', '-o', out], () => ({ db, archive }))).err).toContain('0 записани (written), 2 вече налични (already there)');

    // A file in the way that holds other bytes is never overwritten.
    fs.writeFileSync(path.join(out, `${asRow.sha256}.xml`), 'друго');
    expect((await run(['audit', 'messages', '-o', out], () => ({ db, archive }))).code).toBe(2);
    expect(fs.readFileSync(path.join(out, `${asRow.sha256}.xml`), 'utf8')).toBe('друго');

    // An altered archived message stops the command with its code and leaves nothing under its name.
    db.prepare('UPDATE content_blobs SET bytes = ? WHERE sha256 = ?').run(Buffer.from('<Message>подменено</Message>'), asRow.sha256);
    const fresh = path.join(dir, 'fresh');
    const altered = await run(['audit', 'messages', '-o', fresh], () => ({ db, archive }));
    expect(altered.code).toBe(1);
    expect(isGatewayError(altered.error) && altered.error.code).toBe('GW_ERR_AUDIT_ARCHIVE_CORRUPT');
    expect(fs.readdirSync(fresh).filter((f) => f.startsWith(asRow.sha256))).toEqual([]);
  });
});
