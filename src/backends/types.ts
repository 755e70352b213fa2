/**
 * The seam between weft and a backend: a backend is one pure module that owns everything about
 * itself, and the rest of weft only calls it. Core declares each part it consumes beside the
 * code that consumes it (core imports no backend; the registry, src/backends/index.ts, is passed
 * in); `Backend` is their union plus the datapath part the reconciler calls:
 * - options and leases (core/flannel/backend-codec.ts): decode its options from the stored
 *   config with flanneld's messages, the settings a live change compares, the BackendType its
 *   leases carry and the codec of their BackendData;
 * - the spec (core/spec/spec-backend.ts): the keys it accepts, the Backend object they make, the
 *   address families it programs;
 * - `weft config show` (core/config/config-view.ts) and `weft doctor` (core/doctor: what to check);
 * - the datapath (here): given the config, this host's lease and facts, and the peers, what the
 *   datapath should be (devices of any kind in core/datapath/devices.ts, routes, neighbours and
 *   fdb entries of any family); the reconciler observes, plans and applies for every backend alike;
 * - what the agent provides it without naming it (here): the MACs it publishes, WireGuard keys.
 * Adding a backend is a module here and an entry in index.ts (docs/architecture.md, "Adding a backend").
 */
import type { Family } from '../core/net/cidr.js';
import type { NetworkConfig } from '../core/flannel/config-check.js';
import type { BackendOptions } from '../core/flannel/backend-codec.js';
import type { DesiredDatapath, ObservedRoute } from '../core/datapath/datapath.js';
import type { HostFacts } from '../core/host/host-facts.js';
import type { LeaseAttrs } from '../core/flannel/lease.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import type { SubnetKey } from '../core/flannel/subnet-key.js';
import type { SpecBackend } from '../core/spec/spec-backend.js';
import type { ConfigViewBackend } from '../core/config/config-view.js';
import type { DoctorBackend } from '../core/doctor/doctor-observations.js';

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
  /** The MAC this host publishes for its IPv4 device (`publishedMACs`, family 4; '' when the backend publishes none). */
  readonly vtepMAC: string;
  /** The MAC it publishes for its IPv6 device (`publishedMACs`, family 6), when the network has IPv6. */
  readonly vtepMACv6?: string;
  /** This host's WireGuard keys (paths and the public key only), for a backend that asks for them (`wireguard`). */
  readonly wireguard?: WireguardKeys;
}

/** What a backend that uses WireGuard knows of this host's keys: never a secret, only where it is. */
export interface WireguardKeys {
  readonly privateKeyFile: string;
  readonly publicKey: string;
  /** A preshared key file applied to every peer (the spec's, or the stored config's PSK written to the state dir). */
  readonly presharedKeyFile?: string;
  /** A fingerprint of the preshared key (never the key), so a changed PSK is applied to every peer. */
  readonly presharedKeyTag?: string;
}

/**
 * A device whose MAC this host publishes in its lease (vxlan's VTEP). The agent keeps the
 * existing device's MAC (a restart keeps it, also one flanneld created), else derives one from
 * the host ID, the family and `macSeed`, so a reboot or a recreated device keeps the MAC peers have.
 */
export interface PublishedMAC {
  readonly device: string;
  readonly family: Family;
  /** Mixed into the derived MAC (vxlan: the VNI, so each VNI's device has its own). */
  readonly macSeed: number;
}

/** What a backend that uses WireGuard asks the agent for: its device (for /status) and the stored config's PSK. */
export interface WireguardNeed {
  /** The WireGuard device: its implementation (kernel or wireguard-go) is shown in /status. */
  readonly device: string;
  /** The stored config's preshared key (a secret: written to a 0600 file for `wg`, never logged). */
  readonly storedPSK?: string;
}

export interface Backend extends SpecBackend, ConfigViewBackend, DoctorBackend {
  /** The devices weft owns for this backend (observed each pass; none for plain routes). */
  deviceNames(config: NetworkConfig): readonly string[];
  /** What the encapsulation adds to each packet: the overlay MTU is the underlay's minus this (0: plain routes). */
  readonly overheadBytes: number;
  /** The overlay MTU (FLANNEL_MTU): `hostMTU` overrides the computed value. */
  mtu(config: NetworkConfig, facts: HostFacts, hostMTU: number | undefined): number;
  /** The lease value this host publishes (`keys`: its WireGuard public key; `vtepMACv6`: the IPv6 device's MAC). */
  leaseAttrs(
    config: NetworkConfig,
    facts: HostFacts,
    vtepMAC: string,
    keys?: WireguardKeys,
    vtepMACv6?: string,
  ): LeaseAttrs;
  /**
   * Refuse to run `config` on this host (host-gw behind NAT; a family `families` lacks, in the
   * backend's words): a message, or undefined.
   */
  refusal(config: NetworkConfig, facts: HostFacts): string | undefined;
  desired(input: BackendInput): DesiredDatapath;
  /**
   * Optional (core/datapath/desired-index.ts): a name such that peers with different names never affect
   * each other's desired entries, and `desired` over one name's peers yields exactly their
   * entries. With it, one changed lease costs O(1); without it, every pass computes in full.
   */
  peerGroup?(peer: PeerLease): string;
  /** The devices whose MAC its lease publishes (absent: none). */
  publishedMACs?(config: NetworkConfig): readonly PublishedMAC[];
  /** Whether it needs this host's WireGuard keys, and for which device (absent or undefined: it does not). */
  wireguard?(config: NetworkConfig): WireguardNeed | undefined;
  /** `weft validate`'s words for the backend and its options (`vxlan (VNI 1, port 8472)`); absent: its type. */
  describe?(options: BackendOptions | undefined): string;
}
