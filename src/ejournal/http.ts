import { readTlsFiles, type TlsMaterial } from '../config/tls-files.ts';
import http from 'node:http';
import https from 'node:https';
import { GatewayError } from '../errors/index.ts';
import type { EjournalTls } from '../config/ejournal-config.ts';

/**
 * The small HTTP(S) client the eJournal, token and RNU calls share: node:http/https with keep-alive agents (fetch
 * cannot take a private CA or client certificate on Node 20 without undici), one overall deadline per request, a
 * bounded answer size. It throws only HttpTransportError (nothing came back); any HTTP status is an answer.
 */
export type { TlsMaterial } from '../config/tls-files.ts';

export interface HttpAgents {
  readonly http: http.Agent;
  readonly https: https.Agent;
  destroy(): void;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export class HttpTransportError extends Error {
  /** ECONNREFUSED, ECONNRESET, TIMEOUT, TOO_LARGE, ... */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'HttpTransportError';
    this.code = code;
  }
}

const MAX_ANSWER_BYTES = 1024 * 1024;

export function createAgents(tls?: TlsMaterial, maxSockets = 64): HttpAgents {
  const common = { keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: 'lifo' as const };
  const agents = {
    http: new http.Agent(common),
    https: new https.Agent({ ...common, ...tls }),
    destroy() { agents.http.destroy(); agents.https.destroy(); },
  };
  return agents;
}

/** Reads the files of a TLS section (see src/config/tls-files.ts). */
export function readTlsMaterial(tls: EjournalTls | undefined): TlsMaterial | undefined {
  return readTlsFiles(tls, '$.ejournal tls');
}

/** Refuses plain HTTP unless allowed (the simulator on loopback). Throws GW_ERR_CONFIG_INVALID. */
export function checkUrl(url: string, allowInsecureHttp: boolean, what: string): URL {
  let parsed: URL;
  try { parsed = new URL(url); } catch { throw new GatewayError('GW_ERR_CONFIG_INVALID', `${what}: not a URL`); }
  if (parsed.protocol === 'http:' && !allowInsecureHttp) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `${what}: plain http:// is allowed only with allowInsecureHttp (tests, the simulator)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new GatewayError('GW_ERR_CONFIG_INVALID', `${what}: expected http(s)`);
  return parsed;
}

export function httpRequest(url: URL, options: {
  method: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  timeoutMs: number;
  agents: HttpAgents;
}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const isHttps = url.protocol === 'https:';
    const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body, 'utf8');
    const req = (isHttps ? https : http).request(url, {
      method: options.method,
      agent: isHttps ? options.agents.https : options.agents.http,
      headers: { ...options.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
    });
    let settled = false;
    const finish = (error: HttpTransportError | undefined, answer?: HttpAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(answer!);
    };
    const timer = setTimeout(() => {
      finish(new HttpTransportError('TIMEOUT', `no answer within ${options.timeoutMs} ms`));
      req.destroy();
    }, options.timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => finish(new HttpTransportError(error.code ?? 'ERROR', error.message.slice(0, 200))));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_ANSWER_BYTES) {
          finish(new HttpTransportError('TOO_LARGE', `answer larger than ${MAX_ANSWER_BYTES} bytes`));
          req.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (error: NodeJS.ErrnoException) => finish(new HttpTransportError(error.code ?? 'ERROR', error.message.slice(0, 200))));
    });
    req.end(body);
  });
}

/** The answer as JSON, or undefined when it is not JSON (an HTML error page from a proxy, an empty 204). */
export function jsonBody(answer: HttpAnswer): Record<string, unknown> | undefined {
  if (answer.body.length === 0) return undefined;
  try {
    const value = JSON.parse(answer.body.toString('utf8')) as unknown;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A dotted path into parsed JSON. */
export function getPath(object: Record<string, unknown> | undefined, path: string): unknown {
  let value: unknown = object;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Sets a dotted path, creating the objects on the way. */
export function setPath(object: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let target = object;
  for (const part of parts.slice(0, -1)) {
    if (typeof target[part] !== 'object' || target[part] === null) target[part] = {};
    target = target[part] as Record<string, unknown>;
  }
  target[parts[parts.length - 1]] = value;
}

/** Text from a remote answer made safe to keep: one line, printable, clipped. */
export function safeText(value: unknown, max = 200): string | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const text = String(value).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').trim();
  if (text === '') return undefined;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
