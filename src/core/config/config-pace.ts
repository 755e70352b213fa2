/**
 * How fast a running host takes up a changed `<prefix>/config` (issue 28, finding 3). Any etcd
 * writer can change the config, and a change can restart Docker on every host (the outputs
 * hook): toggled every few seconds, the old follower applied each value back to back. Here a
 * stored config is taken up only once it has been stored unchanged for `holdDownMs`, and at
 * most one change per `minIntervalMs`; only the latest value is ever taken (a value replaced
 * before it was due is never applied). With live following off, a differing stored config is
 * only reported, at the same pace. Pure: the agent passes the time and runs the timer.
 */

/** The spec's pacing (host.followConfig, host.configHoldDown, host.configMinInterval). */
export interface PaceSettings {
  /** false: never apply a stored config live; report it (it is used at the next start). */
  readonly follow: boolean;
  /** A stored config is taken up once it has been unchanged this long. */
  readonly holdDownMs: number;
  /** At least this long between the end of one applied change and the start of the next. */
  readonly minIntervalMs: number;
}

/** Why a stored config that differs from the running one is not in use yet. */
export type PendingReason = 'hold-down' | 'rate-limit' | 'not-followed';

/** A stored config newer than the running one, as status shows it. */
export interface PendingConfig {
  readonly reason: PendingReason;
  /** Since when the stored value has been what it is. */
  readonly sinceMs: number;
  /** When it is taken up; absent when live following is off (it is used at the next start). */
  readonly applyAtMs?: number;
}

/** The stored value (null: the key was deleted). */
export type StoredText = string | null;

interface Pending {
  readonly text: StoredText;
  readonly sinceMs: number;
  /** Taken up (applied, judged unusable, or reported): not due again until the value changes. */
  readonly taken: boolean;
}

export class ConfigPace {
  private pending: Pending | undefined;
  /** When the last counted change ended (undefined: none since start). */
  private lastAppliedAtMs: number | undefined;
  private lastNoticeAtMs: number | undefined;

  constructor(readonly settings: PaceSettings) {}

  /**
   * The stored value is `stored` while the host runs `running`. Returns whether this starts a
   * pending change worth one log line: the first of a burst, at most one per `minIntervalMs`
   * (a writer flapping the value must not flood the log either). Never with following off:
   * the report when due is that host's one line.
   */
  observe(stored: StoredText, running: string, nowMs: number): boolean {
    if (stored === running) {
      this.pending = undefined;
      return false;
    }
    if (this.pending && this.pending.text === stored) return false;
    this.pending = { text: stored, sinceMs: nowMs, taken: false };
    const { follow, minIntervalMs } = this.settings;
    if (!follow || (this.lastNoticeAtMs !== undefined && nowMs - this.lastNoticeAtMs < minIntervalMs)) return false;
    this.lastNoticeAtMs = nowMs;
    return true;
  }

  /** When the pending value is due (hold-down and rate limit); undefined when nothing is. */
  dueAtMs(): number | undefined {
    const p = this.pending;
    if (!p || p.taken) return undefined;
    const stableAt = p.sinceMs + this.settings.holdDownMs;
    return this.lastAppliedAtMs === undefined
      ? stableAt
      : Math.max(stableAt, this.lastAppliedAtMs + this.settings.minIntervalMs);
  }

  /** The value to take up now, if one is due at `nowMs`; it is then not due again until it changes. */
  take(nowMs: number): { readonly text: StoredText } | undefined {
    const at = this.dueAtMs();
    if (!this.pending || at === undefined || nowMs < at) return undefined;
    this.pending = { ...this.pending, taken: true };
    return { text: this.pending.text };
  }

  /**
   * The value taken ended at `nowMs`. `counted`: it changed what the host runs (or, with
   * following off, was reported), so the next one waits `minIntervalMs`. A value judged
   * unusable or one that only reformats the config is not counted.
   */
  done(nowMs: number, counted: boolean): void {
    if (counted) this.lastAppliedAtMs = nowMs;
  }

  /** What status shows: the stored config not in use yet, why, and until when. */
  view(): PendingConfig | undefined {
    const p = this.pending;
    if (!p) return undefined;
    if (!this.settings.follow) return { reason: 'not-followed', sinceMs: p.sinceMs };
    const at = this.dueAtMs();
    if (at === undefined) return undefined;
    return {
      reason: at > p.sinceMs + this.settings.holdDownMs ? 'rate-limit' : 'hold-down',
      sinceMs: p.sinceMs,
      applyAtMs: at,
    };
  }
}
