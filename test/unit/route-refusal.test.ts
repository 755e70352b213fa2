// weft never replaces or deletes a route it does not own (issue 28, finding 1): a wanted
// destination that another's route holds is left alone and reported.
import test from 'ava';
import { type Prefix, parseIPv4, parsePrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import type { ObservedDatapath, ObservedDevice, ObservedRoute } from '../../src/core/datapath/datapath.js';
import { ObservedModel } from '../../src/core/datapath/observed-model.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { type PeerLease, validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import { type RefusedRoutes, plan, planTouched, renderOp } from '../../src/core/datapath/plan.js';
import { hostGw } from '../../src/backends/host-gw.js';
import { vxlan } from '../../src/backends/vxlan.js';
import { BACKENDS } from '../helpers/backends.js';

const ip = (s: string) => {
  const a = parseIPv4(s);
  if (!a) throw new Error(s);
  return a;
};
const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
// The config: a network around the fleet's LAN 192.0.2.0/24, and a lease on the LAN's subnet.
const BIG = checkNetworkConfig(
  decodeNetworkConfig('{"Network":"192.0.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}', BACKENDS),
);
const facts: HostFacts = {
  iface: 'eth0',
  ifaceIP: ip('192.0.2.1'),
  ifaceMTU: 1500,
  publicIP: ip('192.0.2.1'),
  why: 'test',
};
const lan: ObservedRoute = { dst: pfx('192.0.2.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true };
const underlay: ObservedRoute[] = [
  lan,
  { dst: pfx('0.0.0.0/0'), dev: 'eth0', via: ip('192.0.2.254'), proto: 'boot', onlink: false, scopeLink: false },
];
const own = pfx('192.0.5.0/24');
const OWN = { networks: [pfx('192.0.0.0/16')], ownSubnets: [own], iface: 'eth0' };
const lines = (ops: ReturnType<typeof plan>) =>
  ops.map((o) => {
    const r = renderOp(o);
    return `${r.tool} ${r.line}`;
  });

function peer(subnet: string, pub: string, n: number, backend = 'vxlan'): PeerLease {
  const data = backend === 'vxlan' ? `,"BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:0${n}"}` : '';
  const v = validatePeerLease(
    `${subnet}-24`,
    `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"${backend}"${data}}`,
    BIG,
    BACKENDS,
  );
  if (!v.ok) throw new Error(v.reason);
  return v.lease;
}
const peers = [peer('192.0.2.0', '198.51.100.9', 2), peer('192.0.7.0', '198.51.100.7', 7)];
const desired = vxlan.desired({
  config: BIG,
  own: { v4: own },
  facts,
  routes: underlay,
  peers,
  mtu: 1450,
  vtepMAC: '0e:11:11:11:11:11',
});
const device = (d: typeof desired): Map<string, ObservedDevice> =>
  new Map(
    d.devices.flatMap((x): [string, ObservedDevice][] =>
      x.kind !== 'vxlan'
        ? []
        : [
            [
              x.name,
              {
                name: x.name,
                kind: 'vxlan',
                vni: x.vni,
                local: '192.0.2.1',
                underlay: 'eth0',
                port: x.port,
                learning: false,
                gbp: false,
                mtu: x.mtu,
                mac: x.mac,
                up: true,
                addrs: [...x.addresses],
              },
            ],
          ],
    ),
  );
const observed = (routes: ObservedRoute[]): ObservedDatapath => ({
  devices: device(desired),
  routes,
  neighs: [],
  fdb: [],
});

test("the kernel's LAN route is never replaced by a peer's route: left alone and reported; the other peer is programmed", (t) => {
  const refused: RefusedRoutes = new Map();
  const out = lines(plan(desired, observed(underlay), OWN, refused));
  t.false(
    out.some((l) => l.includes('route replace 192.0.2.0/24')),
    out.join('\n'),
  );
  t.true(out.includes('ip route replace 192.0.7.0/24 via 192.0.7.0 dev flannel.1 onlink proto 175'));
  t.deepEqual([...refused.keys()], ['192.0.2.0/24']);
  t.is(refused.get('192.0.2.0/24'), lan);
});

test("a route weft put there before another's appeared is taken away; the other's stays", (t) => {
  const ours: ObservedRoute = {
    dst: pfx('192.0.7.0/24'),
    via: ip('192.0.7.0'),
    dev: 'flannel.1',
    proto: '175',
    onlink: true,
    scopeLink: false,
  };
  const operators: ObservedRoute = {
    dst: pfx('192.0.7.0/24'),
    via: ip('192.0.2.200'),
    dev: 'eth0',
    proto: 'static',
    onlink: false,
    scopeLink: false,
    metric: 10,
  };
  const refused: RefusedRoutes = new Map();
  const out = lines(plan(desired, observed([...underlay, ours, operators]), OWN, refused));
  t.true(out.includes('ip route del 192.0.7.0/24 via 192.0.7.0 dev flannel.1'), out.join('\n'));
  t.false(out.some((l) => l.includes('192.0.2.200')));
  t.deepEqual([...refused.keys()].sort(), ['192.0.2.0/24', '192.0.7.0/24']);
});

test('a touched key is judged as a full plan judges it: a refusal appears and goes with the foreign route', (t) => {
  const o = observed(underlay);
  const model = new ObservedModel(o, OWN.networks);
  const refused: RefusedRoutes = new Map();
  const touched = {
    routes: new Set(['192.0.2.0/24', '192.0.7.0/24']),
    neighs: new Set<string>(),
    fdb: new Set<string>(),
  };
  const ops = lines(planTouched(desired, model, OWN, touched, refused));
  t.deepEqual(
    ops.filter((l) => l.includes('route')),
    ['ip route replace 192.0.7.0/24 via 192.0.7.0 dev flannel.1 onlink proto 175'],
  );
  t.deepEqual([...refused.keys()], ['192.0.2.0/24']);
  // The LAN route gone (the foreign route deleted by its owner): the same key is planned and the refusal cleared.
  const without = new ObservedModel(observed([underlay[1] as ObservedRoute]), OWN.networks);
  t.deepEqual(
    lines(planTouched(desired, without, OWN, { ...touched, routes: new Set(['192.0.2.0/24']) }, refused)).filter((l) =>
      l.includes('route'),
    ),
    ['ip route replace 192.0.2.0/24 via 192.0.2.0 dev flannel.1 onlink proto 175'],
  );
  t.is(refused.size, 0);
});

test("host-gw: a peer subnet held by an operator's static route is left alone", (t) => {
  const cfg = checkNetworkConfig(
    decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"host-gw"}}', BACKENDS),
  );
  const p = validatePeerLease(
    '198.18.2.0-24',
    '{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"host-gw"}',
    cfg,
    BACKENDS,
  );
  if (!p.ok) throw new Error(p.reason);
  const d = hostGw.desired({
    config: cfg,
    own: { v4: pfx('198.18.1.0/24') },
    facts,
    routes: underlay,
    peers: [p.lease],
    mtu: 1500,
    vtepMAC: '',
  });
  const operators: ObservedRoute = {
    dst: pfx('198.18.2.0/24'),
    via: ip('192.0.2.77'),
    dev: 'eth0',
    proto: 'static',
    onlink: false,
    scopeLink: false,
  };
  const refused: RefusedRoutes = new Map();
  const own2 = { networks: [pfx('198.18.0.0/16')], ownSubnets: [pfx('198.18.1.0/24')], iface: 'eth0' };
  t.deepEqual(
    lines(plan(d, { devices: new Map(), routes: [...underlay, operators], neighs: [], fdb: [] }, own2, refused)),
    [],
  );
  t.deepEqual([...refused.keys()], ['198.18.2.0/24']);
});

test("a bridge still on a subnet this host held before (Docker not restarted since a move) is the fabric's leftover: the peer now holding it is routed", (t) => {
  const bridge: ObservedRoute = {
    dst: pfx('192.0.7.0/24'),
    dev: 'docker0',
    proto: 'kernel',
    onlink: false,
    scopeLink: true,
  };
  const refused: RefusedRoutes = new Map();
  const moved = { ...OWN, formerSubnets: [pfx('192.0.7.0/24')] };
  t.true(
    lines(plan(desired, observed([...underlay, bridge]), moved, refused)).includes(
      'ip route replace 192.0.7.0/24 via 192.0.7.0 dev flannel.1 onlink proto 175',
    ),
  );
  t.deepEqual([...refused.keys()], ['192.0.2.0/24'], "the LAN stays refused: it was never this host's subnet");
  // Not a subnet this host held: someone else's bridge, left alone.
  const never: RefusedRoutes = new Map();
  t.false(
    lines(plan(desired, observed([...underlay, bridge]), OWN, never)).some((l) =>
      l.includes('route replace 192.0.7.0/24'),
    ),
  );
  t.true(never.has('192.0.7.0/24'));
});
