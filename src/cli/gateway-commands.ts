import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Gateway } from '../app/gateway.ts';
import { loadConfig, type GatewayConfig } from '../config/index.ts';
import { listAttempts, entriesForDocument } from '../delivery/outbox.ts';
import { GatewayError } from '../errors/index.ts';
import { openGatewayStore } from '../store/content-store.ts';
import { openDatabase } from '../store/database.ts';
import { getDocument, listAttachments, statusHistory } from '../store/documents.ts';
import type { StatusReport } from '../seos/outbound.ts';
import { registerAuditCommands } from './audit-commands.ts';
import { registerApiKeyCommands } from './apikey-commands.ts';
import { messageFromJson } from './message-input.ts';
import { newGuid } from '../seos/values.ts';

/**
 * Commands that act on a configured gateway's data: `worker`, `registry ...`, `document ...`, `audit ...`.
 * They open the same SQLite file as the running gateway (WAL allows it) and hand new deliveries to Redis; the
 * running gateway's workers deliver them. Messages for IT staff are in Bulgarian with the English in brackets.
 */
interface ConfigOption { config?: string }

function configFrom(options: ConfigOption): GatewayConfig {
  return loadConfig({ file: options.config });
}

async function withGateway<T>(options: ConfigOption, run: (gateway: Gateway) => Promise<T> | T): Promise<T> {
  const { createGateway } = await import('../app/gateway.ts');
  const gateway = await createGateway(configFrom(options), { mode: 'cli', logStream: { write: () => true } as never });
  try {
    return await run(gateway);
  } finally {
    await gateway.stop();
  }
}

function print(text: string): void {
  process.stdout.write(`${text}\n`);
}

export function registerGatewayCommands(program: Command): void {
  program.command('worker')
    .description('run delivery workers only (scale-out); the API and the SEOS endpoint run in `serve`')
    .option('-c, --config <file>', 'JSON config file (default: $SEOS_GATEWAY_CONFIG)')
    .action(async (options: ConfigOption) => {
      const { createGateway } = await import('../app/gateway.ts');
      const gateway = await createGateway(configFrom(options), { mode: 'worker' });
      await gateway.start();
      await new Promise<void>((resolve) => {
        const stop = () => { process.off('SIGINT', stop).off('SIGTERM', stop); resolve(); };
        process.on('SIGINT', stop).on('SIGTERM', stop);
      });
      await gateway.stop();
    });

  const registry = program.command('registry').description('the local copy of the SEOS registry (регистър на участниците)');
  registry.command('sync')
    .description('refresh the local copy from the registry now')
    .option('-c, --config <file>', 'JSON config file')
    .option('--full', 'GetAllRecords instead of the changes since the last sync')
    .action((options: ConfigOption & { full?: boolean }) => withGateway(options, async (g) => {
      if (!g.registrySync) throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.registry.url: no registry is configured');
      const r = await g.registrySync.syncNow({ full: options.full });
      print(`Регистърът е обновен (registry synced): ${r.mode}, получени ${r.received}, нови ${r.inserted}, променени ${r.updated}, неактивни ${r.inactivated}`);
    }));
  registry.command('find')
    .description('search participants by name (Cyrillic, any case), ЕИК or GUID')
    .argument('<text>')
    .option('-c, --config <file>', 'JSON config file')
    .option('--json', 'print JSON')
    .action((text: string, options: ConfigOption & { json?: boolean }) => withGateway(options, (g) => {
      const byKey = /^\{?[0-9a-f-]{36}\}?$/i.test(text) ? [g.directory.byGuid(text.startsWith('{') ? text : `{${text}}`)].filter(Boolean)
        : /^\d{9,13}$/.test(text) ? g.directory.byEik(text) : g.directory.search(text);
      const found = byKey.filter((p): p is NonNullable<typeof p> => !!p);
      if (options.json) return print(JSON.stringify(found, null, 2));
      if (found.length === 0) return print('Няма намерени участници (no participants found)');
      for (const p of found) {
        print(`${p.name}\n  ЕИК ${p.eik}, GUID ${p.guid}, ${p.status}, сертификат ${p.certificateSN ?? '—'}\n  адрес (endpoint): ${p.endpointUrl ?? '—'} [${p.source}]`);
      }
    }));

  const document = program.command('document').description('documents exchanged over SEOS (документи)');
  document.command('send')
    .description('send a document from a JSON file: { "recipient": "<GUID or ЕИК>", "document": {...}, "comment"?, "externalId"? }')
    .argument('<input.json>')
    .option('-c, --config <file>', 'JSON config file')
    .action((input: string, options: ConfigOption) => withGateway(options, async (g) => {
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(fs.readFileSync(input, 'utf8'));
      } catch (error) {
        throw new GatewayError('GW_ERR_CLI_INPUT', `${input}: ${(error as Error).message.slice(0, 120)}`);
      }
      if (typeof json.recipient !== 'string') throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', '$.recipient: a participant GUID or ЕИК is required');
      // Reuse the message JSON reader for the document part; the parties come from the configuration, and a
      // document without its own DocumentGUID gets a new one.
      const doc = json.document as { id?: { documentGuid?: string } } | undefined;
      if (doc && typeof doc === 'object') doc.id = { ...doc.id, documentGuid: doc.id?.documentGuid ?? newGuid() };
      const probe = messageFromJson({
        type: 'MSG_DocumentRegistrationRequest',
        sender: { identifier: '000000000', administrativeBodyName: '-', guid: '{00000000-0000-0000-0000-000000000000}' },
        recipient: { identifier: '000000000', administrativeBodyName: '-', guid: '{00000000-0000-0000-0000-000000000000}' },
        document: json.document,
      }, path.dirname(path.resolve(input)));
      if (probe.body.type !== 'MSG_DocumentRegistrationRequest') throw new Error('unreachable');
      const sent = await g.outbound.sendDocument({
        recipient: json.recipient,
        document: probe.body.document,
        ...(typeof json.comment === 'string' ? { comment: json.comment } : {}),
        ...(typeof json.externalId === 'string' ? { externalId: json.externalId } : {}),
      });
      await g.engine.flush();
      print(`Документът е приет за изпращане (accepted): ${sent.documentId}\n  DocumentGUID ${sent.documentGuid}\n  MessageGUID ${sent.messageGuid}`);
    }));
  document.command('show')
    .description('a document with its status history and delivery attempts')
    .argument('<id>')
    .option('-c, --config <file>', 'JSON config file')
    .option('--json', 'print JSON')
    .action((id: string, options: ConfigOption & { json?: boolean }) => withGateway(options, (g) => {
      const doc = getDocument(g.db, id);
      if (!doc) throw new GatewayError('GW_ERR_SEOS_DOCUMENT_NOT_FOUND', id);
      const history = statusHistory(g.db, id);
      const deliveries = entriesForDocument(g.db, id).map((e) => ({ ...e, attempts: listAttempts(g.db, e.id) }));
      if (options.json) return print(JSON.stringify({ document: doc, attachments: listAttachments(g.db, id), history, deliveries }, null, 2));
      print(`${doc.direction === 'out' ? 'Изпратен' : 'Получен'} документ ${doc.id} (${doc.direction === 'out' ? 'to' : 'from'} ${doc.counterpartyName}, ЕИК ${doc.counterpartyEik})`);
      print(`  статус (status): ${doc.status}; номер при получателя: ${doc.theirNumber ?? '—'} / ${doc.theirDate ?? '—'}; наш номер: ${doc.ourNumber ?? '—'}`);
      if (doc.rejectionReason) print(`  причина за отказ (rejection reason): ${doc.rejectionReason}`);
      for (const h of history) print(`  ${h.at}  ${h.status}  [${h.source}${h.detail ? `: ${h.detail}` : ''}]`);
      for (const d of deliveries) {
        print(`  доставка ${d.kind} → ${d.destination}: ${d.state}, опити ${d.attempts.length}`);
        for (const a of d.attempts) print(`    ${a.at}  ${a.outcome}${a.detail ? ` (${a.detail})` : ''}`);
      }
    }));
  document.command('report')
    .description('report what happened to a received document: registered, rejected, stopped or closed (pushed to the sender)')
    .argument('<id>')
    .argument('<status>', 'registered | rejected | stopped | closed')
    .option('-c, --config <file>', 'JSON config file')
    .option('--number <number>', 'our registration number (registered)')
    .option('--date <date>', 'registration date YYYY-MM-DD (registered)')
    .option('--reason <text>', 'rejection reason (rejected)')
    .option('--expected-close <date>', 'expected close date YYYY-MM-DD')
    .action((id: string, status: string, options: ConfigOption & { number?: string; date?: string; reason?: string; expectedClose?: string }) => withGateway(options, async (g) => {
      const report = statusReport(status, options);
      const { messageGuid } = g.outbound.reportStatus(id, report, 'operator:cli');
      await g.engine.flush();
      print(`Статусът е записан и ще бъде изпратен на подателя (queued for the sender): ${report.status}, MessageGUID ${messageGuid}`);
    }));
  document.command('request-status')
    .description('ask the recipient for the current status of a document we sent')
    .argument('<id>')
    .option('-c, --config <file>', 'JSON config file')
    .action((id: string, options: ConfigOption) => withGateway(options, async (g) => {
      g.outbound.requestStatus(id);
      await g.engine.flush();
      print('Заявката за статус е изпратена за доставка (status request queued)');
    }));

  registerApiKeyCommands(program, (configFile) => {
    const db = openDatabase(path.join(loadConfig({ file: configFile }).dataDir, 'gateway.db'));
    return { db, close: () => db.close() };
  });

  registerAuditCommands(program, (configFile) => {
    const config = loadConfig({ file: configFile });
    const db = openDatabase(path.join(config.dataDir, 'gateway.db'));
    return { db, archive: openGatewayStore(config.dataDir, 'archive', db, config.contentInDatabaseMaxBytes) };
  });
}

function statusReport(status: string, o: { number?: string; date?: string; reason?: string; expectedClose?: string }): StatusReport {
  const close = o.expectedClose ? { expectedCloseDate: o.expectedClose } : {};
  switch (status) {
    case 'registered':
      if (!o.number || !o.date) throw new GatewayError('GW_ERR_CLI_USAGE', 'registered needs --number and --date');
      return { status: 'DS_REGISTERED', number: o.number, date: o.date, ...close };
    case 'rejected':
      if (!o.reason) throw new GatewayError('GW_ERR_CLI_USAGE', 'rejected needs --reason');
      return { status: 'DS_REJECTED', reason: o.reason };
    case 'stopped':
      return { status: 'DS_STOPPED', ...close };
    case 'closed':
      return { status: 'DS_CLOSED', ...close };
    default:
      throw new GatewayError('GW_ERR_CLI_USAGE', 'status must be registered, rejected, stopped or closed');
  }
}
