/**
 * Which interface carries the fabric, its addresses and MTU, and whether a peer is on the same
 * L2 segment: decided here from observed links and routes, as an ordered list of strategies
 * (interface, interfaceRegex, canReach, publicIP, publicIPv6, default route, IPv6 default
 * route), each saying why it won. An interface with IPv6 but no IPv4 address is acceptable (an
 * IPv6-only host: the IPv4 fields are 0.0.0.0, as flanneld writes); whether the host can serve
 * the network's families is `familyRefusal`'s call.
 */
import { type IP, type Prefix, contains, formatIP, sameIP } from '../net/cidr.js';
import type { NetworkConfig } from '../flannel/config-check.js';
import { WEFT_ROUTE_PROTO, type ObservedRoute } from '../datapath/datapath.js';
import { WeftError } from '../base/errors.js';
import { LINK_LOCAL6, NO_IPV4, isNoIPv4, reservedIPv6 } from '../net/ip-scope.js';
import type { HostSpec } from '../spec/spec.js';

/** One IPv6 address of a link, with the flags that decide whether it can be advertised. */
export interface LinkAddr6 {
  readonly ip: IP;
  readonly len: number;
  /** `global` (ULA included), `link` (fe80::/10), or another scope (host, site). */
  readonly scope: string;
  /** Preferred lifetime over: still valid, but must not be chosen for new use. */
  readonly deprecated: boolean;
  /** Duplicate address detection not finished: the kernel does not use it yet. */
  readonly tentative: boolean;
  readonly dadfailed?: boolean;
  /** A privacy (RFC 4941) address: rotates, never advertised. */
  readonly temporary?: boolean;
  /** Learned (SLAAC, DHCPv6) rather than configured: may go away. */
  readonly dynamic?: boolean;
}

export interface ObservedLink {
  readonly name: string;
  readonly index: number;
  readonly mtu: number;
  readonly up: boolean;
  /** Global-scope IPv4 addresses. */
  readonly addrs: readonly Prefix[];
  /** Every IPv6 address (link-local included, with flags); absent when not observed. */
  readonly addrs6?: readonly LinkAddr6[];
}

/** The host's side of the fabric. */
export interface HostFacts {
  readonly iface: string;
  /** The interface's IPv4 address; 0.0.0.0 when it has none (IPv6-only). */
  readonly ifaceIP: IP;
  readonly ifaceMTU: number;
  /** The IPv4 address peers reach this host at; 0.0.0.0 on an IPv6-only host (as flanneld writes). */
  readonly publicIP: IP;
  /** The interface's global IPv6 address, when it has one (never link-local). */
  readonly ifaceIPv6?: IP;
  /** The IPv6 address peers reach this host at (host.publicIPv6, else ifaceIPv6). */
  readonly publicIPv6?: IP;
  /** Why ifaceIPv6 is absent (e.g. only link-local addresses), for familyRefusal's message. */
  readonly ipv6Missing?: string;
  /** Why this interface was chosen (logged). */
  readonly why: string;
}

export interface FactsInput {
  readonly host: HostSpec;
  readonly links: readonly ObservedLink[];
  /** Main-table routes; the IPv6 default route (::/0) is only looked at when there is no IPv4 one. */
  readonly routes: readonly ObservedRoute[];
  /** The device `ip route get <canReach>` answered, when canReach is set. */
  readonly canReachDev?: string;
}

/** The link's IPv4 address (the first global one). */
const v4Of = (l: ObservedLink): Prefix | undefined => l.addrs.find((a) => a.ip.family === 4);

/**
 * The IPv6 address a link can advertise: global scope, never link-local, not deprecated,
 * tentative or failed DAD; configured before learned, stable before temporary (flanneld's
 * order, without its link-local fallback). Otherwise why there is none.
 */
export function usableIPv6(l: ObservedLink): { ip: IP } | { missing: string } {
  const all = (l.addrs6 ?? []).filter((a) => a.ip.family === 6);
  const global = all.filter((a) => a.scope === 'global' && reservedIPv6(a.ip) === undefined);
  const ok = global.filter((a) => !a.deprecated && !a.tentative && !a.dadfailed);
  const rank = (a: LinkAddr6): number => (a.temporary ? 2 : 0) + (a.dynamic ? 1 : 0);
  const best = [...ok].sort((a, b) => rank(a) - rank(b))[0];
  if (best) return { ip: best.ip };
  if (global.length > 0)
    return {
      missing: `${l.name}'s global IPv6 addresses (${global.map((a) => formatIP(a.ip)).join(', ')}) are all deprecated or tentative (duplicate address detection not finished or failed)`,
    };
  const ll = all.filter((a) => contains(LINK_LOCAL6, a.ip));
  if (ll.length > 0)
    return {
      missing: `${l.name} has only link-local IPv6 addresses (${ll.map((a) => formatIP(a.ip)).join(', ')}), which peers cannot reach`,
    };
  return { missing: `${l.name} has no IPv6 address` };
}

const hasAddress = (l: ObservedLink): boolean => v4Of(l) !== undefined || 'ip' in usableIPv6(l);
const holds = (l: ObservedLink, a: IP): boolean =>
  l.addrs.some((x) => sameIP(x.ip, a)) || (l.addrs6 ?? []).some((x) => sameIP(x.ip, a));

type Strategy = (i: FactsInput) => { link: ObservedLink; why: string } | undefined;

const byName = (i: FactsInput, name: string) => i.links.find((l) => l.name === name);
const defaultRoute = (i: FactsInput, family: 4 | 6) =>
  i.routes.find((r) => r.dst.len === 0 && r.dst.ip.family === family && r.proto !== WEFT_ROUTE_PROTO);

const STRATEGIES: readonly Strategy[] = [
  (i) => {
    const n = i.host.interface;
    const l = n === undefined ? undefined : byName(i, n);
    return l && { link: l, why: `host.interface is ${l.name}` };
  },
  (i) => {
    const src = i.host.interfaceRegex;
    if (src === undefined) return undefined;
    const re = new RegExp(src);
    const addrsOf = (x: ObservedLink): IP[] => [
      ...x.addrs.map((a) => a.ip),
      ...(x.addrs6 ?? []).filter((a) => a.scope === 'global').map((a) => a.ip),
    ];
    const l = i.links.find((x) => hasAddress(x) && (re.test(x.name) || addrsOf(x).some((a) => re.test(formatIP(a)))));
    return l && { link: l, why: `${l.name} matches host.interfaceRegex ${src}` };
  },
  (i) => {
    const d = i.canReachDev;
    const l = d === undefined ? undefined : byName(i, d);
    return (
      l && i.host.canReach && { link: l, why: `${l.name} is the route to host.canReach ${formatIP(i.host.canReach)}` }
    );
  },
  (i) => {
    const p = i.host.publicIP;
    if (!p) return undefined;
    const l = i.links.find((x) => holds(x, p));
    return l && { link: l, why: `${l.name} holds host.publicIP ${formatIP(p)}` };
  },
  (i) => {
    const p = i.host.publicIPv6;
    if (!p) return undefined;
    const l = i.links.find((x) => holds(x, p));
    return l && { link: l, why: `${l.name} holds host.publicIPv6 ${formatIP(p)}` };
  },
  (i) => {
    const def = defaultRoute(i, 4);
    const l = def ? byName(i, def.dev) : undefined;
    return l && { link: l, why: `${l.name} carries the default route` };
  },
  (i) => {
    if (defaultRoute(i, 4)) return undefined;
    const def = defaultRoute(i, 6);
    const l = def ? byName(i, def.dev) : undefined;
    return l && { link: l, why: `${l.name} carries the IPv6 default route (there is no IPv4 one)` };
  },
];

/** Choose the fabric interface; a clear E_HOST error when nothing fits. */
export function chooseInterface(i: FactsInput): HostFacts {
  const explicit =
    i.host.interface ?? i.host.interfaceRegex ?? (i.host.canReach ? formatIP(i.host.canReach) : undefined);
  for (const [n, s] of STRATEGIES.entries()) {
    if (explicit !== undefined && n >= 3) break; // an explicit choice that matched nothing is an error, not a fallback
    const hit = s(i);
    if (!hit) continue;
    const v4 = v4Of(hit.link);
    const v6 = usableIPv6(hit.link);
    const ifaceIPv6 = 'ip' in v6 ? v6.ip : undefined;
    if (!v4 && !ifaceIPv6 && !i.host.publicIPv6) {
      throw new WeftError(
        'E_HOST',
        `interface ${hit.link.name} (${hit.why}) has no IPv4 address and no usable IPv6 address: ${'missing' in v6 ? v6.missing : ''}`,
      );
    }
    const publicIPv6 = i.host.publicIPv6 ?? ifaceIPv6;
    return {
      iface: hit.link.name,
      ifaceIP: v4?.ip ?? NO_IPV4,
      ifaceMTU: hit.link.mtu,
      publicIP: i.host.publicIP ?? v4?.ip ?? NO_IPV4,
      ...(ifaceIPv6 ? { ifaceIPv6 } : {}),
      ...(publicIPv6 ? { publicIPv6 } : {}),
      ...('missing' in v6 ? { ipv6Missing: v6.missing } : {}),
      why: hit.why,
    };
  }
  const what =
    i.host.interface !== undefined
      ? `interface ${i.host.interface} does not exist`
      : i.host.interfaceRegex !== undefined
        ? `no interface with an IPv4 or global IPv6 address matches ${i.host.interfaceRegex}`
        : i.host.canReach
          ? `no interface routes to ${formatIP(i.host.canReach)}`
          : 'no interface found: set host.interface (no default route to pick one from)';
  throw new WeftError('E_HOST', what);
}

/**
 * Why this host cannot serve the network config's address families, or undefined when it can:
 * IPv4 on but the interface has no IPv4 address; IPv6 on but no usable global IPv6 address to
 * advertise (only link-local fe80:: ones, say, which peers cannot reach). Pure; the agent
 * refuses to start with the message (exit 1), as for a backend's refusal.
 */
export function familyRefusal(config: NetworkConfig, facts: HostFacts): string | undefined {
  const problems: string[] = [];
  if (config.ipv4 && (isNoIPv4(facts.ifaceIP) || isNoIPv4(facts.publicIP))) {
    problems.push(
      `IPv4 is on in the network config but ${facts.iface} (${facts.why}) has no IPv4 address: choose an interface that has one (host.interface, host.interfaceRegex, host.canReach) or make the network IPv6-only (network.ipv4: false)`,
    );
  }
  if (config.ipv6) {
    const pub = facts.publicIPv6;
    if (!pub) {
      problems.push(
        `IPv6 is on in the network config but ${facts.iface} (${facts.why}) has no usable global IPv6 address: ${facts.ipv6Missing ?? 'none found'}; set host.publicIPv6 (or WEFT_PUBLIC_IPV6) to this host's global IPv6 address, or choose another interface with host.interface`,
      );
    } else {
      const reserved = reservedIPv6(pub);
      if (reserved)
        problems.push(
          `IPv6 is on in the network config but the public IPv6 address ${formatIP(pub)} ${reserved}, which peers cannot reach; set host.publicIPv6 to this host's global IPv6 address`,
        );
    }
  }
  return problems.length > 0 ? problems.join('; ') : undefined;
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
