/**
 * Lease keys and values in flanneld's exact byte format (flannel-compat.md §1.2, §1.3), and the
 * reading of other hosts' values exactly as flanneld reads them (Go's encoding/json into
 * pkg/lease LeaseAttrs), within limits: a value over 4 KiB or nested deeper than 32 levels is
 * refused unread (flanneld would read it; nothing legitimate is that big). BackendData is read
 * by the backend that wrote it (backend-codec.ts LeaseCodec).
 *
 * Key: `198.18.5.0-24`, dual stack `198.18.5.0-24&fd00:5::-64`, IPv6 only `0.0.0.0-0&fd00:5::-64`.
 * Value: `{"PublicIP":"…","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"…"}}`.
 */
import { type IP, formatIP, ip } from '../net/cidr.js';
import { type Decoded, type JsonLimits, compactJson, unmarshal } from './gojson.js';
import { unmarshalIP4, unmarshalIP6 } from './flannel-types.js';

export type { Decoded } from './gojson.js';
export { type ParsedSubnetKey, type SubnetKey, formatSubnetKey, parseSubnetKey } from './subnet-key.js';

/** Limits on a lease value read from etcd. */
export const LEASE_VALUE_LIMITS: JsonLimits = Object.freeze({ maxBytes: 4096, maxDepth: 32 });

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

/** pkg/lease LeaseAttrs: PublicIP ip.IP4, PublicIPv6 *ip.IP6, BackendType string, BackendData and BackendV6Data json.RawMessage. */
const LEASE_ATTRS = {
  PublicIP: { kind: unmarshalIP4 },
  PublicIPv6: { kind: unmarshalIP6, pointer: true },
  BackendType: { kind: 'string' },
  BackendData: { kind: 'raw' },
  BackendV6Data: { kind: 'raw' },
} as const;

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

/** The zero IPv4 address flannel writes as PublicIP for IPv6-only hosts. */
export const ZERO_IPV4: IP = ip(4, 0n);
