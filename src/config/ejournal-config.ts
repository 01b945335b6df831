import { fail, readBoolean, readObject, readPath, readSecret, type FieldReaders, type Reader } from './readers.ts';
import type { Secret } from './secret.ts';
import {
  DEFAULT_EJOURNAL_CHANNELS, DEFAULT_EJOURNAL_FIELDS, DEFAULT_EJOURNAL_RESPONSES, DEFAULT_EJOURNAL_STATUSES, DEFAULT_LIFECYCLE_MAPPING,
  LIFECYCLE_EVENTS, type EjournalFieldMap, type EjournalResponseRules, type LifecycleEvent,
} from './ejournal-defaults.ts';

export {
  DEFAULT_EJOURNAL_CHANNELS, DEFAULT_EJOURNAL_FIELDS, DEFAULT_EJOURNAL_RESPONSES, DEFAULT_EJOURNAL_STATUSES, DEFAULT_LIFECYCLE_MAPPING,
  LIFECYCLE_EVENTS, type EjournalFieldMap, type EjournalResponseRules, type LifecycleEvent,
};

/**
 * The `ejournal` section: RNU handling, the status vocabulary and its mapping from the gateway's lifecycle, and the
 * eJournal contract (endpoint, paths, field names, response classification, OAuth2). The RNU standard and the
 * eJournal API are not public (docs/ejournal-contract.md), so everything that might differ in the official
 * specification is configuration here, with the assumptions of protocols.md §5.3 as defaults.
 *
 * The defaults that code outside configuration needs are in ejournal-defaults.ts (a leaf module).
 */

export interface EjournalTls {
  readonly caPath?: string;
  readonly certPath?: string;
  readonly keyPath?: string;
  readonly pkcs12Path?: string;
  readonly password?: Secret;
}

export interface EjournalOAuthConfig {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: Secret;
  readonly scope?: string;
  /** client_secret_basic (Authorization header) or client_secret_post (form fields). */
  readonly authStyle: 'basic' | 'body';
  /** Renew this long before expiry (at most half the token's lifetime). */
  readonly renewBeforeSeconds: number;
  /** Lifetime assumed when the token answer has no expires_in. */
  readonly defaultLifetimeSeconds: number;
}

export interface EjournalEndpointConfig {
  /** Base URL, e.g. https://ejournal.egov.bg/api; required when `enabled`. */
  readonly url?: string;
  readonly eventsPath: string;
  readonly method: 'POST' | 'PUT';
  readonly timeoutMs: number;
  /** Plain HTTP only for the simulator and tests. */
  readonly allowInsecureHttp: boolean;
  readonly tls?: EjournalTls;
  readonly headers: Readonly<Record<string, string>>;
  /** Header carrying the gateway's event id; null: none. */
  readonly idempotencyHeader: string | null;
  readonly fields: EjournalFieldMap;
  readonly responses: EjournalResponseRules;
  /** The batch form of the contract (docs/ejournal-contract.md §4.1); absent: one event per request. */
  readonly batch?: EjournalBatchConfig;
}

export interface EjournalBatchConfig {
  readonly path: string;
  /** Events per request, at most. */
  readonly maxEvents: number;
  readonly eventsField: string;
  readonly resultsField: string;
  readonly statusField: string;
}

/** How delivery jobs carry events (src/ejournal/handler.ts, carrier mode). */
export interface EjournalDeliveryConfig {
  /** Ready events one delivery job may carry (sent in one batch request, or in parallel requests); 1: a job per event. */
  readonly eventsPerJob: number;
  /** Follow-up jobs a finished job may start when more events are ready (how many carriers run at once, at most). */
  readonly followUpJobs: number;
}

export interface CentralRnuConfig {
  /** The ORN-style service, e.g. https://integr-test.egov.bg:5051/orn/connector/v1/WebServiceUniqueNumber */
  readonly url: string;
  /** Query parameters; `{applicant}` and `{serviceCode}` are replaced by the request's values. */
  readonly params: Readonly<Record<string, string>>;
  readonly numberField: string;
  readonly returnCodeField: string;
  readonly okReturnCodes: readonly string[];
  readonly timeoutMs: number;
  readonly allowInsecureHttp: boolean;
  readonly tls?: EjournalTls;
  /** Its own client credentials (scope `/orn*` in eForms); absent: those of eJournal. */
  readonly oauth?: EjournalOAuthConfig;
}

export interface EjournalOrderingConfig {
  /** Safety-net delay of an event parked behind an earlier one of the same RNU (it is woken when that one resolves). */
  readonly parkMs: number;
  /** First delay of an event that found its predecessor in flight; doubles on each further wait. */
  readonly shortDeferMs: number;
  /** A claim outlives the request timeout by this much before another worker may take the event over. */
  readonly claimMarginMs: number;
}

export interface EjournalConfig {
  readonly enabled: boolean;
  /** Demo mode: the gateway may invent RNUs (prefixed DEMO-). Never in production. */
  readonly demo: boolean;
  /** ЕИК or OID reported as the administration; defaults to self.eik where the gateway is wired. */
  readonly administration?: string;
  /** Service code for automatic events of an RNU whose code the gateway has not seen yet. */
  readonly defaultServiceCode?: string;
  readonly statuses: readonly string[];
  readonly lifecycle: Readonly<Record<LifecycleEvent, string | null>>;
  readonly channels: readonly string[];
  /** An event earlier than one already sent for its RNU: deliver it (flagged out of order) or refuse it. */
  readonly lateEvents: 'deliver' | 'reject';
  /** Events dated further in the future than this are refused (a wrong clock or a typo). */
  readonly maxFutureSkewMs: number;
  readonly ordering: EjournalOrderingConfig;
  readonly delivery: EjournalDeliveryConfig;
  /** Events in one POST /v1/services/events request, at most. */
  readonly maxEventsPerRequest: number;
  readonly endpoint: EjournalEndpointConfig;
  readonly oauth?: EjournalOAuthConfig;
  readonly rnu: { readonly provider: 'given' | 'central' | 'demo'; readonly central?: CentralRnuConfig };
}

export interface EjournalSection {
  readonly ejournal: EjournalConfig;
}

type EndpointInput = Partial<Omit<EjournalEndpointConfig, 'fields' | 'responses'>> & {
  fields?: Partial<EjournalFieldMap>;
  responses?: Partial<EjournalResponseRules>;
};

type EjournalSectionInput = Partial<Omit<EjournalConfig, 'lifecycle' | 'ordering' | 'delivery' | 'endpoint' | 'rnu'>> & {
  lifecycle?: Partial<Record<LifecycleEvent, string | null>>;
  ordering?: Partial<EjournalOrderingConfig>;
  delivery?: Partial<EjournalDeliveryConfig>;
  endpoint?: EndpointInput;
  rnu?: { provider?: 'given' | 'central' | 'demo'; central?: CentralRnuConfig };
};

export interface EjournalInput {
  ejournal?: EjournalSectionInput;
}

// ── readers ──

const CODE_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const FIELD_PATH_RE = /^[A-Za-z_$][\w$-]{0,63}(\.[A-Za-z_$][\w$-]{0,63}){0,5}$/;
const HEADER_RE = /^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/;

function readText(max: number): Reader<string> {
  return (value, path) => {
    if (typeof value !== 'string' || value.trim() === '' || value.length > max || /[\u0000-\u001f\u007f]/.test(value)) {
      fail(path, `expected a non-empty single-line string of at most ${max} characters`);
    }
    return value;
  };
}

function readInt(min: number, max: number): Reader<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) fail(path, `expected an integer from ${min} to ${max}`);
    return value;
  };
}

function readEnum<T extends string>(...values: T[]): Reader<T> {
  return (value, path) => {
    if (typeof value !== 'string' || !(values as string[]).includes(value)) fail(path, `expected one of ${values.join(', ')}`);
    return value as T;
  };
}

const readCode: Reader<string> = (value, path) => {
  if (typeof value !== 'string' || !CODE_RE.test(value)) fail(path, 'expected a code of 1 to 64 letters, digits or _ . : -');
  return value;
};

function readCodes(max: number): Reader<string[]> {
  return (value, path) => {
    if (!Array.isArray(value) || value.length === 0 || value.length > max) fail(path, `expected a non-empty array of at most ${max} codes`);
    const out = value.map((v, i) => readCode(v, `${path}[${i}]`));
    const dup = out.find((v, i) => out.indexOf(v) !== i);
    if (dup !== undefined) fail(path, `expected distinct codes (${dup} repeats)`);
    return out;
  };
}

const readHttpCodes: Reader<number[]> = (value, path) => {
  if (!Array.isArray(value) || value.length > 100) fail(path, 'expected an array of HTTP status codes');
  return value.map((v, i) => readInt(100, 599)(v, `${path}[${i}]`));
};

const readUrl: Reader<string> = (value, path) => {
  if (typeof value !== 'string') fail(path, 'expected an http:// or https:// URL');
  let url: URL;
  try { url = new URL(value); } catch { fail(path, 'expected an http:// or https:// URL'); }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(path, 'expected an http:// or https:// URL');
  if (url.username || url.password) fail(path, 'expected a URL without credentials (use the oauth section)');
  return value;
};

const readUrlPath: Reader<string> = (value, path) => {
  if (typeof value !== 'string' || !/^\/[A-Za-z0-9._~\-/{}]{0,200}$/.test(value)) fail(path, 'expected a URL path starting with /');
  return value;
};

const readFieldPath: Reader<string> = (value, path) => {
  if (typeof value !== 'string' || !FIELD_PATH_RE.test(value)) fail(path, 'expected a JSON field name, dotted for nesting (e.g. service.code)');
  return value;
};

const readOptionalFieldPath: Reader<string> = (value, path) => (value === null ? (null as unknown as string) : readFieldPath(value, path));

const readTls: Reader<EjournalTls> = (value, path) => readObject<EjournalTls>(value, path, {
  caPath: readPath, certPath: readPath, keyPath: readPath, pkcs12Path: readPath, password: readSecret,
});

const readOAuth: Reader<EjournalOAuthConfig> = (value, path) => {
  const o = readObject<EjournalOAuthConfig>(value, path, {
    tokenUrl: readUrl, clientId: readText(200), clientSecret: readSecret, scope: readText(500), authStyle: readEnum('basic', 'body'),
    renewBeforeSeconds: readInt(0, 24 * 3600), defaultLifetimeSeconds: readInt(1, 24 * 3600),
  });
  for (const key of ['tokenUrl', 'clientId', 'clientSecret'] as const) if (o[key] === undefined) fail(`${path}.${key}`, 'required');
  return { authStyle: 'basic', renewBeforeSeconds: 60, defaultLifetimeSeconds: 300, ...o } as EjournalOAuthConfig;
};

function readStringMap(keyRe: RegExp, valueMax: number, what: string): Reader<Record<string, string>> {
  return (value, path) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'expected an object');
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(value)) {
      if (!keyRe.test(k)) fail(path, `expected ${what} as keys`);
      out[k] = readText(valueMax)(v, `${path}.${k}`);
    }
    return out;
  };
}

const readLifecycle: Reader<Partial<Record<LifecycleEvent, string | null>>> = (value, path) => {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'expected an object keyed by lifecycle event');
  const out: Partial<Record<LifecycleEvent, string | null>> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!(LIFECYCLE_EVENTS as readonly string[]).includes(k)) fail(`${path}["${k.slice(0, 40)}"]`, `unknown lifecycle event (expected one of: ${LIFECYCLE_EVENTS.join(', ')})`);
    out[k as LifecycleEvent] = v === null ? null : readCode(v, `${path}["${k}"]`);
  }
  return out;
};

const readCentral: Reader<CentralRnuConfig> = (value, path) => {
  const c = readObject<CentralRnuConfig>(value, path, {
    url: readUrl, params: readStringMap(/^[A-Za-z_][\w-]{0,63}$/, 300, 'query parameter names'),
    numberField: readFieldPath, returnCodeField: readFieldPath, okReturnCodes: readCodes(20),
    timeoutMs: readInt(100, 600_000), allowInsecureHttp: readBoolean, tls: readTls, oauth: readOAuth,
  });
  if (c.url === undefined) fail(`${path}.url`, 'required');
  return {
    params: { bulstat: '{applicant}', type_service: '{serviceCode}', uri_service: 'e-service' },
    numberField: 'orn', returnCodeField: 'return_code', okReturnCodes: ['0'], timeoutMs: 10_000, allowInsecureHttp: false,
    ...c,
  } as CentralRnuConfig;
};

export const EJOURNAL_READERS: FieldReaders<EjournalInput> = {
  ejournal: (value, path) => readObject<EjournalSectionInput>(value, path, {
    enabled: readBoolean,
    demo: readBoolean,
    administration: (v, p) => {
      if (typeof v !== 'string' || !(/^\d{9}(\d{4})?$/.test(v) || /^[0-2](\.(0|[1-9]\d{0,8})){1,30}$/.test(v))) fail(p, 'expected an ЕИК (9 or 13 digits) or an OID (e.g. 2.16.100.1.1.1.1.13)');
      return v;
    },
    defaultServiceCode: readText(64),
    statuses: readCodes(200),
    lifecycle: readLifecycle,
    channels: readCodes(50),
    lateEvents: readEnum('deliver', 'reject'),
    maxFutureSkewMs: readInt(0, 24 * 3600_000),
    ordering: (v, p) => readObject<EjournalOrderingConfig>(v, p, {
      parkMs: readInt(100, 24 * 3600_000), shortDeferMs: readInt(1, 60_000), claimMarginMs: readInt(0, 3600_000),
    }),
    delivery: (v, p) => readObject<EjournalDeliveryConfig>(v, p, { eventsPerJob: readInt(1, 1000), followUpJobs: readInt(1, 64) }),
    maxEventsPerRequest: readInt(1, 10_000),
    endpoint: (v, p) => readObject<EndpointInput>(v, p, {
      url: readUrl, eventsPath: readUrlPath, method: readEnum('POST', 'PUT'), timeoutMs: readInt(100, 600_000),
      allowInsecureHttp: readBoolean, tls: readTls,
      batch: (x, at) => {
        const b = readObject<Partial<EjournalBatchConfig>>(x, at, {
          path: readUrlPath, maxEvents: readInt(1, 1000), eventsField: readFieldPath, resultsField: readFieldPath, statusField: readFieldPath,
        });
        if (b.path === undefined) fail(`${at}.path`, 'required');
        return { maxEvents: 100, eventsField: 'events', resultsField: 'results', statusField: 'status', ...b } as EjournalBatchConfig;
      },
      headers: readStringMap(HEADER_RE, 500, 'HTTP header names'),
      idempotencyHeader: (x, at) => {
        if (x === null) return null as unknown as string;
        if (typeof x !== 'string' || !HEADER_RE.test(x)) fail(at, 'expected an HTTP header name or null');
        return x;
      },
      fields: (x, at) => readObject<EjournalFieldMap>(x, at, {
        eventId: readOptionalFieldPath, rnu: readFieldPath, status: readFieldPath, occurredAt: readFieldPath,
        administration: readOptionalFieldPath, serviceCode: readOptionalFieldPath, documentRegNumber: readOptionalFieldPath,
        description: readOptionalFieldPath, channel: readOptionalFieldPath, sequence: readOptionalFieldPath,
      }),
      responses: (x, at) => readObject<EjournalResponseRules>(x, at, {
        accepted: readHttpCodes, duplicate: readHttpCodes, rejected: readHttpCodes, transient: readHttpCodes,
        otherwise: readEnum('transient', 'rejected'),
        duplicateWhen: (y, at2) => {
          const d = readObject<{ field: string; values: readonly string[] }>(y, at2, { field: readFieldPath, values: readCodes(20) });
          if (d.field === undefined || d.values === undefined) fail(at2, 'expected { field, values }');
          return d as { field: string; values: readonly string[] };
        },
        remoteIdField: readOptionalFieldPath, errorCodeField: readOptionalFieldPath, errorMessageField: readOptionalFieldPath,
      }),
    }),
    oauth: readOAuth,
    rnu: (v, p) => readObject<NonNullable<EjournalSectionInput['rnu']>>(v, p, {
      provider: readEnum('given', 'central', 'demo'), central: readCentral,
    }),
  }),
};

export const EJOURNAL_DEFAULTS: EjournalConfig = {
  enabled: false,
  demo: false,
  statuses: DEFAULT_EJOURNAL_STATUSES,
  lifecycle: DEFAULT_LIFECYCLE_MAPPING,
  channels: DEFAULT_EJOURNAL_CHANNELS,
  lateEvents: 'deliver',
  maxFutureSkewMs: 5 * 60_000,
  ordering: { parkMs: 5 * 60_000, shortDeferMs: 50, claimMarginMs: 30_000 },
  delivery: { eventsPerJob: 50, followUpJobs: 4 },
  maxEventsPerRequest: 1000,
  endpoint: {
    eventsPath: '/v1/events', method: 'POST', timeoutMs: 30_000, allowInsecureHttp: false, headers: {},
    idempotencyHeader: 'Idempotency-Key', fields: DEFAULT_EJOURNAL_FIELDS, responses: DEFAULT_EJOURNAL_RESPONSES,
  },
  rnu: { provider: 'given' },
};

/** Defaults filled in, then the section checked as a whole (the mapping names configured statuses, what `enabled` needs). */
export function completeEjournal(input: EjournalInput): EjournalSection {
  const i = input.ejournal ?? {};
  const d = EJOURNAL_DEFAULTS;
  const statuses = i.statuses ?? d.statuses;
  // A stage mapped explicitly must name a configured status; a stage left to its default is not reported when a
  // custom vocabulary lacks the default's status.
  const lifecycle = {} as Record<LifecycleEvent, string | null>;
  for (const key of LIFECYCLE_EVENTS) {
    if (i.lifecycle && Object.hasOwn(i.lifecycle, key)) {
      const status = i.lifecycle[key] ?? null;
      if (status !== null && !statuses.includes(status)) fail(`$.ejournal.lifecycle["${key}"]`, 'expected one of $.ejournal.statuses or null');
      lifecycle[key] = status;
    } else {
      const status = d.lifecycle[key];
      lifecycle[key] = status !== null && statuses.includes(status) ? status : null;
    }
  }
  const endpoint: EjournalEndpointConfig = {
    ...d.endpoint, ...i.endpoint,
    fields: { ...d.endpoint.fields, ...i.endpoint?.fields },
    responses: { ...d.endpoint.responses, ...i.endpoint?.responses },
  };
  const rnu = { provider: i.rnu?.provider ?? d.rnu.provider, ...(i.rnu?.central ? { central: i.rnu.central } : {}) };
  const config: EjournalConfig = {
    ...d, ...i, statuses, lifecycle, channels: i.channels ?? d.channels,
    ordering: { ...d.ordering, ...i.ordering }, delivery: { ...d.delivery, ...i.delivery }, endpoint, rnu,
  };
  if (config.enabled) {
    if (!config.endpoint.url) fail('$.ejournal.endpoint.url', 'required when $.ejournal.enabled is true');
    if (!config.oauth) fail('$.ejournal.oauth', 'required when $.ejournal.enabled is true (tokenUrl, clientId, clientSecret)');
  }
  if (rnu.provider === 'central' && !rnu.central) fail('$.ejournal.rnu.central', 'required when $.ejournal.rnu.provider is "central"');
  if (rnu.provider === 'central' && !rnu.central?.oauth && !config.oauth) fail('$.ejournal.rnu.central.oauth', 'required (or $.ejournal.oauth) for the central RNU service');
  if (rnu.provider === 'demo' && !config.demo) fail('$.ejournal.rnu.provider', 'the demo RNU provider needs $.ejournal.demo: true (never in production)');
  return { ejournal: config };
}
