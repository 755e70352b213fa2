/**
 * Lease keys and values in flanneld's exact byte format (flannel-compat.md §1.2, §1.3), and the
 * reading of other hosts' values exactly as flanneld reads them (Go's encoding/json into
 * pkg/lease LeaseAttrs and vxlan's vxlanLeaseAttrs), within limits: a value over 4 KiB or nested
 * deeper than 32 levels is refused unread (flanneld would read it; nothing legitimate is that big).
 *
 * Key: `198.18.5.0-24`, dual stack `198.18.5.0-24&fd00:5::-64`, IPv6 only `0.0.0.0-0&fd00:5::-64`.
 * Value: `{"PublicIP":"…","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}`.
 */
import { type IP, formatIP, ip } from '../net/cidr.js';
import { type Decoded, type JsonLimits, compactJson, unmarshal } from './gojson.js';
import { unmarshalHardwareAddr, unmarshalIP4, unmarshalIP6 } from './flannel-types.js';
import { formatMAC } from '../net/mac.js';
import { WG_KEY } from './network-config.js';

export type { Decoded } from './gojson.js';
export { type ParsedSubnetKey, type SubnetKey, formatSubnetKey, parseSubnetKey } from './subnet-key.js';

/** Limits on a lease value read from etcd. */
export const LEASE_VALUE_LIMITS: JsonLimits = Object.freeze({ maxBytes: 4096, maxDepth: 32 });

/**
 * vxlan's BackendData. `vni` is absent when the lease has none (or `null`): flanneld never uses
 * a peer's VNI, so such a lease is still a peer. `vtepMAC` is a normalised 6-byte MAC.
 */
export interface VxlanData {
  readonly vni?: number;
  readonly vtepMAC: string;
}

/** A lease value (flannel's LeaseAttrs). `backendData` is compact raw JSON text. */
export interface LeaseAttrs {
  readonly publicIP: IP;
  readonly publicIPv6?: IP;
  readonly backendType?: string;
  readonly backendData?: string;
  readonly backendV6Data?: string;
}

/** Exactly what Go's json.Marshal writes for flannel's LeaseAttrs. */
export function encodeLeaseAttrs(a: LeaseAttrs): string {
  const v6 = a.publicIPv6 ? JSON.stringify(formatIP(a.publicIPv6)) : 'null';
  let out = `{"PublicIP":${JSON.stringify(formatIP(a.publicIP))},"PublicIPv6":${v6}`;
  if (a.backendType) out += `,"BackendType":${JSON.stringify(a.backendType)}`;
  if (a.backendData) out += `,"BackendData":${a.backendData}`;
  if (a.backendV6Data) out += `,"BackendV6Data":${a.backendV6Data}`;
  return `${out}}`;
}

/** `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}` */
export function encodeVxlanData(d: Required<VxlanData>): string {
  return `{"VNI":${d.vni},"VtepMAC":${JSON.stringify(d.vtepMAC)}}`;
}

/** The attrs of a lease this host publishes. */
export function vxlanLeaseAttrs(publicIP: IP, d: Required<VxlanData>): LeaseAttrs {
  return { publicIP, backendType: 'vxlan', backendData: encodeVxlanData(d) };
}

/** pkg/lease LeaseAttrs: PublicIP ip.IP4, PublicIPv6 *ip.IP6, BackendType string, BackendData and BackendV6Data json.RawMessage. */
const LEASE_ATTRS = {
  PublicIP: { kind: unmarshalIP4 },
  PublicIPv6: { kind: unmarshalIP6, pointer: true },
  BackendType: { kind: 'string' },
  BackendData: { kind: 'raw' },
  BackendV6Data: { kind: 'raw' },
} as const;

/** vxlan_network.go vxlanLeaseAttrs: VNI uint32, VtepMAC hardwareAddr. */
const VXLAN_LEASE_ATTRS = { VNI: { kind: 'uint32' }, VtepMAC: { kind: unmarshalHardwareAddr } } as const;

/**
 * Decode a lease value as flanneld does (kvToIPLease: json.Unmarshal into LeaseAttrs); anything
 * it would reject is rejected with a reason. A missing PublicIP is 0.0.0.0, as in Go; BackendData
 * is kept as compact JSON text (`null` stays `null`, as in a RawMessage).
 */
export function decodeLeaseAttrs(text: string): Decoded<LeaseAttrs> {
  const r = unmarshal(text, LEASE_VALUE_LIMITS, 'lease.LeaseAttrs', LEASE_ATTRS);
  if (!r.ok) return r;
  const v = r.value;
  return {
    ok: true,
    value: Object.freeze({
      publicIP: v.PublicIP ?? ZERO_IPV4,
      ...(v.PublicIPv6 ? { publicIPv6: v.PublicIPv6 } : {}),
      ...(v.BackendType ? { backendType: v.BackendType } : {}),
      ...(v.BackendData ? { backendData: compactJson(v.BackendData) } : {}),
      ...(v.BackendV6Data ? { backendV6Data: compactJson(v.BackendV6Data) } : {}),
    }),
  };
}

/**
 * Decode vxlan BackendData as flanneld does (handleSubnetEvents: json.Unmarshal into
 * vxlanLeaseAttrs). Two deliberate refusals where flanneld decodes: no VtepMAC, and a MAC that is
 * not 6 bytes (8- and 20-byte forms parse); flanneld then fails to add the FDB entry (the kernel
 * wants a 6-byte address), so the peer is never reachable either way.
 */
export function decodeVxlanData(text: string | undefined): Decoded<VxlanData> {
  if (text === undefined) return { ok: false, reason: 'vxlan lease without BackendData' };
  const r = unmarshal(text, LEASE_VALUE_LIMITS, 'vxlan.vxlanLeaseAttrs', VXLAN_LEASE_ATTRS);
  if (!r.ok) return { ok: false, reason: `BackendData: ${r.reason}` };
  const mac = r.value.VtepMAC;
  if (!mac) return { ok: false, reason: 'BackendData has no VtepMAC' };
  if (mac.length !== 6) return { ok: false, reason: `BackendData.VtepMAC ${formatMAC(mac)} is not a 6-byte Ethernet MAC` };
  const vni = r.value.VNI;
  return { ok: true, value: Object.freeze({ ...(vni !== undefined ? { vni: Number(vni) } : {}), vtepMAC: formatMAC(mac) }) };
}

/** wireguard's BackendData (wireguardLeaseAttrs). `port` is absent when the lease has none or 0 (flanneld before v0.26.6). */
export interface WireguardData {
  readonly publicKey: string;
  readonly port?: number;
}

/** `{"PublicKey":"…","Port":51820}`: wireguardLeaseAttrs as Go marshals it (PublicKey string, Port uint16). */
export function encodeWireguardData(d: Required<WireguardData>): string {
  return `{"PublicKey":${JSON.stringify(d.publicKey)},"Port":${d.port}}`;
}

/** The attrs of a wireguard lease this host publishes (BackendData only: weft programs IPv4). */
export function wireguardLeaseAttrs(publicIP: IP, d: Required<WireguardData>): LeaseAttrs {
  return { publicIP, backendType: 'wireguard', backendData: encodeWireguardData(d) };
}

/** wireguard_network.go wireguardLeaseAttrs: PublicKey string, Port uint16. */
const WIREGUARD_LEASE_ATTRS = { PublicKey: { kind: 'string' }, Port: { kind: 'uint16' } } as const;


/**
 * Decode wireguard BackendData as flanneld does (json.Unmarshal into wireguardLeaseAttrs), then
 * judge the key as data: flanneld passes it to wgtypes.ParseKey, which fails on anything but
 * base64 of 32 bytes; weft also refuses a non-canonical spelling (non-zero padding bits, which
 * Go accepts), since `wg` would show the key differently and the peer could never converge.
 */
export function decodeWireguardData(text: string | undefined): Decoded<WireguardData> {
  if (text === undefined) return { ok: false, reason: 'wireguard lease without BackendData' };
  const r = unmarshal(text, LEASE_VALUE_LIMITS, 'wireguard.wireguardLeaseAttrs', WIREGUARD_LEASE_ATTRS);
  if (!r.ok) return { ok: false, reason: `BackendData: ${r.reason}` };
  const key = (r.value.PublicKey ?? '').replace(/[\r\n]/g, '');
  if (key === '') return { ok: false, reason: 'BackendData has no PublicKey' };
  if (!WG_KEY.test(key)) return { ok: false, reason: 'BackendData.PublicKey is not a WireGuard key (base64 of 32 bytes, 44 characters)' };
  const port = r.value.Port;
  return { ok: true, value: Object.freeze({ publicKey: key, ...(port !== undefined && port !== 0n ? { port: Number(port) } : {}) }) };
}

/** The zero IPv4 address flannel writes as PublicIP for IPv6-only hosts. */
export const ZERO_IPV4: IP = ip(4, 0n);
