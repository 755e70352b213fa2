/**
 * What wireguard's leases carry: BackendType `wireguard` and one BackendData for the lease
 * (flannel-ipv6-wireguard.md §2.2). `{"PublicKey":"…","Port":51820}` (wireguard_network.go
 * wireguardLeaseAttrs), written byte for byte as flanneld writes it and read as flanneld reads
 * it, the key judged as data. weft programs IPv4 over WireGuard, so it writes BackendData only. Pure.
 */
import type { IP } from '../core/net/cidr.js';
import { type Decoded, unmarshal } from '../core/flannel/gojson.js';
import { LEASE_VALUE_LIMITS, type LeaseAttrs } from '../core/flannel/lease.js';
import type { LeaseCodec, LeaseData } from '../core/flannel/backend-codec.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import { WG_KEY } from '../core/flannel/wg-key.js';
import { WIREGUARD } from './wireguard-options.js';

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
  return { publicIP, backendType: WIREGUARD, backendData: encodeWireguardData(d) };
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
  if (!WG_KEY.test(key))
    return { ok: false, reason: 'BackendData.PublicKey is not a WireGuard key (base64 of 32 bytes, 44 characters)' };
  const port = r.value.Port;
  return {
    ok: true,
    value: Object.freeze({ publicKey: key, ...(port !== undefined && port !== 0n ? { port: Number(port) } : {}) }),
  };
}

const asData = (d: LeaseData): WireguardData => d as WireguardData;

/** wireguard's lease codec (core/flannel/backend-codec.ts): one BackendData for the lease; a bad one rejects it. */
export const wireguardLease: LeaseCodec = {
  leaseType: WIREGUARD,
  dataScope: 'lease',
  decodeData: (text) => decodeWireguardData(text),
  viewData: (d) => ({ publicKey: asData(d).publicKey }),
};

/** A wireguard peer's key and port (its lease's BackendData, as validated), when it has them. */
export const wireguardDataOf = (p: PeerLease): WireguardData | undefined =>
  p.attrs.backendType === WIREGUARD && p.leaseData ? asData(p.leaseData) : undefined;
