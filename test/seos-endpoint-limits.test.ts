import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRegistrationRequest, newGuid, signMessage, verifySignedMessage } from '../src/seos/index.ts';
import { buildSubmitRequest, createSeosClient } from '../src/seos/soap/index.ts';
import { BETA_GUID, startTwoGateways, type TwoGateways } from './support/gateways.ts';
import { sampleDocument } from './support/messages.ts';

/** The first step of the receiver pipeline: the size limit, refused with a SOAP Fault before anything is parsed or stored. */
let net: TwoGateways;
const LIMIT = 1024 * 1024;

beforeAll(async () => {
  net = await startTwoGateways({ endpoint: { maxMessageBytes: LIMIT } });
}, 60_000);

afterAll(async () => {
  await net?.stop();
});

const ALFA = { identifier: '000000001', administrativeBodyName: 'Община Алфа', guid: '{0a1f0000-0000-4000-8000-000000000001}' };
const BETA = { identifier: '000000002', administrativeBodyName: 'Община Бета', guid: BETA_GUID };

describe('SEOS endpoint size limit', () => {
  it('refuses a signed message over the limit with a SOAP Fault and stores nothing; one under the limit is taken', async () => {
    const client = createSeosClient({ allowInsecureHttp: true });
    const url = `http://127.0.0.1:${net.beta.seosPort}/seos`;
    const big = buildRegistrationRequest({ sender: ALFA, recipient: BETA }, sampleDocument({
      id: { documentGuid: newGuid() },
      attachments: [{ fileName: 'голям.bin', mimeType: 'application/octet-stream', content: { source: 'bytes', bytes: Buffer.alloc(2 * LIMIT, 1) } }],
    }));
    const refused = await client.submit(url, signMessage(big, net.pki.alfa), { messageGuid: big.header.messageGuid, verifyReply: (r) => verifySignedMessage(r) });
    expect(refused.kind).toBe('rejected');
    if (refused.kind === 'rejected') {
      expect(refused.reason).toBe('fault');
      expect(refused.text).toContain('GW_ERR_XML_TOO_LARGE');
    }
    const count = () => (net.beta.gateway.db.prepare("SELECT COUNT(*) AS n FROM documents WHERE direction = 'in'").get() as { n: number }).n;
    expect(count()).toBe(0);
    const small = buildRegistrationRequest({ sender: ALFA, recipient: BETA }, sampleDocument({ id: { documentGuid: newGuid() } }));
    const taken = await client.submit(url, signMessage(small, net.pki.alfa), { messageGuid: small.header.messageGuid, verifyReply: (r) => verifySignedMessage(r) });
    expect(taken.kind === 'delivered' && taken.status).toBe('DS_WAIT_REGISTRATION');
    expect(count()).toBe(1);
    client.close();
  });

  it('refuses a body over the limit that is not even XML with the same fault', async () => {
    const body = Buffer.concat([buildSubmitRequest(Buffer.from('<x/>')).subarray(0, 100), Buffer.alloc(2 * LIMIT, 0x41)]);
    const response = await fetch(`http://127.0.0.1:${net.beta.seosPort}/seos`, { method: 'POST', headers: { 'content-type': 'text/xml' }, body });
    expect(response.status).toBe(500);
    expect(await response.text()).toContain('GW_ERR_XML_TOO_LARGE');
  });
});
