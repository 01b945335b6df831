import multipart from '@fastify/multipart';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import { GATEWAY_VERSION } from './server.ts';
import { ApiKeyVerifier } from './api-keys.ts';
import { handleApiError } from './api-errors.ts';
import { authenticate } from './auth.ts';
import { parseJsonBody } from './json-body.ts';
import type { ApiContext, RecordsApiOptions } from './context.ts';
import { registerAuditRoutes } from './routes/audit.ts';
import { registerServiceRoutes } from './routes/services.ts';
import { registerDocumentRoutes } from './routes/documents.ts';
import { registerInboxRoutes } from './routes/inbox.ts';
import { registerOperatorRoutes } from './routes/operator.ts';
import { UploadSpool } from './upload.ts';
import { addSharedSchemas, createValidators, loadApiSchemas } from './validation.ts';

export type { RecordsApiOptions } from './context.ts';

/**
 * The records-system REST API: /v1 (API key, roles per route) and its OpenAPI description, generated from the
 * routes' JSON Schemas, at /docs/json with the Swagger UI at /docs (its assets come from the package, not a CDN).
 *
 * Register it on the gateway's HTTP server before it listens:
 *   await api.register(recordsApi, { config, db, outbound, spool, archive, log, schedule })
 * It is an encapsulated plugin: its validator, error handler and multipart parser apply to its routes only.
 * Schemas are loaded and compiled at registration, so a broken schema stops the gateway at boot.
 */
export async function recordsApi(app: FastifyInstance, options: RecordsApiOptions): Promise<void> {
  checkOptions(options);
  const schemas = loadApiSchemas();
  const validators = createValidators(schemas);
  const ctx: ApiContext = { options, schemas, validators, uploads: new UploadSpool(options.spool, options.db) };
  const verifier = new ApiKeyVerifier(options.db);

  addSharedSchemas(app, schemas);
  app.setValidatorCompiler(validators.compiler);
  app.setErrorHandler(handleApiError);

  if (options.config.docs) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'seos-gateway: records-system API',
          version: GATEWAY_VERSION,
          description: 'The records system\'s door to SEOS: send documents, follow their status, receive documents and report on them. '
            + 'Every error answer carries a stable code (GW_ERR_...), a Bulgarian message and an English one.',
        },
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', description: 'Authorization: Bearer sgw_...' },
            apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
          },
        },
      },
      refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
      transform: ({ schema, url }) => ({ schema: documentMultipart(schema, url), url }),
    });
    await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, uiConfig: { docExpansion: 'list', deepLinking: false } });
  }

  await app.register(async (v1) => {
    v1.addHook('onRequest', authenticate(verifier));
    // Bodies are JSON (or multipart on the upload route): anything else is a 415.
    v1.removeContentTypeParser(['text/plain', 'application/json']);
    v1.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => {
      try {
        done(null, parseJsonBody(body as Buffer));
      } catch (error) {
        done(error as Error, undefined);
      }
    });
    registerDocumentRoutes(v1, ctx);
    registerInboxRoutes(v1, ctx);
    registerOperatorRoutes(v1, ctx);
    registerAuditRoutes(v1, ctx);
    registerServiceRoutes(v1, ctx);
    await v1.register(multipart, {
      preservePath: true, // the raw name, so that path tricks are refused rather than quietly cut off
      throwFileSizeLimit: true,
      limits: {
        fileSize: options.config.maxUploadBytes + 1, // one byte over lets the spool's own limit speak first
        files: options.config.maxAttachments + 1,
        fields: 1,
        fieldSize: 1024 * 1024,
        parts: options.config.maxAttachments + 2,
        headerPairs: 100,
      },
    });
  }, { prefix: '/v1' });
}

function checkOptions(options: RecordsApiOptions): void {
  for (const key of ['config', 'db', 'outbound', 'spool', 'archive', 'log', 'schedule'] as const) {
    if (!options?.[key]) throw new TypeError(`recordsApi: option "${key}" is required`);
  }
}

/** The multipart route reads its body as a stream (no body schema to validate); the OpenAPI description still shows the parts. */
function documentMultipart(schema: FastifySchema, url: string): FastifySchema {
  if (url !== '/v1/documents/multipart' || !schema) return schema;
  return {
    ...schema,
    body: {
      type: 'object', required: ['metadata'],
      properties: {
        metadata: { type: 'string', description: 'JSON text of SendDocumentMetadata (first part)' },
        file: { type: 'array', items: { type: 'string', format: 'binary' }, description: 'One part per attachment, in order' },
      },
    },
  };
}
