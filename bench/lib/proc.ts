import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** Process and machine CPU readings from /proc, shared by the benchmarks that run gateways as processes. */
export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process (all its threads), in ms; `system` alone with { system: true }; NaN when gone. */
export function cpuMs(pid: number | undefined, options: { system?: boolean } = {}): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = options.system ? Number(fields[12]) : Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

/** CPU time every process on the machine has used (user, nice, system, irq, softirq, steal), in ms. */
export function machineBusyMs(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return ((f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) * 1000) / CLK_TCK;
}

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/** The redis-server process listening on `port` (it rewrites its title to "redis-server 127.0.0.1:<port>"). */
export function redisPid(port: number): number | undefined {
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (/(^|\/)redis-server\b/.test(cmd) && (cmd.includes(`:${port}`) || cmd.includes(`--port ${port}`))) return Number(name);
    } catch {
      // gone
    }
  }
  return undefined;
}
