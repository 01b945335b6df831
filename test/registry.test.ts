import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import forge from 'node-forge';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { makeTestPki, type TestPkiManifest } from '../certs/test-pki.ts';
import { isGatewayError, type ErrorCode } from '../src/errors/index.ts';
import {
  DOCUMENT_EXCHANGE_SERVICE_GUID, ParticipantDirectory, RegistrySync, buildRegistryRequest, createRegistryClient,
  parseParticipantStatus, parseRegistryResponse, registrySoapAction, selectEndpoint, selectService,
  type RegistryAnswer, type RegistryClient, type RegistryEntity, type RegistryService,
} from '../src/seos/registry/index.ts';
import { renderRegistryAnswer, startRegistrySimulator, type RegistrySimulator } from '../src/simulators/registry-simulator.ts';
import { openDatabase, type Db } from '../src/store/index.ts';
import { childElements, parseXml } from '../src/xml/index.ts';

const FIXTURES = path.resolve('fixtures/registry');
const fixture = (name: string) => fs.readFileSync(path.join(FIXTURES, name));

async function codeOfAsync(run: () => Promise<unknown>): Promise<{ code: ErrorCode | 'OK'; detail?: string }> {
  try {
    await run();
    return { code: 'OK' };
  } catch (e) {
    if (isGatewayError(e)) return { code: e.code, detail: e.detail };
    throw e;
  }
}
function codeOf(run: () => unknown): { code: ErrorCode | 'OK'; detail?: string } {
  try {
    run();
    return { code: 'OK' };
  } catch (e) {
    if (isGatewayError(e)) return { code: e.code, detail: e.detail };
    throw e;
  }
}

const ALFA_GUID = '{3f2504e0-4f89-41d3-9a0c-0305e82c3301}';
const BETA_GUID = '{b7d1c2e3-8a94-4f6b-a2c5-1d3e5f7a9b02}';
const GAMA_GUID = '{c4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f04}';
const UNIT_GUID = '{8c6f3e21-7b1d-4f0e-9a55-2d9c1e4b7a10}';

const docExchange = (uri: string, status = 'Active', guid = DOCUMENT_EXCHANGE_SERVICE_GUID): RegistryService =>
  ({ guid, name: 'Документооборот', uri, status, type: 'SEOS', version: '1' });
const otherService = (uri: string, status = 'Active'): RegistryService =>
  ({ guid: '{0b0e7c1a-5d2f-4c8e-b1a3-6e9f2d4c8a01}', name: 'Електронни административни услуги', uri, status, type: 'EAU', version: '1' });

/** What GetAllRecordsResponse.inline.xml holds, written out by hand. */
const EXPECTED_ALL: RegistryEntity[] = [
  {
    entityIdentifier: '000000001', guid: ALFA_GUID, administrativeBodyName: 'Община Алфа',
    contact: { phone: '+359 2 123 4567', emailAddress: 'delovodstvo@alfa.example.bg' },
    certificateSN: '00C3A1F2B4D5E6F7089A1B2C3D4E5F6071',
    services: [
      otherService('https://eau.alfa.obmen.local/'),
      docExchange('https://seos.alfa.obmen.local/EGovService.svc', 'Active', '{7060EFA8-F1FA-4938-8B2B-12A78C86988F}'),
    ],
    lastChange: '2024-05-06T10:11:12.123+03:00', status: 'Active',
  },
  {
    entityIdentifier: '000000002', guid: BETA_GUID, parentGuid: '{5a0c9e12-3b47-4d8f-9e21-7c6b5a4d3e00}',
    administrativeBodyName: 'Регионална здравна инспекция – Бета',
    contact: { phone: '+359 56 800 200', fax: '+359 56 800 201' },
    certificateSN: '4A1B2C3D4E5F60718293A4B5C6D7E8F9',
    services: [{
      guid: '{a9b8c7d6-e5f4-4a3b-9c2d-1e0f9a8b7c03}', name: 'Регистър на лечебните заведения',
      uri: 'https://rzi.beta.obmen.local/services/registry', status: 'Active', type: 'REG', version: '2',
    }],
    lastChange: '2024-03-01T09:00:00+02:00', status: 'Active',
  },
  {
    entityIdentifier: '000000003', guid: GAMA_GUID, administrativeBodyName: 'Областна администрация „Гама“ & Областен управител',
    contact: { emailAddress: 'oblast@gama.example.bg' },
    services: [docExchange('https://seos.gama.obmen.local/seos', 'Inactive')],
    lastChange: '2023-11-20T16:45:00+02:00', status: 'Inactive',
  },
  {
    entityIdentifier: '0000000010001', guid: '8c6f3e21-7b1d-4f0e-9a55-2d9c1e4b7a10', parentGuid: ALFA_GUID,
    administrativeBodyName: 'Дирекция „Местни данъци и такси“ – Община Алфа',
    contact: { phone: '+359 2 123 4590', emailAddress: 'danaci@alfa.example.bg' },
    certificateSN: '01:02:03:04:05:06:07:08',
    services: [docExchange('https://danaci.alfa.obmen.local/seos', 'Active', '7060efa8-f1fa-4938-8b2b-12a78c86988f')],
    lastChange: '2024-05-07T08:00:00+03:00', status: 'TemporarilyInactive',
  },
];

const ENVELOPE_OPEN = '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:ns1="uri:egovmsg"><soapenv:Body>';
const ENVELOPE_CLOSE = '</soapenv:Body></soapenv:Envelope>';
const wrap = (body: string) => `${ENVELOPE_OPEN}${body}${ENVELOPE_CLOSE}`;
const minimalEntity = (extra = '') =>
  `<item><EntityIdentifier>000000009</EntityIdentifier><Guid>{00000000-0000-4000-8000-000000000009}</Guid>${extra}</item>`;

// ── helpers for tests that need a misbehaving server ──

interface RawServer { url: string; close(): Promise<void> }
async function startRawServer(handler: http.RequestListener): Promise<RawServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/service/`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function tempDb(): { db: Db; file: string; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-registry-'));
  const file = path.join(dir, 'gateway.db');
  return { db: openDatabase(file), file, dir };
}

function entity(guid: string, eik: string, name: string, options: Partial<RegistryEntity> = {}): RegistryEntity {
  return {
    entityIdentifier: eik, guid, administrativeBodyName: name, contact: {},
    services: [docExchange(`https://seos.${eik}.obmen.local/EGovService.svc`)], status: 'Active',
    lastChange: '2024-01-01T00:00:00+02:00', ...options,
  };
}

// ────────────────────────────────────────────────────────────────────────────────────────────────────────────

describe('rpc/encoded registry answers', () => {
  it('reads the inline (Axis, no multiRefs) GetAllRecords fixture field by field, nil values left out', () => {
    const answer = parseRegistryResponse(fixture('GetAllRecordsResponse.inline.xml'), 'GetAllRecords');
    expect(answer).toEqual({ entities: EXPECTED_ALL, lastChange: '2024-05-07T08:00:00+03:00' });
    expect('fax' in answer.entities[0].contact).toBe(false);
    expect('certificateSN' in answer.entities[2]).toBe(false);
  });

  it('gives the same entities from the href/multiRef fixture as from the inline one', () => {
    const inline = parseRegistryResponse(fixture('GetAllRecordsResponse.inline.xml'), 'GetAllRecords');
    const multiref = parseRegistryResponse(fixture('GetAllRecordsResponse.multiref.xml'), 'GetAllRecords');
    expect(multiref).toEqual(inline);
  });

  it('reads the .NET-shaped GetNewRecords fixture (parts named after their type, arrays referenced too)', () => {
    const answer = parseRegistryResponse(fixture('GetNewRecordsResponse.xml'), 'GetNewRecords');
    expect(answer.lastChange).toBe('2024-05-08T09:30:00.5+03:00');
    expect(answer.entities.map((e) => e.administrativeBodyName)).toEqual(['Община Алфа', 'Община Делта']);
    expect(answer.entities[0].contact).toEqual({ phone: '+359 2 123 4000', emailAddress: 'delovodstvo@alfa.example.bg' });
    expect(answer.entities[0].services.map((s) => s.name)).toEqual(['Електронни административни услуги', 'Документооборот']);
    expect(answer.entities[1]).toEqual({
      entityIdentifier: '000000005', guid: '{d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6}', administrativeBodyName: 'Община Делта',
      contact: { phone: '+359 68 600 100', emailAddress: 'obshtina@delta.example.bg' }, certificateSN: '5D3E1A',
      services: [docExchange('https://seos.delta.obmen.local/EGovService.svc')],
      lastChange: '2024-05-08T09:00:00+03:00', status: 'Active',
    });
  });

  it('turns the Fault fixture into GW_ERR_REGISTRY_FAULT carrying the faultstring', () => {
    const r = codeOf(() => parseRegistryResponse(fixture('Fault.xml'), 'GetAllRecords'));
    expect(r.code).toBe('GW_ERR_REGISTRY_FAULT');
    expect(r.detail).toContain('java.sql.SQLException: Cannot get a connection');
    expect(r.detail).toContain('Server.userException');
  });

  it('refuses unexpected shapes with GW_ERR_REGISTRY_BAD_RESPONSE naming what is wrong', () => {
    const cases: Array<[string, string, string]> = [
      ['<html><body>Service Unavailable</body></html>', 'not a SOAP 1.1 Envelope', 'html'],
      [`${ENVELOPE_OPEN.replace('<soapenv:Body>', '')}</soapenv:Envelope>`, 'no Body', 'no body'],
      [wrap(''), 'no response element', 'empty body'],
      [wrap('<ns1:GetAllRecordsResponse/>'), 'no return part', 'no return'],
      [wrap('<ns1:GetAllRecordsResponse><return><LastChange>2024-01-01T00:00:00Z</LastChange></return></ns1:GetAllRecordsResponse>'), 'has no Entities', 'no Entities'],
      [wrap('<ns1:GetAllRecordsResponse><return href="#id9"/></ns1:GetAllRecordsResponse>'), '"#id9" has no element with that id', 'dangling href'],
      [wrap(`<ns1:GetAllRecordsResponse><return><Entities soapenc:arrayType="ns1:Entity[2]">${minimalEntity()}</Entities></return></ns1:GetAllRecordsResponse>`), 'declares 2 items, the array holds 1', 'truncated array'],
      [wrap('<ns1:GetAllRecordsResponse><return><Entities><item><EntityIdentifier>000000009</EntityIdentifier></item></Entities></return></ns1:GetAllRecordsResponse>'), 'Entities[1]/Guid is missing', 'no Guid'],
      [wrap('<ns1:GetAllRecordsResponse><return><Entities><item><EntityIdentifier>1</EntityIdentifier><Guid>ABC</Guid></item></Entities></return></ns1:GetAllRecordsResponse>'), '"ABC" is not a GUID', 'bad Guid'],
      [wrap('<ns1:GetAllRecordsResponse><return><Entities><item><Guid>{00000000-0000-4000-8000-000000000009}</Guid><EntityIdentifier xsi:nil="true"/></item></Entities></return></ns1:GetAllRecordsResponse>'), 'EntityIdentifier is missing', 'nil EIK'],
      [wrap(`<ns1:GetByGuidResponse><return><Entities>${minimalEntity()}</Entities></return></ns1:GetByGuidResponse>`), 'expected <GetAllRecordsResponse>', 'wrong operation'],
      ['<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/></soap:Envelope>', 'SOAP 1.2', 'soap 1.2'],
    ];
    for (const [xml, expected, label] of cases) {
      const r = codeOf(() => parseRegistryResponse(xml, 'GetAllRecords'));
      expect(r.code, label).toBe('GW_ERR_REGISTRY_BAD_RESPONSE');
      expect(r.detail, label).toContain(expected);
    }
  });

  it('refuses a DOCTYPE (XXE) inside the answer, reporting the XML safety code', () => {
    const xml = `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${wrap('<ns1:GetAllRecordsResponse><return><Entities/></return></ns1:GetAllRecordsResponse>')}`;
    const r = codeOf(() => parseRegistryResponse(xml, 'GetAllRecords'));
    expect(r.code).toBe('GW_ERR_REGISTRY_BAD_RESPONSE');
    expect(r.detail).toContain('GW_ERR_XML_DOCTYPE');
  });

  it('accepts nil where the registry may say nothing: a nil return, nil Entities, nil items and nil Services', () => {
    expect(parseRegistryResponse(wrap('<ns1:GetByGuidResponse><return xsi:nil="true"/></ns1:GetByGuidResponse>'), 'GetByGuid')).toEqual({ entities: [] });
    expect(parseRegistryResponse(wrap('<ns1:GetByGuidResponse><return><Entities xsi:nil="true"/><LastChange xsi:nil="true"/></return></ns1:GetByGuidResponse>'))).toEqual({ entities: [] });
    const answer = parseRegistryResponse(wrap(`<ns1:GetByGuidResponse><return><Entities><item xsi:nil="true"/>${minimalEntity('<Services xsi:nil="true"/><Contact xsi:nil="true"/>')}</Entities></return></ns1:GetByGuidResponse>`));
    expect(answer.entities).toEqual([{
      entityIdentifier: '000000009', guid: '{00000000-0000-4000-8000-000000000009}', administrativeBodyName: '', contact: {}, services: [], status: '',
    }]);
  });

  it('stops an answer that reuses one part over and over (reference amplification)', () => {
    const services = Array.from({ length: 300 }, () => '<item href="#s"/>').join('');
    const items = Array.from({ length: 300 }, () => '<item href="#e"/>').join('');
    const xml = wrap(`<ns1:GetAllRecordsResponse><return><Entities>${items}</Entities></return></ns1:GetAllRecordsResponse>` +
      `<multiRef id="e" soapenc:root="0"><EntityIdentifier>1</EntityIdentifier><Guid>{00000000-0000-4000-8000-000000000009}</Guid><Services>${services}</Services></multiRef>` +
      '<multiRef id="s" soapenc:root="0"><Guid>x</Guid></multiRef>');
    const r = codeOf(() => parseRegistryResponse(xml));
    expect(r.code).toBe('GW_ERR_REGISTRY_BAD_RESPONSE');
    expect(r.detail).toContain('too many times');
  });

  it('builds rpc/encoded requests: operation in uri:egovmsg, unqualified xsi-typed part, text escaped', () => {
    expect(registrySoapAction('GetByCertificateSN')).toBe('uri:egovmsg/GetByCertificateSN');
    const all = parseXml(buildRegistryRequest('GetAllRecords')).root;
    const body = childElements(all)[0];
    expect([all.local, body.local, body.attributes.find((a) => a.local === 'encodingStyle')?.value])
      .toEqual(['Envelope', 'Body', 'http://schemas.xmlsoap.org/soap/encoding/']);
    const op = childElements(body)[0];
    expect([op.local, op.ns, childElements(op).length]).toEqual(['GetAllRecords', 'uri:egovmsg', 0]);

    const parts: Array<[Parameters<typeof buildRegistryRequest>[0], string, string, string]> = [
      ['GetNewRecords', '2024-05-07T08:00:00+03:00', 'date', 'xsd:dateTime'],
      ['GetByEntityIdentifier', '000000001', 'EntityIdentifier', 'xsd:string'],
      ['GetByGuid', ALFA_GUID, 'guid', 'xsd:string'],
      ['GetByCertificateSN', 'A<&B', 'CertificateSN', 'xsd:string'],
    ];
    for (const [operation, argument, partName, type] of parts) {
      const opEl = childElements(childElements(parseXml(buildRegistryRequest(operation, argument)).root)[0])[0];
      const part = childElements(opEl)[0];
      expect([opEl.local, opEl.ns, part.local, part.ns]).toEqual([operation, 'uri:egovmsg', partName, '']);
      expect(part.attributes.find((a) => a.local === 'type')?.value).toBe(type);
      const text = part.children.map((c) => (c.type === 'text' ? (c.verbatim ? c.source.toString('utf8', c.start, c.end) : c.decoded) : '')).join('');
      expect(text).toBe(argument);
    }
    expect(codeOf(() => buildRegistryRequest('GetNewRecords', '2024-05-07')).code).toBe('GW_ERR_SEOS_BAD_DATE');
  });

  it('the simulator writes both styles so that they read back as the entities it was given', () => {
    for (const style of ['inline', 'multiref'] as const) {
      const xml = renderRegistryAnswer('GetAllRecords', EXPECTED_ALL, '2024-05-07T08:00:00+03:00', style);
      expect(xml.includes('href="#id'), style).toBe(style === 'multiref');
      expect(parseRegistryResponse(xml, 'GetAllRecords'), style).toEqual({ entities: EXPECTED_ALL, lastChange: '2024-05-07T08:00:00+03:00' });
    }
  });
});

describe('service and status selection (protocols.md §3.3)', () => {
  it('prefers the Active document-exchange service over services listed before it', () => {
    const s = selectEndpoint({ status: 'Active', services: [otherService('https://eau.example/'), docExchange('https://seos.example/svc')] });
    expect(s.endpointUrl).toBe('https://seos.example/svc');
    expect(s.status).toBe('Active');
  });

  it('matches the document-exchange GUID in any case and without braces', () => {
    for (const guid of ['{7060EFA8-F1FA-4938-8B2B-12A78C86988F}', '7060efa8-f1fa-4938-8b2b-12a78c86988f', ' 7060EFA8-f1fa-4938-8b2b-12a78c86988f ']) {
      expect(selectService([otherService('https://eau.example/'), docExchange('https://seos.example/', 'Active', guid)])?.uri, guid).toBe('https://seos.example/');
    }
  });

  it('falls back to the first service with any URI when the document-exchange one has none or is not Active', () => {
    expect(selectService([docExchange(''), otherService('https://eau.example/')])?.uri).toBe('https://eau.example/');
    expect(selectService([docExchange('   '), otherService('https://eau.example/')])?.uri).toBe('https://eau.example/');
    // Not Active: the fallback is "first with a URI", which may be the very same service; the entity then takes its status.
    const s = selectEndpoint({ status: 'Active', services: [docExchange('https://seos.example/', 'TemporarilyInactive'), otherService('https://eau.example/')] });
    expect([s.endpointUrl, s.status]).toEqual(['https://seos.example/', 'TemporarilyInactive']);
    const t = selectEndpoint({ status: 'Active', services: [otherService(''), otherService('https://eau.example/', 'Active'), docExchange('https://seos.example/', 'Inactive')] });
    expect([t.endpointUrl, t.status]).toEqual(['https://eau.example/', 'Active']);
  });

  it('an Active entity takes its service status; other entities keep theirs; no service means Inactive', () => {
    expect(selectEndpoint({ status: 'Active', services: [] })).toEqual({ status: 'Inactive' });
    expect(selectEndpoint({ status: '1', services: [docExchange('https://x/', '2')] }).status).toBe('TemporarilyInactive');
    expect(selectEndpoint({ status: 'Inactive', services: [docExchange('https://x/')] })).toMatchObject({ status: 'Inactive', endpointUrl: 'https://x/' });
    expect(selectEndpoint({ status: '2', services: [docExchange('https://x/')] }).status).toBe('TemporarilyInactive');
    expect(selectEndpoint({ status: 'Suspended', services: [docExchange('https://x/')] }).status).toBe('Inactive');
    expect(selectEndpoint({ status: 'Active', services: [docExchange('https://x/', 'Unknown')] }).status).toBe('Inactive');
  });

  it('reads statuses as names (any case) or the enum numbers', () => {
    expect(['0', '1', '2', 'inactive', 'ACTIVE', 'TemporarilyInactive', ' 1 ', 'x', '', undefined].map((v) => parseParticipantStatus(v)))
      .toEqual(['Inactive', 'Active', 'TemporarilyInactive', 'Inactive', 'Active', 'TemporarilyInactive', 'Active', undefined, undefined, undefined]);
  });
});

describe('registry client against the simulator (real HTTP on loopback)', () => {
  for (const style of ['inline', 'multiref'] as const) {
    describe(`${style} answers`, () => {
      let sim: RegistrySimulator;
      let client: RegistryClient;
      beforeAll(async () => {
        sim = await startRegistrySimulator({ entities: EXPECTED_ALL, style });
        client = createRegistryClient({ url: sim.url, allowInsecureHttp: true, timeoutMs: 5000 });
      });
      afterAll(() => sim.close());

      it('GetAllRecords: every entity and the registry LastChange, with the right SOAPAction', async () => {
        const answer = await client.getAllRecords();
        expect(answer).toEqual({ entities: EXPECTED_ALL, lastChange: '2024-05-07T08:00:00+03:00' });
        expect(sim.calls.at(-1)).toMatchObject({ operation: 'GetAllRecords', soapAction: 'uri:egovmsg/GetAllRecords' });
      });

      it('GetNewRecords: only what changed after the date', async () => {
        const answer = await client.getNewRecords('2024-05-06T12:00:00+03:00');
        expect(answer.entities.map((e) => e.guid)).toEqual(['8c6f3e21-7b1d-4f0e-9a55-2d9c1e4b7a10']);
        expect(answer.lastChange).toBe('2024-05-07T08:00:00+03:00');
        expect(sim.calls.at(-1)).toMatchObject({ operation: 'GetNewRecords', argument: '2024-05-06T12:00:00+03:00', soapAction: 'uri:egovmsg/GetNewRecords' });
        expect((await client.getNewRecords('2024-05-07T08:00:00+03:00')).entities).toEqual([]);
      });

      it('GetByEntityIdentifier, GetByGuid and GetByCertificateSN', async () => {
        expect((await client.getByEntityIdentifier('000000002')).entities).toEqual([EXPECTED_ALL[1]]);
        expect(sim.calls.at(-1)).toMatchObject({ operation: 'GetByEntityIdentifier', argument: '000000002' });
        expect((await client.getByGuid('{C4E5F6A7-B8C9-4D0E-8F1A-2B3C4D5E6F04}')).entities).toEqual([EXPECTED_ALL[2]]);
        expect(sim.calls.at(-1)).toMatchObject({ operation: 'GetByGuid', argument: '{C4E5F6A7-B8C9-4D0E-8F1A-2B3C4D5E6F04}', soapAction: 'uri:egovmsg/GetByGuid' });
        expect((await client.getByCertificateSN('4A1B2C3D4E5F60718293A4B5C6D7E8F9')).entities).toEqual([EXPECTED_ALL[1]]);
        expect(sim.calls.at(-1)).toMatchObject({ operation: 'GetByCertificateSN', soapAction: 'uri:egovmsg/GetByCertificateSN' });
        expect((await client.getByGuid('{00000000-0000-4000-8000-00000000dead}')).entities).toEqual([]);
      });
    });
  }

  describe('failures', () => {
    let sim: RegistrySimulator;
    let client: RegistryClient;
    beforeAll(async () => {
      sim = await startRegistrySimulator({ entities: EXPECTED_ALL.slice(0, 1) });
      client = createRegistryClient({ url: sim.url, allowInsecureHttp: true, timeoutMs: 400 });
    });
    afterAll(() => sim.close());

    it('a SOAP Fault is GW_ERR_REGISTRY_FAULT, and the next call works again', async () => {
      sim.failNext(1, 'fault');
      const r = await codeOfAsync(() => client.getAllRecords());
      expect(r.code).toBe('GW_ERR_REGISTRY_FAULT');
      expect(r.detail).toContain('Регистърът е временно недостъпен');
      expect((await client.getAllRecords()).entities).toHaveLength(1);
    });

    it('garbage with HTTP 200 is GW_ERR_REGISTRY_BAD_RESPONSE', async () => {
      sim.failNext(1, 'garbage');
      expect((await codeOfAsync(() => client.getAllRecords())).code).toBe('GW_ERR_REGISTRY_BAD_RESPONSE');
    });

    it('an HTTP 500 without a SOAP Fault is GW_ERR_REGISTRY_UNAVAILABLE', async () => {
      sim.failNext(1, 'http500');
      const r = await codeOfAsync(() => client.getByGuid(ALFA_GUID));
      expect(r.code).toBe('GW_ERR_REGISTRY_UNAVAILABLE');
      expect(r.detail).toContain('HTTP 500');
    });

    it('a registry that never answers is GW_ERR_REGISTRY_UNAVAILABLE after the timeout', async () => {
      sim.failNext(1, 'hang');
      const t0 = Date.now();
      const r = await codeOfAsync(() => client.getAllRecords());
      expect(r.code).toBe('GW_ERR_REGISTRY_UNAVAILABLE');
      expect(r.detail).toContain('400 ms');
      expect(Date.now() - t0).toBeLessThan(3000);
    });

    it('a port nobody listens on is GW_ERR_REGISTRY_UNAVAILABLE', async () => {
      const raw = await startRawServer(() => undefined);
      await raw.close();
      const r = await codeOfAsync(() => createRegistryClient({ url: raw.url, allowInsecureHttp: true }).getAllRecords());
      expect(r.code).toBe('GW_ERR_REGISTRY_UNAVAILABLE');
      expect(r.detail).toContain('ECONNREFUSED');
    });

    it('a DOCTYPE in the answer is refused (GW_ERR_REGISTRY_BAD_RESPONSE naming GW_ERR_XML_DOCTYPE)', async () => {
      const raw = await startRawServer((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/xml' });
        res.end('<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol">]>' + fixture('GetAllRecordsResponse.inline.xml').toString('utf8').replace(/^<\?xml[^>]*>/, ''));
      });
      try {
        const r = await codeOfAsync(() => createRegistryClient({ url: raw.url, allowInsecureHttp: true }).getAllRecords());
        expect(r.code).toBe('GW_ERR_REGISTRY_BAD_RESPONSE');
        expect(r.detail).toContain('GW_ERR_XML_DOCTYPE');
      } finally {
        await raw.close();
      }
    });

    it('refuses answers over 64 MiB, whether declared up front or streamed', async () => {
      const declared = await startRawServer((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/xml', 'Content-Length': String(65 * 1024 * 1024) });
        res.write('<x>');
      });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let streamed = 0;
      const endless = await startRawServer((_req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/xml' });
        const pump = () => {
          while (streamed < 80 * 1024 * 1024 && !res.destroyed) {
            streamed += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      });
      try {
        const a = await codeOfAsync(() => createRegistryClient({ url: declared.url, allowInsecureHttp: true }).getAllRecords());
        expect(a.code).toBe('GW_ERR_REGISTRY_BAD_RESPONSE');
        expect(a.detail).toContain('declares 68157440 bytes');
        const b = await codeOfAsync(() => createRegistryClient({ url: endless.url, allowInsecureHttp: true }).getAllRecords());
        expect(b.code).toBe('GW_ERR_REGISTRY_BAD_RESPONSE');
        expect(b.detail).toContain('larger than the 67108864 bytes');
      } finally {
        await declared.close();
        await endless.close();
      }
    });

    it('a plain http:// URL needs allowInsecureHttp; other schemes are refused', () => {
      expect(codeOf(() => createRegistryClient({ url: 'http://register.obmen.local/service/' })).code).toBe('GW_ERR_CONFIG_INVALID');
      expect(codeOf(() => createRegistryClient({ url: 'ftp://register.obmen.local/' })).code).toBe('GW_ERR_CONFIG_INVALID');
      expect(codeOf(() => createRegistryClient({ url: 'not a url' })).code).toBe('GW_ERR_CONFIG_INVALID');
      expect(codeOf(() => createRegistryClient({ url: 'https://register.obmen.local/service/' })).code).toBe('OK');
    });
  });
});

describe('participant directory (real SQLite file)', () => {
  let db: Db;
  let file: string;
  let dir: ParticipantDirectory;
  const at = new Date('2024-05-07T06:00:00.000Z');
  beforeEach(() => {
    ({ db, file } = tempDb());
    dir = new ParticipantDirectory(db);
    dir.applyRegistry(EXPECTED_ALL, { full: true, at, lastChange: '2024-05-07T08:00:00+03:00' });
  });
  afterEach(() => db.close());

  it('stores registry entities with the chosen endpoint, effective status, lowercase braced GUIDs and normalized serials', () => {
    const alfa = dir.byGuid(ALFA_GUID)!;
    expect(alfa).toMatchObject({
      guid: ALFA_GUID, eik: '000000001', name: 'Община Алфа', status: 'Active', source: 'registry',
      endpointUrl: 'https://seos.alfa.obmen.local/EGovService.svc', certificateSN: '00C3A1F2B4D5E6F7089A1B2C3D4E5F6071',
      certificateSerialNormalized: 'C3A1F2B4D5E6F7089A1B2C3D4E5F6071', phone: '+359 2 123 4567', email: 'delovodstvo@alfa.example.bg',
      lastChange: '2024-05-06T10:11:12.123+03:00', syncedAt: at.toISOString(),
    });
    expect(alfa.services).toEqual(EXPECTED_ALL[0].services);
    expect(dir.byGuid(BETA_GUID)).toMatchObject({ endpointUrl: 'https://rzi.beta.obmen.local/services/registry', status: 'Active' });
    expect(dir.byGuid(GAMA_GUID)).toMatchObject({ status: 'Inactive' });
    expect(dir.byGuid(UNIT_GUID)).toMatchObject({ guid: UNIT_GUID, status: 'TemporarilyInactive', parentGuid: ALFA_GUID, certificateSerialNormalized: '102030405060708' });
    const raw = db.prepare('SELECT guid FROM participants ORDER BY guid').all() as Array<{ guid: string }>;
    expect(raw.map((r) => r.guid)).toEqual([ALFA_GUID, UNIT_GUID, BETA_GUID, GAMA_GUID].sort());
    expect(dir.lastSync()).toEqual({ lastChange: '2024-05-07T08:00:00+03:00', lastFullAt: at.toISOString() });
  });

  it('upserts: a changed entity is updated in place, a new one inserted', () => {
    const changed = { ...EXPECTED_ALL[1], administrativeBodyName: 'РЗИ – Бета', lastChange: '2024-05-08T10:00:00+03:00' };
    const added = entity('{d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6}', '000000005', 'Община Делта', { lastChange: '2024-05-08T09:00:00+03:00' });
    const r = dir.applyRegistry([changed, added], { full: false, at: new Date('2024-05-08T08:00:00Z') });
    expect(r).toEqual({ received: 2, inserted: 1, updated: 1, inactivated: 0 });
    expect(dir.byGuid(BETA_GUID)?.name).toBe('РЗИ – Бета');
    expect(dir.byEik('000000005').map((p) => p.name)).toEqual(['Община Делта']);
    expect(db.prepare('SELECT count(*) AS n FROM participants').get()).toEqual({ n: 5 });
    // Incremental: LastChange moves to the latest entity's, never backwards.
    expect(dir.lastSync()).toMatchObject({ lastChange: '2024-05-08T10:00:00+03:00', lastIncrementalAt: '2024-05-08T08:00:00.000Z', lastFullAt: at.toISOString() });
    dir.applyRegistry([{ ...added, lastChange: '2020-01-01T00:00:00Z' }], { full: false });
    expect(dir.lastSync().lastChange).toBe('2024-05-08T10:00:00+03:00');
  });

  it('a full refresh marks registry participants missing from the answer Inactive; an incremental one does not', () => {
    const inc = dir.applyRegistry([EXPECTED_ALL[0]], { full: false });
    expect(inc.inactivated).toBe(0);
    expect(dir.byGuid(BETA_GUID)?.status).toBe('Active');
    const full = dir.applyRegistry([EXPECTED_ALL[0], EXPECTED_ALL[2]], { full: true });
    expect(full.inactivated).toBe(2); // Бета (Active) and the unit (TemporarilyInactive); Гама was already Inactive
    expect(dir.byGuid(BETA_GUID)?.status).toBe('Inactive');
    expect(dir.byGuid(UNIT_GUID)?.status).toBe('Inactive');
    expect(dir.byGuid(BETA_GUID)?.endpointUrl).toBe('https://rzi.beta.obmen.local/services/registry'); // kept, not deleted
    expect(dir.byGuid(ALFA_GUID)?.status).toBe('Active');
  });

  it('writes nothing when one entity of an answer is unusable', () => {
    const before = db.prepare('SELECT * FROM participants ORDER BY guid').all();
    const r = codeOf(() => dir.applyRegistry([{ ...EXPECTED_ALL[0], administrativeBodyName: 'Ново име' }, { ...EXPECTED_ALL[1], guid: 'nope' }], { full: true }));
    expect(r.code).toBe('GW_ERR_REGISTRY_BAD_RESPONSE');
    expect(db.prepare('SELECT * FROM participants ORDER BY guid').all()).toEqual(before);
  });

  it('finds participants by GUID in any case and with or without braces, and by ЕИК', () => {
    for (const g of [ALFA_GUID, ALFA_GUID.toUpperCase(), ALFA_GUID.slice(1, -1), ` ${ALFA_GUID.slice(1, -1).toUpperCase()} `]) {
      expect(dir.byGuid(g)?.name, g).toBe('Община Алфа');
    }
    expect(dir.byGuid('{00000000-0000-4000-8000-00000000dead}')).toBeUndefined();
    expect(dir.byGuid('not a guid')).toBeUndefined();
    expect(dir.byEik('0000000010001').map((p) => p.guid)).toEqual([UNIT_GUID]);
    expect(dir.byEik(' 000000002 ').map((p) => p.guid)).toEqual([BETA_GUID]);
    expect(dir.byEik('999999999')).toEqual([]);
  });

  it('searches names case-insensitively in Cyrillic (where SQLite LIKE would not), as a substring, without wildcards', () => {
    const names = (q: string) => dir.search(q).map((p) => p.name);
    expect(names('алфа')).toEqual(['Дирекция „Местни данъци и такси“ – Община Алфа', 'Община Алфа']);
    expect(names('ОБЩИНА АЛФА')).toEqual(names('община алфа'));
    expect(names('ОБЩИНА АЛФА')).toHaveLength(2);
    expect(names('здравна ИНСПЕКЦИЯ')).toEqual(['Регионална здравна инспекция – Бета']);
    expect(names('„гама“ & областен')).toEqual(['Областна администрация „Гама“ & Областен управител']);
    expect(names('%')).toEqual([]);
    expect(names('_')).toEqual([]);
    expect(names('делта')).toEqual([]);
    expect(dir.search('а', { limit: 1 })).toHaveLength(1);
    // The reason for the custom function: SQLite folds ASCII only.
    expect(db.prepare("SELECT count(*) AS n FROM participants WHERE name LIKE '%алфа%'").get()).toEqual({ n: 0 });
  });

  it('finds by certificate serial in any notation: separators, case, leading zeros', () => {
    for (const s of ['00C3A1F2B4D5E6F7089A1B2C3D4E5F6071', 'c3a1f2b4d5e6f7089a1b2c3d4e5f6071', '00:c3:a1:f2:b4:d5:e6:f7:08:9a:1b:2c:3d:4e:5f:60:71', '0x00C3A1F2 B4D5E6F7 089A1B2C 3D4E5F60 71']) {
      expect(dir.byCertificateSerial(s).map((p) => p.guid), s).toEqual([ALFA_GUID]);
    }
    expect(dir.byCertificateSerial('0102030405060708').map((p) => p.guid)).toEqual([UNIT_GUID]);
    expect(dir.byCertificateSerial('not hex')).toEqual([]);
    expect(dir.byCertificateSerial('')).toEqual([]);
  });

  it('keeps an empty or non-hex registry serial as given, with no normalized form', () => {
    dir.applyRegistry([
      entity('{00000000-0000-4000-8000-000000000011}', '000000011', 'Община Единайсет', { certificateSN: 'СЕРИЕН-№' }),
      entity('{00000000-0000-4000-8000-000000000012}', '000000012', 'Община Дванайсет', { certificateSN: '' }),
    ], { full: false });
    const a = dir.byGuid('{00000000-0000-4000-8000-000000000011}')!;
    expect([a.certificateSN, a.certificateSerialNormalized]).toEqual(['СЕРИЕН-№', undefined]);
    const b = dir.byGuid('{00000000-0000-4000-8000-000000000012}')!;
    expect([b.certificateSN, b.certificateSerialNormalized]).toEqual([undefined, undefined]);
    const row = db.prepare('SELECT certificate_sn, certificate_sn_norm FROM participants WHERE eik = ?').get('000000011');
    expect(row).toEqual({ certificate_sn: 'СЕРИЕН-№', certificate_sn_norm: null });
  });

  it('static participants win over the registry field by field, survive syncs, and give way again when removed', () => {
    dir.setStatic([
      { guid: ALFA_GUID.slice(1, -1).toUpperCase(), eik: '000000001', name: 'Община Алфа (тестова среда)', endpointUrl: 'https://test.alfa.local/seos' },
      { guid: '{e0000000-0000-4000-8000-00000000000e}', eik: '000000014', name: 'Община Епсилон', certificateSN: '0a:0b', endpointUrl: 'http://127.0.0.1:9/seos' },
    ]);
    const alfa = dir.byGuid(ALFA_GUID)!;
    expect(alfa).toMatchObject({
      source: 'static', name: 'Община Алфа (тестова среда)', endpointUrl: 'https://test.alfa.local/seos', status: 'Active',
      // merged from the registry:
      certificateSerialNormalized: 'C3A1F2B4D5E6F7089A1B2C3D4E5F6071', phone: '+359 2 123 4567',
    });
    expect(dir.byGuid('{E0000000-0000-4000-8000-00000000000E}')).toMatchObject({ source: 'static', status: 'Active', certificateSerialNormalized: 'A0B' });
    expect(dir.byCertificateSerial('0A0B').map((p) => p.name)).toEqual(['Община Епсилон']);

    // A registry sync updates what the static entry does not name, and leaves the rest; a full one does not inactivate static-only rows.
    dir.applyRegistry([{ ...EXPECTED_ALL[0], contact: { phone: '+359 2 999 9999' }, administrativeBodyName: 'Община Алфа (ново)' }], { full: true });
    expect(dir.byGuid(ALFA_GUID)).toMatchObject({ name: 'Община Алфа (тестова среда)', endpointUrl: 'https://test.alfa.local/seos', phone: '+359 2 999 9999', source: 'static' });
    expect(dir.byGuid('{e0000000-0000-4000-8000-00000000000e}')?.status).toBe('Active');

    // Replacing the static set: Алфа returns to the registry's latest version, Епсилон disappears.
    dir.setStatic([]);
    expect(dir.byGuid(ALFA_GUID)).toMatchObject({ source: 'registry', name: 'Община Алфа (ново)', endpointUrl: 'https://seos.alfa.obmen.local/EGovService.svc', phone: '+359 2 999 9999' });
    expect(dir.byGuid('{e0000000-0000-4000-8000-00000000000e}')).toBeUndefined();
    expect(dir.staticParticipants()).toEqual([]);
  });

  it('a static status overrides the registry, and setStatic refuses bad entries without changing anything', () => {
    dir.setStatic([{ guid: BETA_GUID, eik: '000000002', name: 'РЗИ Бета', status: 'Inactive' }]);
    expect(codeOf(() => dir.requireActiveEndpoint(BETA_GUID)).code).toBe('GW_ERR_PARTICIPANT_INACTIVE');
    const bad: Array<[unknown, string]> = [
      [{ guid: 'nope', eik: '000000001', name: 'x' }, 'participants[0].guid'],
      [{ guid: ALFA_GUID, eik: 'ЕИК', name: 'x' }, 'participants[0].eik'],
      [{ guid: ALFA_GUID, eik: '000000001', name: ' ' }, 'participants[0].name'],
      [{ guid: ALFA_GUID, eik: '000000001', name: 'x', certificateSN: 'zz' }, 'participants[0].certificateSN'],
      [{ guid: ALFA_GUID, eik: '000000001', name: 'x', endpointUrl: 'ftp://x/' }, 'participants[0].endpointUrl'],
      [{ guid: ALFA_GUID, eik: '000000001', name: 'x', status: 'Maybe' }, 'participants[0].status'],
    ];
    for (const [entry, where] of bad) {
      const r = codeOf(() => dir.setStatic([entry as never]));
      expect(r.code, where).toBe('GW_ERR_CONFIG_INVALID');
      expect(r.detail, where).toContain(where);
    }
    const dup = codeOf(() => dir.setStatic([{ guid: ALFA_GUID, eik: '000000001', name: 'a' }, { guid: ALFA_GUID.toUpperCase(), eik: '000000001', name: 'b' }]));
    expect(dup.detail).toContain('participants[1].guid');
    expect(dir.byGuid(BETA_GUID)).toMatchObject({ source: 'static', status: 'Inactive' });
  });

  it('requireActiveEndpoint: the endpoint by GUID or ЕИК, else NOT_FOUND, INACTIVE or NO_ENDPOINT', () => {
    expect(dir.requireActiveEndpoint(ALFA_GUID.toUpperCase()).endpointUrl).toBe('https://seos.alfa.obmen.local/EGovService.svc');
    const beta = dir.requireActiveEndpoint('000000002');
    expect([beta.participant.guid, beta.endpointUrl]).toEqual([BETA_GUID, 'https://rzi.beta.obmen.local/services/registry']);
    expect(codeOf(() => dir.requireActiveEndpoint('{00000000-0000-4000-8000-00000000dead}')).code).toBe('GW_ERR_PARTICIPANT_NOT_FOUND');
    expect(codeOf(() => dir.requireActiveEndpoint('999999999')).code).toBe('GW_ERR_PARTICIPANT_NOT_FOUND');
    expect(codeOf(() => dir.requireActiveEndpoint(GAMA_GUID)).code).toBe('GW_ERR_PARTICIPANT_INACTIVE');
    const unit = codeOf(() => dir.requireActiveEndpoint('0000000010001'));
    expect([unit.code, unit.detail]).toEqual(['GW_ERR_PARTICIPANT_INACTIVE', `ЕИК 0000000010001: ${UNIT_GUID} is TemporarilyInactive`]);

    // An Active participant whose only URI is not an http(s) URL, and a static one without an endpoint.
    dir.applyRegistry([entity('{00000000-0000-4000-8000-000000000021}', '000000021', 'Община Без Адрес', { services: [docExchange('seos.example.bg/svc')] })], { full: false });
    expect(codeOf(() => dir.requireActiveEndpoint('000000021')).code).toBe('GW_ERR_PARTICIPANT_NO_ENDPOINT');
    dir.setStatic([{ guid: '{00000000-0000-4000-8000-000000000022}', eik: '000000022', name: 'Община Статична' }]);
    expect(codeOf(() => dir.requireActiveEndpoint('{00000000-0000-4000-8000-000000000022}')).code).toBe('GW_ERR_PARTICIPANT_NO_ENDPOINT');

    // Two active participants with one ЕИК: ambiguous, the caller must use the GUID.
    dir.applyRegistry([entity('{00000000-0000-4000-8000-000000000031}', '000000031', 'Звено 1'), entity('{00000000-0000-4000-8000-000000000032}', '000000031', 'Звено 2')], { full: false });
    const amb = codeOf(() => dir.requireActiveEndpoint('000000031'));
    expect(amb.code).toBe('GW_ERR_PARTICIPANT_NOT_FOUND');
    expect(amb.detail).toContain('address one by GUID');
    expect(dir.requireActiveEndpoint('{00000000-0000-4000-8000-000000000032}').endpointUrl).toBe('https://seos.000000031.obmen.local/EGovService.svc');
  });

  it('is a durable copy: a new directory on the same file sees the same data and state', () => {
    dir.setStatic([{ guid: '{e0000000-0000-4000-8000-00000000000e}', eik: '000000014', name: 'Община Епсилон' }]);
    db.close();
    db = openDatabase(file);
    const again = new ParticipantDirectory(db);
    expect(again.byGuid(ALFA_GUID)?.name).toBe('Община Алфа');
    expect(again.search('епсилон').map((p) => p.source)).toEqual(['static']);
    expect(again.lastSync().lastChange).toBe('2024-05-07T08:00:00+03:00');
    expect(again.staticParticipants().map((s) => s.name)).toEqual(['Община Епсилон']);
  });
});

describe('registry sync', () => {
  let sim: RegistrySimulator;
  let db: Db;
  let directory: ParticipantDirectory;
  let client: RegistryClient;
  const alfa = entity(ALFA_GUID, '000000001', 'Община Алфа', { lastChange: '2024-05-01T10:00:00+03:00' });
  const beta = entity(BETA_GUID, '000000002', 'Община Бета', { lastChange: '2024-05-02T10:00:00+03:00' });

  beforeEach(async () => {
    sim = await startRegistrySimulator({ entities: [alfa, beta], style: 'multiref' });
    client = createRegistryClient({ url: sim.url, allowInsecureHttp: true, timeoutMs: 2000 });
    ({ db } = tempDb());
    directory = new ParticipantDirectory(db);
  });
  afterEach(async () => {
    await sim.close();
    db.close();
  });

  it('runs full first, then incremental from the stored LastChange, picking up an added and a changed entity', async () => {
    const sync = new RegistrySync({ client, directory });
    const first = await sync.syncNow();
    expect(first).toMatchObject({ mode: 'full', received: 2, inserted: 2, lastChange: '2024-05-02T10:00:00+03:00' });
    expect(sim.calls.map((c) => c.operation)).toEqual(['GetAllRecords']);

    sim.upsert({ ...beta, administrativeBodyName: 'Община Бета-Нова', lastChange: '2024-05-03T10:00:00+03:00' });
    sim.upsert(entity('{d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6}', '000000005', 'Община Делта', { lastChange: '2024-05-03T11:00:00+03:00' }));
    const second = await sync.syncNow();
    expect(second).toMatchObject({ mode: 'incremental', since: '2024-05-02T10:00:00+03:00', received: 2, inserted: 1, updated: 1, lastChange: '2024-05-03T11:00:00+03:00' });
    expect(sim.calls.at(-1)).toMatchObject({ operation: 'GetNewRecords', argument: '2024-05-02T10:00:00+03:00' });
    expect(directory.byGuid(BETA_GUID)?.name).toBe('Община Бета-Нова');
    expect(directory.byEik('000000005')).toHaveLength(1);

    // Nothing new: an empty incremental answer changes nothing and keeps the LastChange.
    const third = await sync.syncNow();
    expect(third).toMatchObject({ mode: 'incremental', received: 0, since: '2024-05-03T11:00:00+03:00', lastChange: '2024-05-03T11:00:00+03:00' });

    // Removal is only visible to a full run.
    sim.remove(ALFA_GUID.toUpperCase());
    await sync.syncNow();
    expect(directory.byGuid(ALFA_GUID)?.status).toBe('Active');
    const full = await sync.syncNow({ full: true });
    expect(full).toMatchObject({ mode: 'full', inactivated: 1 });
    expect(directory.byGuid(ALFA_GUID)?.status).toBe('Inactive');
  });

  it('goes full again once the last full run is older than fullEveryMs', async () => {
    let now = new Date('2024-05-10T00:00:00Z');
    const sync = new RegistrySync({ client, directory, fullEveryMs: 60 * 60_000, now: () => now });
    expect((await sync.syncNow()).mode).toBe('full');
    now = new Date('2024-05-10T00:30:00Z');
    expect((await sync.syncNow()).mode).toBe('incremental');
    now = new Date('2024-05-10T01:00:00Z');
    expect((await sync.syncNow()).mode).toBe('full');
    expect(directory.lastSync()).toEqual({
      lastChange: '2024-05-02T10:00:00+03:00', lastFullAt: '2024-05-10T01:00:00.000Z', lastIncrementalAt: '2024-05-10T00:30:00.000Z',
    });
  });

  it('a failing registry leaves the previous copy and sync state exactly as they were', async () => {
    const sync = new RegistrySync({ client, directory });
    await sync.syncNow();
    const rows = () => db.prepare('SELECT * FROM participants ORDER BY guid').all();
    const before = rows();
    const state = directory.lastSync();
    sim.setEntities([]); // a full run that succeeded would inactivate everyone
    for (const kind of ['fault', 'garbage', 'http500'] as const) {
      sim.failNext(1, kind);
      const r = await codeOfAsync(() => sync.syncNow({ full: true }));
      expect(r.code, kind).toMatch(/^GW_ERR_REGISTRY_(FAULT|BAD_RESPONSE|UNAVAILABLE)$/);
      expect(rows(), kind).toEqual(before);
      expect(directory.lastSync(), kind).toEqual(state);
    }
    // An empty full answer is itself treated as a failure: it would otherwise switch every participant off.
    const empty = await codeOfAsync(() => sync.syncNow({ full: true }));
    expect([empty.code, empty.detail]).toEqual(['GW_ERR_REGISTRY_BAD_RESPONSE', 'GetAllRecords returned no entities; the previous copy stays in use']);
    expect(rows()).toEqual(before);
    await sim.close();
    expect((await codeOfAsync(() => sync.syncNow({ full: true }))).code).toBe('GW_ERR_REGISTRY_UNAVAILABLE');
    expect(rows()).toEqual(before);
    expect(directory.lastSync()).toEqual(state);
  });

  it('start(): runs on a timer, logs failures and retries at the next tick, never overlaps, and stop() ends it', async () => {
    const logged: Array<{ level: string; obj: object }> = [];
    const logger = {
      info: (obj: object) => logged.push({ level: 'info', obj }),
      warn: (obj: object) => logged.push({ level: 'warn', obj }),
      error: (obj: object) => logged.push({ level: 'error', obj }),
    };
    let inFlight = 0;
    let maxInFlight = 0;
    let calls = 0;
    const slowClient = {
      async getAllRecords(): Promise<RegistryAnswer> {
        calls++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          await new Promise((r) => setTimeout(r, 40));
          return await client.getAllRecords();
        } finally {
          inFlight--;
        }
      },
      getNewRecords: (since: string) => client.getNewRecords(since),
    };
    sim.failNext(2, 'fault');
    const sync = new RegistrySync({ client: slowClient, directory, intervalMs: 10, logger });
    sync.start();
    sync.start(); // idempotent
    const deadline = Date.now() + 5000;
    while (!logged.some((l) => l.level === 'info') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await sync.stop();
    expect(logged.slice(0, 2).map((l) => l.level)).toEqual(['warn', 'warn']);
    expect(JSON.stringify(logged[0].obj)).toContain('GW_ERR_REGISTRY_FAULT');
    expect(logged.find((l) => l.level === 'info')?.obj).toMatchObject({ registrySync: { mode: 'full', received: 2 } });
    expect(directory.byGuid(ALFA_GUID)?.status).toBe('Active');
    expect(calls).toBe(3); // two failed full runs, then the successful one (a full run until one succeeds)
    expect(maxInFlight).toBe(1);
    const callsAtStop = sim.calls.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(sim.calls.length).toBe(callsAtStop);
  });
});

// ── mutual TLS ──

function makeServerCertificate(ca: TestPkiManifest['ca']): { key: string; cert: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', {
    modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const caCert = forge.pki.certificateFromPem(fs.readFileSync(ca.certPath, 'utf8'));
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = `01${crypto.randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 86_400_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ shortName: 'CN', value: 'register-t.obmen.local' }]);
  // forge parses UTF8String values as raw bytes and would encode them again: decode them first.
  cert.setIssuer(caCert.subject.attributes.map((a) => ({
    ...a, value: (a.valueTagClass as unknown) === forge.asn1.Type.UTF8 ? forge.util.decodeUtf8(a.value as string) : a.value,
  })));
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(fs.readFileSync(ca.keyPath, 'utf8')), forge.md.sha256.create());
  return { key: privateKey, cert: forge.pki.certificateToPem(cert) };
}

describe('registry client over mutual TLS', () => {
  let pki: TestPkiManifest;
  let sim: RegistrySimulator;
  let caPem: string;
  let alfaTls: { key: string; cert: string };
  beforeAll(async () => {
    pki = makeTestPki({ out: fs.mkdtempSync(path.join(os.tmpdir(), 'seos-registry-pki-')), admins: [{ name: 'obshtina-alfa', eik: '000000001', commonName: 'Община Алфа' }] });
    caPem = fs.readFileSync(pki.ca.certPath, 'utf8');
    const admin = pki.admins[0];
    alfaTls = { key: fs.readFileSync(admin.keyPath, 'utf8'), cert: fs.readFileSync(admin.certPath, 'utf8') };
    const server = makeServerCertificate(pki.ca);
    sim = await startRegistrySimulator({ entities: EXPECTED_ALL.slice(0, 2), tls: { ...server, ca: caPem } });
  });
  afterAll(() => sim.close());

  it('presents the client certificate and verifies the registry against the given CA', async () => {
    expect(sim.url.startsWith('https://127.0.0.1:')).toBe(true);
    const client = createRegistryClient({ url: sim.url, tls: { ...alfaTls, ca: caPem }, timeoutMs: 5000 });
    expect((await client.getAllRecords()).entities.map((e) => e.guid)).toEqual([ALFA_GUID, BETA_GUID]);
    expect(sim.calls.at(-1)).toMatchObject({ operation: 'GetAllRecords', clientCertificate: 'Община Алфа' });
  });

  it('without a client certificate the registry refuses the handshake: GW_ERR_REGISTRY_UNAVAILABLE', async () => {
    const before = sim.calls.length;
    const r = await codeOfAsync(() => createRegistryClient({ url: sim.url, tls: undefined, rejectUnauthorized: false, timeoutMs: 5000 }).getAllRecords());
    expect(r.code).toBe('GW_ERR_REGISTRY_UNAVAILABLE');
    expect(sim.calls.length).toBe(before);
  });

  it('refuses a registry certificate it cannot verify unless rejectUnauthorized is false (as the reference does)', async () => {
    const r = await codeOfAsync(() => createRegistryClient({ url: sim.url, tls: alfaTls, timeoutMs: 5000 }).getAllRecords());
    expect(r.code).toBe('GW_ERR_REGISTRY_UNAVAILABLE');
    expect(r.detail).toMatch(/certificate/i);
    const lax = createRegistryClient({ url: sim.url, tls: alfaTls, rejectUnauthorized: false, timeoutMs: 5000 });
    expect((await lax.getByEntityIdentifier('000000002')).entities.map((e) => e.guid)).toEqual([BETA_GUID]);
  });
});
