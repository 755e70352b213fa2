/**
 * Which log lines about untrusted writes are written in full, and when the rest are summed up.
 * Any etcd writer decides how often weft sees a malformed lease or a foreign value on its own
 * key; one line per write and per host let a writer flood every host's journal. So a key is
 * logged in full the first time (and again only after `perKeyMs`), at most `burst` lines are
 * written in full per `summaryEveryMs` whatever the keys, and everything held back is counted
 * and reported in one summary line per period.
 *
 * Pure: time is a parameter (`nowMs`); the agent runs the timer that asks for the summary.
 */

export interface LogLimitOptions {
  /** A key is logged in full at most once per this long. */
  readonly perKeyMs: number;
  /** At most this many lines in full per period, whatever their keys. */
  readonly burst: number;
  /** The period: held-back events are summarised at most this often. */
  readonly summaryEveryMs: number;
  /** At most this many keys are remembered; past it, new keys are only counted. */
  readonly maxKeys: number;
}

/** One hour per key, 20 lines a minute, 1,000 keys remembered (the quarantine's own cap). */
export const DEFAULT_LOG_LIMITS: LogLimitOptions = Object.freeze({
  perKeyMs: 3_600_000,
  burst: 20,
  summaryEveryMs: 60_000,
  maxKeys: 1000,
});

/** What was held back since the last summary. */
export interface LogSummary {
  /** Events not logged in full. */
  readonly events: number;
  /** Distinct keys among them (counted up to `maxKeys`). */
  readonly keys: number;
  /** The last key held back (for a first look; the counts say how many more). */
  readonly lastKey: string;
  /** How long the summary covers. */
  readonly overSeconds: number;
}

export class LogLimiter {
  /** When each key was last logged in full. */
  private readonly loggedAtMs = new Map<string, number>();
  private periodStartMs: number | undefined;
  private inFull = 0;
  private held = 0;
  /** When the first event held back since the last summary came. */
  private firstHeldMs = 0;
  private readonly heldKeys = new Set<string>();
  private lastHeld = '';

  constructor(private readonly o: LogLimitOptions = DEFAULT_LOG_LIMITS) {}

  /** An event about `key` at `nowMs`: true to log it in full, false when it is held back (counted). */
  note(key: string, nowMs: number): boolean {
    if (this.periodStartMs === undefined || nowMs - this.periodStartMs >= this.o.summaryEveryMs) {
      this.periodStartMs = nowMs;
      this.inFull = 0;
    }
    const last = this.loggedAtMs.get(key);
    const keyDue = last === undefined ? this.remember(nowMs) : nowMs - last >= this.o.perKeyMs;
    if (keyDue && this.inFull < this.o.burst) {
      this.inFull++;
      this.loggedAtMs.set(key, nowMs);
      return true;
    }
    if (this.held === 0) this.firstHeldMs = nowMs;
    this.held++;
    this.lastHeld = key;
    if (this.heldKeys.size < this.o.maxKeys) this.heldKeys.add(key);
    return false;
  }

  /** Room for one more key (forgetting those logged longer than perKeyMs ago when full)? */
  private remember(nowMs: number): boolean {
    if (this.loggedAtMs.size < this.o.maxKeys) return true;
    for (const [k, at] of this.loggedAtMs) if (nowMs - at >= this.o.perKeyMs) this.loggedAtMs.delete(k);
    return this.loggedAtMs.size < this.o.maxKeys;
  }

  /** When the summary of what is held back is due (a period after the first of it), or undefined when nothing is. */
  summaryDueAtMs(): number | undefined {
    return this.held === 0 ? undefined : this.firstHeldMs + this.o.summaryEveryMs;
  }

  /**
   * The summary of what was held back, once due (undefined before, or when nothing was). Two
   * summaries are at least a period apart: the next one covers events held after this one.
   * `force`: now, due or not (a stop: what was held back is not lost).
   */
  summary(nowMs: number, force = false): LogSummary | undefined {
    const due = this.summaryDueAtMs();
    if (due === undefined || (nowMs < due && !force)) return undefined;
    const s: LogSummary = {
      events: this.held,
      keys: this.heldKeys.size,
      lastKey: this.lastHeld,
      overSeconds: Math.round((nowMs - this.firstHeldMs) / 1000),
    };
    this.held = 0;
    this.heldKeys.clear();
    this.lastHeld = '';
    return s;
  }
}
