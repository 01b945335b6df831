import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDocument } from '../src/store/documents.ts';
import { eventually, startTwoGateways, type TwoGateways } from './support/gateways.ts';

/** The IT staff's commands against running gateways' data: send, show, report, registry, audit — as real processes. */
const TSX = path.resolve('node_modules/.bin/tsx');
let net: TwoGateways;

function cli(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(TSX, ['src/cli/main.ts', ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  net = await startTwoGateways();
}, 60_000);

afterAll(async () => {
  await net?.stop();
});

describe('seos-gateway document | registry | audit', { timeout: 120_000 }, () => {
  it('sends a document, shows its journey, and reports it registered from the other side', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-doc-'));
    fs.writeFileSync(path.join(dir, 'писмо.txt'), 'Уважаеми колеги,');
    fs.writeFileSync(path.join(dir, 'send.json'), JSON.stringify({
      recipient: '000000002',
      document: { id: { number: { docNumber: 'ОА-77', docDate: '2026-11-22' } }, kind: 'Писмо', attachments: [{ fileName: 'писмо.txt', mimeType: 'text/plain', path: 'писмо.txt' }] },
      externalId: 'deloviodstvo-77',
    }));
    const sent = cli(['document', 'send', path.join(dir, 'send.json'), '--config', net.alfa.configPath]);
    expect(sent.status, sent.stderr).toBe(0);
    const id = /приет за изпращане \(accepted\): (\S+)/.exec(sent.stdout)![1];
    const guid = /DocumentGUID (\S+)/.exec(sent.stdout)![1];
    // The running gateway (its workers) delivers what the CLI committed and handed to Redis.
    await eventually(() => getDocument(net.alfa.gateway.db, id)?.status === 'DS_WAIT_REGISTRATION', 'delivered');
    // The same records-system id again: the first result, nothing new.
    const again = cli(['document', 'send', path.join(dir, 'send.json'), '--config', net.alfa.configPath]);
    expect(again.stdout).toContain(id);
    const inbound = net.beta.gateway.db.prepare("SELECT id FROM documents WHERE direction = 'in' AND document_guid = ?").get(guid) as { id: string };
    const report = cli(['document', 'report', inbound.id, 'registered', '--number', 'ОБ-12', '--date', '2026-11-22', '--config', net.beta.configPath]);
    expect(report.status, report.stderr).toBe(0);
    await eventually(() => getDocument(net.alfa.gateway.db, id)?.status === 'DS_REGISTERED', 'registered at Алфа');
    const shown = cli(['document', 'show', id, '--config', net.alfa.configPath]);
    expect(shown.status, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('DS_REGISTERED');
    expect(shown.stdout).toContain('ОБ-12');
    expect(shown.stdout).toMatch(/seos-document → \{0b2e0000-0000-4000-8000-000000000002\}: delivered/);
    const json = JSON.parse(cli(['document', 'show', id, '--json', '--config', net.alfa.configPath]).stdout);
    expect(json.history.map((h: { status: string }) => h.status)).toEqual(['PENDING', 'DS_WAIT_REGISTRATION', 'DS_REGISTERED']);
  }, 60_000);

  it('refuses bad reports and unknown documents with coded errors', () => {
    const wrong = cli(['document', 'report', 'no-such-id', 'registered', '--number', '1', '--date', '2026-11-22', '--config', net.beta.configPath]);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain('GW_ERR_SEOS_DOCUMENT_NOT_FOUND');
    const usage = cli(['document', 'report', 'x', 'registered', '--config', net.beta.configPath]);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--number');
  });

  it('finds participants by Cyrillic name, ЕИК and GUID', () => {
    const byName = cli(['registry', 'find', 'бета', '--config', net.alfa.configPath]);
    expect(byName.stdout).toContain('Община Бета');
    expect(cli(['registry', 'find', '000000002', '--json', '--config', net.alfa.configPath]).stdout).toContain('"eik": "000000002"');
    expect(cli(['registry', 'find', '{0B2E0000-0000-4000-8000-000000000002}', '--config', net.alfa.configPath]).stdout).toContain('Община Бета');
    expect(cli(['registry', 'find', 'Гама', '--config', net.alfa.configPath]).stdout).toContain('Няма намерени');
  });

  it('verifies both delivery logs with their archived signatures', () => {
    for (const m of [net.alfa, net.beta]) {
      const r = cli(['audit', 'verify', '--config', m.configPath]);
      expect(r.status, r.stderr + r.stdout).toBe(0);
    }
  });
});
