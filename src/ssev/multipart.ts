import { randomBytes } from 'node:crypto';
import { GatewayError } from '../errors/index.ts';
import { contentTypeParameter, mediaType } from './http.ts';

/**
 * MIME multipart, the two kinds SSEV uses: multipart/form-data (one blob upload to the REST API) and
 * multipart/related with XOP (MTOM, the SOAP integration service's encoding: the envelope is the root part,
 * each binary value a part of its own referenced by <xop:Include href="cid:...">). Building returns a list of
 * buffers (the file bytes are not copied); parsing works on the whole, size-bounded body.
 */
export const XOP_NS = 'http://www.w3.org/2004/08/xop/include';

export interface BuiltMultipart {
  readonly contentType: string;
  readonly parts: Buffer[];
  readonly length: number;
}

export interface MimePart {
  /** Header names lowercased. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

const CRLF = '\r\n';

function newBoundary(): string {
  return `----seos-gateway-${randomBytes(12).toString('hex')}`;
}

/** RFC 5987 / 6266 file name: an ASCII fallback plus filename* in UTF-8 (ASP.NET Core prefers the latter). */
function dispositionFileName(fileName: string): string {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const encoded = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

export function buildFormData(file: { fieldName: string; fileName: string; mimeType: string; bytes: Buffer }): BuiltMultipart {
  const boundary = newBoundary();
  const head = Buffer.from(
    `--${boundary}${CRLF}Content-Disposition: form-data; name="${file.fieldName}"; ${dispositionFileName(file.fileName)}${CRLF}` +
    `Content-Type: ${safeHeaderValue(file.mimeType)}${CRLF}${CRLF}`, 'utf8');
  const tail = Buffer.from(`${CRLF}--${boundary}--${CRLF}`, 'utf8');
  const parts = [head, file.bytes, tail];
  return { contentType: `multipart/form-data; boundary=${boundary}`, parts, length: head.length + file.bytes.length + tail.length };
}

export interface MtomAttachment {
  /** Content-ID without angle brackets. */
  readonly cid: string;
  readonly bytes: Buffer;
  readonly contentType?: string;
}

export const MTOM_ROOT_CID = 'root.message@seos-gateway';

/**
 * An MTOM package as WCF writes it: multipart/related; type="application/xop+xml"; start=<root>;
 * start-info="text/xml" (SOAP 1.1), root part application/xop+xml, binary parts application/octet-stream.
 */
export function buildMtom(envelope: Buffer, attachments: readonly MtomAttachment[]): BuiltMultipart {
  const boundary = `uuid:${randomBytes(16).toString('hex')}+id=1`;
  const parts: Buffer[] = [Buffer.from(
    `--${boundary}${CRLF}Content-ID: <${MTOM_ROOT_CID}>${CRLF}Content-Transfer-Encoding: 8bit${CRLF}` +
    `Content-Type: application/xop+xml;charset=utf-8;type="text/xml"${CRLF}${CRLF}`, 'utf8'), envelope];
  for (const a of attachments) {
    parts.push(Buffer.from(
      `${CRLF}--${boundary}${CRLF}Content-ID: <${a.cid}>${CRLF}Content-Transfer-Encoding: binary${CRLF}` +
      `Content-Type: ${safeHeaderValue(a.contentType ?? 'application/octet-stream')}${CRLF}${CRLF}`, 'utf8'), a.bytes);
  }
  parts.push(Buffer.from(`${CRLF}--${boundary}--${CRLF}`, 'utf8'));
  const contentType = `multipart/related; type="application/xop+xml"; start="<${MTOM_ROOT_CID}>"; start-info="text/xml"; boundary="${boundary}"`;
  return { contentType, parts, length: parts.reduce((n, p) => n + p.length, 0) };
}

/** The href of an xop:Include for a Content-ID (RFC 2392: the cid URL is %-encoded). */
export function cidHref(cid: string): string {
  return `cid:${encodeURIComponent(cid)}`;
}

export function cidFromHref(href: string): string | undefined {
  if (!/^cid:/i.test(href)) return undefined;
  try {
    return decodeURIComponent(href.slice(4));
  } catch {
    return undefined;
  }
}

export interface ParseMultipartLimits {
  readonly maxParts?: number;
  readonly maxHeaderBytes?: number;
}

/** Splits a multipart body. Throws GW_ERR_SSEV_BAD_RESPONSE on anything malformed. */
export function parseMultipart(body: Buffer, contentType: string, limits: ParseMultipartLimits = {}): MimePart[] {
  const boundary = contentTypeParameter(contentType, 'boundary');
  if (!boundary || boundary.length > 200) throw malformed('no boundary parameter');
  const maxParts = limits.maxParts ?? 1000;
  const maxHeaderBytes = limits.maxHeaderBytes ?? 8192;
  const dash = Buffer.from(`--${boundary}`, 'utf8');
  const delimiter = Buffer.from(`${CRLF}--${boundary}`, 'utf8');
  let pos: number;
  if (body.subarray(0, dash.length).equals(dash)) {
    pos = dash.length;
  } else {
    const first = body.indexOf(delimiter); // after a preamble
    if (first === -1) throw malformed('the first boundary is missing');
    pos = first + delimiter.length;
  }
  const parts: MimePart[] = [];
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) return parts; // "--": the close delimiter
    while (body[pos] === 0x20 || body[pos] === 0x09) pos++; // transport padding
    if (body[pos] !== 0x0d || body[pos + 1] !== 0x0a) throw malformed('a boundary line is not followed by CRLF');
    pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd === -1 || headerEnd - pos > maxHeaderBytes) throw malformed('part headers are missing or too long');
    const headers = parseHeaders(body.toString('utf8', pos, headerEnd));
    const start = headerEnd + 4;
    const next = body.indexOf(delimiter, start);
    if (next === -1) throw malformed('a part is not terminated by a boundary');
    parts.push({ headers, body: body.subarray(start, next) });
    if (parts.length > maxParts) throw malformed(`more than ${maxParts} parts`);
    pos = next + delimiter.length;
  }
}

export interface MtomPackage {
  readonly root: Buffer;
  /** Binary parts by Content-ID (without angle brackets). */
  readonly attachments: ReadonlyMap<string, Buffer>;
}

/** An MTOM body: the root part (by `start`, else the first) and the other parts by Content-ID. */
export function parseMtom(body: Buffer, contentType: string, limits: ParseMultipartLimits = {}): MtomPackage {
  if (mediaType(contentType) !== 'multipart/related') throw malformed(`expected multipart/related, got ${mediaType(contentType).slice(0, 60) || 'no content type'}`);
  const parts = parseMultipart(body, contentType, limits);
  if (parts.length === 0) throw malformed('no parts');
  const start = contentTypeParameter(contentType, 'start')?.replace(/^<|>$/g, '');
  const cidOf = (p: MimePart) => (p.headers['content-id'] ?? '').trim().replace(/^<|>$/g, '');
  const root = (start ? parts.find((p) => cidOf(p) === start) : undefined) ?? parts[0];
  const rootType = mediaType(root.headers['content-type']);
  if (rootType !== 'application/xop+xml' && rootType !== 'text/xml') throw malformed(`the root part is ${rootType.slice(0, 60) || 'untyped'}`);
  const attachments = new Map<string, Buffer>();
  for (const p of parts) {
    if (p === root) continue;
    const cid = cidOf(p);
    if (!cid) throw malformed('a binary part has no Content-ID');
    if (attachments.has(cid)) throw malformed('two parts share a Content-ID');
    const encoding = (p.headers['content-transfer-encoding'] ?? 'binary').trim().toLowerCase();
    if (encoding !== 'binary' && encoding !== '8bit') throw malformed(`unsupported Content-Transfer-Encoding ${encoding.slice(0, 20)}`);
    attachments.set(cid, p.body);
  }
  return { root: root.body, attachments };
}

function parseHeaders(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('a part header line has no name');
    out[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).replace(/\r\n[ \t]+/g, ' ').trim();
  }
  return out;
}

function safeHeaderValue(value: string): string {
  return /^[\x20-\x7e]{1,200}$/.test(value) ? value : 'application/octet-stream';
}

function malformed(detail: string): GatewayError {
  return new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', `multipart: ${detail}`);
}

/** The Content-Disposition file name of a form-data part: filename* (UTF-8) wins over filename. */
export function formDataFileName(disposition: string | undefined): string | undefined {
  if (!disposition) return undefined;
  const star = /filename\*\s*=\s*UTF-8''([^;\s]+)/i.exec(disposition);
  if (star) {
    try { return decodeURIComponent(star[1]); } catch { /* fall back to filename */ }
  }
  const plain = /filename\s*=\s*"([^"]*)"/i.exec(disposition) ?? /filename\s*=\s*([^;\s]+)/i.exec(disposition);
  return plain ? plain[1] : undefined;
}
