/**
 * When reconcile passes run: never two at once; pokes during a pass coalesce into one more
 * pass; a failed pass is retried with backoff; nothing runs after `stop` (and `settle` returns
 * then too). What a pass does is the caller's (agent/reconciler.ts).
 */
import { PASS_BACKOFF } from '../core/base/backoff.js';
import type { Clock } from '../core/base/clock.js';
import { Backoff } from './retry.js';

export class PassLoop {
  private pending = false;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private periodic: NodeJS.Timeout | undefined;
  private stopped = false;
  /** When the pass in flight started (0: none); the watchdog's view of a stuck loop. */
  private startedAtMs = 0;
  private readonly backoff = new Backoff(PASS_BACKOFF);

  /** `pass` resolves true when everything converged, false when something must be retried. */
  constructor(
    private readonly pass: () => Promise<boolean>,
    private readonly clock: Clock,
  ) {}

  get runningSinceMs(): number {
    return this.startedAtMs;
  }

  /** Run a pass after `delayMs` (or with the pass in flight's successor); a retry waits for its backoff. */
  poke(delayMs: number): void {
    if (this.stopped) return;
    this.pending = true;
    if (this.running || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.loop();
    }, delayMs);
  }

  /** Call `tick` every `everyMs` until stopped (unref'd: it never keeps the process alive). */
  every(everyMs: number, tick: () => void): void {
    clearInterval(this.periodic);
    this.periodic = setInterval(tick, everyMs);
    this.periodic.unref();
  }

  /** Resolves once no pass is running, pending or scheduled (a retry included), or on stop. */
  async settle(): Promise<void> {
    while (!this.stopped && (this.running || this.pending || this.timer))
      await (this.running ?? new Promise((r) => setTimeout(r, 5)));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    clearInterval(this.periodic);
    await this.running;
  }

  private loop(): void {
    if (this.running || this.stopped) return;
    this.running = (async () => {
      let retry = false;
      while (this.pending && !this.stopped) {
        this.pending = false;
        this.startedAtMs = this.clock.now();
        retry = !(await this.pass());
        this.startedAtMs = 0;
      }
      if (retry) this.scheduleRetry();
      else this.backoff.reset();
    })().finally(() => {
      this.running = undefined;
      this.startedAtMs = 0;
      if (this.pending && !this.stopped && !this.timer) this.poke(0);
    });
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    this.pending = true;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.loop();
    }, this.backoff.next());
  }
}
