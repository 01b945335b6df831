import { ContentTooLargeError } from '../store/content-store.ts';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import { buildDpMiscinfo, type DpMiscinfoParts } from './dp-miscinfo.ts';
import { createSsevHttp, mediaType, type HttpReply, type SsevHttpOptions } from './http.ts';
import { arr, bad, bool, id, int, obj, optDateTime, optStr, parseJson, str, type Json } from './json.ts';
import { mimeTypeFor, safeFileName } from './mime.ts';
import { buildFormData } from './multipart.ts';
import {
  KIND_OF_TARGET_GROUP, TARGET_GROUP_OF,
  type SsevAddress, type SsevApi, type SsevOutgoingMessage, type SsevProfile, type SsevReceivedAttachment,
  type SsevReceivedMessage, type SsevSentStatus, type SsevSpool, type SsevSubjectKind,
} from './types.ts';

/**
 * The SSEV ESB REST API client (protocols.md §4.2; docs/edelivery_esb_api_0.6.md of the reference).
 *
 * Every request carries the `Dp-Miscinfo` identity header built from configuration and, when a token endpoint is
 * configured, an OAuth2 client-credentials bearer token (cached until shortly before it expires; one retry with
 * a fresh token on 401). Every answer is validated before use (malformed → GW_ERR_SSEV_BAD_RESPONSE) and every
 * body is size-bounded; blobs stream to the spool with their own bound.
 *
 * Status codes: 401 → GW_ERR_SSEV_AUTH, 404 → GW_ERR_SSEV_NOT_FOUND, 408/425/429/5xx → GW_ERR_SSEV_UNAVAILABLE
 * (retryable), other 4xx (validation, forbidden) → GW_ERR_SSEV_REJECTED.
 */
export interface SsevRestTokenOptions {
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly scope?: string;
  /** client_secret_basic (default) or client_secret_post. */
  readonly auth?: 'basic' | 'post';
}

export interface SsevRestClientOptions extends SsevHttpOptions {
  /** ESB base URL; `/api/v1/...` is appended. */
  readonly baseUrl: string;
  readonly blobsBaseUrl?: string;
  /** Origins a blob download link may point to (default: those of baseUrl and blobsBaseUrl). */
  readonly blobDownloadOrigins?: readonly string[];
  readonly token?: SsevRestTokenOptions;
  readonly identity: DpMiscinfoParts;
  /** The template outgoing messages use. */
  readonly templateId: number;
  readonly textFieldId?: string;
  readonly fileFieldId?: string;
  /** Largest JSON answer read (default 8 MiB). */
  readonly maxResponseBytes?: number;
  /** Largest blob downloaded (default 53 477 376 bytes, the blobs service's own request limit). */
  readonly maxBlobBytes?: number;
  readonly inboxPageSize?: number;
  readonly inboxMaxPages?: number;
  readonly now?: () => number;
}

export interface RestTemplateField {
  readonly id: string;
  readonly label: string;
  readonly type: string;
  readonly isRequired: boolean;
}

export interface RestTemplate {
  readonly templateId: number;
  readonly name: string;
  readonly fields: readonly RestTemplateField[];
}

export interface RestProfile {
  readonly profileId: number;
  readonly identifier: string;
  readonly name: string;
}

export interface RestProfileCheck extends RestProfile {
  readonly isActivated: boolean;
  readonly targetGroupId: number;
}

export interface RestUploadedBlob {
  readonly blobId: number;
  readonly size: number;
  readonly malwareScanStatus?: number;
}

export interface RestMessageSend {
  readonly recipientProfileIds: readonly number[];
  readonly subject: string;
  readonly rnu?: string | null;
  readonly templateId: number;
  readonly fields: Readonly<Record<string, unknown>>;
}

export interface RestMessageView {
  readonly messageId: number;
  readonly dateSent?: string;
  readonly rnu?: string;
  readonly recipients: ReadonlyArray<{ profileId: number; name: string; dateReceived?: string }>;
}

export interface RestInboxItem {
  readonly messageId: number;
  readonly dateSent?: string;
  readonly dateReceived?: string;
  readonly templateId?: number;
}

export interface RestOpenedBlob {
  readonly blobId: number;
  readonly fileName: string;
  readonly size?: number;
  readonly downloadLink: string;
}

export interface RestOpenedMessage {
  readonly messageId: number;
  readonly dateSent?: string;
  readonly dateReceived?: string;
  readonly sender: { profileId: number; name: string };
  readonly subject: string;
  readonly rnu?: string;
  readonly templateId: number;
  /** Text values of the non-file fields, in answer order. */
  readonly texts: readonly string[];
  readonly blobs: readonly RestOpenedBlob[];
}

export interface SsevRestClient extends SsevApi {
  readonly kind: 'rest';
  targetGroups(): Promise<Array<{ targetGroupId: number; name: string }>>;
  templates(): Promise<Array<{ templateId: number; name: string }>>;
  template(templateId: number): Promise<RestTemplate>;
  searchProfile(identifier: string, targetGroupId: number, templateId?: number): Promise<RestProfile | null>;
  checkProfile(identifier: string): Promise<RestProfileCheck[]>;
  getProfile(profileId: number): Promise<RestProfile>;
  uploadBlob(file: { fileName: string; mimeType: string; bytes: Buffer }): Promise<RestUploadedBlob>;
  sendMessage(message: RestMessageSend): Promise<number>;
  viewMessage(messageId: number): Promise<{ view: RestMessageView; raw: Buffer }>;
  inbox(offset: number, limit: number): Promise<{ items: RestInboxItem[]; length: number }>;
  openMessage(messageId: number): Promise<{ message: RestOpenedMessage; raw: Buffer }>;
  downloadBlob(link: string, spool: SsevSpool): Promise<{ sha256: string; size: number }>;
}

const JSON_LIMIT = 8 * 1024 * 1024;
const TOKEN_LIMIT = 64 * 1024;

export function createSsevRestClient(options: SsevRestClientOptions): SsevRestClient {
  const http = createSsevHttp(options);
  const base = http.url(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
  const blobsBase = options.blobsBaseUrl ? http.url(options.blobsBaseUrl.endsWith('/') ? options.blobsBaseUrl : `${options.blobsBaseUrl}/`) : base;
  const downloadOrigins = new Set(options.blobDownloadOrigins?.length ? options.blobDownloadOrigins.map((o) => new URL(o).origin) : [base.origin, blobsBase.origin]);
  const dpMiscinfo = buildDpMiscinfo(options.identity);
  const maxResponseBytes = options.maxResponseBytes ?? JSON_LIMIT;
  const maxBlobBytes = options.maxBlobBytes ?? 53_477_376;
  const now = options.now ?? Date.now;
  const tokenUrl = options.token ? http.url(options.token.url) : undefined;
  let token: { value: string; refreshAt: number } | undefined;
  let tokenPending: Promise<string> | undefined;
  let templateCache: Promise<RestTemplate> | undefined;

  // ── authentication ──

  async function fetchToken(): Promise<string> {
    const t = options.token!;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (t.scope) form.set('scope', t.scope);
    const headers: Record<string, string> = { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' };
    if ((t.auth ?? 'basic') === 'basic') {
      headers.Authorization = `Basic ${Buffer.from(`${encodeURIComponent(t.clientId)}:${encodeURIComponent(t.clientSecret)}`).toString('base64')}`;
    } else {
      form.set('client_id', t.clientId);
      form.set('client_secret', t.clientSecret);
    }
    const reply = await http.request(tokenUrl!, { method: 'POST', headers, body: Buffer.from(form.toString(), 'utf8'), maxBytes: TOKEN_LIMIT });
    if (reply.status === 400 || reply.status === 401 || reply.status === 403) {
      throw new GatewayError('GW_ERR_SSEV_AUTH', `the token endpoint answered HTTP ${reply.status}`);
    }
    if (reply.status < 200 || reply.status >= 300) throw statusError(reply.status, 'token');
    const body = obj(parseJson(reply.body, 'token'), 'token');
    const value = str(body.access_token, 'token.access_token', 16_384);
    if (!/^[\x21-\x7e]+$/.test(value)) throw bad('token.access_token', 'is not a printable token');
    const type = optStr(body.token_type, 'token.token_type', 40);
    if (type !== undefined && type.toLowerCase() !== 'bearer') throw bad('token.token_type', 'is not Bearer');
    const lifetime = body.expires_in === undefined ? 300 : int(body.expires_in, 'token.expires_in', 1, 10 * 365 * 86_400);
    // Refresh a minute early (or at half-life for short tokens): a token must not expire between check and use.
    token = { value, refreshAt: now() + Math.max(lifetime * 1000 - 60_000, lifetime * 500) };
    return value;
  }

  async function bearer(): Promise<string | undefined> {
    if (!options.token) return undefined;
    if (token && now() < token.refreshAt) return token.value;
    tokenPending ??= fetchToken().finally(() => { tokenPending = undefined; });
    return tokenPending;
  }

  // ── requests ──

  interface Call {
    readonly method: 'GET' | 'POST';
    readonly path: string;
    readonly query?: Record<string, string | number | undefined>;
    readonly json?: unknown;
    readonly body?: { contentType: string; parts: Buffer[] };
    readonly origin?: URL;
  }

  async function call(c: Call): Promise<HttpReply> {
    const target = new URL(c.path.replace(/^\//, ''), c.origin ?? base);
    for (const [k, v] of Object.entries(c.query ?? {})) if (v !== undefined) target.searchParams.set(k, String(v));
    for (let attempt = 0; ; attempt++) {
      const tok = await bearer();
      const headers: Record<string, string> = { Accept: 'application/json', 'Dp-Miscinfo': dpMiscinfo };
      if (tok) headers.Authorization = `Bearer ${tok}`;
      let body: Buffer | Buffer[] | undefined;
      if (c.json !== undefined) {
        headers['Content-Type'] = 'application/json; charset=utf-8';
        body = Buffer.from(JSON.stringify(c.json), 'utf8');
      } else if (c.body) {
        headers['Content-Type'] = c.body.contentType;
        body = c.body.parts;
      }
      const reply = await http.request(target, { method: c.method, headers, body, maxBytes: maxResponseBytes });
      if (reply.status === 401 && options.token && attempt === 0) {
        token = undefined; // revoked or expired early: one fresh token
        continue;
      }
      return reply;
    }
  }

  async function getJson(c: Call, what: string): Promise<{ json: Json; raw: Buffer }> {
    const reply = await call(c);
    if (reply.status < 200 || reply.status >= 300) throw statusError(reply.status, what);
    const type = mediaType(reply.headers['content-type']);
    if (type !== '' && type !== 'application/json' && !type.endsWith('+json') && type !== 'text/plain') {
      throw bad(what, `answered ${type.slice(0, 60)}, not JSON`);
    }
    return { json: parseJson(reply.body, what), raw: reply.body };
  }

  // ── the raw operations ──

  async function targetGroups() {
    const { json } = await getJson({ method: 'GET', path: 'api/v1/target-groups' }, 'target-groups');
    return arr(json, 'target-groups', 1000).map((g, i) => {
      const o = obj(g, `target-groups[${i}]`);
      return { targetGroupId: id(o.targetGroupId, `target-groups[${i}].targetGroupId`), name: str(o.name, `target-groups[${i}].name`, 500) };
    });
  }

  async function templates() {
    const { json } = await getJson({ method: 'GET', path: 'api/v1/templates' }, 'templates');
    return arr(json, 'templates', 10_000).map((t, i) => {
      const o = obj(t, `templates[${i}]`);
      return { templateId: id(o.templateId, `templates[${i}].templateId`), name: str(o.name, `templates[${i}].name`, 500) };
    });
  }

  async function template(templateId: number): Promise<RestTemplate> {
    const { json } = await getJson({ method: 'GET', path: `api/v1/templates/${templateId}` }, 'template');
    const o = obj(json, 'template');
    const fields = arr(o.content, 'template.content', 1000).map((f, i) => {
      const at = `template.content[${i}]`;
      const fo = obj(f, at);
      return {
        id: str(fo.id, `${at}.id`, 64).toLowerCase(), label: optStr(fo.label, `${at}.label`, 1000) ?? '',
        type: str(fo.type, `${at}.type`, 40), isRequired: fo.isRequired === undefined ? false : bool(fo.isRequired, `${at}.isRequired`),
      };
    });
    return { templateId: id(o.templateId, 'template.templateId'), name: optStr(o.name, 'template.name', 500) ?? '', fields };
  }

  function profileOf(value: Json, at: string): RestProfile {
    const o = obj(value, at);
    return {
      profileId: id(o.profileId, `${at}.profileId`),
      identifier: optStr(o.identifier, `${at}.identifier`, 64) ?? '',
      name: str(o.name, `${at}.name`, 1000),
    };
  }

  async function searchProfile(identifier: string, targetGroupId: number, templateId?: number): Promise<RestProfile | null> {
    try {
      const { json } = await getJson({ method: 'GET', path: 'api/v1/profiles/search', query: { identifier, templateId, targetGroupId } }, 'profiles/search');
      if (json === null) return null;
      return profileOf(json, 'profiles/search');
    } catch (error) {
      if (isGatewayError(error, 'GW_ERR_SSEV_NOT_FOUND')) return null;
      throw error;
    }
  }

  async function checkProfile(identifier: string): Promise<RestProfileCheck[]> {
    const { json } = await getJson({ method: 'GET', path: 'api/v1/profiles/check', query: { identifier, offset: 0, limit: 100 } }, 'profiles/check');
    const o = obj(json, 'profiles/check');
    return arr(o.result, 'profiles/check.result', 1000).map((p, i) => {
      const at = `profiles/check.result[${i}]`;
      const po = obj(p, at);
      return {
        ...profileOf(p, at),
        isActivated: po.isActivated === undefined ? true : bool(po.isActivated, `${at}.isActivated`),
        targetGroupId: id(po.targetGroupId, `${at}.targetGroupId`),
      };
    });
  }

  async function getProfile(profileId: number): Promise<RestProfile> {
    const { json } = await getJson({ method: 'GET', path: `api/v1/profiles/${profileId}` }, 'profile');
    return profileOf(json, 'profile');
  }

  async function uploadBlob(file: { fileName: string; mimeType: string; bytes: Buffer }): Promise<RestUploadedBlob> {
    const form = buildFormData({ fieldName: 'file', ...file });
    const { json } = await getJson({ method: 'POST', path: 'api/v1/blobs', query: { type: 'Temporary' }, body: form, origin: blobsBase }, 'blobs');
    const o = obj(json, 'blobs');
    const errorStatus = o.errorStatus === undefined || o.errorStatus === null ? 0 : int(o.errorStatus, 'blobs.errorStatus');
    if (errorStatus !== 0) throw new GatewayError('GW_ERR_SSEV_REJECTED', `blob refused: errorStatus ${errorStatus} (1 = insufficient storage)`);
    const malware = o.malwareScanStatus === undefined || o.malwareScanStatus === null ? undefined : int(o.malwareScanStatus, 'blobs.malwareScanStatus');
    if (malware === 4) throw new GatewayError('GW_ERR_SSEV_REJECTED', 'blob refused: SSEV found malicious content (malwareScanStatus 4)');
    const size = int(o.size, 'blobs.size');
    if (size !== file.bytes.length) throw bad('blobs.size', `is ${size}, we uploaded ${file.bytes.length} bytes`);
    return { blobId: id(o.blobId, 'blobs.blobId'), size, ...(malware !== undefined ? { malwareScanStatus: malware } : {}) };
  }

  async function sendMessage(message: RestMessageSend): Promise<number> {
    const { json } = await getJson({ method: 'POST', path: 'api/v1/messages', json: { ...message, rnu: message.rnu ?? null } }, 'messages');
    return id(json, 'messages (the message id)');
  }

  async function viewMessage(messageId: number) {
    const { json, raw } = await getJson({ method: 'GET', path: `api/v1/messages/${messageId}/view` }, 'messages/view');
    const o = obj(json, 'view');
    const view: RestMessageView = {
      messageId: id(o.messageId, 'view.messageId'),
      ...opt('dateSent', optDateTime(o.dateSent, 'view.dateSent')),
      ...opt('rnu', optStr(o.rnu, 'view.rnu', 64)),
      recipients: arr(o.recipients, 'view.recipients', 10_000).map((r, i) => {
        const at = `view.recipients[${i}]`;
        const ro = obj(r, at);
        return { profileId: id(ro.profileId, `${at}.profileId`), name: optStr(ro.name, `${at}.name`, 1000) ?? '', ...opt('dateReceived', optDateTime(ro.dateReceived, `${at}.dateReceived`)) };
      }),
    };
    if (view.messageId !== messageId) throw bad('view.messageId', 'is not the message asked for');
    return { view, raw };
  }

  async function inbox(offset: number, limit: number) {
    const { json } = await getJson({ method: 'GET', path: 'api/v1/messages/inbox', query: { offset, limit } }, 'messages/inbox');
    const o = obj(json, 'inbox');
    const items = arr(o.result, 'inbox.result', 10_000).map((m, i) => {
      const at = `inbox.result[${i}]`;
      const mo = obj(m, at);
      return {
        messageId: id(mo.messageId, `${at}.messageId`),
        ...opt('dateSent', optDateTime(mo.dateSent, `${at}.dateSent`)),
        ...opt('dateReceived', optDateTime(mo.dateReceived, `${at}.dateReceived`)),
        ...opt('templateId', mo.templateId === undefined || mo.templateId === null ? undefined : id(mo.templateId, `${at}.templateId`)),
      };
    });
    return { items, length: o.length === undefined ? items.length : int(o.length, 'inbox.length') };
  }

  async function openMessage(messageId: number) {
    const { json, raw } = await getJson({ method: 'GET', path: `api/v1/messages/${messageId}/open` }, 'messages/open');
    const o = obj(json, 'open');
    const sender = obj(o.sender, 'open.sender');
    const texts: string[] = [];
    const blobs: RestOpenedBlob[] = [];
    const fields = o.fields === undefined || o.fields === null ? {} : obj(o.fields, 'open.fields');
    for (const [key, value] of Object.entries(fields)) {
      const at = `open.fields[${JSON.stringify(key.slice(0, 40))}]`;
      if (Array.isArray(value) && value.length > 0 && typeof value[0] === 'object' && value[0] !== null && 'blobId' in value[0]) {
        arr(value, at, 1000).forEach((b, i) => {
          const bo = obj(b, `${at}[${i}]`);
          blobs.push({
            blobId: id(bo.blobId, `${at}[${i}].blobId`),
            fileName: str(bo.fileName, `${at}[${i}].fileName`, 1000),
            ...opt('size', bo.size === undefined || bo.size === null ? undefined : int(bo.size, `${at}[${i}].size`)),
            downloadLink: str(bo.downloadLink, `${at}[${i}].downloadLink`, 4000),
          });
        });
      } else if (typeof value === 'string') {
        if (value.trim() !== '') texts.push(value);
      } else if (value !== null && typeof value !== 'number' && typeof value !== 'boolean' && !(Array.isArray(value) && value.length === 0)) {
        throw bad(at, 'is neither text, a value nor a list of blobs');
      }
    }
    const message: RestOpenedMessage = {
      messageId: id(o.messageId, 'open.messageId'),
      ...opt('dateSent', optDateTime(o.dateSent, 'open.dateSent')),
      ...opt('dateReceived', optDateTime(o.dateReceived, 'open.dateReceived')),
      sender: { profileId: id(sender.profileId, 'open.sender.profileId'), name: str(sender.name, 'open.sender.name', 1000) },
      subject: str(o.subject, 'open.subject', 10_000),
      ...opt('rnu', optStr(o.rnu, 'open.rnu', 64)),
      templateId: id(o.templateId, 'open.templateId'),
      texts, blobs,
    };
    if (message.messageId !== messageId) throw bad('open.messageId', 'is not the message asked for');
    return { message, raw };
  }

  async function downloadBlob(link: string, spool: SsevSpool) {
    let target: URL;
    try {
      target = http.url(link);
    } catch {
      throw bad('downloadLink', 'is not an allowed absolute URL');
    }
    if (!downloadOrigins.has(target.origin)) throw bad('downloadLink', `points to ${target.origin.slice(0, 100)}, not a configured blob origin`);
    const tok = await bearer();
    const r = await http.download(target, {
      headers: { 'Dp-Miscinfo': dpMiscinfo, ...(tok ? { Authorization: `Bearer ${tok}` } : {}) }, maxBytes: 64 * 1024,
    }, async (body) => {
      try {
        return await spool.putStream(body, { maxBytes: maxBlobBytes });
      } catch (error) {
        if (error instanceof ContentTooLargeError) throw new GatewayError('GW_ERR_SSEV_TOO_LARGE', `a received blob exceeds ${maxBlobBytes} bytes`);
        throw error;
      }
    });
    if (r.status < 200 || r.status >= 300 || !r.result) throw statusError(r.status, 'blob download');
    return r.result;
  }

  // ── the channel's view ──

  async function fieldIds(): Promise<{ text?: string; file?: string }> {
    if (options.textFieldId && options.fileFieldId) return { text: options.textFieldId, file: options.fileFieldId };
    templateCache ??= template(options.templateId).catch((error: unknown) => { templateCache = undefined; throw error; });
    const t = await templateCache;
    const byType = (...types: string[]) => types.map((ty) => t.fields.find((f) => f.type.toLowerCase() === ty)).find((f) => f !== undefined)?.id;
    return { text: options.textFieldId ?? byType('textarea', 'markdown', 'textfield'), file: options.fileFieldId ?? byType('file') };
  }

  async function lookup(address: SsevAddress): Promise<SsevProfile | null> {
    for (const kind of kindsFor(address)) {
      const found = await searchProfile(address.identifier, TARGET_GROUP_OF[kind], options.templateId);
      if (found) return { kind, identifier: address.identifier, name: found.name, profileId: found.profileId };
    }
    return null;
  }

  async function send(message: SsevOutgoingMessage): Promise<number> {
    let profileId = message.recipient.profileId;
    if (profileId === undefined) {
      const found = await lookup(message.recipient);
      if (!found?.profileId) throw new GatewayError('GW_ERR_SSEV_NO_PROFILE', `${message.recipient.kind} profile`);
      profileId = found.profileId;
    }
    const ids = await fieldIds();
    const fields: Record<string, unknown> = {};
    if (message.text) {
      if (!ids.text) throw new GatewayError('GW_ERR_SSEV_REJECTED', `template ${options.templateId} has no text field`);
      fields[ids.text] = message.text;
    }
    if (message.attachments.length > 0) {
      if (!ids.file) throw new GatewayError('GW_ERR_SSEV_REJECTED', `template ${options.templateId} has no file field`);
      const blobIds: number[] = [];
      for (const a of message.attachments) blobIds.push((await uploadBlob(a)).blobId);
      fields[ids.file] = blobIds;
    }
    return sendMessage({ recipientProfileIds: [profileId], subject: message.subject, rnu: message.rnu ?? null, templateId: options.templateId, fields });
  }

  async function sentStatus(messageId: number): Promise<SsevSentStatus> {
    const { view, raw } = await viewMessage(messageId);
    const opened = view.recipients.find((r) => r.dateReceived !== undefined);
    return {
      delivered: opened !== undefined, evidence: raw,
      ...opt('dateReceived', opened?.dateReceived), ...opt('dateSent', view.dateSent), ...opt('rnu', view.rnu),
    };
  }

  async function listInbox(opts: { isKnown?: (messageId: number) => boolean } = {}): Promise<number[]> {
    const pageSize = options.inboxPageSize ?? 100;
    const maxPages = options.inboxMaxPages ?? 10;
    const ids: number[] = [];
    for (let page = 0; page < maxPages; page++) {
      const { items, length } = await inbox(page * pageSize, pageSize);
      const fresh = items.filter((m) => !opts.isKnown?.(m.messageId));
      ids.push(...fresh.map((m) => m.messageId));
      // Newest first: a page that holds nothing new means the rest was taken before.
      if (items.length < pageSize || (page + 1) * pageSize >= length || (opts.isKnown && fresh.length === 0)) break;
    }
    return ids;
  }

  async function receive(messageId: number, spool: SsevSpool): Promise<SsevReceivedMessage> {
    const { message, raw } = await openMessage(messageId);
    let identifier = '';
    let kind: SsevSubjectKind | undefined;
    try {
      const profile = await getProfile(message.sender.profileId);
      identifier = profile.identifier;
      if (/^\d{10}$/.test(identifier)) kind = 'person';
    } catch (error) {
      // The sender's profile may not be readable by us; the message still is.
      if (!isGatewayError(error, 'GW_ERR_SSEV_NOT_FOUND') && !isGatewayError(error, 'GW_ERR_SSEV_REJECTED')) throw error;
    }
    const attachments: SsevReceivedAttachment[] = [];
    for (const [i, b] of message.blobs.entries()) {
      const stored = await downloadBlob(b.downloadLink, spool);
      if (b.size !== undefined && b.size !== stored.size) throw bad(`open blob ${b.blobId}`, `announced ${b.size} bytes, ${stored.size} came`);
      const fileName = safeFileName(b.fileName, `file-${i + 1}`);
      attachments.push({ fileName, mimeType: mimeTypeFor(fileName), sha256: stored.sha256, size: stored.size });
    }
    return {
      messageId, subject: message.subject, text: message.texts.join('\n\n'),
      ...opt('rnu', message.rnu), ...opt('dateSent', message.dateSent), ...opt('dateReceived', message.dateReceived),
      sender: { profileId: message.sender.profileId, name: message.sender.name, identifier, ...opt('kind', kind) },
      attachments, evidence: raw,
    };
  }

  return {
    kind: 'rest',
    targetGroups, templates, template, searchProfile, checkProfile, getProfile, uploadBlob, sendMessage, viewMessage, inbox,
    openMessage, downloadBlob,
    lookup, send, sentStatus, listInbox, receive,
    close: () => http.close(),
  };
}

/** The target groups an identifier can belong to: 10 digits is an ЕГН/ЛНЧ, 9 or 13 an ЕИК/БУЛСТАТ. */
export function kindsFor(address: SsevAddress): SsevSubjectKind[] {
  if (address.kind) return [address.kind];
  if (/^\d{10}$/.test(address.identifier)) return ['person'];
  if (/^\d{9}(\d{4})?$/.test(address.identifier)) return ['institution', 'legal-entity'];
  return [];
}

export function statusError(status: number, what: string): GatewayError {
  if (status === 401) return new GatewayError('GW_ERR_SSEV_AUTH', `${what}: HTTP 401`);
  if (status === 404) return new GatewayError('GW_ERR_SSEV_NOT_FOUND', `${what}: HTTP 404`);
  if (status === 408 || status === 425 || status === 429 || status >= 500) return new GatewayError('GW_ERR_SSEV_UNAVAILABLE', `${what}: HTTP ${status}`);
  if (status >= 400) return new GatewayError('GW_ERR_SSEV_REJECTED', `${what}: HTTP ${status}`);
  return new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', `${what}: unexpected HTTP ${status}`);
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

export { KIND_OF_TARGET_GROUP };
