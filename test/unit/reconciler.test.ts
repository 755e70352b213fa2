// The reconciler against an honest fake host (test/helpers/fake-host.ts): the fake applies the
// ip/bridge batch lines, iptables-restore payloads and file writes it is given, so what these
// tests assert is the host a real kernel would end up with, not what the planner meant.
import test from 'ava';
import { type Prefix, formatIP, formatPrefix, parseIPv4, parsePrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import type { ObservedRoute } from '../../src/core/datapath/datapath.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { desiredFiles } from '../../src/core/outputs/host-files.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { type PeerLease, validatePeerLease } from '../../src/core/flannel/peer-lease.js';
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
const VX = checkNetworkConfig(decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}', BACKENDS));
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
const own = pfx('198.18.1.0/24');
const MAC = '0e:11:11:11:11:11';
const files = desiredFiles(
  { subnetFile: '/run/flannel/subnet.env', docker: { file: '/run/docker_opts.env', key: 'DOCKER_OPTS' } },
  { network: pfx('198.18.0.0/16'), subnet: own, mtu: 1450, ipMasq: true },
  '2026-01-01T00:00:00.000Z',
);

const macOf = (n: number) => `0e:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
function peer(n: number): PeerLease {
  const v = validatePeerLease(
    `198.18.${n}.0-24`,
    `{"PublicIP":"192.0.2.${n + 10}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${macOf(n)}"}}`,
    VX,
    BACKENDS,
  );
  if (!v.ok) throw new Error(v.reason);
  return v.lease;
}

interface SetupOptions {
  readonly resyncMs?: number;
  readonly rulesEveryMs?: number;
  readonly config?: typeof VX;
  /** The host's routes before weft (default: the IPv4 underlay's /24). */
  readonly underlay?: readonly ObservedRoute[];
  /** Default: IPv4 only (`facts`). */
  readonly facts?: HostFacts;
  /** IPv6 served too: the network, this host's subnet and flannel-v6.1's MAC. */
  readonly v6?: { readonly network: Prefix; readonly subnet: Prefix; readonly vtepMAC: string };
  /** The peers at the start (default: peer 2); the `peers` returned is this array, read on every pass. */
  readonly peers?: PeerLease[];
}

function setup(o: SetupOptions = {}): { r: Reconciler; host: FakeHost; peers: PeerLease[]; lines: string[] } {
  const peers: PeerLease[] = o.peers ?? [peer(2)];
  const host = new FakeHost(o.underlay ?? underlay);
  const lines: string[] = [];
  const r = new Reconciler({
    host,
    log: jsonLogger({
      write: (l: string) => {
        lines.push(l);
      },
    }),
    clock: Date,
    resyncMs: o.resyncMs ?? 60_000,
    rulesEveryMs: o.rulesEveryMs ?? 60_000,
  });
  const inputs: ReconcileInputs = {
    backend: vxlan,
    config: o.config ?? VX,
    v4: { network: pfx('198.18.0.0/16'), subnet: own },
    facts: o.facts ?? facts,
    mtu: 1450,
    vtepMAC: MAC,
    ...(o.v6 ? { v6: { network: o.v6.network, subnet: o.v6.subnet }, vtepMACv6: o.v6.vtepMAC } : {}),
    ipMasq: true,
    randomFully: false,
    files,
    peers: () => peers,
  };
  r.setInputs(inputs);
  return { r, host, peers, lines };
}

/** The datapath a correct host has for `peers`: one onlink route, neighbour and fdb entry each. */
function expectConverged(t: import('ava').ExecutionContext, host: FakeHost, peers: readonly number[]): void {
  const dev = host.links.get('flannel.1');
  t.truthy(dev, 'the vxlan device exists');
  t.like(dev, {
    kind: 'vxlan',
    vni: 1,
    local: '192.0.2.1',
    underlay: 'eth0',
    port: 8472,
    learning: false,
    mtu: 1450,
    mac: MAC,
    up: true,
  });
  t.deepEqual(dev?.addrs.map(formatPrefix), ['198.18.1.0/32']);
  t.deepEqual(
    host.routeLines(),
    peers.map((n) => `198.18.${n}.0/24 via 198.18.${n}.0 dev flannel.1 onlink proto 175`).sort(),
  );
  t.deepEqual(
    [...host.neighs.values()].map((n) => `${formatIP(n.ip)} ${n.mac}`).sort(),
    peers.map((n) => `198.18.${n}.0 ${macOf(n)}`).sort(),
  );
  t.deepEqual(
    [...host.fdb.values()].map((f) => `${f.mac} ${formatIP(f.dst)}`).sort(),
    peers.map((n) => `${macOf(n)} 192.0.2.${n + 10}`).sort(),
  );
}

test("an empty host converges to the backend's datapath, rules and files; a second look changes nothing", async (t) => {
  const { r, host } = setup();
  await r.settle();
  expectConverged(t, host, [2]);
  t.true(
    host.tables
      .get('nat')
      ?.get('POSTROUTING')
      ?.some((x) => x.endsWith('-j FLANNEL-POSTRTG')),
  );
  t.is(host.tables.get('filter')?.get('FLANNEL-FWD')?.length, 2);
  t.regex(
    host.files.get('/run/flannel/subnet.env') ?? '',
    /^FLANNEL_NETWORK=198\.18\.0\.0\/16\nFLANNEL_SUBNET=198\.18\.1\.1\/24\n/,
  );
  t.regex(host.files.get('/run/docker_opts.env') ?? '', /--bip=198\.18\.1\.1\/24/);
  const n = host.applied.length;
  r.poke('netlink');
  await r.settle();
  t.is(host.applied.length, n, 'a converged host plans zero operations');
  t.true(r.stats.lastPassOk);
  await r.stop();
});

test("peers joining and leaving: the departed peer's route, neighbour and fdb entry are deleted, the others kept", async (t) => {
  const { r, host, peers } = setup();
  peers.push(peer(3), peer(4));
  await r.settle();
  expectConverged(t, host, [2, 3, 4]);
  peers.splice(1, 1); // peer 3 leaves
  r.poke('peers');
  await r.settle();
  expectConverged(t, host, [2, 4]);
  peers.length = 0;
  r.poke('peers');
  await r.settle();
  expectConverged(t, host, []);
  await r.stop();
});

test('drift on a converged host is repaired and counted: a deleted route, neighbour, fdb entry, a stray weft route, a deleted device', async (t) => {
  const { r, host, peers } = setup();
  peers.push(peer(3));
  await r.settle();
  host.routes = host.routes.filter((x) => formatPrefix(x.dst) !== '198.18.2.0/24');
  host.neighs.clear();
  host.fdb.clear();
  host.routes.push({
    dst: pfx('198.18.77.0/24'),
    via: ip('198.18.77.0'),
    dev: 'flannel.1',
    proto: '175',
    onlink: true,
    scopeLink: false,
  });
  r.poke('netlink');
  await r.settle();
  expectConverged(t, host, [2, 3]);
  t.like(r.stats.driftRepairs, { route: 2, neigh: 2, fdb: 2 });
  await host.applyBatch('ip', ['link del flannel.1']);
  r.poke('netlink');
  await r.settle();
  expectConverged(t, host, [2, 3]);
  t.true((r.stats.driftRepairs.link ?? 0) >= 1, 'the device was recreated as drift');
  t.true(r.stats.lastPassOk);
  await r.stop();
});

test('routes weft does not own are never touched: outside the network, inside the own subnet, another protocol on another device', async (t) => {
  const { r, host } = setup();
  const foreign: ObservedRoute[] = [
    { dst: pfx('203.0.113.0/24'), via: ip('192.0.2.254'), dev: 'eth0', proto: '175', onlink: false, scopeLink: false },
    { dst: pfx('198.18.1.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true },
    {
      dst: pfx('198.18.50.0/24'),
      via: ip('192.0.2.50'),
      dev: 'eth0',
      proto: 'static',
      onlink: false,
      scopeLink: false,
    },
  ];
  host.routes.push(...foreign);
  await r.settle();
  for (const f of foreign)
    t.true(
      host.routes.some((x) => formatPrefix(x.dst) === formatPrefix(f.dst) && x.proto === f.proto),
      formatPrefix(f.dst),
    );
  await r.stop();
});

test('output files are reconciled: a deleted file and an edited file are restored on the next check and counted as drift', async (t) => {
  const { r, host } = setup({ rulesEveryMs: 0 });
  await r.settle();
  const env = host.files.get('/run/flannel/subnet.env');
  const opts = host.files.get('/run/docker_opts.env');
  host.files.delete('/run/flannel/subnet.env');
  host.files.set('/run/docker_opts.env', 'DOCKER_OPTS="--bip=10.0.0.1/24"\n');
  r.poke('timer');
  await r.settle();
  t.is(host.files.get('/run/flannel/subnet.env'), env);
  t.is(host.files.get('/run/docker_opts.env'), opts);
  t.is(r.stats.driftRepairs.file, 2);
  await r.stop();
});

test('a failing output write is retried with backoff until it succeeds, and reported as failing meanwhile', async (t) => {
  const { r, host } = setup();
  host.unwritable.add('/run/flannel/subnet.env');
  r.start();
  await new Promise((res) => setTimeout(res, 400));
  t.false(r.stats.lastPassOk);
  t.regex(r.stats.lastError, /ENOTDIR/, "the failure is the reconciler's last error (readiness shows it)");
  t.regex(r.stats.filesFailing['/run/flannel/subnet.env'] ?? '', /ENOTDIR/);
  t.false(host.files.has('/run/flannel/subnet.env'));
  t.true(host.files.has('/run/docker_opts.env'), 'the other files are written regardless');
  host.unwritable.clear();
  await r.settle();
  t.truthy(host.files.get('/run/flannel/subnet.env'));
  t.deepEqual(r.stats.filesFailing, {});
  t.true(r.stats.lastPassOk);
  await r.stop();
});

test('flushed iptables chains are restored on the next check', async (t) => {
  const { r, host } = setup({ rulesEveryMs: 0 });
  await r.settle();
  host.tables.get('filter')?.set('FLANNEL-FWD', []);
  host.tables.get('nat')?.set('POSTROUTING', []);
  r.poke('timer');
  await r.settle();
  t.is(host.tables.get('filter')?.get('FLANNEL-FWD')?.length, 2);
  t.is(host.tables.get('nat')?.get('POSTROUTING')?.length, 1);
  await r.stop();
});

test('with the ruleset followed (xtables-monitor up), iptables-save runs on a change and on the safety period, not on every check; down falls back to polling', async (t) => {
  const { r, host } = setup({ rulesEveryMs: 0 });
  await r.settle();
  r.rulesEvent('up');
  await r.settle();
  const saves = () => host.iptablesRuns.filter((x) => x.startsWith('iptables-save')).length;
  const before = saves();
  for (let i = 0; i < 5; i++) {
    r.poke('timer');
    await r.settle();
  }
  t.is(saves(), before, 'checks without a ruleset change read no tables');
  host.tables.get('filter')?.set('FLANNEL-FWD', []);
  r.rulesEvent('change');
  await r.settle();
  t.true(saves() > before, 'a change is read');
  t.is(host.tables.get('filter')?.get('FLANNEL-FWD')?.length, 2, 'and the flushed chain restored');
  r.rulesEvent('down');
  const polled = saves();
  r.poke('timer');
  await r.settle();
  t.true(saves() > polled, 'without the monitor every check reads the tables again');
  await r.stop();
});

test("a peer change plans against the kept kernel state, which follows weft's own changes (no new observation)", async (t) => {
  const { r, host, peers } = setup();
  await r.settle();
  const seen = host.observed; // the start, and a look at the device it created
  peers.push(peer(3));
  r.poke('peers');
  await r.settle();
  t.is(host.observed, seen, 'no new observation for a peer change');
  t.is(r.stats.cachedPasses, 1);
  expectConverged(t, host, [2, 3]);
  peers.push(peer(4));
  r.poke('peers');
  await r.settle();
  t.is(host.observed, seen, 'the kept state recorded the changes it applied');
  expectConverged(t, host, [2, 3, 4]);
  await r.stop();
});

/** A reconciler whose inputs can look a peer up by key, as weft run's do (passes then plan only the changed keys). */
function keyedSetup(): { r: Reconciler; host: FakeHost; peers: Map<string, PeerLease> } {
  const peers = new Map<string, PeerLease>([[peer(2).subnetKey, peer(2)]]);
  const host = new FakeHost(underlay);
  const r = new Reconciler({
    host,
    log: jsonLogger({ write: () => undefined }),
    clock: Date,
    resyncMs: 60_000,
    rulesEveryMs: 60_000,
  });
  r.setInputs({
    backend: vxlan,
    config: VX,
    v4: { network: pfx('198.18.0.0/16'), subnet: own },
    facts,
    mtu: 1450,
    vtepMAC: MAC,
    ipMasq: true,
    randomFully: false,
    files,
    peers: () => peers.values(),
    peer: (k) => peers.get(k),
  });
  return { r, host, peers };
}

test("a keyed peer change writes only that peer's entries; a MAC handed to the older lease moves with it", async (t) => {
  const { r, host, peers } = keyedSetup();
  for (const n of [3, 4, 5]) peers.set(peer(n).subnetKey, peer(n));
  r.poke('peers');
  await r.settle();
  expectConverged(t, host, [2, 3, 4, 5]);
  const seen = host.observed;
  const n = host.applied.length;
  peers.delete(peer(4).subnetKey);
  r.poke('peers', [peer(4).subnetKey]);
  await r.settle();
  t.deepEqual(
    host.applied.slice(n).sort(),
    [
      'bridge fdb del 0e:00:00:00:00:04 dev flannel.1 dst 192.0.2.14 self',
      'ip neigh del 198.18.4.0 dev flannel.1',
      'ip route del 198.18.4.0/24 via 198.18.4.0 dev flannel.1',
    ].sort(),
  );
  expectConverged(t, host, [2, 3, 5]);
  t.is(host.observed, seen);
  // Peer 6 copies peer 3's MAC with an older create revision: it takes the MAC, 3 is dropped.
  const v = validatePeerLease(
    '198.18.6.0-24',
    `{"PublicIP":"192.0.2.16","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${macOf(3)}"}}`,
    VX,
    BACKENDS,
    '1',
  );
  const p3 = validatePeerLease(
    peer(3).subnetKey,
    `{"PublicIP":"192.0.2.13","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${macOf(3)}"}}`,
    VX,
    BACKENDS,
    '9',
  );
  if (!v.ok || !p3.ok) throw new Error('bad lease');
  peers.set(p3.lease.subnetKey, p3.lease);
  peers.set(v.lease.subnetKey, v.lease);
  r.poke('peers', [v.lease.subnetKey, p3.lease.subnetKey]);
  await r.settle();
  t.true(host.routeLines().includes('198.18.6.0/24 via 198.18.6.0 dev flannel.1 onlink proto 175'));
  t.false(
    host.routeLines().some((l) => l.startsWith('198.18.3.0/24')),
    'the younger lease with the same MAC is not programmed',
  );
  t.deepEqual(
    [...host.fdb.values()].filter((f) => f.mac === macOf(3)).map((f) => formatIP(f.dst)),
    ['192.0.2.16'],
  );
  t.is(host.observed, seen);
  await r.stop();
});

test('netlink lines keep the kernel state: a deleted route, neighbour or fdb entry is repaired without a new observation; a device event looks afresh', async (t) => {
  const { r, host } = keyedSetup();
  await r.settle();
  const seen = host.observed;
  await host.applyBatch('ip', ['route del 198.18.2.0/24 dev flannel.1', 'neigh del 198.18.2.0 dev flannel.1']);
  await host.applyBatch('bridge', [`fdb del ${macOf(2)} dev flannel.1 dst 192.0.2.12 self`]);
  r.netlinkLine('[ROUTE]Deleted 198.18.2.0/24 via 198.18.2.0 dev flannel.1 proto 175 onlink ');
  r.netlinkLine('[NEIGH]198.18.2.0 dev flannel.1 FAILED ');
  r.netlinkLine(`[FDB]Deleted ${macOf(2)} dev flannel.1 dst 192.0.2.12 self permanent`);
  await r.settle();
  expectConverged(t, host, [2]);
  t.is(host.observed, seen, 'repaired from the events alone');
  t.is(r.stats.driftRepairs.route, 1);
  const n = host.applied.length;
  // Echoes of what weft itself wrote change nothing: no pass writes anything.
  r.netlinkLine('[ROUTE]198.18.2.0/24 via 198.18.2.0 dev flannel.1 proto 175 onlink ');
  r.netlinkLine(`[NEIGH]198.18.2.0 dev flannel.1 lladdr ${macOf(2)} PERMANENT `);
  await r.settle();
  t.is(host.applied.length, n);
  // The underlay's own ARP churn is not weft's.
  r.netlinkLine('[NEIGH]192.0.2.77 dev eth0 lladdr 0e:99:99:99:99:99 REACHABLE ');
  await r.settle();
  t.is(host.observed, seen);
  host.links.delete('flannel.1');
  r.netlinkLine('[LINK]Deleted 4: flannel.1: <BROADCAST,MULTICAST> mtu 1450 qdisc noop state DOWN group default ');
  await r.settle();
  t.is(host.observed, seen + 2, 'a device event is not modelled: a fresh look (and one more after creating it again)');
  expectConverged(t, host, [2]);
  await r.stop();
});

test('with no events at all (the stream killed), the periodic full resync still repairs drift', async (t) => {
  const { r, host } = setup({ resyncMs: 0 });
  await r.settle();
  await host.applyBatch('ip', ['route del 198.18.2.0/24 dev flannel.1']);
  r.poke('timer');
  await r.settle();
  expectConverged(t, host, [2]);
  await r.stop();
});

test('an underlay change the events missed is caught by the full resync: a peer no longer adjacent goes back into the tunnel (DirectRouting)', async (t) => {
  const DR = checkNetworkConfig(
    decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}', BACKENDS),
  );
  const { r, host } = setup({ resyncMs: 0, config: DR });
  await r.settle();
  t.deepEqual(host.routeLines(), ['198.18.2.0/24 via 192.0.2.12 dev eth0 proto 175'], 'adjacent: routed directly');
  // The peer's segment is now reached through a router; no event tells the reconciler.
  await host.applyBatch('ip', [
    'route del 192.0.2.0/24 dev eth0',
    'route replace 0.0.0.0/0 via 192.0.2.254 dev eth0 onlink',
  ]);
  r.poke('timer');
  await r.settle();
  t.true(
    host.routeLines().includes('198.18.2.0/24 via 198.18.2.0 dev flannel.1 onlink proto 175'),
    host.routeLines().join('\n'),
  );
  await r.stop();
});

test('netlink events always observe afresh (drift is never planned against a stale view); a timer tick only when the resync is due', async (t) => {
  const { r, host } = setup();
  await r.settle();
  r.poke('netlink');
  await r.settle();
  const n = host.observed;
  // Someone deletes a route: the netlink event forces a fresh observation, which sees it.
  await host.applyBatch('ip', ['route del 198.18.2.0/24 dev flannel.1']);
  r.poke('netlink');
  await r.settle();
  t.is(host.observed, n + 1);
  expectConverged(t, host, [2]);
  r.poke('netlink');
  await r.settle();
  const m = host.observed;
  r.poke('timer');
  await r.settle();
  t.is(host.observed, m, 'between resyncs a timer tick checks the rules and files only');
  await r.stop();
  const due = setup({ resyncMs: 0 });
  await due.r.settle();
  const k = due.host.observed;
  due.r.poke('timer');
  await due.r.settle();
  t.is(due.host.observed, k + 1, 'a timer tick with the resync due looks at the kernel afresh');
  await due.r.stop();
});

test('a netlink event during an observation is not lost: the view it may have missed is looked at again', async (t) => {
  const { r, host, peers } = setup();
  await r.settle();
  const before = host.observed;
  host.duringObserve = () => {
    r.poke('netlink');
    host.duringObserve = undefined;
  };
  r.poke('netlink');
  await r.settle();
  t.is(host.observed, before + 2, 'the poked pass, then a fresh one for the event that came during it');
  peers.push(peer(5));
  r.poke('peers');
  await r.settle();
  t.is(host.observed, before + 2, 'that second, clean observation is what the peer change plans against');
  expectConverged(t, host, [2, 5]);
  await r.stop();
});

test('after stop no pass runs and settle returns, even with a retry pending', async (t) => {
  const { r, host } = setup();
  host.unwritable.add('/run/flannel/subnet.env');
  await new Promise((res) => setTimeout(res, 50));
  await r.stop();
  const n = host.applied.length;
  const obs = host.observed;
  r.poke('netlink');
  await r.settle();
  await new Promise((res) => setTimeout(res, 300));
  t.is(host.applied.length, n);
  t.is(host.observed, obs);
});

test("dual-stack vxlan through the reconciler and its tracker: flannel-v6.1 with the IPv6 MAC, and each peer's IPv6 entries on it", async (t) => {
  const DUAL = checkNetworkConfig(
    decodeNetworkConfig(
      '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}',
      BACKENDS,
    ),
  );
  const v = validatePeerLease(
    '198.18.2.0-24&fd18:0:0:2::-64',
    '{"PublicIP":"192.0.2.12","PublicIPv6":"fd00:2::12","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:02"}}',
    DUAL,
    BACKENDS,
  );
  if (!v.ok) {
    t.fail(v.reason);
    return;
  }
  const ip6 = pfx('fd00:2::1/128').ip;
  const { r, host } = setup({
    config: DUAL,
    underlay: [...underlay, { dst: pfx('fd00:2::/64'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: false }],
    facts: { ...facts, ifaceIPv6: ip6, publicIPv6: ip6 },
    v6: { network: pfx('fd18::/48'), subnet: pfx('fd18:0:0:1::/64'), vtepMAC: '0e:66:66:66:66:66' },
    peers: [v.lease],
  });
  await r.settle();
  t.like(host.links.get('flannel-v6.1'), {
    kind: 'vxlan',
    vni: 1,
    mac: '0e:66:66:66:66:66',
    mtu: 1430,
    local: 'fd00:2::1',
  });
  t.deepEqual(host.links.get('flannel-v6.1')?.addrs.map(formatPrefix), ['fd18:0:0:1::/128']);
  t.true(
    host.routeLines().includes('fd18:0:0:2::/64 via fd18:0:0:2:: dev flannel-v6.1 onlink proto 175'),
    host.routeLines().join('\n'),
  );
  t.true(
    [...host.fdb.values()].some(
      (e) => e.mac === '0e:00:00:00:06:02' && formatIP(e.dst) === 'fd00:2::12' && e.dev === 'flannel-v6.1',
    ),
  );
  t.is(r.stats.opsFailed, 0);
  await r.stop();
});
