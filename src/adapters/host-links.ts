/**
 * The host's links and default routes as the interface choice needs them (core/host-facts.ts):
 * `ip -json addr show` with both families' addresses and the IPv6 flags that decide whether
 * an address may be advertised (scope, deprecated, tentative, dadfailed, temporary, dynamic),
 * and the main table's routes plus its IPv6 default routes (an IPv6-only host has no IPv4
 * default route). Parsers are exported and tested on output captured from a real kernel.
 */
import { type Prefix, parseIPv4, parseIPv6, prefix } from '../core/cidr.js';
import type { ObservedRoute } from '../core/datapath.js';
import type { LinkAddr6, ObservedLink } from '../core/host-facts.js';
import { execOk } from './exec.js';
import { listRoutes } from './iproute2.js';

interface AddrJson {
  family?: string; local?: string; prefixlen?: number; scope?: string;
  deprecated?: boolean; tentative?: boolean; dadfailed?: boolean; temporary?: boolean; dynamic?: boolean;
}
interface LinkJson { ifindex?: number; ifname?: string; flags?: string[]; mtu?: number; addr_info?: AddrJson[] }
interface RouteJson { dst?: string; gateway?: string; dev?: string; protocol?: string; scope?: string; flags?: string[]; type?: string; metric?: number }

const asArray = <T>(text: string): T[] => { const v: unknown = JSON.parse(text.trim() || '[]'); return Array.isArray(v) ? (v as T[]) : []; };

const v4addrs = (l: LinkJson): Prefix[] => (l.addr_info ?? []).flatMap((a) => {
  const ip = a.family === 'inet' && a.local ? parseIPv4(a.local) : undefined;
  return ip && a.scope !== 'host' ? [prefix(ip, a.prefixlen ?? 32)] : [];
});

const v6addrs = (l: LinkJson): LinkAddr6[] => (l.addr_info ?? []).flatMap((a) => {
  const ip = a.family === 'inet6' && a.local ? parseIPv6(a.local) : undefined;
  if (!ip) return [];
  return [{
    ip, len: a.prefixlen ?? 128, scope: a.scope ?? 'global', deprecated: a.deprecated === true, tentative: a.tentative === true,
    ...(a.dadfailed ? { dadfailed: true } : {}), ...(a.temporary ? { temporary: true } : {}), ...(a.dynamic ? { dynamic: true } : {}),
  }];
});

/** `ip -json addr show` -> links with their global IPv4 addresses and every IPv6 address (with flags). */
export function parseHostLinks(text: string): ObservedLink[] {
  return asArray<LinkJson>(text).map((l) => ({ name: l.ifname ?? '', index: l.ifindex ?? 0, mtu: l.mtu ?? 0, up: (l.flags ?? []).includes('UP'), addrs: v4addrs(l), addrs6: v6addrs(l) }));
}

/** `ip -json -6 route show table main default` -> the IPv6 default routes (unicast, with a device). */
export function parseDefaultRoutes6(text: string): ObservedRoute[] {
  const any = parseIPv6('::');
  if (!any) return [];
  return asArray<RouteJson>(text).flatMap((r) => {
    if ((r.type !== undefined && r.type !== 'unicast') || r.dst !== 'default' || !r.dev) return [];
    const via = r.gateway ? parseIPv6(r.gateway) : undefined;
    return [{ dst: prefix(any, 0), dev: r.dev, proto: r.protocol ?? 'boot', onlink: (r.flags ?? []).includes('onlink'), scopeLink: r.scope === 'link', ...(via ? { via } : {}), ...(r.metric ? { metric: r.metric } : {}) }];
  });
}

export async function listHostLinks(): Promise<ObservedLink[]> {
  return parseHostLinks(await execOk('ip', ['-json', 'addr', 'show']));
}

/** The main table's routes, with the IPv6 default routes when the listing did not already hold them. */
export async function listHostRoutes(): Promise<ObservedRoute[]> {
  const [main, v6] = await Promise.all([listRoutes(), execOk('ip', ['-json', '-6', 'route', 'show', 'table', 'main', 'default']).then(parseDefaultRoutes6, () => [])]);
  return main.some((r) => r.dst.ip.family === 6 && r.dst.len === 0) ? main : [...main, ...v6];
}
