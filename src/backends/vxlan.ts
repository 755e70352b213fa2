/**
 * vxlan exactly as flanneld programs it (flannel-compat.md §3): device `flannel.<VNI>` with
 * `local` = public IP, nolearning, MTU underlay − 50, the own subnet address /32 on it; per
 * peer a permanent neighbour, a permanent fdb entry and an onlink route, or with DirectRouting
 * a plain route to an L2-adjacent peer. IPv6 the same on `flannel-v6.<VNI>` (same VNI and
 * port, its own MAC published in BackendV6Data, the own IPv6 subnet address /128, local =
 * PublicIPv6, flannel-ipv6-wireguard.md §1.9), each half of a peer on its own. Unlike flanneld,
 * a peer with another VNI (one with none is programmed), a MAC already used by another peer, or
 * this host's own public IP is reported and skipped. Its options are vxlan-options.ts, its
 * lease data vxlan-lease.ts.
 */
import { type IP, type Prefix, formatIP, maskPrefix, prefix, sameIP } from '../core/net/cidr.js';
import {
  type FdbEntry,
  type Neighbour,
  type Route,
  type VxlanDevice,
  neighKey,
  routeKey,
} from '../core/datapath/datapath.js';
import { isAdjacent } from '../core/host/host-facts.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import type { Backend, BackendInput } from './types.js';
import { oldestBy } from './claims.js';
import { type PeerHalf, type Unfit, directRoute, eachPeer, subnetOwners } from './route-per-peer.js';
import {
  VXLAN,
  VXLAN_PORT,
  VXLAN_SPEC_KEYS,
  decodeVxlanOptions,
  optionsOf,
  vxlanBackendObject,
  vxlanDescription,
  vxlanOptions,
  vxlanSettings,
  vxlanSummary,
  vxlanView,
} from './vxlan-options.js';
import {
  type VxlanData,
  encodeVxlanData,
  vxlanDataOf,
  vxlanDataV6Of,
  vxlanLease,
  vxlanLeaseAttrs,
} from './vxlan-lease.js';

const VXLAN_OVERHEAD_V4 = 50;
/** IPv6 header (40) + UDP (8) + vxlan (8) + inner Ethernet (14). */
const VXLAN_OVERHEAD_V6 = 70;

/** The device names of a VNI: `flannel.<VNI>` (IPv4), `flannel-v6.<VNI>` (IPv6), as flanneld names them. */
export const vxlanDeviceNames = (vni: number): { v4: string; v6: string } => ({
  v4: `flannel.${vni}`,
  v6: `flannel-v6.${vni}`,
});

/** One family's view of a peer and of this host. */
interface Half extends PeerHalf {
  readonly tag: '' | 'IPv6 half: ';
  readonly dev: string;
  readonly data: (p: PeerLease) => VxlanData | undefined;
  readonly pub: (p: PeerLease) => IP | undefined;
  readonly selfPub: IP | undefined;
}

export const vxlan: Backend = {
  type: VXLAN,
  decodeOptions: decodeVxlanOptions,
  settings: vxlanSettings,
  lease: vxlanLease,
  families: [4, 6],
  specKeys: VXLAN_SPEC_KEYS,
  backendObject: vxlanBackendObject,
  view: vxlanView,
  summary: vxlanSummary,
  describe: vxlanDescription,
  doctor: (c) => ({
    encapsulation: { name: VXLAN, protocol: 'UDP', port: vxlanOptions(c).port || VXLAN_PORT },
    overheadBytes: VXLAN_OVERHEAD_V4,
    peerRoutes: true,
    probeTarget: 'device',
    checksumOffload: true,
  }),
  deviceNames: (c) => {
    const n = vxlanDeviceNames(vxlanOptions(c).vni);
    return [...(c.ipv4 ? [n.v4] : []), ...(c.ipv6 ? [n.v6] : [])];
  },
  // The IPv4 device's MAC is published (and kept off peers) even on an IPv6-only network, as before.
  publishedMACs: (c) => {
    const vni = vxlanOptions(c).vni;
    const n = vxlanDeviceNames(vni);
    return [
      { device: n.v4, family: 4, macSeed: vni },
      ...(c.ipv6 ? [{ device: n.v6, family: 6 as const, macSeed: vni }] : []),
    ];
  },
  overheadBytes: VXLAN_OVERHEAD_V4,
  mtu: (c, facts, hostMTU) => hostMTU ?? (vxlanOptions(c).mtu || facts.ifaceMTU) - VXLAN_OVERHEAD_V4,
  leaseAttrs: (c, facts, vtepMAC, _keys, vtepMACv6) => {
    const vni = vxlanOptions(c).vni;
    const v4 = c.ipv4
      ? vxlanLeaseAttrs(facts.publicIP, { vni, vtepMAC })
      : { publicIP: facts.publicIP, backendType: VXLAN };
    if (!c.ipv6 || !facts.publicIPv6 || !vtepMACv6) return v4;
    return { ...v4, publicIPv6: facts.publicIPv6, backendV6Data: encodeVxlanData({ vni, vtepMAC: vtepMACv6 }) };
  },
  refusal: () => undefined,
  // Only the VTEP MAC links leases (one MAC, one VTEP); a lease without vxlan data stands alone.
  // Two leases sharing a MAC across families land in different groups: the index then finds
  // both claiming one key and the pass computes in full (core/datapath/desired-index.ts).
  peerGroup: (p) => {
    const d = vxlanDataOf(p) ?? vxlanDataV6Of(p);
    return d ? `mac ${d.vtepMAC}` : `key ${p.subnetKey}`;
  },
  desired: vxlanDesired,
};

/** The halves this host programs: IPv4 with an IPv4 subnet; IPv6 with an IPv6 subnet, a public IPv6 to send from and its MAC. */
function halvesOf(i: BackendInput, names: { v4: string; v6: string }): Half[] {
  const halves: Half[] = [];
  if (i.own.v4)
    halves.push({
      tag: '',
      dev: names.v4,
      subnet: (p) => p.subnet,
      data: vxlanDataOf,
      pub: (p) => p.attrs.publicIP,
      selfPub: i.facts.publicIP,
    });
  if (i.own.v6 && i.facts.publicIPv6 && i.vtepMACv6)
    halves.push({
      tag: 'IPv6 half: ',
      dev: names.v6,
      subnet: (p) => p.subnetV6,
      data: vxlanDataV6Of,
      pub: (p) => p.attrs.publicIPv6,
      selfPub: i.facts.publicIPv6,
    });
  return halves;
}

function vxlanDesired(i: BackendInput) {
  const o = optionsOf(i.config.backend.type === VXLAN ? i.config.backend.options : undefined);
  const names = vxlanDeviceNames(o.vni);
  const routes = new Map<string, Route>();
  const neighs = new Map<string, Neighbour>();
  const fdb = new Map<string, FdbEntry>();
  const peers = [...i.peers];
  const halves = halvesOf(i, names);
  const ownMACs = new Set([i.vtepMAC, ...(i.vtepMACv6 ? [i.vtepMACv6] : [])]);
  // A half of a peer that can be programmed (its vxlan data and public address), or why it is
  // not programmed at all (it then claims nothing: no subnet, no MAC).
  const fit = (p: PeerLease, h: Half): { d: VxlanData; pub: IP } | Unfit => {
    if (p.attrs.backendType !== VXLAN) return { why: `backend ${p.attrs.backendType ?? '(none)'} is not vxlan` };
    const d = h.data(p);
    const pub = h.pub(p);
    if (!d || !pub) return { why: 'no vxlan data' };
    // A lease without a VNI is programmed, as flanneld (which never reads a peer's VNI) does.
    if (d.vni !== undefined && d.vni !== o.vni) return { why: `VNI ${d.vni} differs from this network's VNI ${o.vni}` };
    if (h.selfPub && sameIP(pub, h.selfPub))
      return { why: `${pub.family === 4 ? 'PublicIP' : 'PublicIPv6'} ${formatIP(pub)} is this host's own public IP` };
    if (ownMACs.has(d.vtepMAC)) return { why: `VtepMAC ${d.vtepMAC} is this host's own` };
    return { d, pub };
  };
  const direct = (pub: IP): boolean => o.directRouting && isAdjacent(i.routes, pub, i.facts.iface);
  // One subnet, one lease: with IPv6 a subnet can sit in two keys (`S-24` and `S-24&V-64`,
  // flanneld's dual-stack race or a hand-written key); the oldest claim keeps the route.
  const subnetOwner = subnetOwners(peers, halves, fit);
  const ownsSubnet = (p: PeerLease, s: Prefix): boolean => subnetOwner.get(routeKey(s)) === p;
  // One MAC, one VTEP, across both devices: the oldest lease (etcd create revision) that
  // claims it wins, whatever order keys sort or arrive in, so a copy of a host's MAC written
  // later never takes its traffic. The halves that claim a MAC are those it would be programmed
  // for: the subnet is theirs and routed through the device (not directly).
  const macOwner = oldestBy(peers, (p) =>
    halves.flatMap((h) => {
      const s = h.subnet(p);
      const f = fit(p, h);
      return s && !('why' in f) && ownsSubnet(p, s) && !direct(f.pub) ? [f.d.vtepMAC] : [];
    }),
  );
  const { skipped, programmed } = eachPeer(peers, halves, fit, subnetOwner, (p, h, { d, pub }, subnet) => {
    if (direct(pub)) {
      routes.set(routeKey(subnet), directRoute(subnet, pub, i.facts.iface));
      return undefined;
    }
    const mac = d.vtepMAC;
    const owner = macOwner.get(mac);
    if (owner !== p) return `VtepMAC ${mac} is already used by the older lease ${owner?.subnetKey ?? '?'}`;
    // Both halves of one lease with one MAC: one fdb entry per MAC, the IPv4 half keeps it.
    if (fdb.has(mac)) return `VtepMAC ${mac} is also its IPv4 half's: two devices cannot share one VTEP MAC`;
    const gw = maskPrefix(subnet).ip;
    neighs.set(neighKey(gw), { ip: gw, mac, dev: h.dev });
    fdb.set(mac, { mac, dst: pub, dev: h.dev });
    routes.set(routeKey(subnet), { dst: subnet, via: gw, dev: h.dev, onlink: true });
    return undefined;
  });
  return { devices: vxlanDevices(i, o, names), routes, neighs, fdb, skipped, peersProgrammed: programmed.size };
}

/** This host's devices: flannel.<VNI> with its /32, and with IPv6 flannel-v6.<VNI> with its /128. */
function vxlanDevices(
  i: BackendInput,
  o: ReturnType<typeof optionsOf>,
  names: { v4: string; v6: string },
): VxlanDevice[] {
  const devices: VxlanDevice[] = [];
  const base = { vni: o.vni, underlay: i.facts.iface, port: o.port || VXLAN_PORT, learning: o.learning, gbp: o.gbp };
  if (i.own.v4)
    devices.push({
      kind: 'vxlan',
      name: names.v4,
      ...base,
      local: i.facts.publicIP,
      mtu: i.mtu,
      mac: i.vtepMAC,
      addresses: [prefix(maskPrefix(i.own.v4).ip, 32)],
    });
  if (i.own.v6 && i.facts.publicIPv6 && i.vtepMACv6) {
    // The kernel caps a vxlan device over IPv6 at the lower device's MTU − 70 (flanneld asks
    // for − 50 and gets a smaller device than subnet.env says, §1.9): ask for what it allows.
    const mtu = Math.min(i.mtu, Math.min(o.mtu || i.facts.ifaceMTU, i.facts.ifaceMTU) - VXLAN_OVERHEAD_V6);
    devices.push({
      kind: 'vxlan',
      name: names.v6,
      ...base,
      local: i.facts.publicIPv6,
      mtu,
      mac: i.vtepMACv6,
      addresses: [prefix(maskPrefix(i.own.v6).ip, 128)],
    });
  }
  return devices;
}
