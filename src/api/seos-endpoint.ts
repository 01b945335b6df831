import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { SeosEndpointConfig } from '../config/exchange-config.ts';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import type { InboundFile, ReceiverResult } from '../seos/receiver.ts';
import { SOAP11_CONTENT_TYPE, SUBMIT_ACTION, buildSoapFault, buildSubmitResponse, parseSubmitRequest } from '../seos/soap/index.ts';
import { extractSubmitRequest } from '../seos/soap/submit-stream.ts';
import { OneLinePerRequest } from './server.ts';

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
  /** The receiver: the message in memory, or (large ones) in a file it must not remove. */
  readonly receive: (wire: Buffer | InboundFile) => Promise<ReceiverResult>;
  readonly logger: FastifyBaseLogger;
  /**
   * Bodies above this size, or of unknown size (chunked), are not held in memory: the message is unescaped from
   * the body as it arrives into a file in `tempDir` and received from there. Default 4 MiB.
   */
  readonly streamAboveBytes?: number;
  /** Where streamed messages wait while they are received (removed after). Default: seos-gateway-inbound in the OS temp folder. */
  readonly tempDir?: string;
}

const DEFAULT_STREAM_ABOVE = 4 * 1024 * 1024;

/** A body left unread by the content-type parser, for the handler to stream. */
class StreamedBody {
  constructor(readonly stream: Readable) {}
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
    ? Fastify({ loggerInstance: options.logger, bodyLimit, https, logController: new OneLinePerRequest() })
    : Fastify({ loggerInstance: options.logger, bodyLimit, logController: new OneLinePerRequest() })) as unknown as FastifyInstance;

  const streamAbove = options.streamAboveBytes ?? DEFAULT_STREAM_ABOVE;
  const tempDir = options.tempDir ?? path.join(os.tmpdir(), 'seos-gateway-inbound');
  app.removeAllContentTypeParsers();
  // Small bodies (the common case) are read into memory; large or chunked ones are left to the handler to stream.
  app.addContentTypeParser('*', (request, payload, done) => {
    const header = request.headers['content-length'];
    const declared = header === undefined ? NaN : Number(header);
    if (declared > bodyLimit) return done(new GatewayError('GW_ERR_XML_TOO_LARGE', `${declared} bytes, limit ${bodyLimit}`), undefined);
    if (!(declared <= streamAbove)) return done(null, new StreamedBody(payload));
    const chunks: Buffer[] = [];
    let length = 0;
    payload.on('data', (chunk: Buffer) => {
      length += chunk.length;
      chunks.push(chunk);
    });
    payload.on('end', () => done(null, Buffer.concat(chunks, length)));
    payload.on('error', (error) => done(error, undefined));
  });

  app.post(config.path, async (request, reply) => {
    const action = request.headers.soapaction;
    if (action !== undefined && String(action).replace(/^"|"$/g, '') !== SUBMIT_ACTION) {
      return fault(reply, new GatewayError('GW_ERR_SOAP_MALFORMED', `SOAPAction "${String(action).slice(0, 100)}"`));
    }
    const body = request.body as Buffer | StreamedBody;
    if (Buffer.isBuffer(body) && body.length > bodyLimit) return fault(reply, new GatewayError('GW_ERR_XML_TOO_LARGE', `${body.length} bytes`));
    try {
      let result: ReceiverResult;
      if (body instanceof StreamedBody) {
        const extracted = await extractSubmitRequest(body.stream, { dir: tempDir, limits: { maxBytes: config.maxMessageBytes } });
        try {
          result = await options.receive({ file: extracted.file });
        } finally {
          await fs.promises.rm(extracted.file, { force: true }).catch(() => undefined);
        }
      } else {
        result = await options.receive(parseSubmitRequest(body, { maxBytes: config.maxMessageBytes }));
      }
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
    if (isGatewayError(error)) return fault(reply, error);
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
