import { fail, readBoolean, readObject, readPath, readSecret, type FieldReaders, type Reader, readHttpUrl } from './readers.ts';
import type { Secret } from './secret.ts';

/**
 * The `ssev` section: SSEV (eDelivery), the channel for people, companies and administrations outside SEOS.
 * Which API the gateway uses (`client`: the ESB REST API or the legacy SOAP integration service) is a choice
 * of configuration; both need the administration to be registered in SSEV first (protocols.md §4).
 *
 * Nothing here is read unless `enabled` is true; then the chosen client's URL is required (checked by
 * `requireSsevClientConfig` when the channel is built, so a gateway without SSEV still boots).
 */
export type SsevClientKind = 'rest' | 'soap';

export interface SsevLimitsConfig {
  /** Attachments per message. */
  readonly maxAttachments: number;
  /** One attachment, in bytes. */
  readonly maxAttachmentBytes: number;
  /** All attachments of one message together. */
  readonly maxMessageBytes: number;
  readonly maxSubjectLength: number;
  readonly maxTextLength: number;
}

export interface SsevIdentityConfig {
  /** The client system's OID: `ST=OID:<oid>` in Dp-Miscinfo. */
  readonly clientOid?: string;
  /** The client system's CN: `CN=<cn>` in Dp-Miscinfo. */
  readonly clientCn?: string;
  /** `representedPersonID:<id>` (only for the /obo/ variants; empty otherwise). */
  readonly representedPersonId?: string;
  readonly correspondentOid?: string;
  /** `operatorID:<ЕГН>` of the operator acting; personal data, hence a Secret. */
  readonly operatorId?: Secret;
}

export interface SsevRestConfig {
  /** The ESB base URL; paths `/api/v1/...` are appended. */
  readonly baseUrl?: string;
  /** Where blobs are uploaded, when not the same host (the blobs service); default baseUrl. */
  readonly blobsBaseUrl?: string;
  /** Origins a blob `downloadLink` may point to (SSRF guard); default the origins of baseUrl and blobsBaseUrl. */
  readonly blobDownloadOrigins: readonly string[];
  /** OAuth2 client credentials (ASSUMPTION in protocols.md §4.2: the eForms pattern). No token when absent. */
  readonly tokenUrl?: string;
  readonly clientId?: string;
  readonly clientSecret?: Secret;
  readonly scope?: string;
  /** How the client authenticates at the token endpoint: HTTP Basic (default) or form fields. */
  readonly tokenAuth: 'basic' | 'post';
  readonly identity: SsevIdentityConfig;
  /** The message template used for outgoing messages; its first `file` field carries the attachments. */
  readonly templateId?: number;
  /** Field ids (GUIDs) of the template, when they must not be guessed from the field types. */
  readonly textFieldId?: string;
  readonly fileFieldId?: string;
  readonly tls?: SsevTlsConfig;
}

export interface SsevSoapConfig {
  readonly url?: string;
  /** Basic256 (the published policy) means RSA-SHA1/SHA-1; rsa-sha256 for a Basic256Sha256 service. */
  readonly signatureProfile: 'rsa-sha1' | 'rsa-sha256';
  /** The certificate registered with SSEV for WS-Security; default the gateway's signing identity. */
  readonly pkcs12Path?: string;
  readonly keyPath?: string;
  readonly certPath?: string;
  readonly password?: Secret;
  /** `operatorEGN` sent with every operation (optional); personal data, hence a Secret. */
  readonly operatorEgn?: Secret;
  readonly serviceOid?: string;
  /** Lifetime of the WS-Security Timestamp (WCF's default is 5 minutes). */
  readonly timestampTtlSeconds: number;
  readonly tls?: SsevTlsConfig;
}

export interface SsevTlsConfig {
  readonly caPath?: string;
  readonly certPath?: string;
  readonly keyPath?: string;
  readonly pkcs12Path?: string;
  readonly password?: Secret;
}

export interface SsevConfig {
  readonly enabled: boolean;
  readonly client: SsevClientKind;
  /** Plain http:// URLs (tests, a local simulator). */
  readonly allowInsecureHttp: boolean;
  readonly rejectUnauthorized: boolean;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  /** Inbox polling; push notifications make it faster, polling makes it certain. */
  readonly pollIntervalMs: number;
  /** Sent messages are checked for delivery (dateReceived) this often. */
  readonly statusPollIntervalMs: number;
  /** After this long without delivery the status poller stops asking (the document stays SENT). */
  readonly statusPollMaxAgeMs: number;
  /** The path of the push-notification endpoint. */
  readonly pushPath: string;
  /**
   * Which listener serves the push endpoint: `seos` (default) is the listener other administrations already reach
   * from outside; `api` is the records-system listener (loopback unless allowRemote), for a reverse proxy that
   * forwards only this path; `none` relies on polling alone (e.g. when the SEOS listener requires client
   * certificates SSEV does not present).
   */
  readonly pushListener: 'seos' | 'api' | 'none';
  /** Overrides of the limits; what is not set comes from the chosen API's published limits (src/ssev/limits.ts). */
  readonly limits: Partial<SsevLimitsConfig>;
  readonly rest: SsevRestConfig;
  readonly soap: SsevSoapConfig;
}

export interface SsevSection {
  readonly ssev: SsevConfig;
}

type Mutable<T> = { -readonly [K in keyof T]?: T[K] };

export interface SsevInput {
  ssev?: Partial<Omit<SsevConfig, 'limits' | 'rest' | 'soap'>> & {
    limits?: Mutable<SsevLimitsConfig>;
    rest?: Mutable<Omit<SsevRestConfig, 'identity'>> & { identity?: Mutable<SsevIdentityConfig> };
    soap?: Mutable<SsevSoapConfig>;
  };
}

export const SSEV_DEFAULTS: SsevConfig = {
  enabled: false,
  client: 'rest',
  allowInsecureHttp: false,
  rejectUnauthorized: true,
  connectTimeoutMs: 10_000,
  responseTimeoutMs: 120_000,
  pollIntervalMs: 5 * 60_000,
  statusPollIntervalMs: 15 * 60_000,
  statusPollMaxAgeMs: 90 * 24 * 3600_000,
  pushPath: '/ssev/push',
  pushListener: 'seos',
  limits: {},
  rest: { tokenAuth: 'basic', identity: {}, blobDownloadOrigins: [] },
  soap: { signatureProfile: 'rsa-sha1', timestampTtlSeconds: 300 },
};

// ── readers ──

function readInt(min: number, max: number): Reader<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) fail(path, `expected an integer from ${min} to ${max}`);
    return value;
  };
}

function readText(max: number, pattern?: RegExp, what = 'a non-empty string'): Reader<string> {
  return (value, path) => {
    if (typeof value !== 'string' || value.trim() === '' || value.length > max || (pattern && !pattern.test(value))) {
      fail(path, `expected ${what} of at most ${max} characters`);
    }
    return value;
  };
}

const readUrl: Reader<string> = (value, path) => {
  const url = new URL(readHttpUrl(value, path));
  if (url.username || url.password) fail(path, 'expected a URL without credentials (use clientId and clientSecret)');
  return value as string;
};

const readOrigins: Reader<string[]> = (value, path) => {
  if (!Array.isArray(value) || value.length > 20) fail(path, 'expected an array of at most 20 URLs');
  return value.map((v, i) => new URL(readUrl(v, `${path}[${i}]`)).origin);
};

const OID = /^[0-2](\.\d{1,9}){1,30}$/;
const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
/** Dp-Miscinfo separates parts with "|" and the DN with "/": neither may appear inside a value. */
const DN_VALUE = /^[^|/\r\n]+$/;

const readDigitsSecret: Reader<Secret> = (value, path) => {
  if (typeof value !== 'string' || !/^\d{1,20}$/.test(value)) fail(path, 'expected digits only (an ЕГН/ЛНЧ)');
  return readSecret(value, path);
};

function readEnum<T extends string>(values: readonly T[]): Reader<T> {
  return (value, path) => {
    if (typeof value !== 'string' || !(values as readonly string[]).includes(value)) fail(path, `expected one of ${values.join(', ')}`);
    return value as T;
  };
}

const readTls: Reader<SsevTlsConfig> = (value, path) =>
  readObject<SsevTlsConfig>(value, path, { caPath: readPath, certPath: readPath, keyPath: readPath, pkcs12Path: readPath, password: readSecret });

const readUrlPath: Reader<string> = (value, path) => {
  if (typeof value !== 'string' || !/^\/[A-Za-z0-9._~\-/]{0,200}$/.test(value)) fail(path, 'expected a URL path starting with /');
  return value;
};

type SsevSectionInput = NonNullable<SsevInput['ssev']>;

export const SSEV_READERS: FieldReaders<SsevInput> = {
  ssev: (value, path) => readObject<SsevSectionInput>(value, path, {
    enabled: readBoolean,
    client: readEnum(['rest', 'soap'] as const),
    allowInsecureHttp: readBoolean,
    rejectUnauthorized: readBoolean,
    connectTimeoutMs: readInt(100, 600_000),
    responseTimeoutMs: readInt(100, 3_600_000),
    pollIntervalMs: readInt(1000, 24 * 3600_000),
    statusPollIntervalMs: readInt(1000, 7 * 24 * 3600_000),
    statusPollMaxAgeMs: readInt(60_000, 365 * 24 * 3600_000),
    pushPath: readUrlPath,
    pushListener: readEnum(['seos', 'api', 'none'] as const),
    limits: (v, p) => readObject<Mutable<SsevLimitsConfig>>(v, p, {
      maxAttachments: readInt(1, 1000),
      maxAttachmentBytes: readInt(1, 2 * 1024 ** 3),
      maxMessageBytes: readInt(1, 4 * 1024 ** 3),
      maxSubjectLength: readInt(1, 10_000),
      maxTextLength: readInt(1, 100_000_000),
    }),
    rest: (v, p) => readObject<NonNullable<SsevSectionInput['rest']>>(v, p, {
      baseUrl: readUrl,
      blobsBaseUrl: readUrl,
      blobDownloadOrigins: readOrigins,
      tokenUrl: readUrl,
      clientId: readText(200, /^[\x21-\x7e]+$/, 'printable ASCII'),
      clientSecret: readSecret,
      scope: readText(500, /^[\x20-\x7e]+$/, 'printable ASCII'),
      tokenAuth: readEnum(['basic', 'post'] as const),
      identity: (iv, ip) => readObject<Mutable<SsevIdentityConfig>>(iv, ip, {
        clientOid: readText(300, OID, 'an OID such as 2.16.100.1.1.1.1.13'),
        clientCn: readText(200, DN_VALUE, 'a CN without "|" or "/"'),
        representedPersonId: readText(20, /^\d+$/, 'digits'),
        correspondentOid: readText(300, OID, 'an OID'),
        operatorId: readDigitsSecret,
      }),
      templateId: readInt(1, 2 ** 31 - 1),
      textFieldId: readText(36, GUID, 'a field GUID'),
      fileFieldId: readText(36, GUID, 'a field GUID'),
      tls: readTls,
    }),
    soap: (v, p) => readObject<Mutable<SsevSoapConfig>>(v, p, {
      url: readUrl,
      signatureProfile: readEnum(['rsa-sha1', 'rsa-sha256'] as const),
      pkcs12Path: readPath,
      keyPath: readPath,
      certPath: readPath,
      password: readSecret,
      operatorEgn: readDigitsSecret,
      serviceOid: readText(300, OID, 'an OID'),
      timestampTtlSeconds: readInt(30, 3600),
      tls: readTls,
    }),
  }),
};

export function completeSsev(input: SsevInput): SsevSection {
  const s = input.ssev ?? {};
  const d = SSEV_DEFAULTS;
  return {
    ssev: {
      ...d, ...s,
      limits: { ...d.limits, ...s.limits },
      rest: { ...d.rest, ...s.rest, identity: { ...d.rest.identity, ...s.rest?.identity }, blobDownloadOrigins: s.rest?.blobDownloadOrigins ?? [] },
      soap: { ...d.soap, ...s.soap },
    } as SsevConfig,
  };
}

/** The URL the chosen client needs, checked when the SSEV channel is built (not at boot of a gateway without SSEV). */
export function requireSsevClientConfig(config: SsevConfig): void {
  if (config.client === 'rest') {
    if (!config.rest.baseUrl) fail('$.ssev.rest.baseUrl', 'required when $.ssev.client is "rest"');
    if (!config.rest.identity.clientOid || !config.rest.identity.clientCn) fail('$.ssev.rest.identity', 'clientOid and clientCn are required for the Dp-Miscinfo header');
    if (config.rest.templateId === undefined) fail('$.ssev.rest.templateId', 'required: the message template outgoing messages use');
    if (config.rest.tokenUrl && (!config.rest.clientId || !config.rest.clientSecret)) fail('$.ssev.rest', 'tokenUrl needs clientId and clientSecret');
  } else if (!config.soap.url) {
    fail('$.ssev.soap.url', 'required when $.ssev.client is "soap"');
  }
}
