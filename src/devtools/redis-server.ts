import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/**
 * A private redis-server on a free loopback port, for tests, the demo and benchmarks: real Redis, nothing kept
 * on disk, stopped with the process that started it. Fails with an install hint when redis-server is missing.
 */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** FLUSHALL: what an operator's mistake or a Redis restart without persistence does. */
  flushAll(): Promise<void>;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startRedisServer(): Promise<RedisServer> {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    throw new Error('redis-server is not installed: apt-get install redis-server (npm test installs it for you)');
  }
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-redis-'));
  const child: ChildProcess = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--maxmemory-policy', 'noeviction', '--loglevel', 'warning',
  ], { stdio: 'ignore' });
  const stopOnExit = () => child.kill('SIGKILL');
  process.once('exit', stopOnExit);
  await waitForPort(port, 10_000);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    flushAll: () => command(port, 'FLUSHALL'),
    stop: async () => {
      process.off('exit', stopOnExit);
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((resolve) => child.once('exit', resolve));
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await command(port, 'PING');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${port}: ${(error as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** One inline command over RESP; enough for PING and FLUSHALL without a client library. */
function command(port: number, cmd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.setTimeout(2000);
    socket.once('error', reject);
    socket.once('timeout', () => { socket.destroy(); reject(new Error('timeout')); });
    socket.once('data', (data) => {
      socket.end();
      const text = data.toString();
      if (text.startsWith('-')) reject(new Error(text.trim()));
      else resolve();
    });
    socket.write(`${cmd}\r\n`);
  });
}
