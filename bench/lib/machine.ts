/**
 * A description of the machine a benchmark ran on, for the top of its report.
 */
import { spawnSync } from 'node:child_process';
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
