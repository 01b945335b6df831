import { isIP } from 'node:net';
import { GatewayError } from '../errors/index.ts';
import { LOG_LEVELS, type LogLevel } from './log-levels.ts';
import { Secret } from './secret.ts';

/*
 * Small readers for configuration values: each returns the typed value or throws GW_ERR_CONFIG_INVALID with
 * "<json path>: <what is expected>". Error details never echo a string value, because it might be a password.
 */
export type Reader<T> = (value: unknown, path: string) => T;
export type FieldReaders<T> = { [K in keyof T]-?: Reader<NonNullable<T[K]>> };

// ── field readers ──

export function readObject<T extends object>(value: unknown, path: string, readers: FieldReaders<T>): Partial<T> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail(path, `expected an object, got ${describeValue(value)}`);
  }
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const childPath = joinPath(path, key);
    if (!Object.hasOwn(readers, key)) {
      fail(childPath, `unknown key (expected one of: ${Object.keys(readers).join(', ')})`);
    }
    const reader = (readers as Record<string, Reader<unknown>>)[key];
    result[key] = reader((value as Record<string, unknown>)[key], childPath);
  }
  return result as Partial<T>;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function readHost(value: unknown, path: string): string {
  const expected = 'expected an IP address or a host name';
  if (typeof value !== 'string') fail(path, `${expected}, got ${describeValue(value)}`);
  if (isIP(value) === 0 && !HOST_NAME.test(value)) fail(path, expected);
  return value;
}

export function readPort(value: unknown, path: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535) {
    fail(path, `expected an integer from 0 to 65535, got ${describeValue(value)}`);
  }
  return value;
}

export function readBoolean(value: unknown, path: string): boolean {
  if (typeof value !== 'boolean') fail(path, `expected true or false, got ${describeValue(value)}`);
  return value;
}

export function readPath(value: unknown, path: string): string {
  const expected = 'expected a non-empty file system path';
  if (typeof value !== 'string') fail(path, `${expected}, got ${describeValue(value)}`);
  if (value.length === 0 || value.length > 4096 || value.includes('\0')) fail(path, expected);
  return value;
}

export function readRedisUrl(value: unknown, path: string): string {
  const expected = 'expected a redis:// or rediss:// URL';
  if (typeof value !== 'string') fail(path, `${expected}, got ${describeValue(value)}`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail(path, expected);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') fail(path, expected);
  return value;
}

export function readLogLevel(value: unknown, path: string): LogLevel {
  if (typeof value !== 'string' || !(LOG_LEVELS as readonly string[]).includes(value)) {
    fail(path, `expected one of ${LOG_LEVELS.join(', ')}`);
  }
  return value as LogLevel;
}

export function readSecret(value: unknown, path: string): Secret {
  if (typeof value !== 'string') fail(path, `expected a string, got ${describeValue(value)}`);
  if (value.length > 1024) fail(path, 'expected at most 1024 characters');
  return new Secret(value);
}

// ── helpers ──

export function fail(path: string, expected: string, cause?: unknown): never {
  throw new GatewayError('GW_ERR_CONFIG_INVALID', `${path}: ${expected}`, cause === undefined ? undefined : { cause });
}

/** Names the type of a wrong value; echoes only numbers and booleans, never a string (it could be a password). */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string': return 'a string';
    case 'number': return Number.isFinite(value) ? String(value) : 'a non-finite number';
    case 'boolean': return String(value);
    case 'object': return 'an object';
    default: return typeof value;
  }
}

/** `$.signing.password`, or `$["odd key"]` for keys that are not identifiers (quoted, escaped and cut short). */
export function joinPath(path: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key) && key.length <= 64) return `${path}.${key}`;
  return `${path}[${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)}]`;
}


/** An http:// or https:// URL (whether plain http is allowed is decided where the URL is used). */
export function readHttpUrl(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, 'expected an http:// or https:// URL');
  let url: URL;
  try { url = new URL(value); } catch { fail(path, 'expected an http:// or https:// URL'); }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') fail(path, 'expected an http:// or https:// URL');
  return value;
}
