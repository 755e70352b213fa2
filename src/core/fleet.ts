/**
 * The fleet as this host sees it: every entry under `<prefix>/subnets/` judged on its own.
 * Valid leases become peers; entries that fail validation are quarantined with a reason and
 * touch nothing else (flanneld drops every peer on one bad event, §12 item 1). Updated per
 * changed key, so one event costs O(1).
 */
import { type Prefix, samePrefix } from './cidr.js';
import type { NetworkConfig } from './config-check.js';
import { formatSubnetKey } from './lease.js';
import { type PeerLease, validatePeerLease } from './peer-lease.js';
import type { KeyValue } from './store.js';

export interface Quarantined {
  readonly key: string;
  readonly reason: string;
  readonly modRevision: string;
}

export type FleetChange =
  | { readonly kind: 'peer'; readonly subnetKey: string; readonly lease: PeerLease }
  | { readonly kind: 'gone'; readonly subnetKey: string }
  | { readonly kind: 'quarantined'; readonly entry: Quarantined; readonly isNew: boolean };

export class Fleet {
  private readonly peerMap = new Map<string, PeerLease>();
  private readonly bad = new Map<string, Quarantined>();

  constructor(private readonly subnetsPrefix: string, private readonly config: NetworkConfig, private ownSubnet?: Prefix) {}

  get peers(): ReadonlyMap<string, PeerLease> { return this.peerMap; }
  get quarantined(): ReadonlyMap<string, Quarantined> { return this.bad; }

  /** Set this host's own subnet: a lease claiming it from elsewhere is never a peer. */
  setOwnSubnet(subnet: Prefix | undefined): void {
    this.ownSubnet = subnet;
    for (const [k, p] of this.peerMap) if (subnet && samePrefix(p.subnet, subnet)) this.peerMap.delete(k);
  }

  /** Re-judge one key given its current entry (undefined when deleted). */
  update(key: string, kv: KeyValue | undefined): FleetChange | undefined {
    const subnetKey = key.slice(this.subnetsPrefix.length);
    if (!kv) {
      this.bad.delete(key);
      return this.peerMap.delete(subnetKey) ? { kind: 'gone', subnetKey } : undefined;
    }
    const verdict = validatePeerLease(subnetKey, kv.value, this.config);
    if (verdict.ok && !(this.ownSubnet && samePrefix(verdict.lease.subnet, this.ownSubnet))) {
      this.bad.delete(key);
      this.peerMap.set(subnetKey, verdict.lease);
      return { kind: 'peer', subnetKey, lease: verdict.lease };
    }
    const own = verdict.ok;
    if (own && this.ownSubnet && subnetKey === formatSubnetKey({ v4: this.ownSubnet })) {
      this.bad.delete(key);
      this.peerMap.delete(subnetKey);
      return undefined; // our own lease: neither a peer nor suspect
    }
    const reason = own ? 'lease claims this host\'s own subnet' : verdict.reason;
    const isNew = this.bad.get(key)?.modRevision !== kv.modRevision;
    const entry = { key, reason, modRevision: kv.modRevision };
    this.bad.set(key, entry);
    // A peer whose value turns bad keeps its last good lease programmed: a corrupt write must
    // not cut a working route. Only a claim on our own subnet removes it.
    if (own && this.peerMap.delete(subnetKey)) return { kind: 'gone', subnetKey };
    return { kind: 'quarantined', entry, isNew };
  }
}
