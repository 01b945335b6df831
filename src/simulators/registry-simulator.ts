import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import {
  REGISTRY_NS, REGISTRY_OPERATIONS, canonicalGuid, isRegistryGuid, registryRequestPart, registrySoapAction,
  type RegistryEntity, type RegistryOperation, type RegistryService,
} from '../seos/registry/index.ts';
import { dateTimeToInstant, isXsdDateTime } from '../seos/values.ts';
import { childElements, elementText, parseXml, type XmlElement } from '../xml/index.ts';

/**
 * A stand-in for the SEOS registry (EgovRegistry.wsdl) for tests and the demo: a plain node:http(s) server that
 * answers the five operations in the real SOAP 1.1 rpc/encoded wire format, either with everything nested
 * inline (xsi:type, soapenc:arrayType) or with Axis-style `href="#idN"` → `<multiRef id="idN">` parts.
 *
 * GetNewRecords returns the entities whose LastChange is after the given dateTime; every answer's LastChange is
 * the latest LastChange in the whole simulated registry. Failures can be injected per request.
 */
const SOAP_ENV = 'http://schemas.xmlsoap.org/soap/envelope/';
const SOAP_ENC = 'http://schemas.xmlsoap.org/soap/encoding/';
const XSD = 'http://www.w3.org/2001/XMLSchema';
const XSI = 'http://www.w3.org/2001/XMLSchema-instance';
const MAX_REQUEST_BYTES = 1024 * 1024;

export type RegistryFailureKind = 'fault' | 'http500' | 'hang' | 'garbage';

export interface RegistrySimulatorOptions {
  /** 0 (default): any free port. */
  port?: number;
  host?: string;
  entities: RegistryEntity[];
  style?: 'inline' | 'multiref';
  /** Serve HTTPS; with `ca` (or requestCert) the client must present a certificate issued by it (mutual TLS). */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer | Array<string | Buffer>; requestCert?: boolean };
}

export interface RegistrySimulatorCall {
  operation: RegistryOperation | '(invalid)';
  at: Date;
  argument?: string;
  soapAction?: string;
  /** Subject CN of the client certificate, when one was presented. */
  clientCertificate?: string;
}

export interface RegistrySimulator {
  /** e.g. http://127.0.0.1:41234/service/ */
  readonly url: string;
  readonly calls: RegistrySimulatorCall[];
  close(): Promise<void>;
  setEntities(list: RegistryEntity[]): void;
  /** Adds or replaces by GUID; an entity without lastChange gets the current time, so GetNewRecords returns it. */
  upsert(entity: RegistryEntity): void;
  /** Removes by GUID (any case, braces optional); true when it was there. */
  remove(guid: string): boolean;
  /** The simulated registry's content. */
  entities(): RegistryEntity[];
  /** The next `n` requests fail this way (queued after failures already pending). */
  failNext(n: number, kind: RegistryFailureKind): void;
}

// ── the wire format ──

type Scalar = { kind: 'scalar'; xsdType: string; value: string | undefined };
type Struct = { kind: 'struct'; type: string; fields: Array<[string, Value]> };
type ArrayValue = { kind: 'array'; itemType: string; items: Struct[] };
type Value = Scalar | Struct | ArrayValue;

const str = (value: string | undefined): Scalar => ({ kind: 'scalar', xsdType: 'xsd:string', value });

function serviceValue(s: RegistryService): Struct {
  return {
    kind: 'struct', type: 'Service', fields: [
      ['Guid', str(s.guid)], ['Name', str(s.name)],
      ['URI', { kind: 'scalar', xsdType: 'xsd:anyURI', value: s.uri || undefined }],
      ['Status', str(s.status)], ['Type', str(s.type)],
      ['Version', { kind: 'scalar', xsdType: 'xsd:integer', value: s.version || undefined }],
    ],
  };
}

function entityValue(e: RegistryEntity): Struct {
  return {
    kind: 'struct', type: 'Entity', fields: [
      ['EntityIdentifier', str(e.entityIdentifier)],
      ['Guid', str(e.guid)],
      ['ParentGuid', str(e.parentGuid)],
      ['AdministrativeBodyName', str(e.administrativeBodyName)],
      ['Contact', {
        kind: 'struct', type: 'Contact', fields: [
          ['Phone', str(e.contact?.phone)], ['Fax', str(e.contact?.fax)], ['EmailAddress', str(e.contact?.emailAddress)],
        ],
      }],
      ['CertificateSN', str(e.certificateSN)],
      ['Services', { kind: 'array', itemType: 'Service', items: (e.services ?? []).map(serviceValue) }],
      ['LastChange', { kind: 'scalar', xsdType: 'xsd:dateTime', value: e.lastChange }],
      ['Status', str(e.status)],
    ],
  };
}

function esc(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\r/g, '&#13;');
}

function scalarXml(name: string, v: Scalar): string {
  return v.value === undefined
    ? `<${name} xsi:type="${v.xsdType}" xsi:nil="true"/>`
    : `<${name} xsi:type="${v.xsdType}">${esc(v.value)}</${name}>`;
}

/** Everything nested, as Axis writes with multiRefs switched off. */
function inlineXml(name: string, v: Value, ns: string): string {
  if (v.kind === 'scalar') return scalarXml(name, v);
  if (v.kind === 'array') {
    return `<${name} xsi:type="soapenc:Array" soapenc:arrayType="${ns}:${v.itemType}[${v.items.length}]">` +
      v.items.map((item) => inlineXml('item', item, ns)).join('') + `</${name}>`;
  }
  return `<${name} xsi:type="${ns}:${v.type}">` + v.fields.map(([n, f]) => inlineXml(n, f, ns)).join('') + `</${name}>`;
}

/** Axis's default: every struct becomes a `<multiRef>` sibling in the Body, referenced by href; arrays stay inline. */
function multiRefXml(top: Struct): { reference: string; parts: string } {
  const queue: Array<{ id: string; value: Struct }> = [];
  let next = 0;
  const ref = (value: Struct): string => {
    const id = `id${next++}`;
    queue.push({ id, value });
    return id;
  };
  const field = (name: string, v: Value): string => {
    if (v.kind === 'scalar') return scalarXml(name, v);
    if (v.kind === 'struct') return `<${name} href="#${ref(v)}"/>`;
    return `<${name} xsi:type="soapenc:Array" soapenc:arrayType="ns2:${v.itemType}[${v.items.length}]">` +
      v.items.map((item) => `<item href="#${ref(item)}"/>`).join('') + `</${name}>`;
  };
  const reference = `<return href="#${ref(top)}"/>`;
  let parts = '';
  for (let i = 0; i < queue.length; i++) {
    const { id, value } = queue[i];
    parts += `<multiRef id="${id}" soapenc:root="0" soapenv:encodingStyle="${SOAP_ENC}" xsi:type="ns2:${value.type}"` +
      ` xmlns:soapenc="${SOAP_ENC}" xmlns:ns2="${REGISTRY_NS}">` +
      value.fields.map(([n, f]) => field(n, f)).join('') + '</multiRef>';
  }
  return { reference, parts };
}

function envelope(body: string): string {
  return '<?xml version="1.0" encoding="UTF-8"?>' +
    `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV}" xmlns:xsd="${XSD}" xmlns:xsi="${XSI}"><soapenv:Body>${body}</soapenv:Body></soapenv:Envelope>`;
}

/** An EGovMessageDir answer to `operation` in the given style. */
export function renderRegistryAnswer(
  operation: RegistryOperation, entities: readonly RegistryEntity[], lastChange: string | undefined, style: 'inline' | 'multiref',
): string {
  const dir: Struct = {
    kind: 'struct', type: 'EGovMessageDir', fields: [
      ['Entities', { kind: 'array', itemType: 'Entity', items: entities.map(entityValue) }],
      ['LastChange', { kind: 'scalar', xsdType: 'xsd:dateTime', value: lastChange }],
    ],
  };
  const close = `</ns1:${operation}Response>`;
  if (style === 'inline') {
    const open = `<ns1:${operation}Response soapenv:encodingStyle="${SOAP_ENC}" xmlns:ns1="${REGISTRY_NS}" xmlns:soapenc="${SOAP_ENC}">`;
    return envelope(`${open}${inlineXml('return', dir, 'ns1')}${close}`);
  }
  const open = `<ns1:${operation}Response soapenv:encodingStyle="${SOAP_ENC}" xmlns:ns1="${REGISTRY_NS}">`;
  const { reference, parts } = multiRefXml(dir);
  return envelope(`${open}${reference}${close}${parts}`);
}

export function renderRegistryFault(faultcode: string, faultstring: string): string {
  return envelope(`<soapenv:Fault><faultcode>${esc(faultcode)}</faultcode><faultstring>${esc(faultstring)}</faultstring>` +
    '<detail><ns1:hostname xmlns:ns1="http://xml.apache.org/axis/">registry-simulator</ns1:hostname></detail></soapenv:Fault>');
}

// ── the server ──

class ClientFault extends Error {}

function foldSerial(value: string): string {
  return value.trim().replace(/^0x/i, '').replace(/[:\s-]/g, '').toUpperCase().replace(/^0+/, '') || '0';
}

function instant(value: string | undefined): number | undefined {
  if (value === undefined || !isXsdDateTime(value.trim())) return undefined;
  return dateTimeToInstant(value.trim()).getTime();
}

function parseRequest(body: Buffer): { operation: RegistryOperation; argument?: string } {
  let root: XmlElement;
  try {
    root = parseXml(body, { maxBytes: MAX_REQUEST_BYTES }).root;
  } catch (e) {
    throw new ClientFault(`unreadable request: ${(e as Error).message}`);
  }
  if (root.local !== 'Envelope' || root.ns !== SOAP_ENV) throw new ClientFault('not a SOAP 1.1 Envelope');
  const soapBody = childElements(root).find((c) => c.local === 'Body' && c.ns === SOAP_ENV);
  const call = soapBody ? childElements(soapBody)[0] : undefined;
  if (!call) throw new ClientFault('empty SOAP Body');
  const operation = REGISTRY_OPERATIONS.find((op) => op === call.local);
  if (!operation || call.ns !== REGISTRY_NS) throw new ClientFault(`no such operation {${call.ns}}${call.local}`);
  const part = registryRequestPart(operation);
  if (!part) return { operation };
  const el = childElements(call).find((c) => c.local === part.name);
  if (!el) throw new ClientFault(`${operation}: missing part ${part.name}`);
  return { operation, argument: elementText(el) };
}

export async function startRegistrySimulator(options: RegistrySimulatorOptions): Promise<RegistrySimulator> {
  const host = options.host ?? '127.0.0.1';
  const style = options.style ?? 'inline';
  const store = new Map<string, RegistryEntity>();
  const setEntities = (list: RegistryEntity[]) => {
    store.clear();
    for (const e of list) store.set(canonicalGuid(e.guid), structuredClone(e));
  };
  setEntities(options.entities);
  const calls: RegistrySimulatorCall[] = [];
  const failures: RegistryFailureKind[] = [];
  const sockets = new Set<Socket>();

  const lastChangeOfAll = (): string | undefined => {
    let best: { text: string; at: number } | undefined;
    for (const e of store.values()) {
      const at = instant(e.lastChange);
      if (at !== undefined && (!best || at > best.at)) best = { text: e.lastChange!.trim(), at };
    }
    return best?.text;
  };

  const answer = (operation: RegistryOperation, argument: string | undefined): RegistryEntity[] => {
    const all = [...store.values()];
    switch (operation) {
      case 'GetAllRecords':
        return all;
      case 'GetNewRecords': {
        const since = instant(argument);
        if (since === undefined) throw new ClientFault(`GetNewRecords: "${argument}" is not an xsd:dateTime`);
        return all.filter((e) => (instant(e.lastChange) ?? -Infinity) > since);
      }
      case 'GetByEntityIdentifier':
        return all.filter((e) => e.entityIdentifier === argument!.trim());
      case 'GetByGuid':
        return isRegistryGuid(argument!) ? all.filter((e) => canonicalGuid(e.guid) === canonicalGuid(argument!)) : [];
      case 'GetByCertificateSN':
        return all.filter((e) => e.certificateSN !== undefined && foldSerial(e.certificateSN) === foldSerial(argument!));
    }
  };

  const send = (res: http.ServerResponse, status: number, type: string, body: string) => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method !== 'POST') {
      send(res, 405, 'text/plain; charset=utf-8', 'POST a SOAP 1.1 request\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REQUEST_BYTES) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      const soapActionHeader = req.headers.soapaction;
      const soapAction = typeof soapActionHeader === 'string' ? soapActionHeader.replace(/^"(.*)"$/, '$1') : undefined;
      const peer = (req.socket as { getPeerCertificate?: () => { subject?: { CN?: string } } }).getPeerCertificate?.();
      const record: RegistrySimulatorCall = { operation: '(invalid)', at: new Date() };
      if (soapAction !== undefined) record.soapAction = soapAction;
      if (peer?.subject?.CN) record.clientCertificate = peer.subject.CN;
      calls.push(record);
      const failure = failures.shift();
      let parsed: { operation: RegistryOperation; argument?: string } | undefined;
      try {
        parsed = parseRequest(Buffer.concat(chunks));
        record.operation = parsed.operation;
        if (parsed.argument !== undefined) record.argument = parsed.argument;
      } catch (e) {
        if (!failure) {
          send(res, 500, 'text/xml; charset=utf-8', renderRegistryFault('soapenv:Client', (e as Error).message));
          return;
        }
      }
      switch (failure) {
        case 'fault':
          send(res, 500, 'text/xml; charset=utf-8', renderRegistryFault('soapenv:Server.userException',
            'java.sql.SQLException: Регистърът е временно недостъпен (simulated)'));
          return;
        case 'http500':
          send(res, 500, 'text/html; charset=utf-8', '<html><body><h1>500 Internal Server Error</h1></body></html>');
          return;
        case 'garbage':
          send(res, 200, 'text/xml; charset=utf-8', 'this is not <xml at all & never was');
          return;
        case 'hang':
          return; // no answer; the socket is destroyed on close()
        case undefined:
          break;
      }
      const { operation, argument } = parsed!;
      if (soapAction !== registrySoapAction(operation)) {
        send(res, 500, 'text/xml; charset=utf-8', renderRegistryFault('soapenv:Client',
          `SOAPAction "${soapAction ?? ''}" does not match ${registrySoapAction(operation)}`));
        return;
      }
      try {
        const list = answer(operation, argument);
        send(res, 200, 'text/xml; charset=utf-8', renderRegistryAnswer(operation, list, lastChangeOfAll(), style));
      } catch (e) {
        send(res, 500, 'text/xml; charset=utf-8', renderRegistryFault(e instanceof ClientFault ? 'soapenv:Client' : 'soapenv:Server', (e as Error).message));
      }
    });
  };

  const server = options.tls
    ? https.createServer({
      key: options.tls.key, cert: options.tls.cert, ca: options.tls.ca,
      requestCert: options.tls.requestCert ?? options.tls.ca !== undefined, rejectUnauthorized: true,
    }, handler)
    : http.createServer(handler);
  server.on(options.tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // TLS handshake failures (a client without a certificate) are the client's problem, not the simulator's.
  server.on('tlsClientError', () => undefined);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `${options.tls ? 'https' : 'http'}://${urlHost}:${port}/service/`,
    calls,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
    setEntities,
    upsert(entity) {
      const copy = structuredClone(entity);
      if (copy.lastChange === undefined) copy.lastChange = new Date().toISOString();
      store.set(canonicalGuid(copy.guid), copy);
    },
    remove: (guid) => store.delete(canonicalGuid(guid)),
    entities: () => [...store.values()].map((e) => structuredClone(e)),
    failNext(n, kind) {
      for (let i = 0; i < n; i++) failures.push(kind);
    },
  };
}
