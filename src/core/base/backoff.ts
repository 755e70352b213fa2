/**
 * The one backoff policy: exponential with "equal jitter" (half the delay fixed, half random),
 * so hosts that failed together (an etcd outage) do not retry in lock-step. Pure: the caller
 * owns the attempt count, the rng and the sleeping (agent/retry.ts).
 */

export interface BackoffPolicy {
  /** Delay before the first retry (before jitter). */
  readonly baseMs: number;
  /** No delay exceeds this. */
  readonly maxMs: number;
}

/** etcd calls and start-up steps. */
export const ETCD_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 5000 };
/** Failed kernel changes or file writes, retried by another reconcile pass. */
export const PASS_BACKOFF: BackoffPolicy = { baseMs: 250, maxMs: 5000 };
/** Re-listing an etcd prefix after a failed list. */
export const LIST_BACKOFF: BackoffPolicy = { baseMs: 100, maxMs: 5000 };

/** The delay before retry number `attempt` (0-based), with `rng()` in [0, 1). */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, rng: () => number): number {
  const capped = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(capped / 2 + (capped / 2) * rng());
}
