/**
 * The one retry helper (core/base/backoff.ts is the policy): `retrying` for a call that must
 * eventually succeed (start-up steps, etcd), `Backoff` for loops that schedule their own retry
 * (the reconciler, the fleet mirror). A failure that cannot heal (not retryable) is thrown at
 * once; every retried failure is logged with the delay before the next attempt.
 */
import { type BackoffPolicy, ETCD_BACKOFF, backoffDelayMs } from '../core/base/backoff.js';
import { WeftError } from '../core/base/errors.js';
import type { Logger } from '../adapters/log.js';

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

export const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Only weft's own errors say whether a retry can help; anything else is a bug: do not retry. */
export const isRetryable = (e: unknown): boolean => e instanceof WeftError && e.retryable;

/** Successive delays of one retry loop; `reset` after a success. */
export class Backoff {
  private attempt = 0;
  constructor(
    private readonly policy: BackoffPolicy,
    private readonly rng: () => number = Math.random,
  ) {}
  /** The delay before the next attempt (grows with each call). */
  next(): number {
    return backoffDelayMs(this.policy, this.attempt++, this.rng);
  }
  reset(): void {
    this.attempt = 0;
  }
  /** At least one failure since the last reset. */
  get failing(): boolean {
    return this.attempt > 0;
  }
}

export interface RetryOptions {
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly policy?: BackoffPolicy;
  readonly retryable?: (e: unknown) => boolean;
}

/** Run `fn` until it succeeds; retry retryable failures with backoff; rethrow the others (and on abort). */
export async function retrying<T>(what: string, fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const backoff = new Backoff(o.policy ?? ETCD_BACKOFF);
  const stopped = (): boolean => o.signal.aborted;
  for (;;) {
    // Stopping: never start (or retry) the work; the caller's stop path takes over.
    if (stopped()) throw new WeftError('E_ABORTED', `stopped before it could ${what}`);
    try {
      return await fn();
    } catch (e) {
      if (stopped() || !(o.retryable ?? isRetryable)(e)) throw e;
      const retryInMs = backoff.next();
      o.log.warn(`cannot ${what} yet; retrying`, { error: message(e), retryInMs });
      await sleep(retryInMs, o.signal);
    }
  }
}

/** `p`'s value, or undefined when it has not settled within `ms` (it keeps running). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => {
          r(undefined);
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
