import http from 'node:http';
import https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { ERRORS, GatewayError, isGatewayError, type ErrorCode } from '../../errors/index.ts';
import type { CertificateInfo } from '../../pki/index.ts';
import type { XmlLimits } from '../../xml/parse.ts';
import type { DocumentStatus, SeosMessage } from '../model.ts';
import { sameGuid } from '../values.ts';
import { verifySignedMessage, type VerifiedMessage } from '../verify-message.ts';
import { SOAP11_CONTENT_TYPE, SUBMIT_ACTION, escapeBytes, parseSubmitResponse, submitRequestParts, type SubmitResponse } from './envelope.ts';
import { open } from 'node:fs/promises';

const REQUEST_HEAD_LENGTH = submitRequestParts(Buffer.from('x'))[0].length;
const REQUEST_TAIL_LENGTH = submitRequestParts(Buffer.from('x')).at(-1)!.length;

/**
 * The outbound SEOS client: POSTs a signed message in a SOAP 1.1 Submit envelope and turns whatever happens
 * into a SubmitOutcome, the input of the retry policy (protocols.md §3.10):
 *
 * - `delivered`: the peer took the message. A signed MSG_DocumentStatusResponse (verified, about our
 *   DocumentGUID), or an empty SubmitResult, which the protocol reads as DS_WAIT_REGISTRATION.
 * - `rejected`: the peer refused it (a SOAP Fault, or a verified MSG_Error about our message). Not retried.
 * - `duplicate`: a verified MSG_Error saying our MessageGUID is already known: after a re-send with the same
 *   MessageGUID this means "probably delivered the first time"; the caller confirms with a status request.
 * - `unverified-reply`: the peer answered HTTP 2xx but we cannot trust or use the answer (not a Submit reply,
 *   the inner message does not parse or its signature fails, it is about another message, it is too large).
 *   The reference only logs a failed reply signature and processes the reply anyway; we do not act on content
 *   we could not verify, but the peer most probably received our message, so re-sending blindly is wrong
 *   too. The caller confirms with a MSG_DocumentStatusRequest (DocumentGUID + recipient is idempotent on the
 *   peer's side) and proceeds from its verified answer.
 * - `transport-failure`: nothing usable came back (connection refused or reset, DNS, TLS handshake, timeout,
 *   a truncated reply, any non-2xx HTTP status without a SOAP Fault). Retryable.
 */
export interface SeosClientTlsOptions {
  /** Client certificate for mutual TLS: the transport certificate registered for SEOS, not the signing key. */
  readonly key?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly passphrase?: string;
  readonly pfx?: string | Buffer;
  /** Trust anchors for the peers' server certificates; Node's default roots when absent. */
  readonly ca?: string | Buffer | Array<string | Buffer>;
}

export interface SeosClientOptions {
  readonly tls?: SeosClientTlsOptions;
  /**
   * Validate the peer's server certificate (chain and host name). Default true. The reference implementation
   * disables server certificate validation entirely (Global.asax.cs ValidateServerCertificate returns true);
   * we do not by default. Turning this off is for a closed test network only.
   */
  readonly rejectUnauthorized?: boolean;
  /** Replaces the host name check (e.g. to pin a certificate); the chain is still validated. */
  readonly checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
  /** TCP connect plus TLS handshake. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /**
   * From the last byte of the request to the last byte of the reply, and also the longest silence tolerated
   * while uploading. Default 120 s. (The reference's WCF binding uses 10 min; registration replies are
   * synchronous but cheap: the peer stores the document and answers DS_WAIT_REGISTRATION.)
   */
  readonly responseTimeoutMs?: number;
  /** Allow plain http:// URLs (tests, a local stub). Default false. */
  readonly allowInsecureHttp?: boolean;
  /** Largest reply body read. Default 64 MiB. */
  readonly maxReplyBytes?: number;
  /** XML limits for parsing the reply envelope and the inner reply message. */
  readonly replyLimits?: Partial<XmlLimits>;
  readonly userAgent?: string;
}

export interface SubmitExpectation {
  /** The MessageGUID of the message sent: an MSG_Error naming another message is not about ours. */
  readonly messageGuid: string;
  /** The DocumentGUID the message is about: a status response about another document is not ours. */
  readonly documentGuid?: string;
  /**
   * Verifies the inner reply message; throws on failure. Default: verifySignedMessage, which proves the
   * reply is intact and signed by the certificate it carries. Pass one that also pins the peer's registered
   * certificate (verifySignedMessage(reply, { trustedCertificate })) to know *who* signed it.
   */
  readonly verifyReply?: (reply: Buffer) => VerifiedMessage;
}

export interface VerifiedReply {
  readonly message: SeosMessage;
  /** The inner message bytes, exactly as verified. */
  readonly bytes: Buffer;
  readonly signer: CertificateInfo;
}

export type UnverifiedReplyProblem = 'not-soap' | 'invalid-message' | 'signature' | 'unrelated' | 'too-large';

export type SubmitOutcome =
  | {
      readonly kind: 'delivered';
      readonly status: DocumentStatus;
      /** Absent when SubmitResult was empty. */
      readonly reply?: VerifiedReply;
      /** The document's number and date at the receiver, when the reply carries them. */
      readonly theirNumber?: string;
      readonly theirDate?: string;
      readonly httpStatus: number;
      /** The whole HTTP reply body (the SOAP envelope), for the evidence archive. */
      readonly replyBytes: Buffer;
    }
  | {
      readonly kind: 'rejected';
      readonly reason: 'fault' | 'error-message';
      readonly code: 'GW_ERR_SEOS_PEER_FAULT' | 'GW_ERR_SEOS_PEER_ERROR';
      /** faultstring, or the MSG_Error's ErrorDescription (trimmed: the reference sometimes prefixes a space). */
      readonly text: string;
      /** The SOAP faultcode's local name (Client, Server, InternalServiceFault, ...) or the MSG_Error's ErrorType. */
      readonly peerCode: string;
      readonly reply?: VerifiedReply;
      readonly httpStatus: number;
      readonly replyBytes?: Buffer;
    }
  | {
      readonly kind: 'duplicate';
      readonly text: string;
      readonly reply: VerifiedReply;
      readonly httpStatus: number;
      readonly replyBytes: Buffer;
    }
  | {
      readonly kind: 'unverified-reply';
      readonly code: 'GW_ERR_SEOS_REPLY_INVALID';
      readonly problem: UnverifiedReplyProblem;
      /** Technical and in English; no document content. */
      readonly detail: string;
      /** The code of the parse or verification error behind it, when there was one. */
      readonly cause?: ErrorCode;
      readonly httpStatus: number;
      /** Absent when the reply was too large to keep. */
      readonly replyBytes?: Buffer;
    }
  | {
      readonly kind: 'transport-failure';
      readonly code: 'GW_ERR_SEOS_TRANSPORT' | 'GW_ERR_SEOS_TIMEOUT';
      readonly detail: string;
      readonly httpStatus?: number;
    };

export interface SeosClient {
  /**
   * Sends `signedMessage` (exact bytes, never re-serialized) to `url`. Resolves with an outcome for every
   * network or peer behaviour; throws (GatewayError) only for our own mistakes: a plain http URL without
   * allowInsecureHttp or another scheme (GW_ERR_SEOS_INSECURE_URL, before connecting), a message that is empty,
   * not UTF-8 or holds characters XML cannot carry.
   */
  submit(url: string, signedMessage: Buffer | ArchivedMessage, expect: SubmitExpectation): Promise<SubmitOutcome>;
  /** Closes the kept-alive connections. */
  close(): void;
}

const DEFAULTS = {
  connectTimeoutMs: 10_000,
  responseTimeoutMs: 120_000,
  maxReplyBytes: 64 * 1024 * 1024,
  userAgent: 'seos-gateway',
};
/** Request body slices are written in batches of about this size (small escape pieces are coalesced). */
const WRITE_BATCH = 1024 * 1024;

export function createSeosClient(options: SeosClientOptions = {}): SeosClient {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs;
  const responseTimeoutMs = options.responseTimeoutMs ?? DEFAULTS.responseTimeoutMs;
  const maxReplyBytes = options.maxReplyBytes ?? DEFAULTS.maxReplyBytes;
  const userAgent = options.userAgent ?? DEFAULTS.userAgent;
  const tlsOptions = options.tls ?? {};
  const httpsAgent = new https.Agent({
    keepAlive: true,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: options.rejectUnauthorized ?? true,
    ...(options.checkServerIdentity ? { checkServerIdentity: options.checkServerIdentity } : {}),
    ...(tlsOptions.key !== undefined ? { key: tlsOptions.key } : {}),
    ...(tlsOptions.cert !== undefined ? { cert: tlsOptions.cert } : {}),
    ...(tlsOptions.passphrase !== undefined ? { passphrase: tlsOptions.passphrase } : {}),
    ...(tlsOptions.pfx !== undefined ? { pfx: tlsOptions.pfx } : {}),
    ...(tlsOptions.ca !== undefined ? { ca: tlsOptions.ca } : {}),
  });
  const httpAgent = new http.Agent({ keepAlive: true });

  function target(url: string): URL {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new GatewayError('GW_ERR_SEOS_INSECURE_URL', 'the peer URL is not a valid absolute URL');
    }
    if (parsed.protocol === 'https:') return parsed;
    if (parsed.protocol === 'http:') {
      if (options.allowInsecureHttp) return parsed;
      throw new GatewayError('GW_ERR_SEOS_INSECURE_URL', `http://${parsed.host}${parsed.pathname}`);
    }
    throw new GatewayError('GW_ERR_SEOS_INSECURE_URL', `unsupported scheme ${parsed.protocol.slice(0, 20)}`);
  }

  function exchange(url: URL, body: RequestBody, length: number): Promise<Exchange> {
    const secure = url.protocol === 'https:';
    return new Promise<Exchange>((resolve) => {
      let settled = false;
      let gotResponse = false;
      const timers: NodeJS.Timeout[] = [];
      const finish = (result: Exchange): void => {
        if (settled) return;
        settled = true;
        for (const t of timers) clearTimeout(t);
        resolve(result);
      };
      const req = (secure ? https : http).request(url, {
        method: 'POST',
        agent: secure ? httpsAgent : httpAgent,
        headers: {
          'Content-Type': SOAP11_CONTENT_TYPE,
          SOAPAction: `"${SUBMIT_ACTION}"`,
          'Content-Length': String(length),
          Accept: 'text/xml',
          'Accept-Encoding': 'identity',
          'User-Agent': userAgent,
        },
      });
      const fail = (code: TransportCode, detail: string, error?: NodeJS.ErrnoException): void => {
        // Once settled the socket may be back in the keep-alive pool serving another request: leave it alone.
        if (settled) return;
        finish({
          ok: false, code, detail,
          // A kept-alive socket the server closed while idle fails at once on reuse: worth one fresh attempt.
          staleSocket: req.reusedSocket && !gotResponse && code === 'GW_ERR_SEOS_TRANSPORT'
            && (error?.code === 'ECONNRESET' || error?.code === 'EPIPE'),
        });
        req.destroy();
      };

      req.on('socket', (socket) => {
        if (settled || req.reusedSocket) return;
        const timer = setTimeout(
          () => fail('GW_ERR_SEOS_TIMEOUT', `no ${secure ? 'TLS session' : 'connection'} within ${connectTimeoutMs} ms`),
          connectTimeoutMs);
        timers.push(timer);
        socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(timer));
      });
      // Socket inactivity (uploading or waiting): no byte moved for responseTimeoutMs.
      req.setTimeout(responseTimeoutMs, () => fail('GW_ERR_SEOS_TIMEOUT', `no activity for ${responseTimeoutMs} ms`));
      req.on('finish', () => {
        if (settled) return;
        timers.push(setTimeout(
          () => fail('GW_ERR_SEOS_TIMEOUT', `no complete reply within ${responseTimeoutMs} ms after the request was sent`),
          responseTimeoutMs));
      });
      req.on('error', (err: NodeJS.ErrnoException) => fail('GW_ERR_SEOS_TRANSPORT', describeNetworkError(err), err));

      req.on('response', (res) => {
        gotResponse = true;
        const status = res.statusCode ?? 0;
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxReplyBytes) {
          finish({ ok: 'too-large', status, detail: `Content-Length ${declared} exceeds ${maxReplyBytes} bytes` });
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          size += chunk.length;
          if (size > maxReplyBytes) {
            finish({ ok: 'too-large', status, detail: `the reply exceeds ${maxReplyBytes} bytes` });
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => finish({ ok: true, status, statusText: res.statusMessage ?? '', body: Buffer.concat(chunks, size) }));
        res.on('error', (err: NodeJS.ErrnoException) => fail('GW_ERR_SEOS_TRANSPORT', `the reply was cut off (${describeNetworkError(err)})`));
        res.on('close', () => {
          if (!res.complete) fail('GW_ERR_SEOS_TRANSPORT', `the connection closed before the reply was complete (${size} bytes read)`);
        });
      });

      void writeBody(req, body);
    });
  }

  async function submit(url: string, signedMessage: Buffer | ArchivedMessage, expect: SubmitExpectation): Promise<SubmitOutcome> {
    const where = target(url);
    let body: RequestBody;
    let length = 0;
    if (Buffer.isBuffer(signedMessage)) {
      const parts = submitRequestParts(signedMessage);
      for (const p of parts) length += p.length;
      body = () => parts;
    } else {
      // A large message we signed and archived ourselves: escaped while it is read, never whole in memory.
      length = await escapedFileLength(signedMessage.path);
      body = () => fileRequestParts(signedMessage.path);
    }
    let result = await exchange(where, body, length);
    if (result.ok === false && result.staleSocket) result = await exchange(where, body, length);
    return classify(result, expect, options.replyLimits);
  }

  return {
    submit,
    close() {
      httpsAgent.destroy();
      httpAgent.destroy();
    },
  };
}

type TransportCode = 'GW_ERR_SEOS_TRANSPORT' | 'GW_ERR_SEOS_TIMEOUT';

type Exchange =
  | { ok: true; status: number; statusText: string; body: Buffer }
  | { ok: 'too-large'; status: number; detail: string }
  | { ok: false; code: TransportCode; detail: string; staleSocket: boolean };

/**
 * The request body, produced afresh for each try (a retry on a stale keep-alive socket sends it again). The parts
 * of one group may point into a buffer the next group reuses: each group is on the socket before the next is asked for.
 */
type RequestBody = () => Buffer[] | AsyncIterable<Buffer[]>;

/** A signed message in a file (the evidence archive), sent without loading it. */
export interface ArchivedMessage {
  readonly path: string;
}

const FILE_CHUNK = 1024 * 1024;
const SPECIAL_EXTRA: Record<number, number> = { 0x3c: 3, 0x3e: 3, 0x26: 4, 0x0d: 4 }; // &lt; &gt; &amp; &#xD;

async function escapedFileLength(path: string): Promise<number> {
  let length = REQUEST_HEAD_LENGTH + REQUEST_TAIL_LENGTH;
  for await (const chunk of fileChunks(path)) {
    length += chunk.length;
    for (const [byte, extra] of Object.entries(SPECIAL_EXTRA)) {
      for (let i = chunk.indexOf(Number(byte)); i !== -1; i = chunk.indexOf(Number(byte), i + 1)) length += extra;
    }
  }
  return length;
}

async function* fileRequestParts(path: string): AsyncGenerator<Buffer[]> {
  const whole = submitRequestParts(Buffer.from('x'));
  yield [whole[0]];
  // Escaping is per byte, so a chunk boundary never splits anything it replaces.
  for await (const chunk of fileChunks(path)) yield escapeBytes(chunk);
  yield [whole[whole.length - 1]];
}

/**
 * A file's bytes, read into one buffer again and again: each chunk is valid until the next is asked for. A read
 * stream's fresh buffer per chunk left garbage that V8 collects only after tens of MiB of it: sending a 133 MiB
 * message (a 100 MiB attachment) read it twice (its escaped length, then the body), and grew the process by 70-80 MiB.
 */
async function* fileChunks(path: string): AsyncGenerator<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(FILE_CHUNK);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, FILE_CHUNK, null);
      if (bytesRead === 0) return;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

async function writeBody(req: http.ClientRequest, body: RequestBody): Promise<void> {
  const produced = body();
  const groups: Iterable<Buffer[]> | AsyncIterable<Buffer[]> = Array.isArray(produced) ? [produced] : produced;
  for await (const parts of groups) {
    if (!(await writeParts(req, parts))) return;
  }
  if (!req.destroyed) req.end();
}

/** Writes a group of parts and waits until the socket has taken all of them (see `RequestBody`). */
async function writeParts(req: http.ClientRequest, parts: Buffer[]): Promise<boolean> {
  const chunks = [...batches(parts)];
  let flushed: Promise<boolean> = Promise.resolve(true);
  for (const [i, chunk] of chunks.entries()) {
    if (req.destroyed) return false;
    let accepted = true;
    // Writes complete in order: the last one's callback means every part has left our buffers.
    if (i < chunks.length - 1) accepted = req.write(chunk);
    else flushed = unlessClosed(req, (done) => { accepted = req.write(chunk, (error) => done(!error)); });
    if (!accepted && !(await unlessClosed(req, (done) => req.once('drain', () => done(true))))) return false;
  }
  return (await flushed) && !req.destroyed;
}

/** What `start` reports, or false as soon as the request closes (it may never report then). */
function unlessClosed(req: http.ClientRequest, start: (done: (ok: boolean) => void) => void): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const done = (ok: boolean) => {
      req.off('close', onClose);
      resolve(ok);
    };
    const onClose = () => done(false);
    req.on('close', onClose);
    start(done);
  });
}

/** Large slices in WRITE_BATCH pieces (no copy), runs of small ones joined into about WRITE_BATCH bytes. */
function* batches(parts: Buffer[]): Generator<Buffer> {
  let pending: Buffer[] = [];
  let pendingLength = 0;
  const flush = (): Buffer => {
    const joined = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLength);
    pending = [];
    pendingLength = 0;
    return joined;
  };
  for (const part of parts) {
    if (part.length >= WRITE_BATCH) {
      if (pendingLength) yield flush();
      for (let i = 0; i < part.length; i += WRITE_BATCH) yield part.subarray(i, i + WRITE_BATCH);
      continue;
    }
    pending.push(part);
    pendingLength += part.length;
    if (pendingLength >= WRITE_BATCH) yield flush();
  }
  if (pendingLength) yield flush();
}

function describeNetworkError(err: NodeJS.ErrnoException): string {
  const parts = [err.code, err.message].filter(Boolean);
  return parts.join(': ').slice(0, 300);
}

// ── classification ────────────────────────────────────────────────────────────────────────────────────────

function classify(result: Exchange, expect: SubmitExpectation, limits: Partial<XmlLimits> | undefined): SubmitOutcome {
  if (result.ok === false) return { kind: 'transport-failure', code: result.code, detail: result.detail };
  const status = result.status;
  const success = status >= 200 && status < 300;
  if (result.ok === 'too-large') {
    if (success) return unverified('too-large', result.detail, status);
    return { kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT', detail: `HTTP ${status} and ${result.detail}`, httpStatus: status };
  }

  const replyBytes = result.body;
  let envelope: SubmitResponse | undefined;
  let envelopeError: unknown;
  try {
    envelope = parseSubmitResponse(replyBytes, limits);
  } catch (err) {
    envelopeError = err;
  }

  // A SOAP Fault is the peer's deliberate refusal whatever the status (WCF sends it with HTTP 500).
  if (envelope?.kind === 'fault') {
    return {
      kind: 'rejected', reason: 'fault', code: 'GW_ERR_SEOS_PEER_FAULT', text: envelope.text, peerCode: envelope.code,
      httpStatus: status, replyBytes,
    };
  }
  if (!success) {
    // 404 (a stale registry URL), 403 (our client certificate not yet trusted), 5xx without a Fault: the SEOS
    // application never answered; all retryable.
    return {
      kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT',
      detail: `HTTP ${status}${result.statusText ? ` ${result.statusText.slice(0, 80)}` : ''} without a SOAP Fault`,
      httpStatus: status,
    };
  }
  if (!envelope) {
    return unverified('not-soap', `HTTP ${status} with a reply that is not a SOAP Submit response: ${errorText(envelopeError)}`,
      status, replyBytes, errorCode(envelopeError));
  }
  if (envelope.kind === 'empty') {
    // protocols.md §3.1: an empty SubmitResult is read as DS_WAIT_REGISTRATION.
    return { kind: 'delivered', status: 'DS_WAIT_REGISTRATION', httpStatus: status, replyBytes };
  }

  const inner = envelope.message;
  let verified: VerifiedMessage;
  try {
    verified = expect.verifyReply ? expect.verifyReply(inner) : verifySignedMessage(inner, { limits });
  } catch (err) {
    const code = errorCode(err);
    return unverified(code?.startsWith('GW_ERR_SIG_') ? 'signature' : 'invalid-message',
      `the reply message was not accepted: ${errorText(err)}`, status, replyBytes, code);
  }
  const message = verified.message;
  const reply: VerifiedReply = { message, bytes: inner, signer: verified.signature.signer };
  if (sameGuid(message.header.messageGuid, expect.messageGuid)) {
    return unverified('unrelated', `the reply carries our own MessageGUID ${expect.messageGuid}`, status, replyBytes);
  }

  const body = message.body;
  switch (body.type) {
    case 'MSG_DocumentStatusResponse': {
      if (expect.documentGuid && !sameGuid(body.docId.documentGuid, expect.documentGuid)) {
        return unverified('unrelated',
          `the status response is about DocumentGUID ${body.docId.documentGuid}, we sent ${expect.documentGuid}`, status, replyBytes);
      }
      const number = body.docId.number;
      const uri = body.docId.uri;
      const theirNumber = number?.docNumber
        || (uri && (uri.registerIndex || uri.sequenceNumber) ? `${uri.registerIndex ?? ''}-${uri.sequenceNumber ?? ''}` : undefined);
      const theirDate = number?.docDate || uri?.receiptOrSigningDate;
      return {
        kind: 'delivered', status: body.status, reply,
        ...(theirNumber ? { theirNumber } : {}), ...(theirDate ? { theirDate } : {}),
        httpStatus: status, replyBytes,
      };
    }
    case 'MSG_Error': {
      if (body.messageGuid && !sameGuid(body.messageGuid, expect.messageGuid)) {
        return unverified('unrelated', `the MSG_Error is about MessageGUID ${body.messageGuid}, we sent ${expect.messageGuid}`,
          status, replyBytes);
      }
      const text = body.description.trim();
      if (isDuplicateMessageGuidText(text)) return { kind: 'duplicate', text, reply, httpStatus: status, replyBytes };
      return {
        kind: 'rejected', reason: 'error-message', code: 'GW_ERR_SEOS_PEER_ERROR', text, peerCode: body.errorType,
        reply, httpStatus: status, replyBytes,
      };
    }
    default:
      return unverified('unrelated', `a ${body.type} is not a reply to Submit`, status, replyBytes);
  }
}

function unverified(
  problem: UnverifiedReplyProblem, detail: string, httpStatus: number, replyBytes?: Buffer, cause?: ErrorCode,
): SubmitOutcome {
  return {
    kind: 'unverified-reply', code: 'GW_ERR_SEOS_REPLY_INVALID', problem, detail, httpStatus,
    ...(cause ? { cause } : {}), ...(replyBytes ? { replyBytes } : {}),
  };
}

function errorCode(err: unknown): ErrorCode | undefined {
  return isGatewayError(err) ? err.code : undefined;
}

/** For the outcome's detail: the code and the technical detail only, never a raw exception text. */
function errorText(err: unknown): string {
  if (isGatewayError(err)) return err.detail ? `${err.code} (${err.detail.slice(0, 300)})` : err.code;
  return err instanceof Error ? err.name : 'unknown error';
}

const OUR_DUPLICATE_TEXT = ERRORS.GW_ERR_SEOS_DUPLICATE_MESSAGE.bg.toLowerCase();

/**
 * Whether an MSG_Error description is the "MessageGUID already received" one: the reference's
 * DuplicateMessageGuid ("Неуспешен – Грешка при подателя. Уникалният идентификатор на съобщението
 * (MessageGUID) съвпада с този на вече получено/изпратено съобщение."), ours (GW_ERR_SEOS_DUPLICATE_MESSAGE),
 * or a similar wording: it must name the message identifier *and* say "already"/"duplicate".
 */
export function isDuplicateMessageGuidText(description: string): boolean {
  const text = description.normalize('NFC').toLowerCase().replace(/\s+/g, ' ');
  if (text.includes(OUR_DUPLICATE_TEXT) || text.includes('gw_err_seos_duplicate_message')) return true;
  const namesIdentifier = /message ?guid|идентификатор(ът|а)? на съобщението/.test(text);
  const saysAlready = /вече|дублира|повторн|already|duplicate/.test(text);
  return namesIdentifier && saysAlready;
}
