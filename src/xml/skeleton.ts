import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { GatewayError } from '../errors/index.ts';
import type { HashName } from '../xmldsig/algorithms.ts';
import { canonicalizeDocument } from '../xmldsig/c14n.ts';
import { DEFAULT_XML_LIMITS, parseXml, type XmlLimits } from './parse.ts';
import type { XmlDocument, XmlElement, XmlText } from './tree.ts';

/**
 * A large XML document held in a file, parsed with memory that does not grow with its base64 content.
 *
 * A streaming scan finds the large text nodes made only of base64 characters and whitespace (the attachment
 * bodies of a SEOS message), records their byte ranges in the file and builds a small *skeleton*: the document
 * with each such run replaced by a short placeholder (24 base64 characters, unique per run and per scan). The
 * safe parser, the schema walk and the message model then work on the skeleton as on any document; what needs the
 * real text reads it from the file:
 *  - canonicalization for a digest streams the run's bytes where its placeholder is. For base64 and whitespace
 *    the canonical form of the text is its raw bytes, except that line ends are normalized (CR LF and a lone CR
 *    become LF), which is done on the fly;
 *  - attachment contents are base64-decoded from the file range in slices.
 *
 * Everything else of the file (markup, small text, anything that is not plain base64) is kept in the skeleton as
 * it is, so the parser sees exactly the bytes it would see in memory and refuses what it would refuse. Runs are
 * externalized only where the caller's `accept` says a large base64 text belongs (SEOS: an AttBody); a run the
 * parser puts anywhere else is kept in the skeleton on a second scan.
 */
export interface ExternalRun {
  readonly index: number;
  /** The run's bytes in the file: [fileStart, fileEnd). */
  readonly fileStart: number;
  readonly fileEnd: number;
  /** Its placeholder in the skeleton: [skeletonStart, skeletonEnd). */
  readonly skeletonStart: number;
  readonly skeletonEnd: number;
  /** The run has CR characters: its value (and canonical form) has LF in their place, CR LF as one LF. */
  readonly hasCr: boolean;
  /** The placeholder text, which the model sees as the element's value (valid base64). */
  readonly placeholder: string;
}

export interface SkeletonOptions {
  readonly limits?: Partial<XmlLimits>;
  /** Runs shorter than this stay in the skeleton. Default 64 KiB. */
  readonly minRunBytes?: number;
  /**
   * Local names (prefix ignored) of the elements whose text may be externalized; the scan does not resolve
   * namespaces, `accept` decides on the parsed tree. Default: any element.
   */
  readonly parentLocalNames?: readonly string[];
  /** Whether a run may stay external as the only text of `parent` in the parsed skeleton. Default: yes. */
  readonly accept?: (parent: XmlElement) => boolean;
}

export interface SkeletonDocument {
  readonly file: string;
  /** Size of the file in bytes and the SHA-256 of its bytes (lowercase hex), computed during the scan. */
  readonly size: number;
  readonly sha256: string;
  /** The parsed skeleton. */
  readonly document: XmlDocument;
  readonly runs: readonly ExternalRun[];
  /** Size of the skeleton in bytes (what the document holds in memory). */
  readonly skeletonBytes: number;
  /** The run a text node of `document` stands for, if it is a placeholder. */
  externalOf(node: XmlText): ExternalRun | undefined;
  /** The run whose placeholder is this text (a model value read from the skeleton), if any. */
  runForPlaceholder(text: Buffer | string): ExternalRun | undefined;
  /** Digest of the canonical form (inclusive C14N 1.0, no comments) of the document, `exclude` left out. */
  canonicalDigest(hash: HashName, exclude?: XmlElement): Promise<Buffer>;
  /** The run's canonical bytes (line ends normalized), in slices read from the file. */
  canonicalRun(run: ExternalRun): AsyncGenerator<Buffer>;
  /** The run's base64-decoded bytes, in slices read from the file. */
  decodeRun(run: ExternalRun): AsyncGenerator<Buffer>;
}

const READ_BYTES = 1024 * 1024;
const DEFAULT_MIN_RUN = 64 * 1024;
/** A scan is repeated (with the runs that cannot stay external kept in the skeleton) at most this often. */
const MAX_SCANS = 3;

/**
 * Parses an XML file through its skeleton. Size and safety limits are those of parseXml (the size applies to the
 * file); every refusal is the GatewayError parseXml gives for the same bytes.
 */
export async function parseXmlFile(file: string, options: SkeletonOptions = {}): Promise<SkeletonDocument> {
  const limits: XmlLimits = { ...DEFAULT_XML_LIMITS, ...options.limits };
  const handle = await openForReading(file);
  let scan: ScanResult | undefined;
  let document: XmlDocument | undefined;
  let size: number;
  try {
    size = (await handle.stat()).size;
    if (size > limits.maxBytes) throw new GatewayError('GW_ERR_XML_TOO_LARGE', `${size} bytes, limit ${limits.maxBytes}`);
    const keep = new Set<number>();
    for (let attempt = 1; ; attempt++) {
      scan = await scanFile(handle, size, options, keep);
      if (scan.keep.length === 0) {
        document = parseXml(scan.skeleton, limits);
        for (const run of misplacedRuns(document, scan.runs, options.accept)) scan.keep.push(run.fileStart);
      }
      if (scan.keep.length === 0) break;
      if (attempt >= MAX_SCANS) throw new GatewayError('GW_ERR_INTERNAL', 'the skeleton of a large message did not settle');
      for (const offset of scan.keep) keep.add(offset);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return makeSkeletonDocument(file, size, scan.sha256, document!, scan.runs, scan.skeleton.length);
}

function makeSkeletonDocument(file: string, size: number, sha256: string, document: XmlDocument, runs: ExternalRun[], skeletonBytes: number): SkeletonDocument {
  const byStart = new Map(runs.map((r) => [r.skeletonStart, r]));
  const byPlaceholder = new Map(runs.map((r) => [r.placeholder, r]));
  const externalOf = (node: XmlText): ExternalRun | undefined => {
    if (node.source !== document.source) return undefined;
    const run = byStart.get(node.start);
    return run && run.skeletonEnd === node.end ? run : undefined;
  };
  const canonicalRun = (run: ExternalRun) => normalizedRun(file, run);
  return {
    file, size, sha256, document, runs, skeletonBytes, externalOf, canonicalRun,
    runForPlaceholder(text) {
      return byPlaceholder.get(typeof text === 'string' ? text : text.toString('latin1'));
    },
    async canonicalDigest(hashName, exclude) {
      const parts: Array<string | Buffer | ExternalRun> = [];
      canonicalizeDocument(document, (chunk) => parts.push(chunk), exclude, { lookup: externalOf, emit: (run) => parts.push(run) });
      const hash = createHash(hashName);
      for (const part of parts) {
        if (typeof part === 'string' || Buffer.isBuffer(part)) hash.update(part);
        else for await (const chunk of canonicalRun(part)) hash.update(chunk);
      }
      return hash.digest();
    },
    decodeRun: (run) => decodedRun(file, run),
  };
}

/** Runs that are not the only text child of an element `accept` allows (or that the parser did not see as text). */
function misplacedRuns(document: XmlDocument, runs: ExternalRun[], accept: SkeletonOptions['accept']): ExternalRun[] {
  if (runs.length === 0) return [];
  const byStart = new Map(runs.map((r) => [r.skeletonStart, r]));
  const placed = new Set<ExternalRun>();
  const misplaced: ExternalRun[] = [];
  const stack: XmlElement[] = [document.root];
  while (stack.length) {
    const el = stack.pop()!;
    for (const child of el.children) {
      if (child.type === 'element') stack.push(child);
      else if (child.type === 'text') {
        const run = byStart.get(child.start);
        if (!run || run.skeletonEnd !== child.end) continue;
        if (el.children.length === 1 && (!accept || accept(el))) placed.add(run);
        else misplaced.push(run);
      }
    }
  }
  for (const run of runs) if (!placed.has(run) && !misplaced.includes(run)) misplaced.push(run);
  return misplaced;
}

// ── the scan ──────────────────────────────────────────────────────────────────────────────────────────────

interface ScanResult {
  readonly skeleton: Buffer;
  readonly runs: ExternalRun[];
  readonly sha256: string;
  /** File offsets of runs that must stay in the skeleton: the scan has to be repeated. */
  readonly keep: number[];
}

const LT = 0x3c, GT = 0x3e, SLASH = 0x2f, BANG = 0x21, QMARK = 0x3f, QUOT = 0x22, APOS = 0x27;
/** Byte classes of a base64 run: 1 alphabet, 2 '=', 3 space/TAB/LF, 4 CR, 0 anything else. */
const CLASS = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') CLASS[c.charCodeAt(0)] = 1;
CLASS[0x3d] = 2;
CLASS[0x20] = 3;
CLASS[0x09] = 3;
CLASS[0x0a] = 3;
CLASS[0x0d] = 4;

/** One text run between two pieces of markup, as the scan follows it. */
class Run {
  kept: Buffer[] = [];
  keptBytes = 0;
  /** Still a candidate for externalizing: eligible parent and nothing but base64 seen. */
  candidate: boolean;
  /** Its bytes are no longer kept: it becomes external, or (if it stops being a candidate) forces a rescan. */
  dropped = false;
  count = 0;
  padding = 0;
  hasCr = false;

  constructor(readonly fileStart: number, candidate: boolean) {
    this.candidate = candidate;
  }

  /** Follows the base64 rules of xsd:base64Binary (parse.ts isBase64); returns false at the first violation. */
  check(buf: Buffer, start: number, end: number): boolean {
    let { count, padding } = this;
    for (let i = start; i < end; i++) {
      const k = CLASS[buf[i]];
      if (k === 1) {
        if (padding > 0) return false;
        count++;
      } else if (k === 2) {
        if (++padding > 2) return false;
      } else if (k === 4) {
        this.hasCr = true;
      } else if (k === 0) {
        return false;
      }
    }
    this.count = count;
    this.padding = padding;
    return true;
  }

  completeBase64(): boolean {
    return this.count > 0 && (this.count + this.padding) % 4 === 0;
  }
}

async function scanFile(handle: fs.promises.FileHandle, size: number, options: SkeletonOptions, keep: Set<number>): Promise<ScanResult> {
  const minRun = options.minRunBytes ?? DEFAULT_MIN_RUN;
  const parents = options.parentLocalNames ? new Set(options.parentLocalNames) : undefined;
  const nonce = randomBytes(12).toString('base64');
  const hash = createHash('sha256');
  const skeleton: Buffer[] = [];
  let skeletonLength = 0;
  const emit = (b: Buffer): void => {
    if (b.length === 0) return;
    skeleton.push(b);
    skeletonLength += b.length;
  };
  const runs: ExternalRun[] = [];
  const rescan: number[] = [];
  const names: string[] = [];

  // One read buffer for the whole scan: nothing keeps a view of it across reads (kept text and markup are copied).
  const chunkBuffer = Buffer.allocUnsafe(Math.min(READ_BYTES, Math.max(size, 1)));
  let window = Buffer.alloc(0);
  let windowStart = 0;
  let pos = 0;
  let readAt = 0;
  let run: Run | undefined;
  /** Resumable state of the markup token starting at `pos` (when it did not end inside the window). */
  let scanFrom = -1;
  let quote = 0;

  const startRun = (at: number): Run => {
    const parent = names[names.length - 1];
    const eligible = parent !== undefined && (!parents || parents.has(parent)) && !keep.has(at);
    return new Run(at, eligible);
  };
  const textSegment = (r: Run, start: number, end: number): void => {
    if (end <= start) return;
    if (r.candidate && !r.check(window, start, end)) {
      r.candidate = false;
      if (r.dropped) rescan.push(r.fileStart);
    }
    if (r.dropped) return;
    r.kept.push(Buffer.from(window.subarray(start, end)));
    r.keptBytes += end - start;
    if (r.candidate && r.keptBytes > minRun) {
      r.kept = [];
      r.dropped = true;
    }
  };
  const endRun = (r: Run, fileEnd: number): void => {
    if (r.dropped) {
      if (!r.candidate) return; // already listed for the rescan
      if (!r.completeBase64()) {
        rescan.push(r.fileStart);
        return;
      }
      const placeholder = nonce + runs.length.toString(36).padStart(8, '0');
      runs.push({
        index: runs.length, fileStart: r.fileStart, fileEnd, skeletonStart: skeletonLength,
        skeletonEnd: skeletonLength + placeholder.length, hasCr: r.hasCr, placeholder,
      });
      emit(Buffer.from(placeholder, 'latin1'));
      return;
    }
    for (const b of r.kept) emit(b);
  };

  for (;;) {
    // Refill: keep what is not consumed yet (an unfinished markup token), append the next slice of the file.
    const eof = readAt >= size;
    if (!eof && (pos >= window.length || scanFrom !== -1)) {
      const rest = pos < window.length ? Buffer.from(window.subarray(pos)) : undefined; // before the buffer is reused
      const chunk = chunkBuffer.subarray(0, Math.min(READ_BYTES, size - readAt));
      let got = 0;
      while (got < chunk.length) {
        const { bytesRead } = await handle.read(chunk, got, chunk.length - got, readAt + got);
        if (bytesRead === 0) throw new GatewayError('GW_ERR_STORE_IO', 'the message file shrank while it was read');
        got += bytesRead;
      }
      hash.update(chunk);
      readAt += got;
      if (scanFrom !== -1) scanFrom -= pos;
      windowStart += pos;
      window = rest ? Buffer.concat([rest, chunk]) : chunk;
      pos = 0;
    }
    const atEnd = readAt >= size;
    if (pos >= window.length && atEnd) break;

    if (scanFrom === -1 && window[pos] !== LT) {
      // Text up to the next '<' (or the end of the window).
      run ??= startRun(windowStart + pos);
      const lt = window.indexOf(LT, pos);
      const end = lt === -1 ? window.length : lt;
      textSegment(run, pos, end);
      pos = end;
      if (lt === -1) {
        if (atEnd) {
          endRun(run, windowStart + pos);
          run = undefined;
        }
        continue;
      }
      endRun(run, windowStart + pos);
      run = undefined;
    }

    // Markup from `pos` (window[pos] is '<'): find its end, resuming where the previous window stopped.
    const tokenEnd = markupEnd(window, pos, scanFrom === -1 ? pos + 1 : scanFrom, quote);
    if (tokenEnd.end === -1) {
      if (atEnd) {
        emit(Buffer.from(window.subarray(pos))); // unterminated: the parser names the error
        pos = window.length;
        scanFrom = -1;
        break;
      }
      scanFrom = tokenEnd.resume;
      quote = tokenEnd.quote;
      continue;
    }
    scanFrom = -1;
    quote = 0;
    const token = window.subarray(pos, tokenEnd.end);
    emit(Buffer.from(token));
    trackElement(token, names);
    pos = tokenEnd.end;
  }
  if (run) endRun(run, windowStart + pos);
  return { skeleton: Buffer.concat(skeleton, skeletonLength), runs: rescan.length ? [] : runs, sha256: hash.digest('hex'), keep: rescan };
}

/**
 * The end (one past '>') of the markup token at `start`, or -1 with where to resume and the quote state when the
 * window ends first. Comments, CDATA sections and processing instructions end at their terminator; a tag at the
 * first '>' outside a quoted attribute value, as the parser reads it.
 */
function markupEnd(buf: Buffer, start: number, from: number, quote: number): { end: number; resume: number; quote: number } {
  const second = buf[start + 1];
  if (second === BANG || second === QMARK) {
    if (buf.length - start < 9) return { end: -1, resume: start + 1, quote: 0 };
    const terminator = second === QMARK ? '?>' : startsWith(buf, start, '<!--') ? '-->' : startsWith(buf, start, '<![CDATA[') ? ']]>' : '>';
    const minFrom = start + (terminator === '-->' ? 4 : terminator === ']]>' ? 9 : 2);
    const at = buf.indexOf(terminator, Math.max(from, minFrom));
    if (at !== -1) return { end: at + terminator.length, resume: 0, quote: 0 };
    return { end: -1, resume: Math.max(minFrom, buf.length - terminator.length + 1), quote: 0 };
  }
  let q = quote;
  for (let i = from; i < buf.length; i++) {
    const b = buf[i];
    if (q) {
      if (b === q) q = 0;
    } else if (b === QUOT || b === APOS) {
      q = b;
    } else if (b === GT) {
      return { end: i + 1, resume: 0, quote: 0 };
    }
  }
  return { end: -1, resume: buf.length, quote: q };
}

/** Keeps the stack of open elements' local names, which tells the scan the parent of the next text run. */
function trackElement(token: Buffer, names: string[]): void {
  const second = token[1];
  if (second === BANG || second === QMARK) return;
  if (second === SLASH) {
    names.pop();
    return;
  }
  if (token[token.length - 2] === SLASH) return; // <empty/>
  let end = 1;
  while (end < token.length && !isNameEnd(token[end])) end++;
  const qname = token.toString('utf8', 1, end);
  names.push(qname.slice(qname.indexOf(':') + 1));
}

function isNameEnd(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === SLASH || b === GT;
}

function startsWith(buf: Buffer, at: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (buf[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

// ── reading runs back ─────────────────────────────────────────────────────────────────────────────────────

async function openForReading(file: string): Promise<fs.promises.FileHandle> {
  try {
    return await fs.promises.open(file, 'r');
  } catch (cause) {
    throw new GatewayError('GW_ERR_STORE_IO', `cannot open the message file (${(cause as NodeJS.ErrnoException).code ?? 'error'})`, { cause });
  }
}

/**
 * The raw bytes of [start, end) of the file, in slices of at most 1 MiB. Each slice is a view of one reused
 * buffer, valid until the next one is asked for (a large message is read several times: fresh buffers would pile
 * up as garbage faster than the collector returns them, and show as RSS).
 */
export async function* readRange(file: string, start: number, end: number): AsyncGenerator<Buffer> {
  const handle = await openForReading(file);
  try {
    const buffer = Buffer.allocUnsafe(Math.max(1, Math.min(READ_BYTES, end - start)));
    for (let at = start; at < end;) {
      const chunk = buffer.subarray(0, Math.min(buffer.length, end - at));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, at);
      if (bytesRead === 0) throw new GatewayError('GW_ERR_STORE_IO', 'the message file shrank while it was read');
      at += bytesRead;
      yield bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The run's bytes with CR LF and lone CR turned into LF (XML line-end normalization); raw when it has no CR. */
async function* normalizedRun(file: string, run: ExternalRun): AsyncGenerator<Buffer> {
  if (!run.hasCr) {
    yield* readRange(file, run.fileStart, run.fileEnd);
    return;
  }
  let afterCr = false;
  const outBuffer = Buffer.allocUnsafe(Math.min(READ_BYTES, run.fileEnd - run.fileStart));
  for await (const chunk of readRange(file, run.fileStart, run.fileEnd)) {
    const out = outBuffer;
    let w = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (b === 0x0a && afterCr) {
        afterCr = false;
        continue;
      }
      afterCr = b === 0x0d;
      out[w++] = afterCr ? 0x0a : b;
    }
    if (w > 0) yield out.subarray(0, w);
  }
}

/**
 * The run's base64 value decoded, whitespace skipped, in slices (groups of four characters never split), each a
 * view of one reused buffer valid until the next is asked for. The text is decoded in 48 KiB strings: small
 * strings die young, large ones would wait in the old generation for a full collection.
 */
async function* decodedRun(file: string, run: ExternalRun): AsyncGenerator<Buffer> {
  const out = Buffer.allocUnsafe(Math.ceil(Math.min(READ_BYTES, run.fileEnd - run.fileStart) / 4) * 3 + 3);
  let carry = '';
  for await (const chunk of readRange(file, run.fileStart, run.fileEnd)) {
    let w = 0;
    for (let at = 0; at < chunk.length; at += DECODE_SLICE) {
      let piece = carry + chunk.toString('latin1', at, Math.min(at + DECODE_SLICE, chunk.length));
      if (/[ \t\r\n]/.test(piece)) piece = piece.replace(/[ \t\r\n]+/g, '');
      const usable = piece.length - (piece.length % 4);
      carry = piece.slice(usable);
      if (usable > 0) w += out.write(usable === piece.length ? piece : piece.slice(0, usable), w, 'base64');
    }
    if (w > 0) yield out.subarray(0, w);
  }
  if (carry) yield Buffer.from(carry, 'base64');
}

const DECODE_SLICE = 48 * 1024;
