/**
 * The kernel datapath weft owns, as plain values: what a backend wants (DesiredDatapath) and
 * what the kernel holds (ObservedDatapath). Both are keyed maps so that comparing them costs
 * O(peers) and one changed peer yields O(1) operations (plan.ts).
 */
import { type IP, type Prefix, formatIP, formatPrefix } from './cidr.js';

/** The route protocol number weft stamps on every route it creates (`ip route ... proto 175`). */
export const WEFT_ROUTE_PROTO = '175';

/** A vxlan device as weft wants it (flannel-compat.md §3.2). */
export interface VxlanDevice {
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
  /** The own subnet's network address, /32 (flannel's convention). */
  readonly address: Prefix;
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
  readonly device?: VxlanDevice;
  /** Keyed by destination prefix text. */
  readonly routes: ReadonlyMap<string, Route>;
  /** Keyed by neighbour IP text. */
  readonly neighs: ReadonlyMap<string, Neighbour>;
  /** Keyed by MAC. */
  readonly fdb: ReadonlyMap<string, FdbEntry>;
  readonly skipped: readonly Skipped[];
  /** Peers fully programmed by this desired state. */
  readonly peersProgrammed: number;
}

/** The device as the kernel reports it (ip -d -json link). */
export interface ObservedDevice {
  readonly name: string;
  readonly kind: string;
  readonly vni?: number;
  readonly local?: string;
  readonly underlay?: string;
  readonly port?: number;
  readonly learning?: boolean;
  readonly gbp?: boolean;
  readonly mtu: number;
  readonly mac: string;
  readonly up: boolean;
  /** IPv4 addresses on the device. */
  readonly addrs: readonly Prefix[];
}

/** An observed main-table route (any owner). */
export interface ObservedRoute {
  readonly dst: Prefix;
  readonly via?: IP;
  readonly dev: string;
  readonly proto: string;
  readonly onlink: boolean;
  readonly scopeLink: boolean;
}

export interface ObservedDatapath {
  readonly device?: ObservedDevice;
  /** Every IPv4 main-table route (ownership is decided by the planner). */
  readonly routes: readonly ObservedRoute[];
  /** Permanent neighbours on the weft device. */
  readonly neighs: readonly Neighbour[];
  /** Permanent fdb entries with a destination on the weft device. */
  readonly fdb: readonly FdbEntry[];
}

export const routeKey = (dst: Prefix): string => formatPrefix(dst);
export const neighKey = (ip: IP): string => formatIP(ip);
export const fdbKey = (e: { mac: string; dst: IP }): string => `${e.mac} ${formatIP(e.dst)}`;
