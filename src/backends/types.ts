/**
 * The seam between weft and a backend: a backend is pure. Given the config, this host's lease
 * and facts, and the peers, it says what the datapath should be (devices of any kind in
 * core/datapath/devices.ts, routes, neighbours and fdb entries of any family); the reconciler observes,
 * plans and applies, and writes the rules and output files, for every backend alike. Adding a
 * backend is a module here and an entry in index.ts (docs/architecture.md, "Adding a backend").
 */
import type { NetworkConfig } from '../core/flannel/config-check.js';
import type { DesiredDatapath, ObservedRoute } from '../core/datapath/datapath.js';
import type { HostFacts } from '../core/host/host-facts.js';
import type { LeaseAttrs } from '../core/flannel/lease.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import type { SubnetKey } from '../core/flannel/subnet-key.js';

export interface BackendInput {
  readonly config: NetworkConfig;
  /** This host's subnets (the lease key's halves): `v4` and/or `v6`, as the config has them. */
  readonly own: SubnetKey;
  readonly facts: HostFacts;
  /** Underlay routes (to judge L2 adjacency). */
  readonly routes: readonly ObservedRoute[];
  readonly peers: Iterable<PeerLease>;
  /** The overlay MTU (see `mtu`). */
  readonly mtu: number;
  /** vxlan: the MAC this host advertises. */
  readonly vtepMAC: string;
  /** vxlan: the MAC of the IPv6 device (flannel-v6.<VNI>), when the network has IPv6. */
  readonly vtepMACv6?: string;
  /** wireguard: this host's keys (paths and the public key only). */
  readonly wireguard?: WireguardKeys;
}

/** What the wireguard backend knows of this host's keys: never a secret, only where it is. */
export interface WireguardKeys {
  readonly privateKeyFile: string;
  readonly publicKey: string;
  /** A preshared key file applied to every peer (the spec's, or the stored config's PSK written to the state dir). */
  readonly presharedKeyFile?: string;
  /** A fingerprint of the preshared key (never the key), so a changed PSK is applied to every peer. */
  readonly presharedKeyTag?: string;
}

export interface Backend {
  readonly type: 'vxlan' | 'host-gw' | 'wireguard';
  /** The devices weft owns for this backend (observed each pass; none for plain routes). */
  deviceNames(config: NetworkConfig): readonly string[];
  /** What the encapsulation adds to each packet: the overlay MTU is the underlay's minus this (0: plain routes). */
  readonly overheadBytes: number;
  /** The overlay MTU (FLANNEL_MTU): `hostMTU` overrides the computed value. */
  mtu(config: NetworkConfig, facts: HostFacts, hostMTU: number | undefined): number;
  /** The lease value this host publishes (`keys`: wireguard's public key; `vtepMACv6`: the IPv6 device's MAC). */
  leaseAttrs(config: NetworkConfig, facts: HostFacts, vtepMAC: string, keys?: WireguardKeys, vtepMACv6?: string): LeaseAttrs;
  /** Refuse to run on this host (e.g. host-gw behind NAT): a message, or undefined. */
  refusal(facts: HostFacts): string | undefined;
  desired(input: BackendInput): DesiredDatapath;
  /**
   * Optional (core/datapath/desired-index.ts): a name such that peers with different names never affect
   * each other's desired entries, and `desired` over one name's peers yields exactly their
   * entries. With it, one changed lease costs O(1); without it, every pass computes in full.
   */
  peerGroup?(peer: PeerLease): string;
}
