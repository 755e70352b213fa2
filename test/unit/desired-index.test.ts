// Issue 22: the per-lease desired state (core/datapath/desired-index.ts), the kernel state followed
// through events (core/datapath/observed-model.ts, and its sameRoutes) and the plan limited to touched keys (planTouched)
// must give exactly what a full recompute and a full plan give, on any sequence of lease
// changes and drift. A seeded random walk over a small pool of keys, MACs, revisions and
// addresses (so that clashes over one VTEP MAC, foreign VNIs and direct routing all happen).
import test from 'ava';
import { type Prefix, formatPrefix, parseIPv4, parsePrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { type DesiredDatapath, type ObservedRoute, type VxlanDevice } from '../../src/core/datapath/datapath.js';
import { DesiredIndex } from '../../src/core/datapath/desired-index.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { parseModelEvent } from '../../src/core/datapath/netlink-events.js';
import { ObservedModel, sameRoutes } from '../../src/core/datapath/observed-model.js';
import { type PeerLease, validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import { noTouchedKeys, plan, planTouched, renderOp } from '../../src/core/datapath/plan.js';
import type { Backend } from '../../src/backends/types.js';
import { hostGw } from '../../src/backends/host-gw.js';
import { vxlan } from '../../src/backends/vxlan.js';
import { rng } from '../helpers/rng.js';
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
const facts: HostFacts = {
  iface: 'eth0',
  ifaceIP: ip('192.0.2.1'),
  ifaceMTU: 1500,
  publicIP: ip('192.0.2.1'),
  why: 'test',
};
const underlay: ObservedRoute[] = [
  { dst: pfx('192.0.2.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true },
  { dst: pfx('0.0.0.0/0'), via: ip('192.0.2.254'), dev: 'eth0', proto: 'boot', onlink: false, scopeLink: false },
];
const own = { networks: [pfx('198.18.0.0/16')], ownSubnets: [pfx('198.18.1.0/24')], iface: 'eth0' };
const MAC = '0e:11:11:11:11:11';

function randomLease(
  r: (n: number) => number,
  config: ReturnType<typeof checkNetworkConfig>,
  type: 'vxlan' | 'host-gw',
): PeerLease | undefined {
  const n = 2 + r(14);
  const pub = r(6) === 0 ? '192.0.2.1' : r(2) === 0 ? `192.0.2.${10 + r(5)}` : `203.0.113.${10 + r(5)}`;
  const backendType = r(10) === 0 ? (type === 'vxlan' ? 'host-gw' : 'vxlan') : type;
  const mac = r(8) === 0 ? MAC : `0e:00:00:00:00:0${r(5)}`;
  const vni = r(8) === 0 ? 7 : 1;
  const data = backendType === 'vxlan' ? `{"VNI":${vni},"VtepMAC":"${mac}"}` : 'null';
  const v = validatePeerLease(
    `198.18.${n}.0-24`,
    `{"PublicIP":"${pub}","BackendType":"${backendType}","BackendData":${data}}`,
    config,
    BACKENDS,
    r(4) === 0 ? undefined : String(1 + r(20)),
  );
  return v.ok ? v.lease : undefined;
}

const entries = (d: DesiredDatapath) =>
  JSON.stringify(
    {
      routes: [...d.routes.entries()].sort(),
      neighs: [...d.neighs.entries()].sort(),
      fdb: [...d.fdb.entries()].sort(),
      skipped: d.skipped.map((s) => `${s.subnetKey}: ${s.reason}`).sort(),
      programmed: d.peersProgrammed,
    },
    (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
  );

const lines = (ops: readonly Parameters<typeof renderOp>[0][]) =>
  ops
    .map((o) => {
      const x = renderOp(o);
      return `${x.tool} ${x.line}`;
    })
    .sort();

for (const [name, backend, configText] of [
  ['vxlan', vxlan, '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}'],
  ['vxlan with DirectRouting', vxlan, '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}'],
  ['host-gw', hostGw, '{"Network":"198.18.0.0/16","Backend":{"Type":"host-gw"}}'],
] as const) {
  test(`${name}: per-lease desired state and the touched-keys plan equal a full recompute and a full plan, over random changes and drift`, (t) => {
    const config = checkNetworkConfig(decodeNetworkConfig(configText, BACKENDS));
    const b: Backend = backend;
    const type = b.type === 'host-gw' ? 'host-gw' : 'vxlan';
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed);
      const base = { config, own: { v4: pfx('198.18.1.0/24') }, facts, routes: underlay, mtu: 1450, vtepMAC: MAC };
      const peers = new Map<string, PeerLease>();
      const group = b.peerGroup?.bind(b);
      if (!group) throw new Error('the backend names groups');
      const idx = new DesiredIndex((ps) => b.desired({ ...base, peers: ps }), group, []);
      const full0 = b.desired({ ...base, peers: [] });
      const devices = new Map(
        full0.devices
          .filter((d): d is VxlanDevice => d.kind === 'vxlan')
          .map((d) => [
            d.name,
            {
              name: d.name,
              kind: d.kind,
              vni: d.vni,
              local: '192.0.2.1',
              underlay: 'eth0',
              port: d.port,
              learning: d.learning,
              gbp: d.gbp,
              mtu: d.mtu,
              mac: d.mac,
              up: true,
              addrs: d.addresses,
            },
          ]),
      );
      const model = new ObservedModel({ devices, routes: underlay, neighs: [], fdb: [] }, [pfx('198.18.0.0/16')]);
      for (let step = 0; step < 40; step++) {
        const touched = noTouchedKeys();
        const changes: [string, PeerLease | undefined][] = [];
        for (let k = 1 + r(3); k > 0; k--) {
          const lease = randomLease(r, config, type);
          const key = lease?.subnetKey ?? `198.18.${2 + r(14)}.0-24`;
          if (!lease || r(4) === 0) {
            peers.delete(key);
            changes.push([key, undefined]);
          } else {
            peers.set(key, lease);
            changes.push([key, lease]);
          }
        }
        idx.update(changes, touched);
        // Drift: something deletes one of weft's routes, neighbours or fdb entries; its event arrives.
        if (r(3) === 0) {
          const route = [...model.routes.values()].flat().find((x) => x.proto === '175');
          const neigh = [...model.neighs.values()][0];
          const fdb = [...model.fdb.values()].flat()[0];
          const line = [
            route &&
              `[ROUTE]Deleted ${route.dst.ip.family === 4 ? '' : ''}${renderOp({ kind: 'route-del', route }).line.slice('route del '.length)} proto 175`,
            neigh &&
              `[NEIGH]Deleted ${renderOp({ kind: 'neigh-del', neigh }).line.slice('neigh del '.length)} lladdr ${neigh.mac} PERMANENT`,
            fdb && `[FDB]Deleted ${renderOp({ kind: 'fdb-del', fdb }).line.slice('fdb del '.length)} permanent`,
          ][r(3)];
          const e = line ? parseModelEvent(line, ['flannel.1']) : undefined;
          if (line) t.truthy(e, line);
          if (e) model.applyEvent(e, touched);
        }
        t.true(idx.usable);
        const full = b.desired({ ...base, peers: peers.values() });
        t.is(entries(idx.datapath()), entries(full), `seed ${seed} step ${step}: desired`);
        const want = plan(full, model.view(), own);
        t.deepEqual(
          lines(planTouched(idx.datapath(), model, own, touched)),
          lines(want),
          `seed ${seed} step ${step}: plan`,
        );
        for (const op of want) t.not(model.applyOp(op), 'unknown');
        t.deepEqual(plan(full, model.view(), own), [], 'the model took every operation');
      }
    }
  });
}

test('monitor lines as iproute2 prints them (captured) become the objects an observation lists', (t) => {
  const dev = ['flannel.1'];
  t.like(parseModelEvent('[ROUTE]198.18.0.16/28 via 198.18.0.16 dev flannel.1 proto 175 onlink ', dev), {
    kind: 'route',
    deleted: false,
    route: { dev: 'flannel.1', proto: '175', onlink: true, scopeLink: false },
  });
  t.like(parseModelEvent('[ROUTE]Deleted 198.18.0.48/28 via 192.0.2.8 dev eth0 metric 5 ', dev), {
    kind: 'route',
    deleted: true,
    route: { dev: 'eth0', proto: 'boot', metric: 5 },
  });
  t.like(parseModelEvent('[ROUTE]192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.1 ', dev), {
    kind: 'route',
    route: { proto: 'kernel', scopeLink: true },
  });
  t.is(
    parseModelEvent('[ROUTE]local 198.18.0.0 dev flannel.1 table local proto kernel scope host src 198.18.0.0 ', dev),
    undefined,
  );
  t.is(parseModelEvent('[ROUTE]198.18.9.0/24 via 192.0.2.9 dev eth0 table 100 ', dev), undefined);
  t.like(parseModelEvent('[NEIGH]198.18.0.16 dev flannel.1 lladdr 0e:57:00:00:01:01 PERMANENT ', dev), {
    kind: 'neigh',
    gone: false,
    neigh: { mac: '0e:57:00:00:01:01', dev: 'flannel.1' },
  });
  t.like(parseModelEvent('[NEIGH]198.18.0.16 dev flannel.1 FAILED ', dev), { kind: 'neigh', gone: true });
  t.like(parseModelEvent('[NEIGH]Deleted 198.18.0.16 dev flannel.1 FAILED ', dev), { kind: 'neigh', gone: true });
  t.is(parseModelEvent('[NEIGH]192.0.2.7 dev eth0 lladdr 0e:99:99:99:99:99 REACHABLE ', dev), undefined);
  t.like(parseModelEvent('[FDB]0e:57:00:00:01:01 dev flannel.1 dst 203.0.113.1 self permanent', dev), {
    kind: 'fdb',
    gone: false,
    fdb: { mac: '0e:57:00:00:01:01', dev: 'flannel.1' },
  });
  t.like(parseModelEvent('[FDB]Deleted 0e:57:00:00:01:01 dev flannel.1 dst 203.0.113.2 self permanent', dev), {
    kind: 'fdb',
    gone: true,
  });
  t.is(
    parseModelEvent('[LINK]4: flannel.1: <BROADCAST,MULTICAST> mtu 1450 qdisc noop state DOWN group default ', dev),
    undefined,
  );
});

test('the model cannot follow an fdb MAC that gains a second destination: it says so (the caller looks afresh)', (t) => {
  const model = new ObservedModel(
    {
      devices: new Map(),
      routes: [],
      neighs: [],
      fdb: [{ mac: '0e:57:00:00:01:01', dst: ip('203.0.113.1'), dev: 'flannel.1' }],
    },
    [pfx('198.18.0.0/16')],
  );
  const e = parseModelEvent('[FDB]0e:57:00:00:01:01 dev flannel.1 dst 203.0.113.2 self permanent', ['flannel.1']);
  if (!e) throw new Error('unparsed');
  t.is(model.applyEvent(e, noTouchedKeys()), 'unknown');
});

test('sameRoutes: the same routes in another order are the same; a changed gateway, metric or count is not', (t) => {
  const routes: ObservedRoute[] = [
    ...underlay,
    { dst: pfx('192.0.2.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true, metric: 100 },
  ];
  t.true(sameRoutes(routes, [...routes].reverse()));
  t.true(
    sameRoutes(
      routes,
      routes.map((r) => ({ ...r, dst: pfx(formatPrefix(r.dst)) })),
    ),
    'equal values, not the same objects',
  );
  const [link, def, link100] = routes as [ObservedRoute, ObservedRoute, ObservedRoute];
  t.false(sameRoutes(routes, [link, { ...def, via: ip('192.0.2.253') }, link100]), 'another gateway');
  t.false(sameRoutes(routes, [link, def, { ...link100, metric: 200 }]), 'another metric');
  t.false(sameRoutes(routes, [link, def, link]), 'one route twice, another missing');
  t.false(sameRoutes(routes, [link, def]), 'one route fewer');
});
