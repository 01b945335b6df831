import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema, HTTPMethods } from 'fastify';
import type { DeliveryLog } from '../audit/index.ts';
import type { ApiConfig } from '../config/api-config.ts';
import type { OutboxRow } from '../delivery/outbox.ts';
import type { QueuedDocument, SendDocumentInput, StatusReport } from '../seos/outbound.ts';
import type { ContentStore } from '../store/content-store.ts';
import type { QueuedSsevDocument, RoutingDecision, SsevSendInput } from '../ssev/index.ts';
import type { Db } from '../store/database.ts';
import type { DocumentRow } from '../store/documents.ts';
import type { EjournalApi } from '../ejournal/intake.ts';
import type { ApiRole } from './api-keys.ts';
import { requireRole } from './auth.ts';
import type { UploadSpool } from './upload.ts';
import type { ApiSchemas, ApiValidators } from './validation.ts';

/** What the records-system API works with; the composition root passes it in. */
export interface RecordsApiOptions {
  readonly config: ApiConfig;
  readonly db: Db;
  readonly outbound: {
    sendDocument(input: SendDocumentInput): Promise<QueuedDocument> | QueuedDocument;
    reportStatus(documentId: string, report: StatusReport, actor?: string): { messageGuid: string };
    requestStatus(documentId: string): OutboxRow;
  };
  readonly spool: ContentStore;
  /** The evidence archive: received messages are read from it for the inbox. */
  readonly archive: ContentStore;
  readonly log: DeliveryLog;
  /** Hands a committed outbox row to the delivery engine. */
  readonly schedule: (row: OutboxRow) => void;
  /** Told (inside the transaction) when an operator action changes a document's status, like every other change. */
  readonly lifecycle?: { statusChanged(document: DocumentRow, previous: string, source: string): void };
  /**
   * SEOS or SSEV for POST /v1/documents (src/app/document-channels.ts) and the SSEV channel when configured.
   * Without it every document goes over SEOS, as before SSEV.
   */
  readonly channels?: {
    choose(recipient: string, force?: 'seos' | 'ssev'): Promise<RoutingDecision>;
    readonly ssev?: {
      sendViaSsev(input: SsevSendInput): QueuedSsevDocument;
      /** Asks SSEV now whether the recipient opened a message we sent (POST /v1/documents/{id}/request-status). */
      checkDelivered(messageId: number): Promise<string>;
    };
  };
  /** eJournal (`ejournal.enabled`): the /v1/services routes; without it they answer GW_ERR_EJOURNAL_DISABLED. */
  readonly ejournal?: EjournalApi;
}

export interface ApiContext {
  readonly options: RecordsApiOptions;
  readonly schemas: ApiSchemas;
  readonly validators: ApiValidators;
  readonly uploads: UploadSpool;
}

export interface ApiRoute {
  readonly method: HTTPMethods;
  readonly url: string;
  readonly roles: readonly ApiRole[];
  readonly schema: FastifySchema & Record<string, unknown>;
  readonly bodyLimit?: number;
  readonly handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

/** Adds a route with its role check; every route documents the error answer. */
export function addRoute(app: FastifyInstance, route: ApiRoute): void {
  app.route({
    method: route.method,
    url: route.url,
    ...(route.bodyLimit ? { bodyLimit: route.bodyLimit } : {}),
    schema: {
      security: [{ bearer: [] }, { apiKey: [] }],
      ...route.schema,
      description: `${String(route.schema.description ?? '')}\n\nRoles: ${route.roles.join(', ')}.`.trim(),
      response: { ...(route.schema.response as object | undefined), '4xx': { $ref: 'Error#' }, '5xx': { $ref: 'Error#' } },
    },
    onRequest: requireRole(route.roles),
    handler: route.handler,
  });
}
