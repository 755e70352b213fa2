/**
 * The fleet as this host sees it: every entry under `<prefix>/subnets/` judged on its own.
 * Valid leases become peers; entries that fail validation are quarantined with a reason and
 * touch nothing else (flanneld drops every peer on one bad event, §12 item 1). Updated per
 * changed key, so one event costs O(1). At most `maxPeers` peers are programmed, the oldest
 * leases (create revision) first: a writer adding valid-looking leases cannot push out the
 * fleet's; the others wait, counted (`peersLeftOut`), and take a slot a peer frees.
 */
import { samePrefix } from '../net/cidr.js';
import type { NetworkConfig } from '../flannel/config-check.js';
import type { FlannelBackends } from '../flannel/backend-codec.js';
import { type SubnetKey, formatSubnetKey } from '../flannel/lease.js';
import { olderThan } from '../base/oldest-first.js';
import { type LeaseVerdict, type PeerLease, validatePeerLease } from '../flannel/peer-lease.js';
import { DEFAULT_MAX_PEERS, oversizeReason } from './store-limits.js';
import type { KeyValue } from './store.js';

export interface Quarantined {
  readonly key: string;
  readonly reason: string;
  readonly modRevision: string;
}

/** At most this many quarantined entries are remembered (beyond it they are only counted). */
export const QUARANTINE_CAP = 1000;
/** At most this much of a reason is kept: reasons quote untrusted values. */
export const REASON_CAP = 300;

const capReason = (r: string): string =>
  r.length > REASON_CAP ? `${r.slice(0, REASON_CAP)}… (${r.length - REASON_CAP} more characters)` : r;

/**
 * Judge one entry, never throwing: whatever a value holds, the answer is a verdict. A throw
 * here would be a bug in weft, and it must cost one entry, not the agent (or every agent).
 */
function judgeSafely(subnetKey: string, kv: KeyValue, config: NetworkConfig, backends: FlannelBackends): LeaseVerdict {
  if (kv.oversize) return { ok: false, reason: oversizeReason(kv.oversize) };
  try {
    return validatePeerLease(subnetKey, kv.value, config, backends, kv.createRevision);
  } catch (e) {
    return {
      ok: false,
      reason: `could not be judged (a bug in weft, reported): ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

/**
 * What one update did. `moved`: another subnet key whose programmed state changed with it (a
 * peer pushed out by an older lease, or a waiting lease that took a freed slot).
 */
export type FleetChange =
  | { readonly kind: 'peer'; readonly subnetKey: string; readonly lease: PeerLease; readonly moved?: string }
  | { readonly kind: 'gone'; readonly subnetKey: string; readonly moved?: string }
  | { readonly kind: 'waiting'; readonly subnetKey: string }
  | { readonly kind: 'quarantined'; readonly entry: Quarantined; readonly isNew: boolean };

/** A lease's place in the cap's order (no create revision: judged outside a store, sorts last). */
const aged = (p: PeerLease): { key: string; createRevision: string } => ({
  key: p.subnetKey,
  createRevision: p.createRevision ?? '9'.repeat(30),
});

export class Fleet {
  private readonly peerMap = new Map<string, PeerLease>();
  /** Valid leases over maxPeers, younger than every programmed peer. */
  private readonly waiting = new Map<string, PeerLease>();
  private readonly bad = new Map<string, Quarantined>();
  /** Keys quarantined past QUARANTINE_CAP: counted, their reasons not kept. */
  private readonly overflow = new Set<string>();
  /** The youngest programmed peer, when known (undefined: scanned on demand). */
  private youngestKnown: PeerLease | undefined;

  /** `backends`: the registry (src/backends/index.ts), whose backends read each lease's data. */
  constructor(
    private readonly subnetsPrefix: string,
    private config: NetworkConfig,
    private readonly backends: FlannelBackends,
    private own?: SubnetKey,
    private readonly maxPeers = DEFAULT_MAX_PEERS,
  ) {}

  get peers(): ReadonlyMap<string, PeerLease> {
    return this.peerMap;
  }
  /** Valid leases not programmed because host.maxPeers is reached. */
  get peersLeftOut(): number {
    return this.waiting.size;
  }
  get peerLimit(): number {
    return this.maxPeers;
  }
  get quarantined(): ReadonlyMap<string, Quarantined> {
    return this.bad;
  }
  /** How many entries are quarantined, including those past the cap. */
  get quarantinedCount(): number {
    return this.bad.size + this.overflow.size;
  }

  /** Set this host's own subnets: a lease claiming either of them from elsewhere is never a peer. */
  setOwnSubnet(own: SubnetKey | undefined): void {
    this.own = own;
    for (const [k, p] of this.waiting) if (this.claimsOwn(p)) this.waiting.delete(k);
    for (const [k, p] of this.peerMap) if (this.claimsOwn(p)) this.removePeer(k);
  }

  /** Does a lease claim one of this host's subnets? */
  private claimsOwn(p: PeerLease): boolean {
    const o = this.own;
    return (
      o !== undefined &&
      ((o.v4 !== undefined && p.subnet !== undefined && samePrefix(p.subnet, o.v4)) ||
        (o.v6 !== undefined && p.subnetV6 !== undefined && samePrefix(p.subnetV6, o.v6)))
    );
  }

  /**
   * The network config changed (core/config/config-change.ts): forget every verdict, so that the
   * caller judges every entry again against `config`. Unlike a corrupt write, a new config may
   * rightly drop a peer (a lease outside a shrunk network is no peer any more).
   */
  setConfig(config: NetworkConfig): void {
    this.config = config;
    this.peerMap.clear();
    this.waiting.clear();
    this.youngestKnown = undefined;
    this.bad.clear();
    this.overflow.clear();
  }

  private forget(key: string): void {
    this.bad.delete(key);
    this.overflow.delete(key);
  }

  /** Re-judge one key given its current entry (undefined when deleted). */
  update(key: string, kv: KeyValue | undefined): FleetChange | undefined {
    const subnetKey = key.slice(this.subnetsPrefix.length);
    if (!kv) {
      this.forget(key);
      this.waiting.delete(subnetKey);
      return this.removePeer(subnetKey);
    }
    const verdict = judgeSafely(subnetKey, kv, this.config, this.backends);
    if (verdict.ok && !this.claimsOwn(verdict.lease)) {
      this.forget(key);
      return this.admit(subnetKey, verdict.lease);
    }
    const own = verdict.ok;
    if (own && this.own && subnetKey === formatSubnetKey(this.own)) {
      this.forget(key);
      this.waiting.delete(subnetKey);
      this.removePeer(subnetKey);
      return undefined; // our own lease: neither a peer nor suspect
    }
    const reason = capReason(own ? "lease claims this host's own subnet" : verdict.reason);
    const isNew = this.bad.get(key)?.modRevision !== kv.modRevision;
    const entry = { key, reason, modRevision: kv.modRevision };
    if (this.bad.has(key) || this.bad.size < QUARANTINE_CAP) this.bad.set(key, entry);
    else this.overflow.add(key);
    // A peer whose value turns bad keeps its last good lease programmed: a corrupt write must
    // not cut a working route. Only a claim on our own subnet removes it.
    if (own) {
      this.waiting.delete(subnetKey);
      const gone = this.removePeer(subnetKey);
      if (gone) return gone;
    }
    return { kind: 'quarantined', entry, isNew };
  }

  /** A valid lease: programmed while there is room, or when older than the youngest peer (which then waits). */
  private admit(subnetKey: string, lease: PeerLease): FleetChange {
    if (this.peerMap.has(subnetKey) || this.peerMap.size < this.maxPeers) {
      this.waiting.delete(subnetKey);
      this.setPeer(subnetKey, lease);
      return { kind: 'peer', subnetKey, lease };
    }
    const y = this.youngest();
    if (y === undefined || !olderThan(aged(lease), aged(y))) {
      this.waiting.set(subnetKey, lease);
      return { kind: 'waiting', subnetKey };
    }
    this.peerMap.delete(y.subnetKey);
    this.youngestKnown = undefined;
    this.waiting.set(y.subnetKey, y);
    this.waiting.delete(subnetKey);
    this.setPeer(subnetKey, lease);
    return { kind: 'peer', subnetKey, lease, moved: y.subnetKey };
  }

  private setPeer(subnetKey: string, lease: PeerLease): void {
    this.peerMap.set(subnetKey, lease);
    const y = this.youngestKnown;
    if (y === undefined) return;
    if (y.subnetKey === subnetKey) this.youngestKnown = undefined;
    else if (olderThan(aged(y), aged(lease))) this.youngestKnown = lease;
  }

  /** Stop programming a peer; the oldest waiting lease takes its slot. */
  private removePeer(subnetKey: string): FleetChange | undefined {
    if (!this.peerMap.delete(subnetKey)) return undefined;
    if (this.youngestKnown?.subnetKey === subnetKey) this.youngestKnown = undefined;
    let next: PeerLease | undefined;
    for (const p of this.waiting.values()) if (next === undefined || olderThan(aged(p), aged(next))) next = p;
    if (next === undefined) return { kind: 'gone', subnetKey };
    this.waiting.delete(next.subnetKey);
    this.setPeer(next.subnetKey, next);
    return { kind: 'gone', subnetKey, moved: next.subnetKey };
  }

  private youngest(): PeerLease | undefined {
    if (this.youngestKnown !== undefined) return this.youngestKnown;
    let y: PeerLease | undefined;
    for (const p of this.peerMap.values()) if (y === undefined || olderThan(aged(y), aged(p))) y = p;
    this.youngestKnown = y;
    return y;
  }
}
