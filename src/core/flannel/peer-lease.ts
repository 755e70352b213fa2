/**
 * Validation of the leases other hosts publish under `<prefix>/subnets/`. A lease weft cannot
 * trust is quarantined with a reason and never programmed: it would make flanneld choke
 * (§1.2, §1.3) or could hijack traffic (§12 item 17: a subnet outside the network, misaligned,
 * of another size, a bad MAC or public IP). Quarantine is per key: one bad entry never affects
 * another (flanneld drops every peer on one bad event, §12 item 1).
 */
import {
  type IP,
  type Prefix,
  formatIP,
  formatPrefix,
  isNetworkAddress,
  parseIPv4,
  prefix,
  within,
} from '../net/cidr.js';
import { badPublicIPv6 } from '../net/ip-scope.js';
import type { NetworkConfig } from './config-check.js';
import { shortText } from './gojson.js';
import { type LeaseAttrs, decodeLeaseAttrs, formatSubnetKey, parseSubnetKey } from './lease.js';
import { type FlannelBackends, type LeaseData, judgeData, leaseCodecOf } from './backend-codec.js';
import { primarySubnet } from './subnet-key.js';

/** A lease's halves as decoded: each present only when it is usable. */
export interface LeaseHalves {
  /** The IPv4 half (for a peer: when this host can program it, the network has IPv4 and the half is valid). */
  readonly subnet?: Prefix;
  /** The IPv6 half (likewise). */
  readonly subnetV6?: Prefix;
  readonly attrs: LeaseAttrs;
  /**
   * BackendData as the backend of the lease's BackendType read it, when its data belongs to the
   * IPv4 half (backend-codec.ts `dataScope: 'half'`, vxlan) and that half is usable.
   */
  readonly data?: LeaseData;
  /** BackendV6Data likewise, when the IPv6 half is usable. */
  readonly dataV6?: LeaseData;
  /** The lease's data when it belongs to the whole lease (`dataScope: 'lease'`, wireguard). */
  readonly leaseData?: LeaseData;
}

/** A lease that passed validation: at least one half can be programmed on this host. */
export interface PeerLease extends LeaseHalves {
  /** The subnet key (last path element), e.g. `198.18.5.0-24` or `198.18.5.0-24&fd18:0:0:5::-64`. */
  readonly subnetKey: string;
  /**
   * etcd's create revision of the key (decimal): the older lease wins a clash over one VTEP
   * MAC, whatever order keys sort or arrive in. Absent: judged outside a store (sorts last).
   */
  readonly createRevision?: string;
  /** A half of the key that is not programmed here, and why (shown, never an error: mixed families are tolerated). */
  readonly ignored?: string;
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
 * routed into the fabric it is meant to carry). IPv4 or IPv6 (`PublicIPv6`).
 */
export function badPublicIP(a: IP, network?: Prefix): string | undefined {
  if (a.family === 6) return badPublicIPv6(a, network);
  const host = prefix(a, 32);
  const hit = BAD_PUBLIC.find(([p]) => within(host, p));
  if (hit) return `PublicIP ${formatIP(a)} ${hit[1]}: not a usable unicast address`;
  if (network && within(host, network))
    return `PublicIP ${formatIP(a)} is inside the overlay network ${formatPrefix(network)}`;
  return undefined;
}

/** A key and value that decode and can be trusted as data, before any fit to the config. */
export type EntryVerdict =
  | (LeaseHalves & {
      readonly ok: true;
      /** Why a present half cannot be used (bad PublicIPv6, bad BackendV6Data, ...). */
      readonly badHalf?: string;
    })
  | { readonly ok: false; readonly reason: string; readonly subnet?: Prefix };

/** Printable ASCII without spaces: every backend type flannel knows (vxlan, host-gw, wireguard, ...). */
const BACKEND_TYPE = /^[\x21-\x7e]{1,32}$/;

/**
 * Decode one entry and judge it as data: a flannel key in canonical form, each half aligned; a
 * value flanneld reads; a printable BackendType; the data the backend of that type (in
 * `backends`) reads from it. Then each half on its own: the IPv4 half needs a usable PublicIP
 * outside the IPv4 overlay `network` (and its BackendData, when its backend's data is per half:
 * for vxlan a unicast, non-zero VTEP MAC, as a zero MAC is the vxlan catch-all FDB entry and
 * flooded traffic would go to the writer); the IPv6 half a usable PublicIPv6 outside `networkV6`
 * (never link-local) and its BackendV6Data. The entry is rejected when no half is usable; a bad
 * half next to a good one is reported in `badHalf`. Never throws.
 */
export function decodePeerEntry(
  subnetKey: string,
  value: string,
  backends: FlannelBackends,
  network: Prefix | undefined,
  networkV6?: Prefix,
): EntryVerdict {
  const key = parseSubnetKey(subnetKey);
  if (!key) return { ok: false, reason: `key "${shortText(subnetKey)}" is not a flannel subnet key` };
  const shown = primarySubnet(key);
  const reject = (reason: string): EntryVerdict => ({ ok: false, reason, ...(key.v4 ? { subnet: key.v4 } : {}) });
  if (!key.canonical)
    return reject(
      `key "${shortText(subnetKey)}" is not in canonical form (flanneld reads it as ${shown ? formatPrefix(shown) : '?'}${key.v4 && key.v6 ? ` & ${formatPrefix(key.v6)}` : ''}; weft writes ${formatSubnetKey(key)})`,
    );
  for (const half of [key.v4, key.v6])
    if (half && !isNetworkAddress(half))
      return reject(`subnet ${formatPrefix(half)} is not aligned on its prefix length`);
  const attrs = decodeLeaseAttrs(value);
  if (!attrs.ok) return reject(attrs.reason);
  const a = attrs.value;
  const type = a.backendType;
  if (type !== undefined && !BACKEND_TYPE.test(type))
    return reject(
      `BackendType "${shortText(type)}" is not a backend name (control characters, spaces or over 32 characters)`,
    );
  const codec = leaseCodecOf(backends, type);
  let leaseData: LeaseData | undefined;
  if (codec?.dataScope === 'lease') {
    const d = judgeData(codec, a.backendData ?? a.backendV6Data, 'BackendData');
    if (d && !d.ok) return reject(d.reason);
    leaseData = d?.value;
  }
  const halfData = (text: string | undefined, field: 'BackendData' | 'BackendV6Data') =>
    codec?.dataScope === 'half' ? judgeData(codec, text, field) : undefined;
  // The IPv4 half.
  let v4: { subnet: Prefix; data?: LeaseData } | undefined;
  let why4: string | undefined;
  if (key.v4) {
    const bad = badPublicIP(a.publicIP, network);
    const data = halfData(a.backendData, 'BackendData');
    if (bad) why4 = bad;
    else if (data && !data.ok) why4 = data.reason;
    else v4 = { subnet: key.v4, ...(data?.ok ? { data: data.value } : {}) };
  }
  // The IPv6 half.
  let v6h: { subnet: Prefix; data?: LeaseData } | undefined;
  let why6: string | undefined;
  if (key.v6) {
    const pub = a.publicIPv6;
    const bad = pub ? badPublicIP(pub, networkV6) : 'PublicIPv6 is null: the IPv6 half has no endpoint';
    const data = halfData(a.backendV6Data, 'BackendV6Data');
    if (bad) why6 = `IPv6 half: ${bad}`;
    else if (data && !data.ok) why6 = `IPv6 half: ${data.reason}`;
    else v6h = { subnet: key.v6, ...(data?.ok ? { data: data.value } : {}) };
  }
  // A lease with an IPv4 half is judged by it as before (a bad IPv6 half alone is reported, not fatal).
  if (key.v4 && !v4) return reject(why4 ?? 'unusable IPv4 half');
  if (!v4 && !v6h) return reject(why6 ?? 'no usable half');
  return {
    ok: true,
    attrs: a,
    ...(v4 ? { subnet: v4.subnet, ...(v4.data ? { data: v4.data } : {}) } : {}),
    ...(v6h ? { subnetV6: v6h.subnet, ...(v6h.data ? { dataV6: v6h.data } : {}) } : {}),
    ...(leaseData ? { leaseData } : {}),
    ...(why6 ? { badHalf: why6 } : {}),
  };
}

/**
 * Judge one entry: `subnetKey` is the key below `<prefix>/subnets/`, `value` its text, its data
 * read by the backend of its BackendType in `backends`.
 * `subnet` is set on a rejection whenever flanneld reads a subnet from the key, canonical or
 * not (so the subnet still counts as taken for allocation). Each half is kept only when this
 * host's network has its family and the half fits it; a half of a family the network lacks is
 * ignored without error (a v4-only host and a dual-stack peer, flanneld panics there, §1.7).
 */
export function validatePeerLease(
  subnetKey: string,
  value: string,
  config: NetworkConfig,
  backends: FlannelBackends,
  createRevision?: string,
): LeaseVerdict {
  const r4 = config.ipv4;
  const r6 = config.ipv6;
  // A lease of only a family this network lacks is no peer (a v6-only flanneld lease in an IPv4 fleet).
  const key = parseSubnetKey(subnetKey);
  if (key?.canonical && !key.v4 && !r6) return { ok: false, reason: 'IPv6-only lease in an IPv4 network' };
  if (key?.canonical && key.v4 && !key.v6 && !r4)
    return { ok: false, reason: 'IPv4-only lease in an IPv6-only network', subnet: key.v4 };
  const d = decodePeerEntry(subnetKey, value, backends, r4?.network, r6?.network);
  if (!d.ok) return d;
  const reject = (reason: string): LeaseVerdict => ({ ok: false, reason, ...(d.subnet ? { subnet: d.subnet } : {}) });
  const notes: string[] = [];
  let v4: Prefix | undefined;
  if (d.subnet) {
    if (!r4) notes.push(`IPv4 half ${formatPrefix(d.subnet)} ignored: this network has no IPv4`);
    else if (!within(d.subnet, r4.network))
      return reject(`subnet ${formatPrefix(d.subnet)} is outside the network ${formatPrefix(r4.network)}`);
    else if (d.subnet.len !== r4.subnetLen)
      return reject(`subnet ${formatPrefix(d.subnet)} is not a /${r4.subnetLen} (SubnetLen)`);
    else v4 = d.subnet;
  }
  let v6: Prefix | undefined;
  if (d.subnetV6) {
    if (!r6) notes.push(`IPv6 half ${formatPrefix(d.subnetV6)} ignored: this network has no IPv6`);
    else if (!within(d.subnetV6, r6.network))
      notes.push(`IPv6 half ${formatPrefix(d.subnetV6)} is outside the IPv6 network ${formatPrefix(r6.network)}`);
    else if (d.subnetV6.len !== r6.subnetLen)
      notes.push(`IPv6 half ${formatPrefix(d.subnetV6)} is not a /${r6.subnetLen} (IPv6SubnetLen)`);
    else v6 = d.subnetV6;
  }
  if (d.badHalf) notes.push(d.badHalf);
  if (!v4 && !v6) {
    return reject(notes.join('; ') || 'no half of the lease fits this network');
  }
  return {
    ok: true,
    lease: Object.freeze({
      subnetKey,
      attrs: d.attrs,
      ...(v4 ? { subnet: v4, ...(d.data ? { data: d.data } : {}) } : {}),
      ...(v6 ? { subnetV6: v6, ...(d.dataV6 ? { dataV6: d.dataV6 } : {}) } : {}),
      ...(d.leaseData ? { leaseData: d.leaseData } : {}),
      ...(createRevision !== undefined ? { createRevision } : {}),
      ...(notes.length > 0 ? { ignored: notes.join('; ') } : {}),
    }),
  };
}
