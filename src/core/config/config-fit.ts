/**
 * Does a network config fit this host? Any etcd writer can store a config, so a config that
 * decodes and checks (core/flannel/config-check.ts) is still judged against the host before it is used:
 * a network that would take over the host's own addresses, its LANs, its gateway or its etcd
 * endpoints (every peer subnet inside it becomes a route into the fabric), or touch a reserved
 * block, and an overlay MTU larger than the underlay carries, are refused with the reason. A
 * route that merely contains the network (a VPN's 10.0.0.0/8 around a 10.244.0.0/16 fabric) is
 * fine: the fabric's routes are more specific and take only what is the fabric's. Pure.
 */
import { type IP, type Prefix, contains, formatIP, formatPrefix, prefix, within } from '../net/cidr.js';
import type { FamilyRange, NetworkConfig } from '../flannel/config-check.js';
import { WEFT_ROUTE_PROTO, type ObservedRoute, describeRoute } from '../datapath/datapath.js';
import type { HostFacts, ObservedLink } from '../host/host-facts.js';
import { reservedOverlap } from '../net/ip-scope.js';
import { previousSubnet } from '../outputs/outputs.js';
import type { SubnetKey } from '../flannel/subnet-key.js';

/** One address on one of the host's links (both families; a link-local IPv6 one is never looked at). */
export interface LinkAddress {
  readonly dev: string;
  readonly addr: Prefix;
}

/** The host around the fabric, as observed when a config is judged. */
export interface HostSurroundings {
  /** Every address of every link. */
  readonly addresses: readonly LinkAddress[];
  /** Main-table routes of both families. */
  readonly routes: readonly ObservedRoute[];
  /** The etcd endpoints by address (a name is resolved by the adapter; one that does not resolve is absent). */
  readonly etcd: readonly { readonly endpoint: string; readonly ip: IP }[];
}

/** Everything the fit of a config is judged on. */
export interface FitInput {
  readonly config: NetworkConfig;
  readonly facts: HostFacts;
  readonly around: HostSurroundings;
  /**
   * The overlay prefixes this host runs or ran (`fabricPrefixes`): what lies inside them is the
   * fabric's already and never counts against a config (the Docker bridge holds an address of the
   * own subnet, and a bridge not yet restarted one of a previous subnet). weft's and flanneld's
   * devices (`isFabricDevice`) never count either, under any config.
   */
  readonly fabric: readonly Prefix[];
  /** The overlay MTU the config gives this host, and what the underlay carries after the backend's overhead. */
  readonly mtu: {
    readonly overlay: number;
    readonly carried: number;
    readonly overheadBytes: number;
    readonly fixedByHost: boolean;
  };
}

/** The overlay MTU bounds: IPv4's minimum datagram, the kernel's largest. */
export const MIN_OVERLAY_MTU = 576;
export const MAX_OVERLAY_MTU = 65535;

/** Why `net` (one family's network) cannot be used on this host, or undefined when it fits. */
function networkMisfit(net: Prefix, i: FitInput): string | undefined {
  const reserved = reservedOverlap(net);
  if (reserved) return `it overlaps ${reserved}`;
  const ours = (p: Prefix): boolean => i.fabric.some((f) => within(p, f));
  const own = (a: IP): boolean => i.fabric.some((f) => contains(f, a));
  for (const a of [i.facts.publicIP, i.facts.ifaceIP, i.facts.publicIPv6, i.facts.ifaceIPv6]) {
    if (a && a.value !== 0n && contains(net, a))
      return `it contains this host's own address ${formatIP(a)} (${i.facts.iface})`;
  }
  for (const { dev, addr } of i.around.addresses) {
    if (isFabricDevice(dev) || own(addr.ip) || !contains(net, addr.ip)) continue;
    return `it contains ${formatIP(addr.ip)}, an address of ${dev}`;
  }
  for (const r of i.around.routes) {
    if (r.proto === WEFT_ROUTE_PROTO || isFabricDevice(r.dev) || ours(r.dst)) continue;
    if (r.via === undefined && within(r.dst, net)) return `it contains the connected network ${describeRoute(r)}`;
    if (r.via !== undefined && !own(r.via) && contains(net, r.via))
      return `it contains the gateway ${formatIP(r.via)} (route ${describeRoute(r)})`;
  }
  for (const e of i.around.etcd)
    if (contains(net, e.ip)) return `it contains the etcd endpoint ${e.endpoint} (${formatIP(e.ip)})`;
  return undefined;
}

/**
 * Why the config cannot be used on this host (one sentence naming what it would take over), or
 * undefined when it fits. The MTU bound applies unless the host's own spec fixes the MTU
 * (host.mtu: the operator's word, not a writer's).
 */
export function configMisfit(i: FitInput): string | undefined {
  const families: [string, FamilyRange | undefined][] = [
    ['Network', i.config.ipv4],
    ['IPv6Network', i.config.ipv6],
  ];
  for (const [field, r] of families) {
    const why = r && networkMisfit(r.network, i);
    if (r && why) return `${field} ${formatPrefix(r.network)} cannot be used on this host: ${why}`;
  }
  const m = i.mtu;
  if (m.overlay < MIN_OVERLAY_MTU || m.overlay > MAX_OVERLAY_MTU)
    return `the overlay MTU would be ${m.overlay} on this host; it must be ${MIN_OVERLAY_MTU}..${MAX_OVERLAY_MTU}`;
  if (!m.fixedByHost && m.overlay > m.carried) {
    return `the overlay MTU would be ${m.overlay}, above the ${m.carried} that ${i.facts.iface}'s MTU ${i.facts.ifaceMTU} carries after the backend's ${m.overheadBytes}-byte overhead (Backend.MTU too large)`;
  }
  return undefined;
}

/** Every device weft or flanneld creates is named `flannel…` (flannel.<VNI>, flannel-v6.<VNI>, flannel-wg, flannel0): the fabric's, under any config. */
export const isFabricDevice = (name: string): boolean => name.startsWith('flannel');

/** The links' addresses: IPv4, and IPv6 of global scope (a link-local address is on every link and routes nowhere). */
export const linkAddresses = (links: readonly ObservedLink[]): LinkAddress[] =>
  links.flatMap((l) => [
    ...l.addrs.map((addr) => ({ dev: l.name, addr })),
    ...(l.addrs6 ?? []).filter((a) => a.scope === 'global').map((a) => ({ dev: l.name, addr: prefix(a.ip, a.len) })),
  ]);

/** The host of each etcd endpoint URL (`http://[fd00::1]:2379` -> `fd00::1`); a URL that does not parse is left out. */
export function endpointHosts(endpoints: readonly string[]): { endpoint: string; host: string }[] {
  return endpoints.flatMap((endpoint) => {
    if (!URL.canParse(endpoint)) return [];
    const host = new URL(endpoint).hostname.replace(/^\[(.*)\]$/, '$1');
    return host === '' ? [] : [{ endpoint, host }];
  });
}

/**
 * The overlay prefixes this host runs or ran: the running config's networks, its lease's
 * subnets, and the networks and subnets of a subnet.env left by an earlier run (weft's or
 * flanneld's). What lies inside them is the fabric's (a Docker bridge, its containers).
 */
export function fabricPrefixes(
  subnetEnv: ReadonlyMap<string, string>,
  running?: NetworkConfig,
  own?: SubnetKey,
): Prefix[] {
  const env = ['FLANNEL_NETWORK', 'FLANNEL_SUBNET', 'FLANNEL_IPV6_NETWORK', 'FLANNEL_IPV6_SUBNET'].map((k) =>
    previousSubnet(subnetEnv, k),
  );
  return [running?.ipv4?.network, running?.ipv6?.network, own?.v4, own?.v6, ...env].filter(
    (p): p is Prefix => p !== undefined,
  );
}
