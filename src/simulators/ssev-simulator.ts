import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { parseDpMiscinfo } from '../ssev/dp-miscinfo.ts';
import { contentTypeParameter, mediaType } from '../ssev/http.ts';
import { XOP_NS, buildMtom, cidHref, formDataFileName, parseMtom, parseMultipart, type MtomAttachment } from '../ssev/multipart.ts';
import { DC_NS, INTEGRATION_NS, SOAP_ACTION_BASE, binaryValue, escapeXml, type SoapProfileType } from '../ssev/soap-envelope.ts';
import type { SsevSubjectKind } from '../ssev/types.ts';
import { SOAP11_NS, verifyWsSecurity } from '../ssev/wssecurity.ts';
import { childElements, elementText, parseXml, type XmlElement } from '../xml/index.ts';

/**
 * A stand-in for SSEV (eDelivery) on loopback, for tests and the demo, speaking both APIs' real wire formats:
 *
 * - the ESB REST API under /api/v1 (JSON), with an OAuth2 client-credentials token endpoint (/token) and the
 *   `Dp-Miscinfo` check SSEV's EsbAuthHandler does (the client OID and CN must be a registered ESB user; the
 *   header must parse exactly, `operatorID:` with its colon); blobs (multipart upload, download links on a
 *   "blob host" path), templates with file fields, profile search/check, send, view, inbox and open;
 * - the SOAP integration service (/Services/EDeliveryIntegrationService.svc): MTOM requests, a real XMLDSig
 *   verification of the WS-Security header (unsigned, expired, tampered or unregistered-certificate requests are
 *   refused with WCF's InvalidSecurity fault), the seven operations the gateway uses, MTOM answers (binary values
 *   of at least `mtomThreshold` bytes as XOP parts, smaller ones inline);
 * - push notifications `{"EventType":"Received"|"Delivered","MessageId":n}` to a URL configured per profile;
 * - failure modes: down (connections reset), HTTP 500, malformed answers, 400/faults, hanging.
 *
 * A message opened by its recipient (REST open, SOAP GetReceivedMessageContent, or `openAsRecipient`) gets its
 * dateReceived: that is SSEV's "delivered".
 */
export interface SimProfile {
  readonly profileId: number;
  readonly kind: SsevSubjectKind;
  /** ЕГН/ЛНЧ or ЕИК/БУЛСТАТ. */
  readonly identifier: string;
  readonly name: string;
  readonly electronicSubjectId: string;
  isActivated: boolean;
  pushUrl?: string;
}

export interface SimFile {
  readonly blobId: number;
  readonly fileName: string;
  readonly contentType: string;
  readonly bytes: Buffer;
  readonly ownerProfileId: number;
}

export interface SimMessage {
  readonly messageId: number;
  readonly senderProfileId: number;
  readonly recipientProfileIds: readonly number[];
  readonly subject: string;
  readonly text: string;
  /** SSEV keeps its own RNU (a fresh GUID), whatever the client sent (protocols.md §4.3). */
  readonly rnu: string;
  /** What the client asked for as RNU (REST), for tests. */
  readonly requestedRnu?: string;
  readonly templateId: number;
  readonly files: readonly SimFile[];
  readonly via: 'rest' | 'soap' | 'portal';
  readonly regNumber?: string;
  readonly dateCreated: string;
  readonly dateSent: string;
  /** By recipient profile id. */
  readonly dateReceived: Map<number, string>;
}

export type SimFailure = 'down' | 'http500' | 'malformed' | 'http400' | 'hang';
export type SimScope = 'rest' | 'soap' | 'token' | 'blob' | 'any';

export interface SimCall {
  readonly api: 'rest' | 'soap' | 'token' | 'blob' | 'other';
  readonly method: string;
  readonly path: string;
  op?: string;
  status: number;
  /** Why the request was refused (WS-Security, Dp-Miscinfo, validation), for tests. */
  refused?: string;
  /** The Dp-Miscinfo header as received (REST). */
  dpMiscinfo?: string;
  failure?: SimFailure;
}

export interface SimPush {
  readonly url: string;
  readonly body: { EventType: 'Received' | 'Delivered'; MessageId: number };
  status?: number;
  error?: string;
}

export interface SimTemplateField {
  readonly id: string;
  readonly label: string;
  readonly type: 'hidden' | 'textfield' | 'textarea' | 'datetime' | 'checkbox' | 'select' | 'file' | 'markdown';
  readonly isRequired: boolean;
}

export interface SsevSimulatorOptions {
  readonly host?: string;
  readonly port?: number;
  readonly profiles?: ReadonlyArray<Omit<SimProfile, 'electronicSubjectId' | 'isActivated'> & { isActivated?: boolean }>;
  /** ESB users: token credentials, the identity their Dp-Miscinfo must carry, and the profile they act as. */
  readonly restClients?: ReadonlyArray<{ clientId: string; clientSecret: string; clientOid: string; clientCn: string; profileId: number }>;
  /** SSEV logins by certificate thumbprint (SHA-1, lowercase hex) and the profile they act as. */
  readonly soapClients?: ReadonlyArray<{ thumbprint: string; profileId: number }>;
  readonly templates?: ReadonlyArray<{ templateId: number; name: string; fields: readonly SimTemplateField[] }>;
  readonly tokenLifetimeSeconds?: number;
  /** WCF's maxClockSkew (default 5 minutes). */
  readonly clockSkewMs?: number;
  readonly mtomThreshold?: number;
}

export interface SsevSimulator {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly tokenUrl: string;
  readonly soapUrl: string;
  readonly calls: SimCall[];
  readonly pushes: SimPush[];
  profile(profileId: number): SimProfile | undefined;
  addProfile(p: Omit<SimProfile, 'electronicSubjectId' | 'isActivated'> & { isActivated?: boolean }): SimProfile;
  setPushUrl(profileId: number, url: string | undefined): void;
  message(messageId: number): SimMessage | undefined;
  messages(): SimMessage[];
  /** Someone sends `to` a message through the portal: it lands in the inbox, with a Received push. */
  sendToInbox(input: { from: number; to: number; subject: string; text?: string; rnu?: string; files?: Array<{ fileName: string; bytes: Buffer; contentType?: string }> }): number;
  /** The recipient opens a message: dateReceived is set and the sender gets a Delivered push. */
  openAsRecipient(messageId: number, recipientProfileId?: number): void;
  /** The next `n` requests in `scope` fail this way. */
  failNext(n: number, kind: SimFailure, scope?: SimScope): void;
  /** While down, every connection is reset. */
  setDown(down: boolean): void;
  /** Waits until the pushes sent so far have been answered. */
  flushPushes(): Promise<void>;
  close(): Promise<void>;
}

const SOAP_PATH = '/Services/EDeliveryIntegrationService.svc';
const MAX_REQUEST_BYTES = 60 * 1024 * 1024;
/** blobs/src/web.config: maxAllowedContentLength. */
const MAX_BLOB_REQUEST = 53_477_376;
const SOAP_MAX_DOCUMENT = 10_000 * 1024;
const SOAP_MAX_DOCUMENTS = 10;

export const DEFAULT_TEMPLATE = {
  templateId: 1,
  name: 'Съобщение',
  fields: [
    { id: '179ea4dc-7879-43ad-8073-72b263915656', label: 'Съдържание', type: 'textarea', isRequired: false },
    { id: 'e2135802-5e34-4c60-b36e-c86d910a571a', label: 'Прикачени файлове', type: 'file', isRequired: false },
  ],
} as const satisfies { templateId: number; name: string; fields: readonly SimTemplateField[] };

const TARGET_GROUPS: Record<SsevSubjectKind, { id: number; name: string }> = {
  person: { id: 1, name: 'Физически лица' },
  'legal-entity': { id: 2, name: 'Юридически лица' },
  institution: { id: 3, name: 'Публична администрация' },
};
const SOAP_TYPE: Record<SsevSubjectKind, SoapProfileType> = { person: 'Person', 'legal-entity': 'LegalPerson', institution: 'Institution' };

class Refusal extends Error {
  constructor(readonly status: number, readonly reason: string, readonly faultCode?: string) {
    super(reason);
  }
}

export async function startSsevSimulator(options: SsevSimulatorOptions = {}): Promise<SsevSimulator> {
  const profiles = new Map<number, SimProfile>();
  const blobs = new Map<number, SimFile & { temporary: boolean }>();
  const messages = new Map<number, SimMessage>();
  const downloadTokens = new Map<string, { blobId: number; expires: number }>();
  const accessTokens = new Map<string, { clientId: string; expires: number }>();
  const templates = new Map((options.templates ?? [DEFAULT_TEMPLATE]).map((t) => [t.templateId, t]));
  const calls: SimCall[] = [];
  const pushes: SimPush[] = [];
  const pendingPushes = new Set<Promise<void>>();
  const failures: Array<{ kind: SimFailure; scope: SimScope }> = [];
  const sockets = new Set<Socket>();
  let down = false;
  let nextBlobId = 5001;
  let nextMessageId = 1001;
  const mtomThreshold = options.mtomThreshold ?? 768;
  let url = '';

  const addProfile = (p: Omit<SimProfile, 'electronicSubjectId' | 'isActivated'> & { isActivated?: boolean }): SimProfile => {
    const full: SimProfile = { ...p, electronicSubjectId: randomUUID(), isActivated: p.isActivated ?? true };
    profiles.set(full.profileId, full);
    return full;
  };
  for (const p of options.profiles ?? []) addProfile(p);

  const now = () => new Date();
  /** REST dates: .NET local DateTime without offset, milliseconds. */
  const restDate = (iso: string) => iso.slice(0, 23);

  // ── push notifications ──

  function push(profileId: number, body: SimPush['body']): void {
    const target = profiles.get(profileId)?.pushUrl;
    if (!target) return;
    const record: SimPush = { url: target, body };
    pushes.push(record);
    const p = fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      .then(async (res) => { record.status = res.status; await res.arrayBuffer(); })
      .catch((error: Error) => { record.error = error.message; });
    pendingPushes.add(p);
    void p.finally(() => pendingPushes.delete(p));
  }

  function open(message: SimMessage, recipientProfileId: number): void {
    if (message.dateReceived.has(recipientProfileId)) return;
    message.dateReceived.set(recipientProfileId, now().toISOString());
    push(message.senderProfileId, { EventType: 'Delivered', MessageId: message.messageId });
  }

  function createMessage(m: Omit<SimMessage, 'messageId' | 'dateCreated' | 'dateSent' | 'dateReceived' | 'rnu'>): SimMessage {
    const at = now().toISOString();
    const message: SimMessage = { ...m, messageId: nextMessageId++, rnu: randomUUID(), dateCreated: at, dateSent: at, dateReceived: new Map() };
    messages.set(message.messageId, message);
    for (const r of message.recipientProfileIds) push(r, { EventType: 'Received', MessageId: message.messageId });
    return message;
  }

  function takeFailure(scope: Exclude<SimScope, 'any'>): SimFailure | undefined {
    const i = failures.findIndex((f) => f.scope === 'any' || f.scope === scope);
    if (i === -1) return undefined;
    return failures.splice(i, 1)[0].kind;
  }

  // ── the server ──

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const api: SimCall['api'] = path === '/token' ? 'token' : path.startsWith('/api/v1/') ? 'rest' : path === SOAP_PATH ? 'soap' : path.startsWith('/blob-download/') ? 'blob' : 'other';
    const call: SimCall = { api, method: req.method ?? '', path, status: 0 };
    calls.push(call);
    if (down) {
      call.failure = 'down';
      req.socket.destroy();
      return;
    }
    const failure = api === 'other' ? undefined : takeFailure(api);
    if (failure) {
      call.failure = failure;
      if (failure === 'down') { req.socket.destroy(); return; }
      if (failure === 'hang') { req.resume(); return; }
      if (failure === 'http500') { req.resume(); reply(res, call, 500, 'text/html', Buffer.from('<html><body>Service Unavailable</body></html>')); return; }
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) { reply(res, call, 413, 'text/plain', Buffer.from('too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      const body = Buffer.concat(chunks);
      try {
        route(req, res, call, body, failure);
      } catch (error) {
        if (error instanceof Refusal) {
          call.refused = error.reason;
          if (api === 'soap') soapFault(res, call, error.status, error.faultCode ?? 's:Client', error.reason);
          else json(res, call, error.status, { title: error.reason, status: error.status });
        } else {
          reply(res, call, 500, 'text/plain', Buffer.from(`simulator error: ${(error as Error).message}`));
        }
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const addr = server.address() as AddressInfo;
  url = `http://${addr.address}:${addr.port}`;

  function route(req: http.IncomingMessage, res: http.ServerResponse, call: SimCall, body: Buffer, failure: SimFailure | undefined): void {
    const path = call.path;
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    if (call.api === 'token') return token(req, res, call, body);
    if (call.api === 'blob') {
      const t = downloadTokens.get(path.slice('/blob-download/'.length));
      const blob = t && t.expires > Date.now() ? blobs.get(t.blobId) : undefined;
      if (!blob) return json(res, call, 404, { title: 'Not Found' });
      return reply(res, call, 200, 'application/octet-stream', blob.bytes);
    }
    if (call.api === 'soap') return soap(req, res, call, body, failure);
    if (call.api !== 'rest') return json(res, call, 404, { title: 'Not Found' });

    // REST: authentication first, as SSEV's ESB auth handler.
    const actor = authenticate(req, call);
    if (failure === 'malformed') return json(res, call, 200, { messageId: 'not-a-number', result: 'not-a-list', profileId: 'x', blobId: null });
    if (failure === 'http400') return json(res, call, 400, { title: 'One or more validation errors occurred.', status: 400 });
    const m = (re: RegExp) => re.exec(path);
    let match: RegExpExecArray | null;
    if (req.method === 'GET' && path === '/api/v1/target-groups') {
      return json(res, call, 200, Object.values(TARGET_GROUPS).map((g) => ({ targetGroupId: g.id, name: g.name, canSelectRecipients: g.id === 3 })));
    }
    if (req.method === 'GET' && path === '/api/v1/templates') {
      return json(res, call, 200, [...templates.values()].map((t) => ({ templateId: t.templateId, name: t.name, identityNumber: `T-${t.templateId}`, read: 1, write: 1, responseTemplateId: null })));
    }
    if (req.method === 'GET' && (match = m(/^\/api\/v1\/templates\/(\d+)$/))) {
      const t = templates.get(Number(match[1]));
      if (!t) return json(res, call, 404, { title: 'Not Found' });
      return json(res, call, 200, { templateId: t.templateId, name: t.name, identityNumber: `T-${t.templateId}`, read: 1, write: 1, content: t.fields.map((f) => ({ ...f, isEncrypted: false, discriminator: f.type })), responseTemplateId: null });
    }
    if (req.method === 'GET' && path === '/api/v1/profiles/search') {
      const identifier = query.get('identifier') ?? '';
      const group = Number(query.get('targetGroupId'));
      const p = [...profiles.values()].find((x) => x.identifier === identifier && TARGET_GROUPS[x.kind].id === group && x.isActivated);
      if (!p) return json(res, call, 404, { title: 'Not Found' });
      return json(res, call, 200, { profileId: p.profileId, identifier: p.identifier, name: p.name, email: null, phone: null });
    }
    if (req.method === 'GET' && path === '/api/v1/profiles/check') {
      const identifier = query.get('identifier') ?? '';
      const found = [...profiles.values()].filter((x) => x.identifier === identifier);
      return json(res, call, 200, {
        result: found.map((p) => ({ profileId: p.profileId, identifier: p.identifier, name: p.name, email: null, phone: null, address: null, isActivated: p.isActivated, isPassive: false, targetGroupId: TARGET_GROUPS[p.kind].id, targetGroupName: TARGET_GROUPS[p.kind].name })),
        length: found.length,
      });
    }
    if (req.method === 'GET' && (match = m(/^\/api\/v1\/profiles\/(\d+)$/))) {
      const p = profiles.get(Number(match[1]));
      if (!p) return json(res, call, 404, { title: 'Not Found' });
      return json(res, call, 200, { profileId: p.profileId, identifier: p.identifier, name: p.name, email: null, phone: null, address: null });
    }
    if (req.method === 'POST' && path === '/api/v1/blobs') return uploadBlob(req, res, call, body, actor);
    if (req.method === 'POST' && path === '/api/v1/messages') return restSend(req, res, call, body, actor);
    if (req.method === 'GET' && (match = m(/^\/api\/v1\/messages\/(\d+)\/view$/))) {
      const msg = messages.get(Number(match[1]));
      if (!msg) return json(res, call, 404, { title: 'Not Found' });
      if (msg.senderProfileId !== actor.profileId) throw new Refusal(403, 'not the sender of this message');
      return json(res, call, 200, {
        messageId: msg.messageId, dateSent: restDate(msg.dateSent),
        recipients: msg.recipientProfileIds.map((r) => ({ profileId: r, name: profiles.get(r)?.name ?? '', dateReceived: msg.dateReceived.has(r) ? restDate(msg.dateReceived.get(r)!) : null })),
        subject: msg.subject, rnu: msg.rnu, templateId: msg.templateId, fields: restFields(msg, actor.profileId), forwardedMessageId: null,
      });
    }
    if (req.method === 'GET' && path === '/api/v1/messages/inbox') {
      const offset = Number(query.get('offset') ?? 0);
      const limit = Math.min(Number(query.get('limit') ?? 100), 1000);
      const mine = [...messages.values()].filter((x) => x.recipientProfileIds.includes(actor.profileId)).sort((a, b) => b.messageId - a.messageId);
      return json(res, call, 200, {
        result: mine.slice(offset, offset + limit).map((x) => ({
          messageId: x.messageId, dateSent: restDate(x.dateSent), dateReceived: x.dateReceived.has(actor.profileId) ? restDate(x.dateReceived.get(actor.profileId)!) : null,
          subject: x.subject, senderProfileName: profiles.get(x.senderProfileId)?.name ?? '', senderLoginName: 'login',
          recipientProfileName: profiles.get(actor.profileId)?.name ?? '', recipientLoginName: null, url: `${url}/messages/${x.messageId}`, rnu: x.rnu, templateId: x.templateId,
        })),
        length: mine.length,
      });
    }
    if (req.method === 'GET' && (match = m(/^\/api\/v1\/messages\/(\d+)\/open$/))) {
      const msg = messages.get(Number(match[1]));
      if (!msg) return json(res, call, 404, { title: 'Not Found' });
      if (!msg.recipientProfileIds.includes(actor.profileId)) throw new Refusal(403, 'not a recipient of this message');
      open(msg, actor.profileId);
      return json(res, call, 200, {
        messageId: msg.messageId, dateSent: restDate(msg.dateSent), sender: { profileId: msg.senderProfileId, name: profiles.get(msg.senderProfileId)?.name ?? '' },
        dateReceived: restDate(msg.dateReceived.get(actor.profileId)!), recipientLogin: { loginId: 1, name: 'gateway' },
        subject: msg.subject, rnu: msg.rnu, templateId: msg.templateId, fields: restFields(msg, actor.profileId), forwardedMessageId: null,
      });
    }
    return json(res, call, 404, { title: 'Not Found' });
  }

  function restFields(msg: SimMessage, _viewer: number): Record<string, unknown> {
    const t = templates.get(msg.templateId) ?? DEFAULT_TEMPLATE;
    const textField = t.fields.find((f) => f.type === 'textarea' || f.type === 'markdown' || f.type === 'textfield');
    const fileField = t.fields.find((f) => f.type === 'file');
    const fields: Record<string, unknown> = {};
    if (textField) fields[textField.id] = msg.text;
    if (fileField) {
      fields[fileField.id] = msg.files.map((f) => {
        const tokenValue = randomBytes(16).toString('hex');
        downloadTokens.set(tokenValue, { blobId: f.blobId, expires: Date.now() + 3600_000 });
        return {
          blobId: f.blobId, fileName: f.fileName, size: f.bytes.length, documentRegistrationNumber: msg.regNumber ?? null, isMalicious: false,
          hash: createHash('sha256').update(f.bytes).digest('hex'), hashAlgorithm: 'SHA256', downloadLink: `${url}/blob-download/${tokenValue}`,
          downloadLinkExpirationDate: restDate(new Date(Date.now() + 3600_000).toISOString()), signatures: [],
        };
      });
    }
    return fields;
  }

  function token(req: http.IncomingMessage, res: http.ServerResponse, call: SimCall, body: Buffer): void {
    const form = new URLSearchParams(body.toString('utf8'));
    let clientId = form.get('client_id') ?? '';
    let clientSecret = form.get('client_secret') ?? '';
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, ...rest] = Buffer.from(basic[1], 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent(id);
      clientSecret = decodeURIComponent(rest.join(':'));
    }
    const client = (options.restClients ?? []).find((c) => c.clientId === clientId && c.clientSecret === clientSecret);
    if (form.get('grant_type') !== 'client_credentials' || !client) {
      call.refused = 'invalid_client';
      return json(res, call, 401, { error: 'invalid_client' });
    }
    const value = randomBytes(24).toString('base64url');
    const lifetime = options.tokenLifetimeSeconds ?? 3600;
    accessTokens.set(value, { clientId, expires: Date.now() + lifetime * 1000 });
    return json(res, call, 200, { access_token: value, token_type: 'Bearer', expires_in: lifetime });
  }

  function authenticate(req: http.IncomingMessage, call: SimCall): SimProfile {
    const header = req.headers['dp-miscinfo'];
    call.dpMiscinfo = typeof header === 'string' ? header : undefined;
    const parts = typeof header === 'string' ? parseDpMiscinfo(header) : undefined;
    if (!parts) throw new Refusal(401, 'the Dp-Miscinfo header is missing or does not parse');
    const client = (options.restClients ?? []).find((c) => c.clientOid === parts.clientOid && c.clientCn === parts.clientCn);
    if (!client) throw new Refusal(401, 'no ESB user with this OID and CN');
    if (client.clientSecret) {
      const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const t = bearer ? accessTokens.get(bearer) : undefined;
      if (!t || t.expires < Date.now() || t.clientId !== client.clientId) throw new Refusal(401, 'no valid bearer token');
    }
    const p = profiles.get(client.profileId);
    if (!p) throw new Refusal(401, 'the ESB user has no profile');
    return p;
  }

  function uploadBlob(req: http.IncomingMessage, res: http.ServerResponse, call: SimCall, body: Buffer, actor: SimProfile): void {
    if (body.length > MAX_BLOB_REQUEST) return json(res, call, 413, { title: 'Request Entity Too Large' });
    const type = req.headers['content-type'] ?? '';
    if (mediaType(type) !== 'multipart/form-data') throw new Refusal(400, 'expected multipart/form-data');
    let parts;
    try {
      parts = parseMultipart(body, type);
    } catch {
      throw new Refusal(400, 'malformed multipart body');
    }
    const files = parts.filter((p) => /filename/i.test(p.headers['content-disposition'] ?? ''));
    if (files.length !== 1) throw new Refusal(400, 'exactly one file part is expected');
    const fileName = formDataFileName(files[0].headers['content-disposition']) ?? 'file';
    const blob = { blobId: nextBlobId++, fileName, contentType: mediaType(files[0].headers['content-type']) || 'application/octet-stream', bytes: Buffer.from(files[0].body), ownerProfileId: actor.profileId, temporary: (new URL(req.url ?? '/', 'http://x').searchParams.get('type') ?? '').toLowerCase() === 'temporary' };
    blobs.set(blob.blobId, blob);
    return json(res, call, 200, {
      name: fileName, size: blob.bytes.length, hashAlgorithm: 'SHA256', hash: createHash('sha256').update(blob.bytes).digest('hex'),
      blobId: blob.blobId, malwareScanStatus: 2, blobSignatureStatus: 0, errorStatus: 0,
    });
  }

  function restSend(_req: http.IncomingMessage, res: http.ServerResponse, call: SimCall, body: Buffer, actor: SimProfile): void {
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new Refusal(400, 'the body is not JSON');
    }
    const ids = input.recipientProfileIds;
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((x) => Number.isInteger(x) && profiles.get(x as number)?.isActivated)) {
      throw new Refusal(400, 'recipientProfileIds: unknown or inactive recipients');
    }
    if (typeof input.subject !== 'string' || input.subject.trim() === '') throw new Refusal(400, 'subject is required');
    const template = templates.get(Number(input.templateId));
    if (!template) throw new Refusal(400, 'unknown templateId');
    const fields = (input.fields ?? {}) as Record<string, unknown>;
    if (typeof fields !== 'object' || Array.isArray(fields)) throw new Refusal(400, 'fields must be an object');
    let text = '';
    const files: SimFile[] = [];
    for (const f of template.fields) {
      const value = fields[f.id];
      if (value === undefined || value === null) {
        if (f.isRequired) throw new Refusal(400, `field ${f.id} is required`);
        continue;
      }
      if (f.type === 'file') {
        if (!Array.isArray(value)) throw new Refusal(400, `field ${f.id} must be a list of blob ids`);
        for (const blobId of value) {
          const blob = blobs.get(Number(blobId));
          if (!blob || blob.ownerProfileId !== actor.profileId) throw new Refusal(400, `blob ${String(blobId)} is not the sender's`);
          files.push(blob);
        }
      } else if (typeof value !== 'string') {
        throw new Refusal(400, `field ${f.id} must be text`);
      } else {
        text = text ? `${text}\n${value}` : value;
      }
    }
    for (const key of Object.keys(fields)) if (!template.fields.some((f) => f.id === key)) throw new Refusal(400, `field ${key} is not in the template`);
    const msg = createMessage({
      senderProfileId: actor.profileId, recipientProfileIds: ids as number[], subject: input.subject, text, templateId: template.templateId,
      files, via: 'rest', ...(typeof input.rnu === 'string' ? { requestedRnu: input.rnu } : {}),
    });
    return json(res, call, 200, msg.messageId);
  }

  // ── SOAP ──

  function soap(req: http.IncomingMessage, res: http.ServerResponse, call: SimCall, body: Buffer, failure: SimFailure | undefined): void {
    if (req.method !== 'POST') return reply(res, call, 405, 'text/plain', Buffer.from('POST only'));
    const type = req.headers['content-type'] ?? '';
    if (mediaType(type) !== 'multipart/related' || (contentTypeParameter(type, 'type') ?? '').toLowerCase() !== 'application/xop+xml') {
      return reply(res, call, 415, 'text/plain', Buffer.from('Cannot process the message because the content type is not the expected multipart/related; type="application/xop+xml"'));
    }
    let pkg;
    try {
      pkg = parseMtom(body, type);
    } catch {
      throw new Refusal(400, 'malformed MTOM package', 's:Client');
    }
    // WS-Security, as WCF checks it before the operation runs; then SSEV's certificate validator.
    let thumbprint: string;
    try {
      thumbprint = verifyWsSecurity(pkg.root, { maxClockSkewMs: options.clockSkewMs }).thumbprint;
    } catch (error) {
      call.refused = `WS-Security: ${(error as { detail?: string }).detail ?? (error as Error).message}`;
      return soapFault(res, call, 500, 'a:InvalidSecurity', 'An error occurred when verifying security for the message.');
    }
    const login = (options.soapClients ?? []).find((c) => c.thumbprint.toLowerCase() === thumbprint);
    const actor = login ? profiles.get(login.profileId) : undefined;
    if (!actor) {
      call.refused = `certificate ${thumbprint} is not a registered SSEV login`;
      return soapFault(res, call, 500, 'a:InvalidSecurity', 'An error occurred when verifying security for the message.');
    }
    const root = parseXml(pkg.root).root;
    const bodyEl = childElements(root).find((e) => e.ns === SOAP11_NS && e.local === 'Body');
    const opEl = bodyEl ? childElements(bodyEl)[0] : undefined;
    if (!opEl || opEl.ns !== INTEGRATION_NS) throw new Refusal(500, 'no operation in the Body', 's:Client');
    const op = opEl.local;
    call.op = op;
    const action = String(req.headers.soapaction ?? '').replace(/^"|"$/g, '');
    if (action !== `${SOAP_ACTION_BASE}${op}`) throw new Refusal(500, `SOAPAction ${action} does not match ${op}`, 'a:ActionNotSupported');
    if (failure === 'malformed') return soapReply(res, call, `<${op}Response xmlns="${INTEGRATION_NS}"><${op}Result>not-a-number<Garbage/></${op}Result></${op}Response>`, []);
    if (failure === 'http400') throw new Refusal(500, 'Невалидна заявка.', 's:Client');
    const arg = (name: string) => childElements(opEl).find((e) => e.local === name);
    const argText = (name: string) => { const e = arg(name); return e ? elementText(e) : undefined; };
    const attachments: MtomAttachment[] = [];
    switch (op) {
      case 'SendElectronicDocument': {
        const docEl = arg('docBytes');
        if (!docEl) throw new Refusal(500, 'docBytes is required');
        const bytes = binaryValue(docEl, pkg.attachments);
        const name = argText('docNameWithExtension') ?? '';
        if (!/\.[A-Za-z0-9]{1,10}$/.test(name)) throw new Refusal(500, 'Името на документа трябва да съдържа разширение.');
        if (bytes.length > SOAP_MAX_DOCUMENT) throw new Refusal(500, 'Документът надвишава максимално допустимия размер.');
        const recipient = soapRecipient(argText('receiverType'), argText('receiverUniqueIdentifier'));
        const file = storeFile(name, 'application/octet-stream', bytes, actor.profileId);
        const msg = createMessage({ senderProfileId: actor.profileId, recipientProfileIds: [recipient.profileId], subject: argText('subject') ?? '', text: '', templateId: 1, files: [file], via: 'soap', ...(argText('docRegNumber') ? { regNumber: argText('docRegNumber') } : {}) });
        return soapReply(res, call, `<${op}Response xmlns="${INTEGRATION_NS}"><${op}Result>${msg.messageId}</${op}Result></${op}Response>`, attachments);
      }
      case 'SendMessage': {
        const m = arg('message');
        if (!m) throw new Refusal(500, 'message is required');
        const member = (el: XmlElement, n: string) => childElements(el).find((e) => e.local === n);
        const title = member(m, 'Title') ? elementText(member(m, 'Title')!) : '';
        if (title.trim() === '') throw new Refusal(500, 'Заглавието е задължително.');
        const docs = member(m, 'AttachedDocuments') ? childElements(member(m, 'AttachedDocuments')!).filter((e) => e.local === 'DcDocument') : [];
        if (docs.length > SOAP_MAX_DOCUMENTS) throw new Refusal(500, 'Надвишен е максималният брой прикачени документи.');
        const recipient = soapRecipient(argText('receiverType'), argText('receiverUniqueIdentifier'));
        let regNumber: string | undefined;
        const files = docs.map((d) => {
          const content = member(d, 'Content');
          if (!content) throw new Refusal(500, 'a document has no Content');
          const bytes = binaryValue(content, pkg.attachments);
          if (bytes.length > SOAP_MAX_DOCUMENT) throw new Refusal(500, 'Документът надвишава максимално допустимия размер.');
          const name = member(d, 'DocumentName') ? elementText(member(d, 'DocumentName')!) : '';
          if (!/\.[A-Za-z0-9]{1,10}$/.test(name)) throw new Refusal(500, 'Името на документа трябва да съдържа разширение.');
          regNumber ??= member(d, 'DocumentRegistrationNumber') ? elementText(member(d, 'DocumentRegistrationNumber')!) : undefined;
          return storeFile(name, member(d, 'ContentType') ? elementText(member(d, 'ContentType')!) : 'application/octet-stream', bytes, actor.profileId);
        });
        const text = member(m, 'MessageText') ? elementText(member(m, 'MessageText')!) : '';
        const msg = createMessage({ senderProfileId: actor.profileId, recipientProfileIds: [recipient.profileId], subject: title, text, templateId: 1, files, via: 'soap', ...(regNumber ? { regNumber } : {}) });
        return soapReply(res, call, `<${op}Response xmlns="${INTEGRATION_NS}"><${op}Result>${msg.messageId}</${op}Result></${op}Response>`, attachments);
      }
      case 'CheckSubjectHasRegistration': {
        const identificator = argText('identificator') ?? '';
        const p = [...profiles.values()].find((x) => x.identifier === identificator);
        const subject = p
          ? `<a:SubjectInfo xmlns:b="http://schemas.datacontract.org/2004/07/EDelivery.Common.DataContracts.ESubject"><b:ElectronicSubjectId>${p.electronicSubjectId}</b:ElectronicSubjectId><b:ElectronicSubjectName>${escapeXml(p.name)}</b:ElectronicSubjectName><b:Email i:nil="true"/><b:IsActivated>${p.isActivated}</b:IsActivated><b:PhoneNumber i:nil="true"/><b:ProfileType>${SOAP_TYPE[p.kind]}</b:ProfileType><a:InstitutionType i:nil="true"/></a:SubjectInfo>`
          : '<a:SubjectInfo i:nil="true"/>';
        return soapReply(res, call, `<${op}Response xmlns="${INTEGRATION_NS}"><${op}Result xmlns:a="${DC_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><a:HasRegistration>${p !== undefined}</a:HasRegistration><a:Identificator>${escapeXml(identificator)}</a:Identificator>${subject}</${op}Result></${op}Response>`, attachments);
      }
      case 'GetReceivedMessagesList': {
        const onlyNew = argText('onlyNew') === 'true';
        const mine = [...messages.values()].filter((x) => x.recipientProfileIds.includes(actor.profileId) && (!onlyNew || !x.dateReceived.has(actor.profileId)));
        const items = mine.map((x) => `<a:DcMessage>${dcMessageMembers(x, actor.profileId)}</a:DcMessage>`).join('');
        return soapReply(res, call, `<${op}Response xmlns="${INTEGRATION_NS}"><${op}Result xmlns:a="${DC_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">${items}</${op}Result></${op}Response>`, attachments);
      }
      case 'GetReceivedMessageContent':
      case 'GetSentMessageStatus': {
        const msg = messages.get(Number(argText('messageId')));
        const received = op === 'GetReceivedMessageContent';
        if (!msg || (received ? !msg.recipientProfileIds.includes(actor.profileId) : msg.senderProfileId !== actor.profileId)) {
          throw new Refusal(500, 'Съобщението не е намерено.');
        }
        if (received) open(msg, actor.profileId);
        const viewer = received ? actor.profileId : msg.recipientProfileIds[0];
        const docs = received
          ? `<a:AttachedDocuments>${msg.files.map((f) => `<a:DcDocument><a:Content>${binary(f.bytes, attachments)}</a:Content><a:ContentEncodingCodePage i:nil="true"/><a:ContentType>${escapeXml(f.contentType)}</a:ContentType><a:DocumentName>${escapeXml(f.fileName)}</a:DocumentName><a:DocumentRegistrationNumber>${escapeXml(msg.regNumber ?? '')}</a:DocumentRegistrationNumber><a:Id>${f.blobId}</a:Id><a:SignaturesInfo i:nil="true"/><a:TimeStamp i:nil="true"/></a:DcDocument>`).join('')}</a:AttachedDocuments>`
          : '<a:AttachedDocuments i:nil="true"/>';
        const delivered = msg.dateReceived.has(viewer);
        const details = `${dcMessageMembers(msg, viewer)}${docs}<a:MessageText>${escapeXml(msg.text)}</a:MessageText><a:TimeStampContent i:nil="true"/>` +
          (delivered ? `<a:TimeStampNRD><a:FileName>nrd.tsr</a:FileName><a:TimeStampData>${randomBytes(32).toString('base64')}</a:TimeStampData></a:TimeStampNRD>` : '<a:TimeStampNRD i:nil="true"/>') +
          `<a:TimeStampNRO><a:FileName>nro.tsr</a:FileName><a:TimeStampData>${randomBytes(32).toString('base64')}</a:TimeStampData></a:TimeStampNRO>`;
        return soapReply(res, call, `<${op}Response xmlns="${INTEGRATION_NS}"><${op}Result xmlns:a="${DC_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">${details}</${op}Result></${op}Response>`, attachments);
      }
      case 'GetRegisteredInstitutions': {
        const items = [...profiles.values()].filter((p) => p.kind === 'institution').map((p) =>
          `<a:DcInstitutionInfo><a:ElectronicSubjectId>${p.electronicSubjectId}</a:ElectronicSubjectId><a:ElectronicSubjectName>${escapeXml(p.name)}</a:ElectronicSubjectName><a:Email i:nil="true"/><a:IsActivated>${p.isActivated}</a:IsActivated><a:PhoneNumber i:nil="true"/><a:ProfileType>Institution</a:ProfileType><a:Address i:nil="true"/><a:UniqueSubjectIdentifier>${p.identifier}</a:UniqueSubjectIdentifier><a:VerificationInfo i:nil="true"/><a:HeadInstitution i:nil="true"/><a:Name>${escapeXml(p.name)}</a:Name><a:SubInstitutions i:nil="true"/></a:DcInstitutionInfo>`).join('');
        return soapReply(res, call, `<${op}Response xmlns="${INTEGRATION_NS}"><${op}Result xmlns:a="http://schemas.datacontract.org/2004/07/EDelivery.Common.DataContracts.ESubject" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">${items}</${op}Result></${op}Response>`, attachments);
      }
      default:
        throw new Refusal(500, `The message with Action '${action}' cannot be processed at the receiver.`, 'a:ActionNotSupported');
    }
  }

  function soapRecipient(type: string | undefined, identifier: string | undefined): SimProfile {
    const kind = (Object.entries(SOAP_TYPE).find(([, t]) => t === type)?.[0] ?? (type === 'Administrator' ? 'institution' : undefined)) as SsevSubjectKind | undefined;
    const p = [...profiles.values()].find((x) => x.identifier === identifier && x.kind === kind && x.isActivated);
    if (!p) throw new Refusal(500, 'Получателят не е намерен или няма активен профил.');
    return p;
  }

  function storeFile(fileName: string, contentType: string, bytes: Buffer, owner: number): SimFile {
    const f = { blobId: nextBlobId++, fileName, contentType, bytes: Buffer.from(bytes), ownerProfileId: owner, temporary: false };
    blobs.set(f.blobId, f);
    return f;
  }

  function dcProfile(p: SimProfile | undefined): string {
    if (!p) return ' i:nil="true"/>';
    return `><a:DateCreated>2020-01-01T00:00:00</a:DateCreated><a:ElectronicSubjectId>${p.electronicSubjectId}</a:ElectronicSubjectId><a:ElectronicSubjectName>${escapeXml(p.name)}</a:ElectronicSubjectName><a:Email i:nil="true"/><a:Id>${p.profileId}</a:Id><a:IsDefault>true</a:IsDefault><a:Phone i:nil="true"/><a:ProfileType>${SOAP_TYPE[p.kind]}</a:ProfileType>`;
  }

  function dcMessageMembers(x: SimMessage, viewer: number): string {
    const received = x.dateReceived.get(viewer);
    const sender = profiles.get(x.senderProfileId);
    const receiver = profiles.get(viewer);
    return `<a:DateCreated>${x.dateCreated}</a:DateCreated>` + (received ? `<a:DateReceived>${received}</a:DateReceived>` : '<a:DateReceived i:nil="true"/>') +
      `<a:DateSent>${x.dateSent}</a:DateSent><a:Id>${x.messageId}</a:Id><a:IsDraft>false</a:IsDraft><a:ReceiverLogin i:nil="true"/>` +
      `<a:ReceiverProfile${dcProfile(receiver)}${receiver ? '</a:ReceiverProfile>' : ''}<a:SenderLogin i:nil="true"/>` +
      `<a:SenderProfile${dcProfile(sender)}${sender ? '</a:SenderProfile>' : ''}<a:Title>${escapeXml(x.subject)}</a:Title>`;
  }

  function binary(bytes: Buffer, attachments: MtomAttachment[]): string {
    if (bytes.length < mtomThreshold) return bytes.toString('base64');
    const cid = `http://tempuri.org/1/${Date.now()}${attachments.length}`;
    attachments.push({ cid, bytes });
    return `<xop:Include href="${cidHref(cid)}" xmlns:xop="${XOP_NS}"/>`;
  }

  function soapReply(res: http.ServerResponse, call: SimCall, bodyXml: string, attachments: MtomAttachment[], status = 200): void {
    // WCF answers in MTOM with an (unsigned) timestamp header, as TransportWithMessageCredential does.
    const created = now();
    const envelope = `<s:Envelope xmlns:s="${SOAP11_NS}" xmlns:u="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"><s:Header><o:Security s:mustUnderstand="1" xmlns:o="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><u:Timestamp u:Id="_0"><u:Created>${created.toISOString()}</u:Created><u:Expires>${new Date(created.getTime() + 300_000).toISOString()}</u:Expires></u:Timestamp></o:Security></s:Header><s:Body>${bodyXml}</s:Body></s:Envelope>`;
    const mtom = buildMtom(Buffer.from(envelope, 'utf8'), attachments);
    reply(res, call, status, mtom.contentType, Buffer.concat(mtom.parts));
  }

  function soapFault(res: http.ServerResponse, call: SimCall, status: number, code: string, text: string): void {
    const ns = code.startsWith('a:') ? (code === 'a:InvalidSecurity' ? ' xmlns:a="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"' : ' xmlns:a="http://schemas.microsoft.com/ws/2005/05/addressing/none"') : '';
    soapReply(res, call, `<s:Fault><faultcode${ns}>${code}</faultcode><faultstring xml:lang="bg-BG">${escapeXml(text)}</faultstring></s:Fault>`, [], status);
  }

  // ── helpers ──

  function json(res: http.ServerResponse, call: SimCall, status: number, value: unknown): void {
    reply(res, call, status, 'application/json; charset=utf-8', Buffer.from(JSON.stringify(value), 'utf8'));
  }

  function reply(res: http.ServerResponse, call: SimCall, status: number, contentType: string, body: Buffer): void {
    if (res.writableEnded) return;
    call.status = status;
    res.writeHead(status, { 'content-type': contentType, 'content-length': String(body.length) });
    res.end(body);
  }

  return {
    url,
    tokenUrl: `${url}/token`,
    soapUrl: `${url}${SOAP_PATH}`,
    calls,
    pushes,
    profile: (id) => profiles.get(id),
    addProfile,
    setPushUrl(profileId, target) {
      const p = profiles.get(profileId);
      if (p) p.pushUrl = target;
    },
    message: (id) => messages.get(id),
    messages: () => [...messages.values()],
    sendToInbox(input) {
      if (!profiles.has(input.from) || !profiles.has(input.to)) throw new Error('unknown profile');
      const files = (input.files ?? []).map((f) => storeFile(f.fileName, f.contentType ?? 'application/octet-stream', f.bytes, input.from));
      return createMessage({ senderProfileId: input.from, recipientProfileIds: [input.to], subject: input.subject, text: input.text ?? '', templateId: DEFAULT_TEMPLATE.templateId, files, via: 'portal', ...(input.rnu ? { requestedRnu: input.rnu } : {}) }).messageId;
    },
    openAsRecipient(messageId, recipientProfileId) {
      const msg = messages.get(messageId);
      if (!msg) throw new Error(`no message ${messageId}`);
      open(msg, recipientProfileId ?? msg.recipientProfileIds[0]);
    },
    failNext(n, kind, scope = 'any') {
      for (let i = 0; i < n; i++) failures.push({ kind, scope });
    },
    setDown(value) {
      down = value;
      if (value) for (const s of sockets) s.destroy();
    },
    async flushPushes() {
      while (pendingPushes.size > 0) await Promise.allSettled([...pendingPushes]);
    },
    async close() {
      await Promise.allSettled([...pendingPushes]);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
