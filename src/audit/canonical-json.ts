import { createHash } from 'node:crypto';

/** The prev_hash of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The delivery log's canonical JSON: object keys sorted (by UTF-16 code units, JavaScript's default order) at every
 * level, no whitespace, strings and numbers exactly as JSON.stringify writes them, `undefined` members left out.
 * An auditor can reproduce it in any language: it is the JSON Canonicalization Scheme (RFC 8785) for the values
 * the log holds (strings, safe integers, nested objects).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('canonical JSON cannot hold a non-finite number');
    const text = JSON.stringify(value);
    if (text === undefined) throw new TypeError(`canonical JSON cannot hold a ${typeof value}`);
    return text;
  }
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const members = Object.keys(value)
    .sort()
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${members.join(',')}}`;
}

/** `hash = sha256_hex(prev_hash + "\n" + canonical entry JSON)`, the text taken as UTF-8. */
export function chainHash(prevHash: string, entryJson: string): string {
  return createHash('sha256').update(`${prevHash}\n${entryJson}`, 'utf8').digest('hex');
}
