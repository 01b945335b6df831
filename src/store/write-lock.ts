/**
 * One writer at a time among the connections of one process: serve's own and its delivery thread's. SQLite lets
 * only one connection write at a time, and one that finds the database locked waits in SQLite's busy handler, which
 * sleeps 1, 2, 5, 10, 15 ms and longer before it tries again, however soon the other connection commits. Under the
 * pipeline benchmark gateway A's API thread slept 448 times in ten seconds, its delivery thread 262 (a perf count
 * of the sleep calls), and each sleep of the API thread stops its event loop. Here the waiting thread blocks in
 * `Atomics.wait` and is woken by the commit that frees the lock: 207 and 35 sleeps were left, from waits the lock
 * does not cover (readers, the checkpoint worker).
 *
 * It only orders this process's connections: SQLite's own locking still decides, and still serves other processes
 * (a `seos-gateway worker`, the CLI). A thread that waits longer than WAIT_LIMIT_MS goes on without the lock and
 * leaves the wait to SQLite's busy handler, so a thread that died holding it costs a pause, never a deadlock.
 */
export class WriteLock {
  readonly #word: Int32Array;
  readonly #owner: number;
  readonly #waitLimitMs: number;

  /** `owner`: a number of its own for each thread that shares `buffer` (not 0). */
  constructor(buffer: SharedArrayBuffer, owner: number, options: { waitLimitMs?: number } = {}) {
    if (owner === FREE) throw new RangeError('owner 0 means free');
    this.#word = new Int32Array(buffer, 0, 1);
    this.#owner = owner;
    this.#waitLimitMs = options.waitLimitMs ?? WAIT_LIMIT_MS;
  }

  /** Runs `fn` holding the lock (at once when this thread holds it already). */
  hold<T>(fn: () => T): T {
    const word = this.#word;
    if (Atomics.load(word, 0) === this.#owner) return fn();
    const took = this.#acquire();
    try {
      return fn();
    } finally {
      if (took) {
        Atomics.store(word, 0, FREE);
        Atomics.notify(word, 0, 1);
      }
    }
  }

  #acquire(): boolean {
    const word = this.#word;
    const deadline = performance.now() + this.#waitLimitMs;
    for (;;) {
      const holder = Atomics.compareExchange(word, 0, FREE, this.#owner);
      if (holder === FREE) return true;
      const left = deadline - performance.now();
      if (left <= 0) return false;
      Atomics.wait(word, 0, holder, left);
    }
  }
}

/** A buffer for the threads of one process to share (`new WriteLock(buffer, owner)` in each). */
export function createWriteLockBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
}

/** Frees the lock if `owner` (a thread that has exited) still holds it, and wakes a waiter. */
export function releaseAbandonedWriteLock(buffer: SharedArrayBuffer, owner: number): void {
  const word = new Int32Array(buffer, 0, 1);
  if (Atomics.compareExchange(word, 0, owner, FREE) === owner) Atomics.notify(word, 0, 1);
}

const FREE = 0;
/** As long as SQLite's busy timeout (database.ts): after that, SQLite's own waiting takes over. */
const WAIT_LIMIT_MS = 5000;
