// The pure datapath: backends' desired state and the planner, with no kernel and no root.
import test from 'ava';
import { type Prefix, parseIPv4, parsePrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import type {
  ObservedDatapath,
  ObservedDevice,
  ObservedRoute,
  ObservedVxlan,
} from '../../src/core/datapath/datapath.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { type PeerLease, validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import { type Op, batches, plan, renderOp, stages } from '../../src/core/datapath/plan.js';
import { hostGw } from '../../src/backends/host-gw.js';
import type { BackendInput } from '../../src/backends/types.js';
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
const cfg = (backend: string) =>
  checkNetworkConfig(decodeNetworkConfig(`{"Network":"198.18.0.0/16","Backend":${backend}}`, BACKENDS));
const VX = cfg('{"Type":"vxlan"}');
const facts: HostFacts = {
  iface: 'eth0',
  ifaceIP: ip('192.0.2.1'),
  ifaceMTU: 1500,
  publicIP: ip('192.0.2.1'),
  why: 'test',
};
const underlay: ObservedRoute[] = [
  { dst: pfx('192.0.2.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true },
  { dst: pfx('0.0.0.0/0'), dev: 'eth0', via: ip('192.0.2.254'), proto: 'boot', onlink: false, scopeLink: false },
];
const own = pfx('198.18.1.0/24');

function vxPeer(n: number, opts: { mac?: string; vni?: number; pub?: string } = {}): PeerLease {
  const mac = opts.mac ?? `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
  const v = validatePeerLease(
    `198.18.${n}.0-24`,
    `{"PublicIP":"${opts.pub ?? `192.0.2.${(n % 250) + 2}`}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":${opts.vni ?? 1},"VtepMAC":"${mac}"}}`,
    VX,
    BACKENDS,
  );
  if (!v.ok) throw new Error(v.reason);
  return v.lease;
}

function input(peers: PeerLease[], extra: Partial<BackendInput> = {}): BackendInput {
  return {
    config: VX,
    own: { v4: own },
    facts,
    routes: underlay,
    peers,
    mtu: 1450,
    vtepMAC: '0e:11:11:11:11:11',
    ...extra,
  };
}

/** The kernel state after applying a desired state (what a converged host looks like). */
function converged(d: ReturnType<typeof vxlan.desired>): ObservedDatapath {
  const devices = new Map(
    d.devices.flatMap((dev): [string, ObservedDevice][] =>
      dev.kind !== 'vxlan'
        ? []
        : [
            [
              dev.name,
              {
                name: dev.name,
                kind: 'vxlan',
                vni: dev.vni,
                local: '192.0.2.1',
                underlay: 'eth0',
                port: dev.port,
                learning: false,
                gbp: false,
                mtu: dev.mtu,
                mac: dev.mac,
                up: true,
                addrs: [...dev.addresses],
              },
            ],
          ],
    ),
  );
  return {
    devices,
    routes: [
      ...underlay,
      { dst: own, dev: 'docker0', proto: 'kernel', onlink: false, scopeLink: true },
      ...[...d.routes.values()].map((r) => ({
        dst: r.dst,
        via: r.via,
        dev: r.dev,
        proto: '175',
        onlink: r.onlink,
        scopeLink: false,
      })),
    ],
    neighs: [...d.neighs.values()],
    fdb: [...d.fdb.values()],
  };
}
const lines = (ops: Op[]) =>
  ops.map((o) => {
    const r = renderOp(o);
    return `${r.tool} ${r.line}`;
  });
const OWN = { networks: [pfx('198.18.0.0/16')], ownSubnets: [own], iface: 'eth0' };
const EMPTY = { devices: new Map<string, ObservedDevice>(), neighs: [], fdb: [] };
/** The converged observation with flannel.1 changed by `patch`. */
function withDevice(obs: ObservedDatapath, patch: Partial<ObservedVxlan>): ObservedDatapath {
  const dev = obs.devices.get('flannel.1');
  if (dev?.kind !== 'vxlan') throw new Error('no flannel.1');
  return { ...obs, devices: new Map([['flannel.1', { ...dev, ...patch }]]) };
}

test('vxlan: an empty host gets the device, its /32, and per peer a neighbour, an fdb entry and an onlink route (flanneld §3.5)', (t) => {
  const d = vxlan.desired(input([vxPeer(2)]));
  t.deepEqual(lines(plan(d, { ...EMPTY, routes: underlay }, OWN)), [
    'ip link add flannel.1 address 0e:11:11:11:11:11 mtu 1450 type vxlan id 1 local 192.0.2.1 dev eth0 dstport 8472 nolearning',
    'ip link set dev flannel.1 up',
    'ip addr add 198.18.1.0/32 dev flannel.1',
    'bridge fdb replace 0e:00:00:00:00:02 dev flannel.1 dst 192.0.2.4 self permanent',
    'ip neigh replace 198.18.2.0 lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent',
    'ip route replace 198.18.2.0/24 via 198.18.2.0 dev flannel.1 onlink proto 175',
  ]);
});

test('a converged host plans nothing; foreign routes (docker0, kernel, default) are never touched', (t) => {
  const d = vxlan.desired(input([vxPeer(2), vxPeer(3)]));
  t.deepEqual(plan(d, converged(d), OWN), []);
});

const VX28 = checkNetworkConfig(
  decodeNetworkConfig('{"Network":"198.18.0.0/15","SubnetLen":28,"Backend":{"Type":"vxlan"}}', BACKENDS),
);
/** Peer i of a large fleet: its own /28, MAC and public IP. */
function bigPeer(i: number, mac?: string): PeerLease {
  const a = 0xc6120000 + (i + 1) * 16;
  const sub = [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');
  const m =
    mac ?? `0e:00:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const v = validatePeerLease(
    `${sub}-28`,
    `{"PublicIP":"192.0.2.${(i % 250) + 2}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${m}"}}`,
    VX28,
    BACKENDS,
  );
  if (!v.ok) throw new Error(v.reason);
  return v.lease;
}

test('at 5000 peers a converged host plans nothing, and one peer changing its MAC costs O(1) operations with the old fdb entry removed (flanneld leaves it, §12 item 14)', (t) => {
  const peers = Array.from({ length: 5000 }, (_, i) => bigPeer(i));
  const own28 = { ...OWN, networks: [pfx('198.18.0.0/15')], ownSubnets: [pfx('198.18.0.0/28')] };
  const inp = (ps: PeerLease[]) => input(ps, { config: VX28, own: { v4: pfx('198.18.0.0/28') } });
  const before = vxlan.desired(inp(peers));
  t.is(before.peersProgrammed, 5000);
  t.is(before.routes.size, 5000);
  const obs = converged(before);
  const observed = { ...obs, routes: obs.routes.filter((r) => r.dev !== 'docker0') };
  t.deepEqual(plan(before, observed, own28), [], 'nothing to do');
  const changed = [...peers];
  changed[10] = bigPeer(10, '0e:99:99:99:99:99');
  const ops = lines(plan(vxlan.desired(inp(changed)), observed, own28));
  t.deepEqual(ops, [
    'bridge fdb del 0e:00:00:00:00:0a dev flannel.1 dst 192.0.2.12 self',
    'bridge fdb replace 0e:99:99:99:99:99 dev flannel.1 dst 192.0.2.12 self permanent',
    'ip neigh replace 198.18.0.176 lladdr 0e:99:99:99:99:99 dev flannel.1 nud permanent',
  ]);
});

test('a peer leaving: its route, neighbour and fdb entry are deleted (route first)', (t) => {
  const d = vxlan.desired(input([vxPeer(2), vxPeer(3)]));
  const ops = lines(plan(vxlan.desired(input([vxPeer(2)])), converged(d), OWN));
  t.deepEqual(ops, [
    'ip route del 198.18.3.0/24 via 198.18.3.0 dev flannel.1',
    'ip neigh del 198.18.3.0 dev flannel.1',
    'bridge fdb del 0e:00:00:00:00:03 dev flannel.1 dst 192.0.2.5 self',
  ]);
});

test("flanneld's routes are adopted (replaced in place, never deleted first); routes outside the network are left alone", (t) => {
  const d = vxlan.desired(input([vxPeer(2)]));
  const obs = converged(d);
  const legacy = {
    ...obs,
    routes: [
      ...underlay,
      {
        dst: pfx('198.18.2.0/24'),
        via: ip('198.18.2.0'),
        dev: 'flannel.1',
        proto: 'boot',
        onlink: true,
        scopeLink: false,
      },
      { dst: pfx('203.0.113.0/24'), via: ip('192.0.2.9'), dev: 'eth0', proto: 'boot', onlink: false, scopeLink: false },
    ],
  };
  t.deepEqual(lines(plan(d, legacy, OWN)), [
    'ip route replace 198.18.2.0/24 via 198.18.2.0 dev flannel.1 onlink proto 175',
  ]);
});

test('device drift: a wrong MTU is set, an incompatible device is recreated with the same MAC and every peer replayed', (t) => {
  const d = vxlan.desired(input([vxPeer(2)]));
  const obs = converged(d);
  t.deepEqual(lines(plan(d, withDevice(obs, { mtu: 1400 }), OWN)), ['ip link set dev flannel.1 mtu 1450']);
  const wrong = lines(plan(d, withDevice(obs, { port: 4789 }), OWN));
  t.is(wrong[0], 'ip link del flannel.1');
  t.is(
    wrong[1],
    'ip link add flannel.1 address 0e:11:11:11:11:11 mtu 1450 type vxlan id 1 local 192.0.2.1 dev eth0 dstport 8472 nolearning',
  );
  t.true(
    wrong.includes('ip route replace 198.18.2.0/24 via 198.18.2.0 dev flannel.1 onlink proto 175'),
    'peers replayed',
  );
  t.true(wrong.includes('bridge fdb replace 0e:00:00:00:00:02 dev flannel.1 dst 192.0.2.4 self permanent'));
  const stray = lines(
    plan(d, withDevice(obs, { addrs: [pfx('198.18.1.0/32'), pfx('198.18.9.0/32'), pfx('203.0.113.1/24')] }), OWN),
  );
  t.deepEqual(
    stray,
    ['ip addr del 198.18.9.0/32 dev flannel.1'],
    'other addresses inside the network go, others stay (flanneld §3.2)',
  );
});

test("vxlan skips and reports: another backend, another VNI, this host's public IP, a MAC used twice", (t) => {
  const hg = validatePeerLease(
    '198.18.20.0-24',
    '{"PublicIP":"192.0.2.20","PublicIPv6":null,"BackendType":"host-gw"}',
    VX,
    BACKENDS,
  );
  if (!hg.ok) throw new Error(hg.reason);
  const d = vxlan.desired(
    input([
      hg.lease,
      vxPeer(21, { vni: 2 }),
      vxPeer(22, { pub: '192.0.2.1' }),
      vxPeer(23, { mac: '0e:00:00:00:00:aa' }),
      vxPeer(24, { mac: '0e:00:00:00:00:aa' }),
    ]),
  );
  t.is(d.peersProgrammed, 1);
  t.deepEqual(
    d.skipped.map((s) => s.reason),
    [
      'backend host-gw is not vxlan',
      "VNI 2 differs from this network's VNI 1",
      "PublicIP 192.0.2.1 is this host's own public IP",
      'VtepMAC 0e:00:00:00:00:aa is already used by the older lease 198.18.23.0-24',
    ],
  );
});

test("vxlan programs a peer whose BackendData has no VNI, or a null one (flanneld never reads a peer's VNI)", (t) => {
  const peers = ['{"VtepMAC":"0e:00:00:00:00:31"}', '{"VNI":null,"VtepMAC":"0e:00:00:00:00:32"}'].map((data, i) => {
    const v = validatePeerLease(
      `198.18.${31 + i}.0-24`,
      `{"PublicIP":"192.0.2.${31 + i}","PublicIPv6":null,"BackendType":"vxlan","BackendData":${data}}`,
      VX,
      BACKENDS,
    );
    if (!v.ok) throw new Error(v.reason);
    return v.lease;
  });
  const d = vxlan.desired(input(peers));
  t.is(d.peersProgrammed, 2);
  t.deepEqual(d.skipped, []);
});

test('vxlan DirectRouting: a plain route to an L2-adjacent peer, the tunnel for the others', (t) => {
  const dr = cfg('{"Type":"vxlan","DirectRouting":true}');
  const d = vxlan.desired(input([vxPeer(2), vxPeer(3, { pub: '198.51.100.3' })], { config: dr }));
  t.is(d.routes.size, 2);
  t.like(d.routes.get('198.18.2.0/24'), { dev: 'eth0', onlink: false });
  t.is(d.routes.get('198.18.3.0/24')?.dev, 'flannel.1');
  t.false(d.neighs.has('198.18.2.0'));
});

test('vxlan MTU: underlay − 50, Backend.MTU as the underlay, host.mtu overrides', (t) => {
  t.is(vxlan.mtu(VX, facts, undefined), 1450);
  t.is(vxlan.mtu(cfg('{"Type":"vxlan","MTU":9000}'), facts, undefined), 8950);
  t.is(vxlan.mtu(VX, facts, 1400), 1400);
  t.is(hostGw.mtu(VX, facts, undefined), 1500);
});

test("host-gw: a route via the peer's public IP; a peer behind a router is skipped with the reason; NAT is refused", (t) => {
  const HG = cfg('{"Type":"host-gw"}');
  const peer = (n: number, pub: string) => {
    const v = validatePeerLease(
      `198.18.${n}.0-24`,
      `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"host-gw"}`,
      HG,
      BACKENDS,
    );
    if (!v.ok) throw new Error(v.reason);
    return v.lease;
  };
  const d = hostGw.desired({ ...input([peer(2, '192.0.2.2'), peer(3, '198.51.100.3')]), config: HG });
  t.deepEqual(lines(plan(d, { ...EMPTY, routes: underlay }, OWN)), [
    'ip route replace 198.18.2.0/24 via 192.0.2.2 dev eth0 proto 175',
  ]);
  t.deepEqual(d.skipped, [
    {
      subnetKey: '198.18.3.0-24',
      reason:
        "PublicIP 198.51.100.3 is not on eth0's L2 segment (reached via router 192.0.2.254); host-gw needs adjacent hosts, use vxlan",
    },
  ]);
  t.is(hostGw.refusal(VX, facts), undefined);
  t.is(
    hostGw.refusal(VX, { ...facts, publicIP: ip('203.0.113.9') }),
    "host-gw cannot run behind NAT: host.publicIP 203.0.113.9 differs from eth0's address 192.0.2.1",
  );
});

test('batches keep order and split by tool', (t) => {
  const d = vxlan.desired(input([vxPeer(2)]));
  t.deepEqual(
    batches(plan(d, { ...EMPTY, routes: underlay }, OWN)).map((b) => `${b.tool}:${b.lines.length}`),
    ['ip:3', 'bridge:1', 'ip:2'],
  );
});

test('stages: device and deletion batches one at a time, then fdb (bridge) beside neighbours and routes (ip), each tool in its order', (t) => {
  const d = vxlan.desired(input([vxPeer(2), vxPeer(3)]));
  const show = (ops: Op[]) =>
    stages(ops).map((st) => st.map((b) => `${b.tool}:${b.ops.map((o) => o.kind).join(',')}`).join(' + '));
  // A fresh device: link add, up, address; then the entries of both peers in one stage.
  t.deepEqual(show(plan(d, { ...EMPTY, routes: underlay }, OWN)), [
    'ip:link-add,link-set,addr-add',
    'bridge:fdb-replace,fdb-replace + ip:neigh-replace,neigh-replace,route-replace,route-replace',
  ]);
  // Deletions stay ahead of the entries, and an operation that is not an entry ends a stage.
  const del: Op = { kind: 'route-del', route: { dst: pfx('198.18.9.0/24'), dev: 'flannel.1' } as ObservedRoute };
  const fdb = plan(d, { ...EMPTY, routes: underlay }, OWN).filter((o) => o.kind === 'fdb-replace');
  const neigh = plan(d, { ...EMPTY, routes: underlay }, OWN).filter((o) => o.kind === 'neigh-replace');
  t.deepEqual(show([del, ...fdb, { kind: 'link-set', name: 'flannel.1', set: 'up' }, ...neigh]), [
    'ip:route-del',
    'bridge:fdb-replace,fdb-replace',
    'ip:link-set',
    'ip:neigh-replace,neigh-replace',
  ]);
  // Every operation is in exactly one batch, in its tool's order.
  const ops = plan(d, { ...EMPTY, routes: underlay }, OWN);
  t.deepEqual(
    stages(ops)
      .flat()
      .flatMap((b) => b.ops)
      .sort((a, b) => ops.indexOf(a) - ops.indexOf(b)),
    ops,
  );
});

test("the planner is family-neutral: IPv6 addresses, routes and neighbours beside IPv4 ones, each owned only inside its own family's network", (t) => {
  const p6 = (s: string) => {
    const p = parsePrefix(s);
    if (!p) throw new Error(s);
    return p;
  };
  const base = vxlan.desired(input([vxPeer(2)]));
  const dev = base.devices[0];
  if (!dev) throw new Error('no device');
  const gw6 = p6('fd00:18:2::/128').ip;
  const d = {
    ...base,
    devices: [{ ...dev, addresses: [...dev.addresses, p6('fd00:18:1::/128')] }],
    routes: new Map([
      ...base.routes,
      ['fd00:18:2::/64', { dst: p6('fd00:18:2::/64'), via: gw6, dev: 'flannel.1', onlink: true }],
    ]),
    neighs: new Map([...base.neighs, ['fd00:18:2::', { ip: gw6, mac: '0e:00:00:00:00:02', dev: 'flannel.1' }]]),
  };
  const own6 = {
    networks: [pfx('198.18.0.0/16'), p6('fd00:18::/32')],
    ownSubnets: [own, p6('fd00:18:1::/64')],
    iface: 'eth0',
  };
  const obs = withDevice(converged(base), { addrs: [...dev.addresses, p6('fd00:18:9::/128'), p6('fd00:99::1/128')] });
  const observed = {
    ...obs,
    routes: [
      ...obs.routes,
      {
        dst: p6('fd00:18:9::/64'),
        via: p6('fd00:18:9::/128').ip,
        dev: 'flannel.1',
        proto: '175',
        onlink: true,
        scopeLink: false,
      },
      {
        dst: p6('fd00:99::/64'),
        via: p6('fd00:99::1/128').ip,
        dev: 'eth0',
        proto: 'boot',
        onlink: false,
        scopeLink: false,
      },
      { dst: p6('fd00:18:1::/64'), dev: 'docker0', proto: 'kernel', onlink: false, scopeLink: true },
    ],
  };
  t.deepEqual(lines(plan(d, observed, own6)), [
    'ip addr add fd00:18:1::/128 dev flannel.1 nodad',
    'ip addr del fd00:18:9::/128 dev flannel.1',
    'ip route del fd00:18:9::/64 via fd00:18:9:: dev flannel.1',
    'ip neigh replace fd00:18:2:: lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent',
    'ip route replace fd00:18:2::/64 via fd00:18:2:: dev flannel.1 onlink proto 175',
  ]);
});

test("vxlan: one MAC, one VTEP: the oldest lease (etcd create revision) wins whatever the order; this host's own MAC is never a peer", (t) => {
  const at = (p: PeerLease, createRevision: string): PeerLease => ({ ...p, createRevision });
  const real = at(vxPeer(30, { mac: '0e:00:00:00:00:30' }), '12');
  const copy = at(vxPeer(3, { mac: '0e:00:00:00:00:30', pub: '192.0.2.99' }), '90');
  for (const order of [
    [copy, real],
    [real, copy],
  ]) {
    const d = vxlan.desired(input(order));
    t.is(d.fdb.get('0e:00:00:00:00:30')?.dst.value, ip('192.0.2.32').value, 'the older lease keeps the MAC');
    t.deepEqual(d.skipped, [
      {
        subnetKey: '198.18.3.0-24',
        reason: 'VtepMAC 0e:00:00:00:00:30 is already used by the older lease 198.18.30.0-24',
      },
    ]);
  }
  const mine = vxlan.desired(input([vxPeer(31, { mac: '0e:11:11:11:11:11' })]));
  t.deepEqual(
    mine.skipped.map((s) => s.reason),
    ["VtepMAC 0e:11:11:11:11:11 is this host's own"],
  );
});
