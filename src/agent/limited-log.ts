/**
 * A warning about untrusted writes that no writer can turn into a flood: written in full for a
 * key's first event, then held back and counted, and summed up in one line per period
 * (core/base/log-limit.ts decides). The summary's timer runs only while something is held back and
 * never keeps the process alive; `stop` writes what is still held back.
 */
import type { Clock } from '../core/base/clock.js';
import { DEFAULT_LOG_LIMITS, type LogLimitOptions, LogLimiter } from '../core/base/log-limit.js';
import type { Logger } from '../adapters/log.js';

export interface LimitedLogDeps {
  readonly log: Logger;
  /** The `msg` of a line in full. */
  readonly msg: string;
  /** The `msg` of the summary line (`events`, `keys`, `lastKey`, `overSeconds`). */
  readonly summaryMsg: string;
  readonly clock: Clock;
  readonly limits?: LogLimitOptions;
}

export class LimitedLog {
  private readonly limiter: LogLimiter;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly d: LimitedLogDeps) {
    this.limiter = new LogLimiter(d.limits ?? DEFAULT_LOG_LIMITS);
  }

  /** Warn about `key` (in full, or counted for the summary). */
  warn(key: string, fields: Record<string, unknown>): void {
    if (this.limiter.note(key, this.d.clock.now())) this.d.log.warn(this.d.msg, fields);
    else this.arm();
  }

  private arm(): void {
    const due = this.limiter.summaryDueAtMs();
    if (this.timer || due === undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.flush(false);
      },
      Math.max(0, due - this.d.clock.now()),
    );
    this.timer.unref();
  }

  private flush(force: boolean): void {
    const s = this.limiter.summary(this.d.clock.now(), force);
    if (s) this.d.log.warn(this.d.summaryMsg, { ...s });
    else this.arm();
  }

  /** Stop the timer; what is held back is summarised now. */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flush(true);
  }
}
