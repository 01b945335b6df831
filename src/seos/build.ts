import { readFileSync } from 'node:fs';
import { GatewayError } from '../errors/index.ts';
import { parseXml } from '../xml/parse.ts';
import { canonicalizeContent, escapeCanonicalText } from '../xmldsig/c14n.ts';
import {
  CORRESPONDENT_KINDS, DOCUMENT_STATUSES, DOCUMENT_URI_NS, ERROR_KINDS, SEOS_NS,
  type AdditionalData, type Attachment, type AttachmentContent, type Correspondent, type DocumentId,
  type MessageBody, type MessageHeader, type Participant, type SeosDocument, type SeosMessage,
} from './model.ts';
import { isPositiveInteger, isSupportedVersion, requireGuid, requireXsdDate, requireXsdDateTime } from './values.ts';

/**
 * Writes a SEOS message as XML that is already in inclusive C14N form: no whitespace between elements, only
 * the default namespace declared on Message, text escaped as C14N escapes it. Because our bytes are canonical,
 * the digest of an enveloped signature is the hash of exactly what we write, computed while writing
 * (see sign-message.ts), and large attachments can be streamed. Everything is validated as the official schema
 * requires before a byte is produced: strict when sending.
 *
 * The output is a list of pieces: canonical text, or an attachment whose base64 is produced by the consumer.
 */
export type MessagePiece = string | { readonly attachment: AttachmentContent };

export const XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>';
export const MESSAGE_START_TAG = `<Message xmlns="${SEOS_NS}">`;
export const MESSAGE_END_TAG = '</Message>';

/** The message from `<Message ...>` up to, not including, `</Message>`. */
export function messagePieces(message: SeosMessage): MessagePiece[] {
  const w = new PieceWriter();
  w.raw(MESSAGE_START_TAG);
  writeHeader(w, message.header, message.body);
  w.raw('<Body>');
  writeBody(w, message.body);
  w.raw('</Body>');
  w.flush();
  return w.pieces;
}

/** The unsigned message as bytes (with the XML declaration). Attachments from files are read into memory. */
export function buildUnsignedMessage(message: SeosMessage): Buffer {
  const parts: Buffer[] = [Buffer.from(XML_DECLARATION, 'utf8')];
  for (const piece of messagePieces(message)) {
    parts.push(typeof piece === 'string' ? Buffer.from(piece, 'utf8') : Buffer.from(attachmentBase64(piece.attachment), 'latin1'));
  }
  parts.push(Buffer.from(MESSAGE_END_TAG, 'utf8'));
  return Buffer.concat(parts);
}

/** Base64 of an attachment held in memory (or read from its file), without line breaks. */
export function attachmentBase64(content: AttachmentContent): string {
  switch (content.source) {
    case 'bytes':
      return content.bytes.toString('base64');
    case 'file':
      return readFileSync(content.path).toString('base64');
    case 'base64':
      // As received it may contain line breaks; base64Binary ignores them, and we write none.
      return content.text.toString('latin1').replace(/[ \t\r\n]+/g, '');
  }
}

/**
 * The bytes of an attachment, decoded a slice at a time (a received base64 body may be hundreds of MiB: neither
 * its text without whitespace nor its decoded bytes are ever held whole).
 */
export function* attachmentBytes(content: AttachmentContent, sliceBytes = 3 * 1024 * 1024): Generator<Buffer> {
  if (content.source === 'bytes') {
    yield content.bytes;
    return;
  }
  if (content.source === 'file') {
    yield readFileSync(content.path);
    return;
  }
  // Collect base64 characters (whitespace skipped) in groups of four, decode each full group run.
  const text = content.text;
  const quantum = Math.max(4, Math.floor((sliceBytes / 3) * 4) & ~3);
  let carry = '';
  for (let start = 0; start < text.length; start += quantum) {
    let piece = carry + text.toString('latin1', start, Math.min(start + quantum, text.length));
    if (/[ \t\r\n]/.test(piece)) piece = piece.replace(/[ \t\r\n]+/g, '');
    const usable = piece.length - (piece.length % 4);
    carry = piece.slice(usable);
    if (usable > 0) yield Buffer.from(piece.slice(0, usable), 'base64');
  }
  if (carry) yield Buffer.from(carry, 'base64');
}

class PieceWriter {
  readonly pieces: MessagePiece[] = [];
  private current = '';

  raw(s: string): void {
    this.current += s;
  }

  /** <name>text</name>, the text checked for characters XML cannot carry and escaped canonically. */
  el(name: string, value: string, where: string): void {
    this.current += `<${name}>${escapeValue(value, where)}</${name}>`;
  }

  opt(name: string, value: string | undefined, where: string): void {
    if (value !== undefined) this.el(name, value, where);
  }

  attachment(content: AttachmentContent): void {
    this.pieces.push(this.current, { attachment: content });
    this.current = '';
  }

  flush(): void {
    if (this.current) this.pieces.push(this.current);
    this.current = '';
  }
}

// XML 1.0 Char production; anything else cannot be written at all.
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function escapeValue(value: string, where: string): string {
  if (typeof value !== 'string') throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${where}: expected text`);
  if (NOT_XML_CHAR.test(value)) throw new GatewayError('GW_ERR_XML_INVALID_CHAR', where);
  return escapeCanonicalText(value);
}

function writeHeader(w: PieceWriter, header: MessageHeader, body: MessageBody): void {
  const at = '/Message/Header';
  if (!isSupportedVersion(header.version)) throw new GatewayError('GW_ERR_SEOS_UNSUPPORTED_VERSION', `${at}/Version "${String(header.version).slice(0, 20)}"`);
  if (header.messageType !== body.type) {
    throw new GatewayError('GW_ERR_SEOS_TYPE_MISMATCH', `${at}/MessageType ${header.messageType} with Body ${body.type}`);
  }
  w.raw('<Header>');
  w.el('Version', header.version, `${at}/Version`);
  w.el('MessageType', header.messageType, `${at}/MessageType`);
  w.el('MessageDate', requireXsdDateTime(header.messageDate, `${at}/MessageDate`), `${at}/MessageDate`);
  writeParticipant(w, 'Sender', header.sender, `${at}/Sender`);
  writeParticipant(w, 'Recipient', header.recipient, `${at}/Recipient`);
  w.el('MessageGUID', requireGuid(header.messageGuid, `${at}/MessageGUID`), `${at}/MessageGUID`);
  w.raw('</Header>');
}

function writeParticipant(w: PieceWriter, name: string, p: Participant, at: string): void {
  if (!p) throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${at} is missing`);
  w.raw(`<${name}>`);
  w.el('Identifier', p.identifier, `${at}/Identifier`);
  w.el('AdministrativeBodyName', p.administrativeBodyName, `${at}/AdministrativeBodyName`);
  w.el('GUID', requireGuid(p.guid, `${at}/GUID`), `${at}/GUID`);
  w.raw(`</${name}>`);
}

function writeBody(w: PieceWriter, body: MessageBody): void {
  const at = '/Message/Body';
  switch (body.type) {
    case 'MSG_DocumentRegistrationRequest':
      w.raw('<DocumentRegistrationRequest>');
      writeDocument(w, body.document, `${at}/DocumentRegistrationRequest/Document`);
      w.el('Comment', body.comment, `${at}/DocumentRegistrationRequest/Comment`);
      w.raw('</DocumentRegistrationRequest>');
      break;
    case 'MSG_DocumentStatusRequest':
      w.raw('<DocumentStatusRequest>');
      writeDocumentId(w, 'DocID', body.docId, `${at}/DocumentStatusRequest/DocID`);
      w.raw('</DocumentStatusRequest>');
      break;
    case 'MSG_DocumentStatusResponse': {
      const here = `${at}/DocumentStatusResponse`;
      if (!DOCUMENT_STATUSES.includes(body.status)) {
        throw new GatewayError('GW_ERR_SEOS_BAD_VALUE', `${here}/DocRegStatus "${String(body.status).slice(0, 40)}"`);
      }
      w.raw('<DocumentStatusResponse>');
      writeDocumentId(w, 'DocID', body.docId, `${here}/DocID`);
      w.el('DocRegStatus', body.status, `${here}/DocRegStatus`);
      w.opt('RejectionReason', body.rejectionReason, `${here}/RejectionReason`);
      if (body.expectedCloseDate !== undefined) {
        w.el('DocExpectCloseDate', requireXsdDate(body.expectedCloseDate, `${here}/DocExpectCloseDate`), `${here}/DocExpectCloseDate`);
      }
      writeAdditionalData(w, body.additionalData, `${here}/DocAddData`);
      w.raw('</DocumentStatusResponse>');
      break;
    }
    case 'MSG_Error': {
      const here = `${at}/Error`;
      if (!ERROR_KINDS.includes(body.errorType)) {
        throw new GatewayError('GW_ERR_SEOS_BAD_VALUE', `${here}/ErrorType "${String(body.errorType).slice(0, 40)}"`);
      }
      w.raw('<Error>');
      if (body.messageGuid !== undefined) w.el('MessageGUID', requireGuid(body.messageGuid, `${here}/MessageGUID`), `${here}/MessageGUID`);
      w.el('ErrorType', body.errorType, `${here}/ErrorType`);
      w.el('ErrorDescription', body.description, `${here}/ErrorDescription`);
      w.raw('</Error>');
      break;
    }
    default:
      throw new GatewayError('GW_ERR_SEOS_BAD_VALUE', `${at}: unknown message type "${String((body as { type: unknown }).type).slice(0, 60)}"`);
  }
}

function writeDocumentId(w: PieceWriter, name: string, id: DocumentId, at: string): void {
  if (!id) throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${at} is missing`);
  if (id.number && id.uri) throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${at}: DocumentNumber and DocumentURI are mutually exclusive`);
  w.raw(`<${name}>`);
  if (id.number) {
    w.raw('<DocumentNumber>');
    w.el('DocNumber', id.number.docNumber, `${at}/DocumentNumber/DocNumber`);
    w.el('DocDate', requireXsdDate(id.number.docDate, `${at}/DocumentNumber/DocDate`), `${at}/DocumentNumber/DocDate`);
    w.raw('</DocumentNumber>');
  } else if (id.uri) {
    // The children of DocumentURI belong to the segment namespace, not to messaging/v1.
    w.raw(`<DocumentURI xmlns:duri="${DOCUMENT_URI_NS}">`);
    const u = id.uri;
    for (const [local, value] of [['RegisterIndex', u.registerIndex], ['SequenceNumber', u.sequenceNumber]] as const) {
      if (value === undefined) continue;
      if (!isPositiveInteger(value)) throw new GatewayError('GW_ERR_SEOS_BAD_VALUE', `${at}/DocumentURI/${local}: a positive integer is expected`);
      w.el(`duri:${local}`, value, `${at}/DocumentURI/${local}`);
    }
    if (u.receiptOrSigningDate !== undefined) {
      w.el('duri:ReceiptOrSigningDate', requireXsdDate(u.receiptOrSigningDate, `${at}/DocumentURI/ReceiptOrSigningDate`), `${at}/DocumentURI/ReceiptOrSigningDate`);
    }
    w.raw('</DocumentURI>');
  }
  w.el('DocumentGUID', requireGuid(id.documentGuid, `${at}/DocumentGUID`), `${at}/DocumentGUID`);
  w.raw(`</${name}>`);
}

function writeDocument(w: PieceWriter, doc: SeosDocument, at: string): void {
  if (!doc) throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${at} is missing`);
  w.raw('<Document>');
  writeDocumentId(w, 'DocID', doc.id, `${at}/DocID`);
  if (doc.parentId) writeDocumentId(w, 'DocParentID', doc.parentId, `${at}/DocParentID`);
  w.el('DocKind', doc.kind, `${at}/DocKind`);
  if (doc.correspondents && doc.correspondents.length > 0) {
    w.raw('<DocCorrespondentList>');
    doc.correspondents.forEach((c, i) => writeCorrespondent(w, c, `${at}/DocCorrespondentList/Corespondent[${i + 1}]`));
    w.raw('</DocCorrespondentList>');
  }
  if (doc.attachments && doc.attachments.length > 0) {
    w.raw('<DocAttachmentList>');
    doc.attachments.forEach((a, i) => writeAttachment(w, a, `${at}/DocAttachmentList/Attachment[${i + 1}]`));
    w.raw('</DocAttachmentList>');
  }
  w.opt('DocAbout', doc.about, `${at}/DocAbout`);
  if (doc.service) {
    w.raw('<DocService>');
    w.el('ServiceName', doc.service.name, `${at}/DocService/ServiceName`);
    w.el('ServiceType', doc.service.type, `${at}/DocService/ServiceType`);
    w.el('ServiceCode', doc.service.code, `${at}/DocService/ServiceCode`);
    w.raw('</DocService>');
  }
  w.opt('DocComment', doc.comment, `${at}/DocComment`);
  writeAdditionalData(w, doc.additionalData, `${at}/DocAddData`);
  if (doc.requestedCloseDate !== undefined) {
    w.el('DocReqDateClose', requireXsdDate(doc.requestedCloseDate, `${at}/DocReqDateClose`), `${at}/DocReqDateClose`);
  }
  w.opt('DocAttentionTo', doc.attentionTo, `${at}/DocAttentionTo`);
  // No document-level ds:Signature, ever: .NET peers verify the first Signature in the document (protocols.md §6.2).
  w.raw('</Document>');
}

function writeCorrespondent(w: PieceWriter, c: Correspondent, at: string): void {
  w.raw('<Corespondent>');
  w.el('CorName', c.name, `${at}/CorName`);
  w.el('CorCity', c.city, `${at}/CorCity`);
  w.opt('CorAddress', c.address, `${at}/CorAddress`);
  w.opt('CorEGN', c.egn, `${at}/CorEGN`);
  w.opt('CorIDCard', c.idCard, `${at}/CorIDCard`);
  w.opt('CorBULSTAT', c.bulstat, `${at}/CorBULSTAT`);
  w.opt('CorEMail', c.email, `${at}/CorEMail`);
  w.opt('CorPhone', c.phone, `${at}/CorPhone`);
  w.opt('CorMobilePhone', c.mobilePhone, `${at}/CorMobilePhone`);
  w.opt('CorMOL', c.mol, `${at}/CorMOL`);
  w.opt('CorComment', c.comment, `${at}/CorComment`);
  if (c.kind !== undefined) {
    if (!CORRESPONDENT_KINDS.includes(c.kind)) throw new GatewayError('GW_ERR_SEOS_BAD_VALUE', `${at}/CorKind "${String(c.kind).slice(0, 40)}"`);
    w.el('CorKind', c.kind, `${at}/CorKind`);
  }
  w.raw('</Corespondent>');
}

function writeAttachment(w: PieceWriter, a: Attachment, at: string): void {
  if (!a.content) throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${at}/AttBody is missing`);
  w.raw('<Attachment>');
  w.el('AttFileName', a.fileName, `${at}/AttFileName`);
  w.raw('<AttBody>');
  w.attachment(a.content);
  w.raw('</AttBody>');
  w.opt('AttComment', a.comment, `${at}/AttComment`);
  w.el('AttMIMEType', a.mimeType, `${at}/AttMIMEType`);
  w.raw('</Attachment>');
}

/**
 * DocAddData content is re-canonicalized in the context it is written into, so what we emit is canonical and
 * any content a parse captured (see parse.ts) comes back unchanged.
 */
function writeAdditionalData(w: PieceWriter, data: AdditionalData | undefined, at: string): void {
  if (data === undefined) return;
  if (typeof data.xml !== 'string') throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${at}: xml must be a string`);
  let wrapper;
  try {
    wrapper = parseXml(`<DocAddData xmlns="${SEOS_NS}">${data.xml}</DocAddData>`, { maxBytes: 16 * 1024 * 1024 });
  } catch (cause) {
    throw new GatewayError('GW_ERR_SEOS_INVALID_INPUT', `${at}: the content is not well-formed XML`, { cause });
  }
  let content = '';
  canonicalizeContent(wrapper.root, (chunk) => { content += typeof chunk === 'string' ? chunk : chunk.toString('utf8'); });
  w.raw(`<DocAddData>${content}</DocAddData>`);
}
