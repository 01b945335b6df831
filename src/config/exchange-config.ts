import { fail, readBoolean, readHost, readHttpUrl, readObject, readPath, readPort, readSecret, type FieldReaders, type Reader } from './readers.ts';
import type { Secret } from './secret.ts';

/**
 * The configuration sections of the SEOS exchange: who we are, our SEOS endpoint (what other administrations
 * call), the client that calls theirs, the registry, per-peer choices and the delivery engine. Every field has
 * a default except our identity, which `serve` requires before it will start the SEOS parts.
 */
export interface SelfConfig {
  /** ЕИК/БУЛСТАТ. */
  readonly eik: string;
  readonly name: string;
  /** Our GUID in the SEOS registry (braced). */
  readonly guid: string;
}

export interface TlsFiles {
  readonly keyPath?: string;
  readonly certPath?: string;
  readonly caPath?: string;
  readonly pkcs12Path?: string;
  readonly password?: Secret;
}

export interface SeosEndpointConfig {
  /** The SEOS endpoint listens apart from the records-system API: it faces other administrations. */
  readonly host: string;
  readonly port: number;
  readonly path: string;
  /** Largest accepted Submit request body. */
  readonly maxMessageBytes: number;
  /** Server TLS; with `requireClientCert`, mutual TLS as SEOS requires (else a TLS-terminating proxy does it). */
  readonly tls?: TlsFiles & { readonly requireClientCert?: boolean };
}

export interface SeosClientConfig {
  readonly allowInsecureHttp: boolean;
  readonly rejectUnauthorized: boolean;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  /** The client certificate for mutual TLS, separate from the signing key when configured so. */
  readonly tls?: TlsFiles;
}

export interface PeerConfig {
  readonly signatureProfile?: 'rsa-sha256' | 'rsa-sha1';
}

export interface StaticParticipantConfig {
  readonly guid: string;
  readonly eik: string;
  readonly name: string;
  readonly certificateSN?: string;
  readonly endpointUrl?: string;
  readonly status?: 'Active' | 'Inactive';
}

export interface RegistryConfig {
  /** The registry service; absent in closed setups that list participants here. */
  readonly url?: string;
  readonly allowInsecureHttp: boolean;
  readonly syncIntervalMinutes: number;
  readonly fullSyncHours: number;
  readonly tls?: TlsFiles;
  readonly participants: readonly StaticParticipantConfig[];
}

export interface DeliveryConfig {
  readonly retry: { readonly firstDelayMs: number; readonly factor: number; readonly maxAttempts: number; readonly jitter: number; readonly maxDelayMs: number };
  readonly concurrency: number;
  /**
   * Deliveries to one destination in flight at once (default 16). A delivery's round trip under load is 20-40 ms,
   * so this caps what one peer can be sent (Little's law): with the API flooded the pipeline benchmark delivered
   * 166-182 documents/s with 4, 155-215/s with 8 (six runs) and 213-246/s with 16 (three runs). `concurrency`
   * (default 32, the queued deliveries a worker runs at once) stays above it, so that one busy destination cannot
   * take every slot from the others.
   */
  readonly perDestinationConcurrency: number;
  /** Deliveries due now that a worker process holds in memory instead of queueing a job (0: always queue). */
  readonly directLimit: number;
  readonly downAfterFailures: number;
  readonly probeIntervalMs: number;
  readonly reconcileIntervalMs: number;
  readonly statusPollIntervalMs: number;
  /** False when deliveries run in separate `seos-gateway worker` processes. */
  readonly inProcessWorkers: boolean;
  /** serve's deliveries on a thread of their own (true), or on the event loop that answers the API. */
  readonly thread: boolean;
  /** A delivery held by a crashed process is taken up again after about this long. */
  readonly lockDurationMs: number;
}

export interface ExchangeConfig {
  readonly self?: SelfConfig;
  readonly seos: { readonly endpoint: SeosEndpointConfig; readonly client: SeosClientConfig; readonly peers: Readonly<Record<string, PeerConfig>> };
  readonly registry: RegistryConfig;
  readonly delivery: DeliveryConfig;
}

export const EXCHANGE_DEFAULTS: ExchangeConfig = {
  seos: {
    endpoint: { host: '127.0.0.1', port: 8443, path: '/seos', maxMessageBytes: 512 * 1024 * 1024 },
    client: { allowInsecureHttp: false, rejectUnauthorized: true, connectTimeoutMs: 10_000, responseTimeoutMs: 600_000 },
    peers: {},
  },
  registry: { allowInsecureHttp: false, syncIntervalMinutes: 10, fullSyncHours: 24, participants: [] },
  delivery: {
    retry: { firstDelayMs: 15 * 60_000, factor: 2, maxAttempts: 10, jitter: 0.1, maxDelayMs: 7 * 24 * 3600_000 },
    concurrency: 32, perDestinationConcurrency: 16, directLimit: 1000, downAfterFailures: 5, probeIntervalMs: 5 * 60_000,
    reconcileIntervalMs: 60_000, statusPollIntervalMs: 3600_000, inProcessWorkers: true, thread: true, lockDurationMs: 30_000,
  },
};

const GUID = /^\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}$/;

function readText(max = 500): Reader<string> {
  return (value, path) => {
    if (typeof value !== 'string' || value.trim() === '' || value.length > max) fail(path, `expected a non-empty string of at most ${max} characters`);
    return value;
  };
}

const readGuid: Reader<string> = (value, path) => {
  if (typeof value !== 'string' || !GUID.test(value)) fail(path, 'expected a braced GUID like {7060efa8-f1fa-4938-8b2b-12a78c86988f}');
  return value.toLowerCase();
};

const readEik: Reader<string> = (value, path) => {
  if (typeof value !== 'string' || !/^\d{9}(\d{4})?$/.test(value)) fail(path, 'expected an ЕИК/БУЛСТАТ of 9 or 13 digits');
  return value;
};

function readInt(min: number, max: number): Reader<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) fail(path, `expected an integer from ${min} to ${max}`);
    return value;
  };
}

function readNumber(min: number, max: number): Reader<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) fail(path, `expected a number from ${min} to ${max}`);
    return value;
  };
}

const readUrl: Reader<string> = readHttpUrl;

const readUrlPath: Reader<string> = (value, path) => {
  if (typeof value !== 'string' || !/^\/[A-Za-z0-9._~\-/]{0,200}$/.test(value)) fail(path, 'expected a URL path starting with /');
  return value;
};

const readTls: Reader<TlsFiles & { requireClientCert?: boolean }> = (value, path) =>
  readObject<TlsFiles & { requireClientCert?: boolean }>(value, path, {
    keyPath: readPath, certPath: readPath, caPath: readPath, pkcs12Path: readPath, password: readSecret, requireClientCert: readBoolean,
  });

function readArray<T>(item: Reader<T>, max: number): Reader<T[]> {
  return (value, path) => {
    if (!Array.isArray(value) || value.length > max) fail(path, `expected an array of at most ${max} items`);
    return value.map((v, i) => item(v, `${path}[${i}]`));
  };
}

const readStatic: Reader<StaticParticipantConfig> = (value, path) => {
  const p = readObject<StaticParticipantConfig>(value, path, {
    guid: readGuid, eik: readEik, name: readText(), certificateSN: readText(100), endpointUrl: readUrl,
    status: (v, at) => { if (v !== 'Active' && v !== 'Inactive') fail(at, 'expected Active or Inactive'); return v; },
  });
  for (const key of ['guid', 'eik', 'name'] as const) if (p[key] === undefined) fail(`${path}.${key}`, 'required');
  return p as StaticParticipantConfig;
};

export interface ExchangeInput {
  self?: SelfConfig;
  seos?: { endpoint?: Partial<SeosEndpointConfig>; client?: Partial<SeosClientConfig>; peers?: Record<string, PeerConfig> };
  registry?: Partial<RegistryConfig>;
  delivery?: Partial<Omit<DeliveryConfig, 'retry'>> & { retry?: Partial<DeliveryConfig['retry']> };
}

export const EXCHANGE_READERS: FieldReaders<ExchangeInput> = {
  self: (value, path) => {
    const s = readObject<SelfConfig>(value, path, { eik: readEik, name: readText(), guid: readGuid });
    for (const key of ['eik', 'name', 'guid'] as const) if (s[key] === undefined) fail(`${path}.${key}`, 'required');
    return s as SelfConfig;
  },
  seos: (value, path) => readObject<NonNullable<ExchangeInput['seos']>>(value, path, {
    endpoint: (v, p) => readObject<SeosEndpointConfig>(v, p, {
      host: readHost, port: readPort, path: readUrlPath, maxMessageBytes: readInt(1024, 2 * 1024 ** 3), tls: readTls,
    }),
    client: (v, p) => readObject<SeosClientConfig>(v, p, {
      allowInsecureHttp: readBoolean, rejectUnauthorized: readBoolean, connectTimeoutMs: readInt(100, 600_000),
      responseTimeoutMs: readInt(100, 3_600_000), tls: readTls,
    }),
    peers: (v, p) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(p, 'expected an object keyed by participant GUID');
      const out: Record<string, PeerConfig> = {};
      for (const [guid, peer] of Object.entries(v)) {
        const key = readGuid(guid, `${p} key`);
        out[key] = readObject<PeerConfig>(peer, `${p}["${key}"]`, {
          signatureProfile: (x, at) => { if (x !== 'rsa-sha256' && x !== 'rsa-sha1') fail(at, 'expected rsa-sha256 or rsa-sha1'); return x; },
        });
      }
      return out;
    },
  }),
  registry: (value, path) => readObject<RegistryConfig>(value, path, {
    url: readUrl, allowInsecureHttp: readBoolean, syncIntervalMinutes: readInt(1, 1440), fullSyncHours: readInt(1, 24 * 30),
    tls: readTls, participants: readArray(readStatic, 10_000),
  }),
  delivery: (value, path) => readObject<NonNullable<ExchangeInput['delivery']>>(value, path, {
    retry: (v, p) => readObject<DeliveryConfig['retry']>(v, p, {
      firstDelayMs: readInt(0, 30 * 24 * 3600_000), factor: readNumber(1, 10), maxAttempts: readInt(1, 1000),
      jitter: readNumber(0, 1), maxDelayMs: readInt(0, 90 * 24 * 3600_000),
    }),
    concurrency: readInt(1, 1000), perDestinationConcurrency: readInt(1, 1000), directLimit: readInt(0, 100_000), downAfterFailures: readInt(1, 1000),
    probeIntervalMs: readInt(100, 24 * 3600_000), reconcileIntervalMs: readInt(100, 3600_000),
    statusPollIntervalMs: readInt(1000, 30 * 24 * 3600_000), inProcessWorkers: readBoolean, thread: readBoolean, lockDurationMs: readInt(1000, 600_000),
  }),
};

/** Defaults filled in, section by section. */
export function completeExchange(input: ExchangeInput): ExchangeConfig {
  const d = EXCHANGE_DEFAULTS;
  return {
    ...(input.self ? { self: input.self } : {}),
    seos: {
      endpoint: { ...d.seos.endpoint, ...input.seos?.endpoint },
      client: { ...d.seos.client, ...input.seos?.client },
      peers: input.seos?.peers ?? {},
    },
    registry: { ...d.registry, ...input.registry, participants: input.registry?.participants ?? [] },
    delivery: { ...d.delivery, ...input.delivery, retry: { ...d.delivery.retry, ...input.delivery?.retry } },
  };
}
