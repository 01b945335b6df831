import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A value that must never reach a log, an error message or a JSON dump (a key password, later API keys).
 *
 * The value sits in a private field, so `util.inspect`, `JSON.stringify`, string interpolation and pino all see
 * only "[redacted]". Code that really needs it calls `reveal()`, which keeps every such place easy to find.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}
