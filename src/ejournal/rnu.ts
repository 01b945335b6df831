import { randomUUID } from 'node:crypto';
import type { CentralRnuConfig, EjournalConfig } from '../config/ejournal-config.ts';
import type { Secret } from '../config/secret.ts';
import { GatewayError } from '../errors/index.ts';
import { oauthOptionsFromConfig } from './client.ts';
import { checkUrl, createAgents, getPath, httpRequest, jsonBody, readTlsMaterial, safeText, type HttpAgents, type TlsMaterial } from './http.ts';
import { OAuth2ClientCredentials, TokenError } from './oauth.ts';

/**
 * The service reference number (РНУ). Its standard is not public (protocols.md §5.2), so it is treated as
 * assumption A1 says: an opaque, case-sensitive string of at most 64 characters (the SSEV column and portal
 * limit). It is validated as a string and never parsed: GUID-shaped (today's SSEV) and ORN-shaped (`BGEM…`)
 * values are equally fine, and nothing is ever trimmed or case-folded.
 *
 * Where an RNU comes from is an RnuProvider (A2). The gateway never invents one, except the DemoRnuProvider,
 * which exists only in demo mode and marks what it invents with the DEMO- prefix.
 */
export const RNU_MAX_LENGTH = 64;
export const DEMO_RNU_PREFIX = 'DEMO-';

// C0 and C1 controls, DEL, line/paragraph separators, zero-width and bidirectional format characters (spoofing in
// an operator's screen), the BOM, and lone surrogates (not encodable in UTF-8).
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Returns the RNU unchanged or throws GW_ERR_EJOURNAL_RNU_INVALID saying what is wrong (never echoing the value:
 * whatever was sent might not be an RNU at all).
 */
export function validateRnu(value: unknown, field = 'rnu'): string {
  const bad = (why: string): never => { throw new GatewayError('GW_ERR_EJOURNAL_RNU_INVALID', `${field}: ${why}`); };
  if (value === undefined || value === null) bad('required');
  if (typeof value !== 'string') bad(`expected a string, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  const rnu = value as string;
  if (rnu.length === 0) bad('empty');
  if (rnu.length > RNU_MAX_LENGTH) bad(`${rnu.length} characters, at most ${RNU_MAX_LENGTH} allowed`);
  const forbidden = FORBIDDEN.exec(rnu);
  if (forbidden) {
    const code = rnu.charCodeAt(forbidden.index);
    bad(`character U+${code.toString(16).toUpperCase().padStart(4, '0')} at position ${forbidden.index + 1} (a control, invisible or unpaired surrogate character)`);
  }
  if (/^\s|\s$/u.test(rnu)) bad('leading or trailing white space (an RNU is never trimmed: send it exactly)');
  return rnu;
}

/** True for an RNU the demo mode invented. */
export function isDemoRnu(rnu: string): boolean {
  return rnu.startsWith(DEMO_RNU_PREFIX);
}

export type RnuOrigin = 'given' | 'central' | 'demo';

export interface IssuedRnu {
  readonly rnu: string;
  readonly origin: RnuOrigin;
  /** Invented in demo mode: must never reach the real eJournal. */
  readonly demo: boolean;
}

export interface RnuRequest {
  /** An RNU that came with the request (from the records system, an eForm, an SSEV message, a SEOS DocAddData). */
  readonly given?: string | null;
  /** The service's code in the administrative register (the ORN service's `type_service`). */
  readonly serviceCode?: string;
  /** The applicant's ЕГН/ЕИК for the ORN service's `bulstat`: personal data, sent there and nowhere else. */
  readonly applicant?: string;
}

/** Where the gateway gets an RNU. Every provider takes a given RNU as it is (validated). */
export interface RnuProvider {
  readonly kind: RnuOrigin;
  obtain(request: RnuRequest): Promise<IssuedRnu>;
  close?(): void;
}

function takeGiven(request: RnuRequest): IssuedRnu | undefined {
  if (request.given === undefined || request.given === null) return undefined;
  const rnu = validateRnu(request.given);
  return { rnu, origin: 'given', demo: isDemoRnu(rnu) };
}

/** The RNU comes with the request; there is no other source. */
export class GivenRnuProvider implements RnuProvider {
  readonly kind = 'given' as const;

  async obtain(request: RnuRequest): Promise<IssuedRnu> {
    const given = takeGiven(request);
    if (!given) throw new GatewayError('GW_ERR_EJOURNAL_RNU_INVALID', 'rnu: required (this gateway takes RNUs as given and does not issue them)');
    return given;
  }
}

export interface CentralRnuOptions {
  /** e.g. https://integr-test.egov.bg:5051/orn/connector/v1/WebServiceUniqueNumber */
  readonly url: string;
  /** Query parameters; `{applicant}` and `{serviceCode}` are replaced. Default: the eForms parameter set. */
  readonly params?: Readonly<Record<string, string>>;
  readonly numberField?: string;
  readonly returnCodeField?: string;
  readonly okReturnCodes?: readonly string[];
  readonly timeoutMs?: number;
  readonly allowInsecureHttp?: boolean;
  readonly tls?: TlsMaterial;
  readonly oauth: {
    readonly tokenUrl: string; readonly clientId: string; readonly clientSecret: Secret | string; readonly scope?: string;
    readonly authStyle?: 'basic' | 'body'; readonly renewBeforeMs?: number; readonly defaultLifetimeMs?: number;
  } | OAuth2ClientCredentials;
}

/**
 * Asks the central number service (the ORN call eForms makes, protocols.md §5.1): a GET with OAuth2 client
 * credentials whose JSON answer carries the number (`orn`) and a return code (`return_code`, "0" is success).
 */
export class CentralRnuProvider implements RnuProvider {
  readonly kind = 'central' as const;
  readonly tokens: OAuth2ClientCredentials;
  readonly #options: CentralRnuOptions;
  readonly #url: URL;
  readonly #agents: HttpAgents;

  constructor(options: CentralRnuOptions) {
    this.#options = options;
    this.#url = checkUrl(options.url, options.allowInsecureHttp ?? false, 'central RNU service URL');
    this.#agents = createAgents(options.tls, 8);
    this.tokens = options.oauth instanceof OAuth2ClientCredentials
      ? options.oauth
      : new OAuth2ClientCredentials({ ...options.oauth, agents: this.#agents, timeoutMs: options.timeoutMs, allowInsecureHttp: options.allowInsecureHttp });
  }

  async obtain(request: RnuRequest): Promise<IssuedRnu> {
    const given = takeGiven(request);
    if (given) return given;
    const o = this.#options;
    const url = new URL(this.#url);
    const params = o.params ?? { bulstat: '{applicant}', type_service: '{serviceCode}', uri_service: 'e-service' };
    for (const [name, template] of Object.entries(params)) {
      let value = template;
      if (value.includes('{applicant}')) {
        if (!request.applicant) throw new GatewayError('GW_ERR_EJOURNAL_RNU_INVALID', `rnu: none given, and the central service needs the applicant's identifier (parameter ${name})`);
        value = value.replaceAll('{applicant}', request.applicant);
      }
      if (value.includes('{serviceCode}')) {
        if (!request.serviceCode) throw new GatewayError('GW_ERR_EJOURNAL_RNU_INVALID', `rnu: none given, and the central service needs the service code (parameter ${name})`);
        value = value.replaceAll('{serviceCode}', request.serviceCode);
      }
      url.searchParams.set(name, value);
    }
    const failed = (why: string): never => { throw new GatewayError('GW_ERR_RNU_SERVICE_FAILED', why); };
    for (let round = 1; ; round++) {
      let token: string;
      try {
        token = await this.tokens.token();
      } catch (error) {
        return failed(error instanceof TokenError ? `no access token: ${error.message}` : 'no access token');
      }
      let answer;
      try {
        answer = await httpRequest(url, { method: 'GET', headers: { accept: 'application/json', authorization: `Bearer ${token}` }, timeoutMs: o.timeoutMs ?? 10_000, agents: this.#agents });
      } catch (error) {
        return failed(`no answer: ${(error as { code?: string }).code ?? 'error'}`);
      }
      if (answer.status === 401 && round === 1) {
        this.tokens.invalidate(token);
        continue;
      }
      if (answer.status !== 200) return failed(`HTTP ${answer.status}`);
      const body = jsonBody(answer);
      if (!body) return failed('the answer is not a JSON object');
      const code = getPath(body, o.returnCodeField ?? 'return_code');
      if (code !== undefined && code !== null && !(o.okReturnCodes ?? ['0']).includes(String(code))) {
        const description = safeText(getPath(body, 'description_code'), 100);
        return failed(`return code ${safeText(code, 20)}${description ? ` (${description})` : ''}`);
      }
      const number = getPath(body, o.numberField ?? 'orn');
      let rnu: string;
      try {
        rnu = validateRnu(number, 'the issued number');
      } catch (error) {
        return failed((error as GatewayError).detail ?? 'unusable number');
      }
      return { rnu, origin: 'central', demo: false };
    }
  }

  close(): void {
    this.#agents.destroy();
  }
}

/**
 * Invents RNUs for demonstrations (DEMO-<uuid>), and refuses to exist unless demo mode is configured: a production
 * gateway never mints an RNU (A2).
 */
export class DemoRnuProvider implements RnuProvider {
  readonly kind = 'demo' as const;

  constructor(options: { demo: boolean }) {
    if (options.demo !== true) {
      throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.ejournal.demo: the demo RNU provider invents numbers and exists only in demo mode');
    }
  }

  async obtain(request: RnuRequest): Promise<IssuedRnu> {
    return takeGiven(request) ?? { rnu: `${DEMO_RNU_PREFIX}${randomUUID()}`, origin: 'demo', demo: true };
  }
}

export function centralOptionsFromConfig(central: CentralRnuConfig, fallbackOAuth: EjournalConfig['oauth']): CentralRnuOptions {
  const oauth = central.oauth ?? fallbackOAuth;
  if (!oauth) throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.ejournal.rnu.central.oauth: required');
  return {
    url: central.url, params: central.params, numberField: central.numberField, returnCodeField: central.returnCodeField,
    okReturnCodes: central.okReturnCodes, timeoutMs: central.timeoutMs, allowInsecureHttp: central.allowInsecureHttp,
    tls: readTlsMaterial(central.tls), oauth: oauthOptionsFromConfig(oauth),
  };
}

/** The provider `ejournal.rnu.provider` names. */
export function createRnuProvider(config: EjournalConfig): RnuProvider {
  switch (config.rnu.provider) {
    case 'central':
      if (!config.rnu.central) throw new GatewayError('GW_ERR_CONFIG_INVALID', '$.ejournal.rnu.central: required');
      return new CentralRnuProvider(centralOptionsFromConfig(config.rnu.central, config.oauth));
    case 'demo':
      return new DemoRnuProvider({ demo: config.demo });
    default:
      return new GivenRnuProvider();
  }
}
