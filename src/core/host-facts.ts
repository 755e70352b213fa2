/**
 * Which interface carries the fabric, its address and MTU, and whether a peer is on the same
 * L2 segment: decided here from observed links and routes, as an ordered list of strategies
 * (interface, interfaceRegex, canReach, publicIP, default route), each saying why it won.
 */
import { type IP, type Prefix, contains, formatIP, sameIP } from './cidr.js';
import { WEFT_ROUTE_PROTO, type ObservedRoute } from './datapath.js';
import { WeftError } from './errors.js';
import type { HostSpec } from './spec.js';

export interface ObservedLink {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  readonly up: boolean;
  /** Global-scope IPv4 addresses. */
  readonly addrs: readonly Prefix[];
}

/** The host's side of the fabric. */
export interface HostFacts {
  readonly iface: string;
  readonly ifaceIP: IP;
  readonly ifaceMTU: number;
  readonly publicIP: IP;
  /** The interface's global IPv6 address, when it has one (never link-local). */
  readonly ifaceIPv6?: IP;
  /** The IPv6 address peers reach this host at (host.publicIPv6, else ifaceIPv6). */
  readonly publicIPv6?: IP;
  /** Why this interface was chosen (logged). */
  readonly why: string;
}

export interface FactsInput {
  readonly host: HostSpec;
  readonly links: readonly ObservedLink[];
  readonly routes: readonly ObservedRoute[];
  /** The device `ip route get <canReach>` answered, when canReach is set. */
  readonly canReachDev?: string;
}

type Strategy = (i: FactsInput) => { link: ObservedLink; why: string } | undefined;

const byName = (i: FactsInput, name: string) => i.links.find((l) => l.name === name);

const STRATEGIES: readonly Strategy[] = [
  (i) => { const n = i.host.interface; const l = n === undefined ? undefined : byName(i, n); return l && { link: l, why: `host.interface is ${l.name}` }; },
  (i) => {
    const src = i.host.interfaceRegex;
    if (src === undefined) return undefined;
    const re = new RegExp(src);
    const l = i.links.find((x) => x.addrs.length > 0 && (re.test(x.name) || x.addrs.some((a) => re.test(formatIP(a.ip)))));
    return l && { link: l, why: `${l.name} matches host.interfaceRegex ${src}` };
  },
  (i) => { const d = i.canReachDev; const l = d === undefined ? undefined : byName(i, d); return l && i.host.canReach && { link: l, why: `${l.name} is the route to host.canReach ${formatIP(i.host.canReach)}` }; },
  (i) => {
    const p = i.host.publicIP;
    if (!p) return undefined;
    const l = i.links.find((x) => x.addrs.some((a) => sameIP(a.ip, p)));
    return l && { link: l, why: `${l.name} holds host.publicIP ${formatIP(p)}` };
  },
  (i) => {
    const def = i.routes.find((r) => r.dst.len === 0 && r.proto !== WEFT_ROUTE_PROTO);
    const l = def ? byName(i, def.dev) : undefined;
    return l && { link: l, why: `${l.name} carries the default route` };
  },
];

/** Choose the fabric interface; a clear E_HOST error when nothing fits. */
export function chooseInterface(i: FactsInput): HostFacts {
  const explicit = i.host.interface ?? i.host.interfaceRegex ?? (i.host.canReach ? formatIP(i.host.canReach) : undefined);
  for (const [n, s] of STRATEGIES.entries()) {
    if (explicit !== undefined && n >= 3) break; // an explicit choice that matched nothing is an error, not a fallback
    const hit = s(i);
    if (!hit) continue;
    const addr = hit.link.addrs[0];
    if (!addr) throw new WeftError('E_HOST', `interface ${hit.link.name} (${hit.why}) has no IPv4 address`);
    return { iface: hit.link.name, ifaceIP: addr.ip, ifaceMTU: hit.link.mtu, publicIP: i.host.publicIP ?? addr.ip, why: hit.why };
  }
  const what = i.host.interface !== undefined ? `interface ${i.host.interface} does not exist`
    : i.host.interfaceRegex !== undefined ? `no interface with an IPv4 address matches ${i.host.interfaceRegex}`
      : i.host.canReach ? `no interface routes to ${formatIP(i.host.canReach)}`
        : 'no interface found: set host.interface (no default route to pick one from)';
  throw new WeftError('E_HOST', what);
}

/** How this host reaches `peer` on the underlay, by longest-prefix match over main-table routes. */
export function underlayPathTo(routes: readonly ObservedRoute[], peer: IP): ObservedRoute | undefined {
  let best: ObservedRoute | undefined;
  for (const r of routes) {
    if (r.proto === WEFT_ROUTE_PROTO || !contains(r.dst, peer)) continue;
    if (!best || r.dst.len > best.dst.len) best = r;
  }
  return best;
}

/** Is `peer` directly reachable (same L2 segment) through `iface`? (what DirectRouting and host-gw need) */
export function isAdjacent(routes: readonly ObservedRoute[], peer: IP, iface: string): boolean {
  const r = underlayPathTo(routes, peer);
  return r !== undefined && r.via === undefined && r.dev === iface;
}
