/**
 * A description of the machine a benchmark ran on, for the top of its report.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import os from 'node:os';

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  os: string;
  memory: string;
  loadAverage: string;
  date: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    loadAverage: os.loadavg().map((l) => l.toFixed(2)).join(' '),
    date: new Date().toISOString(),
  };
}

/** First line of `<cmd> <args>` output, or undefined when the command cannot be run. */
export function toolVersion(cmd: string, args: readonly string[] = ['--version']): string | undefined {
  const r = spawnSync(cmd, args as string[], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0];
}

/** The machine as markdown bullet lines, plus any extra tool versions. */
export function machineMarkdown(info: MachineInfo, tools: Record<string, string | undefined> = {}): string {
  const lines = [
    `- CPU: ${info.cpu} (${info.cores} cores available)`,
    `- Node: ${info.node}; OS: ${info.os}; memory: ${info.memory}`,
    ...Object.entries(tools).map(([name, v]) => `- ${name}: ${v ?? 'not found'}`),
    `- Load average at start: ${info.loadAverage}; date: ${info.date}`,
  ];
  return lines.join('\n');
}

/**
 * How fast this machine is right now: RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second on one thread, over
 * `ms`. On a shared VM the same code ran 25 % slower or faster from one minute to the next (measured:
 * 3,400/s and 4,250/s back to back), so a report gives this next to its times: compare runs at the same speed.
 */
export function rsaSignsPerSecond(ms = 1000): number {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const data = Buffer.alloc(100, 1);
  for (let i = 0; i < 20; i++) sign('sha256', data, privateKey); // warm-up
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    sign('sha256', data, privateKey);
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}
