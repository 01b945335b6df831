import http from 'node:http';
import https from 'node:https';
import { GatewayError } from '../errors/index.ts';

/**
 * The small HTTP layer both SSEV clients share: keep-alive agents, a connect timeout, an inactivity timeout, a
 * bounded reply, and one error vocabulary. Anything that means "SSEV did not answer usefully, try later"
 * (connection refused or reset, DNS, TLS, timeouts, a reply cut off) becomes GW_ERR_SSEV_UNAVAILABLE; a reply
 * over the size limit becomes GW_ERR_SSEV_BAD_RESPONSE. Status codes are left to the callers.
 */
export interface SsevHttpTls {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  readonly pfx?: string | Buffer;
  readonly passphrase?: string;
}

export interface SsevHttpOptions {
  readonly allowInsecureHttp?: boolean;
  readonly rejectUnauthorized?: boolean;
  readonly connectTimeoutMs?: number;
  /** Longest silence while sending or waiting, and longest wait for the whole reply after the request. */
  readonly responseTimeoutMs?: number;
  readonly tls?: SsevHttpTls;
  readonly userAgent?: string;
}

export interface HttpRequest {
  readonly method: 'GET' | 'POST' | 'DELETE';
  readonly headers?: Record<string, string>;
  readonly body?: Buffer | readonly Buffer[];
  /** Largest reply body read; beyond it GW_ERR_SSEV_BAD_RESPONSE. */
  readonly maxBytes: number;
}

export interface HttpReply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface SsevHttp {
  /** Parses and checks a URL: https, or http when allowed. Throws GW_ERR_SSEV_INSECURE_URL. */
  url(value: string, base?: string): URL;
  request(url: URL, init: HttpRequest): Promise<HttpReply>;
  /**
   * Like request, but a 2xx body is handed to `consume` as a stream (a large blob goes straight to the spool);
   * other statuses are read as a bounded body.
   */
  download<T>(url: URL, init: Omit<HttpRequest, 'body' | 'method'>, consume: (body: http.IncomingMessage) => Promise<T>): Promise<{ status: number; result?: T; body?: Buffer }>;
  close(): void;
}

export function createSsevHttp(options: SsevHttpOptions = {}): SsevHttp {
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const responseTimeoutMs = options.responseTimeoutMs ?? 120_000;
  const tls = options.tls ?? {};
  const httpsAgent = new https.Agent({
    keepAlive: true, minVersion: 'TLSv1.2', rejectUnauthorized: options.rejectUnauthorized ?? true,
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
    ...(tls.pfx !== undefined ? { pfx: tls.pfx } : {}),
    ...(tls.passphrase !== undefined ? { passphrase: tls.passphrase } : {}),
  });
  const httpAgent = new http.Agent({ keepAlive: true });
  const userAgent = options.userAgent ?? 'seos-gateway';
  /** Errors that came from a reused keep-alive socket before any answer (retried once on a fresh one). */
  const staleSockets = new WeakSet<GatewayError>();

  function url(value: string, base?: string): URL {
    let parsed: URL;
    try {
      parsed = base === undefined ? new URL(value) : new URL(value, base);
    } catch {
      throw new GatewayError('GW_ERR_SSEV_INSECURE_URL', 'not a valid absolute URL');
    }
    if (parsed.protocol === 'https:') return parsed;
    if (parsed.protocol === 'http:' && options.allowInsecureHttp) return parsed;
    throw new GatewayError('GW_ERR_SSEV_INSECURE_URL', `${parsed.protocol}//${parsed.host}${parsed.pathname.slice(0, 100)}`);
  }

  function exchange<T>(
    target: URL, init: HttpRequest, consume?: (body: http.IncomingMessage) => Promise<T>,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body?: Buffer; result?: T }> {
    const secure = target.protocol === 'https:';
    const parts = init.body === undefined ? [] : Buffer.isBuffer(init.body) ? [init.body] : [...init.body];
    const length = parts.reduce((n, p) => n + p.length, 0);
    return new Promise((resolve, reject) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const done = (error: Error | null, value?: { status: number; headers: http.IncomingHttpHeaders; body?: Buffer; result?: T }) => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        if (error) {
          req.destroy();
          reject(error);
        } else {
          resolve(value!);
        }
      };
      let gotResponse = false;
      const unavailable = (detail: string, stale = false) => {
        const error = new GatewayError('GW_ERR_SSEV_UNAVAILABLE', `${init.method} ${target.host}${target.pathname.slice(0, 80)}: ${detail}`);
        if (stale) staleSockets.add(error);
        done(error);
      };
      const req = (secure ? https : http).request(target, {
        method: init.method,
        agent: secure ? httpsAgent : httpAgent,
        headers: {
          'User-Agent': userAgent, 'Accept-Encoding': 'identity',
          ...(init.body !== undefined ? { 'Content-Length': String(length) } : {}),
          ...init.headers,
        },
      });
      req.on('socket', (socket) => {
        if (req.reusedSocket) return;
        const timer = setTimeout(() => unavailable(`no connection within ${connectTimeoutMs} ms`), connectTimeoutMs);
        timers.push(timer);
        socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(timer));
      });
      req.setTimeout(responseTimeoutMs, () => unavailable(`no activity for ${responseTimeoutMs} ms`));
      req.on('finish', () => {
        timers.push(setTimeout(() => unavailable(`no complete reply within ${responseTimeoutMs} ms`), responseTimeoutMs));
      });
      req.on('error', (err: NodeJS.ErrnoException) => unavailable(
        [err.code, err.message].filter(Boolean).join(': ').slice(0, 200),
        // A kept-alive socket the server closed while idle fails at once on reuse: worth one fresh attempt.
        req.reusedSocket && !gotResponse && (err.code === 'ECONNRESET' || err.code === 'EPIPE'),
      ));
      req.on('response', (res) => {
        gotResponse = true;
        const status = res.statusCode ?? 0;
        if (consume && status >= 200 && status < 300) {
          // The consumer owns the stream; a reply cut off shows up as its failure with the reply incomplete.
          consume(res).then(
            (result) => done(null, { status, headers: res.headers, result }),
            (error: unknown) => {
              if (error instanceof GatewayError && error.code !== 'GW_ERR_STORE_IO') done(error);
              else if (!res.complete) unavailable('the reply was cut off');
              else done(error instanceof Error ? error : new Error(String(error)));
            },
          );
          return;
        }
        res.on('error', (err: NodeJS.ErrnoException) => unavailable(`the reply was cut off (${err.code ?? err.message})`));
        res.on('close', () => { if (!res.complete) unavailable('the connection closed before the reply was complete'); });
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > init.maxBytes) {
          done(new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', `HTTP ${status} reply of ${declared} bytes exceeds ${init.maxBytes}`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > init.maxBytes) {
            done(new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', `HTTP ${status} reply exceeds ${init.maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => done(null, { status, headers: res.headers, body: Buffer.concat(chunks, size) }));
      });
      for (const part of parts) req.write(part);
      req.end();
    });
  }

  async function once<T>(attempt: () => Promise<T>): Promise<T> {
    try {
      return await attempt();
    } catch (error) {
      if (error instanceof GatewayError && staleSockets.delete(error)) return attempt();
      throw error;
    }
  }

  return {
    url,
    async request(target, init) {
      const r = await once(() => exchange(target, init));
      return { status: r.status, headers: r.headers, body: r.body ?? Buffer.alloc(0) };
    },
    async download(target, init, consume) {
      const r = await once(() => exchange(target, { ...init, method: 'GET' }, consume));
      return { status: r.status, ...(r.result !== undefined ? { result: r.result } : {}), ...(r.body ? { body: r.body } : {}) };
    },
    close() {
      httpsAgent.destroy();
      httpAgent.destroy();
    },
  };
}

/** The media type of a Content-Type header, lowercased, without parameters. */
export function mediaType(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return (value ?? '').split(';', 1)[0].trim().toLowerCase();
}

/** A parameter of a Content-Type header (quoted or not), or undefined. */
export function contentTypeParameter(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  const re = new RegExp(`;\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]*))`, 'i');
  const m = re.exec(header);
  return m ? (m[1] ?? m[2]) : undefined;
}
