/**
 * Follows `<prefix>/config` while weft runs (issue 19 part 2): the key is mirrored (list +
 * watch, re-list on any break: agent/prefix-mirror.ts). A stored value that differs from the
 * running config is taken up at the pace core/config/config-pace.ts decides (once stable for the
 * hold-down, at most one change per interval, the latest value only); this part only runs the
 * timer. A value taken up is decoded as untrusted input (Go-exact, core/flannel/network-config.ts),
 * checked, and classified against the config the host runs (core/config/config-change.ts). A live
 * change or a move is handed to `apply`, one at a time, in order; an unusable one (invalid,
 * IPv4 off, unknown backend, refused on this host) leaves the host on the config it has, with
 * a warning in the log and in status until a usable one comes. With live following off
 * (host.followConfig: false) a differing stored config is only reported.
 */
import type { FlannelBackends } from '../core/flannel/backend-codec.js';
import type { SubnetKey } from '../core/flannel/subnet-key.js';
import type { Clock } from '../core/base/clock.js';
import { type NetworkConfig, checkNetworkConfig, diffConfigs } from '../core/flannel/config-check.js';
import { type ConfigChange, classifyConfigChange } from '../core/config/config-change.js';
import { ConfigPace, type PaceSettings, type PendingConfig } from '../core/config/config-pace.js';
import { WeftError } from '../core/base/errors.js';
import { capText } from '../core/base/escape.js';
import { ConfigError, decodeNetworkConfig } from '../core/flannel/network-config.js';
import type { KvStore } from '../core/fleet/store.js';
import type { Logger } from '../adapters/log.js';
import { PrefixMirror } from './prefix-mirror.js';
import { message, retrying } from './retry.js';
import { unreadReason } from '../core/fleet/store-limits.js';

/** The config a host runs: checked, and the text it came from (for the cached state). */
export interface RunningConfig {
  readonly config: NetworkConfig;
  readonly text: string;
}

export type ApplicableChange = Extract<ConfigChange, { kind: 'live' | 'move' }>;

export interface ConfigFollowerDeps {
  readonly store: KvStore;
  /** The config key, `<prefix>/config`. */
  readonly key: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Backend types this weft runs. */
  /** The registry (src/backends/index.ts): which backends this weft runs, and how a stored config is read. */
  readonly backends: FlannelBackends;
  readonly current: () => RunningConfig;
  readonly ownSubnet: () => SubnetKey | undefined;
  /** Apply a usable change (derive, republish, re-judge, new inputs). Throws when this host cannot use it. */
  readonly apply: (next: RunningConfig, change: ApplicableChange) => Promise<void>;
  /** How fast a stored change is taken up, or whether at all (the spec's host.followConfig, configHoldDown, configMinInterval). */
  readonly pace: PaceSettings;
  readonly clock?: Clock;
}

/**
 * How a value taken up ended: it changed what the host runs, it was reported (following off),
 * it was unusable, or it changed nothing. The first two count against the rate limit.
 */
type Outcome = 'changed' | 'reported' | 'rejected' | 'same';

const iso = (ms: number): string => new Date(ms).toISOString();

export class ConfigFollower {
  private readonly mirror: PrefixMirror;
  private readonly pace: ConfigPace;
  private readonly clock: Clock;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** Why the stored config is not the one running ('' when it is). */
  problem = '';
  /** `notFollowed`: differing stored configs reported while live following is off. */
  readonly stats = { applied: 0, rejected: 0, notFollowed: 0 };

  constructor(private readonly d: ConfigFollowerDeps) {
    this.pace = new ConfigPace(d.pace);
    this.clock = d.clock ?? Date;
    // The key alone, not every key starting with it: junk under `<prefix>/config…` is not read.
    this.mirror = new PrefixMirror({
      store: d.store,
      prefix: d.key,
      log: d.log,
      clock: this.clock,
      limits: { exact: true },
      onChange: (keys) => {
        if (keys.has(d.key)) this.observe();
      },
    });
  }

  /** Mirror the key (waiting out an etcd outage); a change since start-up is taken up like any other. */
  async start(): Promise<void> {
    await retrying('watch the network config', () => this.mirror.start(), { signal: this.d.signal, log: this.d.log });
    this.observe();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.mirror.stop();
    await this.chain;
  }

  /** The listing of the config key: failing since when (0: it follows etcd) and why. */
  get listing(): { readonly failingSinceMs: number; readonly lastError: string } {
    return this.mirror.stats;
  }
  get watchRestarts(): number {
    return this.mirror.stats.watchRestarts;
  }

  /** Resolves when every change due so far has been handled. */
  async idle(): Promise<void> {
    await this.chain;
  }

  /** The stored config not in use yet (hold-down, rate limit, or live following off). */
  pending(): PendingConfig | undefined {
    return this.pace.view();
  }

  /** The stored value changed (or the running one did): tell the pace, and wake when it is due. */
  private observe(): void {
    if (this.d.signal.aborted) return;
    const stored = this.mirror.snapshot.get(this.d.key)?.value ?? null;
    const running = this.d.current().text;
    const nowMs = this.clock.now();
    if (stored === running) this.problem = '';
    if (this.pace.observe(stored, running, nowMs)) {
      const at = this.pace.dueAtMs() ?? nowMs;
      this.d.log.info('network config change pending; applied once the stored value has been stable', {
        key: this.d.key,
        applyAt: iso(at),
        holdDownMs: this.d.pace.holdDownMs,
        minIntervalMs: this.d.pace.minIntervalMs,
      });
    }
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const at = this.pace.dueAtMs();
    if (at === undefined || this.d.signal.aborted) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.queue();
      },
      Math.max(0, at - this.clock.now()),
    );
  }

  private queue(): void {
    this.chain = this.chain
      .then(() => this.takeDue())
      .catch((e: unknown) => {
        this.d.log.error('handling a network config change failed (a bug in weft, reported)', { error: message(e) });
      });
  }

  /** Take up the value due now (one at a time), then look again: it may have changed meanwhile. */
  private async takeDue(): Promise<void> {
    if (this.d.signal.aborted) return;
    const due = this.pace.take(this.clock.now());
    if (due) {
      const outcome = this.d.pace.follow ? await this.check(due.text) : this.report(due.text);
      this.pace.done(this.clock.now(), outcome === 'changed' || outcome === 'reported');
    }
    this.observe();
  }

  private async check(text: string | null): Promise<Outcome> {
    const running = this.d.current();
    if (text === null) return this.reject('the network config was deleted from etcd');
    // A value too large to be read arrives as '' with a marker (core/fleet/store-limits.ts): say its size.
    const kv = this.mirror.snapshot.get(this.d.key);
    const unread = kv && kv.value === text ? unreadReason(kv) : undefined;
    if (unread !== undefined) return this.reject(`the new network config is unreadable: ${unread}`);
    let next: NetworkConfig;
    try {
      next = checkNetworkConfig(decodeNetworkConfig(text, this.d.backends));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      return this.reject(`the new network config is invalid: ${e.message}`);
    }
    const change = classifyConfigChange(running.config, next, this.d.ownSubnet(), [...this.d.backends.keys()]);
    if (change.kind === 'none') {
      this.problem = '';
      await this.d.apply({ config: next, text }, { kind: 'live', parts: [], diff: [] });
      return 'same';
    }
    if (change.kind === 'unusable') return this.reject(change.reason);
    try {
      await this.d.apply({ config: next, text }, change);
      this.problem = '';
      this.stats.applied++;
      return 'changed';
    } catch (e) {
      if (!(e instanceof WeftError) || e.retryable) throw e;
      return this.reject(`this host cannot use it: ${e.message}`);
    }
  }

  /** Live following is off: say once (per change, at the pace) that a newer config is stored. */
  private report(text: string | null): Outcome {
    const running = this.d.current();
    let changes: string[] | string;
    try {
      changes =
        text === null
          ? 'the network config was deleted from etcd'
          : diffConfigs(running.config, checkNetworkConfig(decodeNetworkConfig(text, this.d.backends))).map((l) =>
              capText(l),
            );
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      changes = capText(`invalid: ${e.message}`);
    }
    this.stats.notFollowed++;
    this.d.log.warn(
      'the stored network config differs from the one running; not applied (host.followConfig is false): it is used at the next start',
      { key: this.d.key, changes },
    );
    return 'reported';
  }

  private reject(reason: string): Outcome {
    this.stats.rejected++;
    this.problem = capText(`the stored network config is not in use (${reason}); running on with the last one`);
    this.d.log.error('the new network config cannot be used; running on with the last one', {
      key: this.d.key,
      reason: capText(reason),
    });
    return 'rejected';
  }
}
