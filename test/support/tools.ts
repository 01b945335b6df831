import { execFileSync, spawnSync } from 'node:child_process';

const INSTALL: Record<string, string> = {
  xmlsec1: 'apt-get install xmlsec1',
  xmllint: 'apt-get install libxml2-utils',
  openssl: 'apt-get install openssl',
  'redis-server': 'apt-get install redis-server',
};

/**
 * Interop tests need real system tools. A missing tool is a failure that says what to install (`npm test`
 * installs them itself), never a silent skip.
 */
export function requireTool(name: keyof typeof INSTALL): void {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (found.status !== 0) {
    throw new Error(`${name} is not installed; this test needs it. Install it with: ${INSTALL[name]} (npm test does this for you).`);
  }
}

export interface ToolResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function runTool(name: string, args: string[], input?: Buffer | string): ToolResult {
  const r = spawnSync(name, args, { input, maxBuffer: 1024 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
}

export function toolVersion(name: string, args = ['--version']): string {
  return execFileSync(name, args, { encoding: 'utf8' }).trim();
}
