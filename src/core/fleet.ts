/**
 * The fleet as this host sees it: every entry under `<prefix>/subnets/` judged on its own.
 * Valid leases become peers; entries that fail validation are quarantined with a reason and
 * touch nothing else (flanneld drops every peer on one bad event, §12 item 1). Updated per
 * changed key, so one event costs O(1).
 */
import { samePrefix } from './cidr.js';
import type { NetworkConfig } from './config-check.js';
import { type SubnetKey, formatSubnetKey } from './lease.js';
import { type LeaseVerdict, type PeerLease, validatePeerLease } from './peer-lease.js';
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

const capReason = (r: string): string => (r.length > REASON_CAP ? `${r.slice(0, REASON_CAP)}… (${r.length - REASON_CAP} more characters)` : r);

/**
 * Judge one entry, never throwing: whatever a value holds, the answer is a verdict. A throw
 * here would be a bug in weft, and it must cost one entry, not the agent (or every agent).
 */
function judgeSafely(subnetKey: string, kv: KeyValue, config: NetworkConfig): LeaseVerdict {
  try {
    return validatePeerLease(subnetKey, kv.value, config, kv.createRevision);
  } catch (e) {
    return { ok: false, reason: `could not be judged (a bug in weft, reported): ${e instanceof Error ? e.message : String(e)}` };
  }
}

export type FleetChange =
  | { readonly kind: 'peer'; readonly subnetKey: string; readonly lease: PeerLease }
  | { readonly kind: 'gone'; readonly subnetKey: string }
  | { readonly kind: 'quarantined'; readonly entry: Quarantined; readonly isNew: boolean };

export class Fleet {
  private readonly peerMap = new Map<string, PeerLease>();
  private readonly bad = new Map<string, Quarantined>();
  /** Keys quarantined past QUARANTINE_CAP: counted, their reasons not kept. */
  private readonly overflow = new Set<string>();

  constructor(private readonly subnetsPrefix: string, private config: NetworkConfig, private own?: SubnetKey) {}

  get peers(): ReadonlyMap<string, PeerLease> { return this.peerMap; }
  get quarantined(): ReadonlyMap<string, Quarantined> { return this.bad; }
  /** How many entries are quarantined, including those past the cap. */
  get quarantinedCount(): number { return this.bad.size + this.overflow.size; }

  /** Set this host's own subnets: a lease claiming either of them from elsewhere is never a peer. */
  setOwnSubnet(own: SubnetKey | undefined): void {
    this.own = own;
    for (const [k, p] of this.peerMap) if (this.claimsOwn(p)) this.peerMap.delete(k);
  }

  /** Does a lease claim one of this host's subnets? */
  private claimsOwn(p: PeerLease): boolean {
    const o = this.own;
    return o !== undefined && ((o.v4 !== undefined && p.subnet !== undefined && samePrefix(p.subnet, o.v4)) || (o.v6 !== undefined && p.subnetV6 !== undefined && samePrefix(p.subnetV6, o.v6)));
  }

  /**
   * The network config changed (core/config-change.ts): forget every verdict, so that the
   * caller judges every entry again against `config`. Unlike a corrupt write, a new config may
   * rightly drop a peer (a lease outside a shrunk network is no peer any more).
   */
  setConfig(config: NetworkConfig): void {
    this.config = config;
    this.peerMap.clear();
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
      return this.peerMap.delete(subnetKey) ? { kind: 'gone', subnetKey } : undefined;
    }
    const verdict = judgeSafely(subnetKey, kv, this.config);
    if (verdict.ok && !this.claimsOwn(verdict.lease)) {
      this.forget(key);
      this.peerMap.set(subnetKey, verdict.lease);
      return { kind: 'peer', subnetKey, lease: verdict.lease };
    }
    const own = verdict.ok;
    if (own && this.own && subnetKey === formatSubnetKey(this.own)) {
      this.forget(key);
      this.peerMap.delete(subnetKey);
      return undefined; // our own lease: neither a peer nor suspect
    }
    const reason = capReason(own ? 'lease claims this host\'s own subnet' : verdict.reason);
    const isNew = this.bad.get(key)?.modRevision !== kv.modRevision;
    const entry = { key, reason, modRevision: kv.modRevision };
    if (this.bad.has(key) || this.bad.size < QUARANTINE_CAP) this.bad.set(key, entry);
    else this.overflow.add(key);
    // A peer whose value turns bad keeps its last good lease programmed: a corrupt write must
    // not cut a working route. Only a claim on our own subnet removes it.
    if (own && this.peerMap.delete(subnetKey)) return { kind: 'gone', subnetKey };
    return { kind: 'quarantined', entry, isNew };
  }
}
