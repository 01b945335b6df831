import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * `npm run demo` as a user runs it: scripts/demo.ts in its own process, from the repository root, with its data
 * (demo certificates, two gateways' data dirs, configs, log) under a temp dir through SEOS_DEMO_DIR, and its own
 * private redis-server (REDIS_URL removed from the environment).
 */
const repo = path.resolve(import.meta.dirname, '..');
const demoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seos-demo-'));

afterAll(() => fs.rmSync(demoDir, { recursive: true, force: true }));

function runDemo(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, SEOS_DEMO_DIR: demoDir };
  delete env.REDIS_URL;
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(repo, 'node_modules/.bin/tsx'), ['scripts/demo.ts'], { cwd: repo, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run demo', () => {
  it('sends a letter from Алфа to Бета, registers it there, shows DS_REGISTERED at Алфа and verifies both delivery logs', async () => {
    const run = await runDemo();
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toContain('DEMO certificates, NOT for production');
    expect(run.stdout).toContain('production uses HTTPS with mutual TLS');
    expect(run.stdout).toMatch(/Алфа: DS_WAIT_REGISTRATION/);
    expect(run.stdout).toMatch(/писмо\.txt, \d+ байта/);
    expect(run.stdout).toContain('= изпратеното (equal to what was sent)');
    expect(run.stdout).toMatch(/Алфа: DS_REGISTERED - регистриран при Бета под № ОБ-94-00-1/);
    expect(run.stdout).toMatch(/Алфа: наред \(OK\)/);
    expect(run.stdout).toMatch(/Бета: наред \(OK\)/);
    expect(run.stdout).toContain('(the evidence holds)');
    // The gateways' operational logs go to the file, not the terminal.
    expect(run.stdout).not.toContain('"level"');
    expect(fs.statSync(path.join(demoDir, 'gateway.log')).size).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(demoDir, 'certs', 'manifest.json'))).toBe(true);
  }, 120_000);

  it('runs again from clean gateway data, reusing the demo certificates', async () => {
    const manifest = fs.readFileSync(path.join(demoDir, 'certs', 'manifest.json'), 'utf8');
    const run = await runDemo();
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).not.toContain('making demo certificates');
    // Fresh databases: the first received document gets the first receipt number again.
    expect(run.stdout).toContain('SEOS-000001');
    expect(run.stdout).toMatch(/Алфа: DS_REGISTERED/);
    expect(fs.readFileSync(path.join(demoDir, 'certs', 'manifest.json'), 'utf8')).toBe(manifest);
  }, 120_000);
});
