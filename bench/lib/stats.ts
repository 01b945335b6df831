/**
 * Small statistics helpers for benchmarks. All functions take samples in any unit and never mutate their input.
 */

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** Percentile with linear interpolation between closest ranks; p in [0, 100]. NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = sorted(xs);
  const rank = (Math.min(Math.max(p, 0), 100) / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export interface Summary {
  n: number;
  min: number;
  p10: number;
  median: number;
  p90: number;
  max: number;
  mean: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = sorted(xs);
  return {
    n: s.length,
    min: s.length ? s[0] : Number.NaN,
    p10: percentile(s, 10),
    median: percentile(s, 50),
    p90: percentile(s, 90),
    max: s.length ? s[s.length - 1] : Number.NaN,
    mean: mean(s),
  };
}
