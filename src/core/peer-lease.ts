/**
 * Validation of the leases other hosts publish under `<prefix>/subnets/`. A lease weft cannot
 * trust is quarantined with a reason and never programmed: it would make flanneld choke
 * (§1.2, §1.3) or could hijack traffic (§12 item 17: a subnet outside the network, misaligned,
 * of another size, a bad MAC or public IP). Quarantine is per key: one bad entry never affects
 * another (flanneld drops every peer on one bad event, §12 item 1).
 */
import { type IP, type Prefix, formatIP, formatPrefix, isNetworkAddress, parseIPv4, prefix, within } from './cidr.js';
import type { NetworkConfig } from './config-check.js';
import { shortText } from './gojson.js';
import { type LeaseAttrs, type VxlanData, decodeLeaseAttrs, decodeVxlanData, formatSubnetKey, parseSubnetKey } from './lease.js';

/** A lease that passed validation. */
export interface PeerLease {
  /** The subnet key (last path element), e.g. `198.18.5.0-24`. */
  readonly subnetKey: string;
  readonly subnet: Prefix;
  readonly attrs: LeaseAttrs;
  /** Decoded vxlan data when BackendType is `vxlan`. */
  readonly vxlan?: VxlanData;
}

export type LeaseVerdict =
  | { readonly ok: true; readonly lease: PeerLease }
  | { readonly ok: false; readonly reason: string; readonly subnet?: Prefix };

const BAD_PUBLIC: readonly Prefix[] = [
  prefix(parseIPv4('0.0.0.0') as IP, 8),
  prefix(parseIPv4('127.0.0.0') as IP, 8),
  prefix(parseIPv4('224.0.0.0') as IP, 3),
];

/** Why a public IP cannot be a tunnel or gateway endpoint, or undefined when it can. */
export function badPublicIP(a: IP): string | undefined {
  const hit = BAD_PUBLIC.find((p) => within(prefix(a, 32), p));
  return hit ? `PublicIP ${formatIP(a)} is not a usable unicast address` : undefined;
}

/**
 * Judge one entry: `subnetKey` is the key below `<prefix>/subnets/`, `value` its text.
 * `subnet` is set on a rejection whenever flanneld reads a subnet from the key, canonical or
 * not (so the subnet still counts as taken for allocation).
 */
export function validatePeerLease(subnetKey: string, value: string, config: NetworkConfig): LeaseVerdict {
  const key = parseSubnetKey(subnetKey);
  if (!key) return { ok: false, reason: `key "${shortText(subnetKey)}" is not a flannel subnet key` };
  const subnet = key.v4;
  const v4 = config.ipv4;
  if (!v4) return { ok: false, reason: 'weft programs IPv4 fabrics only', ...(subnet ? { subnet } : {}) };
  if (!subnet) return { ok: false, reason: 'IPv6-only lease in an IPv4 network' };
  const reject = (reason: string): LeaseVerdict => ({ ok: false, reason, subnet });
  if (!key.canonical) return reject(`key "${shortText(subnetKey)}" is not in canonical form (flanneld reads it as ${formatPrefix(subnet)}; weft writes ${formatSubnetKey(key)})`);
  if (!isNetworkAddress(subnet)) return reject(`subnet ${formatPrefix(subnet)} is not aligned on its prefix length`);
  if (!within(subnet, v4.network)) return reject(`subnet ${formatPrefix(subnet)} is outside the network ${formatPrefix(v4.network)}`);
  if (subnet.len !== v4.subnetLen) return reject(`subnet ${formatPrefix(subnet)} is not a /${v4.subnetLen} (SubnetLen)`);
  const attrs = decodeLeaseAttrs(value);
  if (!attrs.ok) return reject(attrs.reason);
  const bad = badPublicIP(attrs.value.publicIP);
  if (bad) return reject(bad);
  if (attrs.value.backendType === 'vxlan') {
    const data = decodeVxlanData(attrs.value.backendData);
    if (!data.ok) return reject(data.reason);
    return { ok: true, lease: Object.freeze({ subnetKey, subnet, attrs: attrs.value, vxlan: data.value }) };
  }
  return { ok: true, lease: Object.freeze({ subnetKey, subnet, attrs: attrs.value }) };
}
