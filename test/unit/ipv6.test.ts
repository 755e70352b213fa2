// IPv6 in the pure core: lease planning per family, peer judging per half, the vxlan and host-gw
// desired state over IPv6, and the lease values in flanneld's dual-stack format.
import test from 'ava';
import { type IP, type Prefix, formatPrefix, parseIP, parsePrefix } from '../../src/core/net/cidr.js';
import { type ListedLease, joinListing, planAcquire } from '../../src/core/fleet/acquire.js';
import { Fleet } from '../../src/core/fleet/fleet.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { encodeLeaseAttrs } from '../../src/core/flannel/lease.js';
import { type PeerLease, validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import type { ObservedRoute } from '../../src/core/datapath/datapath.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { hostGw } from '../../src/backends/host-gw.js';
import { vxlan } from '../../src/backends/vxlan.js';
import { config } from '../helpers/fleet.js';
import { BACKENDS } from '../helpers/backends.js';
import { vxlanDataOf, vxlanDataV6Of } from '../../src/backends/vxlan-lease.js';

const ipOf = (s: string): IP => {
  const a = parseIP(s);
  if (!a) throw new Error(s);
  return a;
};
const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const DUAL = config(
  '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}',
);
const V6ONLY = config('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}');
const V4 = config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}');
const S = '/p/subnets/';
const O = '/p/weft/owners/';
let rev = 1;
const kv = (key: string, value: string): KeyValue => ({
  key,
  value,
  lease: '7',
  modRevision: String(rev++),
  createRevision: String(rev),
});
const dualValue = (n: number, mac4 = `0e:00:00:00:04:0${n}`, mac6 = `0e:00:00:00:06:0${n}`) =>
  `{"PublicIP":"192.0.2.${n}","PublicIPv6":"fd00:2::${n}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac4}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${mac6}"}}`;

/** The address weft's owner record names for a value: its PublicIP, or on an IPv6-only lease its PublicIPv6. */
const ownerIP = (value: string): string => {
  const v4 = /"PublicIP":"([^"]*)"/.exec(value)?.[1] ?? '';
  return v4 === '0.0.0.0' ? (/"PublicIPv6":"([^"]*)"/.exec(value)?.[1] ?? '') : v4;
};

function listing(entries: { key: string; value: string; owner?: string }[]): ListedLease[] {
  return joinListing(
    entries.map((e) => kv(S + e.key, e.value)),
    entries.flatMap((e) =>
      e.owner
        ? [kv(O + e.key, JSON.stringify({ hostID: e.owner, hostname: e.owner, publicIP: ownerIP(e.value) }))]
        : [],
    ),
    S,
    O,
  );
}

test('turning IPv6 on keeps the IPv4 subnet: a new dual-stack key replaces the v4-only one', (t) => {
  const leases = listing([
    { key: '198.18.7.0-24', value: '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"vxlan"}', owner: 'me' },
    { key: '198.18.8.0-24&fd18:0:0:1::-64', value: dualValue(2), owner: 'them' },
  ]);
  const d = planAcquire({
    range: DUAL.ipv4!,
    rangeV6: DUAL.ipv6!,
    leases,
    hostID: 'me',
    publicIP: ipOf('192.0.2.1'),
    publicIPv6: ipOf('fd00:2::1'),
    rng: () => 0,
  });
  t.is(d.plan.kind, 'create');
  if (d.plan.kind !== 'create') return;
  t.is(formatPrefix(d.plan.subnets.v4!), '198.18.7.0/24', 'the IPv4 subnet is kept (flanneld renumbers it)');
  t.is(formatPrefix(d.plan.subnets.v6!), 'fd18:0:0:2::/64', 'the first free IPv6 subnet after the taken one');
  t.is(d.plan.replaces?.subnetKey, '198.18.7.0-24');
  t.deepEqual(d.plan.allocated.map(formatPrefix), ['fd18:0:0:2::/64'], 'only the IPv6 half was chosen at random');
  t.deepEqual(d.stale, [], 'the replaced lease is not deleted before the create');
});

test('turning IPv6 off keeps the IPv4 half; an owned dual-stack lease that fits is reused', (t) => {
  const leases = listing([{ key: '198.18.7.0-24&fd18:0:0:9::-64', value: dualValue(1), owner: 'me' }]);
  const off = planAcquire({ range: V4.ipv4!, leases, hostID: 'me', publicIP: ipOf('192.0.2.1'), rng: () => 0 });
  t.like(off.plan, {
    kind: 'create',
    subnets: { v4: pfx('198.18.7.0/24') },
    replaces: { subnetKey: '198.18.7.0-24&fd18:0:0:9::-64' },
  });
  if (off.plan.kind === 'create') t.is(off.plan.subnets.v6, undefined);
  const same = planAcquire({
    range: DUAL.ipv4!,
    rangeV6: DUAL.ipv6!,
    leases,
    hostID: 'me',
    publicIP: ipOf('192.0.2.1'),
    rng: () => 0,
  });
  t.like(same.plan, { kind: 'reuse', why: 'owned' });
});

test('IPv6-only: a host is never identified by PublicIP 0.0.0.0, only by its owner record or PublicIPv6', (t) => {
  const theirs =
    '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:2::9","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:09"}}';
  const mine =
    '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:2::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:01"}}';
  const zero = ipOf('0.0.0.0');
  // Another v6-only host's unowned lease (a flanneld one): flanneld would take it over (§1.6); weft allocates its own.
  const a = planAcquire({
    rangeV6: V6ONLY.ipv6!,
    leases: listing([{ key: '0.0.0.0-0&fd18:0:0:1::-64', value: theirs }]),
    hostID: 'me',
    publicIP: zero,
    publicIPv6: ipOf('fd00:2::1'),
    rng: () => 0,
  });
  t.like(a.plan, { kind: 'create', why: 'allocated' });
  if (a.plan.kind === 'create') {
    t.is(formatPrefix(a.plan.subnets.v6!), 'fd18:0:0:2::/64');
    t.is(a.plan.subnets.v4, undefined);
  }
  // Its own unowned lease (by PublicIPv6) is adopted.
  const b = planAcquire({
    rangeV6: V6ONLY.ipv6!,
    leases: listing([
      { key: '0.0.0.0-0&fd18:0:0:1::-64', value: theirs },
      { key: '0.0.0.0-0&fd18:0:0:5::-64', value: mine },
    ]),
    hostID: 'me',
    publicIP: zero,
    publicIPv6: ipOf('fd00:2::1'),
    rng: () => 0,
  });
  t.like(b.plan, { kind: 'reuse', why: 'public-ip', lease: { subnetKey: '0.0.0.0-0&fd18:0:0:5::-64' } });
  // The previous subnet.env's IPv6 subnet is reused when free.
  const c = planAcquire({
    rangeV6: V6ONLY.ipv6!,
    leases: [],
    hostID: 'me',
    publicIP: zero,
    publicIPv6: ipOf('fd00:2::1'),
    previous: { v6: pfx('fd18:0:0:33::/64') },
    rng: () => 0,
  });
  t.like(c.plan, { kind: 'create', why: 'previous', subnets: { v6: pfx('fd18:0:0:33::/64') } });
});

test("each family is allocated against every key's half of that family, whatever the other half", (t) => {
  // 198.18.1.0 sits in a dual-stack key; a v4-only key holds .2: neither is free for IPv4, and the v6 half of the first is taken too.
  const leases = listing([
    { key: '198.18.1.0-24&fd18:0:0:1::-64', value: dualValue(5) },
    { key: '198.18.2.0-24', value: '{"PublicIP":"192.0.2.6","PublicIPv6":null}' },
  ]);
  const d = planAcquire({
    range: DUAL.ipv4!,
    rangeV6: DUAL.ipv6!,
    leases,
    hostID: 'me',
    publicIP: ipOf('192.0.2.1'),
    publicIPv6: ipOf('fd00:2::1'),
    rng: () => 0,
  });
  t.like(d.plan, { kind: 'create', subnets: { v4: pfx('198.18.3.0/24'), v6: pfx('fd18:0:0:2::/64') } });
});

test("a peer's halves are judged on their own: a v4-only host ignores the IPv6 half without error", (t) => {
  const v = validatePeerLease('198.18.5.0-24&fd18:0:0:5::-64', dualValue(5), V4, BACKENDS);
  t.true(v.ok);
  if (!v.ok) return;
  t.is(formatPrefix(v.lease.subnet!), '198.18.5.0/24');
  t.is(v.lease.subnetV6, undefined);
  t.is(vxlanDataOf(v.lease)?.vtepMAC, '0e:00:00:00:04:05');
  t.regex(v.lease.ignored ?? '', /IPv6 half fd18:0:0:5::\/64 ignored: this network has no IPv6/);
  const d = validatePeerLease('198.18.5.0-24&fd18:0:0:5::-64', dualValue(5), DUAL, BACKENDS);
  t.true(
    d.ok &&
      d.lease.subnetV6 !== undefined &&
      vxlanDataV6Of(d.lease)?.vtepMAC === '0e:00:00:00:06:05' &&
      d.lease.ignored === undefined,
  );
  // A v4-only peer in a dual-stack network (a host not restarted yet): its IPv4 half only.
  const old = validatePeerLease(
    '198.18.6.0-24',
    '{"PublicIP":"192.0.2.6","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:04:06"}}',
    DUAL,
    BACKENDS,
  );
  t.true(old.ok && old.lease.subnetV6 === undefined && old.lease.subnet !== undefined);
});

test('a bad IPv6 half (link-local PublicIPv6, no BackendV6Data, outside the network) is reported, the IPv4 half still programmed', (t) => {
  const cases: [string, string, RegExp][] = [
    ['198.18.5.0-24&fd18:0:0:5::-64', dualValue(5).replace('fd00:2::5', 'fe80::5'), /link-local/],
    ['198.18.5.0-24&fd18:0:0:5::-64', dualValue(5).replace(/,"BackendV6Data":\{[^}]*\}/, ''), /without BackendV6Data/],
    [
      '198.18.5.0-24&fd18:0:0:5::-64',
      dualValue(5).replace('"PublicIPv6":"fd00:2::5"', '"PublicIPv6":null'),
      /PublicIPv6 is null/,
    ],
    ['198.18.5.0-24&fd19:0:0:5::-64', dualValue(5), /outside the IPv6 network/],
    ['198.18.5.0-24&fd18:0:0:5::-80', dualValue(5), /not a \/64/],
    ['198.18.5.0-24&fd18:0:0:5::-64', dualValue(5).replace('fd00:2::5', 'fd18:0:0:9::1'), /inside the overlay/],
  ];
  for (const [key, value, why] of cases) {
    const v = validatePeerLease(key, value, DUAL, BACKENDS);
    t.true(v.ok, key);
    if (!v.ok) continue;
    t.truthy(v.lease.subnet, 'the IPv4 half stands');
    t.is(v.lease.subnetV6, undefined, `${key}: the IPv6 half is dropped`);
    t.regex(v.lease.ignored ?? '', why);
  }
  // An IPv6-only lease with a bad IPv6 half is no peer at all.
  const bad = validatePeerLease(
    '0.0.0.0-0&fd18:0:0:5::-64',
    '{"PublicIP":"0.0.0.0","PublicIPv6":"fe80::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:05"}}',
    V6ONLY,
    BACKENDS,
  );
  t.like(bad, { ok: false });
  t.like(validatePeerLease('0.0.0.0-0&fd18:0:0:5::-64', dualValue(5), V4, BACKENDS), {
    ok: false,
    reason: 'IPv6-only lease in an IPv4 network',
  });
});

test("fleet: a lease claiming this host's IPv6 subnet from another key is quarantined, not a peer", (t) => {
  const f = new Fleet(S, DUAL, BACKENDS, { v4: pfx('198.18.1.0/24'), v6: pfx('fd18:0:0:1::/64') });
  t.is(
    f.update(`${S}198.18.1.0-24&fd18:0:0:1::-64`, kv(`${S}198.18.1.0-24&fd18:0:0:1::-64`, dualValue(1))),
    undefined,
    'our own lease',
  );
  t.like(f.update(`${S}198.18.9.0-24&fd18:0:0:1::-64`, kv(`${S}198.18.9.0-24&fd18:0:0:1::-64`, dualValue(9))), {
    kind: 'quarantined',
    entry: { reason: "lease claims this host's own subnet" },
  });
  t.like(f.update(`${S}198.18.2.0-24&fd18:0:0:2::-64`, kv(`${S}198.18.2.0-24&fd18:0:0:2::-64`, dualValue(2))), {
    kind: 'peer',
  });
});

const facts: HostFacts = {
  iface: 'eth0',
  ifaceIP: ipOf('192.0.2.1'),
  ifaceMTU: 1500,
  publicIP: ipOf('192.0.2.1'),
  ifaceIPv6: ipOf('fd00:2::1'),
  publicIPv6: ipOf('fd00:2::1'),
  why: 'test',
};
const underlay: ObservedRoute[] = [
  { dst: pfx('192.0.2.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true },
  { dst: pfx('fd00:2::/64'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: false },
];
const peer = (n: number, cfg = DUAL, value = dualValue(n)): PeerLease => {
  const v = validatePeerLease(`198.18.${n}.0-24&fd18:0:0:${n}::-64`, value, cfg, BACKENDS);
  if (!v.ok) throw new Error(v.reason);
  return v.lease;
};
const OWN = { v4: pfx('198.18.1.0/24'), v6: pfx('fd18:0:0:1::/64') };

test('vxlan over IPv6: flannel-v6.<VNI> with its own MAC, the /128, and per peer a neighbour, an fdb entry and an onlink route', (t) => {
  const d = vxlan.desired({
    config: DUAL,
    own: OWN,
    facts,
    routes: underlay,
    peers: [peer(2), peer(3)],
    mtu: 1450,
    vtepMAC: '0e:11:11:11:11:11',
    vtepMACv6: '0e:66:66:66:66:66',
  });
  t.deepEqual(
    d.devices.map((x) => x.name),
    ['flannel.1', 'flannel-v6.1'],
  );
  const v6 = d.devices[1];
  t.like(v6, { kind: 'vxlan', vni: 1, port: 8472, mac: '0e:66:66:66:66:66', mtu: 1430 });
  t.deepEqual(v6?.addresses.map(formatPrefix), ['fd18:0:0:1::/128']);
  t.like(d.routes.get('fd18:0:0:2::/64'), { via: ipOf('fd18:0:0:2::'), dev: 'flannel-v6.1', onlink: true });
  t.like(d.neighs.get('fd18:0:0:2::'), { mac: '0e:00:00:00:06:02', dev: 'flannel-v6.1' });
  t.like(d.fdb.get('0e:00:00:00:06:02'), { dst: ipOf('fd00:2::2'), dev: 'flannel-v6.1' });
  t.like(d.routes.get('198.18.2.0/24'), { dev: 'flannel.1' }, 'and the IPv4 half as before');
  t.is(d.peersProgrammed, 2);
  t.deepEqual(d.skipped, []);
  // The device asks for what the kernel allows: at most the underlay − 70.
  const low = vxlan.desired({
    config: DUAL,
    own: OWN,
    facts,
    routes: underlay,
    peers: [],
    mtu: 1300,
    vtepMAC: '0e:11:11:11:11:11',
    vtepMACv6: '0e:66:66:66:66:66',
  });
  t.is(low.devices[1]?.mtu, 1300, 'a smaller overlay MTU (host.mtu) is kept');
});

test('vxlan: one MAC, one VTEP across both families; a v4-only host programs no IPv6', (t) => {
  // Peer 3 copies peer 2's IPv6 MAC as its IPv4 MAC: the older lease (peer 2) keeps it.
  const p2 = { ...peer(2), createRevision: '10' };
  const p3 = { ...peer(3, DUAL, dualValue(3, '0e:00:00:00:06:02')), createRevision: '20' };
  const d = vxlan.desired({
    config: DUAL,
    own: OWN,
    facts,
    routes: underlay,
    peers: [p3, p2],
    mtu: 1450,
    vtepMAC: '0e:11:11:11:11:11',
    vtepMACv6: '0e:66:66:66:66:66',
  });
  t.like(d.fdb.get('0e:00:00:00:06:02'), { dev: 'flannel-v6.1', dst: ipOf('fd00:2::2') });
  t.true(d.skipped.some((s) => s.subnetKey === p3.subnetKey && /already used by the older lease/.test(s.reason)));
  const v4only = vxlan.desired({
    config: V4,
    own: { v4: OWN.v4 },
    facts,
    routes: underlay,
    peers: [peer(2, V4)],
    mtu: 1450,
    vtepMAC: '0e:11:11:11:11:11',
  });
  t.deepEqual(
    v4only.devices.map((x) => x.name),
    ['flannel.1'],
  );
  t.deepEqual([...v4only.routes.keys()], ['198.18.2.0/24']);
  t.deepEqual(v4only.skipped, []);
});

test('IPv6-only vxlan: only flannel-v6.1, no IPv4 device or address', (t) => {
  const p = validatePeerLease(
    '0.0.0.0-0&fd18:0:0:2::-64',
    '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:2::2","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:02"}}',
    V6ONLY,
    BACKENDS,
  );
  if (!p.ok) {
    t.fail(p.reason);
    return;
  }
  const f6: HostFacts = { ...facts, ifaceIP: ipOf('0.0.0.0'), publicIP: ipOf('0.0.0.0') };
  const d = vxlan.desired({
    config: V6ONLY,
    own: { v6: OWN.v6 },
    facts: f6,
    routes: underlay,
    peers: [p.lease],
    mtu: 1450,
    vtepMAC: '0e:11:11:11:11:11',
    vtepMACv6: '0e:66:66:66:66:66',
  });
  t.deepEqual(
    d.devices.map((x) => x.name),
    ['flannel-v6.1'],
  );
  t.deepEqual([...d.routes.keys()], ['fd18:0:0:2::/64']);
  t.deepEqual(vxlan.deviceNames(V6ONLY), ['flannel-v6.1']);
  t.is(
    encodeLeaseAttrs(vxlan.leaseAttrs(V6ONLY, f6, '0e:11:11:11:11:11', undefined, '0e:66:66:66:66:66')),
    '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:2::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:66:66:66:66:66"}}',
    "flanneld's v6-only vxlan lease, byte for byte",
  );
});

test("lease values in flanneld's dual-stack format, byte for byte", (t) => {
  t.is(
    encodeLeaseAttrs(vxlan.leaseAttrs(DUAL, facts, '0e:11:11:11:11:11', undefined, '0e:66:66:66:66:66')),
    '{"PublicIP":"192.0.2.1","PublicIPv6":"fd00:2::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:11:11:11:11:11"},"BackendV6Data":{"VNI":1,"VtepMAC":"0e:66:66:66:66:66"}}',
  );
  const HG = config(
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"host-gw"}}',
  );
  t.is(
    encodeLeaseAttrs(hostGw.leaseAttrs(HG, facts, '')),
    '{"PublicIP":"192.0.2.1","PublicIPv6":"fd00:2::1","BackendType":"host-gw"}',
  );
  t.is(
    encodeLeaseAttrs(hostGw.leaseAttrs(config('{"Network":"198.18.0.0/16","Backend":{"Type":"host-gw"}}'), facts, '')),
    '{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"host-gw"}',
    'no IPv6 in the network: PublicIPv6 null, as flanneld',
  );
});

test('host-gw over IPv6: v6subnet via PublicIPv6 dev eth0 for adjacent peers; a routed one is skipped', (t) => {
  const HG = config(
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"host-gw"}}',
  );
  const hg = (n: number, pub6: string) => {
    const v = validatePeerLease(
      `198.18.${n}.0-24&fd18:0:0:${n}::-64`,
      `{"PublicIP":"192.0.2.${n}","PublicIPv6":"${pub6}","BackendType":"host-gw"}`,
      HG,
      BACKENDS,
    );
    if (!v.ok) throw new Error(v.reason);
    return v.lease;
  };
  const d = hostGw.desired({
    config: HG,
    own: OWN,
    facts,
    routes: underlay,
    peers: [hg(2, 'fd00:2::2'), hg(3, 'fd00:3::3')],
    mtu: 1500,
    vtepMAC: '',
  });
  t.like(d.routes.get('fd18:0:0:2::/64'), { via: ipOf('fd00:2::2'), dev: 'eth0', onlink: false });
  t.is(d.routes.get('fd18:0:0:3::/64'), undefined);
  t.true(
    d.skipped.some(
      (s) => s.subnetKey.startsWith('198.18.3.0-24') && /IPv6 half: .*not on eth0's L2 segment/.test(s.reason),
    ),
  );
  t.like(d.routes.get('198.18.3.0/24'), { via: ipOf('192.0.2.3') }, 'its IPv4 half is adjacent and programmed');
});

test('a key whose IPv6 half covers the whole space (0.0.0.0-0&::-0) makes allocation say "full" at once, not walk 2^64 subnets; a wide half is stepped over', (t) => {
  const wide = '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:2::9"}';
  // Without the step over it this call never returns (2^64 candidates): the answer itself is the check.
  const d = planAcquire({
    rangeV6: V6ONLY.ipv6!,
    leases: listing([{ key: '0.0.0.0-0&::-0', value: wide }]),
    hostID: 'me',
    publicIP: ipOf('0.0.0.0'),
    publicIPv6: ipOf('fd00:2::1'),
    rng: () => 0,
  });
  t.is(d.plan.kind, 'full');
  // A /52 half taken: the walk jumps past its 4,096 /64s to the first free one.
  const e = planAcquire({
    rangeV6: V6ONLY.ipv6!,
    leases: listing([{ key: '0.0.0.0-0&fd18::-52', value: wide }]),
    hostID: 'me',
    publicIP: ipOf('0.0.0.0'),
    publicIPv6: ipOf('fd00:2::1'),
    rng: () => 0,
  });
  t.like(e.plan, { kind: 'create', subnets: { v6: pfx('fd18:0:0:1000::/64') } });
});

test('one subnet in two keys (S-24 and S-24&V-64): the older lease keeps the route, the newer is skipped (vxlan and host-gw)', (t) => {
  const older = { ...peer(2), createRevision: '10' };
  const v = validatePeerLease(
    '198.18.2.0-24',
    '{"PublicIP":"192.0.2.99","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:04:99"}}',
    DUAL,
    BACKENDS,
  );
  if (!v.ok) {
    t.fail(v.reason);
    return;
  }
  const newer = { ...v.lease, createRevision: '20' };
  for (const order of [
    [older, newer],
    [newer, older],
  ]) {
    const d = vxlan.desired({
      config: DUAL,
      own: OWN,
      facts,
      routes: underlay,
      peers: order,
      mtu: 1450,
      vtepMAC: '0e:11:11:11:11:11',
      vtepMACv6: '0e:66:66:66:66:66',
    });
    t.like(d.routes.get('198.18.2.0/24'), { via: ipOf('198.18.2.0') });
    t.like(d.neighs.get('198.18.2.0'), { mac: '0e:00:00:00:04:02' }, "the older lease's MAC, whatever the order");
    t.false(d.fdb.has('0e:00:00:00:04:99'));
    t.true(
      d.skipped.some(
        (s) =>
          s.subnetKey === '198.18.2.0-24' &&
          /also claimed by the older lease 198\.18\.2\.0-24&fd18:0:0:2::-64/.test(s.reason),
      ),
    );
  }
  const HG = config(
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"host-gw"}}',
  );
  const hg = (key: string, pub: string, rev: string) => {
    const x = validatePeerLease(key, `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"host-gw"}`, HG, BACKENDS);
    if (!x.ok) throw new Error(x.reason);
    return { ...x.lease, createRevision: rev };
  };
  const d = hostGw.desired({
    config: HG,
    own: OWN,
    facts,
    routes: underlay,
    peers: [hg('198.18.3.0-24', '192.0.2.77', '20'), hg('198.18.3.0-24&fd18:0:0:3::-64', '192.0.2.3', '10')],
    mtu: 1500,
    vtepMAC: '',
  });
  t.like(d.routes.get('198.18.3.0/24'), { via: ipOf('192.0.2.3') });
  // An IPv6 half without a PublicIPv6 (validation drops such a half; a lease built by hand): skipped for that, and it claims nothing.
  const bare = { ...hg('198.18.4.0-24', '192.0.2.4', '30'), subnetV6: pfx('fd18:0:0:4::/64') };
  const e = hostGw.desired({ config: HG, own: OWN, facts, routes: underlay, peers: [bare], mtu: 1500, vtepMAC: '' });
  t.deepEqual(
    e.skipped.filter((s) => s.reason.startsWith('IPv6 half: ')),
    [{ subnetKey: '198.18.4.0-24', reason: 'IPv6 half: no public address' }],
  );
});

test('a lease with one VTEP MAC for both halves: the IPv4 half keeps the fdb entry, the IPv6 half is skipped', (t) => {
  const same = peer(4, DUAL, dualValue(4, '0e:00:00:00:aa:04', '0e:00:00:00:aa:04'));
  const d = vxlan.desired({
    config: DUAL,
    own: OWN,
    facts,
    routes: underlay,
    peers: [same],
    mtu: 1450,
    vtepMAC: '0e:11:11:11:11:11',
    vtepMACv6: '0e:66:66:66:66:66',
  });
  t.like(d.fdb.get('0e:00:00:00:aa:04'), { dev: 'flannel.1', dst: ipOf('192.0.2.4') });
  t.false(d.routes.has('fd18:0:0:4::/64'));
  t.true(d.skipped.some((s) => /IPv6 half: VtepMAC 0e:00:00:00:aa:04 is also its IPv4 half's/.test(s.reason)));
});
