import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryLog } from '../src/audit/index.ts';
import { DeliveryEngine } from '../src/delivery/engine.ts';
import { entriesForDocument, listAttempts } from '../src/delivery/outbox.ts';
import { startRedisServer, type RedisServer } from '../src/devtools/redis-server.ts';
import { loadConfig } from '../src/config/index.ts';
import { GatewayError, isGatewayError } from '../src/errors/index.ts';
import { ParticipantDirectory } from '../src/seos/registry/index.ts';
import {
  WSU_NS, buildDpMiscinfo, buildMtom, buildRequestBody, chooseChannel, createSsevApiFromConfig, createSsevChannel, createSsevRestClient, createSsevSoapClient,
  documentGuidOf, getChannelReason, getSsevMessage, reasonJson, secureEnvelope, soapAction, ssevPushEndpoint,
  type RoutingLookups, type SsevApi, type SsevChannel, type SsevProfile,
} from '../src/ssev/index.ts';
import { startSsevSimulator, type SsevSimulator } from '../src/simulators/ssev-simulator.ts';
import { ContentStore } from '../src/store/content-store.ts';
import { openDatabase, type Db } from '../src/store/database.ts';
import { getDocument, listAttachments, statusHistory, type DocumentRow } from '../src/store/documents.ts';
import { makeTestIdentities, type TestIdentities } from './support/pki.ts';
import { requireTool, runTool } from './support/tools.ts';

/**
 * SSEV as the gateway's second channel, end to end on loopback: the SSEV simulator (both APIs, a real
 * WS-Security XMLDSig check), real SQLite files, a real redis-server with the DeliveryEngine running the SSEV
 * handler, a real Fastify listener for push notifications. No component of ours is mocked.
 */
const MUNICIPALITY = 100; // our administration's SSEV profile
const PERSON = { profileId: 201, kind: 'person' as const, identifier: '7501010010', name: 'Иван Петров Иванов' };
const COMPANY = { profileId: 202, kind: 'legal-entity' as const, identifier: '121212121', name: 'Строй Инвест ЕООД' };
const BETA_SSEV = { profileId: 203, kind: 'institution' as const, identifier: '000000002', name: 'Община Бета' };
const GAMMA_SSEV = { profileId: 205, kind: 'institution' as const, identifier: '000000003', name: 'Община Гама' };
const APPLICANT = { profileId: 204, kind: 'person' as const, identifier: '8502020020', name: 'Мария Георгиева' };
const REST_IDENTITY = { clientOid: '2.16.100.1.1.1.1.13', clientCn: 'seos-gateway.alfa.example', operatorId: '7001010001' };
const BETA_GUID = '{0b2e0000-0000-4000-8000-000000000002}';
const GAMMA_GUID = '{0c3d0000-0000-4000-8000-000000000003}';

let redis: RedisServer;
let sim: SsevSimulator;
let pki: TestIdentities;
let root: string;
const envs: Env[] = [];

beforeAll(async () => {
  requireTool('xmlsec1');
  pki = makeTestIdentities();
  redis = await startRedisServer();
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssev-test-'));
  sim = await startSsevSimulator({
    profiles: [
      { profileId: MUNICIPALITY, kind: 'institution', identifier: '000000001', name: 'Община Алфа' },
      PERSON, COMPANY, BETA_SSEV, APPLICANT, GAMMA_SSEV,
    ],
    restClients: [{ clientId: 'alfa-gateway', clientSecret: 'демо-secret', ...REST_IDENTITY, profileId: MUNICIPALITY }],
    soapClients: [{ thumbprint: pki.alfa.certificate.sha1Fingerprint.toLowerCase(), profileId: MUNICIPALITY }],
  });
}, 60_000);

afterAll(async () => {
  for (const env of envs.splice(0)) await env.stop();
  await sim?.close();
  await redis?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

// ── the environment: one gateway's SSEV side ──

interface Env {
  readonly db: Db;
  readonly dbFile: string;
  readonly client: SsevApi;
  readonly channel: SsevChannel;
  readonly spool: ContentStore;
  readonly archive: ContentStore;
  readonly engine: DeliveryEngine;
  readonly delivered: DocumentRow[];
  readonly received: DocumentRow[];
  stop(): Promise<void>;
}

function restClient(overrides: Partial<Parameters<typeof createSsevRestClient>[0]> = {}) {
  return createSsevRestClient({
    baseUrl: sim.url, allowInsecureHttp: true, connectTimeoutMs: 1000, responseTimeoutMs: 5000, templateId: 1,
    token: { url: sim.tokenUrl, clientId: 'alfa-gateway', clientSecret: 'демо-secret' }, identity: REST_IDENTITY, ...overrides,
  });
}

function soapClient(overrides: Partial<Parameters<typeof createSsevSoapClient>[0]> = {}) {
  return createSsevSoapClient({ url: sim.soapUrl, allowInsecureHttp: true, connectTimeoutMs: 1000, responseTimeoutMs: 5000, identity: pki.alfa, ...overrides });
}

let envSeq = 0;
async function makeEnv(api: 'rest' | 'soap', options: { dbFile?: string; claimLeaseMs?: number; limits?: Record<string, number> } = {}): Promise<Env> {
  const name = `env${++envSeq}`;
  const dir = path.join(root, name);
  const dbFile = options.dbFile ?? path.join(dir, 'gateway.db');
  const db = openDatabase(dbFile);
  const spool = new ContentStore(path.join(path.dirname(dbFile), 'spool'));
  const archive = new ContentStore(path.join(path.dirname(dbFile), 'archive'));
  const log = new DeliveryLog(db);
  const client = api === 'rest' ? restClient() : soapClient();
  const delivered: DocumentRow[] = [];
  const received: DocumentRow[] = [];
  let engine!: DeliveryEngine;
  const channel = createSsevChannel({
    db, client, spool, archive, log,
    schedule: (entry) => engine.schedule(entry),
    statusPollIntervalMs: 10, pollIntervalMs: 3600_000,
    ...(options.claimLeaseMs !== undefined ? { claimLeaseMs: options.claimLeaseMs } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    onDelivered: (doc) => delivered.push(doc),
    onReceived: (doc) => received.push(doc),
  });
  engine = new DeliveryEngine({
    db, connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null }, prefix: `ssev-test-${name}`,
    handlers: channel.handlers,
    retryPolicyFor: () => ({ firstDelayMs: 150, factor: 1, maxAttempts: 30, jitter: 0, maxDelayMs: 1000 }),
    destinationPolicy: { downAfter: 100, probeIntervalMs: 200 },
    reconcileIntervalMs: 500,
    events: { dead: (entry) => channel.markDead(entry) },
  });
  await engine.start();
  let stopped = false;
  const env: Env = {
    db, dbFile, client, channel, spool, archive, engine, delivered, received,
    async stop() {
      if (stopped) return;
      stopped = true;
      await channel.stop();
      await engine.close();
      client.close();
      db.close();
    },
  };
  envs.push(env);
  return env;
}

async function eventually<T>(check: () => T | undefined | false | null, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (error) {
    if (isGatewayError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a coded error, got success');
}

function count(db: Db, table: string): number {
  return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
}

function lookups(env: Env, directory: ParticipantDirectory): RoutingLookups {
  return {
    seosLookup: (key) => {
      const { participant } = directory.requireActiveEndpoint(key);
      return { guid: participant.guid, eik: participant.eik, name: participant.name };
    },
    ssevLookup: (address) => env.channel.lookupProfile(address),
  };
}

function simMessageOf(env: Env, documentId: string) {
  const row = env.db.prepare("SELECT message_id AS id FROM ssev_messages WHERE direction = 'out' AND document_id = ?").get(documentId) as { id: number } | undefined;
  return row ? sim.message(row.id) : undefined;
}

const pdf = (n: number, seed = 1) => Buffer.alloc(n, seed);

// ── routing ──

describe('routing: SEOS or SSEV, decided before anything is queued', () => {
  let env: Env;
  let directory: ParticipantDirectory;

  beforeAll(async () => {
    env = await makeEnv('rest');
    directory = new ParticipantDirectory(env.db);
    directory.setStatic([
      { guid: BETA_GUID, eik: '000000002', name: 'Община Бета', endpointUrl: 'https://beta.example/seos', certificateSN: '01' },
      { guid: GAMMA_GUID, eik: '000000003', name: 'Община Гама', endpointUrl: 'https://gamma.example/seos', certificateSN: '02', status: 'Inactive' },
    ]);
  });

  it('sends to an active SEOS participant over SEOS, by ЕИК or GUID', async () => {
    const byEik = await chooseChannel({ recipient: { eik: '000000002' } }, lookups(env, directory));
    expect(byEik.channel).toBe('seos');
    expect(byEik.reason.code).toBe('seos-participant');
    expect(byEik.channel === 'seos' && byEik.seos.guid).toBe(BETA_GUID);
    const byGuid = await chooseChannel({ recipient: { guid: BETA_GUID.toUpperCase() } }, lookups(env, directory));
    expect(byGuid.channel).toBe('seos');
  });

  it('sends to a person with an SSEV profile over SSEV (a person is never a SEOS participant)', async () => {
    const d = await chooseChannel({ recipient: { egn: PERSON.identifier } }, lookups(env, directory));
    expect(d.channel).toBe('ssev');
    expect(d.channel === 'ssev' && d.ssev).toMatchObject({ kind: 'person', profileId: PERSON.profileId, name: PERSON.name });
    expect(d.reason.code).toBe('ssev-person');
    expect(d.reason.bg).toMatch(/физическо лице/);
    expect(d.reason.en).toMatch(/SSEV profile/);
  });

  it('sends to a company, and to an administration that is inactive in SEOS, over SSEV with the reason', async () => {
    const company = await chooseChannel({ recipient: { eik: COMPANY.identifier } }, lookups(env, directory));
    expect(company.channel === 'ssev' && company.ssev.kind).toBe('legal-entity');
    expect(company.reason.en).toMatch(/is not a SEOS participant/);
    const gamma = await chooseChannel({ recipient: { eik: GAMMA_SSEV.identifier } }, lookups(env, directory));
    expect(gamma.channel === 'ssev' && gamma.ssev.kind).toBe('institution');
    expect(gamma.reason.bg).toMatch(/не е активен участник в СЕОС/);
  });

  it('refuses a recipient with no channel with a coded error, and nothing is queued', async () => {
    const before = { documents: count(env.db, 'documents'), outbox: count(env.db, 'outbox') };
    const error = await chooseChannel({ recipient: { eik: '999999999' } }, lookups(env, directory)).catch((e: unknown) => e);
    expect(isGatewayError(error, 'GW_ERR_SSEV_NO_CHANNEL')).toBe(true);
    expect((error as GatewayError).status).toBe(422);
    expect(await codeOf(chooseChannel({ recipient: { egn: '1111111111' } }, lookups(env, directory)))).toBe('GW_ERR_SSEV_NO_CHANNEL');
    expect(await codeOf(chooseChannel({ recipient: { egn: '12345' } }, lookups(env, directory)))).toBe('GW_ERR_SSEV_INVALID_RECIPIENT');
    expect(await codeOf(chooseChannel({ recipient: {} }, lookups(env, directory)))).toBe('GW_ERR_SSEV_INVALID_RECIPIENT');
    expect({ documents: count(env.db, 'documents'), outbox: count(env.db, 'outbox') }).toEqual(before);
  });

  it('honours a forced channel, and says why a forced channel cannot be used', async () => {
    const forced = await chooseChannel({ recipient: { eik: BETA_SSEV.identifier }, force: 'ssev' }, lookups(env, directory));
    expect(forced.channel).toBe('ssev'); // Бета is a SEOS participant, but the records system asked for SSEV
    expect(forced.reason.code).toBe('forced-ssev');
    expect(await codeOf(chooseChannel({ recipient: { egn: PERSON.identifier }, force: 'seos' }, lookups(env, directory)))).toBe('GW_ERR_SSEV_INVALID_RECIPIENT');
    expect(await codeOf(chooseChannel({ recipient: { eik: COMPANY.identifier }, force: 'seos' }, lookups(env, directory)))).toBe('GW_ERR_PARTICIPANT_NOT_FOUND');
    expect(await codeOf(chooseChannel({ recipient: { eik: '999999999' }, force: 'ssev' }, lookups(env, directory)))).toBe('GW_ERR_SSEV_NO_PROFILE');
    expect(await codeOf(chooseChannel({ recipient: { guid: BETA_GUID }, force: 'ssev' }, lookups(env, directory)))).toBe('GW_ERR_SSEV_INVALID_RECIPIENT');
  });

  it('records the decision and its reason on the document', async () => {
    const d = await chooseChannel({ recipient: { egn: PERSON.identifier } }, lookups(env, directory));
    if (d.channel !== 'ssev') throw new Error('expected ssev');
    const queued = env.channel.sendViaSsev({ recipient: d.ssev, subject: 'Уведомление', text: 'Текст', channelReason: reasonJson(d.reason) });
    const doc = getDocument(env.db, queued.documentId)!;
    expect(doc.channel).toBe('ssev');
    expect(JSON.parse(getChannelReason(env.db, queued.documentId)!)).toEqual({ code: 'ssev-person', bg: d.reason.bg, en: d.reason.en });
    await eventually(() => getDocument(env.db, queued.documentId)?.status === 'SENT', 'sent');
  });
});

// ── sending ──

describe('sending to a person and to a company', () => {
  it('via REST: token, Dp-Miscinfo, blobs uploaded first and referenced from the file field, RNU passed on', async () => {
    const env = await makeEnv('rest');
    const tokenCallsBefore = sim.calls.filter((c) => c.api === 'token').length;
    const files = [
      { fileName: 'Заповед № 12.pdf', mimeType: 'application/pdf', content: pdf(3000, 7) },
      { fileName: 'приложение.txt', mimeType: 'text/plain', content: Buffer.from('Приложение 1', 'utf8') },
    ];
    const person = env.channel.sendViaSsev({
      recipient: PERSON, subject: 'Заповед за категоризация', text: 'Уважаеми г-н Иванов, ...', attachments: files,
      rnu: 'BGEM11115H0', regNumber: 'АО-12', regDate: '2026-11-22', externalId: 'rs-rest-person-1',
    });
    const company = env.channel.sendViaSsev({ recipient: COMPANY, subject: 'Разрешение за строеж', attachments: [files[0]] });
    const sentPerson = await eventually(() => getDocument(env.db, person.documentId)?.status === 'SENT' && getDocument(env.db, person.documentId), 'person SENT');
    await eventually(() => getDocument(env.db, company.documentId)?.status === 'SENT', 'company SENT');
    expect(sentPerson.channel).toBe('ssev');

    const m = simMessageOf(env, person.documentId)!;
    expect(m.via).toBe('rest');
    expect(m.senderProfileId).toBe(MUNICIPALITY);
    expect(m.recipientProfileIds).toEqual([PERSON.profileId]);
    expect(m.subject).toBe('Заповед за категоризация');
    expect(m.text).toBe('Уважаеми г-н Иванов, ...');
    expect(m.files.map((f) => f.fileName)).toEqual(['Заповед № 12.pdf', 'приложение.txt']);
    expect(m.files[0].bytes.equals(files[0].content)).toBe(true);
    expect(m.requestedRnu).toBe('BGEM11115H0');
    expect(simMessageOf(env, company.documentId)!.recipientProfileIds).toEqual([COMPANY.profileId]);

    // The identity header exactly as protocols.md §4.2 writes it, on every REST call; one token for all of them.
    const restCalls = sim.calls.filter((c) => c.api === 'rest');
    expect(restCalls.length).toBeGreaterThan(4);
    expect(new Set(restCalls.map((c) => c.dpMiscinfo))).toEqual(new Set([buildDpMiscinfo(REST_IDENTITY)]));
    expect(buildDpMiscinfo(REST_IDENTITY)).toBe(`dn:/C=BG/ST=OID:2.16.100.1.1.1.1.13/L=BG/CN=seos-gateway.alfa.example|representedPersonID:|correspondentOID:|operatorID:7001010001`);
    expect(sim.calls.filter((c) => c.api === 'token').length - tokenCallsBefore).toBe(1);

    // A repeated request with the same externalId is the same document, not a second message.
    expect(env.channel.sendViaSsev({ recipient: PERSON, subject: 'x', text: 'y', externalId: 'rs-rest-person-1' })).toMatchObject({ documentId: person.documentId, created: false });
    // Personal data never reaches the delivery log.
    const logText = (env.db.prepare('SELECT entry_json FROM delivery_log').all() as Array<{ entry_json: string }>).map((r) => r.entry_json).join('\n');
    expect(logText).toContain(person.documentId);
    expect(logText).not.toContain(PERSON.identifier);
    expect(logText).not.toContain('Иван');
    expect(logText).not.toContain('Строй Инвест');
    expect(logText).not.toContain('Заповед');
  });

  it('via SOAP: SendMessage over MTOM with an endorsing WS-Security signature the simulator verifies', async () => {
    const env = await makeEnv('soap');
    const big = pdf(200_000, 3);
    const person = env.channel.sendViaSsev({ recipient: PERSON, subject: 'Акт за установяване', text: 'Текст на съобщението', attachments: [{ fileName: 'акт.pdf', mimeType: 'application/pdf', content: big }], regNumber: 'АО-77' });
    const company = env.channel.sendViaSsev({ recipient: COMPANY, subject: 'Покана', attachments: [{ fileName: 'покана.docx', mimeType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', content: pdf(50) }] });
    await eventually(() => getDocument(env.db, person.documentId)?.status === 'SENT', 'person SENT');
    await eventually(() => getDocument(env.db, company.documentId)?.status === 'SENT', 'company SENT');
    const m = simMessageOf(env, person.documentId)!;
    expect(m.via).toBe('soap');
    expect(m.recipientProfileIds).toEqual([PERSON.profileId]);
    expect(m.subject).toBe('Акт за установяване');
    expect(m.text).toBe('Текст на съобщението');
    expect(m.regNumber).toBe('АО-77');
    expect(m.files[0].fileName).toBe('акт.pdf');
    expect(m.files[0].bytes.equals(big)).toBe(true);
    expect(simMessageOf(env, company.documentId)!.recipientProfileIds).toEqual([COMPANY.profileId]);
    const soapCalls = sim.calls.filter((c) => c.api === 'soap' && c.op === 'SendMessage');
    expect(soapCalls.length).toBeGreaterThanOrEqual(2);
    expect(soapCalls.every((c) => c.status === 200 && !c.refused)).toBe(true);
  });

  it('SOAP: the signed envelope also verifies with xmlsec1 (an independent XMLDSig implementation)', () => {
    const client = soapClient();
    try {
      const built = client.buildRequest({ op: 'GetRegisteredInstitutions' });
      const file = path.join(root, 'wsse-envelope.xml');
      const cert = path.join(root, 'alfa-cert.pem');
      fs.writeFileSync(file, built.envelope);
      fs.copyFileSync(pki.certPath('obshtina-alfa'), cert);
      const ok = runTool('xmlsec1', ['--verify', '--pubkey-cert-pem', cert, '--id-attr:Id', `${WSU_NS}:Timestamp`, file]);
      expect(ok.stderr).toMatch(/^OK/m);
      expect(ok.status).toBe(0);
      // Only the Timestamp is signed (the endorsing shape), with exclusive C14N.
      const text = built.envelope.toString('utf8');
      expect(text).toMatch(/<Reference URI="#_0">/);
      expect(text).toContain('<CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>');
      expect(text).toMatch(/<o:SecurityTokenReference><o:Reference URI="#uuid-[0-9a-f-]+-1" ValueType="[^"]+#X509v3"\/><\/o:SecurityTokenReference>/);
      fs.writeFileSync(file, text.replace(/<u:Expires>[^<]+<\/u:Expires>/, '<u:Expires>2099-01-01T00:00:00.000Z</u:Expires>'));
      expect(runTool('xmlsec1', ['--verify', '--pubkey-cert-pem', cert, '--id-attr:Id', `${WSU_NS}:Timestamp`, file]).status).not.toBe(0);
    } finally {
      client.close();
    }
  });

  it('SOAP: an unsigned, tampered, expired or unregistered-certificate request is refused', async () => {
    const post = async (envelope: string) => {
      const mtom = buildMtom(Buffer.from(envelope, 'utf8'), []);
      const res = await fetch(sim.soapUrl, { method: 'POST', headers: { 'content-type': mtom.contentType, soapaction: `"${soapAction('GetRegisteredInstitutions')}"` }, body: Buffer.concat(mtom.parts) });
      return { status: res.status, text: await res.text(), call: sim.calls[sim.calls.length - 1] };
    };
    const body = buildRequestBody({ op: 'GetRegisteredInstitutions' }).xml;
    const unsigned = await post(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/><s:Body>${body}</s:Body></s:Envelope>`);
    expect(unsigned.status).toBe(500);
    expect(unsigned.text).toContain('InvalidSecurity');
    expect(unsigned.call.refused).toMatch(/not signed/);

    const signed = secureEnvelope(body, { identity: pki.alfa });
    expect((await post(signed)).status).toBe(200);
    const tampered = await post(signed.replace(/<u:Expires>[^<]+<\/u:Expires>/, '<u:Expires>2099-01-01T00:00:00.000Z</u:Expires>'));
    expect(tampered.status).toBe(500);
    expect(tampered.call.refused).toMatch(/does not verify|calculated digest/);

    const expiredClient = soapClient({ now: () => new Date(Date.now() - 3600_000) });
    expect(await codeOf(expiredClient.getRegisteredInstitutions())).toBe('GW_ERR_SSEV_AUTH');
    expect(sim.calls[sim.calls.length - 1].refused).toMatch(/expired/);
    expiredClient.close();

    const stranger = soapClient({ identity: pki.beta });
    expect(await codeOf(stranger.getRegisteredInstitutions())).toBe('GW_ERR_SSEV_AUTH');
    expect(sim.calls[sim.calls.length - 1].refused).toMatch(/not a registered SSEV login/);
    stranger.close();

    const ours = soapClient();
    const institutions = await ours.getRegisteredInstitutions();
    expect(institutions.map((i) => i.identifier)).toEqual(expect.arrayContaining(['000000001', BETA_SSEV.identifier]));
    expect(institutions.find((i) => i.identifier === BETA_SSEV.identifier)?.name).toBe('Община Бета');
    const check = await ours.checkSubjectHasRegistration(COMPANY.identifier);
    expect(check).toMatchObject({ hasRegistration: true, subject: { name: COMPANY.name, profileType: 'LegalPerson', isActivated: true } });
    expect((await ours.checkSubjectHasRegistration('999999999')).hasRegistration).toBe(false);
    ours.close();
  });

  it('REST: a wrong Dp-Miscinfo identity or bad client credentials are refused with GW_ERR_SSEV_AUTH', async () => {
    const wrongCn = restClient({ identity: { ...REST_IDENTITY, clientCn: 'someone-else' } });
    expect(await codeOf(wrongCn.targetGroups())).toBe('GW_ERR_SSEV_AUTH');
    expect(sim.calls[sim.calls.length - 1].refused).toMatch(/no ESB user/);
    wrongCn.close();
    const wrongSecret = restClient({ token: { url: sim.tokenUrl, clientId: 'alfa-gateway', clientSecret: 'wrong' } });
    expect(await codeOf(wrongSecret.targetGroups())).toBe('GW_ERR_SSEV_AUTH');
    wrongSecret.close();
    const ok = restClient();
    expect((await ok.targetGroups()).map((g) => g.targetGroupId)).toEqual([1, 2, 3]);
    expect((await ok.template(1)).fields.map((f) => f.type)).toEqual(['textarea', 'file']);
    expect((await ok.checkProfile(COMPANY.identifier))[0]).toMatchObject({ profileId: COMPANY.profileId, targetGroupId: 2, isActivated: true });
    ok.close();
  });
});

// ── receiving ──

describe('receiving: the inbox becomes inbound documents, each message once', () => {
  it('REST: polls, opens, downloads blobs into the spool and hands over; nothing twice, also after a restart', async () => {
    const env = await makeEnv('rest');
    const application = Buffer.from('Заявление за издаване на удостоверение за наследници', 'utf8');
    const scan = pdf(300_000, 9);
    const id = sim.sendToInbox({
      from: APPLICANT.profileId, to: MUNICIPALITY, subject: 'Заявление', text: 'Моля, издайте удостоверение.',
      files: [{ fileName: 'заявление.txt', bytes: application }, { fileName: 'скан.pdf', bytes: scan }],
    });
    const first = await env.channel.pollInbox();
    expect(first.taken).toHaveLength(1);
    const doc = first.taken[0];
    expect(doc).toMatchObject({
      direction: 'in', channel: 'ssev', status: 'DS_WAIT_REGISTRATION', counterpartyName: APPLICANT.name, counterpartyEik: APPLICANT.identifier,
      counterpartyGuid: `ssev:profile:${APPLICANT.profileId}`, about: 'Заявление', documentGuid: documentGuidOf(id),
    });
    expect(doc.ourNumber).toMatch(/^SSEV-\d{6}$/);
    const attachments = listAttachments(env.db, doc.id);
    expect(attachments.map((a) => a.fileName)).toEqual(['message.txt', 'заявление.txt', 'скан.pdf']);
    expect(env.spool.read(attachments[0].sha256).toString('utf8')).toBe('Моля, издайте удостоверение.');
    expect(env.spool.read(attachments[1].sha256).equals(application)).toBe(true);
    expect(env.spool.read(attachments[2].sha256).equals(scan)).toBe(true);
    expect(attachments[2].mimeType).toBe('application/pdf');
    await eventually(() => env.received.some((d) => d.id === doc.id), 'onReceived');
    expect(sim.message(id)!.dateReceived.has(MUNICIPALITY)).toBe(true); // opening is delivery for the sender
    const logged = env.db.prepare("SELECT entry_json FROM delivery_log WHERE json_extract(entry_json, '$.type') = 'message-received'").all() as Array<{ entry_json: string }>;
    expect(logged).toHaveLength(1);
    expect(logged[0].entry_json).not.toContain(APPLICANT.identifier);

    expect((await env.channel.pollInbox()).taken).toHaveLength(0);
    // A restart: another process run on the same database takes nothing again.
    await env.stop();
    const again = await makeEnv('rest', { dbFile: env.dbFile });
    expect((await again.channel.pollInbox()).taken).toHaveLength(0);
    expect((await again.channel.takeMessage(id)).outcome).toBe('skipped'); // a late Received push for it
    expect(count(again.db, "documents WHERE direction = 'in'")).toBe(1);
    // Two takes of one message at once (a poll and a Received push) make one document.
    const other = sim.sendToInbox({ from: APPLICANT.profileId, to: MUNICIPALITY, subject: 'Второ', text: 'текст' });
    const [a, b] = await Promise.all([again.channel.takeMessage(other), again.channel.pollInbox()]);
    expect([a.outcome === 'taken', b.taken.length === 1].filter(Boolean)).toHaveLength(1);
    expect(count(again.db, "documents WHERE direction = 'in'")).toBe(2);
  });

  it('REST: a take interrupted halfway (blob download fails) is retaken by id after a restart, once', async () => {
    const env = await makeEnv('rest');
    const id = sim.sendToInbox({ from: APPLICANT.profileId, to: MUNICIPALITY, subject: 'С прекъсване', files: [{ fileName: 'a.pdf', bytes: pdf(10_000, 4) }] });
    sim.failNext(1, 'http500', 'blob');
    const failed = await env.channel.pollInbox();
    expect(failed).toMatchObject({ taken: [], failed: 1 });
    expect(getSsevMessage(env.db, 'in', id)).toMatchObject({ state: 'claimed', attempts: 1 });
    expect(sim.message(id)!.dateReceived.has(MUNICIPALITY)).toBe(true); // opened, so no longer "new" at SSEV
    await env.stop();
    // The claim belonged to the stopped run: a new run takes it over once the lease has passed (0 here).
    const restarted = await makeEnv('rest', { dbFile: env.dbFile, claimLeaseMs: 0 });
    const retaken = (await restarted.channel.pollInbox()).taken.filter((d) => d.documentGuid === documentGuidOf(id));
    expect(retaken).toHaveLength(1);
    expect(getSsevMessage(restarted.db, 'in', id)).toMatchObject({ state: 'stored', documentId: retaken[0].id });
    expect((await restarted.channel.pollInbox()).taken).toHaveLength(0);
    expect(count(restarted.db, `documents WHERE direction = 'in' AND document_guid = '${documentGuidOf(id)}'`)).toBe(1);
  });

  it('SOAP: GetReceivedMessagesList + GetReceivedMessageContent, inline and MTOM attachments', async () => {
    const env = await makeEnv('soap');
    const small = Buffer.from('малък файл', 'utf8');
    const large = pdf(120_000, 5);
    const id = sim.sendToInbox({ from: COMPANY.profileId, to: MUNICIPALITY, subject: 'Искане', text: 'Текст', files: [{ fileName: 'малък.txt', bytes: small }, { fileName: 'голям.pdf', bytes: large, contentType: 'application/pdf' }] });
    const result = await env.channel.pollInbox();
    const doc = result.taken.find((d) => d.documentGuid === documentGuidOf(id))!;
    expect(doc).toBeDefined();
    expect(doc).toMatchObject({ channel: 'ssev', direction: 'in', counterpartyName: COMPANY.name, counterpartyGuid: `ssev:profile:${COMPANY.profileId}`, documentGuid: documentGuidOf(id) });
    const files = listAttachments(env.db, doc.id);
    expect(files.map((f) => f.fileName)).toEqual(['message.txt', 'малък.txt', 'голям.pdf']);
    expect(env.spool.read(files[1].sha256).equals(small)).toBe(true);
    expect(env.spool.read(files[2].sha256).equals(large)).toBe(true);
    expect(files[2].mimeType).toBe('application/pdf');
    expect((await env.channel.pollInbox()).taken).toHaveLength(0);
  });
});

// ── delivery confirmation ──

describe('delivery confirmation: the recipient opened it', () => {
  it('through the status poller: DELIVERED, history, evidence, onDelivered', async () => {
    const env = await makeEnv('rest');
    const q = env.channel.sendViaSsev({ recipient: PERSON, subject: 'Решение', text: 'Решение по преписка', rnu: 'BGEM00000001' });
    await eventually(() => getDocument(env.db, q.documentId)?.status === 'SENT', 'SENT');
    const m = simMessageOf(env, q.documentId)!;
    expect(await env.channel.pollSentStatus()).toMatchObject({ delivered: 0 });
    expect(getDocument(env.db, q.documentId)!.status).toBe('SENT');
    sim.openAsRecipient(m.messageId);
    await new Promise((r) => setTimeout(r, 20));
    expect(await env.channel.pollSentStatus()).toMatchObject({ delivered: 1 });
    const doc = getDocument(env.db, q.documentId)!;
    expect(doc.status).toBe('DELIVERED');
    expect(statusHistory(env.db, doc.id).map((h) => h.status)).toEqual(['PENDING', 'SENT', 'DELIVERED']);
    expect(getSsevMessage(env.db, 'out', m.messageId)).toMatchObject({ state: 'delivered', ssevRnu: m.rnu });
    expect(getSsevMessage(env.db, 'out', m.messageId)!.dateReceived).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    const entry = env.db.prepare("SELECT entry_json FROM delivery_log WHERE json_extract(entry_json, '$.status') = 'DELIVERED'").get() as { entry_json: string };
    const evidence = JSON.parse(entry.entry_json).replySha256 as string;
    expect(JSON.parse(env.archive.read(evidence).toString('utf8')).recipients[0].dateReceived).toBeTruthy();
    const hooked = await eventually(() => env.delivered.find((d) => d.id === doc.id), 'onDelivered');
    expect(hooked.rnu).toBe('BGEM00000001');
    expect(await env.channel.pollSentStatus()).toMatchObject({ checked: 0 }); // delivered: not asked again
  });

  describe('through the push endpoint', () => {
    let app: FastifyInstance;
    let env: Env;
    let pushUrl: string;

    beforeAll(async () => {
      env = await makeEnv('soap');
      app = Fastify();
      await app.register(ssevPushEndpoint, { channel: env.channel, path: '/ssev/push' });
      const address = await app.listen({ host: '127.0.0.1', port: 0 });
      pushUrl = `${address}/ssev/push`;
      sim.setPushUrl(MUNICIPALITY, pushUrl);
    });

    afterAll(async () => {
      sim.setPushUrl(MUNICIPALITY, undefined);
      await app.close();
    });

    it('Delivered → the message is checked with SSEV and the document becomes DELIVERED', async () => {
      const q = env.channel.sendViaSsev({ recipient: COMPANY, subject: 'Уведомление', attachments: [{ fileName: 'u.pdf', mimeType: 'application/pdf', content: pdf(100) }] });
      await eventually(() => getDocument(env.db, q.documentId)?.status === 'SENT', 'SENT');
      const m = simMessageOf(env, q.documentId)!;
      sim.openAsRecipient(m.messageId); // SSEV pushes Delivered to our endpoint
      await eventually(() => getDocument(env.db, q.documentId)?.status === 'DELIVERED', 'DELIVERED by push');
      expect(sim.pushes.some((p) => p.body.EventType === 'Delivered' && p.body.MessageId === m.messageId && p.status === 200)).toBe(true);
      expect(sim.calls.some((c) => c.op === 'GetSentMessageStatus')).toBe(true); // confirmed with SSEV, not taken on trust
      await eventually(() => env.delivered.some((d) => d.id === q.documentId), 'onDelivered');
    });

    it('Received → the message is taken at once, without waiting for a poll', async () => {
      const id = sim.sendToInbox({ from: APPLICANT.profileId, to: MUNICIPALITY, subject: 'Жалба', text: 'Текст на жалбата' });
      const doc = await eventually(() => env.received.find((d) => d.documentGuid === documentGuidOf(id)), 'taken by push');
      expect(doc.channel).toBe('ssev');
      expect(getSsevMessage(env.db, 'in', id)?.state).toBe('stored');
    });

    it('a push about an unknown message is logged and ignored (200); a malformed one is 400 coded', async () => {
      const before = count(env.db, 'status_history');
      const unknown = await fetch(pushUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ EventType: 'Delivered', MessageId: 987654 }) });
      expect(unknown.status).toBe(200);
      expect(await unknown.json()).toEqual({ status: 'ignored' });
      for (const body of ['not json', JSON.stringify({ EventType: 'Opened', MessageId: 1 }), JSON.stringify({ EventType: 'Delivered', MessageId: 'x' }), JSON.stringify([1])]) {
        const res = await fetch(pushUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        expect(res.status).toBe(400);
        expect((await res.json()).code).toBe('GW_ERR_SSEV_PUSH_MALFORMED');
      }
      expect(count(env.db, 'status_history')).toBe(before);
    });
  });
});

// ── reliability and limits ──

describe('reliability and limits', () => {
  it('SSEV down, then back: the outbox retries and delivers once', async () => {
    const env = await makeEnv('rest');
    await env.client.lookup({ identifier: PERSON.identifier, kind: 'person' }); // a token now, so the outage hits the send
    sim.setDown(true);
    const q = env.channel.sendViaSsev({ recipient: PERSON, subject: 'При прекъсване', text: 'текст' });
    const outbox = entriesForDocument(env.db, q.documentId)[0];
    await eventually(() => listAttempts(env.db, outbox.id).length >= 2, 'two failed attempts');
    expect(getDocument(env.db, q.documentId)!.status).toBe('PENDING');
    const messagesBefore = sim.messages().length;
    sim.setDown(false);
    await eventually(() => getDocument(env.db, q.documentId)?.status === 'SENT', 'SENT after SSEV is back');
    const outcomes = listAttempts(env.db, outbox.id).map((a) => a.outcome);
    expect(outcomes.slice(0, -1).every((o) => o === 'retry:GW_ERR_SSEV_UNAVAILABLE')).toBe(true);
    expect(outcomes[outcomes.length - 1]).toBe('delivered');
    expect(sim.messages().length).toBe(messagesBefore + 1);
  });

  it('a refusal by SSEV (HTTP 400) fails the document without retrying', async () => {
    const env = await makeEnv('rest');
    await env.channel.lookupProfile({ identifier: PERSON.identifier, kind: 'person' });
    await env.client.send({ recipient: { ...PERSON }, subject: 'warm-up', text: 'x', attachments: [] }); // template cached
    sim.failNext(1, 'http400', 'rest');
    const q = env.channel.sendViaSsev({ recipient: PERSON, subject: 'Отказано', text: 'текст' });
    await eventually(() => getDocument(env.db, q.documentId)?.status === 'SENT_FAILED', 'SENT_FAILED');
    const outbox = entriesForDocument(env.db, q.documentId)[0];
    expect(listAttempts(env.db, outbox.id).map((a) => a.outcome)).toEqual(['failed:GW_ERR_SSEV_REJECTED']);
  });

  it('11 attachments, an oversize file or an oversize message are refused before queueing', async () => {
    const env = await makeEnv('soap');
    const before = { documents: count(env.db, 'documents'), outbox: count(env.db, 'outbox') };
    const eleven = Array.from({ length: 11 }, (_, i) => ({ fileName: `f${i}.pdf`, mimeType: 'application/pdf', content: pdf(10) }));
    expect(await codeOf(() => env.channel.sendViaSsev({ recipient: PERSON, subject: 'Много', attachments: eleven }))).toBe('GW_ERR_SSEV_TOO_MANY_ATTACHMENTS');
    const oversize = { fileName: 'голям.pdf', mimeType: 'application/pdf', content: Buffer.alloc(10_000 * 1024 + 1) };
    const error = (() => { try { env.channel.sendViaSsev({ recipient: PERSON, subject: 'Голям', attachments: [oversize] }); } catch (e) { return e; } })();
    expect(isGatewayError(error, 'GW_ERR_SSEV_TOO_LARGE')).toBe(true);
    expect((error as GatewayError).status).toBe(413);
    expect(await codeOf(() => env.channel.sendViaSsev({ recipient: PERSON, subject: 'Без разширение', attachments: [{ fileName: 'без-разширение', mimeType: 'application/pdf', content: pdf(10) }] }))).toBe('GW_ERR_SSEV_INVALID_INPUT');
    expect(await codeOf(() => env.channel.sendViaSsev({ recipient: PERSON, subject: '   ', text: 'x' }))).toBe('GW_ERR_SSEV_INVALID_INPUT');
    expect({ documents: count(env.db, 'documents'), outbox: count(env.db, 'outbox') }).toEqual(before);
    // Ten files of the largest size are fine one by one but too much together for one SOAP request (50 MB).
    const tight = await makeEnv('rest', { limits: { maxMessageBytes: 1000 } });
    expect(await codeOf(() => tight.channel.sendViaSsev({ recipient: PERSON, subject: 'Общо', attachments: [1, 2].map((i) => ({ fileName: `${i}.pdf`, mimeType: 'application/pdf', content: pdf(600) })) }))).toBe('GW_ERR_SSEV_TOO_LARGE');
    expect(tight.channel.limits.maxAttachmentBytes).toBeGreaterThan(50 * 1024 * 1024); // REST: about 51 MB per blob
  });

  it('malformed answers become GW_ERR_SSEV_BAD_RESPONSE, in the clients and through the handler', async () => {
    const rest = restClient();
    sim.failNext(1, 'malformed', 'rest');
    expect(await codeOf(rest.lookup({ identifier: PERSON.identifier, kind: 'person' }))).toBe('GW_ERR_SSEV_BAD_RESPONSE');
    sim.failNext(1, 'malformed', 'rest');
    expect(await codeOf(rest.sentStatus(1001))).toBe('GW_ERR_SSEV_BAD_RESPONSE');
    sim.failNext(1, 'malformed', 'rest');
    expect(await codeOf(rest.listInbox())).toBe('GW_ERR_SSEV_BAD_RESPONSE');
    sim.failNext(1, 'http500', 'rest');
    expect(await codeOf(rest.listInbox())).toBe('GW_ERR_SSEV_UNAVAILABLE');
    rest.close();

    const soap = soapClient();
    sim.failNext(1, 'malformed', 'soap');
    expect(await codeOf(soap.getSentMessageStatus(1001))).toBe('GW_ERR_SSEV_BAD_RESPONSE');
    sim.failNext(1, 'malformed', 'soap');
    expect(await codeOf(soap.sendMessage({ title: 't', documents: [], messageText: 'x', receiverType: 'Person', receiverUniqueIdentifier: PERSON.identifier }))).toBe('GW_ERR_SSEV_BAD_RESPONSE');
    sim.failNext(1, 'http400', 'soap');
    expect(await codeOf(soap.getReceivedMessagesList(true))).toBe('GW_ERR_SSEV_SOAP_FAULT');
    soap.close();

    const env = await makeEnv('soap');
    sim.failNext(1, 'malformed', 'soap');
    const profile: SsevProfile = { kind: 'person', identifier: PERSON.identifier, name: PERSON.name };
    const q = env.channel.sendViaSsev({ recipient: profile, subject: 'Неразбираем отговор', text: 'x' });
    await eventually(() => getDocument(env.db, q.documentId)?.status === 'SENT_FAILED', 'SENT_FAILED');
    expect(entriesForDocument(env.db, q.documentId)[0]).toMatchObject({ state: 'failed' });
    expect(entriesForDocument(env.db, q.documentId)[0].lastError).toMatch(/^GW_ERR_SSEV_BAD_RESPONSE/);
  });
});

// ── configuration ──

describe('configuration: the ssev section chooses the client and carries its credentials', () => {
  function configFile(ssev: Record<string, unknown>): string {
    const file = path.join(root, `config-${++envSeq}.json`);
    fs.writeFileSync(file, JSON.stringify({ ssev }));
    return file;
  }

  it('builds the REST client (token, Dp-Miscinfo, template) and the SOAP client from configuration; secrets never print', async () => {
    const config = loadConfig({ env: {}, file: configFile({
      enabled: true, client: 'rest', allowInsecureHttp: true,
      rest: {
        baseUrl: sim.url, tokenUrl: sim.tokenUrl, clientId: 'alfa-gateway', clientSecret: 'демо-secret', templateId: 1,
        identity: { clientOid: REST_IDENTITY.clientOid, clientCn: REST_IDENTITY.clientCn, operatorId: REST_IDENTITY.operatorId },
      },
      limits: { maxAttachments: 5 },
    }) });
    expect(config.ssev).toMatchObject({ enabled: true, client: 'rest', limits: { maxAttachments: 5 }, soap: { signatureProfile: 'rsa-sha1' } });
    const printed = JSON.stringify(config);
    expect(printed).not.toContain('демо-secret');
    expect(printed).not.toContain(REST_IDENTITY.operatorId);
    const rest = createSsevApiFromConfig(config.ssev);
    try {
      expect(rest.kind).toBe('rest');
      expect(await rest.lookup({ identifier: COMPANY.identifier })).toMatchObject({ kind: 'legal-entity', profileId: COMPANY.profileId });
      expect(sim.calls[sim.calls.length - 1].dpMiscinfo).toBe(buildDpMiscinfo(REST_IDENTITY));
    } finally {
      rest.close();
    }

    const soapConfig = loadConfig({ env: {}, file: configFile({ enabled: true, client: 'soap', allowInsecureHttp: true, soap: { url: sim.soapUrl, signatureProfile: 'rsa-sha256' } }) });
    const soap = createSsevApiFromConfig(soapConfig.ssev, { identity: pki.alfa });
    try {
      expect(soap.kind).toBe('soap');
      expect(await soap.lookup({ identifier: PERSON.identifier })).toMatchObject({ kind: 'person', name: PERSON.name });
    } finally {
      soap.close();
    }
  });

  it('refuses a malformed section with the JSON path at fault', async () => {
    for (const [ssev, where] of [
      [{ client: 'ftp' }, '$.ssev.client'],
      [{ rest: { identity: { clientCn: 'a|b' } } }, '$.ssev.rest.identity.clientCn'],
      [{ rest: { baseUrl: 'https://user:pw@esb.example' } }, '$.ssev.rest.baseUrl'],
      [{ limits: { maxAttachments: 0 } }, '$.ssev.limits.maxAttachments'],
      [{ unknown: true }, '$.ssev.unknown'],
    ] as const) {
      const error = (() => { try { loadConfig({ env: {}, file: configFile(ssev as Record<string, unknown>) }); } catch (e) { return e; } })();
      expect(isGatewayError(error, 'GW_ERR_CONFIG_INVALID')).toBe(true);
      expect((error as GatewayError).detail).toContain(where);
    }
    const incomplete = loadConfig({ env: {}, file: configFile({ enabled: true, client: 'rest' }) });
    expect(await codeOf(() => createSsevApiFromConfig(incomplete.ssev))).toBe('GW_ERR_CONFIG_INVALID');
  });
});
