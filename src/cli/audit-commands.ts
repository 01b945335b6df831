import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Option, type Command } from 'commander';
import {
  csvHeader, csvLine, iterateDeliveryLog, jsonLine, verifyDeliveryLog,
  type DeliveryLogFilter, type DeliveryLogVerification,
} from '../audit/index.ts';
import { GatewayError } from '../errors/index.ts';
import type { ContentStore } from '../store/content-store.ts';
import type { Db } from '../store/database.ts';

/** What the audit commands work on. The caller opens them (from the configuration) and owns them. */
export interface AuditHandles {
  readonly db: Db;
  /** The evidence archive; without it only the chain is verified. */
  readonly archive?: ContentStore;
}

/**
 * `seos-gateway audit verify|export`: the auditors' offline tools (X-Road's message-log verifier is the model).
 * `verify` exits 0 when the delivery log and its evidence hold, and otherwise fails (exit 1, through main.ts's
 * error report) after naming the first broken entry in Bulgarian. `open` is called only when a command runs, so
 * `--help` touches no file.
 */
export function registerAuditCommands(program: Command, open: (configFile?: string) => AuditHandles): void {
  const audit = program.command('audit').description('verify and export the delivery log (дневник на доставките) and its evidence');

  audit.command('verify')
    .description('recompute the hash chain of the delivery log, check the archived messages and their signatures')
    .option('--no-signatures', 'do not verify the signatures of archived messages again (faster)')
    .option('--from <seq>', 'start at this entry number (joined to the stored hash of the one before)')
    .option('--json', 'print the result as JSON')
    .option('-c, --config <file>', 'the gateway\'s JSON config file (default: $SEOS_GATEWAY_CONFIG)')
    .action(function (this: Command, opts: { signatures: boolean; from?: string; json?: boolean; config?: string }) {
      const from = opts.from === undefined ? undefined : positiveInteger(opts.from, '--from');
      const { db, archive } = open(opts.config);
      const result = verifyDeliveryLog(db, { archive, reverifySignatures: opts.signatures, from });
      const output = this.configureOutput();
      if (opts.json) writeOut(output, `${JSON.stringify(result, null, 2)}\n`);
      else if (result.ok) writeOut(output, intactReport(result, Boolean(archive), opts.signatures));
      const broken = result.firstBroken;
      if (broken) {
        writeErr(output, `Веригата е нарушена при запис №${broken.seq}: ${broken.reasonBg}\n(chain broken at entry ${broken.seq}: ${broken.reason})\n`);
        throw new GatewayError(broken.code, `delivery log entry №${broken.seq}: ${broken.reason}`);
      }
    });

  audit.command('export')
    .description('export delivery-log entries as CSV (for Excel, UTF-8 with BOM) or JSON lines')
    .addOption(new Option('--format <format>', 'csv or json (JSON lines)').choices(['csv', 'json']).default('csv'))
    .option('--from <time>', 'from this date (YYYY-MM-DD, Bulgarian time) or date-time with a zone, inclusive')
    .option('--to <time>', 'to this date (the whole day included) or date-time (excluded)')
    .option('--counterparty <guid|eik>', 'only exchanges with this administration (GUID or ЕИК)')
    .option('--guid <guid>', 'only entries of this MessageGUID or DocumentGUID')
    .option('--status <status>', 'only entries with this status')
    .option('--type <type>', 'only entries of this type (message-sent, status-change, ...)')
    .option('--limit <n>', 'at most this many entries')
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .option('-c, --config <file>', 'the gateway\'s JSON config file (default: $SEOS_GATEWAY_CONFIG)')
    .action(async function (this: Command, opts: ExportOptions & { config?: string }) {
      const filter: DeliveryLogFilter = {
        from: opts.from, to: opts.to, counterparty: opts.counterparty, guid: opts.guid, status: opts.status, type: opts.type,
        limit: opts.limit === undefined ? undefined : positiveInteger(opts.limit, '--limit'),
      };
      const { db } = open(opts.config);
      const entries = iterateDeliveryLog(db, filter);
      // Pull the first entry now: a bad filter fails before anything (a file) is created.
      const first = entries.next();
      let count = 0;
      const format = opts.format === 'json' ? jsonLine : csvLine;
      function* lines(): Generator<string> {
        try {
          if (opts.format !== 'json') yield `\uFEFF${csvHeader()}`;
          for (let r = first; !r.done; r = entries.next()) {
            count++;
            yield format(r.value);
          }
        } finally {
          entries.return(undefined); // releases the statement if writing failed half-way
        }
      }
      const output = this.configureOutput();
      if (opts.output) {
        await pipeline(Readable.from(lines()), fs.createWriteStream(opts.output));
        writeErr(output, `Изнесени записи (exported): ${count} → ${opts.output}\n`);
      } else {
        for (const line of lines()) writeOut(output, line);
      }
    });
}

interface ExportOptions {
  format: 'csv' | 'json';
  from?: string; to?: string; counterparty?: string; guid?: string; status?: string; type?: string; limit?: string;
  output?: string;
}

function intactReport(result: DeliveryLogVerification, archive: boolean, signatures: boolean): string {
  const lines = [`Дневникът на доставките е цял (intact): ${result.entries} записа проверени.`];
  if (archive) {
    lines.push(`Архивирани съобщения (archived messages): ${result.archiveChecked} налични и непроменени.`);
    lines.push(signatures
      ? `Подписи (signatures): ${result.signaturesChecked} проверени отново и валидни.`
      : 'Подписите не са проверявани (--no-signatures).');
  } else {
    lines.push('Архивът не е проверяван (no archive configured).');
  }
  if (result.head) {
    lines.push(`Последен запис (head): №${result.head.seq}, хеш ${result.head.hash}`);
    lines.push('Запазете този хеш извън шлюза: по него ще се види, ако веригата бъде пренаписана.');
  }
  return `${lines.join('\n')}\n`;
}

function positiveInteger(value: string, option: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new GatewayError('GW_ERR_CLI_USAGE', `${option} must be a positive integer, got "${value.slice(0, 40)}"`);
  return n;
}

type Output = ReturnType<Command['configureOutput']>;

function writeOut(output: Output, text: string): void {
  if (output.writeOut) output.writeOut(text);
  else process.stdout.write(text);
}

function writeErr(output: Output, text: string): void {
  if (output.writeErr) output.writeErr(text);
  else process.stderr.write(text);
}
