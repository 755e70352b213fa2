/**
 * plan(desired, observed) -> the ordered operations that make the kernel match, touching only
 * what weft owns: its devices and what hangs off them, routes stamped `proto 175`, and the
 * routes flanneld leaves inside the network (so a host moves from flanneld to weft in place).
 * Keyed maps on both sides: a pass is O(peers) to compute and one changed peer is O(1) writes.
 * Family-neutral: ownership is judged per family (the networks and own subnets of each family
 * served), and every object carries addresses of its own family. Device kinds differ only in
 * their modules, called through core/datapath/devices.ts. Operations render to `ip -batch` /
 * `bridge -batch` lines (argv words, never a shell); a process without `-4`/`-6` takes either
 * family's lines, the family read from the addresses on each line.
 */
import { type Prefix, formatIP, formatPrefix, overlaps, sameIP, samePrefix, within } from '../net/cidr.js';
import {
  type DesiredDatapath,
  type DesiredDevice,
  type FdbEntry,
  type LinkRoute,
  type Neighbour,
  type ObservedDatapath,
  type ObservedDevice,
  type ObservedRoute,
  type Route,
  WEFT_ROUTE_PROTO,
  fdbKey,
  neighKey,
  routeKey,
} from './datapath.js';
import { type LinkSetting, type Tool, deviceAddLine, deviceAddTool, deviceConfigOps, deviceFixes } from './devices.js';
import { type WireguardOp, renderWireguardOp } from './wireguard-plan.js';

export type Op =
  | { readonly kind: 'link-del'; readonly name: string }
  | { readonly kind: 'link-add'; readonly device: DesiredDevice }
  | { readonly kind: 'link-set'; readonly name: string; readonly set: LinkSetting }
  | { readonly kind: 'addr-add' | 'addr-del'; readonly dev: string; readonly addr: Prefix }
  | { readonly kind: 'route-del'; readonly route: ObservedRoute }
  | { readonly kind: 'neigh-del' | 'neigh-replace'; readonly neigh: Neighbour }
  | { readonly kind: 'fdb-del' | 'fdb-replace'; readonly fdb: FdbEntry }
  | { readonly kind: 'route-replace'; readonly route: Route }
  | { readonly kind: 'route-replace-link'; readonly route: LinkRoute }
  | WireguardOp;

/**
 * Destinations weft wants a route to but leaves alone, by routeKey: a route weft does not own
 * (the kernel's route for a LAN, an operator's or a VPN's) already holds the destination, and
 * `ip route replace` would take it over. The foreign route found, for the report.
 */
export type RefusedRoutes = Map<string, ObservedRoute>;

/** What weft may own besides its devices, per family: the networks, this host's subnets, the underlay interface. */
export interface Ownership {
  readonly networks: readonly Prefix[];
  readonly ownSubnets: readonly Prefix[];
  readonly iface: string;
  /**
   * Subnets this host held before (a move, a restart on a new subnet): a bridge Docker has not
   * been restarted on since still holds one, and its connected route is the fabric's leftover,
   * which a peer's route to that subnet replaces (never a route weft does not own otherwise).
   */
  readonly formerSubnets?: readonly Prefix[];
}

/** The connected route a bridge still has for a subnet this host held before (see Ownership.formerSubnets). */
const isLeftover = (r: ObservedRoute, own: Ownership): boolean =>
  r.proto === 'kernel' && r.via === undefined && (own.formerSubnets ?? []).some((s) => within(r.dst, s));

const inNetwork = (p: Prefix, own: Ownership): boolean => own.networks.some((n) => within(p, n));
const inOwnSubnet = (p: Prefix, own: Ownership): boolean => own.ownSubnets.some((s) => overlaps(p, s));

/** Is this observed route one weft manages (and so may replace or delete)? */
export function ownsRoute(r: ObservedRoute, own: Ownership, deviceNames: ReadonlySet<string>): boolean {
  // wireguard's route for the whole network on its device (it contains the own subnet).
  if (deviceNames.has(r.dev) && own.networks.some((n) => samePrefix(n, r.dst))) return true;
  if (!inNetwork(r.dst, own) || inOwnSubnet(r.dst, own)) return false;
  // The kernel's route for an address (IPv6 adds one even for a /128) goes with the address,
  // which is what weft plans; deleting it as well would only fail once the address is gone.
  if (r.proto === 'kernel') return false;
  if (r.proto === WEFT_ROUTE_PROTO || deviceNames.has(r.dev)) return true;
  // flanneld's host-gw and DirectRouting routes: `S via P dev <iface>`, default protocol.
  return r.via !== undefined && r.proto === 'boot' && r.dev === own.iface;
}

const sameRoute = (o: ObservedRoute, d: Route): boolean =>
  o.proto === WEFT_ROUTE_PROTO &&
  o.via !== undefined &&
  sameIP(o.via, d.via) &&
  o.dev === d.dev &&
  o.onlink === d.onlink;

const sameLinkRoute = (o: ObservedRoute, d: LinkRoute): boolean =>
  o.proto === WEFT_ROUTE_PROTO && o.via === undefined && o.dev === d.dev;

const sameAddr = (a: Prefix, b: Prefix): boolean => a.len === b.len && sameIP(a.ip, b.ip);

/** Operations for one device; true when it is (re)created this pass (it then carries nothing yet). */
function planDevice(d: DesiredDevice, o: ObservedDevice | undefined, own: Ownership, ops: Op[]): boolean {
  // The kind says whether the device can be kept and what it fixes in place (core/datapath/devices.ts).
  const fixes = o && deviceFixes(o, d);
  if (o && !fixes) ops.push({ kind: 'link-del', name: o.name });
  if (!o || !fixes) {
    ops.push(
      { kind: 'link-add', device: d },
      { kind: 'link-set', name: d.name, set: 'up' },
      ...d.addresses.map((addr): Op => ({ kind: 'addr-add', dev: d.name, addr })),
    );
    return true;
  }
  for (const set of fixes) ops.push({ kind: 'link-set', name: d.name, set });
  for (const a of d.addresses)
    if (!o.addrs.some((x) => sameAddr(x, a))) ops.push({ kind: 'addr-add', dev: d.name, addr: a });
  for (const a of o.addrs)
    if (!d.addresses.some((x) => sameAddr(x, a)) && inNetwork(a, own))
      ops.push({ kind: 'addr-del', dev: d.name, addr: a });
  return false;
}

/**
 * The operations, in a safe order: devices, deletions, fdb, then neighbours before routes.
 * `refused`: filled with every wanted destination a foreign route holds (see RefusedRoutes).
 */
export function plan(
  desired: DesiredDatapath,
  observed: ObservedDatapath,
  own: Ownership,
  refused?: RefusedRoutes,
): Op[] {
  const devOps: Op[] = [];
  const fresh = new Set<string>();
  for (const d of desired.devices) {
    const o = observed.devices.get(d.name);
    const created = planDevice(d, o, own, devOps);
    if (created) fresh.add(d.name);
    // Its configuration (wireguard's key and peers) right after the device, before routes that send traffic into it.
    devOps.push(...deviceConfigOps(d, created ? undefined : o));
  }
  const wanted = new Set(desired.devices.map((d) => d.name));
  // A device created this pass carries nothing yet: everything on it is missing. A device
  // deleted this pass (observed, not wanted: e.g. flannel.<old VNI>) takes everything on it
  // along: nothing on it counts as present, and nothing on it is deleted one by one.
  const onFresh = (dev: string) => fresh.has(dev) || (observed.devices.has(dev) && !wanted.has(dev));
  const out: PlanParts = {
    dels: [],
    fdbOps: [],
    neighAdds: [],
    routeAdds: [],
    own,
    wanted,
    ...(refused ? { refused } : {}),
  };

  // Every route by destination (weft's and others'), but those on a device that goes away.
  const seenRoutes = new Map<string, ObservedRoute[]>();
  for (const r of observed.routes) {
    if (onFresh(r.dev)) continue;
    const k = routeKey(r.dst);
    const at = seenRoutes.get(k);
    if (at) at.push(r);
    else seenRoutes.set(k, [r]);
  }
  for (const [k, rs] of seenRoutes)
    if (!desired.routes.has(k) && !desired.linkRoutes?.has(k)) planRouteKey(k, rs, desired, out);

  const seenNeigh = new Map(observed.neighs.filter((n) => !onFresh(n.dev)).map((n) => [neighKey(n.ip), n]));
  for (const [k, n] of seenNeigh) if (!desired.neighs.has(k)) out.dels.push({ kind: 'neigh-del', neigh: n });
  for (const [k, n] of desired.neighs)
    if (seenNeigh.get(k)?.mac !== n.mac) out.neighAdds.push({ kind: 'neigh-replace', neigh: n });

  const seenFdb = new Set<string>();
  for (const f of observed.fdb) {
    if (onFresh(f.dev)) continue;
    seenFdb.add(fdbKey(f));
    const want = desired.fdb.get(f.mac);
    if (!want || !sameIP(want.dst, f.dst)) out.fdbOps.push({ kind: 'fdb-del', fdb: f });
  }
  for (const f of desired.fdb.values()) if (!seenFdb.has(fdbKey(f))) out.fdbOps.push({ kind: 'fdb-replace', fdb: f });

  for (const [k] of desired.routes) planRouteKey(k, seenRoutes.get(k) ?? [], desired, out);
  for (const [k] of desired.linkRoutes ?? [])
    if (!desired.routes.has(k)) planRouteKey(k, seenRoutes.get(k) ?? [], desired, out);
  for (const name of observed.devices.keys()) if (!wanted.has(name)) devOps.push({ kind: 'link-del', name });
  return [...devOps, ...out.dels, ...out.fdbOps, ...out.neighAdds, ...out.routeAdds];
}

interface PlanParts {
  dels: Op[];
  fdbOps: Op[];
  neighAdds: Op[];
  routeAdds: Op[];
  readonly own: Ownership;
  readonly wanted: ReadonlySet<string>;
  readonly refused?: RefusedRoutes;
}

/**
 * One route destination, given every route there (`seen`): delete what weft owns there if
 * unwanted, else replace unless already right. A wanted destination is a route via a gateway
 * (`routes`) or, for a device of its own (wireguard's network route), a link route
 * (`linkRoutes`). A wanted destination that a route weft does not own holds is refused: weft
 * never replaces another's route, and takes its own away from there.
 */
function planRouteKey(k: string, seen: readonly ObservedRoute[], desired: DesiredDatapath, out: PlanParts): void {
  const want = desired.routes.get(k);
  // A gateway of the other family is a backend's mistake that iproute2 cannot even parse: it
  // exits on such a line, failing every line after it in the batch, pass after pass. Never
  // rendered; what is there is left as it is.
  if (want && want.via.family !== want.dst.ip.family) return;
  const owned = seen.filter((r) => ownsRoute(r, out.own, out.wanted));
  const link = want ? undefined : desired.linkRoutes?.get(k);
  const foreign = want || link ? seen.find((r) => !owned.includes(r) && !isLeftover(r, out.own)) : undefined;
  if (foreign) {
    out.refused?.set(k, foreign);
    for (const r of owned) out.dels.push({ kind: 'route-del', route: r });
    return;
  }
  // A wanted destination is fixed by `route replace` (same dst, metric and table) in place.
  if (want) {
    if (!owned.some((o) => sameRoute(o, want))) out.routeAdds.push({ kind: 'route-replace', route: want });
    return;
  }
  if (link) {
    if (!owned.some((o) => sameLinkRoute(o, link))) out.routeAdds.push({ kind: 'route-replace-link', route: link });
    return;
  }
  for (const r of owned) out.dels.push({ kind: 'route-del', route: r });
}

/** The observed datapath kept keyed (core/datapath/observed-model.ts), so that one key is looked up in O(1). */
export interface KeyedObserved {
  readonly devices: ReadonlyMap<string, ObservedDevice>;
  /** Every main-table route, by routeKey. */
  readonly routes: ReadonlyMap<string, readonly ObservedRoute[]>;
  /** Permanent neighbours on weft's devices, by neighKey. */
  readonly neighs: ReadonlyMap<string, Neighbour>;
  /** Permanent fdb entries on weft's devices, by MAC. */
  readonly fdb: ReadonlyMap<string, readonly FdbEntry[]>;
}

/** The keys a change may have touched: route destinations, neighbour IPs, fdb MACs (datapath.ts keys). */
export interface TouchedKeys {
  readonly routes: Set<string>;
  readonly neighs: Set<string>;
  readonly fdb: Set<string>;
}

export const noTouchedKeys = (): TouchedKeys => ({ routes: new Set(), neighs: new Set(), fdb: new Set() });

/**
 * `plan` restricted to the touched keys, for a host whose devices are already right (no device
 * operation is planned: a change to a device forces a full plan). For every key it decides
 * exactly as `plan` does, so the operations are the same as a full plan's for those keys; keys
 * not touched are, by the caller's contract, unchanged since a converged full plan.
 * `refused`: the full plan's refusals, kept: each touched key is judged again. O(touched keys).
 */
export function planTouched(
  desired: DesiredDatapath,
  observed: KeyedObserved,
  own: Ownership,
  touched: TouchedKeys,
  refused?: RefusedRoutes,
): Op[] {
  const wanted = new Set(desired.devices.map((d) => d.name));
  const out: PlanParts = {
    dels: [],
    fdbOps: [],
    neighAdds: [],
    routeAdds: [],
    own,
    wanted,
    ...(refused ? { refused } : {}),
  };
  for (const k of touched.routes) {
    refused?.delete(k);
    planRouteKey(k, observed.routes.get(k) ?? [], desired, out);
  }
  for (const k of touched.neighs) {
    const seen = observed.neighs.get(k);
    const want = desired.neighs.get(k);
    if (seen && !want) out.dels.push({ kind: 'neigh-del', neigh: seen });
    if (want && seen?.mac !== want.mac) out.neighAdds.push({ kind: 'neigh-replace', neigh: want });
  }
  for (const mac of touched.fdb) {
    const want = desired.fdb.get(mac);
    const seen = observed.fdb.get(mac) ?? [];
    for (const f of seen) if (!want || !sameIP(want.dst, f.dst)) out.fdbOps.push({ kind: 'fdb-del', fdb: f });
    if (want && !seen.some((f) => fdbKey(f) === fdbKey(want))) out.fdbOps.push({ kind: 'fdb-replace', fdb: want });
  }
  return [...out.dels, ...out.fdbOps, ...out.neighAdds, ...out.routeAdds];
}

/** `ip -batch` or `bridge -batch`, and the line for one operation. */
export function renderOp(op: Op): { tool: Tool; line: string } {
  switch (op.kind) {
    case 'link-del':
      return { tool: 'ip', line: `link del ${op.name}` };
    case 'link-add':
      return { tool: deviceAddTool(op.device), line: deviceAddLine(op.device) };
    case 'link-set':
      return { tool: 'ip', line: `link set dev ${op.name} ${op.set}` };
    // IPv6: `nodad`, usable at once (no tentative second in which the kernel will not source
    // from it); the address is the own subnet's, unique by the lease.
    case 'addr-add':
      return {
        tool: 'ip',
        line: `addr add ${formatPrefix(op.addr)} dev ${op.dev}${op.addr.ip.family === 6 ? ' nodad' : ''}`,
      };
    case 'addr-del':
      return { tool: 'ip', line: `addr del ${formatPrefix(op.addr)} dev ${op.dev}` };
    case 'route-del': {
      const r = op.route;
      // A gateway of the other family (an IPv4 route via an IPv6 next hop) must be named so: iproute2 exits on a bare one.
      const via = r.via
        ? ` via ${r.via.family === r.dst.ip.family ? '' : r.via.family === 6 ? 'inet6 ' : 'inet '}${formatIP(r.via)}`
        : '';
      return { tool: 'ip', line: `route del ${formatPrefix(r.dst)}${via} dev ${r.dev}` };
    }
    case 'route-replace': {
      const r = op.route;
      return {
        tool: 'ip',
        line: `route replace ${formatPrefix(r.dst)} via ${formatIP(r.via)} dev ${r.dev}${r.onlink ? ' onlink' : ''} proto ${WEFT_ROUTE_PROTO}`,
      };
    }
    case 'route-replace-link':
      return {
        tool: 'ip',
        line: `route replace ${formatPrefix(op.route.dst)} dev ${op.route.dev} scope link proto ${WEFT_ROUTE_PROTO}`,
      };
    case 'wg-device':
    case 'wg-peer':
    case 'wg-peer-remove':
      return { tool: 'wireguard', line: renderWireguardOp(op) };
    case 'neigh-del':
      return { tool: 'ip', line: `neigh del ${formatIP(op.neigh.ip)} dev ${op.neigh.dev}` };
    case 'neigh-replace':
      return {
        tool: 'ip',
        line: `neigh replace ${formatIP(op.neigh.ip)} lladdr ${op.neigh.mac} dev ${op.neigh.dev} nud permanent`,
      };
    case 'fdb-del':
      return { tool: 'bridge', line: `fdb del ${op.fdb.mac} dev ${op.fdb.dev} dst ${formatIP(op.fdb.dst)} self` };
    case 'fdb-replace':
      return {
        tool: 'bridge',
        line: `fdb replace ${op.fdb.mac} dev ${op.fdb.dev} dst ${formatIP(op.fdb.dst)} self permanent`,
      };
  }
}

/** The object kind an operation touches (for metrics: drift repairs by kind). */
export const opObject = (op: Op): string => op.kind.split('-')[0] ?? op.kind;

export interface Batch {
  tool: Tool;
  ops: Op[];
  lines: string[];
}

/** Split operations into consecutive same-tool batches, keeping their order. */
export function batches(ops: readonly Op[]): Batch[] {
  const out: Batch[] = [];
  for (const op of ops) {
    const { tool, line } = renderOp(op);
    const last = out.at(-1);
    if (last?.tool === tool) {
      last.ops.push(op);
      last.lines.push(line);
    } else out.push({ tool, ops: [op], lines: [line] });
  }
  return out;
}

/** Entries on a device that exists (fdb, neighbours, routes): none depends on an entry of another tool. */
const ENTRY_KINDS: ReadonlySet<Op['kind']> = new Set([
  'fdb-replace',
  'fdb-del',
  'neigh-replace',
  'route-replace',
  'route-replace-link',
]);

/**
 * The batches in stages: a stage's batches may run at the same time, stages one after another.
 * Device, address, WireGuard and deletion operations keep `plan`'s order, one batch per stage.
 * A run of entry operations (fdb entries, neighbours, routes: plan puts them last) becomes one
 * stage with one batch per tool, each tool's lines in their order: `bridge` writes the fdb while
 * `ip` writes neighbours and routes, as the kernel takes them independently. (A route may then
 * land a moment before its peer's fdb entry; the packets of that moment are dropped, as they would
 * be a moment earlier, before either existed.)
 */
export function stages(ops: readonly Op[]): Batch[][] {
  const out: Batch[][] = [];
  let run: Op[] = [];
  const flush = (): void => {
    if (run.length === 0) return;
    const byTool = new Map<Tool, Batch>();
    for (const op of run) {
      const { tool, line } = renderOp(op);
      const b = byTool.get(tool);
      if (b) {
        b.ops.push(op);
        b.lines.push(line);
      } else byTool.set(tool, { tool, ops: [op], lines: [line] });
    }
    out.push([...byTool.values()]);
    run = [];
  };
  let pending: Op[] = [];
  const flushPending = (): void => {
    for (const b of batches(pending)) out.push([b]);
    pending = [];
  };
  for (const op of ops) {
    if (ENTRY_KINDS.has(op.kind)) {
      flushPending();
      run.push(op);
    } else {
      flush();
      pending.push(op);
    }
  }
  flush();
  flushPending();
  return out;
}
