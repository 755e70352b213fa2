/**
 * What `weft doctor` judges, as data (the adapters observe, doctor*.ts judge): the daemon's
 * status, etcd's leases, the kernel's datapath, route lookups and bounded pings, iptables,
 * sysctls, the clock; and the findings it turns them into. Types only: every doctor module
 * imports them from here, and none imports another's judgements (no circle).
 */
import type { IP, Prefix } from '../net/cidr.js';
import type { DesiredDatapath, ObservedDatapath } from '../datapath/datapath.js';
import type { NetworkConfig } from '../flannel/config-check.js';
import type { LeaseRow } from '../fleet/lease-report.js';
import type { StatusObservation } from '../health/status-report.js';

/** The answer of the daemon's /status endpoint, or why there is none (core/health/status-report.ts). */
export type { StatusObservation };

/** A bounded ping's outcome; `error` is what ping said when it sent nothing (e.g. "message too long"). */
export interface PingResult {
  readonly sent: number;
  readonly received: number;
  readonly error?: string;
}

/** `ip route get` for the probe target: the device and gateway the kernel picks, or its error. */
export type RouteLookup =
  | { readonly ok: true; readonly dev: string; readonly gateway?: string }
  | { readonly ok: false; readonly error: string };

/** A main-table route that contains the target (`ip route show match`), most specific first. */
export interface MatchingRoute {
  readonly dst: string;
  readonly type: string;
  readonly dev?: string;
  readonly gateway?: string;
  readonly proto?: string;
}

/** What was observed about one programmed peer. */
export interface PeerObservation {
  readonly subnet: Prefix;
  readonly publicIP: string;
  /** The overlay address probed: the peer subnet's .0 or .1 (DoctorDescriptor.probeTarget). */
  readonly target: IP;
  /** This host's overlay address the probes leave from; undefined when it has none. */
  readonly source?: IP;
  readonly lookup: RouteLookup;
  readonly matching: readonly MatchingRoute[];
  readonly underlay?: PingResult;
  readonly overlay?: PingResult;
  /** The do-not-fragment probe at the overlay MTU. */
  readonly df?: PingResult;
}

export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

/** One check's verdict, in plain words, and what to do about it ('' when nothing). */
export interface Finding {
  readonly check: string;
  readonly verdict: Verdict;
  /** The peer subnet a per-peer finding is about; null for host-wide findings. */
  readonly peer: string | null;
  readonly what: string;
  readonly fix: string;
}

/** This host's lease as etcd holds it. */
export interface OwnLease {
  readonly subnet: Prefix;
  readonly publicIP: string;
  /** etcd's TimeToLive answer; -1 for a key without an etcd lease. */
  readonly ttlSeconds: number;
  /** How the lease was recognised as this host's ("owner record", "the daemon's status", ...). */
  readonly how: string;
}

/**
 * What `weft doctor` checks differently per backend: the backend's doctor descriptor
 * (`DoctorBackend.doctor`, src/backends/*.ts), so that no check names a backend.
 */
export interface DoctorDescriptor {
  /** How peers' traffic crosses the underlay when it is encapsulated (vxlan: UDP 8472); absent for plain routes. */
  readonly encapsulation?: { readonly name: string; readonly protocol: string; readonly port: number };
  /** What the encapsulation adds to each packet: a path must carry the overlay MTU plus this. */
  readonly overheadBytes: number;
  /** Peers get the per-peer route checks and probes (false: they are checked another way, WireGuard's against `wg show`). */
  readonly peerRoutes: boolean;
  /**
   * The overlay address a peer answers on: `device`, its subnet's .0, which every host holds on
   * the backend's device (flannel's convention, no container runtime needed); `bridge`, its
   * subnet's .1, which the container bridge holds once the runtime runs with weft's options.
   */
  readonly probeTarget: 'device' | 'bridge';
  /** The checksum-offload check (ethtool -k) applies to the backend's device. */
  readonly checksumOffload: boolean;
}

/** A backend as `weft doctor` sees it. */
export interface DoctorBackend {
  doctor(config: NetworkConfig): DoctorDescriptor;
}

/** What etcd said, or why it could not be asked. */
export type EtcdObservation =
  | { readonly ok: false; readonly error: string }
  | {
      readonly ok: true;
      readonly backendType: string;
      /** What the network's backend says about checking it. */
      readonly doctor: DoctorDescriptor;
      readonly network: Prefix;
      readonly rows: readonly LeaseRow[];
      readonly own: OwnLease | undefined;
    };

/** The offload state of the vxlan device (`ethtool -k`), or why it is unknown. */
export type OffloadObservation =
  | { readonly kind: 'not-vxlan' }
  | { readonly kind: 'no-ethtool' }
  | { readonly kind: 'error'; readonly error: string }
  | { readonly kind: 'read'; readonly device: string; readonly txChecksumIPGeneric: 'on' | 'off' | 'absent' };

/** The local clock against etcd's (the HTTP Date header of its /health answer). */
export type ClockObservation =
  | { readonly ok: true; readonly skewMs: number; readonly source: string }
  | { readonly ok: false; readonly error: string };

/** Everything `diagnose` judges. Absent parts are reported as skipped, never guessed. */
export interface DoctorObservations {
  readonly status: StatusObservation;
  readonly etcd: EtcdObservation;
  /** The kernel's datapath (weft's device, main routes, neighbours, fdb); undefined when unreadable. */
  readonly observed?: ObservedDatapath;
  /** What the backend wants for this host and its peers; undefined without a lease or config. */
  readonly desired?: DesiredDatapath;
  /** The backend's (first) device name, when it has one. */
  readonly device?: string;
  /** The fabric interface (underlay) and the overlay MTU in use. */
  readonly iface?: string;
  readonly mtu?: number;
  /** Per-peer observations (route lookup and probes), at most the cap. */
  readonly peers: readonly PeerObservation[];
  /** Peers left out by the cap (0 when none), and the cap. */
  readonly peersOmitted: number;
  readonly peerCap: number;
  /** A --peer filter that matched nothing: the text given. */
  readonly peerFilterUnmatched?: string;
  /** `iptables-save -t filter` text, or the error. */
  readonly filterTable: { readonly ok: true; readonly text: string } | { readonly ok: false; readonly error: string };
  /** `/proc/sys/net/ipv4/ip_forward` (trimmed), undefined when unreadable. */
  readonly ipForward?: string;
  /** rp_filter per interface name ('all' included); a missing file is absent. */
  readonly rpFilter: Readonly<Record<string, number>>;
  readonly offload: OffloadObservation;
  readonly clock: ClockObservation;
}
