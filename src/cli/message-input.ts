import path from 'node:path';
import { GatewayError } from '../errors/index.ts';
import {
  buildErrorMessage, buildRegistrationRequest, buildStatusRequest, buildStatusResponse,
  type Attachment, type Correspondent, type DocumentId, type Participant, type SeosDocument, type SeosMessage,
} from '../seos/index.ts';

/**
 * The JSON an IT person writes to build a message by hand (`seos-gateway message build`). It mirrors the model
 * with plain values; attachments give either `contentBase64` or a `path` (relative to the JSON file). Every
 * problem is reported with the JSON path of the field, e.g. `$.document.attachments[0].mimeType`.
 *
 * {
 *   "type": "MSG_DocumentRegistrationRequest",
 *   "sender": { "identifier": "000000001", "administrativeBodyName": "Община Алфа", "guid": "{...}" },
 *   "recipient": { ... }, "messageGuid": "{...}" (optional), "messageDate": "2024-05-06T10:11:12+03:00" (optional),
 *   "document": { "id": { "number": { "docNumber": "...", "docDate": "2024-05-06" }, "documentGuid": "{...}" },
 *                 "kind": "Молба", "attachments": [{ "fileName": "a.pdf", "mimeType": "application/pdf", "path": "a.pdf" }] },
 *   "comment": "...",                                             (registration request)
 *   "docId": { ... },                                             (status request and response)
 *   "status": "DS_REGISTERED", "rejectionReason": "...", "expectedCloseDate": "2024-06-01",   (status response)
 *   "errorType": "ERR_EXTERNAL", "description": "...", "errorMessageGuid": "{...}"              (error)
 * }
 */
type Json = Record<string, unknown>;

function fail(at: string, what: string): never {
  throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${at}: ${what}`);
}

function object(value: unknown, at: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(at, 'an object is expected');
  return value as Json;
}

function str(obj: Json, key: string, at: string): string {
  const v = obj[key];
  if (typeof v !== 'string') fail(`${at}.${key}`, v === undefined ? 'required' : 'a string is expected');
  return v;
}

function optStr(obj: Json, key: string, at: string): string | undefined {
  return obj[key] === undefined ? undefined : str(obj, key, at);
}

function only(obj: Json, allowed: readonly string[], at: string): void {
  for (const key of Object.keys(obj)) if (!allowed.includes(key)) fail(`${at}.${key}`, `unknown field (expected one of ${allowed.join(', ')})`);
}

function participant(value: unknown, at: string): Participant {
  const o = object(value, at);
  only(o, ['identifier', 'administrativeBodyName', 'guid'], at);
  return { identifier: str(o, 'identifier', at), administrativeBodyName: str(o, 'administrativeBodyName', at), guid: str(o, 'guid', at) };
}

function documentId(value: unknown, at: string): DocumentId {
  const o = object(value, at);
  only(o, ['number', 'uri', 'documentGuid'], at);
  const id: DocumentId = { documentGuid: str(o, 'documentGuid', at) };
  if (o.number !== undefined) {
    const n = object(o.number, `${at}.number`);
    only(n, ['docNumber', 'docDate'], `${at}.number`);
    id.number = { docNumber: str(n, 'docNumber', `${at}.number`), docDate: str(n, 'docDate', `${at}.number`) };
  }
  if (o.uri !== undefined) {
    const u = object(o.uri, `${at}.uri`);
    only(u, ['registerIndex', 'sequenceNumber', 'receiptOrSigningDate'], `${at}.uri`);
    const asText = (k: string) => (typeof u[k] === 'number' ? String(u[k]) : optStr(u, k, `${at}.uri`));
    id.uri = {};
    const [ri, sn, d] = [asText('registerIndex'), asText('sequenceNumber'), optStr(u, 'receiptOrSigningDate', `${at}.uri`)];
    if (ri !== undefined) id.uri.registerIndex = ri;
    if (sn !== undefined) id.uri.sequenceNumber = sn;
    if (d !== undefined) id.uri.receiptOrSigningDate = d;
  }
  return id;
}

const CORRESPONDENT_KEYS = ['name', 'city', 'address', 'egn', 'idCard', 'bulstat', 'email', 'phone', 'mobilePhone', 'mol', 'comment', 'kind'] as const;

function correspondent(value: unknown, at: string): Correspondent {
  const o = object(value, at);
  only(o, CORRESPONDENT_KEYS, at);
  const c: Correspondent = { name: str(o, 'name', at), city: str(o, 'city', at) };
  for (const key of CORRESPONDENT_KEYS.slice(2)) {
    const v = optStr(o, key, at);
    if (v !== undefined) (c as unknown as Json)[key] = v;
  }
  return c;
}

function attachment(value: unknown, at: string, baseDir: string): Attachment {
  const o = object(value, at);
  only(o, ['fileName', 'mimeType', 'comment', 'contentBase64', 'path'], at);
  const b64 = optStr(o, 'contentBase64', at);
  const file = optStr(o, 'path', at);
  if ((b64 === undefined) === (file === undefined)) fail(at, 'exactly one of contentBase64 and path is required');
  if (b64 !== undefined && !/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(b64)) fail(`${at}.contentBase64`, 'not base64');
  const comment = optStr(o, 'comment', at);
  return {
    fileName: str(o, 'fileName', at),
    mimeType: str(o, 'mimeType', at),
    content: b64 !== undefined ? { source: 'bytes', bytes: Buffer.from(b64, 'base64') } : { source: 'file', path: path.resolve(baseDir, file!) },
    ...(comment !== undefined ? { comment } : {}),
  };
}

function array<T>(value: unknown, at: string, item: (v: unknown, at: string) => T): T[] {
  if (!Array.isArray(value)) fail(at, 'an array is expected');
  return value.map((v, i) => item(v, `${at}[${i}]`));
}

function document(value: unknown, at: string, baseDir: string): SeosDocument {
  const o = object(value, at);
  only(o, ['id', 'parentId', 'kind', 'correspondents', 'attachments', 'about', 'service', 'comment', 'additionalData', 'requestedCloseDate', 'attentionTo'], at);
  const doc: SeosDocument = { id: documentId(o.id, `${at}.id`), kind: str(o, 'kind', at) };
  if (o.parentId !== undefined) doc.parentId = documentId(o.parentId, `${at}.parentId`);
  if (o.correspondents !== undefined) doc.correspondents = array(o.correspondents, `${at}.correspondents`, correspondent);
  if (o.attachments !== undefined) doc.attachments = array(o.attachments, `${at}.attachments`, (v, p) => attachment(v, p, baseDir));
  if (o.service !== undefined) {
    const s = object(o.service, `${at}.service`);
    only(s, ['name', 'type', 'code'], `${at}.service`);
    doc.service = { name: str(s, 'name', `${at}.service`), type: str(s, 'type', `${at}.service`), code: str(s, 'code', `${at}.service`) };
  }
  if (o.additionalData !== undefined) {
    const a = object(o.additionalData, `${at}.additionalData`);
    only(a, ['xml'], `${at}.additionalData`);
    doc.additionalData = { xml: str(a, 'xml', `${at}.additionalData`) };
  }
  for (const key of ['about', 'comment', 'requestedCloseDate', 'attentionTo'] as const) {
    const v = optStr(o, key, at);
    if (v !== undefined) doc[key] = v;
  }
  return doc;
}

/** Turns the JSON description into a message; the builder then checks it against the schema's rules. */
export function messageFromJson(input: unknown, baseDir: string): SeosMessage {
  const o = object(input, '$');
  const type = str(o, 'type', '$');
  const common = ['type', 'sender', 'recipient', 'messageGuid', 'messageDate'];
  const parties = {
    sender: participant(o.sender, '$.sender'),
    recipient: participant(o.recipient, '$.recipient'),
    ...(o.messageGuid !== undefined ? { messageGuid: str(o, 'messageGuid', '$') } : {}),
    ...(o.messageDate !== undefined ? { messageDate: str(o, 'messageDate', '$') } : {}),
  };
  switch (type) {
    case 'MSG_DocumentRegistrationRequest':
      only(o, [...common, 'document', 'comment'], '$');
      return buildRegistrationRequest(parties, document(o.document, '$.document', baseDir), optStr(o, 'comment', '$'));
    case 'MSG_DocumentStatusRequest':
      only(o, [...common, 'docId'], '$');
      return buildStatusRequest(parties, documentId(o.docId, '$.docId'));
    case 'MSG_DocumentStatusResponse': {
      only(o, [...common, 'docId', 'status', 'rejectionReason', 'expectedCloseDate'], '$');
      const rejectionReason = optStr(o, 'rejectionReason', '$');
      const expectedCloseDate = optStr(o, 'expectedCloseDate', '$');
      return buildStatusResponse(parties, {
        docId: documentId(o.docId, '$.docId'),
        status: str(o, 'status', '$') as never,
        ...(rejectionReason !== undefined ? { rejectionReason } : {}),
        ...(expectedCloseDate !== undefined ? { expectedCloseDate } : {}),
      });
    }
    case 'MSG_Error': {
      only(o, [...common, 'errorType', 'description', 'errorMessageGuid'], '$');
      const messageGuid = optStr(o, 'errorMessageGuid', '$');
      return buildErrorMessage(parties, {
        description: str(o, 'description', '$'),
        errorType: (optStr(o, 'errorType', '$') ?? 'ERR_EXTERNAL') as never,
        ...(messageGuid !== undefined ? { messageGuid } : {}),
      });
    }
    default:
      return fail('$.type', 'expected MSG_DocumentRegistrationRequest, MSG_DocumentStatusRequest, MSG_DocumentStatusResponse or MSG_Error');
  }
}
