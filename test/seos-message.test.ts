import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { isGatewayError } from '../src/errors/index.ts';
import {
  buildErrorMessage, buildRegistrationRequest, buildStatusRequest, buildStatusResponse, buildUnsignedMessage,
  dateTimeToInstant, formatDateTime, isBase64, newGuid, parseMessageXml, sameGuid, signMessage, signMessageAsync, verifySignedMessage,
  type SeosMessage,
} from '../src/seos/index.ts';
import { validateWithXmllint } from '../src/seos/schema-validation.ts';
import { attachmentBytes } from '../src/seos/build.ts';
import { parseXml } from '../src/xml/index.ts';
import { ALFA, BETA, sampleDocument, sampleRegistration } from './support/messages.ts';
import { makeTestIdentities, type TestIdentities } from './support/pki.ts';
import { requireTool } from './support/tools.ts';

function codeOf(run: () => unknown): string {
  try { run(); return 'OK'; } catch (e) { if (isGatewayError(e)) return e.code; throw e; }
}

/** The model as plain data, attachments decoded, so two parses can be compared. */
function plain(message: SeosMessage): unknown {
  return JSON.parse(JSON.stringify(message, (_k, v) => {
    if (v && typeof v === 'object' && v.source === 'base64') return { bytes: Buffer.from(Buffer.from(v.text.data ?? v.text).toString('latin1'), 'base64').toString('base64') };
    if (v && typeof v === 'object' && v.source === 'bytes') return { bytes: Buffer.from(v.bytes.data ?? v.bytes).toString('base64') };
    return v;
  }));
}

const parties = { sender: ALFA, recipient: BETA, messageGuid: '{9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a}', messageDate: '2024-05-06T10:11:12.1234567+03:00' };
const docId = { number: { docNumber: '12-00-345', docDate: '2024-05-06' }, documentGuid: '{5d3c8b0e-2f4a-4c1e-9b7d-0123456789ab}' };

const allKinds: Record<string, SeosMessage> = {
  'registration, every field': buildRegistrationRequest(parties, sampleDocument({
    parentId: { uri: { registerIndex: '94', sequenceNumber: '1234', receiptOrSigningDate: '2024-05-01' }, documentGuid: '{00000000-0000-4000-8000-0000000000aa}' },
    correspondents: [
      { name: 'Иван Петров Иванов', city: 'София', address: 'ул. „Шипка“ 1', egn: '8001010000', idCard: '640000000', bulstat: '000000001',
        email: 'ivan@example.bg', phone: '02 000 000', mobilePhone: '0888 000 000', mol: 'Петър Петров', comment: 'заявител', kind: 'Corr_Applicant' },
      { name: 'Община Бета', city: 'Бета', kind: 'Corr_Other' },
    ],
    attachments: [
      { fileName: 'заявление.pdf', mimeType: 'application/pdf', comment: 'подписано', content: { source: 'bytes', bytes: Buffer.from('%PDF-1.4 тест') } },
      { fileName: 'празен.txt', mimeType: 'text/plain', content: { source: 'bytes', bytes: Buffer.alloc(0) } },
    ],
    service: { name: 'Издаване на удостоверение за наследници', type: 'Нормална', code: '2079' },
    comment: 'Коментар с <знаци> & "кавички"\r\nи нов ред',
    // Already in the normalized form a parse produces (canonical, every namespace in scope declared).
    additionalData: { xml: 'текст <ext:Data xmlns="http://schemas.egov.bg/messaging/v1" xmlns:ext="urn:example:ext" a="1" b="2"><ext:RNU>BGEM11115H0</ext:RNU><Inner>x</Inner></ext:Data> край' },
    requestedCloseDate: '2024-06-06',
    attentionTo: 'Мария Георгиева',
  }), 'Иван Петров Иванов'),
  'status request': buildStatusRequest(parties, docId),
  'status response registered': buildStatusResponse(parties, { docId, status: 'DS_REGISTERED', expectedCloseDate: '2024-07-01' }),
  'status response rejected': buildStatusResponse(parties, { docId, status: 'DS_REJECTED', rejectionReason: 'Липсва подпис на заявителя.' }),
  'error': buildErrorMessage(parties, { description: 'Невалиден подател.', messageGuid: '{00000000-0000-4000-8000-0000000000bb}' }),
};

let pki: TestIdentities;
beforeAll(() => {
  requireTool('xmllint');
  pki = makeTestIdentities();
});

describe('building and parsing all four message kinds', () => {
  for (const [name, message] of Object.entries(allKinds)) {
    it(`${name}: round-trips through XML unchanged`, () => {
      const xml = buildUnsignedMessage(message);
      expect(plain(parseMessageXml(xml))).toEqual(plain(message));
    });

    it(`${name}: validates against our schema and the official set, signed and unsigned`, async () => {
      const signed = signMessage(message, pki.gama);
      for (const xml of [buildUnsignedMessage(message), signed]) {
        await expect(validateWithXmllint(xml, 'ours')).resolves.toEqual({ valid: true });
        await expect(validateWithXmllint(xml, 'official')).resolves.toEqual({ valid: true });
      }
    });

    it(`${name}: signs, verifies and parses back`, () => {
      const verified = verifySignedMessage(signMessage(message, pki.alfa));
      expect(plain(verified.message)).toEqual(plain(message));
    });
  }

  it('writes DocumentURI children in the 0009-000001 namespace', () => {
    const xml = buildUnsignedMessage(allKinds['registration, every field']).toString('utf8');
    expect(xml).toContain('<DocumentURI xmlns:duri="http://ereg.egov.bg/segment/0009-000001"><duri:RegisterIndex>94</duri:RegisterIndex>');
    const parent = parseXml(xml).root;
    expect(parent.ns).toBe('http://schemas.egov.bg/messaging/v1');
  });

  it('keeps unknown DocAddData content through parse and rebuild, normalized once to canonical form', () => {
    const raw = buildRegistrationRequest(parties, sampleDocument({
      additionalData: { xml: 'текст <ext:Data xmlns:ext="urn:example:ext" b="2" a="1"><ext:RNU>BGEM11115H0</ext:RNU><Inner/></ext:Data> край' },
    }));
    const first = parseMessageXml(buildUnsignedMessage(raw));
    const again = parseMessageXml(buildUnsignedMessage(first));
    const data = (first.body as any).document.additionalData.xml as string;
    expect((again.body as any).document.additionalData.xml).toBe(data);
    expect(data).toBe('текст <ext:Data xmlns="http://schemas.egov.bg/messaging/v1" xmlns:ext="urn:example:ext" a="1" b="2"><ext:RNU>BGEM11115H0</ext:RNU><Inner></Inner></ext:Data> край');
  });
});

describe('signing off the event loop', () => {
  it('gives the very bytes of the synchronous signer (RSA PKCS#1 v1.5 is deterministic), for both profiles', async () => {
    const message = sampleRegistration();
    for (const profile of ['rsa-sha256', 'rsa-sha1'] as const) {
      const sync = signMessage(message, pki.alfa, { profile });
      const threaded = await signMessageAsync(message, pki.alfa, { profile });
      expect(threaded.equals(sync)).toBe(true);
      expect(verifySignedMessage(threaded).message.header.messageGuid).toBe(message.header.messageGuid);
    }
  });
});

describe('the hand-written fixtures (written independently of the builder)', () => {
  const dir = path.resolve('fixtures/messages/valid');
  for (const name of fs.readdirSync(dir).filter((f) => f.endsWith('.xml'))) {
    it(`${name}: parses, and rebuilds to an equal model that both schemas accept`, async () => {
      const parsed = parseMessageXml(fs.readFileSync(path.join(dir, name)));
      const rebuilt = buildUnsignedMessage(parsed);
      expect(plain(parseMessageXml(rebuilt))).toEqual(plain(parsed));
      await validateWithXmllint(rebuilt, 'official');
      await validateWithXmllint(rebuilt, 'ours');
    });
  }
});

describe('values: GUIDs, versions, dates, text', () => {
  it('generates lowercase braced GUIDs and compares case-insensitively', () => {
    const g = newGuid();
    expect(g).toMatch(/^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}$/);
    expect(sameGuid(g, g.toUpperCase())).toBe(true);
  });

  it('sends Version 1.0 and accepts 1 and 1.0, refusing 2', () => {
    const xml = buildUnsignedMessage(allKinds['status request']).toString('utf8');
    expect(xml).toContain('<Version>1.0</Version>');
    expect(parseMessageXml(xml.replace('<Version>1.0</Version>', '<Version>1</Version>')).header.version).toBe('1');
    expect(codeOf(() => parseMessageXml(xml.replace('<Version>1.0</Version>', '<Version>2</Version>')))).toBe('GW_ERR_SEOS_UNSUPPORTED_VERSION');
  });

  it('keeps xsd:dateTime offsets and seven fractional digits exactly, and reads the instant right', () => {
    const parsed = parseMessageXml(buildUnsignedMessage(allKinds['status request']));
    expect(parsed.header.messageDate).toBe('2024-05-06T10:11:12.1234567+03:00');
    expect(dateTimeToInstant(parsed.header.messageDate).toISOString()).toBe('2024-05-06T07:11:12.123Z');
    expect(formatDateTime(new Date('2024-05-06T07:11:12.123Z'), 180)).toBe('2024-05-06T10:11:12.123+03:00');
    expect(formatDateTime(new Date('2024-01-01T00:30:00.000Z'), -150)).toBe('2023-12-31T22:00:00.000-02:30');
  });

  it('refuses impossible dates and dateTimes', () => {
    const base = allKinds['status request'];
    for (const bad of ['2024-02-30T10:00:00Z', '2024-05-06', '2024-05-06T25:00:00Z', '2024-05-06T10:00:00+15:00']) {
      expect(codeOf(() => buildUnsignedMessage({ ...base, header: { ...base.header, messageDate: bad } })), bad).toBe('GW_ERR_SEOS_BAD_DATE');
    }
    expect(codeOf(() => buildUnsignedMessage({ ...base, header: { ...base.header, messageDate: '2024-02-29T24:00:00+02:00' } }))).toBe('OK');
  });

  it('refuses invalid input when building: bad GUIDs, control characters, number and URI together, type mismatch', () => {
    const base = allKinds['status request'];
    expect(codeOf(() => buildUnsignedMessage({ ...base, header: { ...base.header, messageGuid: 'c0ffee00-1234-4abc-8def-00000000beef' } }))).toBe('GW_ERR_SEOS_BAD_GUID');
    expect(codeOf(() => buildUnsignedMessage(buildRegistrationRequest(parties, sampleDocument({ kind: 'Молба\u0001' }))))).toBe('GW_ERR_XML_INVALID_CHAR');
    expect(codeOf(() => buildUnsignedMessage(buildStatusRequest(parties, { ...docId, uri: { registerIndex: '1' } })))).toBe('GW_ERR_SEOS_INVALID_INPUT');
    expect(codeOf(() => buildUnsignedMessage({ ...base, header: { ...base.header, messageType: 'MSG_Error' } }))).toBe('GW_ERR_SEOS_TYPE_MISMATCH');
    expect(codeOf(() => buildUnsignedMessage(buildRegistrationRequest(parties, sampleDocument({ additionalData: { xml: '<a>' } }))))).toBe('GW_ERR_SEOS_INVALID_INPUT');
    expect(codeOf(() => buildUnsignedMessage(buildStatusResponse(parties, { docId, status: 'DS_SENT' as any })))).toBe('GW_ERR_SEOS_BAD_VALUE');
  });

  it('escapes markup in text so a value cannot inject elements', () => {
    const message = buildRegistrationRequest(parties, sampleDocument({ about: '</DocAbout><DocKind>x</DocKind>' }));
    const parsed = parseMessageXml(buildUnsignedMessage(message));
    expect((parsed.body as any).document.about).toBe('</DocAbout><DocKind>x</DocKind>');
  });

  it('names the element path and what was expected in parse errors', () => {
    const xml = buildUnsignedMessage(sampleRegistration()).toString('utf8').replace(/<CorCity>[^<]*<\/CorCity>/, '');
    try {
      parseMessageXml(xml);
      expect.unreachable();
    } catch (e) {
      expect(isGatewayError(e, 'GW_ERR_SEOS_SCHEMA')).toBe(true);
      expect((e as Error).message).toContain('/Message/Body/DocumentRegistrationRequest/Document/DocCorrespondentList/Corespondent');
      expect((e as Error).message).toContain('<CorCity>');
    }
  });
});

describe('base64 bodies', () => {
  it('decodes a received body slice by slice to exactly the original bytes, with or without line breaks', () => {
    const original = Buffer.from(Array.from({ length: 100_003 }, (_, i) => (i * 7919) % 256));
    const flat = original.toString('base64');
    const wrapped = flat.replace(/(.{76})/g, '$1\r\n');
    for (const text of [flat, wrapped, ` ${wrapped}\n`]) {
      for (const slice of [3, 48, 3000, 1 << 20]) {
        const out = Buffer.concat([...attachmentBytes({ source: 'base64', text: Buffer.from(text, 'latin1') }, slice)]);
        expect(out.equals(original), `slice ${slice}`).toBe(true);
      }
    }
  });

  it('validates small and large bodies alike (two code paths)', () => {
    for (const size of [10, 200_000, 7_000_000]) {
      const good = Buffer.from(Buffer.alloc(size, 7).toString('base64'), 'latin1');
      expect(isBase64(good), `good ${size}`).toBe(true);
      const wrapped = Buffer.from(good.toString('latin1').replace(/(.{76})/g, '$1\r\n'), 'latin1');
      expect(isBase64(wrapped), `wrapped ${size}`).toBe(true);
      for (const [name, bad] of [
        ['invalid char', good.toString('latin1').slice(0, 8) + '!' + good.toString('latin1').slice(9)],
        ['url-safe char', good.toString('latin1').slice(0, 8) + '-' + good.toString('latin1').slice(9)],
        ['missing padding', good.toString('latin1').replace(/=+$/, '') + (good.toString('latin1').endsWith('=') ? '' : 'A')],
        ['padding inside', 'AB==' + good.toString('latin1')],
        ['padding in a later slice', good.toString('latin1').slice(0, -8) + 'AB==' + good.toString('latin1').slice(-4)],
      ]) {
        expect(isBase64(Buffer.from(bad, 'latin1')), `${name} ${size}`).toBe(false);
      }
    }
  });
});

describe('XML safety limits', () => {
  it('bounds size, depth and attribute count with coded errors', () => {
    expect(codeOf(() => parseXml('<a>' + 'x'.repeat(2000) + '</a>', { maxBytes: 1000 }))).toBe('GW_ERR_XML_TOO_LARGE');
    expect(codeOf(() => parseXml('<a>'.repeat(65) + '</a>'.repeat(65)))).toBe('GW_ERR_XML_TOO_DEEP');
    expect(codeOf(() => parseXml('<a>'.repeat(64) + '</a>'.repeat(64)))).toBe('OK');
    const attrs = Array.from({ length: 65 }, (_, i) => `a${i}="1"`).join(' ');
    expect(codeOf(() => parseXml(`<r ${attrs}/>`))).toBe('GW_ERR_XML_TOO_MANY_ATTRIBUTES');
  });

  it('refuses DOCTYPE in every form, including an internal subset with no entities', () => {
    for (const xml of ['<!DOCTYPE r><r/>', '<!DOCTYPE r [<!ELEMENT r ANY>]><r/>', '<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>']) {
      expect(codeOf(() => parseXml(xml)), xml).toBe('GW_ERR_XML_DOCTYPE');
    }
  });

  it('refuses control characters and U+FFFE/U+FFFF in text, in short and in large text nodes, at any alignment', () => {
    for (const pad of [0, 1, 2, 3, 5, 100_003]) {
      for (const bad of ['\u0001', '\u001f', '\ufffe', '\uffff']) {
        expect(codeOf(() => parseXml(`<r>${'A'.repeat(pad)}${bad}B</r>`)), `${pad} ${JSON.stringify(bad)}`).toBe('GW_ERR_XML_MALFORMED');
      }
      expect(codeOf(() => parseXml(`<r>${'A'.repeat(pad)}\t\n\r\u00ff\u0410B</r>`))).toBe('OK');
    }
  });

  it('accepts a UTF-8 byte order mark and refuses other declared encodings', () => {
    expect(parseXml(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<r>ж</r>')])).root.local).toBe('r');
    expect(codeOf(() => parseXml('<?xml version="1.0" encoding="windows-1251"?><r/>'))).toBe('GW_ERR_XML_ENCODING');
  });
});
