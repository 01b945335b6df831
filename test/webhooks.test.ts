import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/devtools/redis-server.ts';
import { entriesForDocument, listAttempts } from '../src/delivery/outbox.ts';
import { newGuid } from '../src/seos/index.ts';
import { buildSoapFault } from '../src/seos/soap/index.ts';
import { SIGNATURE_HEADER, signWebhook, verifyWebhookSignature, type WebhookBody } from '../src/webhooks/index.ts';
import { BETA_GUID, eventually, startTwoGateways, type TwoGateways } from './support/gateways.ts';
import { sampleDocument } from './support/messages.ts';

/**
 * Webhooks to a stand-in records system (a real HTTP server that verifies the HMAC signature as a records
 * system would), delivered by the real gateways with real Redis and SQLite.
 */
const SECRET_ALFA = 'alfa-webhook-secret-0123456789';
const SECRET_BETA = 'beta-webhook-secret-0123456789';
const DELTA_GUID = '{0d4c0000-0000-4000-8000-000000000004}';

interface Received { municipality: string; body: WebhookBody; raw: string; signatureOk: boolean; delivery: string; attempt: string }
const received: Received[] = [];
let failNextForBeta = 0;
let refuseEvents = new Set<string>();
let recordsSystem: http.Server;
let faultPeer: http.Server;
let net: TwoGateways;

beforeAll(async () => {
  const port = await freePort();
  recordsSystem = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const municipality = req.url === '/alfa' ? 'alfa' : 'beta';
      if (municipality === 'beta' && failNextForBeta > 0) {
        failNextForBeta--;
        res.writeHead(503).end();
        return;
      }
      const body = JSON.parse(raw) as WebhookBody;
      const signatureOk = verifyWebhookSignature(municipality === 'alfa' ? SECRET_ALFA : SECRET_BETA, raw, String(req.headers[SIGNATURE_HEADER]));
      received.push({ municipality, body, raw, signatureOk, delivery: String(req.headers['x-seos-gateway-delivery']), attempt: String(req.headers['x-seos-gateway-attempt']) });
      res.writeHead(refuseEvents.has(body.type) ? 400 : 204).end();
    });
  }).listen(port, '127.0.0.1');
  const faultPort = await freePort();
  faultPeer = http.createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(500, { 'content-type': 'text/xml' }).end(buildSoapFault({ code: 'Server', text: 'грешка' }))); }).listen(faultPort, '127.0.0.1');
  const hook = (name: string, secret: string) => ({ webhooks: [{ id: 'records', url: `http://127.0.0.1:${port}/${name}`, secret, allowInsecureHttp: true }] });
  net = await startTwoGateways({
    extraConfig: { alfa: hook('alfa', SECRET_ALFA), beta: hook('beta', SECRET_BETA) },
    extraParticipants: [{ guid: DELTA_GUID, eik: '000000004', name: 'Община Делта', certificateSN: '01', endpointUrl: `http://127.0.0.1:${faultPort}/seos` }],
  });
}, 60_000);

afterAll(async () => {
  await net?.stop();
  recordsSystem?.close();
  faultPeer?.close();
});

const freshDocument = () => sampleDocument({ id: { number: { docNumber: 'ОА-5', docDate: '2026-11-22' }, documentGuid: newGuid() } });

describe('webhooks to the records system', () => {
  it('announces a received document at the recipient, retrying while the records system is down, signed each time', async () => {
    failNextForBeta = 2;
    const sent = await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument() });
    const hook = await eventually(() => received.find((r) => r.municipality === 'beta' && r.body.type === 'document.received' && r.body.data.documentGuid === sent.documentGuid), 'document.received at Бета');
    expect(hook.signatureOk).toBe(true);
    expect(hook.attempt).toBe('3');
    expect(hook.body.data.counterparty).toEqual({ guid: '{0a1f0000-0000-4000-8000-000000000001}', eik: '000000001', name: 'Община Алфа' });
    // The records system has answered; the gateway records the outcome a moment later.
    const row = await eventually(() => {
      const r = net.beta.gateway.db.prepare("SELECT id, state, attempts FROM outbox WHERE id = ?").get(hook.delivery) as { state: string; attempts: number };
      return r.state !== 'pending' ? r : undefined;
    }, 'webhook delivery recorded');
    expect(row).toMatchObject({ state: 'delivered', attempts: 3 });
  });

  it('announces status changes of a sent document at the sender, but not the records system\'s own changes', async () => {
    const sent = await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument() });
    const inbound = await eventually(() => net.beta.gateway.db.prepare("SELECT id FROM documents WHERE direction = 'in' AND document_guid = ?").get(sent.documentGuid) as { id: string } | undefined, 'received');
    await net.beta.gateway.outbound.reportStatus(inbound.id, { status: 'DS_REGISTERED', number: 'ОБ-1', date: '2026-11-22' });
    const registered = await eventually(() => received.find((r) => r.municipality === 'alfa' && r.body.type === 'document.status' && r.body.data.documentId === sent.documentId && r.body.data.status === 'DS_REGISTERED'), 'DS_REGISTERED at Алфа');
    expect(registered.body.data.theirNumber).toBe('ОБ-1');
    expect(registered.body.data.previousStatus).toBe('DS_WAIT_REGISTRATION');
    expect(registered.signatureOk).toBe(true);
    // Бета's records system registered it itself: no webhook back to it about that.
    expect(received.some((r) => r.municipality === 'beta' && r.body.type === 'document.status' && r.body.data.documentId === inbound.id)).toBe(false);
  });

  it('announces a failed delivery, and a webhook the records system refuses stays visible as failed', async () => {
    refuseEvents = new Set(['document.status']);
    const sent = await net.alfa.gateway.outbound.sendDocument({ recipient: DELTA_GUID, document: freshDocument() });
    const failure = await eventually(() => received.find((r) => r.municipality === 'alfa' && r.body.type === 'delivery.failed' && r.body.data.documentId === sent.documentId), 'delivery.failed');
    expect(failure.body.data.code).toBe('GW_ERR_SEOS_PEER_FAULT');
    const refused = await eventually(() => entriesForDocument(net.alfa.gateway.db, sent.documentId).find((e) => e.kind === 'webhook' && e.state === 'failed'), 'refused webhook');
    expect(listAttempts(net.alfa.gateway.db, refused.id).map((a) => a.outcome)).toEqual(['failed:GW_ERR_WEBHOOK_REFUSED']);
    refuseEvents = new Set();
  });
});

describe('webhook signatures', () => {
  it('verify with the right secret and refuse a changed body, another secret or an old timestamp', () => {
    const body = '{"id":"1","type":"document.received"}';
    const header = signWebhook(SECRET_ALFA, body);
    expect(verifyWebhookSignature(SECRET_ALFA, body, header)).toBe(true);
    expect(verifyWebhookSignature(SECRET_ALFA, body.replace('1', '2'), header)).toBe(false);
    expect(verifyWebhookSignature(SECRET_BETA, body, header)).toBe(false);
    const old = signWebhook(SECRET_ALFA, body, new Date(Date.now() - 3600_000));
    expect(verifyWebhookSignature(SECRET_ALFA, body, old)).toBe(false);
    expect(verifyWebhookSignature(SECRET_ALFA, body, 'garbage')).toBe(false);
  });
});
