/**
 * The kernel datapath weft owns, as plain values: what a backend wants (DesiredDatapath) and
 * what the kernel holds (ObservedDatapath). Both are keyed maps so that comparing them costs
 * O(peers) and one changed peer yields O(1) operations (plan.ts).
 *
 * Family-neutral by construction: every address is an `IP`/`Prefix` that carries its family,
 * keys are the address text, and a device holds a list of addresses (one per family it
 * serves). Devices are a closed union of kinds, desired (`DesiredDevice`) and observed
 * (`ObservedDevice`); core/datapath/devices.ts is their registry (how each kind is parsed,
 * compared, created, fixed in place and checked by the doctor): a new kind is a member of each
 * union, a module and an entry there, not a branch through the planner.
 */
import { type IP, type Prefix, formatIP, formatPrefix, ip, prefix, within } from '../net/cidr.js';

/** The route protocol number weft stamps on every route it creates (`ip route ... proto 175`). */
export const WEFT_ROUTE_PROTO = '175';

/**
 * The metric the kernel gives an IPv6 route added without one (IP6_RT_PRIO_USER); an IPv4
 * route's is 0. Every IPv6 route is listed and reported with its metric, so the kept model
 * (core/datapath/observed-model.ts) records weft's own `route replace` under this one.
 */
export const IPV6_USER_ROUTE_METRIC = 1024;

const LINK_LOCAL_V6 = prefix(ip(6, 0xfe80n << 112n), 10);

/**
 * Is a main-table route's destination one the datapath model keeps? All but IPv6 link-local
 * ones: the kernel puts `fe80::/64 dev X proto kernel` on every device, and peers are reached
 * at global addresses only (a link-local public address is refused). The observation
 * (adapters/iproute2.ts) and the monitor parser (core/datapath/netlink-events.ts) keep the same set.
 */
export const modelledRouteDst = (dst: Prefix): boolean => !within(dst, LINK_LOCAL_V6);

/** A vxlan device as weft wants it (flannel-compat.md §3.2). */
export interface VxlanDevice {
  readonly kind: 'vxlan';
  readonly name: string;
  readonly vni: number;
  readonly local: IP;
  /** The underlay interface name. */
  readonly underlay: string;
  readonly port: number;
  readonly learning: boolean;
  readonly gbp: boolean;
  readonly mtu: number;
  readonly mac: string;
  /** Its addresses: the own subnet's network address, /32 (flannel's convention); /128 for IPv6. */
  readonly addresses: readonly Prefix[];
}

/** A WireGuard peer as weft wants it (keyed by public key in WireguardDevice.peers). */
export interface WireguardPeer {
  readonly publicKey: string;
  /** `ip:port` (IPv4). */
  readonly endpoint: string;
  readonly allowedIPs: readonly Prefix[];
  /** 0: off. */
  readonly keepaliveSeconds: number;
}

/**
 * A WireGuard device as weft wants it (flannel-ipv6-wireguard.md §2.3): kernel or userspace,
 * chosen by the adapter. Keys appear only as a file path and the public key, never the secret.
 */
export interface WireguardDevice {
  readonly kind: 'wireguard';
  readonly name: string;
  readonly mtu: number;
  readonly addresses: readonly Prefix[];
  readonly listenPort: number;
  readonly privateKeyFile: string;
  /** Derived from the private key: how an observed device shows it carries that key. */
  readonly publicKey: string;
  /** Every peer gets this preshared key file when set. */
  readonly presharedKeyFile?: string;
  /** A fingerprint of that key (adapters/wireguard.ts pskTag; never the key): a changed PSK is set again. */
  readonly presharedKeyTag?: string;
  /** Keyed by public key. */
  readonly peers: ReadonlyMap<string, WireguardPeer>;
}

/**
 * Every kind of device a backend may own. Each kind has an entry in DEVICE_KINDS
 * (core/datapath/devices.ts: how an observed device is judged compatible, how one is created
 * and fixed in place, what the doctor checks).
 */
export type DesiredDevice = VxlanDevice | WireguardDevice;

/** A route with no gateway, `dst dev D scope link` (wireguard's route for the whole network, §2.3). */
export interface LinkRoute {
  readonly dst: Prefix;
  readonly dev: string;
}

/** A route weft programs. `onlink` only for vxlan's `S via G dev flannel.N onlink`. */
export interface Route {
  readonly dst: Prefix;
  readonly via: IP;
  readonly dev: string;
  readonly onlink: boolean;
}

export interface Neighbour {
  readonly ip: IP;
  readonly mac: string;
  readonly dev: string;
}

export interface FdbEntry {
  readonly mac: string;
  readonly dst: IP;
  readonly dev: string;
}

/** A peer that is known but not programmed, and why (reported in logs and status). */
export interface Skipped {
  readonly subnetKey: string;
  readonly reason: string;
}

export interface DesiredDatapath {
  /** The devices weft owns on this host, none for a plain-route backend (host-gw). */
  readonly devices: readonly DesiredDevice[];
  /** Keyed by destination prefix text. */
  readonly routes: ReadonlyMap<string, Route>;
  /** Keyed by neighbour IP text. */
  readonly neighs: ReadonlyMap<string, Neighbour>;
  /** Keyed by MAC. */
  readonly fdb: ReadonlyMap<string, FdbEntry>;
  readonly skipped: readonly Skipped[];
  /** Routes without a gateway on weft's devices, keyed by destination prefix text (none when absent). */
  readonly linkRoutes?: ReadonlyMap<string, LinkRoute>;
  /** Peers fully programmed by this desired state. */
  readonly peersProgrammed: number;
}

/** What the kernel reports of every device, whatever its kind (`ip -d -json addr show dev X`). */
export interface ObservedDeviceBase {
  readonly name: string;
  readonly mtu: number;
  readonly up: boolean;
  /** Addresses on the device: IPv4 ones and global IPv6 ones (never the kernel's own link-local fe80::). */
  readonly addrs: readonly Prefix[];
}

/**
 * A vxlan device and its parameters as iproute2 prints them (core/datapath/device-vxlan.ts reads
 * them); a parameter iproute2 did not print is absent, and the device then is not compatible.
 */
export interface ObservedVxlan extends ObservedDeviceBase {
  readonly kind: 'vxlan';
  readonly mac: string;
  readonly vni?: number;
  /** vxlan's source address as iproute2 prints it (`local`, or `local6` over IPv6). */
  readonly local?: string;
  /** The underlay interface (`link`). */
  readonly underlay?: string;
  readonly port?: number;
  readonly learning?: boolean;
  readonly gbp?: boolean;
}

/** The kernel's WireGuard link; `wireguard`: its configuration (`wg show DEV dump`), when it could be read. */
export interface ObservedWireguardLink extends ObservedDeviceBase {
  readonly kind: 'wireguard';
  readonly wireguard?: ObservedWireguard;
}

/**
 * A tun device: userspace WireGuard's (wireguard-go) when `wg` reads a configuration from it
 * (`wireguard`), else someone else's.
 */
export interface ObservedTun extends ObservedDeviceBase {
  readonly kind: 'tun';
  readonly wireguard?: ObservedWireguard;
}

/**
 * A device of a kind weft does not deal with that holds a name weft asked about (a bridge, a
 * dummy, a veth...): never compatible, so it is deleted and weft's device created.
 */
export interface ObservedOtherDevice extends ObservedDeviceBase {
  readonly kind: 'other';
  /** The kernel's name of its kind (`linkinfo.info_kind`; '' when it reports none). */
  readonly linkKind: string;
}

/**
 * A device as the kernel reports it (ip -d -json link), one member per kind weft deals with,
 * each with only its own fields. Each kind is parsed, judged and fixed by its module through
 * core/datapath/devices.ts (the registry); code elsewhere does not branch on `kind`.
 */
export type ObservedDevice = ObservedVxlan | ObservedWireguardLink | ObservedTun | ObservedOtherDevice;

/** A peer as `wg show DEV dump` lists it. */
export interface ObservedWireguardPeer {
  readonly publicKey: string;
  readonly endpoint?: string;
  /** As wg prints them (`198.18.2.0/24`). */
  readonly allowedIPs: readonly string[];
  readonly keepaliveSeconds: number;
  readonly presharedKey: boolean;
  /** The PSK's fingerprint (adapters/wireguard.ts pskTag), when it has one. */
  readonly presharedKeyTag?: string;
  /** Unix seconds of the latest handshake (0: none). */
  readonly latestHandshake: number;
}

/** A WireGuard device's configuration; the private key is dropped by the adapter, never kept. */
export interface ObservedWireguard {
  readonly publicKey: string;
  readonly listenPort: number;
  readonly peers: ReadonlyMap<string, ObservedWireguardPeer>;
  /** `kernel` or `userspace` (wireguard-go), as the adapter found the device. */
  readonly implementation: 'kernel' | 'userspace';
}

/** An observed main-table route (any owner). */
export interface ObservedRoute {
  readonly dst: Prefix;
  readonly via?: IP;
  readonly dev: string;
  readonly proto: string;
  readonly onlink: boolean;
  readonly scopeLink: boolean;
  /** The route's metric when not 0 (a destination may have one route per metric). */
  readonly metric?: number;
}

export interface ObservedDatapath {
  /** weft's devices that exist, by name (only the names the backend asked about). */
  readonly devices: ReadonlyMap<string, ObservedDevice>;
  /** Every main-table route of the families observed (ownership is decided by the planner). */
  readonly routes: readonly ObservedRoute[];
  /** Permanent neighbours on weft's devices. */
  readonly neighs: readonly Neighbour[];
  /** Permanent fdb entries with a destination on weft's devices. */
  readonly fdb: readonly FdbEntry[];
}

export const routeKey = (dst: Prefix): string => formatPrefix(dst);
/** An observed route as `ip route` shows it (`192.0.2.0/24 dev eth0 proto kernel`), for messages. */
export const describeRoute = (r: ObservedRoute): string =>
  `${formatPrefix(r.dst)}${r.via ? ` via ${formatIP(r.via)}` : ''} dev ${r.dev}${r.proto === 'boot' ? '' : ` proto ${r.proto}`}${r.metric ? ` metric ${r.metric}` : ''}`;
export const neighKey = (ip: IP): string => formatIP(ip);
export const fdbKey = (e: { mac: string; dst: IP }): string => `${e.mac} ${formatIP(e.dst)}`;
