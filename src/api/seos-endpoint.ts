import fs from 'node:fs';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { SeosEndpointConfig } from '../config/exchange-config.ts';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import type { ReceiverResult } from '../seos/receiver.ts';
import { SOAP11_CONTENT_TYPE, SUBMIT_ACTION, buildSoapFault, buildSubmitResponse, parseSubmitRequest } from '../seos/soap/index.ts';

/**
 * The SEOS endpoint other administrations call: SOAP 1.1 Submit on its own listener, apart from the
 * records-system API (this one faces the exchange network, the API stays on loopback).
 *
 * Replies as the protocol expects: 200 with SubmitResult (a signed reply or empty); a SOAP Fault (HTTP 500, as
 * WCF answers faults) where no MSG_Error can be addressed; and 503 without a fault when *we* cannot take the
 * message right now (database or disk trouble), because senders retry on a plain HTTP error but give up on a
 * fault.
 */
export interface SeosEndpointOptions {
  readonly config: SeosEndpointConfig;
  readonly receive: (wire: Buffer) => ReceiverResult;
  readonly logger: FastifyBaseLogger;
}

export function buildSeosEndpoint(options: SeosEndpointOptions): FastifyInstance {
  const { config } = options;
  const https = config.tls?.keyPath && config.tls.certPath
    ? {
      key: fs.readFileSync(config.tls.keyPath),
      cert: fs.readFileSync(config.tls.certPath),
      ...(config.tls.caPath ? { ca: fs.readFileSync(config.tls.caPath) } : {}),
      requestCert: config.tls.requireClientCert ?? false,
      rejectUnauthorized: config.tls.requireClientCert ?? false,
    }
    : undefined;
  // Room for the envelope around the largest message, escaped (&lt; &gt; add a little).
  const bodyLimit = Math.ceil(config.maxMessageBytes * 1.1) + 64 * 1024;
  const app = (https
    ? Fastify({ loggerInstance: options.logger, bodyLimit, https })
    : Fastify({ loggerInstance: options.logger, bodyLimit })) as unknown as FastifyInstance;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_request, body, done) => done(null, body));

  app.post(config.path, async (request, reply) => {
    const action = request.headers.soapaction;
    if (action !== undefined && String(action).replace(/^"|"$/g, '') !== SUBMIT_ACTION) {
      return fault(reply, new GatewayError('GW_ERR_SOAP_MALFORMED', `SOAPAction "${String(action).slice(0, 100)}"`));
    }
    const body = request.body as Buffer;
    if (body.length > bodyLimit) return fault(reply, new GatewayError('GW_ERR_XML_TOO_LARGE', `${body.length} bytes`));
    try {
      const wire = parseSubmitRequest(body, { maxBytes: config.maxMessageBytes });
      const result = options.receive(wire);
      request.log.info({ outcome: result.outcome }, 'seos message handled');
      return reply.code(200).header('content-type', SOAP11_CONTENT_TYPE).send(buildSubmitResponse(result.reply));
    } catch (error) {
      if (isGatewayError(error) && error.code !== 'GW_ERR_INTERNAL' && error.code !== 'GW_ERR_STORE_IO') return fault(reply, error);
      request.log.error({ err: error instanceof Error ? { message: error.message, code: (error as { code?: string }).code } : String(error) }, 'seos message not accepted: internal error');
      return reply.code(503).header('retry-after', '60').type('text/plain; charset=utf-8')
        .send(new GatewayError('GW_ERR_INTERNAL').descriptionBg);
    }
  });

  app.setErrorHandler(async (error, _request, reply) => {
    if ((error as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return fault(reply, new GatewayError('GW_ERR_XML_TOO_LARGE', `limit ${bodyLimit} bytes`));
    }
    throw error;
  });

  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send(new GatewayError('GW_ERR_NOT_FOUND').toJSON()));
  return app;
}

function fault(reply: import('fastify').FastifyReply, error: GatewayError) {
  reply.log.info({ code: error.code }, 'seos request refused with a SOAP fault');
  return reply.code(500).header('content-type', SOAP11_CONTENT_TYPE)
    .send(buildSoapFault({ code: 'Client', text: `${error.code}: ${error.descriptionBg}` }));
}
