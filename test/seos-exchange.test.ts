import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRegistrationRequest, buildStatusRequest, newGuid, signMessage, verifySignedMessage, type SeosMessage } from '../src/seos/index.ts';
import { buildSoapFault, createSeosClient, type SubmitOutcome } from '../src/seos/soap/index.ts';
import { freePort } from '../src/devtools/redis-server.ts';
import { requireTool, runTool } from './support/tools.ts';
import { getDocument, listAttachments, statusHistory } from '../src/store/documents.ts';
import { walSyncOf } from '../src/store/durability.ts';
import { queueDueStatusPolls } from '../src/seos/status-poller.ts';
import { entriesForDocument, listAttempts } from '../src/delivery/outbox.ts';
import { ALFA_GUID, BETA_GUID, eventually, startTwoGateways, type TwoGateways } from './support/gateways.ts';
import { sampleDocument } from './support/messages.ts';

/** Two municipalities, two real gateways over HTTP on loopback, real Redis and SQLite: SEOS as participants do it. */
let net: TwoGateways;
let faultServer: http.Server;
const DELTA_GUID = '{0d4c0000-0000-4000-8000-000000000004}';
const GAMA_GUID = '{0c3d0000-0000-4000-8000-000000000003}';
const client = createSeosClient({ allowInsecureHttp: true, connectTimeoutMs: 1000, responseTimeoutMs: 10_000 });

beforeAll(async () => {
  requireTool('xmlsec1');
  // A stand-in peer that answers every Submit with a SOAP Fault, as a WCF service does on an exception.
  const faultPort = await freePort();
  faultServer = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(500, { 'content-type': 'text/xml; charset=utf-8' });
      res.end(buildSoapFault({ code: 'Server', text: 'Вътрешна грешка при получателя' }));
    });
  }).listen(faultPort, '127.0.0.1');
  net = await startTwoGateways({
    extraParticipants: [{ guid: DELTA_GUID, eik: '000000004', name: 'Община Делта', certificateSN: '01', endpointUrl: `http://127.0.0.1:${faultPort}/seos` }],
  });
}, 60_000);

afterAll(async () => {
  client.close();
  faultServer?.close();
  await net?.stop();
});

const ALFA = { identifier: '000000001', administrativeBodyName: 'Община Алфа', guid: ALFA_GUID };
const BETA = { identifier: '000000002', administrativeBodyName: 'Община Бета', guid: BETA_GUID };

function betaUrl(): string {
  return `http://127.0.0.1:${net.beta.seosPort}/seos`;
}

/** Sends signed bytes straight to Бета's endpoint, as any SEOS participant would. */
async function submitToBeta(bytes: Buffer, message: SeosMessage): Promise<SubmitOutcome> {
  const documentGuid = message.body.type === 'MSG_DocumentRegistrationRequest' ? message.body.document.id.documentGuid
    : message.body.type === 'MSG_DocumentStatusRequest' ? message.body.docId.documentGuid : undefined;
  return client.submit(betaUrl(), bytes, { messageGuid: message.header.messageGuid, documentGuid, verifyReply: (r) => verifySignedMessage(r) });
}

function freshDocument(overrides: Parameters<typeof sampleDocument>[0] = {}) {
  return sampleDocument({ id: { number: { docNumber: 'ОА-2', docDate: '2026-11-22' }, documentGuid: newGuid() }, ...overrides });
}

function registration(documentGuid = newGuid(), sender = ALFA): SeosMessage {
  return buildRegistrationRequest({ sender, recipient: BETA }, sampleDocument({ id: { number: { docNumber: 'ОА-1', docDate: '2026-11-22' }, documentGuid } }));
}

function inboundAtBeta(documentGuid: string) {
  return net.beta.gateway.db.prepare("SELECT id FROM documents WHERE direction = 'in' AND document_guid = ?").get(documentGuid.toLowerCase()) as { id: string } | undefined;
}

describe('SEOS exchange between two gateways', () => {
  it('delivers a registration request with an attachment; the recipient stores it and answers DS_WAIT_REGISTRATION', async () => {
    const content = Buffer.from('Моля да ми бъде издадено удостоверение за наследници.', 'utf8');
    const sent = await net.alfa.gateway.outbound.sendDocument({
      recipient: BETA_GUID,
      document: sampleDocument({ attachments: [{ fileName: 'молба.txt', mimeType: 'text/plain', content: { source: 'bytes', bytes: content } }] }),
    });
    expect(sent.created).toBe(true);
    const ours = await eventually(() => {
      const d = getDocument(net.alfa.gateway.db, sent.documentId);
      return d?.status === 'DS_WAIT_REGISTRATION' ? d : undefined;
    }, 'alfa sees DS_WAIT_REGISTRATION');
    expect(ours.theirNumber).toMatch(/^SEOS-\d{6}$/);
    const theirs = inboundAtBeta(sent.documentGuid)!;
    expect(theirs).toBeDefined();
    const atBeta = getDocument(net.beta.gateway.db, theirs.id)!;
    expect(atBeta.counterpartyGuid).toBe(ALFA_GUID);
    expect(atBeta.status).toBe('DS_WAIT_REGISTRATION');
    const [attachment] = listAttachments(net.beta.gateway.db, theirs.id);
    expect(net.beta.gateway.spool.read(attachment.sha256).equals(content)).toBe(true);
    const attempts = listAttempts(net.alfa.gateway.db, entriesForDocument(net.alfa.gateway.db, sent.documentId)[0].id);
    expect(attempts.map((a) => a.outcome)).toEqual(['delivered']);
  });
});

describe('large attachments', () => {
  it('signs a file attachment while streaming it into the archive, and the recipient gets it intact', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'big-att-'));
    const file = path.join(dir, 'план.pdf');
    const bytes = Buffer.alloc(12 * 1024 * 1024 + 5);
    for (let i = 0; i < bytes.length; i += 997) bytes[i] = i % 256;
    fs.writeFileSync(file, bytes);
    const sent = await net.alfa.gateway.outbound.sendDocument({
      recipient: BETA_GUID,
      document: freshDocument({ attachments: [{ fileName: 'план.pdf', mimeType: 'application/pdf', content: { source: 'file', path: file } }] }),
    });
    await eventually(() => getDocument(net.alfa.gateway.db, sent.documentId)?.status === 'DS_WAIT_REGISTRATION', 'delivered', 30_000);
    const inbound = inboundAtBeta(sent.documentGuid)!;
    const [att] = listAttachments(net.beta.gateway.db, inbound.id);
    expect(att.size).toBe(bytes.length);
    expect(net.beta.gateway.spool.read(att.sha256).equals(bytes)).toBe(true);
    // What went on the wire is in Алфа's archive and verifies.
    const wire = net.alfa.gateway.db.prepare("SELECT wire_sha256 AS sha FROM messages WHERE direction = 'out' AND document_id = ?").get(sent.documentId) as { sha: string };
    expect(verifySignedMessage(net.alfa.gateway.archive.read(wire.sha)).signature.signer.serialHex).toBe(net.pki.alfa.certificate.serialHex);
  }, 60_000);
});

describe('the receiver state machine, over the wire', () => {
  it('answers the same document again with DS_ALREADY_RECEIVED, a replayed MessageGUID with the current status, and DS_REGISTERED once registered', async () => {
    const message = registration();
    const bytes = signMessage(message, net.pki.alfa);
    const first = await submitToBeta(bytes, message);
    expect(first.kind === 'delivered' && first.status).toBe('DS_WAIT_REGISTRATION');
    const again = registration(message.body.type === 'MSG_DocumentRegistrationRequest' ? message.body.document.id.documentGuid : '');
    const second = await submitToBeta(signMessage(again, net.pki.alfa), again);
    expect(second.kind === 'delivered' && second.status).toBe('DS_ALREADY_RECEIVED');
    // The sender lost our reply and retries the very same bytes: not DuplicateMessageGuid, the current status.
    const replay = await submitToBeta(bytes, message);
    expect(replay.kind === 'delivered' && replay.status).toBe('DS_ALREADY_RECEIVED');
    const atBeta = inboundAtBeta((message.body as any).document.id.documentGuid)!;
    net.beta.gateway.outbound.reportStatus(atBeta.id, { status: 'DS_REGISTERED', number: 'ОБ-94-77', date: '2026-11-22' });
    const after = registration((message.body as any).document.id.documentGuid);
    const third = await submitToBeta(signMessage(after, net.pki.alfa), after);
    expect(third.kind === 'delivered' && third.status).toBe('DS_REGISTERED');
    expect(third.kind === 'delivered' && third.theirNumber).toBe('ОБ-94-77');
  });

  it('stores a document once when a sender\'s retries race each other, and answers every one of them with a status', async () => {
    const message = registration();
    const documentGuid = (message.body as any).document.id.documentGuid as string;
    const bytes = signMessage(message, net.pki.alfa);
    const another = registration(documentGuid);
    const otherBytes = signMessage(another, net.pki.alfa);
    // The same bytes three times and the same document under a second MessageGUID, all at once: the receiver awaits
    // its file syncs between checking and committing, so these overlap inside it.
    const outcomes = await Promise.all([
      submitToBeta(bytes, message), submitToBeta(bytes, message), submitToBeta(otherBytes, another), submitToBeta(bytes, message),
    ]);
    for (const o of outcomes) expect(o.kind, JSON.stringify(o)).toBe('delivered');
    const statuses = outcomes.map((o) => (o.kind === 'delivered' ? o.status : o.kind));
    expect(statuses.filter((s) => s === 'DS_WAIT_REGISTRATION').length).toBe(1);
    expect(statuses.filter((s) => s !== 'DS_WAIT_REGISTRATION').every((s) => s === 'DS_ALREADY_RECEIVED')).toBe(true);
    const rows = net.beta.gateway.db.prepare("SELECT COUNT(*) AS n FROM documents WHERE direction = 'in' AND document_guid = ?").get(documentGuid.toLowerCase()) as { n: number };
    expect(rows.n).toBe(1);
    const messages = net.beta.gateway.db.prepare("SELECT message_guid FROM messages WHERE direction = 'in' AND document_id = ? ORDER BY message_guid").all(inboundAtBeta(documentGuid)!.id) as Array<{ message_guid: string }>;
    expect(messages.map((m) => m.message_guid).sort()).toEqual([message.header.messageGuid, another.header.messageGuid].map((g) => g.toLowerCase()).sort());
  });

  it('syncs the WAL before it answers (group commit): the reply never comes before the commit is on disk', async () => {
    const sync = walSyncOf(net.beta.gateway.db)!;
    expect(sync, 'a serving gateway opens its database with group commit').toBeDefined();
    expect(net.beta.gateway.db.pragma('synchronous', { simple: true })).toBe(1); // NORMAL: the gateway syncs, not each commit
    const before = sync.syncs;
    const message = registration();
    const outcome = await submitToBeta(signMessage(message, net.pki.alfa), message);
    expect(outcome.kind === 'delivered' && outcome.status).toBe('DS_WAIT_REGISTRATION');
    expect(sync.syncs).toBeGreaterThan(before);
  });

  it('answers a status request with the stored status, or DS_NOT_FOUND', async () => {
    const unknown = buildStatusRequest({ sender: ALFA, recipient: BETA }, { documentGuid: newGuid() });
    const outcome = await submitToBeta(signMessage(unknown, net.pki.alfa), unknown);
    expect(outcome.kind === 'delivered' && outcome.status).toBe('DS_NOT_FOUND');
  });

  it('refuses an unknown sender, a wrong certificate, a tampered message and a wrong recipient with signed MSG_Errors in Bulgarian', async () => {
    const cases: Array<[string, Buffer, SeosMessage, string]> = [];
    const unknownSender = registration(newGuid(), { identifier: '000000003', administrativeBodyName: 'Община Гама', guid: GAMA_GUID });
    cases.push(['unknown sender', signMessage(unknownSender, net.pki.gama), unknownSender, 'Подателят не е активен участник']);
    const wrongCert = registration();
    cases.push(['wrong certificate', signMessage(wrongCert, net.pki.gama), wrongCert, 'различен от регистрирания']);
    const tampered = registration();
    cases.push(['tampered', Buffer.from(signMessage(tampered, net.pki.alfa).toString('utf8').replace('Молба', 'Жалба')), tampered, 'променено след подписването']);
    const elsewhere = buildRegistrationRequest({ sender: ALFA, recipient: { ...BETA, guid: DELTA_GUID } }, sampleDocument({ id: { documentGuid: newGuid() } }));
    cases.push(['wrong recipient', signMessage(elsewhere, net.pki.alfa), elsewhere, 'не се обслужва от този възел']);
    for (const [name, bytes, message, text] of cases) {
      const outcome = await submitToBeta(bytes, message);
      expect(outcome.kind, name).toBe('rejected');
      if (outcome.kind !== 'rejected') continue;
      expect(outcome.reason, name).toBe('error-message');
      expect(outcome.text, name).toContain(text);
      expect(outcome.reply?.signer.serialHex, name).toBe(net.pki.beta.certificate.serialHex);
      expect(inboundAtBeta((message.body as any).document.id.documentGuid), name).toBeUndefined();
    }
  });

  it('answers what is not a SOAP Submit at all with a SOAP Fault', async () => {
    const response = await fetch(betaUrl(), { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<not-soap/>' });
    expect(response.status).toBe(500);
    const text = await response.text();
    expect(text).toContain('Fault');
    expect(text).toContain('GW_ERR_SOAP_MALFORMED');
  });

  it('accepts a message signed by xmlsec1 instead of by us', async () => {
    const message = registration();
    const ours = signMessage(message, net.pki.alfa).toString('utf8');
    const template = ours.replace(/<DigestValue>[^<]*<\/DigestValue>/, '<DigestValue></DigestValue>')
      .replace(/<SignatureValue>[^<]*<\/SignatureValue>/, '<SignatureValue></SignatureValue>')
      .replace(/<KeyInfo>.*<\/KeyInfo>/s, '<KeyInfo><X509Data><X509Certificate/></X509Data></KeyInfo>');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xmlsec-e2e-'));
    fs.writeFileSync(path.join(dir, 't.xml'), template);
    const r = runTool('xmlsec1', ['--sign', '--privkey-pem', `${net.pki.keyPath('obshtina-alfa')},${net.pki.certPath('obshtina-alfa')}`, '--output', path.join(dir, 's.xml'), path.join(dir, 't.xml')]);
    expect(r.status, r.stderr).toBe(0);
    const outcome = await submitToBeta(fs.readFileSync(path.join(dir, 's.xml')), message);
    expect(outcome.kind === 'delivered' && outcome.status).toBe('DS_WAIT_REGISTRATION');
    expect(inboundAtBeta((message.body as any).document.id.documentGuid)).toBeDefined();
  });
});

describe('status flows between the gateways', () => {
  it('pushes registered and closed statuses to the sender, and a rejection with its reason', async () => {
    const a = await net.alfa.gateway.outbound.sendDocument({ recipient: '000000002', document: freshDocument() });
    const b = await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument({ kind: 'Жалба' }) });
    const inA = await eventually(() => inboundAtBeta(a.documentGuid), 'Бета received A');
    const inB = await eventually(() => inboundAtBeta(b.documentGuid), 'Бета received B');
    net.beta.gateway.outbound.reportStatus(inA.id, { status: 'DS_REGISTERED', number: 'ОБ-94-00-15', date: '2026-11-22', expectedCloseDate: '2026-12-22' });
    net.beta.gateway.outbound.reportStatus(inB.id, { status: 'DS_REJECTED', reason: 'Документът не е подписан от заявителя.' });
    const registered = await eventually(() => { const d = getDocument(net.alfa.gateway.db, a.documentId); return d?.status === 'DS_REGISTERED' ? d : undefined; }, 'A registered at Алфа');
    expect(registered.theirNumber).toBe('ОБ-94-00-15');
    expect(registered.expectedCloseDate).toBe('2026-12-22');
    const rejected = await eventually(() => { const d = getDocument(net.alfa.gateway.db, b.documentId); return d?.status === 'DS_REJECTED' ? d : undefined; }, 'B rejected at Алфа');
    expect(rejected.rejectionReason).toBe('Документът не е подписан от заявителя.');
    net.beta.gateway.outbound.reportStatus(inA.id, { status: 'DS_CLOSED' });
    await eventually(() => getDocument(net.alfa.gateway.db, a.documentId)?.status === 'DS_CLOSED', 'A closed at Алфа');
    const history = statusHistory(net.alfa.gateway.db, a.documentId).map((h) => h.status);
    expect(history).toEqual(['PENDING', 'DS_WAIT_REGISTRATION', 'DS_REGISTERED', 'DS_CLOSED']);
  });

  it('asks for the status of a sent document and applies the answer', async () => {
    const sent = await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument() });
    const inbound = await eventually(() => inboundAtBeta(sent.documentGuid), 'Бета received it');
    // Registered at Бета directly (as if the push were lost): only a status request tells Алфа.
    const db = net.beta.gateway.db;
    db.prepare("UPDATE documents SET status = 'DS_REGISTERED', our_number = 'ОБ-7', our_date = '2026-11-22' WHERE id = ?").run(inbound.id);
    net.alfa.gateway.outbound.requestStatus(sent.documentId);
    const doc = await eventually(() => { const d = getDocument(net.alfa.gateway.db, sent.documentId); return d?.status === 'DS_REGISTERED' ? d : undefined; }, 'status request answered');
    expect(doc.theirNumber).toBe('ОБ-7');
  });
  it('polls documents still waiting for registration once their interval has passed, one request at a time, and learns their status', async () => {
    const sent = await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument() });
    await eventually(() => getDocument(net.alfa.gateway.db, sent.documentId)?.status === 'DS_WAIT_REGISTRATION', 'waiting at Алфа');
    const inbound = await eventually(() => inboundAtBeta(sent.documentGuid), 'Бета received it');
    net.beta.gateway.db.prepare("UPDATE documents SET status = 'DS_REGISTERED', our_number = 'ОБ-8', our_date = '2026-11-22' WHERE id = ?").run(inbound.id);
    const db = net.alfa.gateway.db;
    const ours = <T extends { documentId: string | null }>(rows: T[]) => rows.filter((r) => r.documentId === sent.documentId);
    // Not due yet: it became waiting just now (the gateways in these tests poll hourly).
    expect(ours(queueDueStatusPolls(db, 3600_000))).toHaveLength(0);
    // Two hours on, it is due once; while that request is pending it is not queued again.
    const later = new Date(Date.now() + 2 * 3600_000);
    const due = ours(queueDueStatusPolls(db, 3600_000, 500, later));
    expect(due).toHaveLength(1);
    expect(due[0]).toMatchObject({ kind: 'seos-status-request', state: 'pending' });
    expect(ours(queueDueStatusPolls(db, 3600_000, 500, later))).toHaveLength(0);
    net.alfa.gateway.engine.schedule(due[0]);
    const doc = await eventually(() => { const d = getDocument(db, sent.documentId); return d?.status === 'DS_REGISTERED' ? d : undefined; }, 'poll answered');
    expect(doc.theirNumber).toBe('ОБ-8');
    // Registered: never polled again.
    expect(ours(queueDueStatusPolls(db, 3600_000, 500, new Date(Date.now() + 10 * 3600_000)))).toHaveLength(0);
  });
});

describe('failures on the way', () => {
  it('does not retry a peer that answers with a SOAP Fault: the document fails at once', async () => {
    const sent = await net.alfa.gateway.outbound.sendDocument({ recipient: DELTA_GUID, document: freshDocument() });
    const doc = await eventually(() => { const d = getDocument(net.alfa.gateway.db, sent.documentId); return d?.status === 'SENT_FAILED' ? d : undefined; }, 'failed');
    const [entry] = entriesForDocument(net.alfa.gateway.db, doc.id);
    expect(entry.state).toBe('failed');
    expect(listAttempts(net.alfa.gateway.db, entry.id).map((a) => a.outcome)).toEqual(['failed:GW_ERR_SEOS_PEER_FAULT']);
  });

  it('keeps retrying while the peer is unreachable and delivers once it is back', async () => {
    await net.beta.stop();
    const sent = await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: freshDocument() });
    const [entry] = entriesForDocument(net.alfa.gateway.db, sent.documentId);
    await eventually(() => listAttempts(net.alfa.gateway.db, entry.id).filter((a) => a.outcome === 'retry:GW_ERR_SEOS_TRANSPORT').length >= 2, 'two failed attempts');
    expect(getDocument(net.alfa.gateway.db, sent.documentId)!.status).toBe('PENDING');
    await net.beta.start();
    await eventually(() => getDocument(net.alfa.gateway.db, sent.documentId)?.status === 'DS_WAIT_REGISTRATION', 'delivered after the peer came back', 30_000);
    expect(inboundAtBeta(sent.documentGuid)).toBeDefined();
  }, 60_000);

  it('refuses to send the same DocumentGUID to the same recipient twice, with a coded error and no change', async () => {
    const document = freshDocument();
    await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document });
    const count = () => (net.alfa.gateway.db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n;
    const before = count();
    await expect(net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document })).rejects.toMatchObject({ code: 'GW_ERR_DOCUMENT_EXISTS' });
    expect(count()).toBe(before);
  });

  it('keeps personal data out of the operational logs', () => {
    const all = [...net.alfa.logs, ...net.beta.logs].join('\n');
    expect(all.length).toBeGreaterThan(0);
    for (const secret of ['8001010000', 'Иван Петров Иванов', 'Моля да ми бъде']) expect(all).not.toContain(secret);
  });
});
