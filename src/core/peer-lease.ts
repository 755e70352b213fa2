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
import { type LeaseAttrs, type VxlanData, type WireguardData, decodeLeaseAttrs, decodeVxlanData, decodeWireguardData, formatSubnetKey, parseSubnetKey } from './lease.js';
import { isUsableVtepMAC } from './mac.js';

/** A lease that passed validation. */
export interface PeerLease {
  /** The subnet key (last path element), e.g. `198.18.5.0-24`. */
  readonly subnetKey: string;
  readonly subnet: Prefix;
  readonly attrs: LeaseAttrs;
  /** Decoded vxlan data when BackendType is `vxlan`. */
  readonly vxlan?: VxlanData;
  /** Decoded wireguard data when BackendType is `wireguard`. */
  readonly wireguard?: WireguardData;
  /**
   * etcd's create revision of the key (decimal): the older lease wins a clash over one VTEP
   * MAC, whatever order keys sort or arrive in. Absent: judged outside a store (sorts last).
   */
  readonly createRevision?: string;
}

export type LeaseVerdict =
  | { readonly ok: true; readonly lease: PeerLease }
  | { readonly ok: false; readonly reason: string; readonly subnet?: Prefix };

const BAD_PUBLIC: readonly [Prefix, string][] = [
  [prefix(parseIPv4('0.0.0.0') as IP, 8), 'is in 0.0.0.0/8 ("this network")'],
  [prefix(parseIPv4('127.0.0.0') as IP, 8), 'is a loopback address'],
  [prefix(parseIPv4('169.254.0.0') as IP, 16), 'is link-local (169.254.0.0/16)'],
  [prefix(parseIPv4('224.0.0.0') as IP, 3), 'is multicast, reserved or broadcast'],
];

/**
 * Why a public IP cannot be a tunnel or gateway endpoint, or undefined when it can: it must
 * be a usable unicast address, and not inside the overlay `network` (traffic to it would be
 * routed into the fabric it is meant to carry).
 */
export function badPublicIP(a: IP, network?: Prefix): string | undefined {
  const hit = BAD_PUBLIC.find(([p]) => within(prefix(a, 32), p));
  if (hit) return `PublicIP ${formatIP(a)} ${hit[1]}: not a usable unicast address`;
  if (network && within(prefix(a, 32), network)) return `PublicIP ${formatIP(a)} is inside the overlay network ${formatPrefix(network)}`;
  return undefined;
}

/** A key and value that decode and can be trusted as data, before any fit to the config. */
export type EntryVerdict =
  | { readonly ok: true; readonly subnet: Prefix; readonly attrs: LeaseAttrs; readonly vxlan?: VxlanData; readonly wireguard?: WireguardData }
  | { readonly ok: false; readonly reason: string; readonly subnet?: Prefix };

/** Printable ASCII without spaces: every backend type flannel knows (vxlan, host-gw, wireguard, ...). */
const BACKEND_TYPE = /^[\x21-\x7e]{1,32}$/;

/**
 * Decode one entry and judge it as data: a flannel key in canonical form, aligned; a value
 * flanneld reads; a usable public IP outside the overlay `network`; a printable BackendType;
 * for vxlan a unicast, non-zero VTEP MAC (a zero MAC is the vxlan catch-all FDB entry: flooded
 * traffic would go to the writer; a multicast one is never a VTEP). Never throws.
 */
export function decodePeerEntry(subnetKey: string, value: string, network: Prefix | undefined): EntryVerdict {
  const key = parseSubnetKey(subnetKey);
  if (!key) return { ok: false, reason: `key "${shortText(subnetKey)}" is not a flannel subnet key` };
  const subnet = key.v4;
  if (!subnet) return { ok: false, reason: 'IPv6-only lease in an IPv4 network' };
  const reject = (reason: string): EntryVerdict => ({ ok: false, reason, subnet });
  if (!key.canonical) return reject(`key "${shortText(subnetKey)}" is not in canonical form (flanneld reads it as ${formatPrefix(subnet)}; weft writes ${formatSubnetKey(key)})`);
  if (!isNetworkAddress(subnet)) return reject(`subnet ${formatPrefix(subnet)} is not aligned on its prefix length`);
  const attrs = decodeLeaseAttrs(value);
  if (!attrs.ok) return reject(attrs.reason);
  const bad = badPublicIP(attrs.value.publicIP, network);
  if (bad) return reject(bad);
  const type = attrs.value.backendType;
  if (type !== undefined && !BACKEND_TYPE.test(type)) return reject(`BackendType "${shortText(type)}" is not a backend name (control characters, spaces or over 32 characters)`);
  if (type === 'wireguard') {
    const wg = decodeWireguardData(attrs.value.backendData);
    return wg.ok ? { ok: true, subnet, attrs: attrs.value, wireguard: wg.value } : reject(wg.reason);
  }
  if (type !== 'vxlan') return { ok: true, subnet, attrs: attrs.value };
  const data = decodeVxlanData(attrs.value.backendData);
  if (!data.ok) return reject(data.reason);
  if (!isUsableVtepMAC(data.value.vtepMAC)) return reject(`VtepMAC ${data.value.vtepMAC} is not a unicast, non-zero Ethernet address`);
  return { ok: true, subnet, attrs: attrs.value, vxlan: data.value };
}

/**
 * Judge one entry: `subnetKey` is the key below `<prefix>/subnets/`, `value` its text.
 * `subnet` is set on a rejection whenever flanneld reads a subnet from the key, canonical or
 * not (so the subnet still counts as taken for allocation).
 */
export function validatePeerLease(subnetKey: string, value: string, config: NetworkConfig, createRevision?: string): LeaseVerdict {
  const v4 = config.ipv4;
  const d = decodePeerEntry(subnetKey, value, v4?.network);
  if (!d.ok) return d;
  const { subnet } = d;
  const reject = (reason: string): LeaseVerdict => ({ ok: false, reason, subnet });
  if (!v4) return reject('weft programs IPv4 fabrics only');
  if (!within(subnet, v4.network)) return reject(`subnet ${formatPrefix(subnet)} is outside the network ${formatPrefix(v4.network)}`);
  if (subnet.len !== v4.subnetLen) return reject(`subnet ${formatPrefix(subnet)} is not a /${v4.subnetLen} (SubnetLen)`);
  return { ok: true, lease: Object.freeze({ subnetKey, subnet, attrs: d.attrs, ...(d.vxlan ? { vxlan: d.vxlan } : {}), ...(d.wireguard ? { wireguard: d.wireguard } : {}), ...(createRevision !== undefined ? { createRevision } : {}) }) };
}
