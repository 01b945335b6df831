import { GatewayError, isGatewayError } from '../../errors/index.ts';
import { childElements, descendantsAndSelf, elementText, parseXml, type XmlElement } from '../../xml/index.ts';
import { requireXsdDateTime } from '../values.ts';
import type { RegistryAnswer, RegistryEntity, RegistryOperation, RegistryService } from './types.ts';

/**
 * SOAP 1.1 rpc/encoded, the way EgovRegistry.wsdl describes it: requests are `<tns:Op>` with unqualified,
 * xsi:typed part accessors; answers are `<tns:OpResponse><return>` holding an EGovMessageDir.
 *
 * Answers come from Java Axis or .NET in two shapes and we read both: everything nested inline (xsi:type and
 * soapenc:arrayType on the arrays), or `href="#idN"` accessors pointing at `id="idN"` siblings in the Body
 * (Axis calls them `<multiRef>`, .NET names them after their type). Element names of array items and the
 * namespaces of accessors vary between stacks, so we match accessors by local name and items by position.
 */
export const REGISTRY_NS = 'uri:egovmsg';
export const SOAP11_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const SOAP12_ENV_NS = 'http://www.w3.org/2003/05/soap-envelope';
export const SOAP_ENC_NS = 'http://schemas.xmlsoap.org/soap/encoding/';
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
/** Older stacks (Axis 1 configured for the 1999 schema) write `xsi:null="1"` in this namespace. */
const XSI_NAMESPACES = new Set([XSI_NS, 'http://www.w3.org/2000/10/XMLSchema-instance', 'http://www.w3.org/1999/XMLSchema-instance']);

/** Answers above this size are refused before parsing (the real registry answers GetAllRecords in a few MiB). */
export const MAX_REGISTRY_RESPONSE_BYTES = 64 * 1024 * 1024;

/** The request part of each operation (name and xsd type), from the WSDL's messages. */
const REQUEST_PARTS: Record<RegistryOperation, { name: string; type: string } | null> = {
  GetAllRecords: null,
  GetNewRecords: { name: 'date', type: 'xsd:dateTime' },
  GetByEntityIdentifier: { name: 'EntityIdentifier', type: 'xsd:string' },
  GetByGuid: { name: 'guid', type: 'xsd:string' },
  GetByCertificateSN: { name: 'CertificateSN', type: 'xsd:string' },
};

export function registrySoapAction(operation: RegistryOperation): string {
  return `${REGISTRY_NS}/${operation}`;
}

/** The request part's accessor name and xsd type, or null for GetAllRecords (no parts). */
export function registryRequestPart(operation: RegistryOperation): { name: string; type: string } | null {
  return REQUEST_PARTS[operation];
}

export function escapeXmlText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

/**
 * The SOAP envelope for one registry call. `argument` is the single part of the operation (the dateTime for
 * GetNewRecords, the ЕИК, GUID or serial for the lookups) and must be absent for GetAllRecords.
 */
export function buildRegistryRequest(operation: RegistryOperation, argument?: string): string {
  const part = REQUEST_PARTS[operation];
  if (part === undefined) throw new TypeError(`unknown registry operation ${String(operation)}`);
  if (part && argument === undefined) throw new TypeError(`${operation} needs its ${part.name} argument`);
  if (!part && argument !== undefined) throw new TypeError(`${operation} takes no argument`);
  if (part?.type === 'xsd:dateTime') requireXsdDateTime(argument!, `${operation}/${part.name}`);
  const inner = part
    ? `<${part.name} xsi:type="${part.type}">${escapeXmlText(argument!)}</${part.name}>`
    : '';
  return '<?xml version="1.0" encoding="utf-8"?>' +
    `<soapenv:Envelope xmlns:soapenv="${SOAP11_ENV_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"` +
    ` xmlns:xsi="${XSI_NS}" xmlns:soapenc="${SOAP_ENC_NS}" xmlns:tns="${REGISTRY_NS}">` +
    `<soapenv:Body soapenv:encodingStyle="${SOAP_ENC_NS}"><tns:${operation}>${inner}</tns:${operation}></soapenv:Body>` +
    '</soapenv:Envelope>';
}

function bad(detail: string, cause?: unknown): never {
  throw new GatewayError('GW_ERR_REGISTRY_BAD_RESPONSE', detail, cause === undefined ? undefined : { cause });
}

function attr(el: XmlElement, ns: string, local: string): string | undefined {
  for (const a of el.attributes) if (a.local === local && a.ns === ns) return a.value;
  return undefined;
}

function isNil(el: XmlElement): boolean {
  for (const a of el.attributes) {
    if ((a.local === 'nil' || a.local === 'null') && XSI_NAMESPACES.has(a.ns)) return a.value === 'true' || a.value === '1';
  }
  return false;
}

/** Local name match first, then a case-insensitive one (some stacks camel-case accessor names). */
function findChild(parent: XmlElement, local: string): XmlElement | undefined {
  const kids = childElements(parent);
  return kids.find((k) => k.local === local) ?? kids.find((k) => k.local.toLowerCase() === local.toLowerCase());
}

/** Guards against answers that reuse one multiRef many times to make decoding explode. */
class Decoder {
  private readonly ids = new Map<string, XmlElement>();
  private budget: number;

  constructor(body: XmlElement) {
    let elements = 0;
    for (const el of descendantsAndSelf(body)) {
      elements++;
      const id = attr(el, '', 'id');
      if (id === undefined) continue;
      if (this.ids.has(id)) bad(`two elements in the Body carry id="${id.slice(0, 40)}"`);
      this.ids.set(id, el);
    }
    // An honest answer visits each element about once; shared multiRefs may add a little.
    this.budget = 2 * elements + 1000;
  }

  /** Follows href="#id" to the referenced element. */
  deref(el: XmlElement, where: string): XmlElement {
    let cur = el;
    for (let hops = 0; hops < 8; hops++) {
      if (--this.budget < 0) bad(`${where}: the answer references the same parts too many times`);
      const href = attr(cur, '', 'href');
      if (href === undefined) return cur;
      if (!href.startsWith('#')) bad(`${where}: reference "${href.slice(0, 60)}" points outside the message`);
      const target = this.ids.get(href.slice(1));
      if (!target) bad(`${where}: reference "${href.slice(0, 60)}" has no element with that id`);
      cur = target;
    }
    bad(`${where}: chain of references too long`);
  }

  /** The accessor `local` of a struct, dereferenced; undefined when absent or nil. */
  field(struct: XmlElement, local: string, where: string): XmlElement | undefined {
    const child = findChild(struct, local);
    if (!child) return undefined;
    const el = this.deref(child, `${where}/${local}`);
    return isNil(el) ? undefined : el;
  }

  /** A simple value: undefined when absent or nil. */
  text(struct: XmlElement, local: string, where: string): string | undefined {
    const el = this.field(struct, local, where);
    if (!el) return undefined;
    if (childElements(el).length > 0) bad(`${where}/${local}: expected a simple value, found a structure`);
    return elementText(el);
  }

  /** The items of a soapenc:Array (each dereferenced; nil items dropped); [] when absent or nil. */
  array(struct: XmlElement, local: string, where: string): Array<{ el: XmlElement; where: string }> {
    const el = this.field(struct, local, where);
    if (!el) return [];
    const items = childElements(el);
    const declared = attr(el, SOAP_ENC_NS, 'arrayType');
    const size = declared ? /\[(\d+)\]$/.exec(declared) : null;
    if (size && attr(el, SOAP_ENC_NS, 'offset') === undefined && Number(size[1]) !== items.length) {
      bad(`${where}/${local}: soapenc:arrayType declares ${size[1]} items, the array holds ${items.length}`);
    }
    const out: Array<{ el: XmlElement; where: string }> = [];
    items.forEach((item, i) => {
      const itemWhere = `${where}/${local}[${i + 1}]`;
      const target = this.deref(item, itemWhere);
      if (!isNil(target)) out.push({ el: target, where: itemWhere });
    });
    return out;
  }
}

/** A GUID with or without braces, any case (the registry is not consistent). */
const LOOSE_GUID_RE = /^\s*\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?\s*$/;

export function isRegistryGuid(value: string): boolean {
  return LOOSE_GUID_RE.test(value);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function decodeService(d: Decoder, el: XmlElement, where: string): RegistryService {
  return {
    guid: d.text(el, 'Guid', where) ?? '',
    name: d.text(el, 'Name', where) ?? '',
    uri: d.text(el, 'URI', where) ?? '',
    status: d.text(el, 'Status', where) ?? '',
    type: d.text(el, 'Type', where) ?? '',
    version: d.text(el, 'Version', where) ?? '',
  };
}

function decodeEntity(d: Decoder, el: XmlElement, where: string): RegistryEntity {
  const guid = nonEmpty(d.text(el, 'Guid', where));
  if (!guid) bad(`${where}/Guid is missing`);
  if (!isRegistryGuid(guid)) bad(`${where}/Guid "${guid.slice(0, 60)}" is not a GUID`);
  const entityIdentifier = nonEmpty(d.text(el, 'EntityIdentifier', where));
  if (!entityIdentifier) bad(`${where}/EntityIdentifier is missing (entity ${guid})`);
  const contactEl = d.field(el, 'Contact', where);
  const contact: RegistryEntity['contact'] = {};
  if (contactEl) {
    const phone = nonEmpty(d.text(contactEl, 'Phone', `${where}/Contact`));
    const fax = nonEmpty(d.text(contactEl, 'Fax', `${where}/Contact`));
    const emailAddress = nonEmpty(d.text(contactEl, 'EmailAddress', `${where}/Contact`));
    if (phone !== undefined) contact.phone = phone;
    if (fax !== undefined) contact.fax = fax;
    if (emailAddress !== undefined) contact.emailAddress = emailAddress;
  }
  const entity: RegistryEntity = {
    entityIdentifier,
    guid,
    administrativeBodyName: d.text(el, 'AdministrativeBodyName', where) ?? '',
    contact,
    services: d.array(el, 'Services', where).map((s) => decodeService(d, s.el, s.where)),
    status: d.text(el, 'Status', where) ?? '',
  };
  const parentGuid = nonEmpty(d.text(el, 'ParentGuid', where));
  const certificateSN = nonEmpty(d.text(el, 'CertificateSN', where));
  const lastChange = nonEmpty(d.text(el, 'LastChange', where));
  if (parentGuid !== undefined) entity.parentGuid = parentGuid;
  if (certificateSN !== undefined) entity.certificateSN = certificateSN;
  if (lastChange !== undefined) entity.lastChange = lastChange.trim();
  return entity;
}

/** The SOAP Body of an answer, after refusing what is not SOAP 1.1 and turning a Fault into GW_ERR_REGISTRY_FAULT. */
export function soapBody(xml: Buffer | string, maxBytes = MAX_REGISTRY_RESPONSE_BYTES): XmlElement {
  let root: XmlElement;
  try {
    root = parseXml(xml, { maxBytes }).root;
  } catch (e) {
    if (isGatewayError(e)) bad(`${e.code}${e.detail ? `: ${e.detail}` : ''}`, e);
    throw e;
  }
  if (root.local !== 'Envelope' || root.ns !== SOAP11_ENV_NS) {
    bad(root.local === 'Envelope' && root.ns === SOAP12_ENV_NS
      ? 'a SOAP 1.2 envelope; the registry speaks SOAP 1.1'
      : `the root is {${root.ns.slice(0, 80)}}${root.local.slice(0, 60)}, not a SOAP 1.1 Envelope`);
  }
  const body = childElements(root).find((c) => c.local === 'Body' && c.ns === SOAP11_ENV_NS);
  if (!body) bad('the Envelope has no Body');
  const fault = childElements(body).find((c) => c.local === 'Fault' && c.ns === SOAP11_ENV_NS);
  if (fault) {
    const text = (name: string) => {
      const el = childElements(fault).find((c) => c.local === name);
      return el ? elementText(el).trim() : '';
    };
    const faultstring = text('faultstring') || '(no faultstring)';
    const faultcode = text('faultcode');
    throw new GatewayError('GW_ERR_REGISTRY_FAULT', `${faultcode ? `${faultcode.slice(0, 80)}: ` : ''}${faultstring.slice(0, 500)}`);
  }
  return body;
}

/**
 * Reads an answer of any of the five operations into entities and the registry's LastChange. With `operation`,
 * the response element must be `<operation>Response`.
 */
export function parseRegistryResponse(xml: Buffer | string, operation?: RegistryOperation): RegistryAnswer {
  const body = soapBody(xml);
  const d = new Decoder(body);
  // The response element: the first Body child that is not a serialization root="0" / referenced part.
  const response = childElements(body).find((c) => attr(c, SOAP_ENC_NS, 'root') !== '0' && attr(c, '', 'id') === undefined);
  if (!response) bad('the Body holds no response element');
  if (operation && response.local !== `${operation}Response`) {
    bad(`expected <${operation}Response> in the Body, found <${response.qname.slice(0, 80)}>`);
  }
  const where = response.local;
  const part = findChild(response, 'return') ?? childElements(response)[0];
  if (!part) bad(`<${where}> has no return part`);
  const dir = d.deref(part, `${where}/${part.local}`);
  if (isNil(dir)) return { entities: [] };
  const dirWhere = `${where}/${part.local}`;
  if (!findChild(dir, 'Entities')) bad(`${dirWhere} has no Entities (not an EGovMessageDir)`);
  const entities = d.array(dir, 'Entities', dirWhere).map((e) => decodeEntity(d, e.el, e.where));
  const lastChange = nonEmpty(d.text(dir, 'LastChange', dirWhere));
  return lastChange === undefined ? { entities } : { entities, lastChange: lastChange.trim() };
}
