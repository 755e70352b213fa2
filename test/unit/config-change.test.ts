// Live network config changes (issue 19 part 2), with no etcd and no root: classifying a change
// for one host, what `weft apply` says it does to the fleet, the fleet re-judged under a new
// config, and the reconciler retiring the old vxlan device on a VNI or backend change.
import test from 'ava';
import { type Prefix, formatIP, formatPrefix, parseIPv4, parsePrefix } from '../../src/core/net/cidr.js';
import { type NetworkConfig, checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { classifyConfigChange, fleetEffects, retiredDevices } from '../../src/core/config/config-change.js';
import { planApply, strandReason } from '../../src/core/config/apply.js';
import { joinListing } from '../../src/core/fleet/acquire.js';
import type { ObservedRoute } from '../../src/core/datapath/datapath.js';
import { Fleet } from '../../src/core/fleet/fleet.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { type PeerLease, validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { hostGw } from '../../src/backends/host-gw.js';
import { vxlan } from '../../src/backends/vxlan.js';
import { jsonLogger } from '../../src/adapters/log.js';
import { type ReconcileInputs, Reconciler } from '../../src/agent/reconciler.js';
import { FakeHost } from '../helpers/fake-host.js';
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
const cfg = (json: string): NetworkConfig => checkNetworkConfig(decodeNetworkConfig(json, BACKENDS));
const net = (network: string, backend = '{"Type":"vxlan"}', extra = '') =>
  cfg(`{"Network":"${network}"${extra},"Backend":${backend}}`);
/** The backend types classifyConfigChange is told this weft runs. */
const RUNS = ['vxlan', 'host-gw'];
const OLD = net('198.18.0.0/17');
const own = { v4: pfx('198.18.1.0/24') };

test('a change that changes nothing a host does is none (formatting, key case, defaults spelled out)', (t) => {
  t.deepEqual(
    classifyConfigChange(
      OLD,
      cfg('{"network":"198.18.0.0/17","subnetlen":24,"Backend":{"type":"vxlan","VNI":1,"Port":8472}}'),
      own,
      RUNS,
    ),
    { kind: 'none' },
  );
});

test('live changes name their parts: MTU, VNI, port, DirectRouting, backend switch, growth', (t) => {
  const live = (next: NetworkConfig) => {
    const c = classifyConfigChange(OLD, next, own, RUNS);
    return c.kind === 'live' ? c.parts : c.kind;
  };
  t.deepEqual(live(net('198.18.0.0/17', '{"Type":"vxlan","MTU":1400}')), ['mtu']);
  t.deepEqual(live(net('198.18.0.0/17', '{"Type":"vxlan","VNI":2}')), ['vni']);
  t.deepEqual(live(net('198.18.0.0/17', '{"Type":"vxlan","Port":4789}')), ['port']);
  t.deepEqual(live(net('198.18.0.0/17', '{"Type":"vxlan","DirectRouting":true}')), ['directRouting']);
  t.deepEqual(
    live(net('198.18.0.0/17', '{"Type":"host-gw"}')),
    ['backend'],
    'VNI and Port vanish with the switch: one part',
  );
  t.deepEqual(
    live(net('198.18.0.0/16')),
    ['grow', 'subnetRange'],
    'a larger network containing the old one, SubnetMax grows with it',
  );
  const c = classifyConfigChange(OLD, net('198.18.0.0/17', '{"Type":"vxlan","VNI":2}'), own, RUNS);
  t.deepEqual(c.kind === 'live' ? c.diff : [], ['- Backend.VNI: 1', '+ Backend.VNI: 2']);
});

test('a subnet that no longer fits moves: another SubnetLen, or outside a shrunk or renumbered range; others stay live', (t) => {
  const lenChange = classifyConfigChange(OLD, net('198.18.0.0/17', '{"Type":"vxlan"}', ',"SubnetLen":25'), own, RUNS);
  t.is(lenChange.kind, 'move');
  t.regex(
    lenChange.kind === 'move' ? lenChange.why : '',
    /SubnetLen is now \/25 \(this host holds 198\.18\.1\.0\/24\)/,
  );
  const renumbered = classifyConfigChange(OLD, net('198.19.0.0/16'), own, RUNS);
  t.is(renumbered.kind, 'move');
  t.deepEqual(renumbered.kind === 'move' ? renumbered.parts.includes('renumber') : false, true);
  const shrunk = net('198.18.0.0/17', '{"Type":"vxlan"}', ',"SubnetMax":"198.18.50.0"');
  t.is(classifyConfigChange(OLD, shrunk, own, RUNS).kind, 'live', '198.18.1.0/24 still fits');
  t.is(classifyConfigChange(OLD, shrunk, { v4: pfx('198.18.100.0/24') }, RUNS).kind, 'move');
});

test('IPv4 off is a move to an IPv6-only lease, IPv6 on a move that keeps the IPv4 half; a backend weft does not run is unusable', (t) => {
  const v6only = cfg('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}');
  t.like(classifyConfigChange(OLD, v6only, own, RUNS), {
    kind: 'move',
    why: 'the network has no IPv4 any more (this host holds 198.18.1.0/24)',
  });
  const dual = cfg(
    '{"Network":"198.18.0.0/17","EnableIPv6":true,"IPv6Network":"2001:db8::/48","Backend":{"Type":"vxlan"}}',
  );
  t.like(classifyConfigChange(OLD, dual, own, RUNS), {
    kind: 'move',
    parts: ['ipv6'],
    why: 'the network now has IPv6 (2001:db8::/48): this host adds an IPv6 subnet and keeps the other',
  });
  t.like(classifyConfigChange(dual, OLD, { v4: pfx('198.18.1.0/24'), v6: pfx('2001:db8:0:1::/64') }, RUNS), {
    kind: 'move',
    why: 'the network has no IPv6 any more (this host holds 2001:db8:0:1::/64)',
  });
  t.like(classifyConfigChange(dual, dual, { v4: pfx('198.18.1.0/24'), v6: pfx('2001:db8:0:1::/64') }, RUNS), {
    kind: 'none',
  });
  t.like(classifyConfigChange(OLD, net('198.18.0.0/17', '{"Type":"udp"}'), own, RUNS), { kind: 'unusable' });
});

test('retired devices: the old ones not wanted any more; a name wanted again is not retired', (t) => {
  t.deepEqual(retiredDevices([], ['flannel.1'], ['flannel.2']), ['flannel.1']);
  t.deepEqual(retiredDevices(['flannel.1'], ['flannel.2'], []), ['flannel.1', 'flannel.2']);
  t.deepEqual(retiredDevices(['flannel.1', 'flannel.2'], [], ['flannel.1']), ['flannel.2']);
});

test('weft apply: effects per kind, outputs, Docker restart, hosts that move; weft hosts follow a backend or VNI change, flanneld hosts are stranded', (t) => {
  const kv = (key: string, value: string): KeyValue => ({
    key,
    value,
    createRevision: '5',
    modRevision: '5',
    lease: '0',
  });
  const value = (n: number) =>
    `{"PublicIP":"192.0.2.${n}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:0${n}"}}`;
  const owner = (n: number) => `{"hostID":"h${n}","hostname":"h${n}","publicIP":"192.0.2.${n}"}`;
  const listed = joinListing(
    [
      kv('/p/subnets/198.18.1.0-24', value(1)),
      kv('/p/subnets/198.18.100.0-24', value(2)),
      kv('/p/subnets/198.18.3.0-24', value(3)),
    ],
    [kv('/p/owners/198.18.1.0-24', owner(1)), kv('/p/owners/198.18.100.0-24', owner(2))],
    '/p/subnets/',
    '/p/owners/',
  );
  const storedText = '{"Network":"198.18.0.0/17","Backend":{"Type":"vxlan"}}';
  const hostgw = planApply(storedText, net('198.18.0.0/17', '{"Type":"host-gw"}'), listed, BACKENDS);
  t.is(hostgw.kind, 'write');
  if (hostgw.kind !== 'write') return;
  t.deepEqual(
    hostgw.stranded,
    ['198.18.3.0/24 (host 192.0.2.3) uses backend vxlan, not host-gw'],
    "only the lease without an owner record (not weft's) is stranded",
  );
  t.deepEqual(hostgw.effects?.parts, ['backend']);
  t.true(hostgw.effects?.dockerRestart);
  t.deepEqual(hostgw.effects?.moves, []);
  const shrink = planApply(
    storedText,
    net('198.18.0.0/17', '{"Type":"vxlan"}', ',"SubnetMax":"198.18.50.0"'),
    listed,
    BACKENDS,
  );
  if (shrink.kind !== 'write') {
    t.fail();
    return;
  }
  t.deepEqual(shrink.effects?.moves, ['198.18.100.0-24: 198.18.100.0/24 no longer fits 198.18.0.0/17 /24']);
  t.is(shrink.stranded.length, 1, 'a move still needs --force, as today');
  const mtu = fleetEffects(OLD, net('198.18.0.0/17', '{"Type":"vxlan","MTU":1400}'), []);
  t.deepEqual(mtu.outputs, ['FLANNEL_MTU (and the Docker/Podman --mtu) where the overlay MTU changes']);
  t.regex(mtu.effects[0] ?? '', /^mtu: live: /);
  const vni = fleetEffects(OLD, net('198.18.0.0/17', '{"Type":"vxlan","VNI":2}'), []);
  t.deepEqual(vni.outputs, []);
  t.false(vni.dockerRestart);
  const grow = fleetEffects(OLD, net('198.18.0.0/16'), []);
  t.deepEqual(grow.outputs, ['FLANNEL_NETWORK (and the masquerade rules)']);
  t.false(grow.dockerRestart, 'the network is in subnet.env only');
  const l0 = listed[0];
  if (l0)
    t.is(
      strandReason(l0, net('198.18.0.0/17', '{"Type":"vxlan","VNI":2}'), BACKENDS),
      '198.18.1.0/24 (host 192.0.2.1) uses VNI 1, not 2',
      'without the stored config nothing says the host follows',
    );
});

test('the fleet re-judged under a new config: a grown network admits a lease it rejected; a shrunk one drops a peer', (t) => {
  const kv = (key: string, value: string): KeyValue => ({
    key,
    value,
    createRevision: '5',
    modRevision: '5',
    lease: '0',
  });
  const value = (n: number) =>
    `{"PublicIP":"192.0.2.${n}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:0${n}"}}`;
  const entries = [kv('/p/subnets/198.18.2.0-24', value(2)), kv('/p/subnets/198.18.200.0-24', value(3))];
  const fleet = new Fleet('/p/subnets/', OLD, BACKENDS, own);
  for (const e of entries) fleet.update(e.key, e);
  t.deepEqual([...fleet.peers.keys()], ['198.18.2.0-24']);
  t.is(fleet.quarantinedCount, 1);
  fleet.setConfig(net('198.18.0.0/16'));
  for (const e of entries) fleet.update(e.key, e);
  t.deepEqual([...fleet.peers.keys()].sort(), ['198.18.2.0-24', '198.18.200.0-24']);
  t.is(fleet.quarantinedCount, 0);
  fleet.setConfig(net('198.18.0.0/24', '{"Type":"vxlan"}', ',"SubnetLen":26'));
  for (const e of entries) fleet.update(e.key, e);
  t.is(fleet.peers.size, 0, 'a config change is not a corrupt write: peers that no longer fit are dropped');
});

// The reconciler, with the honest fake host: a VNI change and a backend switch.
const facts: HostFacts = {
  iface: 'eth0',
  ifaceIP: ip('192.0.2.1'),
  ifaceMTU: 1500,
  publicIP: ip('192.0.2.1'),
  why: 'test',
};
const underlay: ObservedRoute[] = [
  { dst: pfx('192.0.2.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true },
];
const macOf = (n: number) => `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
function peer(n: number, config: NetworkConfig, attrs: string): PeerLease {
  const v = validatePeerLease(
    `198.18.${n}.0-24`,
    `{"PublicIP":"192.0.2.${n + 10}","PublicIPv6":null,${attrs}}`,
    config,
    BACKENDS,
  );
  if (!v.ok) throw new Error(v.reason);
  return v.lease;
}
const vxAttrs = (vni: number, n: number) =>
  `"BackendType":"vxlan","BackendData":{"VNI":${vni},"VtepMAC":"${macOf(n)}"}`;

test('a VNI change: flannel.<new> created and every peer programmed on it (same peer MACs too), flannel.<old> deleted with all it carried', async (t) => {
  const host = new FakeHost(underlay);
  const r = new Reconciler({
    host,
    log: jsonLogger({ write: () => undefined }),
    clock: Date,
    resyncMs: 60_000,
    rulesEveryMs: 60_000,
  });
  const v1 = net('198.18.0.0/16');
  const base: ReconcileInputs = {
    backend: vxlan,
    config: v1,
    v4: { network: pfx('198.18.0.0/16'), subnet: own.v4 },
    facts,
    mtu: 1450,
    vtepMAC: '0e:11:11:11:11:11',
    ipMasq: true,
    randomFully: false,
    peers: () => [peer(2, v1, vxAttrs(1, 2)), peer(3, v1, vxAttrs(1, 3))],
  };
  r.setInputs(base);
  await r.settle();
  t.truthy(host.links.get('flannel.1'));
  const v2 = net('198.18.0.0/16', '{"Type":"vxlan","VNI":2}');
  // Peer MACs unchanged (a peer that kept its MAC): the entries must still move to the new device.
  r.setInputs({
    ...base,
    config: v2,
    vtepMAC: '0e:22:22:22:22:22',
    retiredDevices: ['flannel.1'],
    peers: () => [peer(2, v2, vxAttrs(2, 2)), peer(3, v2, vxAttrs(2, 3))],
  });
  await r.settle();
  t.false(host.links.has('flannel.1'), 'the old device is deleted');
  t.like(host.links.get('flannel.2'), { vni: 2, mac: '0e:22:22:22:22:22', up: true });
  t.deepEqual(host.routeLines(), [
    '198.18.2.0/24 via 198.18.2.0 dev flannel.2 onlink proto 175',
    '198.18.3.0/24 via 198.18.3.0 dev flannel.2 onlink proto 175',
  ]);
  t.deepEqual([...host.neighs.values()].map((n) => `${formatIP(n.ip)} ${n.dev}`).sort(), [
    '198.18.2.0 flannel.2',
    '198.18.3.0 flannel.2',
  ]);
  t.deepEqual([...host.fdb.values()].map((f) => `${f.mac} ${f.dev}`).sort(), [
    `${macOf(2)} flannel.2`,
    `${macOf(3)} flannel.2`,
  ]);
  t.true(r.stats.lastPassOk, 'nothing on the deleted device was deleted one by one (that would fail)');
  t.deepEqual(host.links.get('flannel.2')?.addrs.map(formatPrefix), ['198.18.1.0/32']);
  await r.stop();
});

test('a backend switch vxlan -> host-gw -> vxlan: the device retired, routes replaced in place, and back', async (t) => {
  const host = new FakeHost(underlay);
  const r = new Reconciler({
    host,
    log: jsonLogger({ write: () => undefined }),
    clock: Date,
    resyncMs: 60_000,
    rulesEveryMs: 60_000,
  });
  const vx = net('198.18.0.0/16');
  const gw = net('198.18.0.0/16', '{"Type":"host-gw"}');
  const base: ReconcileInputs = {
    backend: vxlan,
    config: vx,
    v4: { network: pfx('198.18.0.0/16'), subnet: own.v4 },
    facts,
    mtu: 1450,
    vtepMAC: '0e:11:11:11:11:11',
    ipMasq: true,
    randomFully: false,
    peers: () => [peer(2, vx, vxAttrs(1, 2))],
  };
  r.setInputs(base);
  await r.settle();
  r.setInputs({
    ...base,
    backend: hostGw,
    config: gw,
    mtu: 1500,
    retiredDevices: ['flannel.1'],
    peers: () => [peer(2, gw, '"BackendType":"host-gw"')],
  });
  await r.settle();
  t.false(host.links.has('flannel.1'));
  t.deepEqual(host.routeLines(), ['198.18.2.0/24 via 192.0.2.12 dev eth0 proto 175']);
  t.is(host.neighs.size + host.fdb.size, 0);
  r.setInputs({ ...base, retiredDevices: [] });
  await r.settle();
  t.deepEqual(host.routeLines(), ['198.18.2.0/24 via 198.18.2.0 dev flannel.1 onlink proto 175']);
  t.true(r.stats.lastPassOk);
  await r.stop();
});

test("a backend option without a kind of its own (wireguard's ListenPort, PersistentKeepaliveInterval) is a live change, never a silent no-op", (t) => {
  const WG = net('198.18.0.0/17', '{"Type":"wireguard"}');
  const runs = ['vxlan', 'host-gw', 'wireguard'];
  const live = (next: NetworkConfig) => {
    const c = classifyConfigChange(WG, next, own, runs);
    return c.kind === 'live' ? c.parts : c.kind;
  };
  t.deepEqual(live(net('198.18.0.0/17', '{"Type":"wireguard","ListenPort":51830}')), ['option']);
  t.deepEqual(live(net('198.18.0.0/17', '{"Type":"wireguard","PersistentKeepaliveInterval":25}')), ['option']);
  t.regex(
    fleetEffects(WG, net('198.18.0.0/17', '{"Type":"wireguard","ListenPort":51830}'), []).effects.join('\n'),
    /^option: live: every host programs its device and peers/,
  );
});
