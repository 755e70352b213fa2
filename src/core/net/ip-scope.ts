/**
 * Which IPv6 addresses and prefixes can serve a fabric. Pure. A host's public IPv6 (its vxlan
 * endpoint or host-gw gateway) must be a unicast address peers on other links can reach: never
 * link-local (flanneld advertises an `fe80::` address when an interface has nothing else,
 * flannel-ipv6-wireguard.md §1.3), multicast, loopback, unspecified or IPv4-mapped, and never
 * inside the IPv6 overlay it carries. An IPv6 overlay network must be a real IPv6 unicast prefix.
 */
import { type IP, type Prefix, contains, formatIP, formatPrefix, ip, overlaps, prefix } from './cidr.js';

const p6 = (value: bigint, len: number): Prefix => prefix(ip(6, value), len);

/** IPv4-mapped addresses (`::ffff:a.b.c.d`): IPv4 written as IPv6. */
export const IPV4_MAPPED: Prefix = p6(0xffffn << 32n, 96);
/** Link-local unicast (fe80::/10): valid on one link only. */
export const LINK_LOCAL6: Prefix = p6(0xfe80n << 112n, 10);

/** Addresses that are never a host's reachable unicast address, and what each is. */
const RESERVED_ADDRESSES: readonly [Prefix, string][] = [
  [p6(0n, 128), 'is the unspecified address'],
  [p6(1n, 128), 'is the loopback address'],
  [IPV4_MAPPED, 'is an IPv4-mapped address (::ffff:0:0/96)'],
  [LINK_LOCAL6, 'is link-local (fe80::/10)'],
  [p6(0xffn << 120n, 8), 'is multicast (ff00::/8)'],
];

/** Blocks an overlay network must not touch, and what each is. */
const RESERVED_PREFIXES: readonly [Prefix, string][] = [
  [p6(0n, 8), '::/8 (the unspecified, loopback, IPv4-mapped and IPv4-compatible addresses)'],
  [LINK_LOCAL6, 'the link-local block fe80::/10'],
  [p6(0xffn << 120n, 8), 'the multicast block ff00::/8'],
];

/**
 * IPv4 blocks an overlay network must not touch: routing any of them into the fabric breaks the
 * host itself ("this network", loopback, link-local: DHCP fallback, cloud metadata) or cannot be
 * unicast at all (multicast, the reserved class E and the broadcast address).
 */
const RESERVED_PREFIXES_V4: readonly [Prefix, string][] = [
  [prefix(ip(4, 0n), 8), '0.0.0.0/8 ("this network")'],
  [prefix(ip(4, 127n << 24n), 8), 'the loopback block 127.0.0.0/8'],
  [prefix(ip(4, (169n << 24n) + (254n << 16n)), 16), 'the link-local block 169.254.0.0/16'],
  [prefix(ip(4, 224n << 24n), 3), '224.0.0.0/3 (multicast, reserved and broadcast)'],
];

/** The reserved block an overlay prefix of either family overlaps, or undefined when it is a usable unicast prefix. */
export function reservedOverlap(net: Prefix): string | undefined {
  if (net.ip.family === 6) return reservedIPv6Overlap(net);
  return RESERVED_PREFIXES_V4.find(([p]) => overlaps(p, net))?.[1];
}

/** What makes an IPv6 address unusable as a host's unicast address (`is link-local (fe80::/10)`), or undefined. */
export function reservedIPv6(a: IP): string | undefined {
  if (a.family !== 6) return 'is not an IPv6 address';
  return RESERVED_ADDRESSES.find(([p]) => contains(p, a))?.[1];
}

/** The reserved block an IPv6 overlay prefix overlaps, or undefined when it is a usable unicast prefix. */
export function reservedIPv6Overlap(net: Prefix): string | undefined {
  return RESERVED_PREFIXES.find(([p]) => overlaps(p, net))?.[1];
}

/**
 * Why an IPv6 address cannot be a lease's `PublicIPv6`, or undefined when it can (the IPv6 twin
 * of peer-lease.ts badPublicIP): a usable unicast address outside the overlay `network`.
 */
export function badPublicIPv6(a: IP, network?: Prefix): string | undefined {
  const r = reservedIPv6(a);
  if (r) return `PublicIPv6 ${formatIP(a)} ${r}: not a usable unicast address`;
  if (network && contains(network, a))
    return `PublicIPv6 ${formatIP(a)} is inside the overlay network ${formatPrefix(network)}`;
  return undefined;
}

/** 0.0.0.0: the IPv4 fields of an IPv6-only host. */
export const NO_IPV4: IP = ip(4, 0n);

/** Is `a` 0.0.0.0, the IPv4 address an IPv6-only host publishes as PublicIP (as flanneld): never an identity. */
export const isNoIPv4 = (a: IP): boolean => a.family === 4 && a.value === 0n;

/** The address that names this host (presence, owner record, status): IPv4, or on an IPv6-only host its IPv6 one. */
export const hostAddress = (f: { readonly publicIP: IP; readonly publicIPv6?: IP }): string =>
  isNoIPv4(f.publicIP) && f.publicIPv6 ? formatIP(f.publicIPv6) : formatIP(f.publicIP);
