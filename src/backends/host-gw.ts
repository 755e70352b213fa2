/**
 * host-gw as flanneld programs it (flannel-compat.md §4): `subnet via PublicIP dev <iface>` per
 * peer, and for IPv6 `v6subnet via PublicIPv6 dev <iface>` (flannel-ipv6-wireguard.md §1.10). Unlike flanneld, a peer that is not on this host's L2 segment is reported and skipped
 * (flanneld installs a route the kernel rejects or that black-holes traffic).
 */
import { type IP, formatIP, formatPrefix, sameIP } from '../core/net/cidr.js';
import { type Route, type Skipped, routeKey } from '../core/datapath/datapath.js';
import { underlayPathTo } from '../core/host/host-facts.js';
import type { LeaseAttrs } from '../core/flannel/lease.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import type { Backend, BackendInput } from './types.js';
import { oldestBy } from './claims.js';

export const hostGw: Backend = {
  type: 'host-gw',
  deviceNames: () => [],
  overheadBytes: 0,
  mtu: (_c, facts, hostMTU) => hostMTU ?? facts.ifaceMTU,
  // PublicIPv6 only when the network has IPv6 (flanneld's hostgw.go).
  leaseAttrs: (c, facts): LeaseAttrs => ({ publicIP: facts.publicIP, ...(c.ipv6 && facts.publicIPv6 ? { publicIPv6: facts.publicIPv6 } : {}), backendType: 'host-gw' }),
  refusal: (facts) => (sameIP(facts.publicIP, facts.ifaceIP) ? undefined
    : `host-gw cannot run behind NAT: host.publicIP ${formatIP(facts.publicIP)} differs from ${facts.iface}'s address ${formatIP(facts.ifaceIP)}`),
  // Each lease's route depends on that lease alone.
  peerGroup: (p) => p.subnetKey,
  desired(i: BackendInput) {
    const routes = new Map<string, Route>();
    const skipped: Skipped[] = [];
    const programmed = new Set<string>();
    const halves = [
      ...(i.own.v4 ? [{ tag: '', subnet: (p: PeerLease) => p.subnet, pub: (p: PeerLease): IP | undefined => p.attrs.publicIP, self: i.facts.publicIP }] : []),
      ...(i.own.v6 ? [{ tag: 'IPv6 half: ', subnet: (p: PeerLease) => p.subnetV6, pub: (p: PeerLease): IP | undefined => p.attrs.publicIPv6, self: i.facts.publicIPv6 }] : []),
    ];
    const peers = [...i.peers];
    // One subnet, one lease: the oldest claim keeps the route (a subnet can sit in two keys with
    // IPv6). A half claims its subnet when it is host-gw's and has an address to route via.
    const subnetOwner = oldestBy(peers, (p) => halves.flatMap((h) => { const s = h.subnet(p); return s && p.attrs.backendType === 'host-gw' && h.pub(p) ? [routeKey(s)] : []; }));
    for (const h of halves) {
      for (const p of peers) {
        const subnet = h.subnet(p);
        if (!subnet) continue;
        const skip = (reason: string) => { skipped.push({ subnetKey: p.subnetKey, reason: `${h.tag}${reason}` }); };
        if (p.attrs.backendType !== 'host-gw') { skip(`backend ${p.attrs.backendType ?? '(none)'} is not host-gw`); continue; }
        const pub = h.pub(p);
        if (!pub) { skip('no public address'); continue; }
        const owner = subnetOwner.get(routeKey(subnet));
        if (owner !== p) { skip(`subnet ${formatPrefix(subnet)} is also claimed by the older lease ${owner?.subnetKey ?? '?'}`); continue; }
        if (h.self && sameIP(pub, h.self)) { skip(`PublicIP ${formatIP(pub)} is this host's own public IP`); continue; }
        const path = underlayPathTo(i.routes, pub);
        if (!path || path.via !== undefined || path.dev !== i.facts.iface) {
          skip(`PublicIP ${formatIP(pub)} is not on ${i.facts.iface}'s L2 segment (${path?.via ? `reached via router ${formatIP(path.via)}` : path ? `reached via ${path.dev}` : 'no route'}); host-gw needs adjacent hosts, use vxlan`);
          continue;
        }
        routes.set(routeKey(subnet), { dst: subnet, via: pub, dev: i.facts.iface, onlink: false });
        programmed.add(p.subnetKey);
      }
    }
    return { devices: [], routes, neighs: new Map(), fdb: new Map(), skipped, peersProgrammed: programmed.size };
  },
};
