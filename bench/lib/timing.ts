/**
 * Timing helpers: repeated samples (sync and async), fixed-duration throughput loops and whole-process wall
 * times of external commands. Times are in milliseconds from process.hrtime.bigint().
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export interface SampleOptions {
  /** Measured runs. */
  runs: number;
  /** Unmeasured runs first (JIT, caches, page cache). Default 1. */
  warmup?: number;
  /** Called (untimed) before every run, e.g. to delete an output file. */
  before?: () => void;
}

/** Times `fn` `runs` times after `warmup` unmeasured runs; returns the samples in ms. */
export function sampleSync(fn: () => unknown, opts: SampleOptions): number[] {
  for (let i = 0; i < (opts.warmup ?? 1); i++) {
    opts.before?.();
    fn();
  }
  const out: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    opts.before?.();
    const t0 = nowMs();
    fn();
    out.push(nowMs() - t0);
  }
  return out;
}

export async function sampleAsync(fn: () => Promise<unknown>, opts: SampleOptions): Promise<number[]> {
  for (let i = 0; i < (opts.warmup ?? 1); i++) {
    opts.before?.();
    await fn();
  }
  const out: number[] = [];
  for (let i = 0; i < opts.runs; i++) {
    opts.before?.();
    const t0 = nowMs();
    await fn();
    out.push(nowMs() - t0);
  }
  return out;
}

export interface Throughput {
  ops: number;
  seconds: number;
  opsPerSecond: number;
}

/**
 * Calls `fn` in a tight loop for about `seconds` (after `warmupSeconds` unmeasured) and reports ops/s. Runs on the
 * calling thread only, so for synchronous work it measures one core.
 */
export function throughputSync(fn: () => unknown, seconds: number, warmupSeconds = Math.min(0.5, seconds / 4)): Throughput {
  const loop = (s: number): { ops: number; ms: number } => {
    const t0 = nowMs();
    const end = t0 + s * 1000;
    let ops = 0;
    let t = t0;
    while (t < end) {
      // Check the clock every few calls only, so the clock does not dominate sub-microsecond work.
      for (let i = 0; i < 8; i++) fn();
      ops += 8;
      t = nowMs();
    }
    return { ops, ms: t - t0 };
  };
  if (warmupSeconds > 0) loop(warmupSeconds);
  const { ops, ms } = loop(seconds);
  return { ops, seconds: ms / 1000, opsPerSecond: ops / (ms / 1000) };
}

export interface CommandRun {
  ms: number;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and returns its whole-process wall time (spawn to exit), start-up included. */
export function timeCommand(cmd: string, args: readonly string[], options: SpawnSyncOptions = {}): CommandRun {
  const t0 = nowMs();
  const r = spawnSync(cmd, args as string[], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  const ms = nowMs() - t0;
  if (r.error) throw r.error;
  return { ms, status: r.status, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** Like timeCommand, repeated; throws with the command's output if any run exits non-zero. */
export function sampleCommand(cmd: string, args: readonly string[], opts: SampleOptions & { spawn?: SpawnSyncOptions }): number[] {
  const once = (): number => {
    opts.before?.();
    const r = timeCommand(cmd, args, opts.spawn);
    if (r.status !== 0) {
      throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}\n${r.stdout}\n${r.stderr}`.trim());
    }
    return r.ms;
  };
  for (let i = 0; i < (opts.warmup ?? 1); i++) once();
  const out: number[] = [];
  for (let i = 0; i < opts.runs; i++) out.push(once());
  return out;
}

let gcFn: (() => void) | undefined | null = null;

/** Runs a full GC when possible (exposes gc at runtime if node was not started with --expose-gc). */
export async function forceGc(): Promise<void> {
  if (gcFn === null) {
    gcFn = (globalThis as { gc?: () => void }).gc;
    if (!gcFn) {
      try {
        const v8 = await import('node:v8');
        const vm = await import('node:vm');
        v8.setFlagsFromString('--expose-gc');
        gcFn = vm.runInNewContext('gc') as () => void;
      } catch {
        gcFn = undefined;
      }
    }
  }
  gcFn?.();
}
