import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GatewayError } from '../../errors/index.ts';
import { parseXml, type XmlLimits } from '../../xml/parse.ts';
import { elementText, type XmlElement } from '../../xml/tree.ts';
import {
  MAX_TAG_BYTES, PLACEHOLDER_BLANK, PLACEHOLDER_TEXT, decodeCdata, decodeCharacterData, isBlank, submitRequestElement,
  tagEnd, xmlMalformed, type Envelope,
} from './envelope.ts';

/**
 * parseSubmitRequest for a body too large to hold in memory: the HTTP body is read as it arrives, the escaped text
 * of Submit/request is unescaped on the fly into a file, and the envelope is checked exactly as parseSubmitRequest
 * checks it (UTF-8, no DOCTYPE or entities, SOAP 1.1 Envelope, optional Header, Body with one Submit of the
 * messaging namespace holding one request of text), on a skeleton in which each run of character data is a
 * one-byte placeholder. Memory holds one slice of the body and the envelope's markup.
 *
 * The size limit is enforced while the body streams in; a body over it is refused with GW_ERR_XML_TOO_LARGE even
 * when something earlier was wrong too (the in-memory path checks the size first), so the rest of a refused body
 * is still read (and discarded) up to the limit.
 */
export interface ExtractedSubmit {
  /** A file holding the SEOS message: the bytes parseSubmitRequest would return. The caller removes it. */
  readonly file: string;
  readonly size: number;
  /** SHA-256 (lowercase hex) of the message bytes. */
  readonly sha256: string;
  /** Bytes of the HTTP body read. */
  readonly bodyBytes: number;
}

export interface ExtractSubmitOptions {
  /** Folder for the message file (created if missing). */
  readonly dir: string;
  /** As for parseSubmitRequest: `maxBytes` is the limit on the body, the rest bounds the envelope's parse. */
  readonly limits?: Partial<XmlLimits>;
}

/**
 * Reads a Submit request body from `body` (an HTTP request stream) into a message file. The stream is never
 * destroyed: after a refusal the rest of it is left flowing (discarded), so the caller can still answer on the
 * same connection.
 */
export async function extractSubmitRequest(body: Readable, options: ExtractSubmitOptions): Promise<ExtractedSubmit> {
  const maxBytes = options.limits?.maxBytes ?? Number.POSITIVE_INFINITY;
  fs.mkdirSync(options.dir, { recursive: true, mode: 0o700 });
  const file = path.join(options.dir, `submit-${process.pid}-${randomBytes(8).toString('hex')}.xml`);
  const handle = await fs.promises.open(file, 'wx', 0o600);
  const scanner = new SubmitScanner(options.limits);
  const hash = createHash('sha256');
  let size = 0;
  let bodyBytes = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      let failure: unknown;
      let settled = false;
      const finish = (error?: unknown) => {
        if (settled) return;
        settled = true;
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onError);
        body.off('aborted', onAborted);
        body.resume(); // anything left is read and discarded: the reply can still go out on this connection
        if (error) reject(error);
        else resolve();
      };
      const onData = (chunk: Buffer) => {
        bodyBytes += chunk.length;
        if (bodyBytes > maxBytes) {
          finish(new GatewayError('GW_ERR_XML_TOO_LARGE', `more than ${maxBytes} bytes`));
          return;
        }
        if (failure) return; // draining: only the size can still change the answer
        let pieces: Buffer[];
        try {
          pieces = scanner.push(chunk);
        } catch (error) {
          failure = error;
          return;
        }
        if (pieces.length === 0) return;
        body.pause();
        writeAll(handle, pieces, hash).then((n) => {
          size += n;
          if (!settled) body.resume();
        }, (error) => finish(storeError(error)));
      };
      const onEnd = () => {
        if (failure) return finish(failure);
        try {
          const pieces = scanner.end();
          writeAll(handle, pieces, hash).then((n) => {
            size += n;
            finish();
          }, (error) => finish(storeError(error)));
        } catch (error) {
          finish(error);
        }
      };
      const onError = (error: Error) => finish(new GatewayError('GW_ERR_SOAP_MALFORMED', `the request body could not be read (${error.message.slice(0, 100)})`));
      const onAborted = () => finish(new GatewayError('GW_ERR_SOAP_MALFORMED', 'the request body ended early'));
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onError);
      body.on('aborted', onAborted);
      body.resume();
    });
    await handle.close();
    return { file, size, sha256: hash.digest('hex'), bodyBytes };
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.promises.rm(file, { force: true }).catch(() => undefined);
    throw error;
  }
}

async function writeAll(handle: fs.promises.FileHandle, pieces: Buffer[], hash: ReturnType<typeof createHash>): Promise<number> {
  let total = 0;
  for (const p of pieces) {
    hash.update(p);
    total += p.length;
  }
  if (total === 0) return 0;
  const joined = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, total);
  for (let offset = 0; offset < joined.length;) offset += (await handle.write(joined, offset, joined.length - offset)).bytesWritten;
  return total;
}

function storeError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  return new GatewayError('GW_ERR_STORE_IO', `cannot write the message file${code ? ` (${code})` : ''}`, { cause: error });
}

// ── the scanner ───────────────────────────────────────────────────────────────────────────────────────────

/** A run of character data: its placeholder's offset in the skeleton, whether it is blank, whether it went to the file. */
interface StreamRun {
  readonly skeletonAt: number;
  blank: boolean;
  readonly toFile: boolean;
}

const LT = 0x3c, GT = 0x3e, AMP = 0x26, CR = 0x0d, SEMI = 0x3b, RSQB = 0x5d;
/** The local names from the root down to the element whose text is the message. */
const REQUEST_PATH = ['Envelope', 'Body', 'Submit', 'request'];
/** Longest reference decodeCharacterData accepts: '&' + 40 bytes up to ';'. */
const MAX_REFERENCE = 41;

type State =
  | { kind: 'text' }
  | { kind: 'comment'; from: number }
  | { kind: 'cdata' };

/**
 * The push-driven scan behind extractSubmitRequest, the streaming twin of envelope.ts's scanEnvelope. `push`
 * returns the decoded pieces of Submit/request found in the bytes so far; `end` finishes, parses the skeleton and
 * checks the envelope (throwing what parseSubmitRequest would throw).
 */
export class SubmitScanner {
  constructor(private readonly limits: Partial<XmlLimits> = {}) {}

  private window: Buffer = Buffer.alloc(0);
  /** Bytes at the end of the previous push that are not a whole UTF-8 character yet. */
  private partial: Buffer = Buffer.alloc(0);
  private offset = 0; // body offset of window[0], for error messages
  private started = false;
  private bomLength = 0;
  private state: State = { kind: 'text' };
  private depth = 0;
  private readonly names: string[] = [];
  private readonly skeleton: Buffer[] = [];
  private skeletonLength = 0;
  private readonly runs: StreamRun[] = [];
  private run: StreamRun | undefined;
  private out: Buffer[] = [];

  push(chunk: Buffer): Buffer[] {
    let data = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    if (!this.started) {
      if (data.length < 3) {
        this.partial = Buffer.from(data);
        return [];
      }
      data = data.subarray(this.begin(data));
    }
    // Only whole UTF-8 characters go on; a sequence cut by the chunk boundary waits for the next chunk.
    const cut = utf8Boundary(data);
    this.partial = Buffer.from(data.subarray(cut));
    data = data.subarray(0, cut);
    if (!isUtf8(data)) throw new GatewayError('GW_ERR_XML_ENCODING', 'the input is not valid UTF-8');
    this.window = this.window.length ? Buffer.concat([this.window, data]) : data;
    this.scan(false);
    return this.take();
  }

  end(): Buffer[] {
    if (!this.started) {
      const data = this.partial;
      this.partial = Buffer.alloc(0);
      this.window = data.subarray(this.begin(data));
    }
    if (this.partial.length) throw new GatewayError('GW_ERR_XML_ENCODING', 'the input is not valid UTF-8');
    if (!isUtf8(this.window)) throw new GatewayError('GW_ERR_XML_ENCODING', 'the input is not valid UTF-8');
    this.scan(true);
    if (this.state.kind === 'comment') throw xmlMalformed('unterminated comment', this.offset);
    if (this.state.kind === 'cdata') throw xmlMalformed('unterminated CDATA section', this.offset);
    if (this.run) this.endRun();
    const pieces = this.take();
    this.checkEnvelope();
    return pieces;
  }

  /** Checks the byte order mark; returns how many bytes it takes (the BOM goes to the skeleton as it is). */
  private begin(data: Buffer): number {
    this.started = true;
    if (data.length >= 2 && ((data[0] === 0xfe && data[1] === 0xff) || (data[0] === 0xff && data[1] === 0xfe))) {
      throw new GatewayError('GW_ERR_XML_ENCODING', 'UTF-16 byte order mark');
    }
    if (data.length >= 3 && data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) {
      this.bomLength = 3;
      this.emit(Buffer.from(data.subarray(0, 3)));
      this.offset = 3;
      return 3;
    }
    return 0;
  }

  private take(): Buffer[] {
    const out = this.out;
    this.out = [];
    return out;
  }

  private emit(b: Buffer): void {
    this.skeleton.push(b);
    this.skeletonLength += b.length;
  }

  private inRequest(): boolean {
    const n = this.names;
    return n.length === REQUEST_PATH.length && n.every((name, i) => name === REQUEST_PATH[i]);
  }

  /** A piece of a run of character data (already decoded). */
  private text(value: Buffer): void {
    if (!this.run) {
      this.run = { skeletonAt: this.skeletonLength, blank: true, toFile: this.inRequest() };
      this.runs.push(this.run);
    }
    if (value.length === 0) return;
    if (this.run.blank && !isBlank(value)) this.run.blank = false;
    if (this.run.toFile) this.out.push(value);
  }

  private endRun(): void {
    const run = this.run!;
    this.emit(run.blank ? PLACEHOLDER_BLANK : PLACEHOLDER_TEXT);
    this.run = undefined;
  }

  /** Consumes as much of the window as can be decided; what is left waits for more bytes (or is an error at the end). */
  private scan(final: boolean): void {
    const body = this.window;
    let pos = 0;
    for (;;) {
      const state = this.state;
      if (state.kind === 'text') {
        const lt = body.indexOf(LT, pos);
        const textEnd = lt === -1 ? body.length : lt;
        if (textEnd > pos) {
          const cut = lt === -1 && !final ? safeTextEnd(body, pos, textEnd) : textEnd;
          if (cut > pos) this.text(decodeCharacterData(body, pos, cut));
          pos = cut;
          if (cut < textEnd) break; // the rest of this text waits for the next bytes
        }
        if (lt === -1) break;
        if (this.run) this.endRun();
        const next = this.markup(body, lt, final);
        if (next === -1) {
          pos = lt;
          break;
        }
        pos = next;
      } else if (state.kind === 'comment') {
        // Comments are dropped; "--" may only appear as the start of "-->".
        const dashes = body.indexOf('--', Math.max(pos, state.from));
        if (dashes === -1 || dashes + 2 >= body.length) {
          if (final) throw xmlMalformed('unterminated comment', this.offset + pos);
          pos = dashes === -1 ? Math.max(pos, body.length - 1) : dashes;
          this.state = { kind: 'comment', from: 0 };
          break;
        }
        if (body[dashes + 2] !== GT) throw xmlMalformed('"--" inside a comment', this.offset + dashes);
        pos = dashes + 3;
        this.state = { kind: 'text' };
      } else if (state.kind === 'cdata') {
        const end = body.indexOf(']]>', pos);
        const stop = end === -1 ? Math.max(pos, body.length - 2) : end;
        let cut = stop;
        if (end === -1 && cut > pos && body[cut - 1] === CR) cut--; // CR LF must be seen together
        if (cut > pos) this.text(decodeCdata(body, pos, cut));
        pos = cut;
        if (end === -1) {
          if (final) throw xmlMalformed('unterminated CDATA section', this.offset + pos);
          break;
        }
        pos = end + 3;
        if (this.run) this.endRun(); // a CDATA section is a run of its own, as in scanEnvelope
        this.state = { kind: 'text' };
      }
    }
    this.offset += pos;
    this.window = pos >= body.length ? Buffer.alloc(0) : Buffer.from(body.subarray(pos));
  }

  /** Handles the markup at `lt`; returns where text resumes, or -1 when the window ends first. */
  private markup(body: Buffer, lt: number, final: boolean): number {
    if (lt + 9 > body.length && !final) return -1;
    const at = this.offset + lt;
    const next = body[lt + 1];
    if (next === 0x21 /* ! */) {
      if (startsWith(body, lt, '<!--')) {
        this.state = { kind: 'comment', from: lt + 4 };
        return lt + 4;
      }
      if (startsWith(body, lt, '<![CDATA[')) {
        if (this.depth === 0) throw xmlMalformed('CDATA section outside the root element', at);
        this.state = { kind: 'cdata' };
        return lt + 9;
      }
      for (const decl of ['<!DOCTYPE', '<!ENTITY', '<!ELEMENT', '<!ATTLIST', '<!NOTATION']) {
        if (startsWith(body, lt, decl)) throw new GatewayError('GW_ERR_XML_DOCTYPE', `at byte ${at}`);
      }
      throw xmlMalformed('unexpected "<!"', at);
    }
    if (next === 0x3f /* ? */) {
      if (startsWith(body, lt, '<?xml') && (body[lt + 5] === 0x3f || isBlank(body.subarray(lt + 5, lt + 6))) && at !== this.bomLength) {
        throw xmlMalformed('XML declaration not at the start of the document', at);
      }
      const end = body.indexOf('?>', lt + 2);
      if (end === -1) {
        if (final) throw xmlMalformed('unterminated processing instruction', at);
        if (body.length - lt > MAX_TAG_BYTES) throw xmlMalformed(`a processing instruction longer than ${MAX_TAG_BYTES} bytes`, at);
        return -1;
      }
      this.emit(Buffer.from(body.subarray(lt, end + 2)));
      return end + 2;
    }
    const { i, limit } = tagEnd(body, lt);
    if (i >= limit) {
      if (i >= body.length && !final) return -1;
      throw xmlMalformed(i >= body.length ? 'unterminated tag' : `a tag longer than ${MAX_TAG_BYTES} bytes`, at);
    }
    const tag = body.subarray(lt, i + 1);
    this.emit(Buffer.from(tag));
    if (next === 0x2f /* / */) {
      this.depth--;
      this.names.pop();
    } else if (body[i - 1] !== 0x2f) {
      this.depth++;
      this.names.push(localName(tag));
    }
    return i + 1;
  }

  /** Parses the skeleton and runs parseSubmitRequest's checks; the runs inside request must be those written out. */
  private checkEnvelope(): void {
    const doc = parseXml(Buffer.concat(this.skeleton, this.skeletonLength), this.limits);
    const envelope: Envelope = {
      doc,
      textOf() {
        throw new GatewayError('GW_ERR_INTERNAL', 'the streamed envelope keeps no text but the message');
      },
      isBlank(el) {
        return elementText(el).trim() === '';
      },
    };
    const request = submitRequestElement(envelope);
    for (const run of this.runs) {
      const inside = run.skeletonAt >= request.start && run.skeletonAt < request.end;
      if (inside !== run.toFile) throw new GatewayError('GW_ERR_SOAP_MALFORMED', 'Submit/request is not where the streamed body had it');
    }
  }
}

/**
 * The end of the text that can be decoded now when `end` is not the end of the run: a reference, a CR (which may
 * be followed by LF) or a "]]" (which may be followed by ">") at the very end wait for the next bytes.
 */
function safeTextEnd(buf: Buffer, start: number, end: number): number {
  let cut = end;
  const amp = buf.lastIndexOf(AMP, end - 1);
  if (amp >= start && amp >= end - MAX_REFERENCE && buf.indexOf(SEMI, amp) === -1) cut = amp;
  for (let k = 0; k < 3 && cut > start && (buf[cut - 1] === CR || buf[cut - 1] === RSQB); k++) cut--;
  return cut;
}

/** The largest prefix length of `buf` that ends on a UTF-8 character boundary. */
function utf8Boundary(buf: Buffer): number {
  let i = buf.length;
  // Step back over at most three continuation bytes to the lead byte of the last character.
  let k = 0;
  while (k < 3 && i - k - 1 >= 0 && (buf[i - k - 1] & 0xc0) === 0x80) k++;
  const leadAt = i - k - 1;
  if (leadAt < 0) return i;
  const lead = buf[leadAt];
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return k + 1 < need ? leadAt : i;
}

function localName(tag: Buffer): string {
  let end = 1;
  while (end < tag.length && ![0x20, 0x09, 0x0a, 0x0d, 0x2f, GT].includes(tag[end])) end++;
  const qname = tag.toString('utf8', 1, end);
  return qname.slice(qname.indexOf(':') + 1);
}

function startsWith(buf: Buffer, at: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (buf[at + i] !== s.charCodeAt(i)) return false;
  return true;
}
