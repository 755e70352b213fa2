// The doctor's judgement on observation fixtures: healthy, and each fault an operator meets.
import test from 'ava';
import { type IP, type Prefix, parseIPv4, parsePrefix } from '../../src/core/net/cidr.js';
import type { DesiredDatapath, ObservedDatapath } from '../../src/core/datapath/datapath.js';
import { diagnose, doctorJson, doctorOk, renderDoctor } from '../../src/core/doctor/doctor.js';
import { type DoctorObservations, type Finding } from '../../src/core/doctor/doctor-observations.js';
import type { PeerObservation } from '../../src/core/doctor/doctor-observations.js';
import type { StatusReport } from '../../src/core/health/health.js';
import type { LeaseRow } from '../../src/core/fleet/lease-report.js';
import { parseMatching, parseOffload, parsePing, parseRouteGet } from '../../src/adapters/probe.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { vxlan } from '../../src/backends/vxlan.js';
import { BACKENDS } from '../helpers/backends.js';

const P = (s: string): Prefix => parsePrefix(s) as Prefix;
const I = (s: string): IP => parseIPv4(s) as IP;
const MAC2 = '0e:00:00:00:00:02';
/** The network the observations are of: what its backend's doctor descriptor says (UDP 8472, 50 bytes). */
const VXLAN_NET = checkNetworkConfig(
  decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}', BACKENDS),
);

const FILTER = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:FLANNEL-FWD - [0:0]
-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD
-A FLANNEL-FWD -s 198.18.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
-A FLANNEL-FWD -d 198.18.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT
COMMIT
`;

const report = {
  ready: true,
  reasons: [],
  warnings: [],
  status: 'leased 198.18.1.0/24, 1 peer',
  lease: { subnet: '198.18.1.0/24' },
} as unknown as StatusReport;

const row = (subnet: string, publicIP: string, mac: string, patch: Partial<LeaseRow> = {}): LeaseRow => ({
  subnet,
  ipv6Subnet: null,
  publicIP,
  publicIPv6: null,
  backendType: 'vxlan',
  vtepMAC: mac,
  vtepMACv6: null,
  vni: 1,
  expiresAt: null,
  ttlSeconds: 80000,
  host: null,
  key: `/coreos.com/network/subnets/${subnet.replace('/', '-')}`,
  status: 'ok',
  malformed: null,
  ...patch,
});

const desired: DesiredDatapath = {
  devices: [
    {
      kind: 'vxlan',
      name: 'flannel.1',
      vni: 1,
      local: I('192.0.2.1'),
      underlay: 'eth0',
      port: 8472,
      learning: false,
      gbp: false,
      mtu: 1450,
      mac: '0e:00:00:00:00:01',
      addresses: [P('198.18.1.0/32')],
    },
  ],
  routes: new Map([
    ['198.18.2.0/24', { dst: P('198.18.2.0/24'), via: I('198.18.2.0'), dev: 'flannel.1', onlink: true }],
  ]),
  neighs: new Map([['198.18.2.0', { ip: I('198.18.2.0'), mac: MAC2, dev: 'flannel.1' }]]),
  fdb: new Map([[MAC2, { mac: MAC2, dst: I('192.0.2.2'), dev: 'flannel.1' }]]),
  skipped: [],
  peersProgrammed: 1,
};

const observed: ObservedDatapath = {
  devices: new Map([
    [
      'flannel.1',
      {
        name: 'flannel.1',
        kind: 'vxlan',
        vni: 1,
        port: 8472,
        mtu: 1450,
        mac: '0e:00:00:00:00:01',
        up: true,
        addrs: [P('198.18.1.0/32')],
      },
    ],
  ]),
  routes: [
    { dst: P('0.0.0.0/0'), via: I('192.0.2.254'), dev: 'eth0', proto: 'boot', onlink: false, scopeLink: false },
    { dst: P('198.18.2.0/24'), via: I('198.18.2.0'), dev: 'flannel.1', proto: '175', onlink: true, scopeLink: false },
  ],
  neighs: [{ ip: I('198.18.2.0'), mac: MAC2, dev: 'flannel.1' }],
  fdb: [{ mac: MAC2, dst: I('192.0.2.2'), dev: 'flannel.1' }],
};

const peer: PeerObservation = {
  subnet: P('198.18.2.0/24'),
  publicIP: '192.0.2.2',
  target: I('198.18.2.0'),
  source: I('198.18.1.0'),
  lookup: { ok: true, dev: 'flannel.1', gateway: '198.18.2.0' },
  matching: [
    { dst: '198.18.2.0/24', type: 'unicast', dev: 'flannel.1', gateway: '198.18.2.0', proto: '175' },
    { dst: 'default', type: 'unicast', dev: 'eth0', gateway: '192.0.2.254' },
  ],
  underlay: { sent: 1, received: 1 },
  overlay: { sent: 2, received: 2 },
  df: { sent: 2, received: 2 },
};

const healthy: DoctorObservations = {
  status: { kind: 'answered', url: 'http://127.0.0.1:9473/status', report },
  etcd: {
    ok: true,
    backendType: 'vxlan',
    doctor: vxlan.doctor(VXLAN_NET),
    network: P('198.18.0.0/16'),
    rows: [row('198.18.1.0/24', '192.0.2.1', '0e:00:00:00:00:01'), row('198.18.2.0/24', '192.0.2.2', MAC2)],
    own: { subnet: P('198.18.1.0/24'), publicIP: '192.0.2.1', ttlSeconds: 80000, how: 'its owner record' },
  },
  observed,
  desired,
  device: 'flannel.1',
  iface: 'eth0',
  mtu: 1450,
  peers: [peer],
  peersOmitted: 0,
  peerCap: 20,
  filterTable: { ok: true, text: FILTER },
  ipForward: '1',
  rpFilter: { all: 2, eth0: 0, 'flannel.1': 0 },
  offload: { kind: 'read', device: 'flannel.1', txChecksumIPGeneric: 'off' },
  clock: { ok: true, skewMs: 300, source: 'Date header' },
};

const find = (fs: readonly Finding[], check: string, verdict?: string): Finding | undefined =>
  fs.find((f) => f.check === check && (verdict === undefined || f.verdict === verdict));
const withPeer = (patch: Partial<PeerObservation>): DoctorObservations => ({
  ...healthy,
  peers: [{ ...peer, ...patch }],
});

test('a healthy host: every check ok, exit 0, the JSON document is {ok, findings}', (t) => {
  const fs = diagnose(healthy);
  t.deepEqual(
    fs.filter((f) => f.verdict !== 'ok'),
    [],
  );
  t.true(doctorOk(fs));
  for (const c of [
    'agent',
    'lease',
    'ip_forward',
    'forward',
    'rp_filter',
    'checksum-offload',
    'clock',
    'duplicates',
    'device',
    'datapath',
    'route-lookup',
    'overlay',
    'underlay',
    'mtu',
  ])
    t.truthy(find(fs, c, 'ok'), c);
  t.deepEqual(Object.keys(doctorJson(fs)), ['ok', 'findings']);
  t.regex(renderDoctor(fs), /\nall good: \d+ ok, 0 warning\(s\), 0 skipped\n$/);
});

test('the agent not answering is a fail with the fix; the other checks still run', (t) => {
  const fs = diagnose({
    ...healthy,
    status: { kind: 'silent', url: 'http://127.0.0.1:9473/status', error: 'connect ECONNREFUSED' },
  });
  t.regex(find(fs, 'agent', 'fail')?.what ?? '', /^agent not running/);
  t.regex(find(fs, 'agent')?.fix ?? '', /systemctl start weft/);
  t.truthy(find(fs, 'overlay', 'ok'));
  t.false(doctorOk(fs));
  t.regex(renderDoctor(fs), /FAIL {2}agent: agent not running[^\n]*\n {6}fix: start weft/);
});

test('something else answering on host.listen is a fail that says so, with where to look; the other checks still run', (t) => {
  const fs = diagnose({
    ...healthy,
    status: {
      kind: 'foreign',
      url: 'http://127.0.0.1:9473/status',
      reason: 'peers.known is a string, expected a number\x1b[2J',
    },
  });
  t.is(
    find(fs, 'agent', 'fail')?.what,
    "what answers on http://127.0.0.1:9473/status is not weft's status (peers.known is a string, expected a number\\x1b[2J): another process may hold host.listen",
  );
  t.regex(find(fs, 'agent')?.fix ?? '', /ss -ltnp/);
  t.truthy(find(fs, 'overlay', 'ok'));
  t.false(doctorOk(fs));
});

test('a not-ready daemon and a missing lease fail', (t) => {
  const notReady = { ...report, ready: false, reasons: ['etcd unreachable for 90s'] } as unknown as StatusReport;
  t.regex(
    find(diagnose({ ...healthy, status: { kind: 'answered', url: 'u', report: notReady } }), 'agent', 'fail')?.what ??
      '',
    /not ready: etcd unreachable/,
  );
  if (!healthy.etcd.ok) return;
  t.regex(
    find(diagnose({ ...healthy, etcd: { ...healthy.etcd, own: undefined } }), 'lease', 'fail')?.what ?? '',
    /holds no lease/,
  );
  t.regex(
    find(diagnose({ ...healthy, etcd: { ok: false, error: 'deadline exceeded' } }), 'lease', 'fail')?.what ?? '',
    /etcd is unreachable/,
  );
});

test("the peer's route deleted: the datapath finding names the route and the fix; the overlay failure points at it", (t) => {
  const fs = diagnose({
    ...healthy,
    observed: { ...observed, routes: observed.routes.slice(0, 1) },
    peers: [{ ...peer, lookup: { ok: true, dev: 'eth0', gateway: '192.0.2.254' }, overlay: { sent: 2, received: 0 } }],
  });
  t.is(find(fs, 'datapath', 'fail')?.what, 'the route 198.18.2.0/24 via 198.18.2.0 dev flannel.1 onlink is missing');
  t.regex(find(fs, 'datapath')?.fix ?? '', /restart weft/);
  t.regex(
    find(fs, 'route-lookup', 'fail')?.what ?? '',
    /via 192\.0\.2\.254 dev eth0.*weft's route is missing or wrong/,
  );
  t.regex(find(fs, 'overlay', 'fail')?.what ?? '', /the datapath above is wrong/);
  t.falsy(find(fs, 'underlay', 'fail'), 'not blamed on the underlay');
});

test('a wrong neighbour MAC or fdb destination is named', (t) => {
  const fs = diagnose({
    ...healthy,
    observed: {
      ...observed,
      neighs: [{ ip: I('198.18.2.0'), mac: '0e:00:00:00:00:99', dev: 'flannel.1' }],
      fdb: [{ mac: MAC2, dst: I('192.0.2.9'), dev: 'flannel.1' }],
    },
  });
  const what = find(fs, 'datapath', 'fail')?.what ?? '';
  t.regex(what, /neighbour 198\.18\.2\.0 has MAC 0e:00:00:00:00:99, the lease's VtepMAC is 0e:00:00:00:00:02/);
  t.regex(what, /fdb entry for 0e:00:00:00:00:02 sends to 192\.0\.2\.9, the lease's PublicIP is 192\.0\.2\.2/);
});

test("a foreign more specific route shadowing weft's is named, with the command to remove it", (t) => {
  const fs = diagnose(
    withPeer({
      lookup: { ok: false, error: 'RTNETLINK answers: Invalid argument' },
      matching: [{ dst: '198.18.2.0/25', type: 'blackhole' }, ...peer.matching],
      overlay: { sent: 2, received: 0 },
    }),
  );
  const f = find(fs, 'route-lookup', 'fail');
  t.regex(f?.what ?? '', /the more specific route blackhole 198\.18\.2\.0\/25 shadows weft's 198\.18\.2\.0\/24/);
  t.is(f?.fix, 'remove the shadowing route if nothing needs it: ip route del blackhole 198.18.2.0/25');
  const other = diagnose(
    withPeer({
      lookup: { ok: true, dev: 'eth1' },
      matching: [{ dst: '198.18.2.0/26', type: 'unicast', dev: 'eth1', proto: 'static' }, ...peer.matching],
    }),
  );
  t.regex(
    find(other, 'route-lookup', 'fail')?.what ?? '',
    /sends 198\.18\.2\.0 dev eth1.*198\.18\.2\.0\/26 dev eth1 proto static shadows it/,
  );
});

test('UDP to the vxlan port dropped: underlay answers, overlay does not, datapath right', (t) => {
  const fs = diagnose(withPeer({ overlay: { sent: 2, received: 0 }, df: { sent: 2, received: 0 } }));
  const u = find(fs, 'underlay', 'fail');
  t.regex(u?.what ?? '', /UDP 8472 is probably dropped between here and the peer 192\.0\.2\.2/);
  t.regex(u?.fix ?? '', /firewalls \/ security groups for UDP 8472/);
  t.truthy(find(fs, 'overlay', 'fail'));
  t.truthy(find(fs, 'mtu', 'skip'), 'no MTU verdict without a working overlay');
});

test('the peer unreachable on the underlay too', (t) => {
  const fs = diagnose(withPeer({ overlay: { sent: 2, received: 0 }, underlay: { sent: 1, received: 0 } }));
  t.regex(find(fs, 'underlay', 'fail')?.what ?? '', /peer is down or unreachable/);
});

test('an MTU black hole: small packets pass, DF packets of the overlay MTU do not', (t) => {
  const fs = diagnose(withPeer({ df: { sent: 2, received: 0 } }));
  const f = find(fs, 'mtu', 'fail');
  t.regex(f?.what ?? '', /^MTU black hole: .*overlay MTU \(1450 bytes\)/);
  t.regex(f?.fix ?? '', /host\.mtu/);
  const local = find(
    diagnose(withPeer({ df: { sent: 0, received: 0, error: 'ping: local error: message too long, mtu=1400' } })),
    'mtu',
    'fail',
  );
  t.regex(local?.what ?? '', /cannot leave this host/);
});

test("FORWARD DROP without weft's chain fails; with ACCEPT it is a warning; a DROP before the jump is a warning", (t) => {
  const noJump = FILTER.replace(/^-A FORWARD .*\n/m, '');
  const f = find(diagnose({ ...healthy, filterTable: { ok: true, text: noJump } }), 'forward', 'fail');
  t.is(
    f?.what,
    'forwarded container traffic is dropped: the FORWARD policy is DROP and there is no jump from FORWARD to FLANNEL-FWD',
  );
  t.regex(f?.fix ?? '', /FLANNEL-FWD accept rules: restart weft/);
  t.truthy(
    find(
      diagnose({ ...healthy, filterTable: { ok: true, text: noJump.replace(':FORWARD DROP', ':FORWARD ACCEPT') } }),
      'forward',
      'warn',
    ),
  );
  const flushed = FILTER.replace(/^-A FLANNEL-FWD .*\n/gm, '');
  t.regex(
    find(diagnose({ ...healthy, filterTable: { ok: true, text: flushed } }), 'forward', 'fail')?.what ?? '',
    /FLANNEL-FWD does not accept 198\.18\.0\.0\/16 both ways/,
  );
  const dropFirst = FILTER.replace('-A FORWARD -m comment', '-A FORWARD -j DROP\n-A FORWARD -m comment');
  t.truthy(find(diagnose({ ...healthy, filterTable: { ok: true, text: dropFirst } }), 'forward', 'warn'));
});

test('strict rp_filter is a named risk with the loose-mode fix, not a failure', (t) => {
  const fs = diagnose({ ...healthy, rpFilter: { all: 1, eth0: 0, 'flannel.1': 0 } });
  const f = find(fs, 'rp_filter', 'warn');
  t.regex(f?.what ?? '', /net\.ipv4\.conf\.all\.rp_filter=1\) is a risk/);
  t.is(f?.fix, 'use loose mode: sysctl -w net.ipv4.conf.all.rp_filter=2 (and in /etc/sysctl.d)');
  t.true(doctorOk(fs));
  const dev = find(diagnose({ ...healthy, rpFilter: { all: 0, eth0: 1 } }), 'rp_filter', 'warn');
  t.regex(dev?.fix ?? '', /net\.ipv4\.conf\.eth0\.rp_filter=2/);
});

test('IPv4 forwarding off fails', (t) => {
  t.regex(find(diagnose({ ...healthy, ipForward: '0' }), 'ip_forward', 'fail')?.fix ?? '', /net\.ipv4\.ip_forward=1/);
});

test('tx checksum offload on the vxlan device is a warning with the ethtool fix; no ethtool is a skip', (t) => {
  t.regex(
    find(
      diagnose({ ...healthy, offload: { kind: 'read', device: 'flannel.1', txChecksumIPGeneric: 'on' } }),
      'checksum-offload',
      'warn',
    )?.fix ?? '',
    /ethtool -K flannel\.1 tx-checksum-ip-generic off/,
  );
  t.truthy(find(diagnose({ ...healthy, offload: { kind: 'no-ethtool' } }), 'checksum-offload', 'skip'));
});

test('clock skew against etcd above 5 s is a warning', (t) => {
  t.regex(
    find(diagnose({ ...healthy, clock: { ok: true, skewMs: -12_000, source: 'Date header' } }), 'clock', 'warn')
      ?.what ?? '',
    /12\.0 s behind etcd's/,
  );
  t.truthy(find(diagnose({ ...healthy, clock: { ok: true, skewMs: 4000, source: 'Date header' } }), 'clock', 'ok'));
});

test('duplicates in etcd: overlapping subnets and one VTEP MAC fail, one public IP warns', (t) => {
  if (!healthy.etcd.ok) return;
  const rows = [
    row('198.18.1.0/24', '192.0.2.1', '0e:00:00:00:00:01'),
    row('198.18.0.0/23', '192.0.2.5', '0e:00:00:00:00:05', { status: 'stranded', malformed: 'stranded: a /23' }),
    row('198.18.2.0/24', '192.0.2.2', MAC2),
    row('198.18.3.0/24', '192.0.2.2', MAC2, { status: 'quarantined', malformed: 'VtepMAC already used' }),
  ];
  const fs = diagnose({ ...healthy, etcd: { ...healthy.etcd, rows } });
  const dup = fs.filter((f) => f.check === 'duplicates');
  t.true(
    dup.some(
      (f) =>
        f.verdict === 'fail' && /overlapping subnets in etcd: 198\.18\.1\.0\/24 and 198\.18\.0\.0\/23/.test(f.what),
    ),
  );
  t.true(dup.some((f) => f.verdict === 'fail' && /VTEP MAC 0e:00:00:00:00:02 is in 2 leases/.test(f.what)));
  t.true(dup.some((f) => f.verdict === 'warn' && /public IP 192\.0\.2\.2 is in 2 leases/.test(f.what)));
});

test('untrusted text from etcd and the kernel is escaped in findings', (t) => {
  const hostile: DoctorObservations = {
    ...healthy,
    desired: { ...desired, skipped: [{ subnetKey: '198.18.9.0-24', reason: 'backend \u001b[31mevil\n is not vxlan' }] },
  };
  const f = find(diagnose(hostile), 'peers', 'warn');
  t.is(f?.what, 'not programmed on this host: backend \\x1b[31mevil\\n is not vxlan');
  t.false(renderDoctor(diagnose(hostile)).includes('\u001b'), 'no raw escape reaches the terminal');
});

test('--peer matching nothing fails; peers over the cap are reported as not probed', (t) => {
  t.truthy(find(diagnose({ ...healthy, peers: [], peerFilterUnmatched: '203.0.113.9' }), 'peers', 'fail'));
  t.regex(
    find(diagnose({ ...healthy, peersOmitted: 5 }), 'peers', 'skip')?.what ?? '',
    /5 more peer\(s\) not probed: at most 20/,
  );
});

test('probe parsers on captured output', (t) => {
  t.deepEqual(
    parsePing(
      '--- 198.18.2.0 ping statistics ---\n2 packets transmitted, 2 received, 0% packet loss, time 201ms\n',
      '',
    ),
    { sent: 2, received: 2 },
  );
  t.deepEqual(
    parsePing(
      '2 packets transmitted, 0 received, +2 errors, 100% packet loss\n',
      'ping: local error: message too long, mtu=1400\n',
    ),
    { sent: 2, received: 0, error: 'ping: local error: message too long, mtu=1400' },
  );
  t.deepEqual(
    parseRouteGet(
      '[{"dst":"198.18.2.0","gateway":"198.18.2.0","dev":"flannel.1","prefsrc":"198.18.1.0","flags":["onlink"],"uid":0,"cache":[]}]',
    ),
    { ok: true, dev: 'flannel.1', gateway: '198.18.2.0' },
  );
  t.deepEqual(
    parseMatching(
      '[{"type":"blackhole","dst":"198.18.2.0/25","flags":[]},{"dst":"198.18.2.0/24","gateway":"192.0.2.5","dev":"d0","flags":[]}]',
    ),
    [
      { dst: '198.18.2.0/25', type: 'blackhole' },
      { dst: '198.18.2.0/24', type: 'unicast', dev: 'd0', gateway: '192.0.2.5' },
    ],
  );
  t.is(
    parseOffload(
      'Features for flannel.1:\nrx-checksumming: on\ntx-checksumming: on\n\ttx-checksum-ipv4: off [fixed]\n\ttx-checksum-ip-generic: on\n',
    ),
    'on',
  );
  t.is(parseOffload('tx-checksumming: off\n\ttx-checksum-ip-generic: off\n'), 'off');
});
