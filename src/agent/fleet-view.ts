/**
 * This host's view of the fleet: the leases under <prefix>/subnets/, mirrored from etcd
 * (agent/prefix-mirror.ts: list, watch, re-list on any break) and judged (core/fleet/fleet.ts: valid
 * peers, quarantined malformed entries). Every change pokes the reconciler; a write to this
 * host's own key other than its own last one is reported to the lease holder, which verifies
 * its lease at once (and restores its value when another writer changed it).
 */
import { BACKENDS } from '../backends/index.js';
import type { SubnetKey } from '../core/flannel/subnet-key.js';
import type { NetworkConfig } from '../core/flannel/config-check.js';
import { Fleet } from '../core/fleet/fleet.js';
import { subnetsPrefix } from '../core/fleet/owner.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import { DEFAULT_MAX_PEERS, fleetLimits } from '../core/fleet/store-limits.js';
import type { KeyValue, KvStore } from '../core/fleet/store.js';
import type { Logger } from '../adapters/log.js';
import { LimitedLog } from './limited-log.js';
import { type MirrorSeed, PrefixMirror } from './prefix-mirror.js';
import { retrying } from './retry.js';

export interface FleetViewDeps {
  readonly store: KvStore;
  readonly prefix: string;
  readonly config: NetworkConfig;
  /** This host's subnets (the lease key's halves). */
  readonly own: SubnetKey;
  readonly log: Logger;
  /** This host's own lease key, etcd lease and the revision of its last write, if it holds one. */
  readonly ownLease: () => { readonly key: string; readonly lease: string; readonly modRevision: string } | undefined;
  readonly onOwnKeyChanged: () => void;
  /** Peers changed: these subnet keys (undefined: any, e.g. after a move). */
  readonly onPeersChanged: (subnetKeys?: ReadonlySet<string>) => void;
  /** host.maxPeers: at most this many peers programmed, ENTRIES_PER_PEER times as many entries kept (core/fleet/store-limits.ts; default DEFAULT_MAX_PEERS). */
  readonly maxPeers?: number;
}

/** The fleet's caps and how much they leave out now (for /status, /metrics and the log). */
export interface FleetCaps {
  readonly maxPeers: number;
  readonly maxEntries: number;
  /** Entries of subnets/ not kept (the youngest). */
  readonly entriesLeftOut: number;
  /** Valid leases not programmed (the youngest). */
  readonly peersLeftOut: number;
}

export class FleetView {
  private readonly fleet: Fleet;
  private readonly mirror: PrefixMirror;
  /** Whether a cap left something out when last looked (its start and end are logged once each). */
  private capBinding = false;
  /** Any writer decides how many malformed writes there are: the first per key in full, the rest summed up once a minute. */
  private readonly malformedLog: LimitedLog;
  readonly stats = { malformedSeen: 0 };

  private readonly maxPeers: number;

  constructor(private readonly d: FleetViewDeps) {
    this.maxPeers = d.maxPeers ?? DEFAULT_MAX_PEERS;
    this.malformedLog = new LimitedLog({
      log: d.log,
      clock: Date,
      msg: 'ignoring a malformed lease',
      summaryMsg: 'ignoring malformed leases (not logged one by one)',
    });
    this.fleet = new Fleet(subnetsPrefix(d.prefix), d.config, BACKENDS, d.own, this.maxPeers);
    this.mirror = new PrefixMirror({
      store: d.store,
      prefix: subnetsPrefix(d.prefix),
      log: d.log,
      clock: Date,
      limits: fleetLimits(this.maxPeers),
      onChange: (keys) => {
        this.onChange(keys);
      },
    });
  }

  get peers(): ReadonlyMap<string, PeerLease> {
    return this.fleet.peers;
  }
  get malformed(): number {
    return this.fleet.quarantinedCount;
  }
  /** Peers with a half this host does not program (a family the network lacks, a bad IPv6 half). O(peers), for status only. */
  get halvesIgnored(): number {
    let n = 0;
    for (const p of this.fleet.peers.values()) if (p.ignored !== undefined) n++;
    return n;
  }
  get watchRestarts(): number {
    return this.mirror.stats.watchRestarts;
  }
  /** The listing of subnets/: failing since when (0: it follows etcd) and why. */
  get listing(): { readonly failingSinceMs: number; readonly lastError: string } {
    return this.mirror.stats;
  }
  get caps(): FleetCaps {
    return {
      maxPeers: this.maxPeers,
      maxEntries: fleetLimits(this.maxPeers).maxEntries ?? 0,
      entriesLeftOut: this.mirror.leftOut,
      peersLeftOut: this.fleet.peersLeftOut,
    };
  }

  /**
   * List the fleet (waiting out an etcd outage) and keep watching it; `seed`: the acquisition's
   * listing of the subnets (see PrefixMirror.start). Every entry is judged as the first list
   * reports it (onChange), once.
   */
  async start(signal: AbortSignal, seed?: MirrorSeed): Promise<void> {
    let first = seed;
    await retrying(
      'list the fleet',
      () => {
        const s = first;
        first = undefined;
        return this.mirror.start(s);
      },
      { signal, log: this.d.log },
    );
  }

  async stop(): Promise<void> {
    await this.mirror.stop();
    this.malformedLog.stop();
  }

  /**
   * This host moved to `subnet`. Every entry is judged again: the key of the subnet it left was
   * its own until now (never judged as a peer), and the host that took it must be programmed.
   * O(entries), once per move.
   */
  setOwnSubnet(own: SubnetKey): void {
    this.fleet.setOwnSubnet(own);
    for (const [k, kv] of this.mirror.snapshot) this.judge(k, kv);
    this.noteCaps();
    this.d.onPeersChanged();
  }

  /**
   * The network config changed: every entry is judged again against it (a grown network
   * admits leases it rejected, a new VNI or backend changes what a peer is). O(entries), once
   * per config change; the reconciler is poked once.
   */
  setConfig(config: NetworkConfig): void {
    this.fleet.setConfig(config);
    const own = this.d.ownLease();
    for (const [k, kv] of this.mirror.snapshot) if (k !== own?.key) this.judge(k, kv);
    this.noteCaps();
    this.d.onPeersChanged();
  }

  /** The raw etcd entries of the valid peers and the revision they were read at (for the cached state). */
  peerEntries(): { entries: KeyValue[]; revision: string } {
    const base = subnetsPrefix(this.d.prefix);
    const entries: KeyValue[] = [];
    for (const k of this.fleet.peers.keys()) {
      const kv = this.mirror.snapshot.get(base + k);
      if (kv) entries.push(kv);
    }
    return { entries, revision: this.mirror.atRevision };
  }

  /** Judge one entry; returns another subnet key whose programmed state changed with it (core/fleet/fleet.ts FleetChange.moved). */
  private judge(key: string, kv: KeyValue | undefined): string | undefined {
    const change = this.fleet.update(key, kv);
    if (change?.kind === 'quarantined' && change.isNew) {
      this.stats.malformedSeen++;
      this.malformedLog.warn(key, { key, reason: change.entry.reason });
    }
    return change?.kind === 'peer' || change?.kind === 'gone' ? change.moved : undefined;
  }

  /** One line when a cap starts leaving entries or peers out, one when it stops. */
  private noteCaps(): void {
    const c = this.caps;
    const binding = c.entriesLeftOut > 0 || c.peersLeftOut > 0;
    if (binding === this.capBinding) return;
    this.capBinding = binding;
    if (binding)
      this.d.log.warn('fleet cap reached: the oldest entries are kept, the youngest left out (host.maxPeers)', {
        ...c,
      });
    else this.d.log.info('fleet cap no longer reached: every entry is kept', { ...c });
  }

  private onChange(keys: ReadonlySet<string>): void {
    const own = this.d.ownLease();
    const base = subnetsPrefix(this.d.prefix);
    const changed = new Set<string>();
    for (const k of keys) {
      if (k.startsWith(base)) changed.add(k.slice(base.length));
      const kv = this.mirror.snapshot.get(k);
      if (own && k === own.key) {
        // Any write but our last one (another value under our etcd lease too) is verified at once.
        if (kv?.lease !== own.lease || kv.modRevision !== own.modRevision) this.d.onOwnKeyChanged();
        continue;
      }
      const moved = this.judge(k, kv);
      if (moved !== undefined) changed.add(moved);
    }
    this.noteCaps();
    this.d.onPeersChanged(changed);
  }
}
