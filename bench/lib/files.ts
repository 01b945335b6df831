/**
 * Temporary files for benchmarks: a temp dir that is removed on exit (also on Ctrl-C) and random files written in
 * chunks, so a 200 MiB fixture never needs 200 MiB of memory.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dirs = new Set<string>();
let hooked = false;

function removeAll(): void {
  for (const d of dirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      // best effort
    }
  }
  dirs.clear();
}

/** mkdtemp under os.tmpdir(); removed by removeTempDirs(), at exit and on SIGINT/SIGTERM. */
export function makeTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.add(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', removeAll);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        removeAll();
        process.exit(130);
      });
    }
  }
  return dir;
}

export function removeTempDirs(): void {
  removeAll();
}

/** Writes `size` random bytes to `file` in 4 MiB chunks. */
export function writeRandomFile(file: string, size: number): void {
  const fd = fs.openSync(file, 'w');
  try {
    const chunk = 4 * 1024 * 1024;
    for (let done = 0; done < size; done += chunk) {
      fs.writeSync(fd, crypto.randomBytes(Math.min(chunk, size - done)));
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // best effort
  }
}

/** Size in bytes from "10k", "1m", "20MiB", "200m", "512" (binary units). */
export function parseSize(text: string): number {
  const m = text.trim().toLowerCase().match(/^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/);
  if (!m) throw new Error(`not a size: ${text}`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2] as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * mult);
}

/** "10 KiB", "1 MiB", "200 MiB" for round sizes. */
export function sizeLabel(bytes: number): string {
  if (bytes >= 1024 ** 3 && bytes % 1024 ** 3 === 0) return `${bytes / 1024 ** 3} GiB`;
  if (bytes >= 1024 ** 2 && bytes % 1024 ** 2 === 0) return `${bytes / 1024 ** 2} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}
