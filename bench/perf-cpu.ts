/**
 * On-CPU time of the gateway's threads by module, from a Linux `perf` recording. The V8 CPU profiles the other
 * benchmarks print count wall time: a thread that the kernel took off the CPU (to run the thread pool's RSA or
 * fsync on the same core, or the other process) is charged to whatever function it was in. `perf` samples only
 * threads that are running, so this is where the CPU goes.
 *
 *   NODE_OPTIONS=--perf-basic-prof npm run bench:exchange -- --rate 150 --open-seconds 30 --profile never &
 *   sleep 30; perf record -a -g -F 499 -o /tmp/perf.data -- sleep 12
 *   npx tsx bench/perf-cpu.ts /tmp/perf.data            # every busy thread, then the two busiest by module
 *   npx tsx bench/perf-cpu.ts /tmp/perf.data --tid 1234  # one thread by module and by function
 *
 * `--perf-basic-prof` makes Node write /tmp/perf-<pid>.map, which names JavaScript frames (it must be set before
 * the processes start; the benchmarks pass NODE_OPTIONS on to the gateways they spawn). Each sample is charged to
 * the nearest frame of our code (src/, bench/) or of a package (node_modules), walking up from where the CPU was:
 * SQLite, hashing or a syscall made for a module counts for that module.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

interface Sample { thread: string; frames: string[] }

const { values, positionals } = parseArgs({ allowPositionals: true, options: { tid: { type: 'string' }, top: { type: 'string', default: '25' } } });
const file = positionals[0];
if (!file) {
  process.stderr.write('usage: npx tsx bench/perf-cpu.ts <perf.data> [--tid N] [--top N]\n');
  process.exit(2);
}
const script = spawnSync('perf', ['script', '-i', file, '-F', 'comm,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1 << 30 });
if (script.status !== 0) {
  process.stderr.write(`perf script failed (is perf installed? apt-get install linux-perf): ${script.stderr || script.error}\n`);
  process.exit(2);
}

const samples: Sample[] = [];
let current: Sample | undefined;
for (const line of script.stdout.split('\n')) {
  if (line.trim() === '') {
    if (current) samples.push(current);
    current = undefined;
  } else if (!/^\s/.test(line)) {
    const [comm, tid] = line.trim().split(/\s+/);
    current = { thread: `${comm}:${tid}`, frames: [] };
  } else current?.frames.push(line.trim());
}
if (current) samples.push(current);

const OURS = /(?:file:\/\/)?\/[^\s]*?\/((?:src|bench)\/[^\s:]+):\d+/;
const PACKAGE = /(?:file:\/\/)?\/[^\s]*?\/node_modules\/((?:@[^/\s]+\/)?[^/\s]+)\//;
const FUNCTION = /JS:[*~^]?(\S*) /;

function chargeOf(frames: string[], byFunction: boolean): string {
  for (const frame of frames) {
    if (!frame.includes('JS:')) continue;
    const ours = OURS.exec(frame);
    if (ours) return byFunction ? `${ours[1]} ${FUNCTION.exec(frame)?.[1] || '(anonymous)'}` : ours[1];
    const pkg = PACKAGE.exec(frame);
    if (pkg) return `node_modules/${pkg[1]}`;
  }
  const leaf = frames[0] ?? '';
  if (leaf.includes('[kernel')) return '(kernel, outside any of our frames)';
  return '(node internals: event loop, HTTP, GC, ...)';
}

function table(rows: Array<[string, number]>, total: number, top: number): string {
  return rows.slice(0, top).map(([k, n]) => `${((100 * n) / total).toFixed(1).padStart(6)}%  ${k}`).join('\n');
}

function count<T>(items: T[], key: (t: T) => string): Array<[string, number]> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]);
}

const top = Number(values.top);
const threads = count(samples, (s) => s.thread).filter(([t]) => !t.startsWith('swapper'));
process.stdout.write(`${samples.length} samples; busiest threads (share of all samples, idle included):\n${table(threads, samples.length, 12)}\n`);
const chosen = values.tid ? threads.filter(([t]) => t.endsWith(`:${values.tid}`)) : threads.filter(([t]) => t.startsWith('node')).slice(0, 2);
for (const [thread, n] of chosen) {
  const mine = samples.filter((s) => s.thread === thread);
  process.stdout.write(`\n${thread}: ${n} samples, by module\n${table(count(mine, (s) => chargeOf(s.frames, false)), n, top)}\n`);
  if (values.tid) process.stdout.write(`\n${thread}: by function\n${table(count(mine, (s) => chargeOf(s.frames, true)), n, top)}\n`);
}
