/**
 * Peak-memory measurement in a fresh child process, so one case's garbage and buffers never leak into another's.
 *
 * Parent: `runRssProbe(script, args)` starts `node --expose-gc --import tsx <script> ...args` and reads the JSON
 * line the child prints with `RssProbe.finish()`.
 *
 * Child: `const probe = RssProbe.start()` after the modules and fixtures it must not count are loaded (this runs
 * a full GC, records process.memoryUsage().rss as the baseline and, on Linux, resets the kernel's peak-RSS mark
 * through /proc/self/clear_refs so whatever start-up touched before does not count), then the work, then
 * `probe.finish(extra)`. Peak = VmHWM from /proc/self/status when the reset worked, otherwise
 * process.resourceUsage().maxRSS (the whole process lifetime, so an upper bound). Growth = peak - baseline.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const MARKER = '@@RSS_PROBE@@';

export interface RssReport {
  /** RSS after start() (bytes). */
  baseline: number;
  /** Highest RSS seen between start() and finish() (bytes; see `peakSource`). */
  peak: number;
  /** peak - baseline (bytes). */
  growth: number;
  /** 'VmHWM' when the peak mark was reset at start(); 'maxRSS' when it is the process-lifetime peak. */
  peakSource: 'VmHWM' | 'maxRSS';
  /** Process-lifetime maxRSS at finish (bytes), for reference. */
  lifetimeMaxRss: number;
  /** Anything the child adds (timings, sizes...). */
  extra: Record<string, unknown>;
}

function readStatusKiB(field: string): number | undefined {
  try {
    const m = fs.readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function fullGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

export class RssProbe {
  private constructor(
    readonly baseline: number,
    private readonly resetWorked: boolean,
  ) {}

  static start(): RssProbe {
    fullGc();
    let reset = false;
    try {
      fs.writeFileSync('/proc/self/clear_refs', '5');
      reset = readStatusKiB('VmHWM') !== undefined;
    } catch {
      reset = false;
    }
    return new RssProbe(process.memoryUsage().rss, reset);
  }

  /** Computes the report and prints it on stdout for the parent. */
  finish(extra: Record<string, unknown> = {}): RssReport {
    const lifetimeMaxRss = process.resourceUsage().maxRSS * 1024;
    const hwm = this.resetWorked ? readStatusKiB('VmHWM') : undefined;
    const peak = hwm !== undefined ? hwm * 1024 : lifetimeMaxRss;
    const report: RssReport = {
      baseline: this.baseline,
      peak,
      growth: peak - this.baseline,
      peakSource: hwm !== undefined ? 'VmHWM' : 'maxRSS',
      lifetimeMaxRss,
      extra,
    };
    process.stdout.write(`${MARKER}${JSON.stringify(report)}\n`);
    return report;
  }
}

/** The URL of tsx's loader as seen from this file, or plain 'tsx' when it cannot be resolved. */
function tsxLoader(): string {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
}

export interface RunProbeOptions {
  cwd?: string;
  /** Extra node flags (e.g. --max-old-space-size=4096). */
  nodeFlags?: string[];
  timeoutMs?: number;
}

/** Runs `script` (TypeScript, via tsx) in a fresh node process and returns the report it printed. */
export function runRssProbe(script: string, args: readonly string[], opts: RunProbeOptions = {}): RssReport {
  const argv = ['--expose-gc', ...(opts.nodeFlags ?? []), '--import', tsxLoader(), script, ...args];
  const r = spawnSync(process.execPath, argv, {
    cwd: opts.cwd,
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 10 * 60 * 1000,
  });
  if (r.error) throw r.error;
  const line = String(r.stdout ?? '').split('\n').find((l) => l.startsWith(MARKER));
  if (r.status !== 0 || !line) {
    throw new Error(`RSS probe ${script} ${args.join(' ')} failed (exit ${r.status}, signal ${r.signal})\n${r.stdout}\n${r.stderr}`.trim());
  }
  return JSON.parse(line.slice(MARKER.length)) as RssReport;
}
