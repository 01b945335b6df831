import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDocument, listAttachments, statusHistory } from '../src/store/documents.ts';
import { entriesForDocument, listAttempts } from '../src/delivery/outbox.ts';
import { ALFA_GUID, BETA_GUID, eventually, startTwoGateways, type TwoGateways } from './support/gateways.ts';
import { sampleDocument } from './support/messages.ts';

/** Two municipalities, two real gateways over HTTP on loopback, real Redis and SQLite: SEOS as participants do it. */
let net: TwoGateways;

beforeAll(async () => {
  net = await startTwoGateways();
}, 60_000);

afterAll(async () => {
  await net?.stop();
});

function inboundAtBeta(documentGuid: string) {
  return net.beta.gateway.db.prepare("SELECT id FROM documents WHERE direction = 'in' AND document_guid = ?").get(documentGuid.toLowerCase()) as { id: string } | undefined;
}

describe('SEOS exchange between two gateways', () => {
  it('delivers a registration request with an attachment; the recipient stores it and answers DS_WAIT_REGISTRATION', async () => {
    const content = Buffer.from('Моля да ми бъде издадено удостоверение за наследници.', 'utf8');
    const sent = net.alfa.gateway.outbound.sendDocument({
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
