import sjson from 'secure-json-parse';
import { GatewayError } from '../errors/index.ts';

/**
 * The API's JSON body parser. Two guards come before JSON.parse:
 * - nesting depth: V8 parses a 10 MB body of nested brackets in seconds (one array per bracket), blocking the
 *   event loop; no API body nests deeper than a handful of levels, so more than MAX_JSON_DEPTH is refused after a
 *   scan that jumps over string contents (base64 attachments) with indexOf;
 * - `__proto__` and `constructor.prototype` keys are refused (secure-json-parse), as Fastify's own parser does.
 */
export const MAX_JSON_DEPTH = 32;

const QUOTE = 0x22, BACKSLASH = 0x5c, LBRACE = 0x7b, RBRACE = 0x7d, LBRACKET = 0x5b, RBRACKET = 0x5d;

export function parseJsonBody(body: Buffer, maxDepth = MAX_JSON_DEPTH): unknown {
  if (body.length === 0) throw new GatewayError('GW_ERR_API_VALIDATION', 'body: is required (the JSON body is empty)');
  if (nestingExceeds(body, maxDepth)) throw new GatewayError('GW_ERR_API_VALIDATION', `body: nests deeper than ${maxDepth} levels`);
  try {
    return sjson.parse(body.toString('utf8'), null, { protoAction: 'error', constructorAction: 'error' });
  } catch (error) {
    // The message of a JSON syntax error quotes the body: never pass it on.
    const forbidden = error instanceof SyntaxError && /forbidden prototype property/.test(error.message);
    throw new GatewayError('GW_ERR_API_VALIDATION', forbidden ? 'body: "__proto__" and "constructor.prototype" keys are not allowed' : 'body: is not valid JSON');
  }
}

/** Whether brackets outside strings nest deeper than `max`. Malformed input is left for JSON.parse to refuse. */
export function nestingExceeds(body: Buffer, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === QUOTE) {
      let j = i + 1;
      for (;;) {
        j = body.indexOf(QUOTE, j);
        if (j < 0) return false;
        let backslashes = 0;
        for (let k = j - 1; k > i && body[k] === BACKSLASH; k--) backslashes++;
        if (backslashes % 2 === 0) break;
        j++;
      }
      i = j;
    } else if (c === LBRACE || c === LBRACKET) {
      if (++depth > max) return true;
    } else if (c === RBRACE || c === RBRACKET) {
      depth--;
    }
  }
  return false;
}
