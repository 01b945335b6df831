/**
 * Markdown output helpers: a table renderer and number formatters that keep columns readable.
 */

export type Align = 'left' | 'right' | 'center';

/** Renders a GitHub-flavoured markdown table; cells are padded so the raw text lines up too. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly string[])[], align: readonly Align[] = []): string {
  const esc = (cell: string): string => cell.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
  const head = headers.map(esc);
  const body = rows.map((r) => headers.map((_, i) => esc(r[i] ?? '')));
  const widths = head.map((h, i) => Math.max(3, h.length, ...body.map((r) => r[i].length)));
  const pad = (cell: string, i: number): string => {
    const a = align[i] ?? (i === 0 ? 'left' : 'right');
    return a === 'left' ? cell.padEnd(widths[i]) : a === 'right' ? cell.padStart(widths[i]) : cell.padStart(Math.floor((widths[i] + cell.length) / 2)).padEnd(widths[i]);
  };
  const rule = widths.map((w, i) => {
    const a = align[i] ?? (i === 0 ? 'left' : 'right');
    const dashes = '-'.repeat(w);
    return a === 'right' ? dashes.slice(1) + ':' : a === 'center' ? ':' + dashes.slice(2) + ':' : dashes;
  });
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(head.map(pad)), line(rule), ...body.map((r) => line(r.map(pad)))].join('\n');
}

const NA = 'n/a';

/** Milliseconds with precision that suits the magnitude: 0.042 ms, 3.21 ms, 95.3 ms, 1234 ms. */
export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return NA;
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/** A ratio such as 4.37x. */
export function fmtRatio(r: number | undefined, digits = 2): string {
  if (r === undefined || !Number.isFinite(r)) return NA;
  return `${r.toFixed(digits)}x`;
}

/** Bytes in KiB/MiB/GiB (binary units). */
export function fmtBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes)) return NA;
  const abs = Math.abs(bytes);
  if (abs < 1024) return `${bytes} B`;
  if (abs < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (abs < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** Operations per second with thousands separators. */
export function fmtRate(perSecond: number | undefined, unit = 'ops/s'): string {
  if (perSecond === undefined || !Number.isFinite(perSecond)) return NA;
  return `${Math.round(perSecond).toLocaleString('en-US')} ${unit}`;
}

/** Bytes per second as MiB/s. */
export function fmtThroughput(bytes: number, ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms <= 0) return NA;
  return `${(bytes / 1024 ** 2 / (ms / 1000)).toFixed(0)} MiB/s`;
}

export function passFail(ok: boolean | undefined): string {
  return ok === undefined ? 'n/a' : ok ? 'PASS' : 'FAIL';
}
