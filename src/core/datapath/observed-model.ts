/**
 * The kernel datapath as last known, kept keyed and up to date between full observations:
 * built from one (adapters' observeDatapath), then changed by the netlink events that name
 * what changed (core/datapath/netlink-events.ts parseModelEvent) and by the operations weft applied
 * successfully. So a pass poked by one change plans that change's keys against it in O(1)
 * instead of dumping every route, neighbour and fdb entry again. What it cannot model exactly
 * (a device or address change, an fdb entry with several destinations, an operation on a
 * device) answers "look again": the caller then observes afresh, as it also does on the
 * periodic full resync (the safety net for a lost or lagging event stream).
 */
import { type Prefix, sameIP, within } from '../net/cidr.js';
import {
  type FdbEntry,
  type Neighbour,
  type ObservedDatapath,
  type ObservedDevice,
  type ObservedRoute,
  IPV6_USER_ROUTE_METRIC,
  WEFT_ROUTE_PROTO,
  neighKey,
  routeKey,
} from './datapath.js';
import type { ModelEvent } from './netlink-events.js';
import type { KeyedObserved, Op, TouchedKeys } from './plan.js';

/** What applying an event or operation did to the model. */
export type ModelChange = 'unchanged' | 'changed' | 'unknown';

const sameRouteEntry = (a: ObservedRoute, b: ObservedRoute): boolean =>
  (a.metric ?? 0) === (b.metric ?? 0) &&
  a.dev === b.dev &&
  a.proto === b.proto &&
  a.onlink === b.onlink &&
  a.scopeLink === b.scopeLink &&
  (a.via === undefined ? b.via === undefined : b.via !== undefined && sameIP(a.via, b.via));

/**
 * The same routes, in any order: each route of `a` pairs with its own route of `b` to the same
 * destination (routeKey: the prefix) that is the same entry (sameRouteEntry). O(k) for k routes.
 */
export function sameRoutes(a: readonly ObservedRoute[], b: readonly ObservedRoute[]): boolean {
  if (a.length !== b.length) return false;
  const unmatched = new Map<string, ObservedRoute[]>();
  for (const r of b) {
    const k = routeKey(r.dst);
    const at = unmatched.get(k);
    if (at) at.push(r);
    else unmatched.set(k, [r]);
  }
  return a.every((r) => {
    const at = unmatched.get(routeKey(r.dst));
    const i = at ? at.findIndex((x) => sameRouteEntry(x, r)) : -1;
    if (i >= 0) at?.splice(i, 1);
    return i >= 0;
  });
}

export class ObservedModel implements KeyedObserved {
  readonly devices: ReadonlyMap<string, ObservedDevice>;
  readonly routes = new Map<string, ObservedRoute[]>();
  readonly neighs = new Map<string, Neighbour>();
  readonly fdb = new Map<string, FdbEntry[]>();
  /** Bumped by a change to a route outside the networks (they decide host-gw adjacency). */
  underlayVersion = 0;

  constructor(
    o: ObservedDatapath,
    private readonly networks: readonly Prefix[],
  ) {
    this.devices = o.devices;
    for (const r of o.routes) this.putRoute(r);
    for (const n of o.neighs) this.neighs.set(neighKey(n.ip), n);
    for (const f of o.fdb) {
      const at = this.fdb.get(f.mac);
      if (at) at.push(f);
      else this.fdb.set(f.mac, [f]);
    }
  }

  /** The model as an observation (for a full plan and the backend's view of the routes). O(entries). */
  view(): ObservedDatapath {
    return {
      devices: this.devices,
      routes: [...this.routes.values()].flat(),
      neighs: [...this.neighs.values()],
      fdb: [...this.fdb.values()].flat(),
    };
  }

  /** Every main-table route, as the backend's adjacency check reads them. */
  routeList(): ObservedRoute[] {
    return [...this.routes.values()].flat();
  }

  private putRoute(r: ObservedRoute): ModelChange {
    const k = routeKey(r.dst);
    const at = this.routes.get(k) ?? [];
    const i = at.findIndex((x) => (x.metric ?? 0) === (r.metric ?? 0));
    if (i >= 0 && sameRouteEntry(at[i] as ObservedRoute, r)) return 'unchanged';
    if (i >= 0) at[i] = r;
    else at.push(r);
    this.routes.set(k, at);
    return 'changed';
  }

  private dropRoute(r: ObservedRoute, match: (x: ObservedRoute) => boolean): ModelChange {
    const k = routeKey(r.dst);
    const at = this.routes.get(k);
    const i = at ? at.findIndex(match) : -1;
    if (!at || i < 0) return 'unchanged';
    at.splice(i, 1);
    if (at.length === 0) this.routes.delete(k);
    return 'changed';
  }

  private routeChanged(r: ObservedRoute, c: ModelChange, touched: TouchedKeys): ModelChange {
    if (c !== 'changed') return c;
    touched.routes.add(routeKey(r.dst));
    if (!this.networks.some((n) => within(r.dst, n))) this.underlayVersion++;
    return c;
  }

  /** Apply one event; the keys it changed are added to `touched`. */
  applyEvent(e: ModelEvent, touched: TouchedKeys): ModelChange {
    switch (e.kind) {
      case 'route': {
        const c = e.deleted
          ? this.dropRoute(e.route, (x) => (x.metric ?? 0) === (e.route.metric ?? 0))
          : this.putRoute(e.route);
        return this.routeChanged(e.route, c, touched);
      }
      case 'neigh':
        return this.setNeigh(e.neigh, e.gone, touched);
      case 'fdb':
        return this.setFdb(e.fdb, e.gone, touched);
    }
  }

  private setNeigh(n: Neighbour, gone: boolean, touched: TouchedKeys): ModelChange {
    const k = neighKey(n.ip);
    const had = this.neighs.get(k);
    if (gone) {
      if (!had || had.dev !== n.dev) return 'unchanged';
      this.neighs.delete(k);
    } else {
      if (had && had.dev === n.dev && had.mac === n.mac) return 'unchanged';
      this.neighs.set(k, n);
    }
    touched.neighs.add(k);
    return 'changed';
  }

  /**
   * An fdb entry present or gone. A vxlan MAC normally has one destination (`fdb replace`
   * changes it in place); a new destination for a MAC that has another one may be a replace or
   * an append: unknown.
   */
  private setFdb(f: FdbEntry, gone: boolean, touched: TouchedKeys): ModelChange {
    const at = this.fdb.get(f.mac) ?? [];
    const i = at.findIndex((x) => x.dev === f.dev && sameIP(x.dst, f.dst));
    if (gone) {
      if (i < 0) return 'unchanged';
      at.splice(i, 1);
      if (at.length === 0) this.fdb.delete(f.mac);
    } else {
      if (i >= 0) return 'unchanged';
      if (at.length > 0) return 'unknown';
      this.fdb.set(f.mac, [f]);
    }
    touched.fdb.add(f.mac);
    return 'changed';
  }

  /** Record an operation the kernel accepted (its echo, if any, then finds the model already so). */
  applyOp(op: Op): ModelChange {
    const none = { routes: new Set<string>(), neighs: new Set<string>(), fdb: new Set<string>() };
    switch (op.kind) {
      case 'route-replace': {
        // As the kernel lists it: an IPv6 route added without a metric has 1024 (its echo then changes nothing).
        const r = op.route;
        const metric = r.dst.ip.family === 6 ? { metric: IPV6_USER_ROUTE_METRIC } : {};
        return this.putRoute({
          dst: r.dst,
          via: r.via,
          dev: r.dev,
          proto: WEFT_ROUTE_PROTO,
          onlink: r.onlink,
          scopeLink: false,
          ...metric,
        });
      }
      case 'route-del': {
        const r = op.route;
        return this.dropRoute(
          r,
          (x) => x.dev === r.dev && (r.via === undefined || (x.via !== undefined && sameIP(x.via, r.via))),
        );
      }
      case 'neigh-replace':
        return this.setNeigh(op.neigh, false, none);
      case 'neigh-del':
        return this.setNeigh(op.neigh, true, none);
      case 'fdb-del':
        return this.setFdb(op.fdb, true, none);
      case 'fdb-replace': {
        const at = this.fdb.get(op.fdb.mac) ?? [];
        if (at.length > 1) return 'unknown';
        this.fdb.set(op.fdb.mac, [op.fdb]);
        return 'changed';
      }
      default:
        return 'unknown';
    }
  }
}
