/**
 * When to try again. The default mirrors the protocol's practice (first retry 15 minutes after the first
 * attempt, doubling, 10 attempts in all: about 10.6 days), with jitter so a peer coming back is not hit by every
 * gateway at once. Every number is configuration, per destination.
 */
export interface RetryPolicy {
  /** Delay before the first retry. */
  readonly firstDelayMs: number;
  readonly factor: number;
  /** Attempts in all, the first one included; then the delivery is dead. */
  readonly maxAttempts: number;
  /** Fraction of the delay added or removed at random (0.1 = ±10 %). */
  readonly jitter: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  firstDelayMs: 15 * 60_000,
  factor: 2,
  maxAttempts: 10,
  jitter: 0.1,
  maxDelayMs: 7 * 24 * 3600_000,
};

/**
 * The delay after the `attempt`-th failed attempt (1-based), or null when the budget is spent.
 * Pure: `random` is injectable so tests can pin it.
 */
export function retryDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number | null {
  if (attempt >= policy.maxAttempts) return null;
  const base = Math.min(policy.firstDelayMs * policy.factor ** (attempt - 1), policy.maxDelayMs);
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}
