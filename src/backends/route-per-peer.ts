/**
 * The per-peer loop shared by the backends that program one entry per peer subnet (host-gw,
 * vxlan; flannel's ipip next), as flannel shares it between host-gw and ipip. Half by half, peer
 * by peer: a peer that does not fit is skipped with the reason, one whose subnet an older lease
 * claims too is skipped (the oldest claim wins, claims.ts), and the backend programs the rest
 * (or still skips one, saying why). And the direct route to an L2-adjacent peer that host-gw and
 * vxlan's DirectRouting both program. Pure.
 */
import { type IP, type Prefix, formatIP, formatPrefix } from '../core/net/cidr.js';
import { type ObservedRoute, type Route, type Skipped, routeKey } from '../core/datapath/datapath.js';
import { underlayPathTo } from '../core/host/host-facts.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import { oldestBy } from './claims.js';

/** One address family's view of the peers. */
export interface PeerHalf {
  /** Put before a skip reason: '' for IPv4, 'IPv6 half: ' for IPv6. */
  readonly tag: string;
  readonly subnet: (p: PeerLease) => Prefix | undefined;
}

/** Why a peer's half is not programmed at all (it then claims nothing). */
export interface Unfit {
  readonly why: string;
}

/** What a backend asks of a peer's half before it claims its subnet: `F`, or why not. */
export type Fit<H extends PeerHalf, F extends object> = (p: PeerLease, h: H) => F | Unfit;

const unfit = (f: object): f is Unfit => 'why' in f;

/** For each subnet a fitting half of a peer claims, the oldest lease (etcd create revision) that claims it. */
export function subnetOwners<H extends PeerHalf, F extends object>(
  peers: readonly PeerLease[],
  halves: readonly H[],
  fit: Fit<H, F>,
): Map<string, PeerLease> {
  return oldestBy(peers, (p) =>
    halves.flatMap((h) => {
      const s = h.subnet(p);
      return s && !unfit(fit(p, h)) ? [routeKey(s)] : [];
    }),
  );
}

/** What the loop made of the peers. */
export interface PeerLoopResult {
  readonly skipped: Skipped[];
  /** Subnet keys of the peers programmed (in either half). */
  readonly programmed: Set<string>;
}

/**
 * For each half and peer with a subnet in it: skip it when it does not `fit` or an older lease
 * holds its subnet (`owners`, subnetOwners), else `program` it: the backend adds its entries and
 * returns undefined, or returns why it skips the peer after all.
 */
export function eachPeer<H extends PeerHalf, F extends object>(
  peers: readonly PeerLease[],
  halves: readonly H[],
  fit: Fit<H, F>,
  owners: ReadonlyMap<string, PeerLease>,
  program: (p: PeerLease, h: H, f: F, subnet: Prefix) => string | undefined,
): PeerLoopResult {
  const skipped: Skipped[] = [];
  const programmed = new Set<string>();
  for (const h of halves) {
    for (const p of peers) {
      const subnet = h.subnet(p);
      if (!subnet) continue;
      const skip = (reason: string): void => {
        skipped.push({ subnetKey: p.subnetKey, reason: `${h.tag}${reason}` });
      };
      const f = fit(p, h);
      if (unfit(f)) {
        skip(f.why);
        continue;
      }
      const owner = owners.get(routeKey(subnet));
      if (owner !== p) {
        skip(`subnet ${formatPrefix(subnet)} is also claimed by the older lease ${owner?.subnetKey ?? '?'}`);
        continue;
      }
      const why = program(p, h, f, subnet);
      if (why === undefined) programmed.add(p.subnetKey);
      else skip(why);
    }
  }
  return { skipped, programmed };
}

/** Why `pub` is not on `iface`'s L2 segment (reached through a router, another device, or not at all), or undefined when it is. */
export function notAdjacent(routes: readonly ObservedRoute[], pub: IP, iface: string): string | undefined {
  const path = underlayPathTo(routes, pub);
  if (path && path.via === undefined && path.dev === iface) return undefined;
  return `PublicIP ${formatIP(pub)} is not on ${iface}'s L2 segment (${path?.via ? `reached via router ${formatIP(path.via)}` : path ? `reached via ${path.dev}` : 'no route'})`;
}

/** The plain route to an adjacent peer's subnet through its public address (host-gw; vxlan with DirectRouting). */
export const directRoute = (dst: Prefix, via: IP, dev: string): Route => ({ dst, via, dev, onlink: false });
