/**
 * vxlan exactly as flanneld programs it (flannel-compat.md §3): device `flannel.<VNI>` with
 * `local` = public IP, nolearning, MTU underlay − 50, the own subnet address /32 on it; per
 * peer a permanent neighbour, a permanent fdb entry and an onlink route, or with DirectRouting
 * a plain route to an L2-adjacent peer. Unlike flanneld, a peer with another VNI (one with none
 * is programmed), a MAC already used by another peer, or this host's own public IP is reported
 * and skipped.
 */
import { formatIP, maskPrefix, prefix, sameIP } from '../core/cidr.js';
import type { NetworkConfig } from '../core/config-check.js';
import { type FdbEntry, type Neighbour, type Route, type Skipped, neighKey, routeKey } from '../core/datapath.js';
import { isAdjacent } from '../core/host-facts.js';
import { vxlanLeaseAttrs } from '../core/lease.js';
import type { PeerLease } from '../core/peer-lease.js';
import type { Backend, BackendInput } from './types.js';

const VXLAN_OVERHEAD_V4 = 50;

/** A create revision as a number, or undefined when absent or not decimal (a hand-edited cache). */
const revisionOf = (p: PeerLease): bigint | undefined => (p.createRevision !== undefined && /^\d{1,19}$/.test(p.createRevision) ? BigInt(p.createRevision) : undefined);

/** Is `a` older than `b` (smaller etcd create revision; without one, the smaller key)? Total. */
export function older(a: PeerLease, b: PeerLease): boolean {
  const ra = revisionOf(a);
  const rb = revisionOf(b);
  if (ra !== undefined && rb !== undefined && ra !== rb) return ra < rb;
  if (ra !== undefined && rb === undefined) return true;
  if (ra === undefined && rb !== undefined) return false;
  return a.subnetKey < b.subnetKey;
}

const opts = (c: NetworkConfig) => c.backend.vxlan ?? { vni: 1, port: 0, mtu: 0, gbp: false, learning: false, directRouting: false };

export const vxlan: Backend = {
  type: 'vxlan',
  deviceNames: (c) => [`flannel.${opts(c).vni}`],
  mtu: (c, facts, hostMTU) => hostMTU ?? (opts(c).mtu || facts.ifaceMTU) - VXLAN_OVERHEAD_V4,
  leaseAttrs: (c, facts, vtepMAC) => vxlanLeaseAttrs(facts.publicIP, { vni: opts(c).vni, vtepMAC }),
  refusal: () => undefined,
  // Only the VTEP MAC links leases (one MAC, one VTEP); a lease without vxlan data stands alone.
  peerGroup: (p) => (p.vxlan ? `mac ${p.vxlan.vtepMAC}` : `key ${p.subnetKey}`),
  desired(i: BackendInput) {
    const o = opts(i.config);
    const dev = `flannel.${o.vni}`;
    const routes = new Map<string, Route>();
    const neighs = new Map<string, Neighbour>();
    const fdb = new Map<string, FdbEntry>();
    const skipped: Skipped[] = [];
    let programmed = 0;
    const peers = [...i.peers];
    // Why a peer is not programmed at all (its MAC then claims nothing), or undefined.
    const unfit = (p: PeerLease): string | undefined => {
      if (p.attrs.backendType !== 'vxlan' || !p.vxlan) return `backend ${p.attrs.backendType ?? '(none)'} is not vxlan`;
      // A lease without a VNI is programmed, as flanneld (which never reads a peer's VNI) does.
      if (p.vxlan.vni !== undefined && p.vxlan.vni !== o.vni) return `VNI ${p.vxlan.vni} differs from this network's VNI ${o.vni}`;
      if (sameIP(p.attrs.publicIP, i.facts.publicIP)) return `PublicIP ${formatIP(p.attrs.publicIP)} is this host's own public IP`;
      if (p.vxlan.vtepMAC === i.vtepMAC) return `VtepMAC ${i.vtepMAC} is this host's own`;
      return undefined;
    };
    const direct = (p: PeerLease): boolean => o.directRouting && isAdjacent(i.routes, p.attrs.publicIP, i.facts.iface);
    // One MAC, one VTEP: the oldest lease (etcd create revision) that claims it wins, whatever
    // order keys sort or arrive in, so a copy of a host's MAC written later never takes its traffic.
    const macOwner = new Map<string, PeerLease>();
    for (const p of peers) {
      if (unfit(p) !== undefined || direct(p) || !p.vxlan) continue;
      const had = macOwner.get(p.vxlan.vtepMAC);
      if (!had || older(p, had)) macOwner.set(p.vxlan.vtepMAC, p);
    }
    for (const p of peers) {
      const why = unfit(p);
      if (why !== undefined || !p.vxlan) { skipped.push({ subnetKey: p.subnetKey, reason: why ?? 'not vxlan' }); continue; }
      const pub = p.attrs.publicIP;
      if (direct(p)) {
        routes.set(routeKey(p.subnet), { dst: p.subnet, via: pub, dev: i.facts.iface, onlink: false });
        programmed++;
        continue;
      }
      const mac = p.vxlan.vtepMAC;
      const owner = macOwner.get(mac);
      if (owner !== p) { skipped.push({ subnetKey: p.subnetKey, reason: `VtepMAC ${mac} is already used by the older lease ${owner?.subnetKey ?? '?'}` }); continue; }
      const gw = maskPrefix(p.subnet).ip;
      neighs.set(neighKey(gw), { ip: gw, mac, dev });
      fdb.set(mac, { mac, dst: pub, dev });
      routes.set(routeKey(p.subnet), { dst: p.subnet, via: gw, dev, onlink: true });
      programmed++;
    }
    const ownV4 = i.own.v4;
    const address = ownV4 ? [prefix(maskPrefix(ownV4).ip, 32)] : [];
    return {
      devices: [{ kind: 'vxlan', name: dev, vni: o.vni, local: i.facts.publicIP, underlay: i.facts.iface, port: o.port || 8472, learning: o.learning, gbp: o.gbp, mtu: i.mtu, mac: i.vtepMAC, addresses: address }],
      routes, neighs, fdb, skipped, peersProgrammed: programmed,
    };
  },
};
