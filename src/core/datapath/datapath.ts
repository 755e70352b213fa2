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
import type { ObservedVxlan, VxlanDevice } from './device-vxlan.js';
import type { ObservedTun, ObservedWireguardLink, WireguardDevice } from './device-wireguard.js';

// Each kind's own values are its module's (device-vxlan.ts, device-wireguard.ts); the unions are here.
export type { ObservedVxlan, VxlanDevice } from './device-vxlan.js';
export type {
  ObservedTun,
  ObservedWireguard,
  ObservedWireguardLink,
  ObservedWireguardPeer,
  WireguardDevice,
  WireguardPeer,
} from './device-wireguard.js';

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
