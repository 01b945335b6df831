import { isUtf8 } from 'node:buffer';
import { GatewayError } from '../../errors/index.ts';
import { parseXml, type XmlLimits } from '../../xml/parse.ts';
import { childElements, elementText, type XmlDocument, type XmlElement } from '../../xml/tree.ts';

/**
 * The SEOS transport envelope: SOAP 1.1, document/literal wrapped (EgovEndpoint.wsdl). The whole signed SEOS
 * message travels as the *text* of Submit/request (and a reply as the text of SubmitResponse/SubmitResult), so
 * the one thing that must never go wrong is that the inner bytes come out exactly as they went in: the
 * signature covers them.
 *
 * Messages carry inline base64 attachments of hundreds of MiB, so nothing here turns the inner text into a JS
 * string: escaping and unescaping are `indexOf` scans over Buffers that copy slices, and the envelope is parsed
 * with our safe parser over a *skeleton* in which every run of character data is replaced by a one-byte
 * placeholder (the runs themselves are checked and decoded here, linearly). The parser therefore sees only the
 * markup (DOCTYPE, namespaces, nesting, attributes are all its business) and never builds a string of the payload.
 */
export const SOAP11_ENVELOPE_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP12_ENVELOPE_NS = 'http://www.w3.org/2003/05/soap-envelope';
export const SEOS_SERVICE_NS = 'http://services.egov.bg/messaging/';
export const SUBMIT_ACTION = 'http://services.egov.bg/messaging/IEGovService/Submit';
export const SUBMIT_RESPONSE_ACTION = 'http://services.egov.bg/messaging/IEGovService/SubmitResponse';
/** The SOAP 1.1 content type (basicHttpBinding); the SOAPAction header goes with it, quoted. */
export const SOAP11_CONTENT_TYPE = 'text/xml; charset=utf-8';

const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

export type SubmitResponse =
  | { readonly kind: 'message'; readonly message: Buffer }
  | { readonly kind: 'empty' }
  | { readonly kind: 'fault'; readonly code: string; readonly text: string };

export interface SoapFault {
  readonly code: 'Client' | 'Server';
  /** Bulgarian text from the caller; what the peer's operator will read. */
  readonly text: string;
}

// ── building ──────────────────────────────────────────────────────────────────────────────────────────────

const REQUEST_HEAD = Buffer.from(
  `<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Body><Submit xmlns="${SEOS_SERVICE_NS}"><request>`, 'utf8');
const REQUEST_TAIL = Buffer.from('</request></Submit></s:Body></s:Envelope>', 'utf8');
const RESPONSE_HEAD = Buffer.from(
  `<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Body><SubmitResponse xmlns="${SEOS_SERVICE_NS}"><SubmitResult>`, 'utf8');
const RESPONSE_TAIL = Buffer.from('</SubmitResult></SubmitResponse></s:Body></s:Envelope>', 'utf8');
const RESPONSE_EMPTY = Buffer.from(
  `<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Body><SubmitResponse xmlns="${SEOS_SERVICE_NS}"><SubmitResult/>`
  + '</SubmitResponse></s:Body></s:Envelope>', 'utf8');

/**
 * The Submit request as a list of slices: the envelope head, the escaped message (slices of `message` itself
 * between short replacement strings) and the tail. The client writes these straight to the socket, so a
 * 300 MiB message is never copied into a second 300 MiB buffer. The slices share memory with `message`.
 */
export function submitRequestParts(message: Buffer): Buffer[] {
  return [REQUEST_HEAD, ...escapeParts(message, 'message'), REQUEST_TAIL];
}

/** `<s:Envelope><s:Body><Submit><request>` + the message as escaped text + the end tags. */
export function buildSubmitRequest(message: Buffer): Buffer {
  return concatParts(submitRequestParts(message));
}

/** A SubmitResponse whose SubmitResult is the escaped reply message, or empty for `null` (or an empty buffer). */
export function buildSubmitResponse(result: Buffer | null): Buffer {
  if (result === null || result.length === 0) return Buffer.from(RESPONSE_EMPTY);
  return concatParts([RESPONSE_HEAD, ...escapeParts(result, 'result'), RESPONSE_TAIL]);
}

/**
 * A SOAP 1.1 Fault (faultcode s:Client or s:Server, faultstring in Bulgarian). Characters XML cannot carry
 * are replaced by U+FFFD instead of failing: a fault is built on an error path and must always come out.
 */
export function buildSoapFault(fault: SoapFault): Buffer {
  if (fault.code !== 'Client' && fault.code !== 'Server') {
    throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `SOAP fault code must be Client or Server, not "${String(fault.code).slice(0, 40)}"`);
  }
  // Lone surrogates already become U+FFFD in Buffer.from; control characters and U+FFFE/U+FFFF are replaced here.
  // eslint-disable-next-line no-control-regex
  const text = Buffer.from(String(fault.text).replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD'), 'utf8');
  return concatParts([
    Buffer.from(`<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Body><s:Fault><faultcode>s:${fault.code}</faultcode>`
      + '<faultstring xml:lang="bg-BG">', 'utf8'),
    ...(text.length ? escapeParts(text, 'fault text') : []),
    Buffer.from('</faultstring></s:Fault></s:Body></s:Envelope>', 'utf8'),
  ]);
}

const LT = 0x3c, GT = 0x3e, AMP = 0x26, CR = 0x0d, LF = 0x0a, TAB = 0x09, SEMI = 0x3b;
const ESC_LT = Buffer.from('&lt;'), ESC_GT = Buffer.from('&gt;'), ESC_AMP = Buffer.from('&amp;'), ESC_CR = Buffer.from('&#xD;');

/**
 * Escapes `bytes` as XML character data: `&lt; &gt; &amp;`, and CR as `&#xD;` so it survives line-end
 * normalization. LF and TAB stay literal. The input must be UTF-8 without characters XML 1.0 forbids (those
 * cannot be carried by any escaping). Four `indexOf` cursors, each advanced only past what it found: linear.
 */
export function escapeParts(bytes: Buffer, what: string): Buffer[] {
  if (bytes.length === 0) throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `the ${what} is empty`);
  if (!isUtf8(bytes)) throw new GatewayError('GW_ERR_XML_ENCODING', `the ${what} is not valid UTF-8`);
  const bad = findForbiddenByte(bytes, 0, bytes.length);
  if (bad !== -1) throw new GatewayError('GW_ERR_XML_INVALID_CHAR', `in the ${what} at byte ${bad}`);

  return escapeBytes(bytes);
}

/** The escaping of escapeParts without its checks, for bytes already known to be valid (our own archive). */
export function escapeBytes(bytes: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  const specials = [LT, GT, AMP, CR];
  const replacement = [ESC_LT, ESC_GT, ESC_AMP, ESC_CR];
  const next = specials.map((b) => bytes.indexOf(b));
  let pos = 0;
  for (;;) {
    let which = -1;
    for (let k = 0; k < 4; k++) if (next[k] !== -1 && (which === -1 || next[k] < next[which])) which = k;
    if (which === -1) break;
    const at = next[which];
    if (at > pos) parts.push(bytes.subarray(pos, at));
    parts.push(replacement[which]);
    pos = at + 1;
    next[which] = bytes.indexOf(specials[which], pos);
  }
  if (pos < bytes.length) parts.push(bytes.subarray(pos));
  return parts;
}

function concatParts(parts: Buffer[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  return Buffer.concat(parts, length);
}

/**
 * The offset of the first byte that cannot appear in XML 1.0 character data (C0 controls other than TAB, LF,
 * CR, and the UTF-8 forms of U+FFFE/U+FFFF), or -1. Control bytes are looked for four bytes at a time (a word
 * holds a byte below 0x20 exactly when `(x - 0x20202020) & ~x & 0x80808080` is non-zero); a per-byte loop is
 * about four times slower on a 300 MiB body.
 */
export function findForbiddenByte(buf: Buffer, start: number, end: number): number {
  let i = start;
  const misalign = (4 - ((buf.byteOffset + i) & 3)) & 3;
  for (const stop = Math.min(end, i + misalign); i < stop; i++) if (isForbiddenControl(buf[i])) return i;
  const words = (end - i) >>> 2;
  if (words > 0) {
    const view = new Uint32Array(buf.buffer, buf.byteOffset + i, words);
    for (let k = 0; k < words; k++) {
      const x = view[k];
      if ((((x - 0x20202020) | 0) & ~x & 0x80808080) !== 0) {
        const base = i + k * 4;
        for (let j = base; j < base + 4; j++) if (isForbiddenControl(buf[j])) return j;
      }
    }
    i += words * 4;
  }
  for (; i < end; i++) if (isForbiddenControl(buf[i])) return i;
  // U+FFFE and U+FFFF are EF BF BE and EF BF BF. The search stays inside [start, end): a body has many runs.
  const range = buf.subarray(start, end);
  for (let at = range.indexOf(NONCHAR_LEAD); at !== -1; at = range.indexOf(NONCHAR_LEAD, at + 1)) {
    if (range[at + 2] === 0xbe || range[at + 2] === 0xbf) return start + at;
  }
  return -1;
}

const NONCHAR_LEAD = Buffer.from([0xef, 0xbf]);

function isForbiddenControl(b: number): boolean {
  return b < 0x20 && b !== TAB && b !== LF && b !== CR;
}

// ── parsing ───────────────────────────────────────────────────────────────────────────────────────────────

/**
 * The exact bytes of the SEOS message in Submit/request. Refuses (GW_ERR_SOAP_MALFORMED, naming what is wrong)
 * anything but a SOAP 1.1 Envelope with an optional Header and a Body holding exactly one
 * {http://services.egov.bg/messaging/}Submit with exactly one request of text content. XML safety errors
 * (DOCTYPE, entities, size, depth, encoding) come from the parser with their own codes.
 */
export function parseSubmitRequest(body: Buffer, limits: Partial<XmlLimits> = {}): Buffer {
  const envelope = scanEnvelope(body, limits);
  return envelope.textOf(submitRequestElement(envelope));
}

/**
 * The checks of parseSubmitRequest over a scanned envelope (in memory here, streamed in submit-stream.ts):
 * returns the Submit/request element whose text is the SEOS message.
 */
export function submitRequestElement(envelope: Envelope): XmlElement {
  const payload = soapBodyPayload(envelope, 'request');
  if (payload.ns !== SEOS_SERVICE_NS || payload.local !== 'Submit') {
    throw malformed(`expected {${SEOS_SERVICE_NS}}Submit in the Body, found ${describe(payload)}`);
  }
  const request = onlyChild(envelope, payload, 'request', true)!;
  if (isNil(request)) throw malformed('Submit/request is nil; it must carry the SEOS message');
  if (envelope.isBlank(request)) throw malformed('Submit/request is empty; it must carry the SEOS message as escaped text');
  return request;
}

/**
 * A Submit reply: the message in SubmitResponse/SubmitResult, `empty` (SubmitResult empty, whitespace only,
 * nil or absent: the WSDL makes it optional and nillable) or a SOAP 1.1 Fault (faultcode's local name, e.g.
 * "Client", "Server" or WCF's "InternalServiceFault", and faultstring; detail is deliberately not surfaced,
 * WCF puts stack traces there).
 */
export function parseSubmitResponse(body: Buffer, limits: Partial<XmlLimits> = {}): SubmitResponse {
  const envelope = scanEnvelope(body, limits);
  const payload = soapBodyPayload(envelope, 'response');
  if (payload.ns === SOAP11_ENVELOPE_NS && payload.local === 'Fault') return readFault(envelope, payload);
  if (payload.ns !== SEOS_SERVICE_NS || payload.local !== 'SubmitResponse') {
    throw malformed(`expected {${SEOS_SERVICE_NS}}SubmitResponse or a SOAP Fault in the Body, found ${describe(payload)}`);
  }
  const result = onlyChild(envelope, payload, 'SubmitResult', false);
  if (!result || isNil(result) || envelope.isBlank(result)) return { kind: 'empty' };
  return { kind: 'message', message: envelope.textOf(result) };
}

function readFault(envelope: Envelope, fault: XmlElement): SubmitResponse {
  let code: XmlElement | undefined, text: XmlElement | undefined;
  for (const child of childElements(fault)) {
    // SOAP 1.1 has these unqualified; some stacks qualify them with the envelope namespace. Both are accepted.
    if (child.ns !== '' && child.ns !== SOAP11_ENVELOPE_NS) continue;
    if (child.local === 'faultcode') {
      if (code) throw malformed('Fault has two faultcode elements');
      code = child;
    } else if (child.local === 'faultstring') {
      if (text) throw malformed('Fault has two faultstring elements');
      text = child;
    }
  }
  if (!code) throw malformed('Fault without faultcode');
  if (!text) throw malformed('Fault without faultstring');
  if (childElements(code).length || childElements(text).length) throw malformed('faultcode and faultstring must be text');
  const qname = envelope.textOf(code).toString('utf8').trim();
  return { kind: 'fault', code: qname.slice(qname.indexOf(':') + 1), text: envelope.textOf(text).toString('utf8').trim() };
}

/** Envelope → (Header) → Body → its single element child, which is returned. */
function soapBodyPayload(envelope: Envelope, what: 'request' | 'response'): XmlElement {
  const root = envelope.doc.root;
  if (root.local === 'Envelope' && root.ns === SOAP12_ENVELOPE_NS) {
    throw malformed(`a SOAP 1.2 envelope; the SEOS ${what} must be SOAP 1.1 (${SOAP11_ENVELOPE_NS})`);
  }
  if (root.local !== 'Envelope' || root.ns !== SOAP11_ENVELOPE_NS) {
    throw malformed(`the root is ${describe(root)}, expected {${SOAP11_ENVELOPE_NS}}Envelope`);
  }
  if (!envelope.isBlank(root)) throw malformed('text directly inside Envelope');
  const parts = childElements(root);
  let index = 0;
  if (parts[index] && parts[index].ns === SOAP11_ENVELOPE_NS && parts[index].local === 'Header') {
    checkHeader(parts[index]);
    index++;
  }
  const body = parts[index];
  if (!body || body.ns !== SOAP11_ENVELOPE_NS || body.local !== 'Body') {
    throw malformed(body ? `expected the SOAP Body, found ${describe(body)}` : 'the Envelope has no Body');
  }
  if (parts.length > index + 1) throw malformed(`unexpected ${describe(parts[index + 1])} after the Body`);
  if (!envelope.isBlank(body)) throw malformed('text directly inside Body');
  const payload = childElements(body);
  if (payload.length === 0) throw malformed('the Body is empty');
  if (payload.length > 1) throw malformed(`the Body holds ${payload.length} elements (${payload.slice(0, 3).map(describe).join(', ')}), expected one`);
  return payload[0];
}

/** We understand no header entry, so one marked mustUnderstand="1" must be refused (SOAP 1.1 §4.2.3). */
function checkHeader(header: XmlElement): void {
  for (const entry of childElements(header)) {
    const mu = entry.attributes.find((a) => a.ns === SOAP11_ENVELOPE_NS && a.local === 'mustUnderstand');
    if (mu && (mu.value.trim() === '1' || mu.value.trim() === 'true')) {
      throw malformed(`header entry ${describe(entry)} has mustUnderstand="1" and is not understood`);
    }
  }
}

/** The one child `local` (in the service namespace) of `parent`; nothing else may be there. */
function onlyChild(envelope: Envelope, parent: XmlElement, local: string, required: boolean): XmlElement | undefined {
  if (!envelope.isBlank(parent)) throw malformed(`text directly inside ${parent.local}`);
  const children = childElements(parent);
  const matching = children.filter((c) => c.local === local && c.ns === SEOS_SERVICE_NS);
  const other = children.find((c) => !(c.local === local && c.ns === SEOS_SERVICE_NS));
  if (other) {
    throw malformed(other.local === local
      ? `${parent.local}/${local} must be in namespace ${SEOS_SERVICE_NS}, found "${other.ns.slice(0, 100)}"`
      : `unexpected ${describe(other)} in ${parent.local}`);
  }
  if (matching.length > 1) throw malformed(`${parent.local} holds ${matching.length} ${local} elements, expected one`);
  const el = matching[0];
  if (!el) {
    if (required) throw malformed(`${parent.local} has no ${local} element`);
    return undefined;
  }
  const inner = childElements(el);
  if (inner.length) {
    throw malformed(`${parent.local}/${local} contains the element ${describe(inner[0])}; the SEOS message must be escaped text, not XML`);
  }
  return el;
}

function isNil(el: XmlElement): boolean {
  return el.attributes.some((a) => a.ns === XSI_NS && a.local === 'nil' && /^\s*(true|1)\s*$/.test(a.value));
}

function describe(el: XmlElement): string {
  return `{${el.ns.slice(0, 100)}}${el.local.slice(0, 60)}`;
}

function malformed(detail: string): GatewayError {
  return new GatewayError('GW_ERR_SOAP_MALFORMED', detail);
}

// ── the skeleton scan ─────────────────────────────────────────────────────────────────────────────────────

/** A run of character data of the original input: its placeholder's offset in the skeleton and its value. */
interface Run {
  readonly skeletonAt: number;
  readonly blank: boolean;
  readonly value: Buffer;
}

export interface Envelope {
  readonly doc: XmlDocument;
  /** The character data of an element's direct text (CDATA included), exactly as decoded. */
  textOf(el: XmlElement): Buffer;
  /** True when the element's direct character data is whitespace only (or absent). */
  isBlank(el: XmlElement): boolean;
}

export const PLACEHOLDER_TEXT = Buffer.from('T');
export const PLACEHOLDER_BLANK = Buffer.from(' ');
/** Envelope markup is small; a start tag this long is refused before it is handed to the parser. */
export const MAX_TAG_BYTES = 64 * 1024;

/**
 * A start or end tag at `lt`: the index of its ">" (the first outside a quoted attribute value), or `limit` when
 * the tag does not end within the bytes at hand or within MAX_TAG_BYTES.
 */
export function tagEnd(body: Buffer, lt: number): { i: number; limit: number } {
  let quote = 0;
  let i = lt + 1;
  const limit = Math.min(body.length, lt + MAX_TAG_BYTES);
  for (; i < limit; i++) {
    const b = body[i];
    if (quote) {
      if (b === quote) quote = 0;
    } else if (b === 0x22 || b === 0x27) {
      quote = b;
    } else if (b === GT) {
      break;
    }
  }
  return { i, limit };
}

function scanEnvelope(body: Buffer, limits: Partial<XmlLimits>): Envelope {
  const maxBytes = limits.maxBytes;
  if (maxBytes !== undefined && body.length > maxBytes) {
    throw new GatewayError('GW_ERR_XML_TOO_LARGE', `${body.length} bytes, limit ${maxBytes}`);
  }
  if (body.length >= 2 && ((body[0] === 0xfe && body[1] === 0xff) || (body[0] === 0xff && body[1] === 0xfe))) {
    throw new GatewayError('GW_ERR_XML_ENCODING', 'UTF-16 byte order mark');
  }
  if (!isUtf8(body)) throw new GatewayError('GW_ERR_XML_ENCODING', 'the input is not valid UTF-8');

  const skeleton: Buffer[] = [];
  let skeletonLength = 0;
  const emit = (b: Buffer): void => {
    skeleton.push(b);
    skeletonLength += b.length;
  };
  const runs: Run[] = [];
  const addRun = (value: Buffer): void => {
    const blank = isBlank(value);
    runs.push({ skeletonAt: skeletonLength, blank, value });
    emit(blank ? PLACEHOLDER_BLANK : PLACEHOLDER_TEXT);
  };

  let depth = 0;
  const bomLength = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  if (bomLength) emit(body.subarray(0, bomLength));
  let pos = bomLength;
  while (pos < body.length) {
    const lt = body.indexOf(LT, pos);
    const textEnd = lt === -1 ? body.length : lt;
    if (textEnd > pos) addRun(decodeCharacterData(body, pos, textEnd));
    if (lt === -1) break;
    const next = body[lt + 1];
    if (next === 0x21 /* ! */) {
      if (startsWith(body, lt, '<!--')) {
        const end = body.indexOf('-->', lt + 4);
        if (end === -1) throw xmlMalformed('unterminated comment', lt);
        if (body.indexOf('--', lt + 4) !== end) throw xmlMalformed('"--" inside a comment', lt);
        pos = end + 3; // comments are not part of any value: dropped from the skeleton
        continue;
      }
      if (startsWith(body, lt, '<![CDATA[')) {
        if (depth === 0) throw xmlMalformed('CDATA section outside the root element', lt);
        const end = body.indexOf(']]>', lt + 9);
        if (end === -1) throw xmlMalformed('unterminated CDATA section', lt);
        if (end > lt + 9) addRun(decodeCdata(body, lt + 9, end));
        pos = end + 3;
        continue;
      }
      for (const decl of ['<!DOCTYPE', '<!ENTITY', '<!ELEMENT', '<!ATTLIST', '<!NOTATION']) {
        if (startsWith(body, lt, decl)) throw new GatewayError('GW_ERR_XML_DOCTYPE', `at byte ${lt}`);
      }
      throw xmlMalformed('unexpected "<!"', lt);
    }
    if (next === 0x3f /* ? */) {
      // The parser checks the declaration's place in the skeleton, where dropped comments no longer precede it.
      if (startsWith(body, lt, '<?xml') && (body[lt + 5] === 0x3f || isBlank(body.subarray(lt + 5, lt + 6))) && lt !== bomLength) {
        throw xmlMalformed('XML declaration not at the start of the document', lt);
      }
      const end = body.indexOf('?>', lt + 2);
      if (end === -1) throw xmlMalformed('unterminated processing instruction', lt);
      emit(body.subarray(lt, end + 2));
      pos = end + 2;
      continue;
    }
    const { i, limit } = tagEnd(body, lt);
    if (i >= limit) throw xmlMalformed(i >= body.length ? 'unterminated tag' : `a tag longer than ${MAX_TAG_BYTES} bytes`, lt);
    emit(body.subarray(lt, i + 1));
    if (next === 0x2f /* / */) depth--;
    else if (body[i - 1] !== 0x2f) depth++;
    pos = i + 1;
  }

  const doc = parseXml(Buffer.concat(skeleton, skeletonLength), limits);

  const runsIn = (el: XmlElement): Run[] => {
    const found: Run[] = [];
    for (const child of el.children) {
      if (child.type !== 'text') continue;
      // Binary search for the first run whose placeholder is inside this text node.
      let lo = 0, hi = runs.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (runs[mid].skeletonAt < child.start) lo = mid + 1;
        else hi = mid;
      }
      for (let k = lo; k < runs.length && runs[k].skeletonAt < child.end; k++) found.push(runs[k]);
    }
    return found;
  };
  return {
    doc,
    textOf(el) {
      const found = runsIn(el);
      if (found.length === 1) return found[0].value;
      return concatParts(found.map((r) => r.value));
    },
    isBlank(el) {
      // Every text node of the skeleton consists of placeholders only, so the skeleton text says it all.
      return elementText(el).trim() === '';
    },
  };
}

function startsWith(buf: Buffer, at: number, s: string): boolean {
  for (let i = 0; i < s.length; i++) if (buf[at + i] !== s.charCodeAt(i)) return false;
  return true;
}

export function isBlank(value: Buffer): boolean {
  for (let i = 0; i < value.length; i++) {
    const b = value[i];
    if (b !== 0x20 && b !== TAB && b !== LF && b !== CR) return false;
  }
  return true;
}

export function xmlMalformed(what: string, at: number): GatewayError {
  return new GatewayError('GW_ERR_XML_MALFORMED', `${what} at byte ${at}`);
}

function checkCharacters(src: Buffer, start: number, end: number): void {
  const bad = findForbiddenByte(src, start, end);
  if (bad !== -1) throw xmlMalformed(src[bad] === 0xef ? 'U+FFFE/U+FFFF in text' : 'control character in text', bad);
}

/**
 * Character data between markup: references expanded, line ends normalized (CR LF and lone CR become LF, a CR
 * written as `&#xD;` stays CR). Returns a slice of `src` when there is nothing to decode, otherwise a new
 * buffer (the result is never longer than the input: every reference is longer than what it stands for).
 */
export function decodeCharacterData(src: Buffer, start: number, end: number): Buffer {
  const text = src.subarray(start, end);
  const cdataEnd = text.indexOf(']]>');
  if (cdataEnd !== -1) throw xmlMalformed('"]]>" in character data', start + cdataEnd);
  checkCharacters(src, start, end);
  let amp = text.indexOf(AMP);
  let cr = text.indexOf(CR);
  if (amp === -1 && cr === -1) return text;

  const out = Buffer.allocUnsafe(text.length);
  let w = 0;
  let p = 0;
  for (;;) {
    if (amp !== -1 && amp < p) amp = text.indexOf(AMP, p);
    if (cr !== -1 && cr < p) cr = text.indexOf(CR, p);
    const at = amp === -1 ? cr : cr === -1 ? amp : Math.min(amp, cr);
    if (at === -1) break;
    w += text.copy(out, w, p, at);
    if (at === cr) {
      out[w++] = LF;
      p = text[at + 1] === LF ? at + 2 : at + 1;
      continue;
    }
    const semi = text.indexOf(SEMI, at + 1);
    if (semi === -1 || semi - at > 40) throw xmlMalformed('"&" not starting a reference (use &amp;)', start + at);
    w = writeReference(text.toString('latin1', at + 1, semi), out, w, start + at);
    p = semi + 1;
  }
  w += text.copy(out, w, p);
  return out.subarray(0, w);
}

/** CDATA content is literal; only line ends are normalized. */
export function decodeCdata(src: Buffer, start: number, end: number): Buffer {
  checkCharacters(src, start, end);
  const text = src.subarray(start, end);
  let cr = text.indexOf(CR);
  if (cr === -1) return text;
  const out = Buffer.allocUnsafe(text.length);
  let w = 0, p = 0;
  for (; cr !== -1; cr = text.indexOf(CR, p)) {
    w += text.copy(out, w, p, cr);
    out[w++] = LF;
    p = text[cr + 1] === LF ? cr + 2 : cr + 1;
  }
  w += text.copy(out, w, p);
  return out.subarray(0, w);
}

const PREDEFINED = new Map<string, number>([['lt', LT], ['gt', GT], ['amp', AMP], ['quot', 0x22], ['apos', 0x27]]);

function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Writes the UTF-8 bytes of `&name;` into `out` at `w`; returns the new write offset. */
function writeReference(name: string, out: Buffer, w: number, at: number): number {
  if (name.startsWith('#')) {
    const cp = name[1] === 'x'
      ? (/^#x[0-9a-fA-F]{1,6}$/.test(name) ? parseInt(name.slice(2), 16) : NaN)
      : (/^#[0-9]{1,7}$/.test(name) ? parseInt(name.slice(1), 10) : NaN);
    if (!Number.isFinite(cp) || !isXmlChar(cp)) throw xmlMalformed(`invalid character reference &${name.slice(0, 12)};`, at);
    if (cp < 0x80) {
      out[w++] = cp;
    } else if (cp < 0x800) {
      out[w++] = 0xc0 | (cp >> 6);
      out[w++] = 0x80 | (cp & 0x3f);
    } else if (cp < 0x10000) {
      out[w++] = 0xe0 | (cp >> 12);
      out[w++] = 0x80 | ((cp >> 6) & 0x3f);
      out[w++] = 0x80 | (cp & 0x3f);
    } else {
      out[w++] = 0xf0 | (cp >> 18);
      out[w++] = 0x80 | ((cp >> 12) & 0x3f);
      out[w++] = 0x80 | ((cp >> 6) & 0x3f);
      out[w++] = 0x80 | (cp & 0x3f);
    }
    return w;
  }
  const byte = PREDEFINED.get(name);
  if (byte === undefined) {
    if (/^[A-Za-z_:][\w.:-]*$/.test(name)) {
      throw new GatewayError('GW_ERR_XML_UNKNOWN_ENTITY', `&${name.slice(0, 40)}; at byte ${at}`);
    }
    throw xmlMalformed('malformed reference', at);
  }
  out[w++] = byte;
  return w;
}
