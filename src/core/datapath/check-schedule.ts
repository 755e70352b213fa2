/**
 * When a reconcile pass looks at what has no kernel events: the output files and forwarding
 * (every `everyMs`, the drift-check interval) and the iptables/ip6tables rules. The rules are
 * read like the files while their changes are not followed; while they are (xtables-monitor
 * reports every committed ruleset change), on a reported change and, as a safety net, every
 * `watchedEveryMs` only, which is what takes an idle host's CPU down (each read is an
 * `iptables-save` and an `ip6tables-save` process). New inputs (a lease, a config) force both.
 * Pure: times are passed in.
 */
export interface ChecksDue {
  /** Files and forwarding. */
  readonly checks: boolean;
  readonly rules: boolean;
  /** The rules follow new inputs (not drift). */
  readonly newRules: boolean;
}

export class CheckSchedule {
  private checksVersion = -1;
  private checksAtMs = -Infinity;
  private rulesVersion = -1;
  private rulesAtMs = -Infinity;
  /** Ruleset changes are followed (the monitor runs). */
  private watched = false;
  /** A ruleset change was reported since the rules were last read. */
  private dirty = true;

  constructor(
    private readonly everyMs: number,
    private readonly watchedEveryMs: number,
  ) {}

  /** `change`: read the rules soon; `up`: changes are followed from now on (read once); `down`: poll again. */
  rulesEvent(kind: 'change' | 'up' | 'down'): void {
    if (kind === 'down') {
      this.watched = false;
      return;
    }
    if (kind === 'up') this.watched = true;
    this.dirty = true;
  }

  /** What a pass starting at `nowMs` for inputs `version` must look at. Clears a reported change. */
  due(version: number, nowMs: number): ChecksDue {
    const newChecks = this.checksVersion !== version;
    const newRules = this.rulesVersion !== version;
    const checks = newChecks || nowMs - this.checksAtMs >= 0.9 * this.everyMs;
    const rules =
      newRules || this.dirty || (this.watched ? nowMs - this.rulesAtMs >= 0.9 * this.watchedEveryMs : checks);
    this.dirty = false;
    return { checks, rules, newRules };
  }

  /** The pass is done: what it looked at succeeded (`checksOk`, `rulesOk`) or is retried. */
  done(d: ChecksDue, version: number, nowMs: number, checksOk: boolean, rulesOk: boolean): void {
    if (d.checks && checksOk) {
      this.checksVersion = version;
      this.checksAtMs = nowMs;
    }
    if (d.rules) {
      if (rulesOk) {
        this.rulesVersion = version;
        this.rulesAtMs = nowMs;
      } else this.dirty = true;
    }
  }
}
