import fs from 'node:fs';
import { Ajv, type AnySchemaObject, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { GatewayError } from '../errors/index.ts';

/**
 * The API's JSON Schemas (schemas/api/*.json, ours) and their validation. A schema file with an `$id` is a shared
 * component (bodies and answers, referenced as `{ $ref: 'Name#' }`, listed in the OpenAPI description); one without is
 * used inline for a route's querystring, params or headers.
 *
 * Fastify's default Ajv settings would quietly drop unknown fields and coerce types in bodies; the API refuses
 * both, so bodies are checked by an Ajv of our own. Querystrings, params and headers are text by nature and
 * are coerced (`limit=10` is a number, a single `status=` an array of one).
 */
export const API_SCHEMA_DIR = new URL('../../schemas/api/', import.meta.url);

export interface ApiSchemas {
  /** Shared components by $id. */
  readonly shared: ReadonlyMap<string, AnySchemaObject>;
  /** A route-part schema (querystring, params, headers), a fresh copy. */
  inline(name: string): AnySchemaObject;
}

export function loadApiSchemas(dir: URL = API_SCHEMA_DIR): ApiSchemas {
  const shared = new Map<string, AnySchemaObject>();
  const inline = new Map<string, string>();
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const text = fs.readFileSync(new URL(file, dir), 'utf8');
    const schema = JSON.parse(text) as AnySchemaObject;
    const name = file.slice(0, -'.json'.length);
    if (typeof schema.$id === 'string') {
      if (schema.$id !== name) throw new Error(`schemas/api/${file}: $id "${schema.$id}" must be the file name "${name}"`);
      shared.set(name, schema);
    } else {
      inline.set(name, text);
    }
  }
  return {
    shared,
    inline(name) {
      const text = inline.get(name);
      if (text === undefined) throw new Error(`no inline API schema "${name}" in schemas/api`);
      return JSON.parse(text) as AnySchemaObject;
    },
  };
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
// ajv-formats is CommonJS: its default export is `module.exports`, which also carries itself as `.default`.
const addFormats = formatsPlugin.default;

/** base64 as OpenAPI's "byte" format: RFC 4648 alphabet with padding, no line breaks. */
export function isBase64Text(text: string): boolean {
  return text.length % 4 === 0 && BASE64_RE.test(text);
}

function makeAjv(schemas: ApiSchemas, coerce: boolean): Ajv {
  const ajv = new Ajv({
    allErrors: false, // one error is enough to name the field, and allErrors is a DoS lever on hostile input
    coerceTypes: coerce ? 'array' : false,
    useDefaults: true,
    removeAdditional: false,
    discriminator: true,
    verbose: true, // errors carry their schema, for messages that say what was expected (never the value)
    strict: true,
    strictRequired: false,
    strictTypes: false,
  });
  addFormats(ajv, ['date', 'date-time']);
  ajv.addFormat('byte', { type: 'string', validate: isBase64Text });
  for (const schema of schemas.shared.values()) ajv.addSchema(schema);
  return ajv;
}

export interface ApiValidators {
  /** For Fastify: bodies strict, the other parts coerced. */
  compiler(route: { schema: FastifySchema; httpPart?: string }): ValidateFunction;
  /** Validates a value against a shared schema, throwing GW_ERR_API_VALIDATION that names the field under `context`. */
  check<T>(schemaId: string, value: unknown, context: string): T;
}

export function createValidators(schemas: ApiSchemas): ApiValidators {
  const strict = makeAjv(schemas, false);
  const coercing = makeAjv(schemas, true);
  const byId = new Map<string, ValidateFunction>();
  return {
    compiler({ schema, httpPart }) {
      return (httpPart === 'body' ? strict : coercing).compile(schema as AnySchemaObject);
    },
    check<T>(schemaId: string, value: unknown, context: string): T {
      let validate = byId.get(schemaId);
      if (!validate) {
        validate = strict.getSchema(`${schemaId}#`) ?? strict.compile({ $ref: `${schemaId}#` });
        byId.set(schemaId, validate);
      }
      if (!validate(value)) throw new GatewayError('GW_ERR_API_VALIDATION', describeValidationErrors(validate.errors ?? [], context));
      return value as T;
    },
  };
}

/** Registers the shared schemas on a Fastify context (answers are serialized with them; OpenAPI lists them). */
export function addSharedSchemas(app: FastifyInstance, schemas: ApiSchemas): void {
  for (const schema of schemas.shared.values()) app.addSchema(schema);
}

/**
 * `body.document.attachments[0].mimeType: must be string`. Names the field and what was expected, never the
 * value (it may be personal data, and the detail may reach the logs).
 */
export function describeValidationErrors(errors: readonly ErrorObject[], context: string): string {
  const error = errors[0];
  if (!error) return `${context}: invalid`;
  let where = context + pointerToPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  let what: string;
  switch (error.keyword) {
    case 'required':
      where += segment(String(params.missingProperty));
      what = 'is required';
      break;
    case 'additionalProperties':
      where += segment(String(params.additionalProperty));
      what = 'unknown field';
      break;
    case 'type':
      what = `must be ${String(params.type).replace(',', ' or ')}`;
      break;
    case 'format':
      what = FORMAT_TEXT[String(params.format)] ?? `must be in the format ${String(params.format)}`;
      break;
    case 'enum':
      what = `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
      break;
    case 'const':
      what = `must be ${JSON.stringify(params.allowedValue)}`;
      break;
    case 'discriminator': {
      const tag = String(params.tag);
      where += segment(tag);
      const branches = ((error.parentSchema as { oneOf?: Array<{ properties?: Record<string, { const?: unknown }> }> } | undefined)?.oneOf ?? []);
      const allowed = branches.map((b) => b.properties?.[tag]?.const).filter((v) => v !== undefined).map(String);
      what = params.error === 'tag' ? `is required and must be a string` : `must be one of: ${allowed.join(', ')}`;
      break;
    }
    case 'pattern': {
      const description = (error.parentSchema as { description?: string } | undefined)?.description;
      what = description ? `has the wrong format (${description})` : `has the wrong format (expected the pattern ${String(params.pattern)})`;
      break;
    }
    default:
      what = error.message ?? 'is invalid';
  }
  return `${where}: ${what}`;
}

const FORMAT_TEXT: Record<string, string> = {
  byte: 'must be base64 (RFC 4648, with padding, no line breaks)',
  date: 'must be a date YYYY-MM-DD',
  'date-time': 'must be a date-time with a zone, e.g. 2026-05-06T10:00:00+03:00',
};

function pointerToPath(pointer: string): string {
  if (!pointer) return '';
  return pointer.split('/').slice(1).map((raw) => segment(raw.replace(/~1/g, '/').replace(/~0/g, '~'))).join('');
}

/** One path step: `[0]`, `.name`, or `["odd key"]` quoted and cut short (a key is caller input). */
function segment(key: string): string {
  if (/^\d+$/.test(key)) return `[${key}]`;
  if (/^[A-Za-z_$][\w$-]{0,63}$/.test(key)) return `.${key}`;
  return `[${JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key)}]`;
}
