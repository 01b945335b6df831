import http from 'node:http';
import https from 'node:https';
import { GatewayError, isGatewayError } from '../../errors/index.ts';
import {
  MAX_REGISTRY_RESPONSE_BYTES, buildRegistryRequest, parseRegistryResponse, registrySoapAction, soapBody,
} from './rpc-encoded.ts';
import type { RegistryAnswer, RegistryOperation } from './types.ts';

/**
 * The SEOS registry client: SOAP 1.1 rpc/encoded over HTTPS with a client certificate (the registry lives on the
 * closed network `*.obmen.local` and requires mutual TLS). Plain node:https, one request per call: the registry
 * is asked every few minutes, so there is nothing to gain from keeping connections open.
 *
 * Outcomes: connection, TLS and timeout failures and HTTP errors without a SOAP Fault → GW_ERR_REGISTRY_UNAVAILABLE
 * (worth retrying later); a SOAP Fault → GW_ERR_REGISTRY_FAULT; anything else unreadable →
 * GW_ERR_REGISTRY_BAD_RESPONSE.
 */
export interface RegistryClientTls {
  /** PEM private key of the gateway's SEOS client certificate. */
  key: string | Buffer;
  /** PEM certificate (chain) presented to the registry. */
  cert: string | Buffer;
  /** PEM CA certificate(s) the registry's server certificate must chain to; default Node's trust store. */
  ca?: string | Buffer | Array<string | Buffer>;
  passphrase?: string;
}

export interface RegistryClientOptions {
  /** e.g. https://register.obmen.local/service/ */
  url: string;
  tls?: RegistryClientTls;
  /** Verify the registry's server certificate and host name (default true; the reference disables this). */
  rejectUnauthorized?: boolean;
  /** Whole-call deadline, connect to last byte (default 30 s). */
  timeoutMs?: number;
  /** Allow an http:// URL (tests and demos only). */
  allowInsecureHttp?: boolean;
  /** Default 64 MiB. */
  maxResponseBytes?: number;
}

export interface RegistryClient {
  readonly url: string;
  getAllRecords(): Promise<RegistryAnswer>;
  /** Entities changed after `since` (xsd:dateTime, best passed as the registry's own LastChange text). */
  getNewRecords(since: string): Promise<RegistryAnswer>;
  getByEntityIdentifier(eik: string): Promise<RegistryAnswer>;
  getByGuid(guid: string): Promise<RegistryAnswer>;
  getByCertificateSN(serial: string): Promise<RegistryAnswer>;
}

export function createRegistryClient(options: RegistryClientOptions): RegistryClient {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `registry url "${String(options.url).slice(0, 200)}" is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', `registry url must be https://, got ${url.protocol}`);
  }
  if (url.protocol === 'http:' && !options.allowInsecureHttp) {
    throw new GatewayError('GW_ERR_CONFIG_INVALID', 'registry url is plain http://; the registry requires https with a client certificate (allowInsecureHttp is for tests only)');
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(timeoutMs > 0)) throw new GatewayError('GW_ERR_CONFIG_INVALID', `registry timeoutMs must be positive, got ${timeoutMs}`);
  const maxBytes = options.maxResponseBytes ?? MAX_REGISTRY_RESPONSE_BYTES;

  const call = async (operation: RegistryOperation, argument?: string): Promise<RegistryAnswer> => {
    const body = Buffer.from(buildRegistryRequest(operation, argument), 'utf8');
    const answer = await post(url, body, registrySoapAction(operation), { ...options, timeoutMs, maxBytes });
    if (answer.status < 200 || answer.status > 299) {
      // SOAP 1.1 sends a Fault with HTTP 500; anything else is the server (or a proxy) failing.
      try {
        soapBody(answer.body, maxBytes);
      } catch (e) {
        if (isGatewayError(e, 'GW_ERR_REGISTRY_FAULT')) throw e;
      }
      throw new GatewayError('GW_ERR_REGISTRY_UNAVAILABLE', `${operation}: HTTP ${answer.status} from ${url.host}`);
    }
    return parseRegistryResponse(answer.body, operation);
  };

  return {
    url: url.href,
    getAllRecords: () => call('GetAllRecords'),
    getNewRecords: (since) => call('GetNewRecords', since),
    getByEntityIdentifier: (eik) => call('GetByEntityIdentifier', eik),
    getByGuid: (guid) => call('GetByGuid', guid),
    getByCertificateSN: (serial) => call('GetByCertificateSN', serial),
  };
}

interface PostOptions extends RegistryClientOptions {
  timeoutMs: number;
  maxBytes: number;
}

function post(url: URL, body: Buffer, soapAction: string, o: PostOptions): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = {
      'Content-Type': 'text/xml; charset=utf-8',
      'Content-Length': String(body.length),
      SOAPAction: `"${soapAction}"`,
      Accept: 'text/xml',
      'User-Agent': 'seos-gateway',
    };
    const common = { method: 'POST', headers, agent: false as const };
    const req = url.protocol === 'https:'
      ? https.request(url, {
        ...common,
        rejectUnauthorized: o.rejectUnauthorized ?? true,
        ...(o.tls ? { key: o.tls.key, cert: o.tls.cert, ca: o.tls.ca, passphrase: o.tls.passphrase } : {}),
      })
      : http.request(url, common);

    let settled = false;
    const finish = (err: unknown, value?: { status: number; body: Buffer }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(value!);
    };
    const timer = setTimeout(() => {
      finish(new GatewayError('GW_ERR_REGISTRY_UNAVAILABLE', `no complete answer from ${url.host} within ${o.timeoutMs} ms`));
    }, o.timeoutMs);
    timer.unref();

    req.on('error', (e: NodeJS.ErrnoException) => {
      finish(new GatewayError('GW_ERR_REGISTRY_UNAVAILABLE', `${url.host}: ${e.code ?? ''} ${e.message}`.trim(), { cause: e }));
    });
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > o.maxBytes) {
        finish(new GatewayError('GW_ERR_REGISTRY_BAD_RESPONSE', `the answer declares ${declared} bytes, more than the ${o.maxBytes} allowed`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > o.maxBytes) {
          finish(new GatewayError('GW_ERR_REGISTRY_BAD_RESPONSE', `the answer is larger than the ${o.maxBytes} bytes allowed`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', (e) => {
        finish(new GatewayError('GW_ERR_REGISTRY_UNAVAILABLE', `${url.host}: the answer was cut off (${e.message})`, { cause: e }));
      });
      res.on('aborted', () => {
        finish(new GatewayError('GW_ERR_REGISTRY_UNAVAILABLE', `${url.host}: the answer was cut off`));
      });
    });
    req.end(body);
  });
}
