import { fail, readBoolean, readObject, type FieldReaders, type Reader } from './readers.ts';

/**
 * The `api` section: the records-system REST API under /v1 (and its OpenAPI description at /docs). It listens
 * on the gateway's `host`/`port`, loopback by default; every /v1 call needs an API key (`seos-gateway apikey
 * create`), so an enabled API with no keys answers 401 to everyone.
 */
export interface ApiConfig {
  readonly enabled: boolean;
  /** Serve the OpenAPI description at /docs/json and the Swagger UI (local assets, no CDN) at /docs. */
  readonly docs: boolean;
  /** Largest JSON body of POST /v1/documents (attachments in base64 included). */
  readonly maxJsonBytes: number;
  /** Largest total of the files of one multipart upload (POST /v1/documents/multipart). */
  readonly maxUploadBytes: number;
  /** Most attachments in one document. */
  readonly maxAttachments: number;
  /** Page size when the caller gives none, and the most a caller may ask for. */
  readonly defaultPageSize: number;
  readonly maxPageSize: number;
  /** A pending delivery older than this counts as stuck (GET /v1/operator/deliveries; the query may override it). */
  readonly stuckAfterSeconds: number;
  /** Most deliveries one "resend by filter" call may resend. */
  readonly maxResendBatch: number;
}

export interface ApiSection {
  readonly api: ApiConfig;
}

export interface ApiInput {
  api?: Partial<ApiConfig>;
}

export const API_DEFAULTS: ApiConfig = {
  enabled: true,
  docs: true,
  maxJsonBytes: 32 * 1024 * 1024,
  maxUploadBytes: 256 * 1024 * 1024,
  maxAttachments: 100,
  defaultPageSize: 50,
  maxPageSize: 500,
  stuckAfterSeconds: 3600,
  maxResendBatch: 1000,
};

function readInt(min: number, max: number): Reader<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) fail(path, `expected an integer from ${min} to ${max}`);
    return value;
  };
}

export const API_READERS: FieldReaders<ApiInput> = {
  api: (value, path) => {
    const api = readObject<ApiConfig>(value, path, {
      enabled: readBoolean,
      docs: readBoolean,
      maxJsonBytes: readInt(1024, 2 * 1024 ** 3),
      maxUploadBytes: readInt(1024, 8 * 1024 ** 3),
      maxAttachments: readInt(1, 10_000),
      defaultPageSize: readInt(1, 10_000),
      maxPageSize: readInt(1, 10_000),
      stuckAfterSeconds: readInt(0, 30 * 24 * 3600),
      maxResendBatch: readInt(1, 100_000),
    });
    const size = { ...API_DEFAULTS, ...api };
    if (size.defaultPageSize > size.maxPageSize) fail(`${path}.defaultPageSize`, `expected at most maxPageSize (${size.maxPageSize})`);
    return api;
  },
};

export function completeApi(input: ApiInput): ApiSection {
  return { api: { ...API_DEFAULTS, ...input.api } };
}
