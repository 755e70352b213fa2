/**
 * Follows `<prefix>/config` while weft runs (issue 19 part 2): the key is mirrored (list +
 * watch, re-list on any break: agent/prefix-mirror.ts), every new value is decoded as untrusted
 * input (Go-exact, core/network-config.ts), checked, and classified against the config the host
 * runs (core/config-change.ts). A live change or a move is handed to `apply`, one at a time, in
 * order; an unusable one (invalid, IPv4 off, unknown backend, refused on this host) leaves the
 * host on the config it has, with a warning in the log and in status until a usable one comes.
 */
import type { SubnetKey } from '../core/subnet-key.js';
import { type NetworkConfig, checkNetworkConfig } from '../core/config-check.js';
import { type ConfigChange, classifyConfigChange } from '../core/config-change.js';
import { WeftError } from '../core/errors.js';
import { capText } from '../core/escape.js';
import { ConfigError, decodeNetworkConfig } from '../core/network-config.js';
import type { KvStore } from '../core/store.js';
import type { Logger } from '../adapters/log.js';
import { PrefixMirror } from './prefix-mirror.js';
import { message, retrying } from './retry.js';
import { configText } from '../core/store-limits.js';

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
  readonly backends: readonly string[];
  readonly current: () => RunningConfig;
  readonly ownSubnet: () => SubnetKey | undefined;
  /** Apply a usable change (derive, republish, re-judge, new inputs). Throws when this host cannot use it. */
  readonly apply: (next: RunningConfig, change: ApplicableChange) => Promise<void>;
}

export class ConfigFollower {
  private readonly mirror: PrefixMirror;
  private chain: Promise<void> = Promise.resolve();
  /** Text last judged unusable (not judged again until it changes). */
  private rejectedText: string | undefined;
  /** Why the stored config is not the one running ('' when it is). */
  problem = '';
  readonly stats = { applied: 0, rejected: 0 };

  constructor(private readonly d: ConfigFollowerDeps) {
    // The key alone, not every key starting with it: junk under `<prefix>/config…` is not read.
    this.mirror = new PrefixMirror({ store: d.store, prefix: d.key, log: d.log, clock: Date, limits: { exact: true }, onChange: (keys) => { if (keys.has(d.key)) this.queue(); } });
  }

  /** Mirror the key (waiting out an etcd outage); a change since start-up is applied at once. */
  async start(): Promise<void> {
    await retrying('watch the network config', () => this.mirror.start(), { signal: this.d.signal, log: this.d.log });
    this.queue();
  }

  async stop(): Promise<void> {
    await this.mirror.stop();
    await this.chain;
  }

  /** The listing of the config key: failing since when (0: it follows etcd) and why. */
  get listing(): { readonly failingSinceMs: number; readonly lastError: string } { return this.mirror.stats; }
  get watchRestarts(): number { return this.mirror.stats.watchRestarts; }

  /** Resolves when every change seen so far has been handled. */
  async idle(): Promise<void> { await this.chain; }

  private queue(): void {
    this.chain = this.chain.then(() => this.check()).catch((e: unknown) => { this.d.log.error('handling a network config change failed (a bug in weft, reported)', { error: message(e) }); });
  }

  private async check(): Promise<void> {
    if (this.d.signal.aborted) return;
    const kv = this.mirror.snapshot.get(this.d.key);
    const running = this.d.current();
    if (!kv) { this.reject('the network config was deleted from etcd'); return; }
    const text = kv.value;
    if (text === running.text) { this.problem = ''; return; }
    if (text === this.rejectedText) return;
    let next: NetworkConfig;
    try {
      next = checkNetworkConfig(decodeNetworkConfig(configText(kv)));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.reject(`the new network config is invalid: ${e.message}`, text);
      return;
    }
    const change = classifyConfigChange(running.config, next, this.d.ownSubnet(), this.d.backends);
    if (change.kind === 'none') {
      this.problem = '';
      await this.d.apply({ config: next, text }, { kind: 'live', parts: [], diff: [] });
      return;
    }
    if (change.kind === 'unusable') { this.reject(change.reason, text); return; }
    try {
      await this.d.apply({ config: next, text }, change);
      this.problem = '';
      this.rejectedText = undefined;
      this.stats.applied++;
    } catch (e) {
      if (!(e instanceof WeftError) || e.retryable) throw e;
      this.reject(`this host cannot use it: ${e.message}`, text);
    }
  }

  private reject(reason: string, text?: string): void {
    this.rejectedText = text;
    this.stats.rejected++;
    this.problem = capText(`the stored network config is not in use (${reason}); running on with the last one`);
    this.d.log.error('the new network config cannot be used; running on with the last one', { key: this.d.key, reason: capText(reason) });
  }
}
