import http from 'node:http';

/** One histogram as Prometheus exposes it: cumulative counts per upper bound (`le`, seconds), count and sum. */
export interface Histogram {
  readonly buckets: ReadonlyArray<readonly [le: number, cumulative: number]>;
  readonly count: number;
  readonly sum: number;
}

/** A histogram's summary over a window: bucket bounds, so percentiles read "at most" (no interpolation). */
export interface HistogramSummary {
  readonly count: number;
  readonly meanMs: number;
  /** Upper bound (ms) of the bucket holding the percentile; Infinity when it is past the last bound. */
  readonly p50AtMostMs: number;
  readonly p99AtMostMs: number;
  readonly maxAtMostMs: number;
}

/** Reads one unlabelled histogram from a gateway's `/metrics` on loopback. */
export async function scrapeHistogram(port: number, name: string): Promise<Histogram> {
  const text = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const buckets: Array<[number, number]> = [];
  let count = 0;
  let sum = 0;
  for (const line of text.split('\n')) {
    const bucket = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`).exec(line);
    if (bucket) buckets.push([bucket[1] === '+Inf' ? Infinity : Number(bucket[1]), Number(bucket[2])]);
    else if (line.startsWith(`${name}_count `)) count = Number(line.slice(name.length + 7));
    else if (line.startsWith(`${name}_sum `)) sum = Number(line.slice(name.length + 5));
  }
  return { buckets, count, sum };
}

/** What was observed between two scrapes of the same histogram. */
export function summarize(before: Histogram, after: Histogram): HistogramSummary {
  const count = after.count - before.count;
  const cumulative = after.buckets.map(([le, n], i) => [le, n - (before.buckets[i]?.[1] ?? 0)] as const);
  const atMost = (q: number) => {
    const needed = Math.ceil(q * count);
    const hit = cumulative.find(([, n]) => n >= needed);
    return (hit ? hit[0] : Infinity) * 1000;
  };
  return {
    count,
    meanMs: count > 0 ? ((after.sum - before.sum) / count) * 1000 : Number.NaN,
    p50AtMostMs: count > 0 ? atMost(0.5) : Number.NaN,
    p99AtMostMs: count > 0 ? atMost(0.99) : Number.NaN,
    maxAtMostMs: count > 0 ? atMost(1) : Number.NaN,
  };
}
