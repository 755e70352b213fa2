/**
 * Lease keys and values in flanneld's exact byte format (flannel-compat.md §1.2, §1.3).
 *
 * Key: `198.18.5.0-24`, dual stack `198.18.5.0-24&fd00:5::-64`, IPv6 only `0.0.0.0-0&fd00:5::-64`.
 * Value: `{"PublicIP":"…","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}`.
 */
import { type IP, formatIP, ip, parseIPv4, parseIPv6 } from './cidr.js';
import { normalizeEthernetMAC } from './mac.js';
import type { Json } from './network-config.js';

export { type ParsedSubnetKey, type SubnetKey, formatSubnetKey, parseSubnetKey } from './subnet-key.js';

/** vxlan's BackendData. */
export interface VxlanData {
  readonly vni: number;
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
export function encodeVxlanData(d: VxlanData): string {
  return `{"VNI":${d.vni},"VtepMAC":${JSON.stringify(d.vtepMAC)}}`;
}

/** The attrs of a lease this host publishes. */
export function vxlanLeaseAttrs(publicIP: IP, d: VxlanData): LeaseAttrs {
  return { publicIP, backendType: 'vxlan', backendData: encodeVxlanData(d) };
}

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };
const fail = (reason: string): { ok: false; reason: string } => ({ ok: false, reason });

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

function get(obj: Record<string, Json>, key: string): Json | undefined {
  let found: Json | undefined;
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === key.toLowerCase()) found = v;
  return found;
}

/** Decode a lease value as flanneld would; anything it would reject is rejected with a reason. */
export function decodeLeaseAttrs(text: string): Decoded<LeaseAttrs> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return fail('value is not JSON');
  }
  if (!isObject(doc)) return fail('value is not a JSON object');
  const pub = get(doc, 'PublicIP');
  const publicIP = typeof pub === 'string' ? parseIPv4(pub) : undefined;
  if (!publicIP) return fail(`PublicIP ${JSON.stringify(pub ?? null)} is not an IPv4 address`);
  const pub6 = get(doc, 'PublicIPv6');
  let publicIPv6: IP | undefined;
  if (pub6 !== undefined && pub6 !== null) {
    publicIPv6 = typeof pub6 === 'string' ? parseIPv6(pub6) : undefined;
    if (!publicIPv6) return fail(`PublicIPv6 ${JSON.stringify(pub6)} is not an IPv6 address`);
  }
  const bt = get(doc, 'BackendType');
  if (bt !== undefined && bt !== null && typeof bt !== 'string') return fail('BackendType is not a string');
  const raw = (k: string): string | undefined => {
    const v = get(doc, k);
    return v === undefined || v === null ? undefined : JSON.stringify(v);
  };
  const bd = raw('BackendData');
  const bd6 = raw('BackendV6Data');
  return {
    ok: true,
    value: Object.freeze({
      publicIP,
      ...(publicIPv6 ? { publicIPv6 } : {}),
      ...(typeof bt === 'string' && bt !== '' ? { backendType: bt } : {}),
      ...(bd !== undefined ? { backendData: bd } : {}),
      ...(bd6 !== undefined ? { backendV6Data: bd6 } : {}),
    }),
  };
}

/** Decode vxlan BackendData; the MAC must be a 6-byte Ethernet address (normalised). */
export function decodeVxlanData(text: string | undefined): Decoded<VxlanData> {
  if (text === undefined) return fail('vxlan lease without BackendData');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return fail('BackendData is not JSON');
  }
  if (!isObject(doc)) return fail('BackendData is not an object');
  const vni = get(doc, 'VNI');
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > 0xffffffff) return fail('BackendData.VNI is not a uint32');
  const macText = get(doc, 'VtepMAC');
  const vtepMAC = typeof macText === 'string' ? normalizeEthernetMAC(macText) : undefined;
  if (!vtepMAC) return fail(`BackendData.VtepMAC ${JSON.stringify(macText ?? null)} is not an Ethernet MAC`);
  return { ok: true, value: Object.freeze({ vni, vtepMAC }) };
}

/** The zero IPv4 address flannel writes as PublicIP for IPv6-only hosts. */
export const ZERO_IPV4: IP = ip(4, 0n);
