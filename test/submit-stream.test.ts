import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGatewayError } from '../src/errors/index.ts';
import { signMessage } from '../src/seos/index.ts';
import { SOAP11_ENVELOPE_NS, SUBMIT_ACTION, buildSubmitRequest, parseSubmitRequest } from '../src/seos/soap/index.ts';
import { SubmitScanner, extractSubmitRequest } from '../src/seos/soap/submit-stream.ts';
import { sampleRegistration } from './support/messages.ts';
import { makeTestIdentities, type TestIdentities } from './support/pki.ts';

/**
 * The streamed Submit extraction must give exactly what parseSubmitRequest gives, whatever the chunking of the
 * body: the same message bytes, or the same error code.
 */
let ids: TestIdentities;
let dir: string;
beforeAll(() => {
  ids = makeTestIdentities();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'submit-stream-'));
});
afterAll(() => {
  fs.rmSync(ids.dir, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

const ENV_OPEN = `<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Body>`;
const ENV_CLOSE = '</s:Body></s:Envelope>';
const SUBMIT = (request: string) => `${ENV_OPEN}<Submit xmlns="http://services.egov.bg/messaging/">${request}</Submit>${ENV_CLOSE}`;

function memory(body: Buffer): string {
  try {
    return `OK ${parseSubmitRequest(body).toString('base64')}`;
  } catch (error) {
    if (isGatewayError(error)) return error.code;
    throw error;
  }
}

function streamed(body: Buffer, chunk: number): string {
  const scanner = new SubmitScanner();
  const out: Buffer[] = [];
  try {
    for (let i = 0; i < body.length; i += chunk) out.push(...scanner.push(body.subarray(i, i + chunk)));
    out.push(...scanner.end());
    return `OK ${Buffer.concat(out).toString('base64')}`;
  } catch (error) {
    if (isGatewayError(error)) return error.code;
    throw error;
  }
}

const CHUNKS = [1, 2, 3, 5, 7, 64, 4096, 1 << 30];

function cases(): Array<[string, Buffer]> {
  const bytes = signMessage(sampleRegistration({ about: 'ред 1\r\nред 2 ]]> & <x>' }), ids.alfa);
  const refs = [...bytes.toString('utf8')].map((ch) => {
    const cp = ch.codePointAt(0)!;
    if (ch === '<') return '&#60;';
    if (ch === '>') return '&#x3E;';
    if (ch === '&') return '&#38;';
    return cp > 0x7f ? `&#x${cp.toString(16)};` : ch;
  }).join('');
  const asCdata = '<![CDATA[' + bytes.toString('utf8').split(']]>').join(']]]]><![CDATA[>') + ']]>';
  const list: Array<[string, string | Buffer]> = [
    ['our envelope', buildSubmitRequest(bytes)],
    ['with a BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), buildSubmitRequest(bytes)])],
    ['character references, a Header, comments, an XML declaration', `<?xml version="1.0" encoding="UTF-8"?>
<!-- from another stack -->
<soapenv:Envelope xmlns:soapenv="${SOAP11_ENVELOPE_NS}" xmlns:egov="http://services.egov.bg/messaging/">
  <soapenv:Header>
    <wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing">${SUBMIT_ACTION}</wsa:Action>
  </soapenv:Header>
  <soapenv:Body>
    <egov:Submit>
      <!-- the message -- no: -->
      <egov:request>${refs}</egov:request>
    </egov:Submit>
  </soapenv:Body>
</soapenv:Envelope>
`],
    ['the message as split CDATA', SUBMIT(`<request>${asCdata}</request>`)],
    ['text, CDATA and a comment in one request', SUBMIT('<request>&lt;?xml version="1.0"?&gt;<![CDATA[<a>x ]]>&amp;amp;<!-- c --> y&lt;/a&gt;</request>')],
    ['literal CR and CR LF', SUBMIT('<request>a\r\nb\rc&#xD;d\r</request>')],
    ['CR LF inside CDATA', SUBMIT('<request><![CDATA[a\r\nb\r]]></request>')],
    ['a comment with "--" inside', SUBMIT('<!-- a -- b --><request>x</request>')],
    ['a DOCTYPE', `<!DOCTYPE x [<!ENTITY e "boom">]>${SUBMIT('<request>&e;</request>')}`],
    ['Submit in another namespace', `${ENV_OPEN}<Submit xmlns="http://example.org/"><request>x</request></Submit>${ENV_CLOSE}`],
    ['request in another namespace', SUBMIT('<request xmlns="">x</request>')],
    ['no request', SUBMIT('')],
    ['two requests', SUBMIT('<request>a</request><request>b</request>')],
    ['a SOAP 1.2 envelope', `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit></e:Body></e:Envelope>`],
    ['an empty request', SUBMIT('<request/>')],
    ['a whitespace-only request', SUBMIT('<request>  \n </request>')],
    ['a nil request', SUBMIT('<request xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:nil="true"/>')],
    ['the message as XML', SUBMIT('<request><Message xmlns="http://schemas.egov.bg/messaging/v1"/></request>')],
    ['text in the Body', `${ENV_OPEN}hello<Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit>${ENV_CLOSE}`],
    ['a mustUnderstand header', `<s:Envelope xmlns:s="${SOAP11_ENVELOPE_NS}"><s:Header><x:Sec xmlns:x="urn:x" s:mustUnderstand="1"/></s:Header><s:Body><Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit></s:Body></s:Envelope>`],
    ['not an Envelope', '<Submit xmlns="http://services.egov.bg/messaging/"><request>x</request></Submit>'],
    ['an unknown entity', SUBMIT('<request>a&nbsp;b</request>')],
    ['a bare "&"', SUBMIT('<request>a & b</request>')],
    ['a reference without ";" for 40 bytes', SUBMIT(`<request>a &amp${'x'.repeat(50)} b</request>`)],
    ['"]]>" in text', SUBMIT('<request>a ]]> b</request>')],
    ['a control character', SUBMIT('<request>a\u0001b</request>')],
    ['U+FFFF', SUBMIT('<request>a\uffffb</request>')],
    ['a reference to a forbidden character', SUBMIT('<request>a&#1;b</request>')],
    ['an unclosed element', `${ENV_OPEN}<Submit xmlns="http://services.egov.bg/messaging/"><request>x</request>${ENV_CLOSE}`],
    ['an undeclared prefix', `${ENV_OPEN}<m:Submit><m:request>x</m:request></m:Submit>${ENV_CLOSE}`],
    ['a comment before the XML declaration', `<!-- x --><?xml version="1.0"?>${SUBMIT('<request>x</request>')}`],
    ['CDATA outside the root', `${SUBMIT('<request>x</request>')}<![CDATA[ ]]>`],
    ['text after the root', `${SUBMIT('<request>x</request>')}junk`],
    ['an unterminated comment', `${SUBMIT('<request>x</request>')}<!-- x`],
    ['an unterminated CDATA section', SUBMIT('<request><![CDATA[x</request>')],
    ['not UTF-8', Buffer.from(SUBMIT('<request>\u00e9</request>'), 'latin1')],
    ['a truncated UTF-8 sequence at the end', Buffer.concat([Buffer.from(SUBMIT('<request>x</request>')), Buffer.from([0xd0])])],
    ['UTF-16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(SUBMIT('<request>x</request>'), 'utf16le')])],
    ['empty', ''],
  ];
  return list.map(([name, body]) => [name, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

describe('SubmitScanner: the same answer as parseSubmitRequest, in any chunking', () => {
  it('agrees on every case', () => {
    for (const [name, body] of cases()) {
      const expected = memory(body);
      for (const chunk of CHUNKS) expect(streamed(body, chunk), `${name} in chunks of ${chunk}`).toBe(expected);
    }
  });

  it('a signed message comes out byte for byte', () => {
    const bytes = signMessage(sampleRegistration(), ids.alfa);
    expect(streamed(buildSubmitRequest(bytes), 7)).toBe(`OK ${bytes.toString('base64')}`);
  });
});

describe('extractSubmitRequest: from an HTTP-like stream to a file', () => {
  it('writes a 40 MiB message to a file with its size and SHA-256, holding little memory', async () => {
    const message = Buffer.concat([Buffer.from('<?xml version="1.0"?><m>'), Buffer.alloc(40 * 1024 * 1024, 'QUJD'), Buffer.from('</m>\r\n')]);
    const body = buildSubmitRequest(message);
    const before = process.memoryUsage().arrayBuffers;
    const source = Readable.from((function* () {
      for (let i = 0; i < body.length; i += 64 * 1024) yield body.subarray(i, i + 64 * 1024);
    })(), { objectMode: false });
    const out = await extractSubmitRequest(source, { dir, limits: { maxBytes: body.length } });
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(out.size).toBe(message.length);
    expect(out.bodyBytes).toBe(body.length);
    expect(out.sha256).toBe(createHash('sha256').update(message).digest('hex'));
    expect(fs.readFileSync(out.file).equals(message)).toBe(true);
    expect(grown).toBeLessThan(16 * 1024 * 1024);
    fs.rmSync(out.file);
  }, 60_000);

  it('refuses a body over the limit (even one that is broken earlier) and leaves no file', async () => {
    const broken = Buffer.concat([Buffer.from(SUBMIT('<request>').slice(0, 100)), Buffer.alloc(200 * 1024, 0x41)]);
    const tooLarge = buildSubmitRequest(Buffer.from(`<m>${'x'.repeat(300 * 1024)}</m>`));
    for (const body of [broken, tooLarge]) {
      const source = Readable.from([body.subarray(0, 1000), body.subarray(1000)]);
      await expect(extractSubmitRequest(source, { dir, limits: { maxBytes: 100 * 1024 } })).rejects.toMatchObject({ code: 'GW_ERR_XML_TOO_LARGE' });
    }
    // Under the limit the broken body gets its own error.
    await expect(extractSubmitRequest(Readable.from([broken]), { dir, limits: { maxBytes: 1024 * 1024 } })).rejects.toMatchObject({ code: 'GW_ERR_XML_MALFORMED' });
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
