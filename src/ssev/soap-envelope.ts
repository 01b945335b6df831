import { randomBytes } from 'node:crypto';
import { GatewayError, isGatewayError } from '../errors/index.ts';
import { childElements, elementText, parseXml, type XmlElement } from '../xml/index.ts';
import { XOP_NS, cidFromHref, cidHref, type MtomAttachment } from './multipart.ts';
import { SOAP11_NS } from './wssecurity.ts';

/**
 * The SSEV SOAP integration service's messages (IEDeliveryIntegrationService, protocols.md §4.1), the seven
 * operations the gateway uses. Requests are written in the order DataContractSerializer reads (base-class members
 * first, then alphabetical; an element out of order is silently dropped by WCF), binary values as XOP includes
 * (MTOM). Responses are read with our safe parser into typed results; data-contract members are matched by
 * local name (the base and derived classes live in different namespaces) and binary values may come inline
 * (base64) or as XOP parts.
 */
export const INTEGRATION_NS = 'https://edelivery.egov.bg/services/integration';
export const DC_NS = 'http://schemas.datacontract.org/2004/07/EDelivery.Common.DataContracts';
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
export const SOAP_ACTION_BASE = 'https://edelivery.egov.bg/services/integration/IEDeliveryIntegrationService/';

export const SOAP_OPERATIONS = [
  'SendElectronicDocument', 'SendMessage', 'CheckSubjectHasRegistration', 'GetReceivedMessagesList',
  'GetReceivedMessageContent', 'GetSentMessageStatus', 'GetRegisteredInstitutions',
] as const;
export type SoapOperation = (typeof SOAP_OPERATIONS)[number];

/** eProfileType. */
export type SoapProfileType = 'Person' | 'LegalPerson' | 'Institution' | 'Administrator';
export const PROFILE_TYPES: readonly SoapProfileType[] = ['Person', 'LegalPerson', 'Institution', 'Administrator'];

export function soapAction(op: SoapOperation): string {
  return `${SOAP_ACTION_BASE}${op}`;
}

// ── requests ──

export interface SoapDocumentInput {
  readonly documentName: string;
  readonly contentType?: string;
  readonly content: Buffer;
  readonly registrationNumber?: string;
}

export interface SendElectronicDocumentArgs {
  readonly subject: string;
  readonly document: SoapDocumentInput;
  readonly receiverType: SoapProfileType;
  readonly receiverUniqueIdentifier: string;
  readonly receiverPhone?: string;
  readonly receiverEmail?: string;
}

export interface SendMessageArgs {
  readonly title: string;
  readonly messageText?: string;
  readonly documents: readonly SoapDocumentInput[];
  readonly receiverType: SoapProfileType;
  readonly receiverUniqueIdentifier: string;
  readonly receiverPhone?: string;
  readonly receiverEmail?: string;
}

export type SoapRequestArgs =
  | { op: 'SendElectronicDocument'; args: SendElectronicDocumentArgs }
  | { op: 'SendMessage'; args: SendMessageArgs }
  | { op: 'CheckSubjectHasRegistration'; identificator: string }
  | { op: 'GetReceivedMessagesList'; onlyNew: boolean }
  | { op: 'GetReceivedMessageContent'; messageId: number }
  | { op: 'GetSentMessageStatus'; messageId: number }
  | { op: 'GetRegisteredInstitutions' };

export interface RequestCommon {
  readonly serviceOid?: string;
  readonly operatorEgn?: string;
}

export interface BuiltBody {
  /** The operation element, with its namespace declarations. */
  readonly xml: string;
  readonly attachments: MtomAttachment[];
}

export function escapeXml(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\r/g, '&#xD;');
}

function el(name: string, value: string | undefined): string {
  return value === undefined ? '' : `<${name}>${escapeXml(value)}</${name}>`;
}

/** The body of a request; binary contents become MTOM parts referenced by xop:Include. */
export function buildRequestBody(request: SoapRequestArgs, common: RequestCommon = {}): BuiltBody {
  const attachments: MtomAttachment[] = [];
  const binary = (bytes: Buffer, contentType?: string): string => {
    const cid = `${attachments.length + 1}.${randomBytes(8).toString('hex')}@seos-gateway`;
    attachments.push({ cid, bytes, ...(contentType ? { contentType } : {}) });
    return `<xop:Include href="${cidHref(cid)}" xmlns:xop="${XOP_NS}"/>`;
  };
  const operator = el('operatorEGN', common.operatorEgn);
  const open = (op: SoapOperation) => `<${op} xmlns="${INTEGRATION_NS}">`;
  let xml: string;
  switch (request.op) {
    case 'SendElectronicDocument': {
      const a = request.args;
      xml = open(request.op) + el('subject', a.subject) + `<docBytes>${binary(a.document.content, a.document.contentType)}</docBytes>` +
        el('docNameWithExtension', a.document.documentName) + el('docRegNumber', a.document.registrationNumber) +
        el('receiverType', a.receiverType) + el('receiverUniqueIdentifier', a.receiverUniqueIdentifier) +
        el('receiverPhone', a.receiverPhone) + el('receiverEmail', a.receiverEmail) + el('serviceOID', common.serviceOid) + operator;
      break;
    }
    case 'SendMessage': {
      const a = request.args;
      // DcMessage (base) members first, alphabetically: only Title is ours to set; then DcMessageDetails's.
      const docs = a.documents.map((d) => `<a:DcDocument><a:Content>${binary(d.content, d.contentType)}</a:Content>` +
        el('a:ContentType', d.contentType) + el('a:DocumentName', d.documentName) + el('a:DocumentRegistrationNumber', d.registrationNumber) +
        '</a:DcDocument>').join('');
      xml = open(request.op) + `<message xmlns:a="${DC_NS}">` + el('a:Title', a.title) +
        (a.documents.length > 0 ? `<a:AttachedDocuments>${docs}</a:AttachedDocuments>` : '') + el('a:MessageText', a.messageText) +
        '</message>' + el('receiverType', a.receiverType) + el('receiverUniqueIdentifier', a.receiverUniqueIdentifier) +
        el('receiverPhone', a.receiverPhone) + el('receiverEmail', a.receiverEmail) + el('serviceOID', common.serviceOid) + operator;
      break;
    }
    case 'CheckSubjectHasRegistration':
      xml = open(request.op) + el('identificator', request.identificator);
      break;
    case 'GetReceivedMessagesList':
      xml = open(request.op) + el('onlyNew', String(request.onlyNew)) + operator;
      break;
    case 'GetReceivedMessageContent':
    case 'GetSentMessageStatus':
      xml = open(request.op) + el('messageId', String(request.messageId)) + operator;
      break;
    case 'GetRegisteredInstitutions':
      xml = open(request.op);
      break;
  }
  return { xml: `${xml}</${request.op}>`, attachments };
}

// ── responses ──

export interface SoapFaultInfo {
  /** The faultcode's local name: Client, Server, InvalidSecurity, InternalServiceFault, ... */
  readonly code: string;
  readonly text: string;
}

export interface DcProfileInfo {
  readonly id?: number;
  readonly profileType?: SoapProfileType;
  readonly electronicSubjectId?: string;
  readonly electronicSubjectName?: string;
}

export interface DcDocumentInfo {
  readonly id?: number;
  readonly documentName: string;
  readonly contentType?: string;
  readonly content: Buffer;
  readonly registrationNumber?: string;
}

export interface DcMessageInfo {
  readonly id: number;
  readonly title: string;
  readonly dateCreated?: string;
  readonly dateSent?: string;
  readonly dateReceived?: string;
  readonly senderProfile?: DcProfileInfo;
  readonly receiverProfile?: DcProfileInfo;
}

export interface DcMessageDetailsInfo extends DcMessageInfo {
  readonly messageText?: string;
  readonly attachedDocuments: readonly DcDocumentInfo[];
  /** TimeStampNRD is present once delivered. */
  readonly hasTimeStampNrd: boolean;
}

export interface DcSubjectRegistrationInfo {
  readonly identificator: string;
  readonly hasRegistration: boolean;
  readonly subject?: {
    readonly electronicSubjectId?: string;
    readonly name: string;
    readonly profileType?: SoapProfileType;
    readonly isActivated: boolean;
  };
}

export interface DcInstitutionInfo {
  readonly electronicSubjectId?: string;
  readonly name: string;
  readonly identifier: string;
  readonly profileType?: SoapProfileType;
  readonly isActivated: boolean;
}

export type SoapResult<O extends SoapOperation> =
  O extends 'SendElectronicDocument' | 'SendMessage' ? number
    : O extends 'CheckSubjectHasRegistration' ? DcSubjectRegistrationInfo
      : O extends 'GetReceivedMessagesList' ? DcMessageInfo[]
        : O extends 'GetReceivedMessageContent' | 'GetSentMessageStatus' ? DcMessageDetailsInfo | null
          : O extends 'GetRegisteredInstitutions' ? DcInstitutionInfo[] : never;

export type ParsedResponse<O extends SoapOperation> = { kind: 'result'; result: SoapResult<O> } | { kind: 'fault'; fault: SoapFaultInfo };

/**
 * Reads a response envelope (the MTOM root part, or a plain text/xml body). Throws GW_ERR_SSEV_BAD_RESPONSE
 * for anything that is not the operation's documented answer or a SOAP Fault.
 */
export function parseResponse<O extends SoapOperation>(
  op: O, xml: Buffer, parts: ReadonlyMap<string, Buffer> = new Map(), maxBytes = 64 * 1024 * 1024,
): ParsedResponse<O> {
  let root: XmlElement;
  try {
    root = parseXml(xml, { maxBytes }).root;
  } catch (error) {
    throw bad(`${op} response is not well-formed, safe XML (${isGatewayError(error) ? error.code : 'parse error'})`);
  }
  if (root.ns !== SOAP11_NS || root.local !== 'Envelope') throw bad(`${op} response is not a SOAP 1.1 Envelope`);
  const body = childElements(root).find((e) => e.ns === SOAP11_NS && e.local === 'Body');
  if (!body) throw bad(`${op} response has no Body`);
  const first = childElements(body)[0];
  if (!first) throw bad(`${op} response Body is empty`);
  if (first.ns === SOAP11_NS && first.local === 'Fault') return { kind: 'fault', fault: readFault(first) };
  if (first.ns !== INTEGRATION_NS || first.local !== `${op}Response`) throw bad(`expected ${op}Response, got ${first.local.slice(0, 80)}`);
  const resultEl = childElements(first).find((e) => e.local === `${op}Result`);
  const ctx: Ctx = { op, parts };
  return { kind: 'result', result: readResult(op, resultEl, ctx) as SoapResult<O> };
}

interface Ctx {
  readonly op: string;
  readonly parts: ReadonlyMap<string, Buffer>;
}

function readResult(op: SoapOperation, el: XmlElement | undefined, ctx: Ctx): unknown {
  const nil = !el || isNil(el);
  switch (op) {
    case 'SendElectronicDocument':
    case 'SendMessage': {
      if (nil) throw bad(`${op}Result is missing`);
      const id = intOf(el!, ctx);
      if (id <= 0) throw bad(`${op}Result is not a message id`);
      return id;
    }
    case 'CheckSubjectHasRegistration': {
      if (nil) throw bad(`${op}Result is missing`);
      const info = el!;
      const subjectEl = member(info, 'SubjectInfo');
      return {
        identificator: text(member(info, 'Identificator')) ?? '',
        hasRegistration: boolOf(required(info, 'HasRegistration', ctx), ctx),
        ...(subjectEl && !isNil(subjectEl) ? {
          subject: {
            ...opt('electronicSubjectId', text(member(subjectEl, 'ElectronicSubjectId'))),
            name: text(member(subjectEl, 'ElectronicSubjectName')) ?? '',
            ...opt('profileType', profileType(member(subjectEl, 'ProfileType'), ctx)),
            isActivated: member(subjectEl, 'IsActivated') ? boolOf(member(subjectEl, 'IsActivated')!, ctx) : true,
          },
        } : {}),
      };
    }
    case 'GetReceivedMessagesList':
      if (nil) return [];
      return items(el!, 'DcMessage', 100_000).map((m) => readMessage(m, ctx));
    case 'GetReceivedMessageContent':
    case 'GetSentMessageStatus':
      if (nil) return null;
      return readMessageDetails(el!, ctx);
    case 'GetRegisteredInstitutions':
      if (nil) return [];
      return items(el!, 'DcInstitutionInfo', 100_000).map((i) => ({
        ...opt('electronicSubjectId', text(member(i, 'ElectronicSubjectId'))),
        name: text(member(i, 'Name')) ?? text(member(i, 'ElectronicSubjectName')) ?? '',
        identifier: text(member(i, 'UniqueSubjectIdentifier')) ?? '',
        ...opt('profileType', profileType(member(i, 'ProfileType'), ctx)),
        isActivated: member(i, 'IsActivated') ? boolOf(member(i, 'IsActivated')!, ctx) : true,
      }));
  }
}

function readProfile(el: XmlElement | undefined, ctx: Ctx): DcProfileInfo | undefined {
  if (!el || isNil(el)) return undefined;
  const idEl = member(el, 'Id');
  return {
    ...opt('id', idEl ? intOf(idEl, ctx) : undefined),
    ...opt('profileType', profileType(member(el, 'ProfileType'), ctx)),
    ...opt('electronicSubjectId', text(member(el, 'ElectronicSubjectId'))),
    ...opt('electronicSubjectName', text(member(el, 'ElectronicSubjectName'))),
  };
}

function readMessage(el: XmlElement, ctx: Ctx): DcMessageInfo {
  return {
    id: intOf(required(el, 'Id', ctx), ctx),
    title: text(member(el, 'Title')) ?? '',
    ...opt('dateCreated', dateTime(member(el, 'DateCreated'), ctx)),
    ...opt('dateSent', dateTime(member(el, 'DateSent'), ctx)),
    ...opt('dateReceived', dateTime(member(el, 'DateReceived'), ctx)),
    ...opt('senderProfile', readProfile(member(el, 'SenderProfile'), ctx)),
    ...opt('receiverProfile', readProfile(member(el, 'ReceiverProfile'), ctx)),
  };
}

function readMessageDetails(el: XmlElement, ctx: Ctx): DcMessageDetailsInfo {
  const docsEl = member(el, 'AttachedDocuments');
  const nrd = member(el, 'TimeStampNRD');
  return {
    ...readMessage(el, ctx),
    ...opt('messageText', text(member(el, 'MessageText'))),
    attachedDocuments: docsEl && !isNil(docsEl) ? items(docsEl, 'DcDocument', 1000).map((d) => {
      const content = member(d, 'Content');
      if (!content || isNil(content)) throw bad(`${ctx.op}: a DcDocument has no Content`);
      const idEl = member(d, 'Id');
      return {
        ...opt('id', idEl ? intOf(idEl, ctx) : undefined),
        documentName: text(member(d, 'DocumentName')) ?? '',
        ...opt('contentType', text(member(d, 'ContentType'))),
        content: binaryOf(content, ctx),
        ...opt('registrationNumber', text(member(d, 'DocumentRegistrationNumber'))),
      };
    }) : [],
    hasTimeStampNrd: nrd !== undefined && !isNil(nrd),
  };
}

function readFault(fault: XmlElement): SoapFaultInfo {
  const codeEl = childElements(fault).find((e) => e.local === 'faultcode');
  const textEl = childElements(fault).find((e) => e.local === 'faultstring');
  const code = (codeEl ? elementText(codeEl).trim() : '').replace(/^[^:]*:/, '');
  return { code: code.slice(0, 100) || 'Unknown', text: (textEl ? elementText(textEl).trim() : '').slice(0, 1000) };
}

// ── helpers ──

function member(parent: XmlElement, local: string): XmlElement | undefined {
  return childElements(parent).find((e) => e.local === local);
}

function required(parent: XmlElement, local: string, ctx: Ctx): XmlElement {
  const found = member(parent, local);
  if (!found || isNil(found)) throw bad(`${ctx.op}: ${parent.local}/${local} is missing`);
  return found;
}

function items(parent: XmlElement, local: string, max: number): XmlElement[] {
  const found = childElements(parent).filter((e) => e.local === local && !isNil(e));
  if (found.length > max) throw bad(`more than ${max} ${local} items`);
  return found;
}

function isNil(el: XmlElement): boolean {
  return el.attributes.some((a) => a.ns === XSI_NS && a.local === 'nil' && (a.value === 'true' || a.value === '1'));
}

function text(el: XmlElement | undefined): string | undefined {
  if (!el || isNil(el)) return undefined;
  if (childElements(el).length > 0) return undefined;
  return elementText(el);
}

function intOf(el: XmlElement, ctx: Ctx): number {
  const t = elementText(el).trim();
  if (!/^-?\d{1,10}$/.test(t) || Math.abs(Number(t)) > 2 ** 31) throw bad(`${ctx.op}: ${el.local} is not an int`);
  return Number(t);
}

function boolOf(el: XmlElement, ctx: Ctx): boolean {
  const t = elementText(el).trim();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  throw bad(`${ctx.op}: ${el.local} is not a boolean`);
}

function dateTime(el: XmlElement | undefined, ctx: Ctx): string | undefined {
  const t = text(el)?.trim();
  if (t === undefined || t === '') return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$/.test(t)) throw bad(`${ctx.op}: ${el!.local} is not an xsd:dateTime`);
  // DateTime.MinValue is how DataContractSerializer writes "not set" for a non-nullable DateTime.
  return t.startsWith('0001-01-01') ? undefined : t;
}

function profileType(el: XmlElement | undefined, ctx: Ctx): SoapProfileType | undefined {
  const t = text(el)?.trim();
  if (t === undefined || t === '') return undefined;
  if (!(PROFILE_TYPES as readonly string[]).includes(t)) throw bad(`${ctx.op}: ProfileType ${t.slice(0, 40)} is not an eProfileType`);
  return t as SoapProfileType;
}

/** xs:base64Binary, inline or as an XOP include pointing to an MTOM part. */
function binaryOf(el: XmlElement, ctx: Ctx): Buffer {
  const include = childElements(el).find((e) => e.ns === XOP_NS && e.local === 'Include');
  if (include) {
    const href = include.attributes.find((a) => a.ns === '' && a.local === 'href')?.value ?? '';
    const cid = cidFromHref(href);
    const part = cid === undefined ? undefined : ctx.parts.get(cid);
    if (!part) throw bad(`${ctx.op}: an xop:Include refers to a missing MIME part`);
    return part;
  }
  const clean = elementText(el).replace(/[ \t\r\n]+/g, '');
  if (clean.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) throw bad(`${ctx.op}: ${el.local} is not base64`);
  return Buffer.from(clean, 'base64');
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function bad(detail: string): GatewayError {
  return new GatewayError('GW_ERR_SSEV_BAD_RESPONSE', detail);
}

/** xs:base64Binary of an element, inline or an XOP include into `parts` (for readers of requests, e.g. the simulator). */
export function binaryValue(el: XmlElement, parts: ReadonlyMap<string, Buffer>, what = 'request'): Buffer {
  return binaryOf(el, { op: what, parts });
}
