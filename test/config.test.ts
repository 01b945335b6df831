import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { buildServer } from '../src/api/server.ts';
import { CONFIG_FILE_MAX_BYTES, loadConfig, Secret, type GatewayConfig } from '../src/config/index.ts';
import { isGatewayError } from '../src/errors/index.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'seos-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
function writeConfig(content: string | object): string {
  const file = path.join(dir, `config-${++fileCount}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** Loads and expects GW_ERR_CONFIG_INVALID; returns the detail. */
function configError(options: Parameters<typeof loadConfig>[0]): string {
  try {
    loadConfig(options);
  } catch (error) {
    expect(isGatewayError(error, 'GW_ERR_CONFIG_INVALID')).toBe(true);
    return (error as { detail: string }).detail;
  }
  throw new Error('expected loadConfig to fail');
}

describe('loadConfig', () => {
  it('gives the defaults when there is no file and no environment', () => {
    const config = loadConfig({ env: {} });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      allowRemote: false,
      dataDir: './data',
      redisUrl: 'redis://127.0.0.1:6379',
      logLevel: 'info',
      contentInDatabaseMaxBytes: 256 * 1024,
      signing: {},
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('reads a valid file', () => {
    const file = writeConfig({
      host: '::1',
      port: 9443,
      dataDir: '/var/lib/seos-gateway',
      redisUrl: 'rediss://redis.internal:6380/2',
      logLevel: 'debug',
      contentInDatabaseMaxBytes: 0,
      signing: { pkcs12Path: 'keys/gateway.p12', password: 'file-password' },
    });
    const config = loadConfig({ file, env: {} });
    expect(config).toMatchObject({ host: '::1', port: 9443, dataDir: '/var/lib/seos-gateway', logLevel: 'debug', contentInDatabaseMaxBytes: 0 });
    expect(config.redisUrl).toBe('rediss://redis.internal:6380/2');
    expect(config.signing.pkcs12Path).toBe('keys/gateway.p12');
    expect(config.signing.password).toBeInstanceOf(Secret);
    expect(config.signing.password?.reveal()).toBe('file-password');
  });

  it('finds the file through SEOS_GATEWAY_CONFIG', () => {
    const file = writeConfig({ port: 8181 });
    expect(loadConfig({ env: { SEOS_GATEWAY_CONFIG: file } }).port).toBe(8181);
  });

  it('lets the environment override the file', () => {
    const file = writeConfig({ port: 9000, logLevel: 'debug', signing: { pkcs12Path: 'a.p12', password: 'from-file' } });
    const config = loadConfig({
      file,
      env: {
        HOST: 'localhost',
        PORT: '9001',
        DATA_DIR: '/tmp/gw',
        REDIS_URL: 'redis://127.0.0.1:6390',
        LOG_LEVEL: 'warn',
        SIGNING_PASSWORD: 'from-env',
      },
    });
    expect(config).toMatchObject({ host: 'localhost', port: 9001, dataDir: '/tmp/gw', logLevel: 'warn' });
    expect(config.redisUrl).toBe('redis://127.0.0.1:6390');
    expect(config.signing.pkcs12Path).toBe('a.p12');
    expect(config.signing.password?.reveal()).toBe('from-env');
  });

  it('treats an empty environment variable as unset', () => {
    expect(loadConfig({ env: { PORT: '', REDIS_URL: '' } })).toMatchObject({ port: 8080, redisUrl: 'redis://127.0.0.1:6379' });
  });

  it('accepts a remote host only with allowRemote', () => {
    expect(loadConfig({ file: writeConfig({ host: '0.0.0.0', allowRemote: true }), env: {} }).host).toBe('0.0.0.0');
    expect(loadConfig({ env: { HOST: '0.0.0.0', ALLOW_REMOTE: 'true' } }).allowRemote).toBe(true);
    expect(loadConfig({ env: { HOST: '127.10.0.1' } }).host).toBe('127.10.0.1');
  });

  describe('refuses hostile or malformed configuration, naming the field', () => {
    it('invalid JSON, without quoting the text (it may hold a password)', () => {
      const detail = configError({ file: writeConfig('{\n  "signing": { "password": s3cr3t }\n}'), env: {} });
      expect(detail).toMatch(/^\$: expected valid JSON/);
      expect(detail).not.toContain('s3cr3t');
      // Where V8 reports a position, the detail turns it into a line and column.
      expect(configError({ file: writeConfig('{\n  "port": 8080,\n}'), env: {} })).toBe(
        '$: expected valid JSON (syntax error at line 3, column 1)',
      );
    });

    it('a top level that is not an object', () => {
      expect(configError({ file: writeConfig('[1, 2]'), env: {} })).toBe('$: expected an object, got an array');
    });

    it('an unknown key', () => {
      expect(configError({ file: writeConfig({ prot: 8080 }), env: {} })).toMatch(/^\$\.prot: unknown key/);
      expect(configError({ file: writeConfig({ signing: { passwd: 'x' } }), env: {} })).toMatch(
        /^\$\.signing\.passwd: unknown key/,
      );
    });

    it('a content limit for the database that is not a whole number of bytes from 0 to 4 MiB', () => {
      for (const bad of [-1, 1.5, '262144', 4 * 1024 * 1024 + 1, null]) {
        expect(configError({ file: writeConfig({ contentInDatabaseMaxBytes: bad }), env: {} })).toMatch(
          /^\$\.contentInDatabaseMaxBytes: expected an integer from 0 \(everything in files\) to 4194304/,
        );
      }
    });

    it('a direct-delivery limit that is not a whole number from 0 to 100000', () => {
      expect(loadConfig({ file: writeConfig({ delivery: { directLimit: 0 } }), env: {} }).delivery.directLimit).toBe(0);
      for (const bad of [-1, 2.5, '1000', 100_001]) {
        expect(configError({ file: writeConfig({ delivery: { directLimit: bad } }), env: {} })).toMatch(/^\$\.delivery\.directLimit: expected an integer from 0 to 100000/);
      }
    });

    it('a delivery-thread switch that is not true or false', () => {
      expect(loadConfig({ env: {} }).delivery.thread).toBe(true);
      expect(loadConfig({ file: writeConfig({ delivery: { thread: false } }), env: {} }).delivery.thread).toBe(false);
      expect(configError({ file: writeConfig({ delivery: { thread: 'no' } }), env: {} })).toMatch(/^\$\.delivery\.thread: expected true or false/);
    });

    it('a __proto__ key (prototype pollution attempt)', () => {
      const detail = configError({ file: writeConfig('{"__proto__": {"allowRemote": true}, "host": "0.0.0.0"}'), env: {} });
      expect(detail).toMatch(/^\$\.__proto__: unknown key/);
      expect(({} as Record<string, unknown>).allowRemote).toBeUndefined();
    });

    it('a wrong type, without echoing a string value', () => {
      expect(configError({ file: writeConfig({ port: '8080' }), env: {} })).toBe(
        '$.port: expected an integer from 0 to 65535, got a string',
      );
      expect(configError({ file: writeConfig({ allowRemote: 'yes' }), env: {} })).toMatch(/^\$\.allowRemote: expected true or false/);
      const detail = configError({ file: writeConfig({ signing: { password: 1234 } }), env: {} });
      expect(detail).toMatch(/^\$\.signing\.password: expected a string/);
      expect(configError({ file: writeConfig({ signing: 'p12' }), env: {} })).toMatch(/^\$\.signing: expected an object/);
    });

    it('a port out of range', () => {
      expect(configError({ file: writeConfig({ port: 70000 }), env: {} })).toBe(
        '$.port: expected an integer from 0 to 65535, got 70000',
      );
      expect(configError({ file: writeConfig({ port: -1 }), env: {} })).toMatch(/^\$\.port:/);
      expect(configError({ file: writeConfig({ port: 80.5 }), env: {} })).toMatch(/^\$\.port:/);
      expect(configError({ env: { PORT: '70000' } })).toMatch(/^\$\.port \(from environment PORT\): expected an integer/);
      expect(configError({ env: { PORT: '80abc' } })).toMatch(/^\$\.port \(from environment PORT\)/);
    });

    it('a non-loopback host without allowRemote: true', () => {
      expect(configError({ file: writeConfig({ host: '0.0.0.0' }), env: {} })).toMatch(
        /^\$\.host: expected a loopback address .* unless \$\.allowRemote is true/,
      );
      expect(configError({ file: writeConfig({ host: '192.0.2.10', allowRemote: false }), env: {} })).toMatch(/^\$\.host:/);
      expect(configError({ env: { HOST: '::' } })).toMatch(/^\$\.host \(from environment HOST\)/);
    });

    it('a host that is not an address or a name', () => {
      expect(configError({ env: { HOST: 'http://127.0.0.1:8080' } })).toMatch(/^\$\.host .*expected an IP address or a host name/);
    });

    it('other malformed values', () => {
      expect(configError({ env: { LOG_LEVEL: 'verbose' } })).toMatch(/^\$\.logLevel \(from environment LOG_LEVEL\): expected one of/);
      expect(configError({ env: { REDIS_URL: 'http://127.0.0.1:6379' } })).toMatch(/^\$\.redisUrl .*redis:\/\//);
      expect(configError({ env: { ALLOW_REMOTE: 'maybe' } })).toMatch(/^\$\.allowRemote/);
      expect(configError({ file: writeConfig({ dataDir: '' }), env: {} })).toMatch(/^\$\.dataDir: expected a non-empty/);
    });

    it('an oversize file (more than 1 MiB), before parsing it', () => {
      const file = writeConfig(`{"dataDir": "${'a'.repeat(CONFIG_FILE_MAX_BYTES)}"}`);
      expect(configError({ file, env: {} })).toMatch(/expected at most 1048576 bytes \(1 MiB\)/);
    });

    it('a missing file, a directory, and text that is not UTF-8', () => {
      expect(configError({ file: path.join(dir, 'missing.json'), env: {} })).toMatch(/missing\.json: expected a readable file \(ENOENT\)/);
      expect(configError({ file: dir, env: {} })).toMatch(/expected a regular file/);
      const latin1 = path.join(dir, 'latin1.json');
      writeFileSync(latin1, Buffer.from([0x7b, 0x22, 0xe9, 0x22, 0x3a, 0x31, 0x7d]));
      expect(configError({ file: latin1, env: {} })).toMatch(/expected UTF-8 text/);
    });
  });
});

describe('the signing password never leaks', () => {
  const password = 'Pa55-never-in-logs';
  const config: GatewayConfig = loadConfig({
    file: writeConfig({ signing: { pkcs12Path: 'gw.p12', password: 'file-pw-also-secret' } }),
    env: { SIGNING_PASSWORD: password, REDIS_URL: 'redis://:redis-pw-secret@127.0.0.1:6379', LOG_LEVEL: 'info' },
  });

  it('is not in toJSON, util.inspect, or string conversion', () => {
    for (const shown of [
      JSON.stringify(config),
      inspect(config, { depth: Infinity, showHidden: true }),
      inspect(config.signing, { depth: Infinity, showHidden: true }),
      JSON.stringify(config.signing),
      `${config.signing.password}`,
      String(config.signing.password),
    ]) {
      expect(shown).not.toContain(password);
      expect(shown).not.toContain('file-pw-also-secret');
      expect(shown).not.toContain('redis-pw-secret');
    }
    expect(JSON.parse(JSON.stringify(config))).toMatchObject({ signing: { pkcs12Path: 'gw.p12', password: '[redacted]' } });
    expect(config.signing.password?.reveal()).toBe(password);
  });

  it('is not in the server logger output (pino redaction)', async () => {
    const lines: string[] = [];
    const logStream = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const app = await buildServer(config, { logStream });
    try {
      app.log.info({ config }, 'the whole config');
      app.log.info({ signing: { password } }, 'a password one level down');
      app.log.info({ password }, 'a password at the top');
      app.log.info({ options: { signing: { password } } }, 'a password two levels down');
      app.log.info(
        { req: { method: 'GET', headers: { authorization: 'Bearer tok-secret', 'x-api-key': 'key-secret', cookie: 's=cookie-secret' } } },
        'request headers',
      );
      app.log.info({ headers: { authorization: 'Basic basic-secret', 'x-api-key': 'key2-secret' } }, 'bare headers');
      const response = await app.inject({
        method: 'GET',
        url: '/health?egn=8001010000',
        headers: { authorization: 'Bearer inject-secret', 'x-api-key': 'inject-key-secret' },
      });
      expect(response.statusCode).toBe(200);
    } finally {
      await app.close();
    }
    const output = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(7);
    // The request itself: one line when answered, with method, path without its query, status and time.
    const requestLines = lines.map((l) => JSON.parse(l)).filter((l) => l.req?.url === '/health');
    expect(requestLines).toHaveLength(1);
    expect(requestLines[0]).toMatchObject({ msg: 'request completed', req: { method: 'GET', url: '/health' }, res: { statusCode: 200 } });
    expect(typeof requestLines[0].responseTime).toBe('number');
    for (const secret of [
      password,
      'file-pw-also-secret',
      'redis-pw-secret',
      'tok-secret',
      'key-secret',
      'cookie-secret',
      'basic-secret',
      'key2-secret',
      'inject-secret',
      'inject-key-secret',
      '8001010000',
    ]) {
      expect(output).not.toContain(secret);
    }
    expect(output).toContain('[redacted]');
    expect(output).toContain('"url":"/health"');
  });
});
