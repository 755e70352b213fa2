/**
 * host-gw as flanneld programs it (flannel-compat.md §4): `subnet via PublicIP dev <iface>` per
 * peer, and for IPv6 `v6subnet via PublicIPv6 dev <iface>` (flannel-ipv6-wireguard.md §1.10).
 * Unlike flanneld, a peer that is not on this host's L2 segment is reported and skipped
 * (flanneld installs a route the kernel rejects or that black-holes traffic). No options, no
 * lease data, no device.
 */
import { type IP, formatIP, sameIP } from '../core/net/cidr.js';
import { type Route, routeKey } from '../core/datapath/datapath.js';
import type { LeaseAttrs } from '../core/flannel/lease.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import type { Backend, BackendInput } from './types.js';
import { type PeerHalf, type Unfit, directRoute, eachPeer, notAdjacent, subnetOwners } from './route-per-peer.js';

const TYPE = 'host-gw';

/** One family: the peer's subnet and address to route via, and this host's own address. */
interface Half extends PeerHalf {
  readonly pub: (p: PeerLease) => IP | undefined;
  readonly self: IP | undefined;
}

export const hostGw: Backend = {
  type: TYPE,
  lease: { leaseType: TYPE },
  families: [4, 6],
  specKeys: [],
  backendObject: () => ({ Type: TYPE }),
  doctor: () => ({ overheadBytes: 0, peerRoutes: true, probeTarget: 'bridge', checksumOffload: false }),
  deviceNames: () => [],
  overheadBytes: 0,
  mtu: (_c, facts, hostMTU) => hostMTU ?? facts.ifaceMTU,
  // PublicIPv6 only when the network has IPv6 (flanneld's hostgw.go).
  leaseAttrs: (c, facts): LeaseAttrs => ({
    publicIP: facts.publicIP,
    ...(c.ipv6 && facts.publicIPv6 ? { publicIPv6: facts.publicIPv6 } : {}),
    backendType: TYPE,
  }),
  refusal: (_c, facts) =>
    sameIP(facts.publicIP, facts.ifaceIP)
      ? undefined
      : `host-gw cannot run behind NAT: host.publicIP ${formatIP(facts.publicIP)} differs from ${facts.iface}'s address ${formatIP(facts.ifaceIP)}`,
  // Each lease's route depends on that lease alone.
  peerGroup: (p) => p.subnetKey,
  desired(i: BackendInput) {
    const routes = new Map<string, Route>();
    const halves: Half[] = [
      ...(i.own.v4
        ? [
            {
              tag: '',
              subnet: (p: PeerLease) => p.subnet,
              pub: (p: PeerLease): IP | undefined => p.attrs.publicIP,
              self: i.facts.publicIP,
            },
          ]
        : []),
      ...(i.own.v6
        ? [
            {
              tag: 'IPv6 half: ',
              subnet: (p: PeerLease) => p.subnetV6,
              pub: (p: PeerLease): IP | undefined => p.attrs.publicIPv6,
              self: i.facts.publicIPv6,
            },
          ]
        : []),
    ];
    const peers = [...i.peers];
    // A half fits (and claims its subnet: one subnet, one lease, the oldest claim keeps the route)
    // when it is host-gw's and has an address to route via.
    const fit = (p: PeerLease, h: Half): { pub: IP } | Unfit => {
      if (p.attrs.backendType !== TYPE) return { why: `backend ${p.attrs.backendType ?? '(none)'} is not host-gw` };
      const pub = h.pub(p);
      return pub ? { pub } : { why: 'no public address' };
    };
    const { skipped, programmed } = eachPeer(
      peers,
      halves,
      fit,
      subnetOwners(peers, halves, fit),
      (_p, h, { pub }, subnet) => {
        if (h.self && sameIP(pub, h.self)) return `PublicIP ${formatIP(pub)} is this host's own public IP`;
        const far = notAdjacent(i.routes, pub, i.facts.iface);
        if (far) return `${far}; host-gw needs adjacent hosts, use vxlan`;
        routes.set(routeKey(subnet), directRoute(subnet, pub, i.facts.iface));
        return undefined;
      },
    );
    return { devices: [], routes, neighs: new Map(), fdb: new Map(), skipped, peersProgrammed: programmed.size };
  },
};
