import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newGuid } from '../src/seos/index.ts';
import { createApiKey } from '../src/api/api-keys.ts';
import { getDocument } from '../src/store/documents.ts';
import { BETA_GUID, eventually, startTwoGateways, type TwoGateways } from './support/gateways.ts';
import { sampleDocument } from './support/messages.ts';

/** Liveness, readiness and Prometheus metrics of a real gateway, including when Redis goes away. */
let net: TwoGateways;
const apiUrl = (g: TwoGateways['alfa']) => `http://127.0.0.1:${(g.gateway.api.server.address() as AddressInfo).port}`;

beforeAll(async () => {
  net = await startTwoGateways();
}, 60_000);

afterAll(async () => {
  await net?.stop();
});

describe('health, readiness and metrics', () => {
  it('reports ready with every check, the certificate expiry and the delivery counts', async () => {
    const response = await fetch(`${apiUrl(net.alfa)}/ready`);
    expect(response.status).toBe(200);
    const body = await response.json() as { status: string; checks: Record<string, Record<string, unknown>> };
    expect(body.status).toBe('ready');
    expect(body.checks.database).toMatchObject({ ok: true });
    expect(body.checks.redis).toMatchObject({ ok: true });
    expect(body.checks.signingCertificate).toMatchObject({ ok: true, serial: net.pki.alfa.certificate.serialHex });
    expect(body.checks.signingCertificate.daysToExpiry).toBeGreaterThan(300);
    expect(body.checks.registry).toMatchObject({ ok: true, source: 'configuration' });
    expect(body.checks.deliveries).toMatchObject({ ok: true, dead: 0 });
  });

  it('counts accepted, received and delivered documents and observes delivery latency', async () => {
    const sent = await net.alfa.gateway.outbound.sendDocument({ recipient: BETA_GUID, document: sampleDocument({ id: { documentGuid: newGuid() } }) });
    await eventually(() => getDocument(net.alfa.gateway.db, sent.documentId)?.status === 'DS_WAIT_REGISTRATION', 'delivered');
    const alfa = await (await fetch(`${apiUrl(net.alfa)}/metrics`)).text();
    expect(alfa).toMatch(/seos_gateway_documents_accepted_total\{channel="seos"\} 1\b/);
    expect(alfa).toMatch(/seos_gateway_deliveries_delivered_total\{kind="seos-document"\} 1\b/);
    expect(alfa).toMatch(/seos_gateway_delivery_latency_seconds_count\{kind="seos-document"\} 1\b/);
    expect(alfa).toMatch(/seos_gateway_outbox\{state="delivered"\} 1\b/);
    const beta = await (await fetch(`${apiUrl(net.beta)}/metrics`)).text();
    expect(beta).toMatch(/seos_gateway_documents_received_total\{channel="seos"\} 1\b/);
    // Both acknowledged something (A the document, B its reply), each after a WAL fsync it waited for.
    const syncs = (text: string) => Number(/^seos_gateway_wal_sync_seconds_count (\d+)$/m.exec(text)?.[1] ?? 0);
    expect(syncs(alfa)).toBeGreaterThan(0);
    expect(syncs(beta)).toBeGreaterThan(0);
    expect(alfa).toMatch(/^seos_gateway_wal_restart_pause_seconds_count \d+$/m);
  });

  it('serves the queue dashboard to the operator role only (Basic auth for browsers, or the API-key header)', async () => {
    const operator = createApiKey(net.alfa.gateway.db, { name: 'it-desk', role: 'operator' }).key;
    const connector = createApiKey(net.alfa.gateway.db, { name: 'records', role: 'connector' }).key;
    const basic = (key: string) => `Basic ${Buffer.from(`any:${key}`).toString('base64')}`;
    const anonymous = await fetch(`${apiUrl(net.alfa)}/queues/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('Basic');
    expect((await fetch(`${apiUrl(net.alfa)}/queues/`, { headers: { authorization: basic(connector) } })).status).toBe(403);
    const page = await fetch(`${apiUrl(net.alfa)}/queues/`, { headers: { authorization: basic(operator) } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const queues = await fetch(`${apiUrl(net.alfa)}/queues/api/queues`, { headers: { 'x-api-key': operator } });
    expect(queues.status).toBe(200);
    expect(JSON.stringify(await queues.json())).toContain('delivery');
  });

  it('answers /health without touching dependencies, and /ready 503 naming Redis when Redis is gone', async () => {
    await net.redis.stop();
    const health = await fetch(`${apiUrl(net.alfa)}/health`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${apiUrl(net.alfa)}/ready`);
    expect(ready.status).toBe(503);
    const body = await ready.json() as { checks: Record<string, { ok: boolean }> };
    expect(body.checks.redis.ok).toBe(false);
    expect(body.checks.database.ok).toBe(true);
  }, 30_000);
});
