import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { GATEWAY_VERSION } from '../src/api/server.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
// The tsx binary that `npx tsx` resolves to. Called directly because npx (npm 11) does not pass SIGTERM on to the
// program: npm runs it under `sh -c`, which dies on the signal and leaves the server running as an orphan. tsx
// itself relays SIGINT/SIGTERM to the Node process and exits with its code, which is what this test checks.
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const dataDir = mkdtempSync(path.join(tmpdir(), 'seos-cli-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** An environment that does not inherit a config file, Redis URL or host from the developer's shell. */
function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, SEOS_GATEWAY_CONFIG: '', REDIS_URL: '', HOST: '127.0.0.1', DATA_DIR: dataDir, ...extra };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForHealth(url: string, child: ChildProcess, timeoutMs: number): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited early (${child.exitCode ?? child.signalCode})`);
    try {
      return await fetch(url);
    } catch {
      if (Date.now() > deadline) throw new Error(`no answer from ${url} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('seos-gateway serve as a real process', () => {
  let child: ChildProcess | undefined;

  afterEach(() => {
    // A failed test must not leave a server behind: the child leads its own process group.
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  it('answers /health and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    child = spawn(tsx, ['src/cli/main.ts', 'serve'], {
      cwd: root,
      env: cliEnv({ PORT: String(port), LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child!.on('exit', (code, signal) => resolve({ code, signal })),
    );

    const response = await waitForHealth(`http://127.0.0.1:${port}/health`, child, 20_000);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', version: GATEWAY_VERSION });

    child.kill('SIGTERM');
    const { code, signal } = await exited;
    // Without a "self" section only /health runs, and the operator is told so (nothing else on stderr).
    expect({ code, signal, stderr }).toEqual({
      code: 0, signal: null,
      stderr: 'внимание: липсва раздел "self" в конфигурацията; стартира се само /health (warning: no "self" section, only /health runs)\n',
    });

    const logLines = stdout.trim().split('\n').map((line) => JSON.parse(line) as { msg: string; pid: number });
    expect(logLines.map((line) => line.msg)).toEqual(expect.arrayContaining([`Server listening at http://127.0.0.1:${port}`, 'shutting down']));
    // The Node process tsx started (it logs its own pid) is gone too, not orphaned.
    expect(isAlive(logLines[0].pid)).toBe(false);
  });

  it('reports a bad configuration in Bulgarian and English and exits 1', () => {
    const result = spawnSync(tsx, ['src/cli/main.ts', 'serve'], {
      cwd: root,
      env: cliEnv({ PORT: '70000' }),
      encoding: 'utf8',
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('грешка: Конфигурацията е невалидна. ($.port (from environment PORT): expected an integer');
    expect(result.stderr).toMatch(/^error: GW_ERR_CONFIG_INVALID The configuration file or environment is invalid\. \$\.port/m);
  });

  it('exits 2 on a usage error and 0 for --version', () => {
    const unknown = spawnSync(tsx, ['src/cli/main.ts', 'no-such-command'], { cwd: root, env: cliEnv({}), encoding: 'utf8' });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command/);

    const version = spawnSync(tsx, ['src/cli/main.ts', '--version'], { cwd: root, env: cliEnv({}), encoding: 'utf8' });
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toBe(GATEWAY_VERSION);
  });
});
