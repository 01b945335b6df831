import { Secret } from '../config/secret.ts';
import { checkUrl, httpRequest, jsonBody, safeText, HttpTransportError, type HttpAgents } from './http.ts';

/**
 * OAuth2 client credentials (RFC 6749 §4.4) with a cached token: one token request at a time however many
 * deliveries ask, renewed before it expires (renewBefore, at most half its lifetime, so 1-second test tokens
 * work too), and dropped on a 401 so the next caller fetches a fresh one. A renewal that fails while the old
 * token is still valid keeps using the old one.
 *
 * The secret is a Secret: revealed only into the request, never into an error or a log.
 */
export interface OAuth2Options {
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: Secret | string;
  readonly scope?: string;
  readonly authStyle?: 'basic' | 'body';
  readonly renewBeforeMs?: number;
  readonly defaultLifetimeMs?: number;
  readonly timeoutMs?: number;
  readonly allowInsecureHttp?: boolean;
  readonly agents: HttpAgents;
  readonly now?: () => number;
}

/** Why no token: `transport` (the token endpoint did not answer), `refused` (it said no: credentials), `invalid` (an answer we cannot use). */
export class TokenError extends Error {
  readonly kind: 'transport' | 'refused' | 'invalid';
  constructor(kind: 'transport' | 'refused' | 'invalid', message: string) {
    super(message);
    this.name = 'TokenError';
    this.kind = kind;
  }
}

interface CachedToken {
  readonly value: string;
  readonly expiresAt: number;
  readonly renewAt: number;
}

export class OAuth2ClientCredentials {
  readonly #options: OAuth2Options;
  readonly #url: URL;
  readonly #secret: Secret;
  #current: CachedToken | undefined;
  #pending: Promise<CachedToken> | undefined;
  #requested = 0;

  constructor(options: OAuth2Options) {
    this.#options = options;
    this.#url = checkUrl(options.tokenUrl, options.allowInsecureHttp ?? false, 'OAuth2 token URL');
    this.#secret = typeof options.clientSecret === 'string' ? new Secret(options.clientSecret) : options.clientSecret;
  }

  /** Token requests made so far (for tests and metrics). */
  get requested(): number {
    return this.#requested;
  }

  async token(): Promise<string> {
    const now = this.#now();
    const current = this.#current;
    if (current && now < current.renewAt) return current.value;
    try {
      return (await this.#fetchOnce()).value;
    } catch (error) {
      if (current && now < current.expiresAt) return current.value; // renewal failed, the old one still works
      throw error;
    }
  }

  /** The server refused this token (401): forget it, unless a newer one has replaced it already. */
  invalidate(token: string): void {
    if (this.#current?.value === token) this.#current = undefined;
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }

  #fetchOnce(): Promise<CachedToken> {
    this.#pending ??= this.#fetch().finally(() => { this.#pending = undefined; });
    return this.#pending;
  }

  async #fetch(): Promise<CachedToken> {
    const o = this.#options;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (o.scope) form.set('scope', o.scope);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if ((o.authStyle ?? 'basic') === 'basic') {
      // RFC 6749 §2.3.1: both parts form-encoded before base64.
      const user = encodeURIComponent(o.clientId);
      const pass = encodeURIComponent(this.#secret.reveal());
      headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    } else {
      form.set('client_id', o.clientId);
      form.set('client_secret', this.#secret.reveal());
    }
    this.#requested++;
    const started = this.#now();
    let answer;
    try {
      answer = await httpRequest(this.#url, { method: 'POST', headers, body: form.toString(), timeoutMs: o.timeoutMs ?? 10_000, agents: o.agents });
    } catch (error) {
      const e = error as HttpTransportError;
      throw new TokenError('transport', `token endpoint: ${e.code ?? 'error'}`);
    }
    const body = jsonBody(answer);
    if (answer.status >= 400 && answer.status < 500) {
      throw new TokenError('refused', `token endpoint answered HTTP ${answer.status}${body?.error ? ` (${safeText(body.error, 60)})` : ''}`);
    }
    if (answer.status !== 200 || !body) throw new TokenError('invalid', `token endpoint answered HTTP ${answer.status}`);
    const value = body.access_token;
    if (typeof value !== 'string' || value === '' || value.length > 8192 || /[\s\u0000-\u001f]/.test(value)) {
      throw new TokenError('invalid', 'token endpoint answer has no usable access_token');
    }
    const type = body.token_type;
    if (type !== undefined && (typeof type !== 'string' || type.toLowerCase() !== 'bearer')) {
      throw new TokenError('invalid', 'token endpoint issued a token that is not a bearer token');
    }
    const seconds = typeof body.expires_in === 'number' ? body.expires_in : typeof body.expires_in === 'string' ? Number(body.expires_in) : NaN;
    const lifetime = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : (o.defaultLifetimeMs ?? 300_000);
    const renewBefore = Math.min(o.renewBeforeMs ?? 60_000, lifetime / 2);
    // Counted from when we asked: the token may have been issued any time before the answer arrived.
    const token: CachedToken = { value, expiresAt: started + lifetime, renewAt: started + lifetime - renewBefore };
    this.#current = token;
    return token;
  }
}
