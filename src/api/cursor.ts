import { GatewayError } from '../errors/index.ts';

/** Keyset paging: the cursor is the (time, id) of the last row of the page, opaque to callers. */
export function encodeCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): [string, string] {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string') return [value[0], value[1]];
  } catch {
    // falls through to the error below
  }
  throw new GatewayError('GW_ERR_API_VALIDATION', 'querystring.cursor: is not a cursor this API gave');
}
