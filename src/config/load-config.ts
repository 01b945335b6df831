import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { isIP } from 'node:net';
import { fail, readBoolean, readHost, readLogLevel, readObject, readPath, readPort, readRedisUrl, readSecret, type FieldReaders, type Reader } from './readers.ts';
import { inspect } from 'node:util';
import { Secret } from './secret.ts';
import { EXCHANGE_READERS, completeExchange, type ExchangeConfig, type ExchangeInput } from './exchange-config.ts';
import { API_READERS, completeApi, type ApiInput, type ApiSection } from './api-config.ts';
import { EJOURNAL_READERS, completeEjournal, type EjournalInput, type EjournalSection } from './ejournal-config.ts';
import { SSEV_READERS, completeSsev, type SsevInput, type SsevSection } from './ssev-config.ts';
import { WEBHOOKS_READERS, completeWebhooks, type WebhooksInput, type WebhooksSection } from './webhooks-config.ts';

/*
 * One validated configuration, read once at boot: an optional JSON file, then environment overrides, then defaults.
 *
 * Everything is checked by hand here (no schema library): each field has a small reader that either returns the
 * typed value or throws GW_ERR_CONFIG_INVALID with "<json path>: <what is expected>". Error details never echo a
 * string value, because the value might be a password.
 *
 * The surface is deliberately small for now. Later issues add sections (store, queues, SEOS endpoint, SSEV,
 * eJournal, API keys, ...): add the field to GatewayConfig and ConfigInput, a reader to TOP_LEVEL_READERS, a
 * default in DEFAULTS, and, if operators need it, an environment variable in readEnvironment.
 */

// In their own module: readers.ts needs them, and importing them from here made an import cycle (readers ↔ load-config)
// that left a section's readers undefined when a section module was imported before this one.
import { LOG_LEVELS, type LogLevel } from './log-levels.ts';
export { LOG_LEVELS, type LogLevel };

/** Config files are small; anything bigger is a mistake or an attack, so it is refused before it is read. */
export const CONFIG_FILE_MAX_BYTES = 1024 * 1024;

export interface SigningConfig {
  /** PKCS#12 (.p12/.pfx) file with the gateway's signing key and certificate, relative to the working directory. */
  readonly pkcs12Path?: string;
  /** Or a PEM key and certificate. */
  readonly keyPath?: string;
  readonly certPath?: string;
  /** Its password, from the file or SIGNING_PASSWORD. A Secret: call `reveal()` only where the key is opened. */
  readonly password?: Secret;
}

export interface GatewayConfig extends ExchangeConfig, ApiSection, EjournalSection, SsevSection, WebhooksSection {
  /** Address the HTTP server binds to. Only loopback addresses unless `allowRemote` is true. */
  readonly host: string;
  /** TCP port; 0 asks the operating system for a free one (tests). */
  readonly port: number;
  /** Must be true to bind a non-loopback host: exposing the gateway is a deliberate decision. */
  readonly allowRemote: boolean;
  /** Where the gateway keeps its database, spool and archive; relative to the working directory. */
  readonly dataDir: string;
  /** Redis for the delivery queues. May hold a password: do not log it (the config's toJSON masks it). */
  readonly redisUrl: string;
  readonly logLevel: LogLevel;
  /**
   * Content (attachments, signed messages and replies) up to this size is kept in the database, larger content
   * in files under `spool/` and `archive/`; 0 keeps everything in files. See docs/durability.md.
   */
  readonly contentInDatabaseMaxBytes: number;
  /** Optional at this stage: the signing key is needed only once messages are sent. */
  readonly signing: SigningConfig;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  allowRemote: false,
  dataDir: './data',
  redisUrl: 'redis://127.0.0.1:6379',
  logLevel: 'info',
  contentInDatabaseMaxBytes: 256 * 1024,
} as const satisfies Omit<GatewayConfig, 'signing' | keyof ExchangeConfig | 'api' | 'ejournal' | 'ssev' | 'webhooks'>;

export interface LoadConfigOptions {
  /** JSON config file; when absent, SEOS_GATEWAY_CONFIG names it; when neither is set, only env and defaults apply. */
  file?: string;
  /** Environment to read overrides from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** What a config file (or the environment) may say: every field optional, already checked. */
interface ConfigInput extends ExchangeInput, ApiInput, EjournalInput, SsevInput, WebhooksInput {
  host?: string;
  port?: number;
  allowRemote?: boolean;
  dataDir?: string;
  redisUrl?: string;
  logLevel?: LogLevel;
  contentInDatabaseMaxBytes?: number;
  signing?: SigningInput;
}

interface SigningInput {
  pkcs12Path?: string;
  keyPath?: string;
  certPath?: string;
  password?: Secret;
}


export function loadConfig(options: LoadConfigOptions = {}): GatewayConfig {
  const env = options.env ?? process.env;
  const file = options.file ?? envValue(env, 'SEOS_GATEWAY_CONFIG');

  const fromFile: ConfigInput = file === undefined ? {} : readObject(readConfigFile(file), '$', TOP_LEVEL_READERS);
  const fromEnv = readEnvironment(env);
  const input: ConfigInput = { ...fromFile, ...fromEnv, signing: { ...fromFile.signing, ...fromEnv.signing } };

  const host = input.host ?? DEFAULTS.host;
  const allowRemote = input.allowRemote ?? DEFAULTS.allowRemote;
  if (!allowRemote && !isLoopbackHost(host)) {
    const path = fromEnv.host !== undefined ? envPath('host', 'HOST') : '$.host';
    fail(path, 'expected a loopback address (127.0.0.1, ::1 or localhost) unless $.allowRemote is true');
  }

  const signing: SigningConfig = Object.freeze({ ...input.signing });
  const config: GatewayConfig = {
    host,
    port: input.port ?? DEFAULTS.port,
    allowRemote,
    dataDir: input.dataDir ?? DEFAULTS.dataDir,
    redisUrl: input.redisUrl ?? DEFAULTS.redisUrl,
    logLevel: input.logLevel ?? DEFAULTS.logLevel,
    contentInDatabaseMaxBytes: input.contentInDatabaseMaxBytes ?? DEFAULTS.contentInDatabaseMaxBytes,
    signing,
    ...completeExchange(input),
    ...completeApi(input),
    ...completeEjournal(input),
    ...completeSsev(input),
    ...completeWebhooks(input),
  };
  // Whatever prints the config (a debug log, console.log, JSON.stringify) sees the safe view only.
  Object.defineProperties(config, {
    toJSON: { value: () => describeConfig(config) },
    [inspect.custom]: {
      value: (_depth: number, inspectOptions: object) => inspect(describeConfig(config), inspectOptions),
    },
  });
  return Object.freeze(config);
}

/** The config as it may be shown to an operator: no password, no credentials in the Redis URL. */
export function describeConfig(config: GatewayConfig): Record<string, unknown> {
  return {
    host: config.host,
    port: config.port,
    allowRemote: config.allowRemote,
    dataDir: config.dataDir,
    redisUrl: maskUrlCredentials(config.redisUrl),
    logLevel: config.logLevel,
    contentInDatabaseMaxBytes: config.contentInDatabaseMaxBytes,
    signing: {
      ...(config.signing.pkcs12Path !== undefined ? { pkcs12Path: config.signing.pkcs12Path } : {}),
      ...(config.signing.keyPath !== undefined ? { keyPath: config.signing.keyPath, certPath: config.signing.certPath } : {}),
      ...(config.signing.password !== undefined ? { password: '[redacted]' } : {}),
    },
    ...(config.self ? { self: config.self } : {}),
    // Secrets inside TLS sections are Secret objects, which print as [redacted].
    seos: config.seos,
    registry: { ...config.registry, participants: `${config.registry.participants.length} configured` },
    delivery: config.delivery,
    api: config.api,
    ejournal: config.ejournal,
    ssev: config.ssev,
    webhooks: config.webhooks.map((w) => ({ id: w.id, url: w.url, events: w.events, secret: '[redacted]' })),
  };
}

// ── the file ──

function readConfigFile(file: string): unknown {
  const bytes = readBounded(file);
  let text: string;
  try {
    // fatal: a config file in another encoding must fail loudly, not turn into replacement characters.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    fail(`config file ${file}`, 'expected UTF-8 text', error);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    // V8's message quotes the text around the error, which may be a password: report only where it is.
    const position = /position (\d+)/.exec(String((error as Error).message))?.[1];
    const where = position === undefined ? '' : ` (syntax error at ${lineAndColumn(text, Number(position))})`;
    fail('$', `expected valid JSON${where}`);
  }
}

/** Reads at most CONFIG_FILE_MAX_BYTES, refusing bigger files and anything that is not a regular file. */
function readBounded(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    fail(`config file ${file}`, `expected a readable file (${(error as NodeJS.ErrnoException).code ?? 'error'})`, error);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) fail(`config file ${file}`, 'expected a regular file');
    if (stat.size > CONFIG_FILE_MAX_BYTES) {
      fail(`config file ${file}`, `expected at most ${CONFIG_FILE_MAX_BYTES} bytes (1 MiB), the file has ${stat.size}`);
    }
    // The file may grow between fstat and read: read one byte past the limit to notice.
    const buffer = Buffer.alloc(CONFIG_FILE_MAX_BYTES + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > CONFIG_FILE_MAX_BYTES) fail(`config file ${file}`, 'expected at most 1 MiB');
    }
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

function lineAndColumn(text: string, position: number): string {
  const before = text.slice(0, position).split('\n');
  return `line ${before.length}, column ${before[before.length - 1].length + 1}`;
}

// ── the environment ──

function readEnvironment(env: NodeJS.ProcessEnv): ConfigInput {
  const out: ConfigInput = {};
  let value: string | undefined;

  if ((value = envValue(env, 'HOST')) !== undefined) out.host = readHost(value, envPath('host', 'HOST'));
  if ((value = envValue(env, 'PORT')) !== undefined) {
    const path = envPath('port', 'PORT');
    if (!/^\d{1,6}$/.test(value)) fail(path, 'expected an integer from 0 to 65535');
    out.port = readPort(Number(value), path);
  }
  if ((value = envValue(env, 'ALLOW_REMOTE')) !== undefined) {
    const path = envPath('allowRemote', 'ALLOW_REMOTE');
    if (!/^(true|false|1|0)$/i.test(value)) fail(path, 'expected true, false, 1 or 0');
    out.allowRemote = /^(true|1)$/i.test(value);
  }
  if ((value = envValue(env, 'DATA_DIR')) !== undefined) out.dataDir = readPath(value, envPath('dataDir', 'DATA_DIR'));
  if ((value = envValue(env, 'REDIS_URL')) !== undefined) {
    out.redisUrl = readRedisUrl(value, envPath('redisUrl', 'REDIS_URL'));
  }
  if ((value = envValue(env, 'LOG_LEVEL')) !== undefined) {
    out.logLevel = readLogLevel(value, envPath('logLevel', 'LOG_LEVEL'));
  }
  // Not checked for emptiness: an empty password is a legitimate (if poor) PKCS#12 password.
  if (env.SIGNING_PASSWORD !== undefined) {
    out.signing = { password: readSecret(env.SIGNING_PASSWORD, envPath('signing.password', 'SIGNING_PASSWORD')) };
  }
  return out;
}

/** An empty variable counts as unset, as container tools often pass `VAR=` for "not given". */
function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function envPath(field: string, variable: string): string {
  return `$.${field} (from environment ${variable})`;
}

// ── the top level ──

const readSigning: Reader<SigningInput> = (value, path) =>
  readObject<SigningInput>(value, path, { pkcs12Path: readPath, keyPath: readPath, certPath: readPath, password: readSecret });

/** Readers load content up to 4 MiB whole; beyond that, content must be a file they can stream. */
const MAX_CONTENT_IN_DATABASE = 4 * 1024 * 1024;

const TOP_LEVEL_READERS: FieldReaders<ConfigInput> = {
  host: readHost,
  port: readPort,
  allowRemote: readBoolean,
  dataDir: readPath,
  redisUrl: readRedisUrl,
  logLevel: readLogLevel,
  contentInDatabaseMaxBytes: (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_CONTENT_IN_DATABASE) {
      fail(path, `expected an integer from 0 (everything in files) to ${MAX_CONTENT_IN_DATABASE}`);
    }
    return value;
  },
  signing: readSigning,
  ...EXCHANGE_READERS,
  ...API_READERS,
  ...EJOURNAL_READERS,
  ...SSEV_READERS,
  ...WEBHOOKS_READERS,
};

export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  switch (isIP(host)) {
    case 4:
      return host.startsWith('127.');
    case 6: {
      // The URL parser gives IPv6 addresses one canonical spelling: [::1], and [::ffff:7f..] for mapped 127/8.
      const canonical = new URL(`http://[${host}]/`).hostname;
      return canonical === '[::1]' || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical);
    }
    default:
      return false;
  }
}

function maskUrlCredentials(value: string): string {
  try {
    const url = new URL(value);
    if (url.password === '') return value;
    url.password = '***';
    return url.toString();
  } catch {
    return '[unparseable URL]';
  }
}
