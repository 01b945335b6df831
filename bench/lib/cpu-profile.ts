import path from 'node:path';

/**
 * CPU profiles (`--cpu-prof`, or the inspector's Profiler) summarized for the benchmark reports: self time per
 * function and per area of the code, cut to a window.
 */
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  byArea: Array<[string, number]>;
  byFunction: Array<[string, number]>;
  /** The biggest functions no area claimed, so the table hides nothing. */
  unclassified: Array<[string, number]>;
}

/**
 * Native functions (no script URL) are classified by the script that called them: `run` is a SQLite statement
 * when better-sqlite3 or our store calls it but an RSA signature when node:crypto does, `writeBuffer` a file
 * write from node:fs but a socket write from node:net.
 */
const NATIVE_CALLER_AREAS: Array<[RegExp, string]> = [
  [/^(fsync|fdatasync|fsyncSync) /, 'fsync (content store)'],
  [/ (node:fs|node:internal\/fs\/)/, 'node: fs syscalls (open, write, rename, mkdir, stat)'],
  [/better-sqlite3\/|\/src\/(store|delivery|audit)\/|\/src\/seos\/registry\//, 'SQLite statements and commits (better-sqlite3, native)'],
];

const AREAS: Array<[RegExp, string]> = [
  [/^\(idle\)/, '(idle: waiting for I/O)'],
  [/^\(garbage collector\)/, 'garbage collection'],
  [/^\(program\)/, '(program: native, unattributed)'],
  [/better-sqlite3\//, 'SQLite statements and commits (better-sqlite3, native)'],
  [/ node:internal\/crypto\/sig/, 'RSA sign / verify (node:crypto)'],
  [/ node:internal\/crypto\//, 'node:crypto: hashes, other'],
  [/\/src\/xmldsig\//, 'xmldsig: c14n, digests, signature'],
  [/\/src\/xml\//, 'xml: our parser'],
  [/\/src\/seos\/soap\//, 'seos: SOAP client / envelope'],
  [/\/src\/seos\//, 'seos: build, parse, receiver, outbound'],
  [/\/src\/api\//, 'api: routes, uploads, views'],
  [/\/src\/store\//, 'store: SQLite repositories, content store'],
  [/\/src\/delivery\//, 'delivery engine'],
  [/\/src\/audit\//, 'audit: delivery log (hash chain)'],
  [/\/src\//, 'gateway: other'],
  [/\/node_modules\/bullmq\//, 'BullMQ'],
  [/\/node_modules\/(ioredis|@ioredis|redis-parser|redis-errors|standard-as-callback|cluster-key-slot)\//, 'ioredis'],
  [/\/node_modules\/(msgpackr|msgpackr-extract)\//, 'BullMQ (msgpackr)'],
  [/\/node_modules\/(ajv|ajv-formats|fast-uri)\//, 'Ajv (JSON Schema validation)'],
  [/\/node_modules\/(fastify|avvio|find-my-way|light-my-request|@fastify|fast-json-stringify|fast-querystring|secure-json-parse|busboy)\//, 'Fastify'],
  [/\/node_modules\/(pino|sonic-boom|thread-stream|pino-std-serializers|fast-redact|@pinojs)\//, 'pino logging'],
  [/\/node_modules\/(@xmldom|xml-crypto|fast-xml-parser|strnum)\//, 'XML libraries'],
  [/\/node_modules\/node-forge\//, 'node-forge'],
  [/\/node_modules\/(tsx|esbuild|get-tsconfig)\//, 'tsx loader'],
  [/\/node_modules\//, 'other libraries'],
  [/ node:internal\/(http|_http|net|stream|streams|dns|tls|timers|async_hooks)|node:(http|net|stream|_http)|_http_/, 'node: HTTP, net, streams, timers'],
  [/ node:internal\/(fs|url|path)|node:fs/, 'node: fs (JS side)'],
  [/ node:internal\/(modules|vm|process\/esm)|node:internal\/main/, 'node: module loading'],
  [/^JSONParse|^JSONStringify|^parse \S*$|^stringify \S*$/, 'JSON parse / stringify'],
  [/ node:/, 'node: other internals'],
  [/\/bench\//, 'benchmark driver'],
  [/^\(root\)/, '(root)'],
];

/**
 * Self time per function and per area. `window` keeps only the samples taken in that part of the profile, in ms
 * counted back from its end (B's profile covers its whole life, start-up and shutdown included).
 */
export function summarizeProfile(
  profile: CpuProfile,
  options: { root: string; window?: { fromEndMs: number; toEndMs: number }; areas?: number; functions?: number },
): ProfileSummary {
  const { root, window } = options;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  const urlOf = (id: number) => byId.get(id)!.callFrame.url.replace(/^file:\/\//, '').replace(root, '');
  /** A native function's area: from the nearest caller that has a script URL (see NATIVE_CALLER_AREAS). */
  const nativeArea = (id: number, name: string): string | undefined => {
    let caller = parentOf.get(id);
    while (caller !== undefined && urlOf(caller) === '') caller = parentOf.get(caller);
    if (caller === undefined) return undefined;
    const key = `${name} ${urlOf(caller)}`;
    return NATIVE_CALLER_AREAS.find(([re]) => re.test(key))?.[1]
      ?? AREAS.find(([re]) => re.test(`${byId.get(caller!)!.callFrame.functionName} ${urlOf(caller!)}`))?.[1];
  };
  const self = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000; // the time until the next sample belongs to this one
    if (window) {
      const beforeEnd = (profile.endTime - t) / 1000;
      if (beforeEnd > window.fromEndMs || beforeEnd < window.toEndMs) continue;
    }
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  const unclassified = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, ms] of self) {
    const frame = byId.get(id)!.callFrame;
    const url = frame.url.replace(/^file:\/\//, '').replace(root, '');
    const key = `${frame.functionName || '(anonymous)'} ${url}`;
    const native = url === '' && !/^\((idle|garbage collector|program|root)\)/.test(frame.functionName);
    const area = native ? nativeArea(id, frame.functionName) : AREAS.find(([re]) => re.test(key))?.[1];
    totalMs += ms;
    if (area?.startsWith('(idle')) idleMs += ms;
    areas.set(area ?? 'other', (areas.get(area ?? 'other') ?? 0) + ms);
    const fnKey = `${frame.functionName || '(anonymous)'}${url ? ` ${path.basename(url)}:${frame.lineNumber + 1}` : ''}`;
    functions.set(fnKey, (functions.get(fnKey) ?? 0) + ms);
    if (!area) unclassified.set(key.trim(), (unclassified.get(key.trim()) ?? 0) + ms);
  }
  const top = (m: Map<string, number>, n: number) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  return {
    totalMs, idleMs, byArea: top(areas, options.areas ?? 18), byFunction: top(functions, options.functions ?? 21).filter(([k]) => !k.startsWith('(idle)')),
    unclassified: top(unclassified, 5),
  };
}
