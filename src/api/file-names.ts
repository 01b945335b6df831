import { GatewayError } from '../errors/index.ts';

/**
 * File names come from callers and from other administrations. They are metadata only: the spool is
 * content-addressed, so a name never becomes a path. Still, a name goes into a signed message, into a records
 * system that may well save it to disk, and into a download header, so uploads must pass these rules.
 */
export const MAX_FILE_NAME_BYTES = 255;

// C0 and C1 controls and DEL; bidirectional overrides and isolates (the "gnp.exe" trick); lone surrogates.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;
const LONE_SURROGATE_RE = /\p{Cs}/u;

/** Why a name is refused, or undefined when it is fine. */
export function fileNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_FILE_NAME_BYTES) return `is longer than ${MAX_FILE_NAME_BYTES} bytes of UTF-8`;
  if (LONE_SURROGATE_RE.test(name)) return 'is not well-formed Unicode';
  if (CONTROL_RE.test(name)) return 'contains a control character';
  if (/[/\\]/.test(name)) return 'contains a path separator';
  if (name.includes('..')) return 'contains ".."';
  if (name.trim() !== name) return 'starts or ends with white space';
  return undefined;
}

export function requireSafeFileName(name: string, where: string): string {
  const problem = fileNameProblem(name);
  if (problem) throw new GatewayError('GW_ERR_API_BAD_FILE_NAME', `${where}: the file name ${problem}`);
  return name;
}

/**
 * A Content-Disposition for a download: an ASCII-only `filename` fallback and the real name in RFC 5987
 * `filename*`, percent-encoded, so no byte of a stored name (which may come from another administration) ever
 * reaches the header raw.
 */
export function contentDisposition(name: string): string {
  const wellFormed = name.replace(/\p{Cs}/gu, '\ufffd');
  const ascii = wellFormed.replace(/[^A-Za-z0-9._ ()-]+/g, '_').replace(/\.\.+/g, '.').slice(0, 100).trim() || 'attachment';
  const encoded = encodeURIComponent(wellFormed).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/** A stored MIME type fit for a Content-Type header, or application/octet-stream. */
export function safeMimeType(mimeType: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/.test(mimeType) ? mimeType.toLowerCase() : 'application/octet-stream';
}
