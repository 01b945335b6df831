import type { EjournalConfig, EjournalOAuthConfig } from '../config/ejournal-config.ts';
import { DEFAULT_EJOURNAL_FIELDS, DEFAULT_EJOURNAL_RESPONSES, type EjournalFieldMap, type EjournalResponseRules } from '../config/ejournal-defaults.ts';
import type { Secret } from '../config/secret.ts';
import {
  checkUrl, createAgents, getPath, httpRequest, jsonBody, readTlsMaterial, safeText, setPath,
  HttpTransportError, type HttpAgents, type HttpAnswer, type TlsMaterial,
} from './http.ts';
import { OAuth2ClientCredentials, TokenError } from './oauth.ts';

/**
 * The eJournal client: one event, one JSON request over HTTPS with an OAuth2 bearer token. The contract is
 * assumed (protocols.md §5.3 A3; docs/ejournal-contract.md): endpoint, path, method, field names and the
 * meaning of each HTTP status are configuration, so the official contract can be plugged in without code.
 *
 * It never throws for what eJournal (or the network) does: every call ends in one of four outcomes, which the
 * delivery handler turns into the engine's typed outcomes.
 */
export interface EjournalEventMessage {
  readonly eventId: string;
  readonly rnu: string;
  readonly status: string;
  /** ISO-8601 UTC with milliseconds. */
  readonly occurredAt: string;
  readonly administration: string;
  readonly serviceCode: string;
  readonly documentRegNumber?: string | null;
  readonly description?: string | null;
  readonly channel?: string | null;
  readonly sequence?: number;
}

export type PushResult =
  | { readonly outcome: 'accepted'; readonly httpStatus: number; readonly remoteId?: string }
  /** eJournal already had it (by its idempotency key): as good as accepted. */
  | { readonly outcome: 'duplicate'; readonly httpStatus: number; readonly remoteId?: string }
  /** Refused; sending it again will not help. */
  | { readonly outcome: 'rejected'; readonly httpStatus: number; readonly code: 'GW_ERR_EJOURNAL_REJECTED'; readonly reason: string }
  /** Try again later. `transport`: counts against eJournal's health (it is down, overloaded or we cannot log in). */
  | {
    readonly outcome: 'transient'; readonly httpStatus?: number; readonly code: 'GW_ERR_EJOURNAL_UNAVAILABLE' | 'GW_ERR_EJOURNAL_AUTH';
    readonly reason: string; readonly transport: boolean;
  };

export interface EjournalClientOptions {
  /** Base URL; the events path is appended. */
  readonly url: string;
  /** May contain `{rnu}` (URL-encoded into the path). */
  readonly eventsPath?: string;
  readonly method?: 'POST' | 'PUT';
  readonly timeoutMs?: number;
  readonly allowInsecureHttp?: boolean;
  readonly tls?: TlsMaterial;
  readonly headers?: Readonly<Record<string, string>>;
  readonly idempotencyHeader?: string | null;
  readonly fields?: Partial<EjournalFieldMap>;
  readonly responses?: Partial<EjournalResponseRules>;
  /** Client credentials, or a token source shared with another client. */
  readonly oauth: {
    readonly tokenUrl: string; readonly clientId: string; readonly clientSecret: Secret | string; readonly scope?: string;
    readonly authStyle?: 'basic' | 'body'; readonly renewBeforeMs?: number; readonly defaultLifetimeMs?: number;
  } | OAuth2ClientCredentials;
  /** Keep-alive sockets per origin. */
  readonly maxSockets?: number;
  /** The batch form of the contract (several events per request), when eJournal offers one; absent: one event per request. */
  readonly batch?: EjournalBatchOptions;
}

/**
 * Several events in one request (docs/ejournal-contract.md §4.1): `POST {url}{path}` with `{ "<eventsField>": [event, ...] }`;
 * a 2xx answer carries `"<resultsField>": [{ "<statusField>": <HTTP status of that event>, "id", "error", "message" }, ...]`
 * in the same order, each classified like the answer to a single event. Any other answer applies to every event.
 */
export interface EjournalBatchOptions {
  readonly path: string;
  readonly maxEvents: number;
  readonly eventsField?: string;
  readonly resultsField?: string;
  readonly statusField?: string;
}

export interface EjournalClientStats {
  requests: number;
  unauthorized: number;
}

export class EjournalClient {
  readonly tokens: OAuth2ClientCredentials;
  readonly stats: EjournalClientStats = { requests: 0, unauthorized: 0 };
  readonly #agents: HttpAgents;
  readonly #base: URL;
  readonly #options: EjournalClientOptions;
  readonly #fields: EjournalFieldMap;
  readonly #rules: EjournalResponseRules;

  constructor(options: EjournalClientOptions) {
    this.#options = options;
    this.#base = checkUrl(options.url, options.allowInsecureHttp ?? false, 'eJournal URL');
    this.#fields = { ...DEFAULT_EJOURNAL_FIELDS, ...options.fields };
    this.#rules = { ...DEFAULT_EJOURNAL_RESPONSES, ...options.responses };
    this.#agents = createAgents(options.tls, options.maxSockets ?? 64);
    this.tokens = options.oauth instanceof OAuth2ClientCredentials
      ? options.oauth
      : new OAuth2ClientCredentials({
        ...options.oauth, agents: this.#agents, timeoutMs: options.timeoutMs, allowInsecureHttp: options.allowInsecureHttp,
      });
  }

  /** The JSON body for an event, as configured (exported for the contract documentation and tests). */
  body(event: EjournalEventMessage): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const f = this.#fields;
    const put = (path: string | null, value: unknown) => {
      if (path !== null && value !== undefined && value !== null) setPath(out, path, value);
    };
    put(f.eventId, event.eventId);
    put(f.rnu, event.rnu);
    put(f.status, event.status);
    put(f.occurredAt, event.occurredAt);
    put(f.administration, event.administration);
    put(f.serviceCode, event.serviceCode);
    put(f.documentRegNumber, event.documentRegNumber);
    put(f.description, event.description);
    put(f.channel, event.channel);
    put(f.sequence, event.sequence);
    return out;
  }

  /** Events per request: the batch size of the contract, or 1. */
  get maxEventsPerRequest(): number {
    return this.#options.batch ? Math.max(1, this.#options.batch.maxEvents) : 1;
  }

  async pushStatus(event: EjournalEventMessage): Promise<PushResult> {
    const o = this.#options;
    const path = (o.eventsPath ?? '/v1/events').replace('{rnu}', encodeURIComponent(event.rnu));
    const idempotencyHeader = o.idempotencyHeader === undefined ? 'Idempotency-Key' : o.idempotencyHeader;
    const answer = await this.#request(o.method ?? 'POST', path, this.body(event), idempotencyHeader ? { [idempotencyHeader]: event.eventId } : {});
    return 'outcome' in answer ? answer : this.#classify(answer);
  }

  /**
   * Sends events with the batch form of the contract (in requests of at most `batch.maxEvents`), or one request per
   * event, all at once, without it. The results are in the order of `events`. Never throws for what eJournal does.
   */
  async pushMany(events: readonly EjournalEventMessage[]): Promise<PushResult[]> {
    const batch = this.#options.batch;
    if (!batch || events.length === 1) return Promise.all(events.map((e) => this.pushStatus(e)));
    const chunks: EjournalEventMessage[][] = [];
    for (let i = 0; i < events.length; i += Math.max(1, batch.maxEvents)) chunks.push(events.slice(i, i + Math.max(1, batch.maxEvents)));
    return (await Promise.all(chunks.map((chunk) => this.#pushBatch(batch, chunk)))).flat();
  }

  async #pushBatch(batch: EjournalBatchOptions, events: readonly EjournalEventMessage[]): Promise<PushResult[]> {
    const body: Record<string, unknown> = {};
    setPath(body, batch.eventsField ?? 'events', events.map((e) => this.body(e)));
    const answer = await this.#request('POST', batch.path, body, {});
    if ('outcome' in answer) return events.map(() => answer);
    const results = this.#rules.accepted.includes(answer.status) ? getPath(jsonBody(answer), batch.resultsField ?? 'results') : undefined;
    if (!Array.isArray(results)) {
      const whole = this.#classify(answer);
      // A 2xx without per-event results says nothing about each event: try again (eJournal deduplicates).
      return events.map(() => (whole.outcome === 'accepted' || whole.outcome === 'duplicate'
        ? { outcome: 'transient', httpStatus: answer.status, code: 'GW_ERR_EJOURNAL_UNAVAILABLE', reason: `HTTP ${answer.status}: no per-event results in the batch answer`, transport: false }
        : whole));
    }
    return events.map((_, i) => {
      const item = results[i] as Record<string, unknown> | undefined;
      const status = Number(item ? getPath(item, batch.statusField ?? 'status') : NaN);
      if (!item || !Number.isInteger(status) || status < 100 || status > 599) {
        return { outcome: 'transient', httpStatus: answer.status, code: 'GW_ERR_EJOURNAL_UNAVAILABLE', reason: `batch answer: no result for event ${i}`, transport: false };
      }
      return this.#classify({ status, headers: {}, body: Buffer.from(JSON.stringify(item)) });
    });
  }

  /** One request with a bearer token; a 401 renews the token and repeats once. A failure before any answer is a PushResult. */
  async #request(method: string, path: string, json: unknown, extraHeaders: Record<string, string>): Promise<HttpAnswer | Extract<PushResult, { outcome: 'transient' }>> {
    const o = this.#options;
    const url = new URL(this.#base.pathname.replace(/\/$/, '') + path, this.#base);
    const body = Buffer.from(JSON.stringify(json), 'utf8');
    const headers: Record<string, string> = {
      ...o.headers, 'content-type': 'application/json; charset=utf-8', accept: 'application/json', ...extraHeaders,
    };

    // A 401 may mean the token expired early or was revoked: renew once and try again, never more.
    for (let round = 1; ; round++) {
      let token: string;
      try {
        token = await this.tokens.token();
      } catch (error) {
        return tokenFailure(error);
      }
      let answer: HttpAnswer;
      this.stats.requests++;
      try {
        answer = await httpRequest(url, {
          method, headers: { ...headers, authorization: `Bearer ${token}` }, body,
          timeoutMs: o.timeoutMs ?? 30_000, agents: this.#agents,
        });
      } catch (error) {
        const e = error as HttpTransportError;
        return { outcome: 'transient', code: 'GW_ERR_EJOURNAL_UNAVAILABLE', reason: `no answer from eJournal: ${e.code ?? 'error'}`, transport: true };
      }
      if (answer.status === 401) {
        this.stats.unauthorized++;
        this.tokens.invalidate(token);
        if (round === 1) continue;
        return { outcome: 'transient', httpStatus: 401, code: 'GW_ERR_EJOURNAL_AUTH', reason: 'HTTP 401 with a freshly issued token', transport: true };
      }
      return answer;
    }
  }

  close(): void {
    this.#agents.destroy();
  }

  #classify(answer: HttpAnswer): PushResult {
    const r = this.#rules;
    const status = answer.status;
    const body = jsonBody(answer);
    const remoteId = r.remoteIdField ? safeText(getPath(body, r.remoteIdField), 100) : undefined;
    const withId = remoteId !== undefined ? { remoteId } : {};
    if (r.accepted.includes(status)) {
      const dup = r.duplicateWhen && r.duplicateWhen.values.includes(String(getPath(body, r.duplicateWhen.field)));
      return { outcome: dup ? 'duplicate' : 'accepted', httpStatus: status, ...withId };
    }
    if (r.duplicate.includes(status)) return { outcome: 'duplicate', httpStatus: status, ...withId };
    const code = r.errorCodeField ? safeText(getPath(body, r.errorCodeField), 80) : undefined;
    const message = r.errorMessageField ? safeText(getPath(body, r.errorMessageField), 200) : undefined;
    const reason = [`HTTP ${status}`, code, message].filter(Boolean).join(': ');
    const kind = r.rejected.includes(status) ? 'rejected' : r.transient.includes(status) ? 'transient' : r.otherwise;
    if (kind === 'rejected') return { outcome: 'rejected', httpStatus: status, code: 'GW_ERR_EJOURNAL_REJECTED', reason };
    return { outcome: 'transient', httpStatus: status, code: 'GW_ERR_EJOURNAL_UNAVAILABLE', reason, transport: true };
  }
}

function tokenFailure(error: unknown): Extract<PushResult, { outcome: 'transient' }> {
  if (error instanceof TokenError) {
    return error.kind === 'transport'
      ? { outcome: 'transient', code: 'GW_ERR_EJOURNAL_UNAVAILABLE', reason: error.message, transport: true }
      : { outcome: 'transient', code: 'GW_ERR_EJOURNAL_AUTH', reason: error.message, transport: true };
  }
  return { outcome: 'transient', code: 'GW_ERR_EJOURNAL_AUTH', reason: 'token: unexpected error', transport: false };
}

export function oauthOptionsFromConfig(oauth: EjournalOAuthConfig) {
  return {
    tokenUrl: oauth.tokenUrl, clientId: oauth.clientId, clientSecret: oauth.clientSecret, scope: oauth.scope, authStyle: oauth.authStyle,
    renewBeforeMs: oauth.renewBeforeSeconds * 1000, defaultLifetimeMs: oauth.defaultLifetimeSeconds * 1000,
  };
}

/** The client for the configured contract (`ejournal.endpoint`, `ejournal.oauth`). */
export function ejournalClientFromConfig(config: EjournalConfig): EjournalClient {
  const e = config.endpoint;
  if (!e.url || !config.oauth) throw new TypeError('ejournal.endpoint.url and ejournal.oauth are required (completeEjournal checks this when enabled)');
  return new EjournalClient({
    url: e.url, eventsPath: e.eventsPath, method: e.method, timeoutMs: e.timeoutMs, allowInsecureHttp: e.allowInsecureHttp,
    tls: readTlsMaterial(e.tls), headers: e.headers, idempotencyHeader: e.idempotencyHeader, fields: e.fields, responses: e.responses,
    oauth: oauthOptionsFromConfig(config.oauth), ...(e.batch ? { batch: e.batch } : {}),
  });
}
