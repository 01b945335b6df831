import { GatewayError } from '../errors/index.ts';

/**
 * Checks for what the ESB REST API answers. Every answer goes through these before the gateway acts on it: a
 * missing or mistyped field is GW_ERR_SSEV_BAD_RESPONSE naming the JSON path, never a TypeError later. Details
 * name paths and types only, never values (they may be names or identifiers of people).
 */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function parseJson(body: Buffer, what: string): Json {
  try {
    return JSON.parse(body.toString('utf8')) as Json;
  } catch {
    throw bad(what, 'is not valid JSON');
  }
}

export function bad(path: string, problem: string): GatewayError {
  return new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', `${path} ${problem}`);
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

export function obj(value: unknown, path: string): Record<string, Json> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(path, `must be an object, got ${kind(value)}`);
  return value as Record<string, Json>;
}

export function arr(value: unknown, path: string, max = 100_000): Json[] {
  if (!Array.isArray(value)) throw bad(path, `must be an array, got ${kind(value)}`);
  if (value.length > max) throw bad(path, `has more than ${max} items`);
  return value as Json[];
}

/** A positive 32-bit id (SSEV's ids are SQL int identities). */
export function id(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > 2 ** 31 - 1) {
    throw bad(path, `must be a positive integer id, got ${kind(value)}`);
  }
  return value;
}

export function int(value: unknown, path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw bad(path, `must be an integer from ${min} to ${max}`);
  return value;
}

export function str(value: unknown, path: string, max = 10_000): string {
  if (typeof value !== 'string') throw bad(path, `must be a string, got ${kind(value)}`);
  if (value.length > max) throw bad(path, `is longer than ${max} characters`);
  return value;
}

export function optStr(value: unknown, path: string, max = 10_000): string | undefined {
  return value === undefined || value === null ? undefined : str(value, path, max);
}

export function bool(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') throw bad(path, `must be true or false, got ${kind(value)}`);
  return value;
}

/** An ISO-8601 date-time as .NET writes it (offset optional), or undefined for null/absent. */
export function optDateTime(value: unknown, path: string): string | undefined {
  const text = optStr(value, path, 40);
  if (text === undefined || text === '') return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})?$/.test(text) || Number.isNaN(Date.parse(text))) {
    throw bad(path, 'is not an ISO-8601 date-time');
  }
  return text;
}
