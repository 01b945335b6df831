import { Option, type Command } from 'commander';
import { API_ROLES, createApiKey, isValidKeyName, listApiKeys, revokeApiKey, type ApiRole } from '../api/api-keys.ts';
import { DeliveryLog } from '../audit/index.ts';
import { GatewayError } from '../errors/index.ts';
import type { Db } from '../store/database.ts';

/** What the API key commands work on; the caller opens it from the configuration. */
export interface ApiKeyHandles {
  readonly db: Db;
  close?(): void;
}

/**
 * `seos-gateway apikey create|list|revoke`: keys of the records-system API, one or more per connector, each with
 * a role (connector, operator, auditor). A new key is printed once and only its hash is kept. Creating and
 * revoking a key is recorded in the delivery log (key id and role; the name may be a person's and stays out).
 */
export function registerApiKeyCommands(program: Command, open: (configFile?: string) => ApiKeyHandles): void {
  const apikey = program.command('apikey').description('API keys of the records-system REST API (API ключове)');

  apikey.command('create')
    .description('create a key; it is shown once, store it in the connector\'s configuration')
    .requiredOption('--name <connector>', 'the connector (records system) the key is for')
    .addOption(new Option('--role <role>', 'what the key may do').choices([...API_ROLES]).makeOptionMandatory())
    .option('--json', 'print JSON')
    .option('-c, --config <file>', 'the gateway\'s JSON config file (default: $SEOS_GATEWAY_CONFIG)')
    .action(function (this: Command, opts: { name: string; role: ApiRole; json?: boolean; config?: string }) {
      if (!isValidKeyName(opts.name)) throw new GatewayError('GW_ERR_CLI_USAGE', '--name: 1-100 letters, digits, spaces, dots, dashes or underscores');
      withHandles(open, opts.config, ({ db }) => {
        const created = db.transaction(() => {
          const made = createApiKey(db, { name: opts.name, role: opts.role });
          new DeliveryLog(db).append({ type: 'operator-action', outcome: 'apikey-created', actor: 'operator:cli', detail: `api key ${made.row.id}, role ${made.row.role}` });
          return made;
        }).immediate();
        if (opts.json) return out(this, `${JSON.stringify({ ...created.row, key: created.key }, null, 2)}\n`);
        out(this, `API ключът е създаден (API key created): ${created.row.id}, ${created.row.name}, роля ${created.row.role}\n`
          + `  ${created.key}\n`
          + 'Ключът се показва само сега; шлюзът пази само негов хеш (shown once; only its hash is kept).\n');
      });
    });

  apikey.command('list')
    .description('list the keys (never their secrets)')
    .option('--json', 'print JSON')
    .option('-c, --config <file>', 'the gateway\'s JSON config file (default: $SEOS_GATEWAY_CONFIG)')
    .action(function (this: Command, opts: { json?: boolean; config?: string }) {
      withHandles(open, opts.config, ({ db }) => {
        const keys = listApiKeys(db);
        if (opts.json) return out(this, `${JSON.stringify(keys, null, 2)}\n`);
        if (keys.length === 0) return out(this, 'Няма API ключове (no API keys)\n');
        for (const k of keys) {
          const state = k.revokedAt ? `отменен (revoked) ${k.revokedAt}` : 'активен (active)';
          out(this, `${k.id}  ${k.role.padEnd(9)}  ${k.name}  създаден ${k.createdAt}  ${state}  последно ползван ${k.lastUsedAt ?? '—'}\n`);
        }
      });
    });

  apikey.command('revoke')
    .description('revoke a key at once')
    .argument('<id>', 'the key id (as `apikey list` shows it)')
    .option('-c, --config <file>', 'the gateway\'s JSON config file (default: $SEOS_GATEWAY_CONFIG)')
    .action(function (this: Command, id: string, opts: { config?: string }) {
      if (!/^[0-9a-f]{16}$/.test(id)) throw new GatewayError('GW_ERR_CLI_USAGE', 'the key id is 16 hexadecimal characters');
      withHandles(open, opts.config, ({ db }) => {
        const revoked = db.transaction(() => {
          if (!revokeApiKey(db, id)) return false;
          new DeliveryLog(db).append({ type: 'operator-action', outcome: 'apikey-revoked', actor: 'operator:cli', detail: `api key ${id}` });
          return true;
        }).immediate();
        if (!revoked) throw new GatewayError('GW_ERR_NOT_FOUND', `API key ${id}`);
        out(this, `API ключът е отменен (API key revoked): ${id}\n`);
      });
    });
}

function withHandles(open: (configFile?: string) => ApiKeyHandles, configFile: string | undefined, run: (handles: ApiKeyHandles) => void): void {
  const handles = open(configFile);
  try {
    run(handles);
  } finally {
    handles.close?.();
  }
}

function out(command: Command, text: string): void {
  const output = command.configureOutput();
  if (output.writeOut) output.writeOut(text);
  else process.stdout.write(text);
}
