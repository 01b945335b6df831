import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
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
 * `seos-gateway audit verify|export|messages`: the auditors' offline tools (X-Road's message-log verifier is the model).
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

  withFilterOptions(audit.command('export'))
    .description('export delivery-log entries as CSV (for Excel, UTF-8 with BOM) or JSON lines')
    .addOption(new Option('--format <format>', 'csv or json (JSON lines)').choices(['csv', 'json']).default('csv'))
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .option('-c, --config <file>', 'the gateway\'s JSON config file (default: $SEOS_GATEWAY_CONFIG)')
    .action(async function (this: Command, opts: ExportOptions & { config?: string }) {
      const filter = filterOf(opts);
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

  registerMessagesCommand(audit, open);
}

/**
 * `audit messages`: the archived signed messages (and the replies) of the entries a filter selects, written to a
 * folder as `<sha256>.xml`, so that an auditor can check them with xmlsec1 or any other XMLDSig verifier, whether
 * the gateway keeps them as files or as rows of its database. Each one is checked against its name while it is
 * copied; a missing or altered one stops the command with its code, and a file that already holds other bytes is
 * never overwritten.
 */
function registerMessagesCommand(audit: Command, open: (configFile?: string) => AuditHandles): void {
  withFilterOptions(audit.command('messages'))
    .description('write the archived signed messages of matching entries to a folder, one <sha256>.xml each, for xmlsec1 or another verifier')
    .requiredOption('-o, --output <dir>', 'the folder to write to (created when missing)')
    .option('-c, --config <file>', 'the gateway\'s JSON config file (default: $SEOS_GATEWAY_CONFIG)')
    .action(async function (this: Command, opts: FilterOptions & { output: string; config?: string }) {
      const filter = filterOf(opts);
      const { db, archive } = open(opts.config);
      if (!archive) throw new GatewayError('GW_ERR_CLI_USAGE', 'no evidence archive is configured for this gateway');
      const shas = new Set<string>();
      for (const entry of iterateDeliveryLog(db, filter)) {
        if (entry.wireSha256) shas.add(entry.wireSha256);
        if (entry.replySha256) shas.add(entry.replySha256);
      }
      try {
        fs.mkdirSync(opts.output, { recursive: true, mode: 0o750 });
      } catch (error) {
        throw new GatewayError('GW_ERR_CLI_USAGE', `cannot create the folder ${opts.output} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      let written = 0;
      let present = 0;
      for (const sha of shas) {
        if (await copyArchived(archive, sha, path.join(opts.output, `${sha}.xml`))) written++;
        else present++;
      }
      writeErr(this.configureOutput(), `Архивирани съобщения (archived messages): ${written} записани (written), ${present} вече налични (already there) → ${opts.output}\n`);
    });
}

/** Copies one archived message, checked against its name; false when the folder already holds exactly it. */
async function copyArchived(archive: ContentStore, sha256: string, file: string): Promise<boolean> {
  if (fs.existsSync(file)) {
    const there = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    if (there === sha256) return false;
    throw new GatewayError('GW_ERR_CLI_USAGE', `${file} exists and holds other bytes; choose an empty folder`);
  }
  const partial = `${file}.partial`;
  try {
    // The store's stream fails at its end when the bytes do not match the name: nothing is left under the name then.
    await pipeline(archive.createReadStream(sha256), fs.createWriteStream(partial, { flags: 'wx', mode: 0o640 }));
    fs.renameSync(partial, file);
    return true;
  } catch (error) {
    fs.rmSync(partial, { force: true });
    throw error;
  }
}

/** The delivery-log filter options `export` and `messages` share. */
function withFilterOptions(command: Command): Command {
  return command
    .option('--from <time>', 'from this date (YYYY-MM-DD, Bulgarian time) or date-time with a zone, inclusive')
    .option('--to <time>', 'to this date (the whole day included) or date-time (excluded)')
    .option('--counterparty <guid|eik>', 'only exchanges with this administration (GUID or ЕИК)')
    .option('--guid <guid>', 'only entries of this MessageGUID or DocumentGUID')
    .option('--status <status>', 'only entries with this status')
    .option('--type <type>', 'only entries of this type (message-sent, status-change, ...)')
    .option('--limit <n>', 'at most this many entries');
}

interface FilterOptions {
  from?: string; to?: string; counterparty?: string; guid?: string; status?: string; type?: string; limit?: string;
}

function filterOf(opts: FilterOptions): DeliveryLogFilter {
  return {
    from: opts.from, to: opts.to, counterparty: opts.counterparty, guid: opts.guid, status: opts.status, type: opts.type,
    limit: opts.limit === undefined ? undefined : positiveInteger(opts.limit, '--limit'),
  };
}

interface ExportOptions extends FilterOptions {
  format: 'csv' | 'json';
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
