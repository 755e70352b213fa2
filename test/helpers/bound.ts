/**
 * A bound on a whole e2e test, well under ava's own timeout, that says what the test was
 * waiting for when it gave up: the commands still running (with their last output lines) and
 * the conditions still being polled, plus the step the test had reached. A hang becomes a
 * readable failure instead of ava's "Timed out while running tests".
 *
 * The lab's teardown (registered with t.teardown) still runs after the bound fires, so
 * namespaces and processes are removed as on any other failure.
 */
import type { ExecutionContext } from 'ava';
import { pendingWaits } from './procs.js';

/** ava's own timeout (package.json "ava.timeout"); every bound must stay well under it. */
export const AVA_TIMEOUT_MS = 5 * 60_000;

/**
 * Bound the test to `ms`. Returns `step(text)`, which names the phase the test is in (shown
 * when the bound fires). The bound counts from this call, not from the last assertion.
 */
export function bounded(t: ExecutionContext, ms: number): (step: string) => void {
  if (ms > AVA_TIMEOUT_MS * 0.8)
    throw new Error(`a test bound of ${ms} ms is not well under ava's ${AVA_TIMEOUT_MS} ms`);
  let current = 'setting up';
  const started = Date.now();
  // ava's t.timeout is refreshed by every assertion; this timer is not, so the bound is real.
  t.timeout(ms + 30_000, `gave up after ${ms / 1000} s (fallback)`);
  const timer = setTimeout(() => {
    const message = `gave up: the test's bound of ${ms / 1000} s passed at step "${current}" (${Math.round((Date.now() - started) / 1000)} s in).\nWaiting for:\n${pendingWaits()}`;
    t.log(message);
    t.timeout(1, message);
  }, ms);
  timer.unref();
  t.teardown(() => {
    clearTimeout(timer);
  });
  return (step: string) => {
    current = step;
  };
}
