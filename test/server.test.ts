import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, GATEWAY_VERSION } from '../src/api/server.ts';
import { loadConfig } from '../src/config/index.ts';

describe('HTTP server over real loopback HTTP', () => {
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    const config = loadConfig({ env: { PORT: '0', LOG_LEVEL: 'silent' } });
    app = await buildServer(config);
    await app.listen({ host: config.host, port: config.port });
    const { address, port } = app.server.address() as AddressInfo;
    expect(address).toBe('127.0.0.1');
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await app?.close();
  });

  it('GET /health answers 200 with the package version', async () => {
    const response = await fetch(`${base}/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toEqual({ status: 'ok', version: GATEWAY_VERSION });
    expect(GATEWAY_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('an unknown path answers 404 with a coded JSON error', async () => {
    const response = await fetch(`${base}/no/such/route?egn=0000000000`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ code: 'GW_ERR_NOT_FOUND', message: 'Ресурсът не е намерен.' });
    expect(JSON.stringify(body)).not.toContain('egn');
  });

  it('a known path with another method is a 404 too (only GET /health exists)', async () => {
    const response = await fetch(`${base}/health`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { code: string }).code).toBe('GW_ERR_NOT_FOUND');
  });
});
