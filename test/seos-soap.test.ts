import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { DOMParser } from '@xmldom/xmldom';
import forge from 'node-forge';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ERRORS, GatewayError, type ErrorCode } from '../src/errors/index.ts';
import type { SigningIdentity } from '../src/pki/index.ts';
import {
  buildErrorMessage, buildStatusResponse, signMessage, verifySignedMessage,
  type DocumentStatus, type RegistrationRequestBody, type SeosMessage,
} from '../src/seos/index.ts';
import {
  SOAP11_ENVELOPE_NS, SUBMIT_ACTION,
  buildSoapFault, buildSubmitRequest, buildSubmitResponse, createSeosClient, isDuplicateMessageGuidText,
  parseSubmitRequest, parseSubmitResponse, submitRequestParts,
  type SeosClient, type SeosClientOptions, type SubmitOutcome,
} from '../src/seos/soap/index.ts';
import { ALFA, BETA, sampleRegistration } from './support/messages.ts';
import { makeTestIdentities, type TestIdentities } from './support/pki.ts';

let ids: TestIdentities;
beforeAll(() => {
  ids = makeTestIdentities();
});
afterAll(() => {
  if (ids) fs.rmSync(ids.dir, { recursive: true, force: true });
});

function codeOf(fn: () => unknown): { code: ErrorCode; detail: string } {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    const e = err as GatewayError;
    return { code: e.code, detail: e.detail ?? '' };
  }
  throw new Error('expected a GatewayError, nothing was thrown');
}

const ENV_OPEN = `<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Body>`;
const ENV_CLOSE = '</s:Body></s:Envelope>';
const SUBMIT = (request: string) => `${ENV_OPEN}<Submit xmlns="http://services.egov.bg/messaging/">${request}</Submit>${ENV_CLOSE}`;
/** A minimal escape for hand-written test envelopes (the code under test never builds strings like this). */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');

function signedRegistration(overrides: Parameters<typeof sampleRegistration>[0] = {}): { model: SeosMessage; bytes: Buffer } {
  const model = sampleRegistration(overrides);
  return { model, bytes: signMessage(model, ids.alfa) };
}

/** The request text as an independent parser (xmldom) reads it. */
function xmldomRequestText(envelope: Buffer): string {
  const doc = new DOMParser().parseFromString(envelope.toString('utf8'), 'text/xml');
  const requests = doc.getElementsByTagNameNS('http://services.egov.bg/messaging/', 'request');
  expect(requests.length).toBe(1);
  return requests[0].textContent ?? '';
}

describe('SOAP Submit envelope: building and parsing', () => {
  it('round-trips a real signed message byte for byte, and it still verifies', () => {
    const { bytes } = signedRegistration();
    const envelope = buildSubmitRequest(bytes);
    const text = envelope.toString('utf8');
    expect(text.startsWith(`<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Body><Submit xmlns="http://services.egov.bg/messaging/"><request>&lt;?xml version="1.0" encoding="utf-8"?&gt;&lt;Message `)).toBe(true);
    expect(text.endsWith('&lt;/Message&gt;</request></Submit></s:Body></s:Envelope>')).toBe(true);
    const inner = parseSubmitRequest(envelope);
    expect(inner.equals(bytes)).toBe(true);
    expect(verifySignedMessage(inner).signature.signer.serialHex).toBe(ids.alfa.certificate.serialHex);
    // An independent parser reads the same string out of our escaping.
    expect(xmldomRequestText(envelope)).toBe(bytes.toString('utf8'));
    // The streaming form is the same bytes.
    expect(Buffer.concat(submitRequestParts(bytes)).equals(envelope)).toBe(true);
  });

  it('keeps CR bytes (as &#xD;) so they survive line-end normalization', () => {
    const { bytes } = signedRegistration({ about: 'ред 1\r\nред 2' });
    // Whitespace between the declaration and the root is outside the signed node-set: the signature still holds.
    const decl = bytes.indexOf('?>') + 2;
    const withCr = Buffer.concat([bytes.subarray(0, decl), Buffer.from('\r\n'), bytes.subarray(decl)]);
    expect(verifySignedMessage(withCr).message.header.messageGuid).toBe('{c0ffee00-1234-4abc-8def-00000000beef}');
    const envelope = buildSubmitRequest(withCr);
    expect(envelope.includes(0x0d)).toBe(false);
    expect(envelope.toString('utf8')).toContain('?&gt;&#xD;\n&lt;Message');
    const inner = parseSubmitRequest(envelope);
    expect(inner.equals(withCr)).toBe(true);
    verifySignedMessage(inner);
    expect(xmldomRequestText(envelope)).toBe(withCr.toString('utf8'));
  });

  it('carries a message containing "]]>" (inside its own CDATA) and accepts it in a split CDATA envelope', () => {
    const { bytes } = signedRegistration({ about: 'a ]]> b & <c>' });
    // Rewrite DocAbout as CDATA: canonically the same text, so the signature holds, and the raw bytes now hold "]]>".
    const plain = '<DocAbout>a ]]&gt; b &amp; &lt;c&gt;</DocAbout>';
    const cdata = '<DocAbout><![CDATA[a ]]]]><![CDATA[> b & <c>]]></DocAbout>';
    const message = Buffer.from(bytes.toString('utf8').replace(plain, cdata), 'utf8');
    expect(message.includes(']]>')).toBe(true);
    expect(verifySignedMessage(message).message.body.type).toBe('MSG_DocumentRegistrationRequest');

    const envelope = buildSubmitRequest(message);
    expect(parseSubmitRequest(envelope).equals(message)).toBe(true);

    // Another implementation's style: the message in CDATA, split wherever it contains "]]>".
    const asCdata = '<![CDATA[' + message.toString('utf8').split(']]>').join(']]]]><![CDATA[>') + ']]>';
    const other = Buffer.from(SUBMIT(`<request>${asCdata}</request>`), 'utf8');
    const inner = parseSubmitRequest(other);
    expect(inner.equals(message)).toBe(true);
    verifySignedMessage(inner);
  });

  it('accepts character references, other prefixes, whitespace, comments, a Header and an XML declaration', () => {
    const { bytes } = signedRegistration();
    const refs = [...bytes.toString('utf8')].map((ch) => {
      const cp = ch.codePointAt(0)!;
      if (ch === '<') return '&#60;';
      if (ch === '>') return '&#x3E;';
      if (ch === '&') return '&#38;';
      if (ch === '"') return '&quot;';
      return cp > 0x7f ? `&#x${cp.toString(16)};` : ch;
    }).join('');
    const envelope = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>
<!-- from another stack -->
<soapenv:Envelope xmlns:soapenv="${SOAP11_ENVELOPE_NS}" xmlns:egov="http://services.egov.bg/messaging/">
  <soapenv:Header>
    <wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing">${SUBMIT_ACTION}</wsa:Action>
  </soapenv:Header>
  <soapenv:Body>
    <egov:Submit>
      <!-- the message -->
      <egov:request>${refs}</egov:request>
    </egov:Submit>
  </soapenv:Body>
</soapenv:Envelope>
`, 'utf8');
    const inner = parseSubmitRequest(envelope);
    expect(inner.equals(bytes)).toBe(true);
    verifySignedMessage(inner);
  });

  it('joins text and CDATA pieces of one request', () => {
    const message = Buffer.from('<?xml version="1.0"?><a>x &amp; y</a>', 'utf8');
    const envelope = Buffer.from(SUBMIT('<request>&lt;?xml version="1.0"?&gt;<![CDATA[<a>x ]]>&amp;amp;<!-- c --> y&lt;/a&gt;</request>'), 'utf8');
    expect(parseSubmitRequest(envelope).toString('utf8')).toBe(message.toString('utf8'));
  });

  it('normalizes literal CR (not written as &#xD;) like any XML parser', () => {
    const envelope = Buffer.from(SUBMIT('<request>a\r\nb\rc&#xD;d</request>'), 'utf8');
    expect(parseSubmitRequest(envelope).toString('latin1')).toBe('a\nb\nc\rd');
  });

  const hostile: Array<[string, string, ErrorCode, RegExp?]> = [
    ['a DOCTYPE with an entity', `<!DOCTYPE x [<!ENTITY e "boom">]>${SUBMIT('<request>&e;</request>')}`, 'GW_ERR_XML_DOCTYPE'],
    ['Submit in another namespace', `${ENV_OPEN}<Submit xmlns="http://example.org/"><request>x</request></Submit>${ENV_CLOSE}`, 'GW_ERR_SOAP_MALFORMED', /Submit/],
    ['Submit in no namespace', `${ENV_OPEN}<Submit><request>x</request></Submit>${ENV_CLOSE}`, 'GW_ERR_SOAP_MALFORMED', /expected \{http:\/\/services\.egov\.bg\/messaging\/\}Submit/],
    ['request in another namespace', SUBMIT('<request xmlns="">x</request>'), 'GW_ERR_SOAP_MALFORMED', /request must be in namespace/],
    ['no request', SUBMIT(''), 'GW_ERR_SOAP_MALFORMED', /no request/],
    ['two requests', SUBMIT('<request>a</request><request>b</request>'), 'GW_ERR_SOAP_MALFORMED', /2 request/],
    ['a SOAP 1.2 envelope', `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit></e:Body></e:Envelope>`, 'GW_ERR_SOAP_MALFORMED', /SOAP 1\.2/],
    ['an empty Body', `${ENV_OPEN}${ENV_CLOSE}`, 'GW_ERR_SOAP_MALFORMED', /Body is empty/],
    ['an empty request', SUBMIT('<request/>'), 'GW_ERR_SOAP_MALFORMED', /empty/],
    ['a whitespace-only request', SUBMIT('<request>  \n </request>'), 'GW_ERR_SOAP_MALFORMED', /empty/],
    ['a nil request', SUBMIT('<request xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>'), 'GW_ERR_SOAP_MALFORMED', /nil/],
    ['the message as XML, not escaped', SUBMIT('<request><Message xmlns="http://schemas.egov.bg/messaging/v1"/></request>'), 'GW_ERR_SOAP_MALFORMED', /escaped text/],
    ['two elements in the Body', `${ENV_OPEN}<Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit><Other/>${ENV_CLOSE}`, 'GW_ERR_SOAP_MALFORMED', /holds 2 elements/],
    ['text in the Body', `${ENV_OPEN}hello<Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit>${ENV_CLOSE}`, 'GW_ERR_SOAP_MALFORMED', /text directly inside Body/],
    ['no Body', `<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Header/></s:Envelope>`, 'GW_ERR_SOAP_MALFORMED', /no Body/],
    ['an element after the Body', `${SUBMIT('<request>x</request>').replace('</s:Envelope>', '<s:Trailer/></s:Envelope>')}`, 'GW_ERR_SOAP_MALFORMED', /after the Body/],
    ['a mustUnderstand header', `<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Header><x:Sec xmlns:x="urn:x" s:mustUnderstand="1"/></s:Header><s:Body><Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit></s:Body></s:Envelope>`, 'GW_ERR_SOAP_MALFORMED', /mustUnderstand/],
    ['not an Envelope', '<Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit>', 'GW_ERR_SOAP_MALFORMED', /expected \{http:\/\/schemas\.xmlsoap\.org\/soap\/envelope\/\}Envelope/],
    ['an unknown entity in the request', SUBMIT('<request>a&nbsp;b</request>'), 'GW_ERR_XML_UNKNOWN_ENTITY'],
    ['a bare "&"', SUBMIT('<request>a & b</request>'), 'GW_ERR_XML_MALFORMED', /reference/],
    ['"]]>" in text', SUBMIT('<request>a ]]> b</request>'), 'GW_ERR_XML_MALFORMED', /\]\]>/],
    ['a control character', SUBMIT('<request>a\u0001b</request>'), 'GW_ERR_XML_MALFORMED', /control character/],
    ['U+FFFF', SUBMIT('<request>a\uffffb</request>'), 'GW_ERR_XML_MALFORMED', /U\+FFFE/],
    ['a reference to a forbidden character', SUBMIT('<request>a&#1;b</request>'), 'GW_ERR_XML_MALFORMED', /character reference/],
    ['an unclosed element', `${ENV_OPEN}<Submit xmlns="http://services.egov.bg/messaging/"><request>x</request>${ENV_CLOSE}`, 'GW_ERR_XML_MALFORMED'],
    ['an undeclared prefix', `${ENV_OPEN}<m:Submit><m:request>x</m:request></m:Submit>${ENV_CLOSE}`, 'GW_ERR_XML_NAMESPACE'],
    ['a comment before the XML declaration', `<!-- x --><?xml version="1.0"?>${SUBMIT('<request>x</request>')}`, 'GW_ERR_XML_MALFORMED', /declaration/],
    ['CDATA outside the root', `${SUBMIT('<request>x</request>')}<![CDATA[ ]]>`, 'GW_ERR_XML_MALFORMED', /CDATA/],
    ['text after the root', `${SUBMIT('<request>x</request>')}junk`, 'GW_ERR_XML_MALFORMED'],
  ];
  for (const [name, xml, code, detail] of hostile) {
    it(`refuses ${name} (${code})`, () => {
      const e = codeOf(() => parseSubmitRequest(Buffer.from(xml, 'utf8')));
      expect(e.code).toBe(code);
      if (detail) expect(e.detail).toMatch(detail);
    });
  }

  it('refuses input that is not UTF-8 and input over the size limit', () => {
    const latin1 = Buffer.from(SUBMIT('<request>Ж</request>').replace('Ж', '\u00e9'), 'latin1');
    expect(codeOf(() => parseSubmitRequest(latin1)).code).toBe('GW_ERR_XML_ENCODING');
    const envelope = buildSubmitRequest(signedRegistration().bytes);
    expect(codeOf(() => parseSubmitRequest(envelope, { maxBytes: 1000 })).code).toBe('GW_ERR_XML_TOO_LARGE');
    expect(parseSubmitRequest(envelope, { maxBytes: envelope.length }).length).toBeGreaterThan(0);
  });

  it('the builder refuses what XML cannot carry, wherever it sits (word-at-a-time scan)', () => {
    expect(codeOf(() => buildSubmitRequest(Buffer.alloc(0))).code).toBe('GW_ERR_SEOS_INVALID_INPUT');
    expect(codeOf(() => buildSubmitRequest(Buffer.from([0x3c, 0x61, 0xff, 0x3e]))).code).toBe('GW_ERR_XML_ENCODING');
    const base = Buffer.alloc(41, 'a');
    for (let at = 0; at < base.length; at++) {
      for (const bad of [0x00, 0x01, 0x1f, 0x0b]) {
        const copy = Buffer.from(base);
        copy[at] = bad;
        // Also from an odd offset inside a larger allocation, so the aligned word view starts mid-buffer.
        const shifted = Buffer.concat([Buffer.from('xyz'), copy]).subarray(3);
        for (const input of [copy, shifted]) {
          const e = codeOf(() => buildSubmitRequest(input));
          expect(e.code).toBe('GW_ERR_XML_INVALID_CHAR');
          expect(e.detail).toBe(`in the message at byte ${at}`);
        }
      }
    }
    // TAB, LF and CR are fine.
    expect(parseSubmitRequest(buildSubmitRequest(Buffer.from('a\tb\nc\rd'))).toString('latin1')).toBe('a\tb\nc\rd');
  });

  it('round-trips a 30 MiB message (linear, Buffer-based escaping and unescaping)', () => {
    const attachment = crypto.randomBytes(23 * 1024 * 1024);
    const { bytes } = signedRegistration({
      about: 'голям <файл> & "кавички"',
      attachments: [{ fileName: 'скан.pdf', mimeType: 'application/pdf', content: { source: 'bytes', bytes: attachment } }],
    });
    expect(bytes.length).toBeGreaterThan(30 * 1024 * 1024);
    const envelope = buildSubmitRequest(bytes);
    const inner = parseSubmitRequest(envelope);
    expect(inner.equals(bytes)).toBe(true);
    const verified = verifySignedMessage(inner);
    const body = verified.message.body as RegistrationRequestBody;
    const content = body.document.attachments![0].content;
    expect(content.source).toBe('base64');
    expect(Buffer.from((content as { text: Buffer }).text.toString('latin1'), 'base64').equals(attachment)).toBe(true);
  });
});

describe('SOAP Submit response: building and parsing', () => {
  it('round-trips a reply message, and reads the empty forms as empty', () => {
    const reply = signMessage(buildStatusResponse({ sender: BETA, recipient: ALFA }, {
      docId: { documentGuid: '{5d3c8b0e-2f4a-4c1e-9b7d-0123456789ab}' }, status: 'DS_WAIT_REGISTRATION',
    }), ids.beta);
    const parsed = parseSubmitResponse(buildSubmitResponse(reply));
    expect(parsed.kind).toBe('message');
    expect((parsed as { message: Buffer }).message.equals(reply)).toBe(true);

    expect(parseSubmitResponse(buildSubmitResponse(null))).toEqual({ kind: 'empty' });
    expect(buildSubmitResponse(null).toString('utf8')).toContain('<SubmitResult/>');
    const wrap = (inner: string) => Buffer.from(`${ENV_OPEN}<SubmitResponse xmlns="http://services.egov.bg/messaging/">${inner}</SubmitResponse>${ENV_CLOSE}`);
    expect(parseSubmitResponse(wrap(''))).toEqual({ kind: 'empty' });
    expect(parseSubmitResponse(wrap('<SubmitResult></SubmitResult>'))).toEqual({ kind: 'empty' });
    expect(parseSubmitResponse(wrap('<SubmitResult> \n </SubmitResult>'))).toEqual({ kind: 'empty' });
    expect(parseSubmitResponse(wrap('<SubmitResult xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>'))).toEqual({ kind: 'empty' });
    expect(codeOf(() => parseSubmitResponse(wrap('<SubmitResult>a</SubmitResult><SubmitResult>b</SubmitResult>'))).code).toBe('GW_ERR_SOAP_MALFORMED');
    expect(codeOf(() => parseSubmitResponse(Buffer.from(`${ENV_OPEN}<SubmitResponse xmlns="urn:other"/>${ENV_CLOSE}`))).code).toBe('GW_ERR_SOAP_MALFORMED');
  });

  it('builds and reads SOAP 1.1 Faults, ours and WCF-style', () => {
    const ours = buildSoapFault({ code: 'Client', text: 'Невалидно съобщение <Submit> & \u0001 край' });
    expect(ours.toString('utf8')).toContain('<faultcode>s:Client</faultcode>');
    expect(parseSubmitResponse(ours)).toEqual({ kind: 'fault', code: 'Client', text: 'Невалидно съобщение <Submit> & \ufffd край' });
    expect(parseSubmitResponse(buildSoapFault({ code: 'Server', text: '' }))).toEqual({ kind: 'fault', code: 'Server', text: '' });

    const wcf = Buffer.from(`<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Body><s:Fault>`
      + '<faultcode xmlns:a="http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher">a:InternalServiceFault</faultcode>'
      + '<faultstring xml:lang="en-US">Object reference not set to an instance of an object.</faultstring>'
      + '<detail><ExceptionDetail xmlns="http://schemas.datacontract.org/2004/07/System.ServiceModel"><StackTrace>at X</StackTrace></ExceptionDetail></detail>'
      + '</s:Fault></s:Body></s:Envelope>');
    expect(parseSubmitResponse(wcf)).toEqual({ kind: 'fault', code: 'InternalServiceFault', text: 'Object reference not set to an instance of an object.' });

    const soap12 = Buffer.from('<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault/></e:Body></e:Envelope>');
    expect(codeOf(() => parseSubmitResponse(soap12)).detail).toMatch(/SOAP 1\.2/);
    const noCode = Buffer.from(`${ENV_OPEN}<s:Fault><faultstring>x</faultstring></s:Fault>${ENV_CLOSE}`);
    expect(codeOf(() => parseSubmitResponse(noCode))).toEqual({ code: 'GW_ERR_SOAP_MALFORMED', detail: 'Fault without faultcode' });
    expect(codeOf(() => buildSoapFault({ code: 'Nope' as 'Client', text: 'x' })).code).toBe('GW_ERR_SEOS_INVALID_INPUT');
  });
});

describe('isDuplicateMessageGuidText', () => {
  it('recognises the reference text and ours, and nothing else', () => {
    expect(isDuplicateMessageGuidText(' Неуспешен – Грешка при подателя. Уникалният идентификатор на съобщението (MessageGUID) съвпада с този на вече получено/изпратено съобщение.')).toBe(true);
    expect(isDuplicateMessageGuidText(new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE').descriptionBg)).toBe(true);
    expect(isDuplicateMessageGuidText('Duplicate MessageGUID {c0ffee00-1234-4abc-8def-00000000beef}')).toBe(true);
    expect(isDuplicateMessageGuidText(new GatewayError('GW_ERR_SEOS_BAD_GUID', '/Message/Header/MessageGUID').descriptionBg)).toBe(false);
    expect(isDuplicateMessageGuidText('Неуспешен – Грешка при подателя. Подателят на съобщението не съвпада с активен участник от Регистъра')).toBe(false);
    expect(isDuplicateMessageGuidText(ERRORS.GW_ERR_SEOS_DOCUMENT_NOT_FOUND.bg)).toBe(false);
  });
});

// ── the client against a stand-in peer on loopback ──────────────────────────────────────────────────────

interface Received {
  readonly method: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** The message as the peer extracted and verified it. */
  readonly message: Buffer;
  readonly model: SeosMessage;
  readonly peerCertificateCn?: string;
}

type Respond = (res: http.ServerResponse, received: Received, req: http.IncomingMessage) => void;

class Peer {
  readonly received: Received[] = [];
  connections = 0;
  /** How long each request is left unread at first (the sender's writes then wait for the socket). */
  pauseMs = 0;
  respond: Respond = (res) => sendXml(res, 200, buildSubmitResponse(null));

  private constructor(readonly server: http.Server | https.Server, readonly url: string) {}

  static async start(tlsOptions?: https.ServerOptions, host = '127.0.0.1'): Promise<Peer> {
    let peer!: Peer;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      if (peer.pauseMs > 0) {
        req.pause();
        setTimeout(() => req.resume(), peer.pauseMs);
      }
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let message: Buffer;
        let model: SeosMessage;
        try {
          message = parseSubmitRequest(body);
          model = verifySignedMessage(message).message;
        } catch (err) {
          sendXml(res, 500, buildSoapFault({ code: 'Client', text: (err as Error).message }));
          return;
        }
        const cert = 'getPeerCertificate' in req.socket ? (req.socket as import('node:tls').TLSSocket).getPeerCertificate() : undefined;
        const received: Received = {
          method: req.method ?? '', headers: req.headers, body, message, model,
          ...(cert?.subject ? { peerCertificateCn: String(cert.subject.CN) } : {}),
        };
        peer.received.push(received);
        peer.respond(res, received, req);
      });
    };
    const server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
    server.on(tlsOptions ? 'secureConnection' : 'connection', () => peer.connections++);
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    const port = (server.address() as AddressInfo).port;
    peer = new Peer(server, `${tlsOptions ? 'https' : 'http'}://${host}:${port}/SEOSService.svc`);
    return peer;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function sendXml(res: http.ServerResponse, status: number, body: Buffer): void {
  res.writeHead(status, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': body.length });
  res.end(body);
}

function statusReply(
  documentGuid: string, status: DocumentStatus,
  options: { signer?: SigningIdentity; uri?: boolean } = {},
): Buffer {
  const docId = options.uri
    ? { uri: { registerIndex: '12', sequenceNumber: '345', receiptOrSigningDate: '2024-05-08' }, documentGuid }
    : { number: { docNumber: 'ВХ-94-00-7', docDate: '2024-05-07' }, documentGuid };
  return signMessage(buildStatusResponse({ sender: BETA, recipient: ALFA }, { docId, status }), options.signer ?? ids.beta);
}

function errorReply(description: string, messageGuid?: string): Buffer {
  return signMessage(buildErrorMessage({ sender: BETA, recipient: ALFA }, { description, ...(messageGuid ? { messageGuid } : {}) }), ids.beta);
}

const REFERENCE_DUPLICATE = ' Неуспешен – Грешка при подателя. Уникалният идентификатор на съобщението (MessageGUID) съвпада с този на вече получено/изпратено съобщение.';

describe('SEOS client over loopback HTTP', () => {
  let peer: Peer;
  let client: SeosClient;
  let ours: { model: SeosMessage; bytes: Buffer };
  let expectation: { messageGuid: string; documentGuid: string };
  const clients: SeosClient[] = [];
  const newClient = (options: SeosClientOptions = {}): SeosClient => {
    const c = createSeosClient({ allowInsecureHttp: true, ...options });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    peer = await Peer.start();
    ours = signedRegistration();
    const body = ours.model.body as RegistrationRequestBody;
    expectation = { messageGuid: ours.model.header.messageGuid, documentGuid: body.document.id.documentGuid };
  });
  afterAll(async () => {
    await peer.stop();
  });
  afterEach(() => {
    while (clients.length) clients.pop()!.close();
    peer.received.length = 0;
    peer.pauseMs = 0;
    peer.respond = (res) => sendXml(res, 200, buildSubmitResponse(null));
  });
  beforeAll(() => {
    client = newClient();
  });

  async function submitWith(respond: Respond, c?: SeosClient): Promise<SubmitOutcome> {
    peer.respond = respond;
    return (c ?? newClient()).submit(peer.url, ours.bytes, expectation);
  }

  it('delivered: a signed DS_WAIT_REGISTRATION about our document; the peer got the exact bytes and SOAP headers', async () => {
    let sent: Buffer | undefined;
    const outcome = await submitWith((res, received) => {
      sent = buildSubmitResponse(statusReply(received.model.body.type === 'MSG_DocumentRegistrationRequest'
        ? received.model.body.document.id.documentGuid : '', 'DS_WAIT_REGISTRATION'));
      sendXml(res, 200, sent);
    });
    expect(outcome.kind).toBe('delivered');
    if (outcome.kind !== 'delivered') return;
    expect(outcome.status).toBe('DS_WAIT_REGISTRATION');
    expect(outcome.theirNumber).toBe('ВХ-94-00-7');
    expect(outcome.theirDate).toBe('2024-05-07');
    expect(outcome.reply?.signer.serialHex).toBe(ids.beta.certificate.serialHex);
    expect(outcome.reply?.message.header.sender.guid).toBe(BETA.guid);
    expect(outcome.replyBytes.equals(sent!)).toBe(true);
    expect(outcome.httpStatus).toBe(200);

    const [received] = peer.received;
    expect(received.method).toBe('POST');
    expect(received.headers['content-type']).toBe('text/xml; charset=utf-8');
    expect(received.headers.soapaction).toBe(`"${SUBMIT_ACTION}"`);
    expect(Number(received.headers['content-length'])).toBe(received.body.length);
    expect(received.body.equals(buildSubmitRequest(ours.bytes))).toBe(true);
    expect(received.message.equals(ours.bytes)).toBe(true);
  });

  it('delivered: DS_REGISTERED with a DocumentURI gives the number as RegisterIndex-SequenceNumber', async () => {
    const outcome = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_REGISTERED', { uri: true }))));
    expect(outcome).toMatchObject({ kind: 'delivered', status: 'DS_REGISTERED', theirNumber: '12-345', theirDate: '2024-05-08' });
  });

  it('delivered: DS_ALREADY_RECEIVED is a delivery too', async () => {
    const outcome = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_ALREADY_RECEIVED'))));
    expect(outcome).toMatchObject({ kind: 'delivered', status: 'DS_ALREADY_RECEIVED' });
  });

  it('delivered: an empty SubmitResult is DS_WAIT_REGISTRATION without a reply message', async () => {
    const outcome = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(null)));
    expect(outcome.kind).toBe('delivered');
    if (outcome.kind !== 'delivered') return;
    expect(outcome.status).toBe('DS_WAIT_REGISTRATION');
    expect(outcome.reply).toBeUndefined();
    expect(outcome.replyBytes.equals(buildSubmitResponse(null))).toBe(true);
  });

  it('rejected: a SOAP Fault with HTTP 500, as WCF sends it', async () => {
    const outcome = await submitWith((res) => sendXml(res, 500, buildSoapFault({ code: 'Server', text: 'Вътрешна грешка при получателя' })));
    expect(outcome).toMatchObject({
      kind: 'rejected', reason: 'fault', code: 'GW_ERR_SEOS_PEER_FAULT', peerCode: 'Server',
      text: 'Вътрешна грешка при получателя', httpStatus: 500,
    });
  });

  it('rejected: a signed MSG_Error about our message (description trimmed)', async () => {
    const text = ' Неуспешен – Грешка при подателя. Подателят на съобщението не съвпада с активен участник от Регистъра';
    const outcome = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(errorReply(text, expectation.messageGuid))));
    expect(outcome).toMatchObject({
      kind: 'rejected', reason: 'error-message', code: 'GW_ERR_SEOS_PEER_ERROR', peerCode: 'ERR_EXTERNAL', text: text.trim(),
    });
    if (outcome.kind === 'rejected') expect(outcome.reply?.message.body.type).toBe('MSG_Error');
  });

  it('duplicate: the reference DuplicateMessageGuid MSG_Error after a re-send', async () => {
    const outcome = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(errorReply(REFERENCE_DUPLICATE, expectation.messageGuid))));
    expect(outcome.kind).toBe('duplicate');
    if (outcome.kind === 'duplicate') {
      expect(outcome.text).toBe(REFERENCE_DUPLICATE.trim());
      expect(outcome.reply.signer.serialHex).toBe(ids.beta.certificate.serialHex);
    }
    // Our own receiver's wording is recognised too (no MessageGUID field in the error: still ours).
    const again = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(errorReply(new GatewayError('GW_ERR_SEOS_DUPLICATE_MESSAGE').descriptionBg))));
    expect(again.kind).toBe('duplicate');
  });

  it('transport-failure: HTTP 503 (and 404) without a SOAP Fault is retryable', async () => {
    const outcome = await submitWith((res) => {
      res.writeHead(503, { 'Content-Type': 'text/html' });
      res.end('<html>Service Unavailable</html>');
    });
    expect(outcome).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT', httpStatus: 503 });
    if (outcome.kind === 'transport-failure') expect(outcome.detail).toMatch(/^HTTP 503 Service Unavailable without a SOAP Fault$/);
    const notFound = await submitWith((res) => {
      res.writeHead(404);
      res.end();
    });
    expect(notFound).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT', httpStatus: 404 });
  });

  it('unverified-reply: HTTP 200 with something that is not a SOAP Submit response', async () => {
    const outcome = await submitWith((res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><body>Proxy login</body></html>');
    });
    expect(outcome).toMatchObject({ kind: 'unverified-reply', code: 'GW_ERR_SEOS_REPLY_INVALID', problem: 'not-soap', cause: 'GW_ERR_SOAP_MALFORMED' });
  });

  it('transport-failure: connection refused on a closed port', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const outcome = await newClient().submit(`http://127.0.0.1:${port}/`, ours.bytes, expectation);
    expect(outcome).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT' });
    if (outcome.kind === 'transport-failure') expect(outcome.detail).toMatch(/ECONNREFUSED/);
  });

  it('transport-failure: the peer takes the request and never answers (response timeout)', async () => {
    const started = Date.now();
    const outcome = await submitWith(() => { /* never answer */ }, newClient({ responseTimeoutMs: 300 }));
    expect(outcome).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TIMEOUT' });
    expect(peer.received).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('transport-failure: the peer resets the connection in the middle of the reply', async () => {
    const outcome = await submitWith((res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': 100_000 });
      res.write(buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_WAIT_REGISTRATION')).subarray(0, 500), () => {
        (res.socket as net.Socket).resetAndDestroy();
      });
    });
    expect(outcome).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT' });
  });

  it('unverified-reply: a reply over maxReplyBytes, with and without Content-Length', async () => {
    const reply = buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_WAIT_REGISTRATION'));
    expect(reply.length).toBeGreaterThan(2048);
    const small = newClient({ maxReplyBytes: 2048 });
    const declared = await submitWith((res) => sendXml(res, 200, reply), small);
    expect(declared).toMatchObject({ kind: 'unverified-reply', problem: 'too-large', code: 'GW_ERR_SEOS_REPLY_INVALID' });
    if (declared.kind === 'unverified-reply') expect(declared.detail).toMatch(/Content-Length/);
    const chunked = await submitWith((res) => {
      res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8' });
      for (let i = 0; i < reply.length; i += 1000) res.write(reply.subarray(i, i + 1000));
      res.end();
    }, small);
    expect(chunked).toMatchObject({ kind: 'unverified-reply', problem: 'too-large' });
    if (chunked.kind === 'unverified-reply') expect(chunked.detail).toMatch(/exceeds 2048/);
    // The same reply is fine within the default limit.
    expect((await submitWith((res) => sendXml(res, 200, reply))).kind).toBe('delivered');
  });

  it('unverified-reply: a signed reply with one byte changed does not verify', async () => {
    const reply = statusReply(expectation.documentGuid, 'DS_REGISTERED');
    const at = reply.indexOf('ВХ-94-00-7') + Buffer.byteLength('ВХ-94-00-');
    const tampered = Buffer.from(reply);
    tampered[at] = 0x38; // 7 -> 8
    const outcome = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(tampered)));
    expect(outcome).toMatchObject({
      kind: 'unverified-reply', code: 'GW_ERR_SEOS_REPLY_INVALID', problem: 'signature', cause: 'GW_ERR_SIG_DIGEST_MISMATCH',
    });
    if (outcome.kind === 'unverified-reply') expect(outcome.replyBytes?.length).toBeGreaterThan(0);
  });

  it('unverified-reply: a status response about another DocumentGUID, or an error about another MessageGUID', async () => {
    const otherDoc = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(statusReply('{99999999-0000-4000-8000-000000000009}', 'DS_REGISTERED'))));
    expect(otherDoc).toMatchObject({ kind: 'unverified-reply', problem: 'unrelated' });
    if (otherDoc.kind === 'unverified-reply') expect(otherDoc.detail).toMatch(/99999999/);
    const otherMsg = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(errorReply(REFERENCE_DUPLICATE, '{88888888-0000-4000-8000-000000000008}'))));
    expect(otherMsg).toMatchObject({ kind: 'unverified-reply', problem: 'unrelated' });
    // A reply that carries our own MessageGUID (an echo, a confused proxy) is not an answer.
    const echo = signMessage(buildStatusResponse({ sender: BETA, recipient: ALFA, messageGuid: expectation.messageGuid }, {
      docId: { documentGuid: expectation.documentGuid }, status: 'DS_REGISTERED',
    }), ids.beta);
    const echoed = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(echo)));
    expect(echoed).toMatchObject({ kind: 'unverified-reply', problem: 'unrelated' });
    if (echoed.kind === 'unverified-reply') expect(echoed.detail).toMatch(/our own MessageGUID/);
    // The DocumentGUID comparison is case-insensitive, as GUIDs are.
    const upper = await submitWith((res) => sendXml(res, 200, buildSubmitResponse(statusReply(expectation.documentGuid.toUpperCase(), 'DS_REGISTERED'))));
    expect(upper.kind).toBe('delivered');
  });

  it('verifyReply pins the peer certificate: a reply signed by someone else is unverified', async () => {
    const pinned = (reply: Buffer) => verifySignedMessage(reply, { trustedCertificate: ids.beta.certificate });
    peer.respond = (res) => sendXml(res, 200, buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_REGISTERED', { signer: ids.gama })));
    const byGama = await newClient().submit(peer.url, ours.bytes, { ...expectation, verifyReply: pinned });
    expect(byGama).toMatchObject({ kind: 'unverified-reply', problem: 'signature', cause: 'GW_ERR_SIG_CERT_NOT_TRUSTED' });
    peer.respond = (res) => sendXml(res, 200, buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_REGISTERED')));
    const byBeta = await newClient().submit(peer.url, ours.bytes, { ...expectation, verifyReply: pinned });
    expect(byBeta).toMatchObject({ kind: 'delivered', status: 'DS_REGISTERED' });
  });

  it('keeps the connection alive between submits of one client', async () => {
    const c = newClient();
    const before = peer.connections;
    for (let i = 0; i < 3; i++) expect((await c.submit(peer.url, ours.bytes, expectation)).kind).toBe('delivered');
    expect(peer.connections - before).toBe(1);
    expect(peer.received).toHaveLength(3);
  });

  it('a kept-alive socket that turns out dead on reuse gets one fresh connection', async () => {
    const served = new WeakMap<object, number>();
    peer.respond = (res, _received, req) => {
      const count = (served.get(req.socket) ?? 0) + 1;
      served.set(req.socket, count);
      if (count === 2) {
        (req.socket as net.Socket).resetAndDestroy();
        return;
      }
      sendXml(res, 200, buildSubmitResponse(null));
    };
    const c = newClient();
    const before = peer.connections;
    expect((await c.submit(peer.url, ours.bytes, expectation)).kind).toBe('delivered');
    expect((await c.submit(peer.url, ours.bytes, expectation)).kind).toBe('delivered');
    expect(peer.connections - before).toBe(2);
    expect(peer.received).toHaveLength(3);
    // A reset on a fresh connection is not retried: it is the caller's transport-failure.
    peer.respond = (_res, _received, req) => (req.socket as net.Socket).resetAndDestroy();
    expect(await newClient().submit(peer.url, ours.bytes, expectation)).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT' });
  });

  it('refuses plain http unless allowed, and other schemes, before connecting', async () => {
    const before = peer.connections;
    const strict = createSeosClient();
    clients.push(strict);
    await expect(strict.submit(peer.url, ours.bytes, expectation)).rejects.toMatchObject({ code: 'GW_ERR_SEOS_INSECURE_URL' });
    await expect(strict.submit('ftp://127.0.0.1/x', ours.bytes, expectation)).rejects.toMatchObject({ code: 'GW_ERR_SEOS_INSECURE_URL' });
    await expect(strict.submit('not a url', ours.bytes, expectation)).rejects.toMatchObject({ code: 'GW_ERR_SEOS_INSECURE_URL' });
    expect(peer.connections).toBe(before);
    expect(peer.received).toHaveLength(0);
    expect((await client.submit(peer.url, ours.bytes, expectation)).kind).toBe('delivered');
  });

  it('streams a 30 MiB message to the peer byte-exact', async () => {
    const big = signedRegistration({
      attachments: [{ fileName: 'скан.pdf', mimeType: 'application/pdf', content: { source: 'bytes', bytes: crypto.randomBytes(23 * 1024 * 1024) } }],
    }).bytes;
    peer.respond = (res) => sendXml(res, 200, buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_WAIT_REGISTRATION')));
    const outcome = await newClient().submit(peer.url, big, expectation);
    expect(outcome.kind).toBe('delivered');
    expect(peer.received[0].message.equals(big)).toBe(true);
  });

  it('sends a message from its archived file byte-exact, read in reused chunks, to a peer that reads late', async () => {
    // The file is read into one buffer again and again: a chunk overwritten before the socket took it would show.
    const big = signedRegistration({
      attachments: [{ fileName: 'скан.pdf', mimeType: 'application/pdf', content: { source: 'bytes', bytes: crypto.randomBytes(12 * 1024 * 1024) } }],
    }).bytes;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-archived-'));
    const file = path.join(dir, 'message.xml');
    fs.writeFileSync(file, big);
    peer.pauseMs = 300;
    peer.respond = (res) => sendXml(res, 200, buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_WAIT_REGISTRATION')));
    const outcome = await newClient().submit(peer.url, { path: file }, expectation);
    expect(outcome.kind).toBe('delivered');
    expect(peer.received[0].message.equals(big)).toBe(true);
    expect(Number(peer.received[0].headers['content-length'])).toBe(peer.received[0].body.length);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

// ── mutual TLS ───────────────────────────────────────────────────────────────────────────────────────────

/**
 * The test PKI's administration certificates carry extKeyUsage clientAuth only, so OpenSSL refuses them as a
 * TLS *server* certificate ("unsuitable certificate purpose") and they have no subjectAltName for 127.0.0.1.
 * The stand-in peer therefore gets its own certificate from the same test CA, valid for 127.0.0.1 and
 * localhost with serverAuth: the client then validates it the normal way (chain and host name), no bypass.
 */
function serverCertificate(caCertPath: string, caKeyPath: string): { key: string; cert: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const caCert = forge.pki.certificateFromPem(fs.readFileSync(caCertPath, 'utf8'));
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = '01' + crypto.randomBytes(8).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 3600_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  cert.setSubject([{ shortName: 'CN', value: 'localhost' }]);
  // forge hands back UTF8String values as undecoded byte strings and would encode them a second time.
  cert.setIssuer(caCert.subject.attributes.map((a) => ((a.valueTagClass as number | undefined) === (forge.asn1.Type.UTF8 as number)
    ? { ...a, value: forge.util.decodeUtf8(a.value as string) } : a)));
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(fs.readFileSync(caKeyPath, 'utf8')), forge.md.sha256.create());
  return { key: privateKey, cert: forge.pki.certificateToPem(cert) };
}

describe('SEOS client over mutual TLS', () => {
  let peer: Peer;
  let ca: Buffer;
  let ours: { model: SeosMessage; bytes: Buffer };
  let expectation: { messageGuid: string; documentGuid: string };
  const clients: SeosClient[] = [];
  const newClient = (options: SeosClientOptions): SeosClient => {
    const c = createSeosClient(options);
    clients.push(c);
    return c;
  };
  const clientCert = () => ({ key: fs.readFileSync(ids.keyPath('obshtina-alfa')), cert: fs.readFileSync(ids.certPath('obshtina-alfa')) });

  beforeAll(async () => {
    ca = fs.readFileSync(ids.manifest.ca.certPath);
    const server = serverCertificate(ids.manifest.ca.certPath, ids.manifest.ca.keyPath);
    peer = await Peer.start({ ...server, ca, requestCert: true, rejectUnauthorized: true });
    ours = signedRegistration();
    expectation = { messageGuid: ours.model.header.messageGuid, documentGuid: (ours.model.body as RegistrationRequestBody).document.id.documentGuid };
    peer.respond = (res) => sendXml(res, 200, buildSubmitResponse(statusReply(expectation.documentGuid, 'DS_WAIT_REGISTRATION')));
  });
  afterAll(async () => {
    await peer.stop();
  });
  afterEach(() => {
    while (clients.length) clients.pop()!.close();
    peer.received.length = 0;
  });

  it('the right client certificate is accepted and the server certificate is validated against the CA', async () => {
    const outcome = await newClient({ tls: { ...clientCert(), ca } }).submit(peer.url, ours.bytes, expectation);
    expect(outcome).toMatchObject({ kind: 'delivered', status: 'DS_WAIT_REGISTRATION' });
    expect(peer.received).toHaveLength(1);
    expect(peer.received[0].peerCertificateCn).toBe('Община Алфа');
    expect(peer.received[0].message.equals(ours.bytes)).toBe(true);
  });

  it('without a client certificate the handshake fails: transport-failure', async () => {
    const outcome = await newClient({ tls: { ca } }).submit(peer.url, ours.bytes, expectation);
    expect(outcome).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT' });
    expect(peer.received).toHaveLength(0);
  });

  it('validates the server certificate by default (unlike the reference); rejectUnauthorized: false turns that off', async () => {
    const untrusted = await newClient({ tls: clientCert() }).submit(peer.url, ours.bytes, expectation);
    expect(untrusted).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT' });
    if (untrusted.kind === 'transport-failure') expect(untrusted.detail).toMatch(/certificate/i);
    expect(peer.received).toHaveLength(0);
    const lax = await newClient({ tls: clientCert(), rejectUnauthorized: false }).submit(peer.url, ours.bytes, expectation);
    expect(lax.kind).toBe('delivered');
  });

  it('checks the host name: an address outside the certificate is refused unless checkServerIdentity says otherwise', async () => {
    // Same certificate (127.0.0.1 and localhost only), served on another loopback address.
    const other = await Peer.start({ ...serverCertificate(ids.manifest.ca.certPath, ids.manifest.ca.keyPath), ca, requestCert: true, rejectUnauthorized: true }, '127.0.0.2');
    try {
      other.respond = peer.respond;
      const wrongHost = await newClient({ tls: { ...clientCert(), ca } }).submit(other.url, ours.bytes, expectation);
      expect(wrongHost).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT' });
      if (wrongHost.kind === 'transport-failure') expect(wrongHost.detail).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
      expect(other.received).toHaveLength(0);

      let checked = '';
      const pinned = await newClient({
        tls: { ...clientCert(), ca },
        checkServerIdentity: (host, cert) => {
          checked = `${host} ${cert.subject.CN}`;
          return cert.subject.CN === 'localhost' ? undefined : new Error('not the pinned peer');
        },
      }).submit(other.url, ours.bytes, expectation);
      expect(pinned.kind).toBe('delivered');
      expect(checked).toBe('127.0.0.2 localhost');

      // The chain is still validated with a custom identity check: without the CA, no connection.
      const noCa = await newClient({ tls: clientCert(), checkServerIdentity: () => undefined }).submit(other.url, ours.bytes, expectation);
      expect(noCa).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TRANSPORT' });
      expect(other.received).toHaveLength(1);
    } finally {
      await other.stop();
    }
  });

  it('transport-failure (timeout): a server that accepts TCP but never completes the TLS handshake', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((socket) => { held.push(socket); /* hold the socket, say nothing */ });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const outcome = await newClient({ tls: { ...clientCert(), ca }, connectTimeoutMs: 300 })
        .submit(`https://127.0.0.1:${port}/`, ours.bytes, expectation);
      expect(outcome).toMatchObject({ kind: 'transport-failure', code: 'GW_ERR_SEOS_TIMEOUT' });
      if (outcome.kind === 'transport-failure') expect(outcome.detail).toMatch(/TLS session within 300 ms/);
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
