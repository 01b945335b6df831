import { GatewayError } from '../errors/index.ts';
import type { SigningIdentity } from '../pki/index.ts';
import type { SignatureProfileName } from '../xmldsig/algorithms.ts';
import { createSsevHttp, mediaType, type SsevHttpOptions } from './http.ts';
import { mimeTypeFor, safeFileName } from './mime.ts';
import { buildMtom, parseMtom, type BuiltMultipart } from './multipart.ts';
import {
  buildRequestBody, parseResponse, soapAction,
  type DcInstitutionInfo, type DcMessageDetailsInfo, type DcMessageInfo, type DcSubjectRegistrationInfo,
  type SendElectronicDocumentArgs, type SendMessageArgs, type SoapOperation, type SoapProfileType, type SoapRequestArgs, type SoapResult,
} from './soap-envelope.ts';
import type {
  SsevAddress, SsevApi, SsevOutgoingMessage, SsevProfile, SsevReceivedAttachment, SsevReceivedMessage, SsevSentStatus,
  SsevSpool, SsevSubjectKind,
} from './types.ts';
import { secureEnvelope } from './wssecurity.ts';

/**
 * The SSEV SOAP integration service client (the legacy WCF service many records systems still use): SOAP 1.1
 * over HTTPS, MTOM-encoded (multipart/related, binary values as XOP parts), with a WS-Security header whose
 * X.509 signature endorses the timestamp (wssecurity.ts). The certificate is the login SSEV's administrators
 * registered for the administration (by thumbprint).
 *
 * Errors: a SOAP Fault is GW_ERR_SSEV_SOAP_FAULT (the service refused; not retried), except the WS-Security
 * faults (GW_ERR_SSEV_AUTH) and WCF's InternalServiceFault (an unhandled server exception: GW_ERR_SSEV_UNAVAILABLE,
 * retried). A non-2xx answer without a fault: 401/403 → AUTH, 408/429/5xx and 404 (a wrong URL is an operator
 * fix, not a message problem) → UNAVAILABLE, other 4xx → REJECTED.
 */
export interface SsevSoapClientOptions extends SsevHttpOptions {
  readonly url: string;
  /** The key and certificate of the registered SSEV login. */
  readonly identity: SigningIdentity;
  readonly signatureProfile?: SignatureProfileName;
  readonly timestampTtlSeconds?: number;
  readonly operatorEgn?: string;
  readonly serviceOid?: string;
  /** Largest answer read (default 64 MiB; the service's own limit is 50 MB). */
  readonly maxResponseBytes?: number;
  readonly now?: () => Date;
}

export interface BuiltSoapRequest {
  readonly envelope: Buffer;
  readonly mtom: BuiltMultipart;
  readonly action: string;
}

export interface SsevSoapClient extends SsevApi {
  readonly kind: 'soap';
  /** The MTOM package of a signed request, for tests that tamper with it. */
  buildRequest(request: SoapRequestArgs): BuiltSoapRequest;
  /** Posts an already built package and reads the typed answer. */
  post<O extends SoapOperation>(op: O, mtom: BuiltMultipart): Promise<SoapResult<O>>;
  sendElectronicDocument(args: SendElectronicDocumentArgs): Promise<number>;
  sendMessage(args: SendMessageArgs): Promise<number>;
  checkSubjectHasRegistration(identificator: string): Promise<DcSubjectRegistrationInfo>;
  getReceivedMessagesList(onlyNew: boolean): Promise<DcMessageInfo[]>;
  getReceivedMessageContent(messageId: number): Promise<{ message: DcMessageDetailsInfo; raw: Buffer }>;
  getSentMessageStatus(messageId: number): Promise<{ message: DcMessageDetailsInfo; raw: Buffer }>;
  getRegisteredInstitutions(): Promise<DcInstitutionInfo[]>;
}

const AUTH_FAULTS = new Set(['InvalidSecurity', 'FailedAuthentication', 'InvalidSecurityToken', 'SecurityTokenUnavailable', 'MessageExpired', 'FailedCheck']);

export function createSsevSoapClient(options: SsevSoapClientOptions): SsevSoapClient {
  const http = createSsevHttp(options);
  const endpoint = http.url(options.url);
  const maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
  const now = options.now ?? (() => new Date());

  function buildRequest(request: SoapRequestArgs): BuiltSoapRequest {
    const body = buildRequestBody(request, { operatorEgn: options.operatorEgn, serviceOid: options.serviceOid });
    const envelope = Buffer.from(secureEnvelope(body.xml, {
      identity: options.identity, profile: options.signatureProfile ?? 'rsa-sha1', now: now(), ttlSeconds: options.timestampTtlSeconds,
    }), 'utf8');
    return { envelope, mtom: buildMtom(envelope, body.attachments), action: soapAction(request.op) };
  }

  async function exchange<O extends SoapOperation>(op: O, mtom: BuiltMultipart): Promise<{ result: SoapResult<O>; raw: Buffer }> {
    const reply = await http.request(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': mtom.contentType, SOAPAction: `"${soapAction(op)}"`, Accept: 'multipart/related, text/xml', 'MIME-Version': '1.0' },
      body: mtom.parts, maxBytes: maxResponseBytes,
    });
    const type = mediaType(reply.headers['content-type']);
    let root: Buffer | undefined;
    let parts: ReadonlyMap<string, Buffer> = new Map();
    if (type === 'multipart/related') {
      const pkg = parseMtom(reply.body, String(reply.headers['content-type']));
      root = pkg.root;
      parts = pkg.attachments;
    } else if (type === 'text/xml' || type === 'application/soap+xml' || type === 'application/xop+xml') {
      root = reply.body;
    }
    const success = reply.status >= 200 && reply.status < 300;
    if (!root) {
      if (success) throw new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', `${op}: HTTP ${reply.status} with content type ${type.slice(0, 60) || 'none'}`);
      throw httpError(op, reply.status);
    }
    let parsed;
    try {
      parsed = parseResponse(op, root, parts, maxResponseBytes);
    } catch (error) {
      if (!success) throw httpError(op, reply.status); // an error page, not SOAP
      throw error;
    }
    if (parsed.kind === 'fault') {
      const { code, text } = parsed.fault;
      if (AUTH_FAULTS.has(code)) throw new GatewayError('GW_ERR_SSEV_AUTH', `${op}: ${code}: ${text.slice(0, 200)}`);
      if (code === 'InternalServiceFault') throw new GatewayError('GW_ERR_SSEV_UNAVAILABLE', `${op}: InternalServiceFault`);
      throw new GatewayError('GW_ERR_SSEV_SOAP_FAULT', `${op}: ${code}: ${text.slice(0, 300)}`);
    }
    if (!success) throw httpError(op, reply.status);
    return { result: parsed.result, raw: root };
  }

  async function call<O extends SoapOperation>(request: SoapRequestArgs & { op: O }): Promise<{ result: SoapResult<O>; raw: Buffer }> {
    return exchange(request.op, buildRequest(request).mtom);
  }

  async function sentDetails(op: 'GetReceivedMessageContent' | 'GetSentMessageStatus', messageId: number) {
    const { result, raw } = await call({ op, messageId });
    if (!result) throw new GatewayError('GW_ERR_SSEV_NOT_FOUND', `${op}: message ${messageId}`);
    if (result.id !== messageId) throw new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', `${op}: the answer is about another message`);
    return { message: result, raw };
  }

  async function lookup(address: SsevAddress): Promise<SsevProfile | null> {
    const { result } = await call({ op: 'CheckSubjectHasRegistration', identificator: address.identifier });
    if (!result.hasRegistration || !result.subject || !result.subject.isActivated) return null;
    const kind = kindOf(result.subject.profileType) ?? address.kind;
    if (!kind) return null;
    if (address.kind && address.kind !== kind) return null;
    return { kind, identifier: address.identifier, name: result.subject.name };
  }

  async function send(message: SsevOutgoingMessage): Promise<number> {
    const { result } = await call({
      op: 'SendMessage',
      args: {
        title: message.subject, ...(message.text ? { messageText: message.text } : {}),
        documents: message.attachments.map((a) => ({
          documentName: a.fileName, contentType: a.mimeType, content: a.bytes, ...(message.regNumber ? { registrationNumber: message.regNumber } : {}),
        })),
        receiverType: PROFILE_TYPE_OF[message.recipient.kind], receiverUniqueIdentifier: message.recipient.identifier,
      },
    });
    return result;
  }

  async function sentStatus(messageId: number): Promise<SsevSentStatus> {
    const { message, raw } = await sentDetails('GetSentMessageStatus', messageId);
    return {
      delivered: message.dateReceived !== undefined, evidence: raw,
      ...(message.dateReceived ? { dateReceived: message.dateReceived } : {}), ...(message.dateSent ? { dateSent: message.dateSent } : {}),
    };
  }

  async function listInbox(opts: { isKnown?: (messageId: number) => boolean } = {}): Promise<number[]> {
    const { result } = await call({ op: 'GetReceivedMessagesList', onlyNew: true });
    return result.map((m) => m.id).filter((id) => id > 0 && !opts.isKnown?.(id));
  }

  async function receive(messageId: number, spool: SsevSpool): Promise<SsevReceivedMessage> {
    const { message, raw } = await sentDetails('GetReceivedMessageContent', messageId);
    const attachments: SsevReceivedAttachment[] = message.attachedDocuments.map((d, i) => {
      const stored = spool.putBuffer(d.content);
      const fileName = safeFileName(d.documentName, `file-${i + 1}`);
      return { fileName, mimeType: mimeTypeFor(fileName, d.contentType), ...stored };
    });
    const sender = message.senderProfile;
    const kind = kindOf(sender?.profileType);
    return {
      messageId, subject: message.title, text: message.messageText ?? '',
      ...(message.dateSent ? { dateSent: message.dateSent } : {}), ...(message.dateReceived ? { dateReceived: message.dateReceived } : {}),
      sender: {
        ...(sender?.id !== undefined ? { profileId: sender.id } : {}), name: sender?.electronicSubjectName ?? '', identifier: '',
        ...(kind ? { kind } : {}),
      },
      attachments, evidence: stripBinary(raw),
    };
  }

  return {
    kind: 'soap',
    buildRequest,
    post: async (op, mtom) => (await exchange(op, mtom)).result,
    sendElectronicDocument: async (args) => (await call({ op: 'SendElectronicDocument', args })).result,
    sendMessage: async (args) => (await call({ op: 'SendMessage', args })).result,
    checkSubjectHasRegistration: async (identificator) => (await call({ op: 'CheckSubjectHasRegistration', identificator })).result,
    getReceivedMessagesList: async (onlyNew) => (await call({ op: 'GetReceivedMessagesList', onlyNew })).result,
    getReceivedMessageContent: (messageId) => sentDetails('GetReceivedMessageContent', messageId),
    getSentMessageStatus: (messageId) => sentDetails('GetSentMessageStatus', messageId),
    getRegisteredInstitutions: async () => (await call({ op: 'GetRegisteredInstitutions' })).result,
    lookup, send, sentStatus, listInbox, receive,
    close: () => http.close(),
  };
}

const PROFILE_TYPE_OF: Readonly<Record<SsevSubjectKind, SoapProfileType>> = { person: 'Person', 'legal-entity': 'LegalPerson', institution: 'Institution' };

function kindOf(type: SoapProfileType | undefined): SsevSubjectKind | undefined {
  switch (type) {
    case 'Person': return 'person';
    case 'LegalPerson': return 'legal-entity';
    case 'Institution':
    case 'Administrator': return 'institution';
    default: return undefined;
  }
}

function httpError(op: string, status: number): GatewayError {
  if (status === 401 || status === 403) return new GatewayError('GW_ERR_SSEV_AUTH', `${op}: HTTP ${status}`);
  if (status === 404 || status === 408 || status === 429 || status >= 500) return new GatewayError('GW_ERR_SSEV_UNAVAILABLE', `${op}: HTTP ${status} without a SOAP Fault`);
  if (status >= 400) return new GatewayError('GW_ERR_SSEV_REJECTED', `${op}: HTTP ${status}`);
  return new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', `${op}: unexpected HTTP ${status}`);
}

/** The evidence copy of a content answer keeps the envelope, not inline base64 of the files (they are in the spool). */
function stripBinary(raw: Buffer): Buffer {
  if (raw.length < 64 * 1024) return raw;
  return Buffer.from(raw.toString('utf8').replace(/(<(?:[\w]+:)?Content>)[A-Za-z0-9+/=\s]{1024,}(<\/(?:[\w]+:)?Content>)/g, '$1[in the spool]$2'), 'utf8');
}
