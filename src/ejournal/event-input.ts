import { GatewayError } from '../errors/index.ts';
import { isDemoRnu, validateRnu } from './rnu.ts';
import { isLifecycleEvent, type LifecycleEvent, type Vocabulary } from './vocabulary.ts';

/**
 * What a status change of a service must say, checked and normalized before anything is written: bad input gets
 * a coded error naming the field (never echoing free text) and changes nothing.
 */
export type EventSource = 'records-system' | 'gateway' | 'operator';

export interface ServiceEventInput {
  readonly rnu: string;
  readonly status: string;
  /** When the stage happened: an ISO-8601 date-time with a zone (Z or ±hh:mm), or a Date. */
  readonly occurredAt: string | Date;
  /** ЕИК (9 or 13 digits) or OID of the administration; defaults to the configured one. */
  readonly administration?: string;
  /** The service's code in the administrative register; automatic events fall back to the RNU's earlier code. */
  readonly serviceCode?: string;
  readonly documentRegNumber?: string | null;
  readonly description?: string | null;
  /** seos | ssev | counter | email | ... (the configured channels). */
  readonly channel?: string | null;
  /** The gateway document this change belongs to. */
  readonly documentId?: string | null;
  readonly source?: EventSource;
  readonly lifecycle?: LifecycleEvent;
}

export interface NormalizedEvent {
  readonly rnu: string;
  readonly status: string;
  readonly occurredAt: string;
  readonly administration: string;
  readonly serviceCode: string;
  readonly documentRegNumber: string | null;
  readonly description: string | null;
  readonly channel: string | null;
  readonly documentId: string | null;
  readonly source: EventSource;
  readonly lifecycle: LifecycleEvent | null;
  readonly demo: boolean;
}

export interface NormalizeOptions {
  readonly vocabulary: Vocabulary;
  readonly administration?: string;
  /** Used when the input has no service code (automatic events): the RNU's earlier code, the configured default. */
  readonly fallbackServiceCode?: () => string | undefined;
  readonly demoMode?: boolean;
  readonly maxFutureSkewMs?: number;
  readonly now?: Date;
}

const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})$/;
const EIK = /^\d{9}(\d{4})?$/;
const OID = /^[0-2](\.(0|[1-9]\d{0,8})){1,30}$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const CONTROL_EXCEPT_NEWLINES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029]/;
const EARLIEST = Date.UTC(2000, 0, 1);
const SOURCES: readonly EventSource[] = ['records-system', 'gateway', 'operator'];

function invalid(detail: string): never {
  throw new GatewayError('GW_ERR_EJOURNAL_EVENT_INVALID', detail);
}

/** ISO-8601 UTC with milliseconds, the one form stored and compared (so +03:00 and Z spellings of one instant are one key). */
export function normalizeTime(value: unknown, field: string, options: { now?: Date; maxFutureSkewMs?: number } = {}): string {
  let ms: number;
  if (value instanceof Date) {
    ms = value.getTime();
    if (Number.isNaN(ms)) invalid(`${field}: not a valid date`);
  } else {
    if (typeof value !== 'string') invalid(`${field}: required, an ISO-8601 date-time with a zone, e.g. 2025-03-04T10:11:12.345+02:00`);
    const m = ISO_DATE_TIME.exec(value as string);
    if (!m) invalid(`${field}: expected an ISO-8601 date-time with a zone (Z or ±hh:mm), e.g. 2025-03-04T10:11:12.345+02:00`);
    const [, y, mo, d, h, mi, s = '0', frac = '0', zone] = m!;
    const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number);
    const dim = new Date(Date.UTC(year, month, 0)).getUTCDate();
    if (month < 1 || month > 12 || day < 1 || day > dim || hour > 23 || minute > 59 || second > 59) invalid(`${field}: not a valid date-time`);
    let offset = 0;
    if (zone !== 'Z') {
      const oh = Number(zone.slice(1, 3));
      const om = Number(zone.slice(4, 6));
      if (oh > 14 || om > 59) invalid(`${field}: not a valid zone offset`);
      offset = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
    }
    // Milliseconds: finer digits are cut, not rounded (an instant never moves into the next millisecond).
    const millis = Number(frac.padEnd(3, '0').slice(0, 3));
    ms = Date.UTC(year, month - 1, day, hour, minute, second, millis) - offset * 60_000;
  }
  const now = (options.now ?? new Date()).getTime();
  if (ms < EARLIEST) invalid(`${field}: before the year 2000`);
  if (ms > now + (options.maxFutureSkewMs ?? 5 * 60_000)) invalid(`${field}: in the future (check the clock of the system that sent it)`);
  return new Date(ms).toISOString();
}

function optionalText(value: unknown, field: string, max: number, allowNewlines = false): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') invalid(`${field}: expected a string`);
  const text = value as string;
  if (text.trim() === '') return null;
  if (text.length > max) invalid(`${field}: ${text.length} characters, at most ${max} allowed`);
  if ((allowNewlines ? CONTROL_EXCEPT_NEWLINES : CONTROL).test(text)) invalid(`${field}: contains control characters`);
  return text;
}

export function validateServiceCode(value: unknown, field = 'serviceCode'): string {
  if (typeof value !== 'string' || value.trim() === '') invalid(`${field}: required (the service's code in the administrative register)`);
  const code = value as string;
  if (code.length > 64) invalid(`${field}: ${code.length} characters, at most 64 allowed`);
  if (CONTROL.test(code) || /^\s|\s$/.test(code)) invalid(`${field}: control characters or leading/trailing spaces`);
  return code;
}

export function validateAdministration(value: unknown, field = 'administration'): string {
  if (typeof value !== 'string' || !(EIK.test(value) || (value.length <= 128 && OID.test(value)))) {
    invalid(`${field}: expected an ЕИК (9 or 13 digits) or an OID (e.g. 2.16.100.1.1.1.1.13)`);
  }
  return value as string;
}

export function normalizeServiceEvent(input: ServiceEventInput, options: NormalizeOptions): NormalizedEvent {
  if (typeof input !== 'object' || input === null) invalid('expected an event object');
  const rnu = validateRnu(input.rnu);
  const demo = isDemoRnu(rnu);
  if (demo && !options.demoMode) {
    throw new GatewayError('GW_ERR_EJOURNAL_RNU_INVALID', `rnu: a demo RNU (DEMO-…) outside demo mode; the real eJournal must never see one`);
  }
  const status = options.vocabulary.requireStatus(input.status);
  const occurredAt = normalizeTime(input.occurredAt, 'occurredAt', { now: options.now, maxFutureSkewMs: options.maxFutureSkewMs });
  const administration = validateAdministration(input.administration ?? options.administration);
  const serviceCode = validateServiceCode(input.serviceCode ?? options.fallbackServiceCode?.());
  const channel = optionalText(input.channel, 'channel', 32);
  if (channel !== null && !options.vocabulary.isChannel(channel)) {
    invalid(`channel: expected one of ${options.vocabulary.channels.join(', ')}`);
  }
  const source = input.source ?? 'records-system';
  if (!SOURCES.includes(source)) invalid(`source: expected one of ${SOURCES.join(', ')}`);
  if (input.lifecycle !== undefined && !isLifecycleEvent(input.lifecycle)) invalid('lifecycle: unknown lifecycle event');
  const documentId = input.documentId === undefined || input.documentId === null ? null : optionalText(input.documentId, 'documentId', 64);
  return {
    rnu, status, occurredAt, administration, serviceCode, channel, source, demo, documentId,
    documentRegNumber: optionalText(input.documentRegNumber, 'documentRegNumber', 128),
    description: optionalText(input.description, 'description', 2000, true),
    lifecycle: input.lifecycle ?? null,
  };
}
