import { GatewayError } from '../errors/index.ts';
import { timeOrderedUuid } from '../time-ordered-uuid.ts';

/**
 * GUIDs, dates and the other simple values of the SEOS schema. GUIDs carry mandatory braces; we generate them
 * lowercase (as .NET's Guid.ToString("B")) and compare them case-insensitively. Dates keep their lexical form:
 * an offset or seven fractional digits from a .NET peer must survive a parse and rebuild exactly.
 */
const GUID_RE = /^\{[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}$/;

export function newGuid(): string {
  return `{${timeOrderedUuid()}}`;
}

export function isGuid(value: string): boolean {
  return GUID_RE.test(value);
}

/** Checks the braced form; `where` names the element path for the error. */
export function requireGuid(value: string, where: string): string {
  if (!GUID_RE.test(value)) {
    throw new GatewayError('GW_ERR_SEOS_BAD_GUID', `${where}: "${value.slice(0, 60)}"`);
  }
  return value;
}

/** The form we store and compare by: lowercase with braces. */
export function normalizeGuid(value: string): string {
  return value.toLowerCase();
}

export function sameGuid(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

const TZ = '(Z|[+-](?:(?:0\\d|1[0-3]):[0-5]\\d|14:00))?';
const DATE_RE = new RegExp(`^(-?\\d{4,})-(\\d{2})-(\\d{2})${TZ}$`);
const DATETIME_RE = new RegExp(`^(-?\\d{4,})-(\\d{2})-(\\d{2})T(\\d{2}):(\\d{2}):(\\d{2})(\\.\\d+)?${TZ}$`);

function validDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return day <= days;
}

export function isXsdDate(value: string): boolean {
  const m = DATE_RE.exec(value);
  return !!m && validDay(Number(m[1]), Number(m[2]), Number(m[3]));
}

export function isXsdDateTime(value: string): boolean {
  const m = DATETIME_RE.exec(value);
  if (!m || !validDay(Number(m[1]), Number(m[2]), Number(m[3]))) return false;
  const [h, min, s] = [Number(m[4]), Number(m[5]), Number(m[6])];
  if (h === 24) return min === 0 && s === 0 && (!m[7] || /^\.0+$/.test(m[7]));
  return h < 24 && min < 60 && s < 60;
}

export function requireXsdDate(value: string, where: string): string {
  if (!isXsdDate(value)) throw new GatewayError('GW_ERR_SEOS_BAD_DATE', `${where}: "${value.slice(0, 40)}" is not an xsd:date (YYYY-MM-DD)`);
  return value;
}

export function requireXsdDateTime(value: string, where: string): string {
  if (!isXsdDateTime(value)) {
    throw new GatewayError('GW_ERR_SEOS_BAD_DATE', `${where}: "${value.slice(0, 40)}" is not an xsd:dateTime (YYYY-MM-DDThh:mm:ss[.f][±hh:mm])`);
  }
  return value;
}

function pad(n: number, width = 2): string {
  return String(Math.abs(n)).padStart(width, '0');
}

/**
 * xsd:dateTime in local time with its offset and milliseconds, as the reference writes DateTime.Now
 * (e.g. 2024-05-06T10:11:12.123+03:00). `offsetMinutes` defaults to this machine's offset at that instant.
 */
export function formatDateTime(date: Date, offsetMinutes = -date.getTimezoneOffset()): string {
  const local = new Date(date.getTime() + offsetMinutes * 60_000);
  const sign = offsetMinutes >= 0 ? '+' : '-';
  return `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}` +
    `T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}.${pad(local.getUTCMilliseconds(), 3)}` +
    `${sign}${pad(Math.trunc(Math.abs(offsetMinutes) / 60))}:${pad(Math.abs(offsetMinutes) % 60)}`;
}

/** xsd:date of the given instant in local time (the calendar day the municipality sees). */
export function formatDate(date: Date, offsetMinutes = -date.getTimezoneOffset()): string {
  return formatDateTime(date, offsetMinutes).slice(0, 10);
}

/**
 * The instant an xsd:dateTime denotes, to the millisecond (extra fractional digits are truncated). A value
 * without an offset is read as UTC, which XSD leaves implementation-defined; say so where it matters.
 */
export function dateTimeToInstant(value: string): Date {
  const m = DATETIME_RE.exec(value);
  if (!m) throw new GatewayError('GW_ERR_SEOS_BAD_DATE', `"${value.slice(0, 40)}"`);
  const ms = m[7] ? Number(m[7].slice(1, 4).padEnd(3, '0')) : 0;
  const utc = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms);
  const tz = m[8];
  if (!tz || tz === 'Z') return new Date(utc);
  const offset = (tz[0] === '-' ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6)));
  return new Date(utc - offset * 60_000);
}

/** Version "1" and "1.0" are the same protocol version. */
export function isSupportedVersion(value: string): boolean {
  return value === '1' || value === '1.0';
}

/** Positive integer (segment 0008-000001 BatchNumber and its restrictions), kept as text. */
export function isPositiveInteger(value: string): boolean {
  return /^\+?0*[1-9]\d*$/.test(value);
}
