/**
 * host-gw as flanneld programs it (flannel-compat.md §4): `subnet via PublicIP dev <iface>` per
 * peer. Unlike flanneld, a peer that is not on this host's L2 segment is reported and skipped
 * (flanneld installs a route the kernel rejects or that black-holes traffic).
 */
import { type IP, formatIP, sameIP } from '../core/cidr.js';
import { type Route, type Skipped, routeKey } from '../core/datapath.js';
import { underlayPathTo } from '../core/host-facts.js';
import type { LeaseAttrs } from '../core/lease.js';
import type { Backend, BackendInput } from './types.js';

export const hostGw: Backend = {
  type: 'host-gw',
  deviceNames: () => [],
  mtu: (_c, facts, hostMTU) => hostMTU ?? facts.ifaceMTU,
  leaseAttrs: (_c, facts): LeaseAttrs => ({ publicIP: facts.publicIP, backendType: 'host-gw' }),
  refusal: (facts) => (sameIP(facts.publicIP, facts.ifaceIP) ? undefined
    : `host-gw cannot run behind NAT: host.publicIP ${formatIP(facts.publicIP)} differs from ${facts.iface}'s address ${formatIP(facts.ifaceIP)}`),
  // Each lease's route depends on that lease alone.
  peerGroup: (p) => p.subnetKey,
  desired(i: BackendInput) {
    const routes = new Map<string, Route>();
    const skipped: Skipped[] = [];
    for (const p of i.peers) {
      const skip = (reason: string) => { skipped.push({ subnetKey: p.subnetKey, reason }); };
      if (p.attrs.backendType !== 'host-gw') { skip(`backend ${p.attrs.backendType ?? '(none)'} is not host-gw`); continue; }
      const pub: IP = p.attrs.publicIP;
      if (sameIP(pub, i.facts.publicIP)) { skip(`PublicIP ${formatIP(pub)} is this host's own public IP`); continue; }
      const path = underlayPathTo(i.routes, pub);
      if (!path || path.via !== undefined || path.dev !== i.facts.iface) {
        skip(`PublicIP ${formatIP(pub)} is not on ${i.facts.iface}'s L2 segment (${path?.via ? `reached via router ${formatIP(path.via)}` : path ? `reached via ${path.dev}` : 'no route'}); host-gw needs adjacent hosts, use vxlan`);
        continue;
      }
      routes.set(routeKey(p.subnet), { dst: p.subnet, via: pub, dev: i.facts.iface, onlink: false });
    }
    return { devices: [], routes, neighs: new Map(), fdb: new Map(), skipped, peersProgrammed: routes.size };
  },
};
