import { GatewayError } from '../errors/index.ts';
import { DSIG_NS } from '../xmldsig/algorithms.ts';
import { canonicalizeSubtree, escapeCanonicalText } from '../xmldsig/c14n.ts';
import { parseXml, type XmlLimits } from '../xml/parse.ts';
import { descendantsAndSelf, textValue, type XmlDocument, type XmlElement } from '../xml/tree.ts';
import {
  CORRESPONDENT_KINDS, DOCUMENT_STATUSES, DOCUMENT_URI_NS, ERROR_KINDS, MESSAGE_TYPES, SEOS_NS,
  type AdditionalData, type Attachment, type Correspondent, type DocumentId, type DocumentUri, type MessageBody,
  type MessageHeader, type MessageType, type Participant, type SeosDocument, type SeosMessage,
} from './model.ts';
import { isPositiveInteger, isSupportedVersion, requireGuid, requireXsdDate, requireXsdDateTime } from './values.ts';

/**
 * From the XML tree to the typed model, enforcing the structure of EGovMessaging.xsd as it goes (order,
 * cardinality, enumerations, GUID and date formats), so the receiver needs no separate schema pass. Every error
 * names the element path and what was expected. A Signature at the end of Message is skipped here; checking it
 * is verify-message.ts's job.
 */
export function parseMessageXml(xml: Buffer | string, limits?: Partial<XmlLimits>): SeosMessage {
  return parseMessageDocument(parseXml(xml, limits));
}

export function parseMessageDocument(doc: XmlDocument): SeosMessage {
  const root = doc.root;
  if (root.local !== 'Message' || root.ns !== SEOS_NS) {
    throw new GatewayError('GW_ERR_SEOS_NOT_A_MESSAGE', `the root is {${root.ns.slice(0, 100)}}${root.local.slice(0, 60)}`);
  }
  const seq = new Sequence(root);
  const header = readHeader(seq.required('Header'));
  const body = readBody(seq.required('Body'));
  seq.optional('Signature', DSIG_NS);
  seq.end();
  if (header.messageType !== body.type) {
    throw new GatewayError('GW_ERR_SEOS_TYPE_MISMATCH', `/Message/Header/MessageType is ${header.messageType}, Body holds ${body.type}`);
  }
  return { header, body };
}

/**
 * Only the header, for a receiver that must answer even a message whose body is invalid: with the header it can
 * address a signed MSG_Error to the sender instead of a bare SOAP Fault.
 */
export function parseMessageHeader(doc: XmlDocument): MessageHeader {
  const root = doc.root;
  if (root.local !== 'Message' || root.ns !== SEOS_NS) throw new GatewayError('GW_ERR_SEOS_NOT_A_MESSAGE');
  const header = new Sequence(root).required('Header');
  return readHeader(header);
}

/** Walks an element's children in schema order. Whitespace between elements is fine; other text is not. */
class Sequence {
  private readonly items: XmlElement[] = [];
  private index = 0;

  constructor(private readonly parent: XmlElement) {
    for (const child of parent.children) {
      if (child.type === 'element') this.items.push(child);
      else if (child.type === 'text' && textValue(child).trim() !== '') {
        throw new GatewayError('GW_ERR_SEOS_SCHEMA', `${parent.path}: text is not allowed here`);
      }
    }
  }

  private matches(el: XmlElement | undefined, local: string, ns: string): boolean {
    return !!el && el.local === local && el.ns === ns;
  }

  optional(local: string, ns = SEOS_NS): XmlElement | undefined {
    const el = this.items[this.index];
    if (this.matches(el, local, ns)) {
      this.index++;
      return el;
    }
    if (el && el.local === local && el.ns !== ns) {
      throw new GatewayError('GW_ERR_SEOS_SCHEMA', `${el.path}: expected in namespace ${ns}, found in "${el.ns.slice(0, 100)}"`);
    }
    return undefined;
  }

  required(local: string, ns = SEOS_NS): XmlElement {
    const el = this.optional(local, ns);
    if (el) return el;
    const found = this.items[this.index];
    throw new GatewayError('GW_ERR_SEOS_SCHEMA', found
      ? `${this.parent.path}: expected <${local}>, found <${found.qname}>`
      : `${this.parent.path}: required element <${local}> is missing`);
  }

  many(local: string, ns = SEOS_NS): XmlElement[] {
    const out: XmlElement[] = [];
    for (let el = this.optional(local, ns); el; el = this.optional(local, ns)) out.push(el);
    return out;
  }

  end(): void {
    const extra = this.items[this.index];
    if (extra) throw new GatewayError('GW_ERR_SEOS_SCHEMA', `${extra.path}: unexpected element here (wrong order or unknown)`);
  }
}

/** Text of a simple-typed element (no child elements allowed). */
function text(el: XmlElement): string {
  let out = '';
  for (const child of el.children) {
    if (child.type === 'element') throw new GatewayError('GW_ERR_SEOS_SCHEMA', `${child.path}: no child elements are allowed in ${el.qname}`);
    if (child.type === 'text') out += textValue(child);
  }
  return out;
}

/** Collapsed text for non-string simple types (enumerations, GUIDs, dates): surrounding whitespace is not data. */
function token(el: XmlElement): string {
  return text(el).trim();
}

function optionalText(el: XmlElement | undefined): string | undefined {
  return el ? text(el) : undefined;
}

function enumValue<T extends string>(el: XmlElement, allowed: readonly T[]): T {
  const value = token(el);
  if (!(allowed as readonly string[]).includes(value)) {
    throw new GatewayError('GW_ERR_SEOS_BAD_VALUE', `${el.path}: "${value.slice(0, 60)}" is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function guid(el: XmlElement): string {
  return requireGuid(token(el), el.path);
}

function readHeader(el: XmlElement): MessageHeader {
  const seq = new Sequence(el);
  const versionEl = seq.required('Version');
  const version = token(versionEl);
  if (!isSupportedVersion(version)) throw new GatewayError('GW_ERR_SEOS_UNSUPPORTED_VERSION', `${versionEl.path}: "${version.slice(0, 20)}"`);
  const messageType = enumValue<MessageType>(seq.required('MessageType'), MESSAGE_TYPES);
  const dateEl = seq.required('MessageDate');
  const messageDate = requireXsdDateTime(token(dateEl), dateEl.path);
  const sender = readParticipant(seq.required('Sender'));
  const recipient = readParticipant(seq.required('Recipient'));
  const messageGuid = guid(seq.required('MessageGUID'));
  seq.end();
  return { version, messageType, messageDate, sender, recipient, messageGuid };
}

function readParticipant(el: XmlElement): Participant {
  const seq = new Sequence(el);
  const identifier = text(seq.required('Identifier'));
  const administrativeBodyName = text(seq.required('AdministrativeBodyName'));
  const id = guid(seq.required('GUID'));
  seq.end();
  return { identifier, administrativeBodyName, guid: id };
}

function readBody(el: XmlElement): MessageBody {
  const seq = new Sequence(el);
  const registration = seq.optional('DocumentRegistrationRequest');
  const statusRequest = registration ? undefined : seq.optional('DocumentStatusRequest');
  const statusResponse = registration || statusRequest ? undefined : seq.optional('DocumentStatusResponse');
  const error = registration || statusRequest || statusResponse ? undefined : seq.optional('Error');
  if (!registration && !statusRequest && !statusResponse && !error) {
    seq.end();
    throw new GatewayError('GW_ERR_SEOS_SCHEMA', `${el.path}: expected one of DocumentRegistrationRequest, DocumentStatusRequest, DocumentStatusResponse, Error`);
  }
  seq.end();
  if (registration) {
    const s = new Sequence(registration);
    const document = readDocument(s.required('Document'));
    const comment = text(s.required('Comment'));
    s.end();
    return { type: 'MSG_DocumentRegistrationRequest', document, comment };
  }
  if (statusRequest) {
    const s = new Sequence(statusRequest);
    const docId = readDocumentId(s.required('DocID'));
    s.end();
    return { type: 'MSG_DocumentStatusRequest', docId };
  }
  if (statusResponse) {
    const s = new Sequence(statusResponse);
    const docId = readDocumentId(s.required('DocID'));
    const status = enumValue(s.required('DocRegStatus'), DOCUMENT_STATUSES);
    const rejectionReason = optionalText(s.optional('RejectionReason'));
    const closeEl = s.optional('DocExpectCloseDate');
    const additionalData = readAdditionalData(s.optional('DocAddData'));
    s.end();
    return {
      type: 'MSG_DocumentStatusResponse', docId, status,
      ...(rejectionReason !== undefined ? { rejectionReason } : {}),
      ...(closeEl ? { expectedCloseDate: requireXsdDate(token(closeEl), closeEl.path) } : {}),
      ...(additionalData ? { additionalData } : {}),
    };
  }
  const s = new Sequence(error!);
  const guidEl = s.optional('MessageGUID');
  const errorType = enumValue(s.required('ErrorType'), ERROR_KINDS);
  const description = text(s.required('ErrorDescription'));
  s.end();
  return { type: 'MSG_Error', ...(guidEl ? { messageGuid: guid(guidEl) } : {}), errorType, description };
}

function readDocumentId(el: XmlElement): DocumentId {
  const seq = new Sequence(el);
  const numberEl = seq.optional('DocumentNumber');
  const uriEl = numberEl ? undefined : seq.optional('DocumentURI');
  const documentGuid = guid(seq.required('DocumentGUID'));
  seq.end();
  const id: DocumentId = { documentGuid };
  if (numberEl) {
    const s = new Sequence(numberEl);
    const docNumber = text(s.required('DocNumber'));
    const dateEl = s.required('DocDate');
    s.end();
    id.number = { docNumber, docDate: requireXsdDate(token(dateEl), dateEl.path) };
  }
  if (uriEl) id.uri = readDocumentUri(uriEl);
  return id;
}

function readDocumentUri(el: XmlElement): DocumentUri {
  const seq = new Sequence(el);
  const uri: DocumentUri = {};
  for (const [local, key] of [['RegisterIndex', 'registerIndex'], ['SequenceNumber', 'sequenceNumber']] as const) {
    const part = seq.optional(local, DOCUMENT_URI_NS);
    if (!part) continue;
    const value = token(part);
    if (!isPositiveInteger(value)) throw new GatewayError('GW_ERR_SEOS_BAD_VALUE', `${part.path}: "${value.slice(0, 30)}" is not a positive integer`);
    uri[key] = value;
  }
  const dateEl = seq.optional('ReceiptOrSigningDate', DOCUMENT_URI_NS);
  if (dateEl) uri.receiptOrSigningDate = requireXsdDate(token(dateEl), dateEl.path);
  seq.end();
  return uri;
}

function readDocument(el: XmlElement): SeosDocument {
  const seq = new Sequence(el);
  const id = readDocumentId(seq.required('DocID'));
  const parentEl = seq.optional('DocParentID');
  const kind = text(seq.required('DocKind'));
  const correspondentList = seq.optional('DocCorrespondentList');
  const attachmentList = seq.optional('DocAttachmentList');
  const about = optionalText(seq.optional('DocAbout'));
  const serviceEl = seq.optional('DocService');
  const comment = optionalText(seq.optional('DocComment'));
  const additionalData = readAdditionalData(seq.optional('DocAddData'));
  const closeEl = seq.optional('DocReqDateClose');
  const attentionTo = optionalText(seq.optional('DocAttentionTo'));
  const signature = seq.optional('Signature', DSIG_NS);
  seq.end();
  if (signature) {
    // Allowed by the schema but never by us: .NET peers verify the first Signature in a document.
    throw new GatewayError('GW_ERR_SIG_EXTRA_SIGNATURE', `${signature.path}: a document-level signature is not accepted`);
  }

  const doc: SeosDocument = { id, kind };
  if (parentEl) doc.parentId = readDocumentId(parentEl);
  if (correspondentList) {
    const s = new Sequence(correspondentList);
    const items = s.many('Corespondent');
    s.end();
    if (items.length === 0) throw new GatewayError('GW_ERR_SEOS_SCHEMA', `${correspondentList.path}: at least one <Corespondent> is required`);
    doc.correspondents = items.map(readCorrespondent);
  }
  if (attachmentList) {
    const s = new Sequence(attachmentList);
    const items = s.many('Attachment');
    s.end();
    if (items.length === 0) throw new GatewayError('GW_ERR_SEOS_SCHEMA', `${attachmentList.path}: at least one <Attachment> is required`);
    doc.attachments = items.map(readAttachment);
  }
  if (about !== undefined) doc.about = about;
  if (serviceEl) {
    const s = new Sequence(serviceEl);
    doc.service = { name: text(s.required('ServiceName')), type: text(s.required('ServiceType')), code: text(s.required('ServiceCode')) };
    s.end();
  }
  if (comment !== undefined) doc.comment = comment;
  if (additionalData) doc.additionalData = additionalData;
  if (closeEl) doc.requestedCloseDate = requireXsdDate(token(closeEl), closeEl.path);
  if (attentionTo !== undefined) doc.attentionTo = attentionTo;
  return doc;
}

const CORRESPONDENT_FIELDS = [
  ['CorAddress', 'address'], ['CorEGN', 'egn'], ['CorIDCard', 'idCard'], ['CorBULSTAT', 'bulstat'],
  ['CorEMail', 'email'], ['CorPhone', 'phone'], ['CorMobilePhone', 'mobilePhone'], ['CorMOL', 'mol'],
  ['CorComment', 'comment'],
] as const;

function readCorrespondent(el: XmlElement): Correspondent {
  const seq = new Sequence(el);
  const c: Correspondent = { name: text(seq.required('CorName')), city: text(seq.required('CorCity')) };
  for (const [local, key] of CORRESPONDENT_FIELDS) {
    const value = optionalText(seq.optional(local));
    if (value !== undefined) c[key] = value;
  }
  const kindEl = seq.optional('CorKind');
  if (kindEl) c.kind = enumValue(kindEl, CORRESPONDENT_KINDS);
  seq.end();
  return c;
}

function readAttachment(el: XmlElement): Attachment {
  const seq = new Sequence(el);
  const fileName = text(seq.required('AttFileName'));
  const bodyEl = seq.required('AttBody');
  const commentEl = seq.optional('AttComment');
  const mimeType = text(seq.required('AttMIMEType'));
  seq.end();
  const base64 = base64Text(bodyEl);
  return { fileName, content: { source: 'base64', text: base64 }, ...(commentEl ? { comment: text(commentEl) } : {}), mimeType };
}

/** The base64 characters of AttBody without copying when the text is verbatim in the input; validated. */
function base64Text(el: XmlElement): Buffer {
  const texts = el.children.filter((c) => c.type === 'text');
  if (el.children.some((c) => c.type === 'element')) throw new GatewayError('GW_ERR_SEOS_SCHEMA', `${el.path}: no child elements are allowed`);
  let buf: Buffer;
  if (texts.length === 1 && texts[0].type === 'text' && texts[0].verbatim) buf = texts[0].source.subarray(texts[0].start, texts[0].end);
  else buf = Buffer.from(text(el), 'latin1');
  if (!isBase64(buf)) throw new GatewayError('GW_ERR_SEOS_BAD_BASE64', el.path);
  return buf;
}

const B64 = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/') B64[c.charCodeAt(0)] = 1;

/** xsd:base64Binary: base64 characters with optional whitespace, length a multiple of 4, padding only at the end. */
export function isBase64(buf: Buffer): boolean {
  return buf.length > 256 ? isBase64Native(buf) : isBase64Loop(buf);
}

function isBase64Loop(buf: Buffer): boolean {
  let count = 0, padding = 0;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i];
    if (B64[b] === 1) {
      if (padding > 0) return false;
      count++;
    } else if (b === 0x3d) {
      padding++;
      if (padding > 2) return false;
    } else if (b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) {
      return false;
    }
  }
  return (count + padding) % 4 === 0;
}

/**
 * For all but tiny bodies: the platform's atob validates the alphabet (whitespace allowed) several times faster than a
 * byte loop in JS. atob also accepts missing padding, which base64Binary does not: with p trailing "=" and an
 * output of n bytes, a properly padded input has (n + p) divisible by 3.
 */
function isBase64Native(buf: Buffer): boolean {
  const hasWhitespace = buf.indexOf(0x0a) !== -1 || buf.indexOf(0x0d) !== -1 || buf.indexOf(0x20) !== -1 || buf.indexOf(0x09) !== -1;
  if (!hasWhitespace) {
    // The common case: one unbroken run. Checked in slices of whole 4-character groups, so memory stays flat.
    if (buf.length % 4 !== 0) return false;
    for (let start = 0; start < buf.length; start += NATIVE_SLICE) {
      const end = Math.min(start + NATIVE_SLICE, buf.length);
      const slice = buf.subarray(start, end);
      // Padding belongs only at the very end.
      if (end < buf.length && slice.indexOf(0x3d) !== -1) return false;
      try {
        atob(slice.toString('latin1'));
      } catch {
        return false;
      }
    }
    return true;
  }
  let decoded: string;
  try {
    decoded = atob(buf.toString('latin1'));
  } catch {
    return false;
  }
  let end = buf.length - 1;
  while (end >= 0 && (buf[end] === 0x20 || buf[end] === 0x0a || buf[end] === 0x0d || buf[end] === 0x09)) end--;
  const padding = (buf[end] === 0x3d ? 1 : 0) + (buf[end] === 0x3d && buf[end - 1] === 0x3d ? 1 : 0);
  return (decoded.length + padding) % 3 === 0;
}

const NATIVE_SLICE = 4 * 1024 * 1024;

/**
 * DocAddData is anyType: keep its content as canonical XML in which each top-level element declares every
 * namespace in scope, so it stands alone and survives a rebuild unchanged (build.ts re-canonicalizes it).
 */
function readAdditionalData(el: XmlElement | undefined): AdditionalData | undefined {
  if (!el) return undefined;
  for (const d of descendantsAndSelf(el)) {
    if (d !== el && d.ns === DSIG_NS && d.local === 'Signature') {
      throw new GatewayError('GW_ERR_SIG_EXTRA_SIGNATURE', `${d.path}: a signature inside DocAddData is not accepted`);
    }
  }
  let xml = '';
  for (const child of el.children) {
    if (child.type === 'element') canonicalizeSubtree(child, (c) => { xml += typeof c === 'string' ? c : c.toString('utf8'); });
    else if (child.type === 'text') xml += escapeCanonicalText(textValue(child));
    else xml += child.data ? `<?${child.target} ${child.data}?>` : `<?${child.target}?>`;
  }
  return { xml };
}
