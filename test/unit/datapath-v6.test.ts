// The IPv6 datapath end to end through the pure parts: what iproute2 prints on a real dual-stack
// host (fixtures captured in a throwaway namespace) is read into the observation, planned
// against the desired state, rendered back to `ip -batch` / `bridge -batch` lines, and followed
// through `ip -6 monitor` lines; IPv4 output stays what it was.
import test from 'ava';
import { type IP, type Prefix, formatIP, formatPrefix, parseIP, parsePrefix } from '../../src/core/net/cidr.js';
import type {
  DesiredDatapath,
  DesiredDevice,
  FdbEntry,
  Neighbour,
  ObservedDatapath,
  Route,
  VxlanDevice,
} from '../../src/core/datapath/datapath.js';
import { deviceCompatible } from '../../src/core/datapath/devices.js';
import { isAdjacent } from '../../src/core/host/host-facts.js';
import { isRelevantEvent, parseModelEvent } from '../../src/core/datapath/netlink-events.js';
import { ObservedModel } from '../../src/core/datapath/observed-model.js';
import { type Op, noTouchedKeys, plan, planTouched, renderOp } from '../../src/core/datapath/plan.js';
import { parseDevice, parseFdb, parseNeighs, parseRoutes } from '../../src/adapters/iproute2.js';
import {
  DEV4,
  DEV6,
  FDB4,
  FDB6,
  MONITOR4_VIA6,
  MONITOR6,
  MONITOR_FDB6,
  NEIGH4,
  NEIGH6,
  ROUTE4_VIA6,
  ROUTES4,
  ROUTES6,
} from './fixtures/iproute2-v6.js';
import { rng } from '../helpers/rng.js';

const addr = (s: string): IP => {
  const a = parseIP(s);
  if (!a) throw new Error(s);
  return a;
};
const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const lines = (ops: readonly Op[]) =>
  ops.map((o) => {
    const r = renderOp(o);
    return `${r.tool} ${r.line}`;
  });
const OWN = {
  networks: [pfx('198.18.0.0/16'), pfx('fd18::/48')],
  ownSubnets: [pfx('198.18.1.0/24'), pfx('fd18:0:0:1::/64')],
  iface: 'eth0',
};

const V6DEV: VxlanDevice = {
  kind: 'vxlan',
  name: 'flannel-v6.1',
  vni: 1,
  local: addr('fd00:2::1'),
  underlay: 'eth0',
  port: 8472,
  learning: false,
  gbp: false,
  mtu: 1430,
  mac: '0e:00:00:00:00:61',
  addresses: [pfx('fd18:0:0:1::/128')],
};
const V4DEV: VxlanDevice = {
  ...V6DEV,
  name: 'flannel.1',
  local: addr('192.0.2.1'),
  mtu: 1450,
  mac: '0e:00:00:00:00:01',
  addresses: [pfx('198.18.1.0/32')],
};

/** One peer over vxlan (neighbour, fdb entry, onlink route) as the brief lays it out, either family. */
function vxPeer(
  dev: VxlanDevice,
  subnet: string,
  mac: string,
  pub: string,
): { route: Route; neigh: Neighbour; fdb: FdbEntry } {
  const dst = pfx(subnet);
  return {
    route: { dst, via: dst.ip, dev: dev.name, onlink: true },
    neigh: { ip: dst.ip, mac, dev: dev.name },
    fdb: { mac, dst: addr(pub), dev: dev.name },
  };
}

function desiredOf(
  devices: readonly DesiredDevice[],
  peers: readonly ReturnType<typeof vxPeer>[],
  direct: readonly Route[] = [],
): DesiredDatapath {
  return {
    devices,
    routes: new Map([...peers.map((p) => p.route), ...direct].map((r) => [formatPrefix(r.dst), r])),
    neighs: new Map(peers.map((p) => [formatIP(p.neigh.ip), p.neigh])),
    fdb: new Map(peers.map((p) => [p.fdb.mac, p.fdb])),
    skipped: [],
    peersProgrammed: peers.length + direct.length,
  };
}

/** What the captured host holds: flannel.1 and flannel-v6.1, a peer on each, and direct routes on eth0. */
const CAPTURED = desiredOf(
  [V4DEV, V6DEV],
  [
    vxPeer(V4DEV, '198.18.2.0/24', '0e:00:00:00:00:02', '192.0.2.3'),
    vxPeer(V6DEV, 'fd18:0:0:2::/64', '0e:00:00:00:00:62', 'fd00:2::2'),
  ],
  [
    { dst: pfx('198.18.3.0/24'), via: addr('192.0.2.2'), dev: 'eth0', onlink: false },
    { dst: pfx('fd18:0:0:3::/64'), via: addr('fd00:2::3'), dev: 'eth0', onlink: false },
  ],
);

/** The captured host as observeDatapath reads it. */
function observed(): ObservedDatapath {
  const d4 = parseDevice(DEV4);
  const d6 = parseDevice(DEV6);
  if (!d4 || !d6) throw new Error('fixture');
  return {
    devices: new Map([
      [d4.name, d4],
      [d6.name, d6],
    ]),
    routes: [...parseRoutes(ROUTES4), ...parseRoutes(ROUTES6, 6)],
    neighs: [...parseNeighs(NEIGH4, 'flannel.1'), ...parseNeighs(NEIGH6, 'flannel-v6.1')],
    fdb: [...parseFdb(FDB4, 'flannel.1'), ...parseFdb(FDB6, 'flannel-v6.1')],
  };
}

/** flannel-v6.1 created from nothing, with its one peer (fd18:0:0:2::/64 at fd00:2::2). */
const CREATE_V6 = [
  'ip link add flannel-v6.1 address 0e:00:00:00:00:61 mtu 1430 type vxlan id 1 local fd00:2::1 dev eth0 dstport 8472 nolearning',
  'ip link set dev flannel-v6.1 up',
  'ip addr add fd18:0:0:1::/128 dev flannel-v6.1 nodad',
  'bridge fdb replace 0e:00:00:00:00:62 dev flannel-v6.1 dst fd00:2::2 self permanent',
  'ip neigh replace fd18:0:0:2:: lladdr 0e:00:00:00:00:62 dev flannel-v6.1 nud permanent',
  'ip route replace fd18:0:0:2::/64 via fd18:0:0:2:: dev flannel-v6.1 onlink proto 175',
];
test('a vxlan device over IPv6 reads as the kernel shows it: local6, its /128, never its link-local address', (t) => {
  const d = parseDevice(DEV6);
  t.like(d, {
    name: 'flannel-v6.1',
    kind: 'vxlan',
    vni: 1,
    local: 'fd00:2::1',
    underlay: 'eth0',
    port: 8472,
    learning: false,
    gbp: false,
    mtu: 1430,
    mac: '0e:00:00:00:00:61',
    up: true,
  });
  t.deepEqual(d?.addrs.map(formatPrefix), ['fd18:0:0:1::/128']);
  t.deepEqual(
    parseDevice(DEV4)?.addrs.map(formatPrefix),
    ['198.18.1.0/32'],
    "the IPv4 device's fe80:: is not reported either",
  );
  if (d?.kind !== 'vxlan') return;
  t.true(deviceCompatible(d, V6DEV));
  t.true(deviceCompatible({ ...d, local: 'fd00:2:0:0:0:0:0:1' }, V6DEV), 'compared as addresses, not text');
  t.false(deviceCompatible(d, { ...V6DEV, local: addr('fd00:2::9') }), 'another local address: recreated');
  t.false(deviceCompatible(d, { ...V6DEV, local: addr('192.0.2.1') }), 'another family: recreated');
  t.false(
    deviceCompatible(parseDevice(DEV6.replace('"local6":"fd00:2::1",', '')) ?? d, V6DEV),
    'no local at all: recreated',
  );
});

test('IPv6 routes, neighbours and fdb entries read from the captured output; link-local routes are left out', (t) => {
  const r6 = parseRoutes(ROUTES6, 6).map(
    (r) => `${formatPrefix(r.dst)} ${r.via ? formatIP(r.via) : '-'} ${r.dev} ${r.proto} ${r.onlink} ${r.metric ?? 0}`,
  );
  t.deepEqual(r6, [
    'fd00:2::/64 - eth0 kernel false 256',
    'fd18:0:0:1::/128 - flannel-v6.1 kernel false 256',
    'fd18:0:0:2::/64 fd18:0:0:2:: flannel-v6.1 175 true 1024',
    'fd18:0:0:3::/64 fd00:2::3 eth0 175 false 1024',
    '::/0 fd00:2::fe eth0 boot false 1024',
  ]);
  t.deepEqual(parseRoutes(ROUTES6), [], 'an IPv6 listing is never read as IPv4 (nor the reverse)');
  t.deepEqual(parseRoutes(ROUTES4, 6), []);
  t.deepEqual(
    parseRoutes(ROUTES4).map((r) => formatPrefix(r.dst)),
    ['0.0.0.0/0', '192.0.2.0/24', '198.18.2.0/24', '198.18.3.0/24'],
  );
  t.deepEqual(
    parseNeighs(NEIGH6, 'flannel-v6.1').map((n) => `${formatIP(n.ip)} ${n.mac} ${n.dev}`),
    ['fd18:0:0:2:: 0e:00:00:00:00:62 flannel-v6.1'],
  );
  t.deepEqual(
    parseFdb(FDB6, 'flannel-v6.1').map((f) => `${f.mac} ${formatIP(f.dst)} ${f.dev}`),
    ['0e:00:00:00:00:62 fd00:2::2 flannel-v6.1'],
  );
});

test('the captured dual-stack host, read back, plans nothing: kernel routes, link-local addresses and metrics are not drift', (t) => {
  t.deepEqual(lines(plan(CAPTURED, observed(), OWN)), []);
});

test('an empty host gets flannel-v6.1 with its MTU, its /128 (nodad), and per peer an fdb entry with an IPv6 dst, a neighbour and an onlink route; the IPv4 lines are unchanged beside them', (t) => {
  const v6peer = vxPeer(V6DEV, 'fd18:0:0:2::/64', '0e:00:00:00:00:62', 'fd00:2::2');
  const v4peer = vxPeer(V4DEV, '198.18.2.0/24', '0e:00:00:00:00:02', '192.0.2.3');
  const empty: ObservedDatapath = { devices: new Map(), routes: [], neighs: [], fdb: [] };
  t.deepEqual(lines(plan(desiredOf([V6DEV], [v6peer]), empty, OWN)), CREATE_V6);
  const v4only = lines(
    plan(desiredOf([V4DEV], [v4peer]), empty, {
      ...OWN,
      networks: [pfx('198.18.0.0/16')],
      ownSubnets: [pfx('198.18.1.0/24')],
    }),
  );
  t.deepEqual(v4only, [
    'ip link add flannel.1 address 0e:00:00:00:00:01 mtu 1450 type vxlan id 1 local 192.0.2.1 dev eth0 dstport 8472 nolearning',
    'ip link set dev flannel.1 up',
    'ip addr add 198.18.1.0/32 dev flannel.1',
    'bridge fdb replace 0e:00:00:00:00:02 dev flannel.1 dst 192.0.2.3 self permanent',
    'ip neigh replace 198.18.2.0 lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent',
    'ip route replace 198.18.2.0/24 via 198.18.2.0 dev flannel.1 onlink proto 175',
  ]);
  const dual = lines(plan(desiredOf([V4DEV, V6DEV], [v4peer, v6peer]), empty, OWN));
  t.deepEqual(
    dual.filter((l) => !l.includes('flannel-v6.1')),
    v4only,
    'dual stack: every IPv4 line as on an IPv4-only host',
  );
  t.is(dual.length, 12);
});

test('IPv6 drift is repaired: a deleted route, a changed neighbour, an fdb entry pointing elsewhere, a wrong MTU, a stray address, a deleted or incompatible device', (t) => {
  const o = observed();
  const without = (pred: (x: { dev: string; dst?: unknown }) => boolean) => ({
    ...o,
    routes: o.routes.filter((r) => !pred(r)),
  });
  t.deepEqual(
    lines(
      plan(
        CAPTURED,
        without((r) => r.dev === 'flannel-v6.1' && formatPrefix(r.dst as Prefix) === 'fd18:0:0:2::/64'),
        OWN,
      ),
    ),
    ['ip route replace fd18:0:0:2::/64 via fd18:0:0:2:: dev flannel-v6.1 onlink proto 175'],
  );
  t.deepEqual(
    lines(
      plan(
        CAPTURED,
        without((r) => formatPrefix(r.dst as Prefix) === 'fd18:0:0:3::/64'),
        OWN,
      ),
    ),
    ['ip route replace fd18:0:0:3::/64 via fd00:2::3 dev eth0 proto 175'],
    "a host-gw style route via the peer's IPv6 address",
  );
  const neighs = o.neighs.map((n) => (n.dev === 'flannel-v6.1' ? { ...n, mac: '0e:00:00:00:00:99' } : n));
  t.deepEqual(lines(plan(CAPTURED, { ...o, neighs }, OWN)), [
    'ip neigh replace fd18:0:0:2:: lladdr 0e:00:00:00:00:62 dev flannel-v6.1 nud permanent',
  ]);
  const fdb = o.fdb.map((f) => (f.dev === 'flannel-v6.1' ? { ...f, dst: addr('fd00:2::77') } : f));
  t.deepEqual(lines(plan(CAPTURED, { ...o, fdb }, OWN)), [
    'bridge fdb del 0e:00:00:00:00:62 dev flannel-v6.1 dst fd00:2::77 self',
    'bridge fdb replace 0e:00:00:00:00:62 dev flannel-v6.1 dst fd00:2::2 self permanent',
  ]);
  const dev6 = o.devices.get('flannel-v6.1');
  if (!dev6) throw new Error('fixture');
  const withDev6 = (patch: object): ObservedDatapath => ({
    ...o,
    devices: new Map([...o.devices, ['flannel-v6.1', { ...dev6, ...patch }]]),
  });
  t.deepEqual(lines(plan(CAPTURED, withDev6({ mtu: 1280 }), OWN)), ['ip link set dev flannel-v6.1 mtu 1430']);
  // The kernel adds a route for every IPv6 address, a /128 too (seen on a real kernel): it goes with the address.
  const stray = withDev6({ addrs: [...dev6.addrs, pfx('fd18:0:0:9::/128'), pfx('fd00:2::1/64')] });
  const strayRoute = {
    dst: pfx('fd18:0:0:9::/128'),
    dev: 'flannel-v6.1',
    proto: 'kernel',
    onlink: false,
    scopeLink: false,
    metric: 256,
  };
  t.deepEqual(
    lines(plan(CAPTURED, { ...stray, routes: [...stray.routes, strayRoute] }, OWN)),
    ['ip addr del fd18:0:0:9::/128 dev flannel-v6.1'],
    'a stray address inside the network goes, and only the address; one outside it stays',
  );
  t.deepEqual(lines(plan(CAPTURED, withDev6({ addrs: [] }), OWN)), [
    'ip addr add fd18:0:0:1::/128 dev flannel-v6.1 nodad',
  ]);
  // Someone deleted flannel-v6.1: with it went its /128, routes, neighbours and fdb entries.
  const gone: ObservedDatapath = {
    devices: new Map([...o.devices].filter(([n]) => n !== 'flannel-v6.1')),
    routes: o.routes.filter((r) => r.dev !== 'flannel-v6.1'),
    neighs: o.neighs.filter((n) => n.dev !== 'flannel-v6.1'),
    fdb: o.fdb.filter((f) => f.dev !== 'flannel-v6.1'),
  };
  t.deepEqual(lines(plan(CAPTURED, gone, OWN)), CREATE_V6);
  // The device was made over the wrong underlay address (the host's IPv6 address changed).
  const moved = lines(plan({ ...CAPTURED, devices: [V4DEV, { ...V6DEV, local: addr('fd00:2::11') }] }, o, OWN));
  t.deepEqual(moved.slice(0, 3), [
    'ip link del flannel-v6.1',
    'ip link add flannel-v6.1 address 0e:00:00:00:00:61 mtu 1430 type vxlan id 1 local fd00:2::11 dev eth0 dstport 8472 nolearning',
    'ip link set dev flannel-v6.1 up',
  ]);
  t.true(
    moved.includes('ip route replace fd18:0:0:2::/64 via fd18:0:0:2:: dev flannel-v6.1 onlink proto 175'),
    'its peers replayed',
  );
  t.false(
    moved.some((l) => l.includes('flannel.1')),
    'the IPv4 device is untouched',
  );
});

test('a peer leaving over IPv6: its route, neighbour and fdb entry go; a route weft does not own is never touched', (t) => {
  const o = observed();
  const noV6Peer = desiredOf(
    [V4DEV, V6DEV],
    [vxPeer(V4DEV, '198.18.2.0/24', '0e:00:00:00:00:02', '192.0.2.3')],
    [
      { dst: pfx('198.18.3.0/24'), via: addr('192.0.2.2'), dev: 'eth0', onlink: false },
      { dst: pfx('fd18:0:0:3::/64'), via: addr('fd00:2::3'), dev: 'eth0', onlink: false },
    ],
  );
  const foreign = {
    ...o,
    routes: [
      ...o.routes,
      {
        dst: pfx('fd18:0:0:8::/64'),
        via: addr('fd00:2::8'),
        dev: 'eth0',
        proto: 'static',
        onlink: false,
        scopeLink: false,
        metric: 1024,
      },
    ],
  };
  t.deepEqual(lines(plan(noV6Peer, foreign, OWN)), [
    'ip route del fd18:0:0:2::/64 via fd18:0:0:2:: dev flannel-v6.1',
    'ip neigh del fd18:0:0:2:: dev flannel-v6.1',
    'bridge fdb del 0e:00:00:00:00:62 dev flannel-v6.1 dst fd00:2::2 self',
  ]);
});

test('ip -6 monitor lines (captured) become the objects the observation lists', (t) => {
  const devs = ['flannel.1', 'flannel-v6.1'];
  const ev = MONITOR6.map((l) => parseModelEvent(l, devs));
  t.like(ev[0], { kind: 'neigh', gone: false, neigh: { mac: '0e:00:00:00:00:64', dev: 'flannel-v6.1' } });
  t.like(ev[1], {
    kind: 'route',
    deleted: false,
    route: { dev: 'flannel-v6.1', proto: '175', onlink: true, metric: 1024 },
  });
  t.like(ev[2], { kind: 'route', deleted: false, route: { dev: 'eth0', proto: '175', onlink: false } });
  t.like(ev[3], { kind: 'route', deleted: true });
  t.like(ev[4], { kind: 'neigh', gone: true });
  t.like(ev[5], { kind: 'neigh', gone: true });
  const show = (i: number) => {
    const e = ev[i];
    return e?.kind === 'route'
      ? `${formatPrefix(e.route.dst)} ${e.route.via ? formatIP(e.route.via) : '-'} ${e.route.metric ?? 0}`
      : String(e?.kind);
  };
  t.is(show(1), 'fd18:0:0:4::/64 fd18:0:0:4:: 1024');
  t.is(show(6), '::/0 fd00:2::fd 1024', 'default is ::/0 when the gateway is IPv6');
  t.is(show(7), 'fd00:9::/64 - 1024');
  t.is(ev[8], undefined, "a router on the underlay is not weft's");
  t.is(show(11), 'fd18:0:0:1::/128 - 256', 'a bare IPv6 address is a /128');
  for (const i of [9, 10, 13, 14, 15, 17]) t.is(ev[i], undefined, MONITOR6[i]);
  t.like(ev[16], { kind: 'neigh', gone: true }, 'a multicast NOARP neighbour is not a permanent one');
  const dflt = parseModelEvent('[ROUTE]default dev eth0 metric 1024 pref medium', devs);
  t.is(dflt?.kind === 'route' ? formatPrefix(dflt.route.dst) : '', '::/0', 'without a gateway, `pref` says IPv6');
  const dflt4 = parseModelEvent('[ROUTE]default via 192.0.2.2 dev eth0 ', devs);
  t.is(dflt4?.kind === 'route' ? formatPrefix(dflt4.route.dst) : '', '0.0.0.0/0');
  t.is(
    parseModelEvent('[ROUTE]fd18:0:0:4::/64 via 192.0.2.9 dev eth0 metric 1024 pref medium', devs),
    undefined,
    'mixed families are not a route',
  );
  t.like(
    parseModelEvent('[NEIGH]fd18:0:0:4:: dev flannel-v6.1 lladdr 0e:00:00:00:00:64 router PERMANENT ', devs),
    { kind: 'neigh', gone: false },
    '`router` is a flag, the state after it is read',
  );
  t.like(parseModelEvent(`[FDB]${MONITOR_FDB6[0]}`, devs), {
    kind: 'fdb',
    gone: false,
    fdb: { mac: '0e:00:00:00:00:64', dev: 'flannel-v6.1' },
  });
  const fdbGone = parseModelEvent(`[FDB]${MONITOR_FDB6[1]}`, devs);
  t.like(fdbGone, { kind: 'fdb', gone: true });
  t.is(fdbGone?.kind === 'fdb' ? formatIP(fdbGone.fdb.dst) : '', 'fd00:2::4');
});

test("IPv6 events wake the reconciler only for weft's devices, its networks and its routes", (t) => {
  const s = {
    devices: ['flannel.1', 'flannel-v6.1'],
    iface: 'eth0',
    networks: [pfx('198.18.0.0/16'), pfx('fd18::/48')],
  };
  const relevant = MONITOR6.filter((l) => isRelevantEvent(l, s));
  t.deepEqual(
    MONITOR6.filter((l) => !relevant.includes(l)),
    [
      '[ROUTE]default via fd00:2::fd dev eth0 metric 1024 pref medium',
      '[ROUTE]fd00:9::/64 dev eth0 metric 1024 pref medium',
      '[NEIGH]fe80::1 dev eth0 lladdr 02:00:00:00:00:fe router REACHABLE ',
    ],
  );
  t.true(
    isRelevantEvent('[ROUTE]fd18:0:0:7:: via fd00:2::7 dev eth0 metric 1024 pref medium', s),
    'a host route inside the IPv6 network',
  );
  t.false(isRelevantEvent('[ROUTE]fd19::7 via fd00:2::7 dev eth0 metric 1024 pref medium', s));
  t.true(isRelevantEvent('[FDB]0e:00:00:00:00:64 dev flannel-v6.1 dst fd00:2::4 self permanent', s));
  t.true(isRelevantEvent('[ADDR]2: eth0    inet6 fd00:2::1/64 scope global ', s), "the underlay interface's address");
});

test("the kept model follows weft's own IPv6 writes and their echoes, and a deletion by someone else is planned back", (t) => {
  const o = observed();
  const model = new ObservedModel(o, OWN.networks);
  const devs = ['flannel.1', 'flannel-v6.1'];
  const peer = vxPeer(V6DEV, 'fd18:0:0:4::/64', '0e:00:00:00:00:64', 'fd00:2::4');
  const want = desiredOf(
    CAPTURED.devices,
    [
      vxPeer(V4DEV, '198.18.2.0/24', '0e:00:00:00:00:02', '192.0.2.3'),
      vxPeer(V6DEV, 'fd18:0:0:2::/64', '0e:00:00:00:00:62', 'fd00:2::2'),
      peer,
    ],
    [...CAPTURED.routes.values()].filter((r) => r.dev === 'eth0'),
  );
  const ops = plan(want, model.view(), OWN);
  t.deepEqual(lines(ops), [
    'bridge fdb replace 0e:00:00:00:00:64 dev flannel-v6.1 dst fd00:2::4 self permanent',
    'ip neigh replace fd18:0:0:4:: lladdr 0e:00:00:00:00:64 dev flannel-v6.1 nud permanent',
    'ip route replace fd18:0:0:4::/64 via fd18:0:0:4:: dev flannel-v6.1 onlink proto 175',
  ]);
  for (const op of ops) t.is(model.applyOp(op), 'changed');
  // The kernel's echoes (captured lines) change nothing: weft recorded its IPv6 route at metric 1024.
  const touched = noTouchedKeys();
  for (const l of [MONITOR6[0], MONITOR6[1], `[FDB]${MONITOR_FDB6[0]}`]) {
    const e = parseModelEvent(l, devs);
    if (!e) throw new Error(l);
    t.is(model.applyEvent(e, touched), 'unchanged', l);
  }
  t.deepEqual(plan(want, model.view(), OWN), []);
  // Someone deletes the route and the neighbour (as ip -6 monitor prints it).
  for (const l of [
    '[ROUTE]Deleted fd18:0:0:4::/64 via fd18:0:0:4:: dev flannel-v6.1 proto 175 metric 1024 onlink pref medium',
    MONITOR6[4],
    MONITOR6[5],
  ]) {
    const e = parseModelEvent(l, devs);
    if (!e) throw new Error(l);
    model.applyEvent(e, touched);
  }
  const repair = lines(planTouched(want, model, OWN, touched));
  t.deepEqual(repair, [
    'ip neigh replace fd18:0:0:4:: lladdr 0e:00:00:00:00:64 dev flannel-v6.1 nud permanent',
    'ip route replace fd18:0:0:4::/64 via fd18:0:0:4:: dev flannel-v6.1 onlink proto 175',
  ]);
  t.deepEqual(lines(plan(want, model.view(), OWN)), repair, 'the same as a full plan');
});

/** The line `ip -4/-6 monitor` (or `bridge monitor fdb`, prefixed) prints for an operation the kernel took (formats as captured in MONITOR6). */
function echoOf(op: Op): string[] {
  const tail = (r: { dst: Prefix; proto?: string; metric?: number; onlink: boolean }) =>
    r.dst.ip.family === 6
      ? `${r.proto && r.proto !== 'boot' ? ` proto ${r.proto}` : ''} metric ${r.metric ?? 1024}${r.onlink ? ' onlink' : ''} pref medium`
      : `${r.proto && r.proto !== 'boot' ? ` proto ${r.proto}` : ''}${r.metric ? ` metric ${r.metric}` : ''}${r.onlink ? ' onlink' : ''} `;
  switch (op.kind) {
    case 'route-replace':
      return [
        `[ROUTE]${formatPrefix(op.route.dst)} via ${formatIP(op.route.via)} dev ${op.route.dev}${tail({ ...op.route, proto: '175' })}`,
      ];
    case 'route-del':
      return [
        `[ROUTE]Deleted ${formatPrefix(op.route.dst)}${op.route.via ? ` via ${formatIP(op.route.via)}` : ''} dev ${op.route.dev}${tail(op.route)}`,
      ];
    case 'neigh-replace':
      return [`[NEIGH]${formatIP(op.neigh.ip)} dev ${op.neigh.dev} lladdr ${op.neigh.mac} PERMANENT `];
    case 'neigh-del':
      return [
        `[NEIGH]${formatIP(op.neigh.ip)} dev ${op.neigh.dev} FAILED `,
        `[NEIGH]Deleted ${formatIP(op.neigh.ip)} dev ${op.neigh.dev} FAILED `,
      ];
    case 'fdb-replace':
      return [`[FDB]${op.fdb.mac} dev ${op.fdb.dev} dst ${formatIP(op.fdb.dst)} self permanent`];
    case 'fdb-del':
      return [`[FDB]Deleted ${op.fdb.mac} dev ${op.fdb.dev} dst ${formatIP(op.fdb.dst)} self permanent`];
    default:
      return [];
  }
}

const json = (x: unknown) => JSON.stringify(x, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
const diffKeys = (x: ReadonlyMap<string, unknown>, y: ReadonlyMap<string, unknown>, into: Set<string>) => {
  for (const k of new Set([...x.keys(), ...y.keys()])) if (json(x.get(k)) !== json(y.get(k))) into.add(k);
};

/** Keys whose desired object differs between two desired states (what a lease change touches). */
function changedKeys(a: DesiredDatapath, b: DesiredDatapath): ReturnType<typeof noTouchedKeys> {
  const t = noTouchedKeys();
  diffKeys(a.routes, b.routes, t.routes);
  diffKeys(a.neighs, b.neighs, t.neighs);
  diffKeys(a.fdb, b.fdb, t.fdb);
  return t;
}

test("dual stack, random peers and drift: the touched-keys plan equals a full plan, and every operation's echo (as ip monitor prints it) leaves the model unchanged", (t) => {
  for (let seed = 1; seed <= 25; seed++) {
    const r = rng(seed);
    const peers = new Map<number, ReturnType<typeof vxPeer>[]>();
    const direct = new Map<number, Route[]>();
    const desired = () => desiredOf([V4DEV, V6DEV], [...peers.values()].flat(), [...direct.values()].flat());
    const model = new ObservedModel(observed(), OWN.networks);
    const devs = ['flannel.1', 'flannel-v6.1'];
    const feed = (line: string, touched: ReturnType<typeof noTouchedKeys>) => {
      const e = parseModelEvent(line, devs);
      if (!e) throw new Error(`unparsed: ${line}`);
      return model.applyEvent(e, touched);
    };
    let want = CAPTURED;
    for (const op of plan(want, model.view(), OWN)) model.applyOp(op);
    for (let step = 0; step < 30; step++) {
      const n = 4 + r(6);
      const x = r(4);
      peers.delete(n);
      direct.delete(n);
      const halves = r(3); // 0: IPv4, 1: IPv6, 2: both
      if (r(5) === 0)
        direct.set(n, [{ dst: pfx(`fd18:0:0:${n}::/64`), via: addr(`fd00:2::${10 + x}`), dev: 'eth0', onlink: false }]);
      else if (r(4) !== 0) {
        peers.set(n, [
          ...(halves !== 1 ? [vxPeer(V4DEV, `198.18.${n}.0/24`, `0e:00:00:00:04:0${x}`, `192.0.2.${10 + x}`)] : []),
          ...(halves !== 0 ? [vxPeer(V6DEV, `fd18:0:0:${n}::/64`, `0e:00:00:00:06:0${x}`, `fd00:2::${10 + x}`)] : []),
        ]);
      }
      const next = desired();
      const touched = changedKeys(want, next);
      want = next;
      // Drift: weft's object deleted behind its back, or a foreign route written into a network.
      const drift = r(4);
      const ours = [...model.routes.values()].flat().filter((o) => o.proto === '175');
      const route = ours[r(Math.max(ours.length, 1))];
      const neigh = [...model.neighs.values()][r(Math.max(model.neighs.size, 1))];
      const fdbs = [...model.fdb.values()].flat();
      const fdb = fdbs[r(Math.max(fdbs.length, 1))];
      const driftLines =
        drift === 0 && route
          ? echoOf({ kind: 'route-del', route })
          : drift === 1 && neigh
            ? echoOf({ kind: 'neigh-del', neigh })
            : drift === 2 && fdb
              ? echoOf({ kind: 'fdb-del', fdb })
              : r(2) === 0
                ? [`[ROUTE]fd18:0:0:${n}::/64 via fd00:2::99 dev eth0 metric 1024 pref medium`]
                : [`[ROUTE]198.18.${n}.0/24 via 192.0.2.99 dev eth0 `];
      for (const l of driftLines) feed(l, touched);
      const full = plan(want, model.view(), OWN);
      t.deepEqual(
        lines(planTouched(want, model, OWN, touched)).sort(),
        lines(full).sort(),
        `seed ${seed} step ${step}`,
      );
      for (const op of full) {
        t.not(model.applyOp(op), 'unknown');
        for (const l of echoOf(op)) t.is(feed(l, noTouchedKeys()), 'unchanged', `echo of ${renderOp(op).line}: ${l}`);
      }
      t.deepEqual(plan(want, model.view(), OWN), [], `seed ${seed} step ${step}: converged`);
    }
  }
});

test('a route whose gateway is of the other family is never rendered (iproute2 exits on the line, failing the rest of the batch); the others are', (t) => {
  const o = observed();
  const bad = { dst: pfx('fd18:0:0:5::/64'), via: addr('192.0.2.5'), dev: 'eth0', onlink: false };
  const bad4 = { dst: pfx('198.18.5.0/24'), via: addr('fd00:2::5'), dev: 'eth0', onlink: false };
  const good = { dst: pfx('fd18:0:0:6::/64'), via: addr('fd00:2::6'), dev: 'eth0', onlink: false };
  const want = {
    ...CAPTURED,
    routes: new Map([...CAPTURED.routes, ...[bad, bad4, good].map((r): [string, Route] => [formatPrefix(r.dst), r])]),
  };
  t.deepEqual(lines(plan(want, o, OWN)), ['ip route replace fd18:0:0:6::/64 via fd00:2::6 dev eth0 proto 175']);
  // One already there at that destination (weft's, from before) is left as it is, not deleted.
  const there = {
    ...o,
    routes: [
      ...o.routes,
      {
        dst: bad.dst,
        via: addr('fd00:2::5'),
        dev: 'eth0',
        proto: '175',
        onlink: false,
        scopeLink: false,
        metric: 1024,
      },
    ],
  };
  t.deepEqual(lines(plan(want, there, OWN)), ['ip route replace fd18:0:0:6::/64 via fd00:2::6 dev eth0 proto 175']);
});

test('an IPv4 route via an IPv6 next hop (RFC 5549) reads the same from the listing and the monitor, is never judged directly connected, and is deleted with a line iproute2 parses', (t) => {
  const [listed] = parseRoutes(ROUTE4_VIA6);
  t.is(
    listed ? `${formatPrefix(listed.dst)} ${listed.via ? formatIP(listed.via) : '-'} ${listed.dev}` : '',
    '203.0.113.0/24 fd00:2::2 eth0',
  );
  const e = parseModelEvent(MONITOR4_VIA6, []);
  t.like(e, { kind: 'route', deleted: true });
  t.deepEqual(e?.kind === 'route' ? e.route : undefined, listed);
  t.false(
    isAdjacent(parseRoutes(ROUTE4_VIA6), addr('203.0.113.5'), 'eth0'),
    'reached through a gateway, not on the link',
  );
  const dflt = parseModelEvent('[ROUTE]default via inet6 fe80::1 dev eth0 proto bgp ', []);
  t.is(
    dflt?.kind === 'route' ? `${formatPrefix(dflt.route.dst)} ${dflt.route.via ? formatIP(dflt.route.via) : '-'}` : '',
    '0.0.0.0/0 fe80::1',
    "an IPv4 default route, whatever its gateway's family",
  );
  const inNet = {
    dst: pfx('198.18.7.0/24'),
    via: addr('fd00:2::2'),
    dev: 'eth0',
    proto: 'boot',
    onlink: false,
    scopeLink: false,
  };
  t.deepEqual(lines(plan(CAPTURED, { ...observed(), routes: [...observed().routes, inNet] }, OWN)), [
    'ip route del 198.18.7.0/24 via inet6 fd00:2::2 dev eth0',
  ]);
});
