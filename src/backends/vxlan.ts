/**
 * vxlan exactly as flanneld programs it (flannel-compat.md §3): device `flannel.<VNI>` with
 * `local` = public IP, nolearning, MTU underlay − 50, the own subnet address /32 on it; per
 * peer a permanent neighbour, a permanent fdb entry and an onlink route, or with DirectRouting
 * a plain route to an L2-adjacent peer. Unlike flanneld, a peer with another VNI, a MAC already
 * used by another peer, or this host's own public IP is reported and skipped.
 */
import { formatIP, maskPrefix, prefix, sameIP } from '../core/cidr.js';
import type { NetworkConfig } from '../core/config-check.js';
import { type FdbEntry, type Neighbour, type Route, type Skipped, neighKey, routeKey } from '../core/datapath.js';
import { isAdjacent } from '../core/host-facts.js';
import { vxlanLeaseAttrs } from '../core/lease.js';
import type { Backend, BackendInput } from './types.js';

const VXLAN_OVERHEAD_V4 = 50;

const opts = (c: NetworkConfig) => c.backend.vxlan ?? { vni: 1, port: 0, mtu: 0, gbp: false, learning: false, directRouting: false };

export const vxlan: Backend = {
  type: 'vxlan',
  deviceNames: (c) => [`flannel.${opts(c).vni}`],
  mtu: (c, facts, hostMTU) => hostMTU ?? (opts(c).mtu || facts.ifaceMTU) - VXLAN_OVERHEAD_V4,
  leaseAttrs: (c, facts, vtepMAC) => vxlanLeaseAttrs(facts.publicIP, { vni: opts(c).vni, vtepMAC }),
  refusal: () => undefined,
  desired(i: BackendInput) {
    const o = opts(i.config);
    const dev = `flannel.${o.vni}`;
    const routes = new Map<string, Route>();
    const neighs = new Map<string, Neighbour>();
    const fdb = new Map<string, FdbEntry>();
    const macOwner = new Map<string, string>();
    const skipped: Skipped[] = [];
    let programmed = 0;
    for (const p of i.peers) {
      const skip = (reason: string) => { skipped.push({ subnetKey: p.subnetKey, reason }); };
      if (p.attrs.backendType !== 'vxlan' || !p.vxlan) { skip(`backend ${p.attrs.backendType ?? '(none)'} is not vxlan`); continue; }
      if (p.vxlan.vni !== o.vni) { skip(`VNI ${p.vxlan.vni} differs from this network's VNI ${o.vni}`); continue; }
      const pub = p.attrs.publicIP;
      if (sameIP(pub, i.facts.publicIP)) { skip(`PublicIP ${formatIP(pub)} is this host's own public IP`); continue; }
      if (o.directRouting && isAdjacent(i.routes, pub, i.facts.iface)) {
        routes.set(routeKey(p.subnet), { dst: p.subnet, via: pub, dev: i.facts.iface, onlink: false });
        programmed++;
        continue;
      }
      const mac = p.vxlan.vtepMAC;
      const clash = macOwner.get(mac);
      if (clash !== undefined) { skip(`VtepMAC ${mac} is already used by ${clash}`); continue; }
      macOwner.set(mac, p.subnetKey);
      const gw = maskPrefix(p.subnet).ip;
      neighs.set(neighKey(gw), { ip: gw, mac, dev });
      fdb.set(mac, { mac, dst: pub, dev });
      routes.set(routeKey(p.subnet), { dst: p.subnet, via: gw, dev, onlink: true });
      programmed++;
    }
    const address = prefix(maskPrefix(i.ownSubnet).ip, 32);
    return {
      devices: [{ kind: 'vxlan', name: dev, vni: o.vni, local: i.facts.publicIP, underlay: i.facts.iface, port: o.port || 8472, learning: o.learning, gbp: o.gbp, mtu: i.mtu, mac: i.vtepMAC, addresses: [address] }],
      routes, neighs, fdb, skipped, peersProgrammed: programmed,
    };
  },
};
