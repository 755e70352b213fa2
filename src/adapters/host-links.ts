/**
 * The host's links as the interface choice needs them (core/host-facts.ts): `ip -json addr
 * show` with both families' addresses and the IPv6 flags that decide whether an address may be
 * advertised (scope, deprecated, tentative, dadfailed, temporary, dynamic). (The routes, both
 * families, are iproute2.ts's listRoutes.) The parser is tested on output captured from a real
 * kernel.
 */
import { type Prefix, parseIPv4, parseIPv6, prefix } from '../core/cidr.js';
import type { LinkAddr6, ObservedLink } from '../core/host-facts.js';
import { execOk } from './exec.js';

interface AddrJson {
  family?: string; local?: string; prefixlen?: number; scope?: string;
  deprecated?: boolean; tentative?: boolean; dadfailed?: boolean; temporary?: boolean; dynamic?: boolean;
}
interface LinkJson { ifindex?: number; ifname?: string; flags?: string[]; mtu?: number; addr_info?: AddrJson[] }

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

export async function listHostLinks(): Promise<ObservedLink[]> {
  return parseHostLinks(await execOk('ip', ['-json', 'addr', 'show']));
}
