/**
 * What vxlan's leases carry: BackendType `vxlan` and, per half, its VTEP (flannel-compat.md
 * §1.3). `{"VNI":1,"VtepMAC":"…"}` in BackendData (IPv4, flannel.<VNI>) and BackendV6Data (IPv6,
 * flannel-v6.<VNI>), written byte for byte as flanneld writes it and read as flanneld reads it
 * (vxlan_network.go vxlanLeaseAttrs), plus weft's trust check of the MAC. Pure.
 */
import type { IP } from '../core/net/cidr.js';
import { formatMAC, isUsableVtepMAC } from '../core/net/mac.js';
import { type Decoded, unmarshal } from '../core/flannel/gojson.js';
import { unmarshalHardwareAddr } from '../core/flannel/flannel-types.js';
import { LEASE_VALUE_LIMITS, type LeaseAttrs } from '../core/flannel/lease.js';
import type { BackendOptions, LeaseCodec, LeaseData } from '../core/flannel/backend-codec.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import { VXLAN, optionsOf } from './vxlan-options.js';

/**
 * vxlan's BackendData. `vni` is absent when the lease has none (or `null`): flanneld never uses
 * a peer's VNI, so such a lease is still a peer. `vtepMAC` is a normalised 6-byte MAC.
 */
export interface VxlanData {
  readonly vni?: number;
  readonly vtepMAC: string;
}

/** `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}` */
export function encodeVxlanData(d: Required<VxlanData>): string {
  return `{"VNI":${d.vni},"VtepMAC":${JSON.stringify(d.vtepMAC)}}`;
}

/** The attrs of a vxlan lease this host publishes (its IPv4 VTEP). */
export function vxlanLeaseAttrs(publicIP: IP, d: Required<VxlanData>): LeaseAttrs {
  return { publicIP, backendType: VXLAN, backendData: encodeVxlanData(d) };
}

/** vxlan_network.go vxlanLeaseAttrs: VNI uint32, VtepMAC hardwareAddr. */
const VXLAN_LEASE_ATTRS = { VNI: { kind: 'uint32' }, VtepMAC: { kind: unmarshalHardwareAddr } } as const;

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
  if (mac.length !== 6)
    return { ok: false, reason: `BackendData.VtepMAC ${formatMAC(mac)} is not a 6-byte Ethernet MAC` };
  const vni = r.value.VNI;
  return {
    ok: true,
    value: Object.freeze({ ...(vni !== undefined ? { vni: Number(vni) } : {}), vtepMAC: formatMAC(mac) }),
  };
}

const asData = (d: LeaseData): VxlanData => d as VxlanData;

/** vxlan's lease codec (core/flannel/backend-codec.ts): data per half, a usable unicast MAC, the VNI compared. */
export const vxlanLease: LeaseCodec = {
  leaseType: VXLAN,
  dataScope: 'half',
  decodeData: (text, field) => {
    const d = decodeVxlanData(text);
    return d.ok || field === 'BackendData' ? d : { ok: false, reason: d.reason.replace('BackendData', field) };
  },
  // A zero MAC is the vxlan catch-all FDB entry: flooded traffic would go to the writer.
  untrusted: (d, field) =>
    isUsableVtepMAC(asData(d).vtepMAC)
      ? undefined
      : `${field === 'BackendData' ? '' : 'IPv6 '}VtepMAC ${asData(d).vtepMAC} is not a unicast, non-zero Ethernet address`,
  viewData: (d) => {
    const x = asData(d);
    return { vtepMAC: x.vtepMAC, ...(x.vni !== undefined ? { vni: x.vni } : {}) };
  },
  // A lease without a VNI fits any: flanneld never reads a peer's VNI, and weft programs it.
  mismatch: (d, o: BackendOptions | undefined) => {
    const vni = asData(d).vni;
    const want = o === undefined ? undefined : optionsOf(o).vni;
    return vni !== undefined && want !== undefined && vni !== want
      ? { setting: 'VNI', lease: String(vni), network: String(want) }
      : undefined;
  },
};

/** A vxlan peer's IPv4 VTEP (BackendData, as validated), when it has one. */
export const vxlanDataOf = (p: PeerLease): VxlanData | undefined =>
  p.attrs.backendType === VXLAN && p.data ? asData(p.data) : undefined;

/** A vxlan peer's IPv6 VTEP (BackendV6Data), when it has one. */
export const vxlanDataV6Of = (p: PeerLease): VxlanData | undefined =>
  p.attrs.backendType === VXLAN && p.dataV6 ? asData(p.dataV6) : undefined;
