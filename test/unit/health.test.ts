import test from 'ava';
import {
  type HealthSnapshot,
  etcdReachable as etcdReachableOf,
  readiness,
  reconcilerHealthy,
  renderStatus,
  statusLine,
  statusReport,
} from '../../src/core/health/health.js';
import { podmanNetworkFor } from '../../src/core/outputs/outputs.js';
import { parsePrefix } from '../../src/core/net/cidr.js';
import { NOW, healthSnapshot } from '../helpers/health-snapshot.js';

const base: HealthSnapshot = healthSnapshot();
const at = (patch: Partial<HealthSnapshot>): HealthSnapshot => ({ ...base, ...patch });

test('ready when running with a fresh lease, a good last pass, a live loop and etcd within grace', (t) => {
  t.deepEqual(readiness(base), { ready: true, reasons: [], warnings: [] });
  t.is(statusLine(base), 'leased 10.5.3.0/24, 12 peers');
});

test('a host identity clash resolved by moving stays ready, with a warning everywhere an operator looks', (t) => {
  const clash = at({
    identity: { hostID: 'abc-1', source: 'replaced after a clash', clash: 'host identity clash: vm1 ...' },
  });
  t.deepEqual(readiness(clash), { ready: true, reasons: [], warnings: ['host identity clash: vm1 ...'] });
  t.regex(statusLine(clash), /WARNING: host identity clash/);
  t.deepEqual(statusReport(clash).warnings, ['host identity clash: vm1 ...']);
  t.regex(renderStatus(statusReport(clash), clash.nowMs), /WARNING +host identity clash: vm1/);
});

test('not ready while starting or stopping, and the step is named', (t) => {
  t.deepEqual(readiness(at({ phase: 'starting', step: 'acquiring a subnet lease' })).reasons, [
    'starting: acquiring a subnet lease',
  ]);
  t.is(statusLine(at({ phase: 'starting', step: 'connecting to etcd' })), 'starting: connecting to etcd');
  t.false(readiness(at({ phase: 'stopping' })).ready);
});

test('the lease: lost, expired, renewal overdue past the grace period', (t) => {
  const lease = base.lease;
  if (!lease) throw new Error('fixture');
  t.deepEqual(readiness(at({ lease: { ...lease, reacquiring: true } })).reasons, [
    'lease on 10.5.3.0/24 lost; re-acquiring',
  ]);
  t.deepEqual(readiness(at({ lease: { ...lease, expiresAtMs: NOW - 5000 } })).reasons, [
    'lease on 10.5.3.0/24 expired 5s ago',
  ]);
  t.true(
    readiness(at({ lease: { ...lease, renewDueAtMs: NOW - 59_000 } })).ready,
    'overdue within grace is still ready',
  );
  t.deepEqual(readiness(at({ lease: { ...lease, renewDueAtMs: NOW - 61_000 } })).reasons, [
    'lease renewal overdue by 1m1s',
  ]);
  const noLease: HealthSnapshot = { ...base };
  delete (noLease as { lease?: unknown }).lease;
  t.deepEqual(readiness(noLease).reasons, ['no lease']);
});

test('etcd: not ready only past the grace period, and ready again when it answers', (t) => {
  t.true(readiness(at({ etcd: { ...base.etcd, lastOkAtMs: NOW - 60_000 } })).ready);
  const gone = at({ etcd: { ...base.etcd, lastOkAtMs: NOW - 61_000, lastError: 'etcd get: unreachable' } });
  t.deepEqual(readiness(gone).reasons, ['etcd unreachable for 1m1s (grace 1m): etcd get: unreachable']);
  t.is(
    statusLine(gone),
    'leased 10.5.3.0/24, 12 peers; NOT READY: etcd unreachable for 1m1s (grace 1m): etcd get: unreachable',
  );
  t.deepEqual(readiness(at({ etcd: { ...base.etcd, lastOkAtMs: 0 } })).reasons, ['etcd unreachable (grace 1m)']);
});

test('the reconcile loop: a failed pass, a pass running too long, no pass for too long', (t) => {
  const r = base.reconcile;
  t.deepEqual(
    readiness(at({ reconcile: { ...r, lastPassOk: false, lastError: 'ip: RTNETLINK answers: File exists' } })).reasons,
    ['last reconcile failed: ip: RTNETLINK answers: File exists'],
  );
  const stuck = { ...r, runningSinceMs: NOW - 16_000 };
  t.false(reconcilerHealthy(stuck, NOW, 15_000));
  t.true(reconcilerHealthy({ ...r, runningSinceMs: NOW - 14_000 }, NOW, 15_000), 'a long pass is not yet stuck');
  t.deepEqual(readiness(at({ reconcile: stuck })).reasons, ['reconciler stuck: a pass has been running for 16s']);
  const stalled = { ...r, lastPassAtMs: NOW - 20_000 };
  t.false(reconcilerHealthy(stalled, NOW, 15_000));
  t.deepEqual(readiness(at({ reconcile: stalled })).reasons, ['reconciler stalled: no pass for 20s']);
  t.deepEqual(readiness(at({ reconcile: { ...r, passes: 0, lastPassAtMs: 0, lastPassOk: false } })).reasons, [
    'no reconcile pass yet',
  ]);
});

test('an output file that cannot be written: not ready, naming the file and why (once), ready again when written', (t) => {
  const err = 'cannot write /run/flannel/subnet.env: ENOTDIR';
  const failing = at({
    reconcile: { ...base.reconcile, lastPassOk: false, lastError: err },
    outputs: { failing: { '/run/flannel/subnet.env': err } },
  });
  t.deepEqual(readiness(failing).reasons, [`output /run/flannel/subnet.env not written: ${err}`]);
  t.true(readiness(at({ outputs: { failing: {} } })).ready);
});

test('STATUS= mentions peers not programmed and malformed leases', (t) => {
  t.is(
    statusLine(at({ peers: { known: 3, programmed: 1, rejected: 2, malformed: 1 } })),
    'leased 10.5.3.0/24, 1 peer, 2 not programmed, 1 malformed lease ignored',
  );
});

test("the status report is JSON with ISO times, and renders for a human against the reader's clock", (t) => {
  const rep = statusReport(base);
  t.like(rep, {
    ready: true,
    phase: 'running',
    status: 'leased 10.5.3.0/24, 12 peers',
    uptimeSeconds: 60,
    lease: { subnet: '10.5.3.0/24', secondsToExpiry: 3600, lastRenewedAt: new Date(NOW - 10_000).toISOString() },
  });
  t.deepEqual(JSON.parse(JSON.stringify(rep)), rep);
  const text = renderStatus(rep, NOW + 1000);
  t.true(text.startsWith('leased 10.5.3.0/24, 12 peers\n'));
  t.regex(text, /lease +10\.5\.3\.0\/24 for 192\.0\.2\.3, expires in 1h, renewed 11s ago/);
  t.regex(text, /drift +repaired route 2/);
  t.regex(text, /etcd +reachable, last ok 2s ago, 0 request errors, 1 watch restarts/);
  const bad = renderStatus(statusReport(at({ etcd: { ...base.etcd, lastOkAtMs: NOW - 120_000 } })), NOW);
  t.regex(bad, /ready +NO: etcd unreachable for 2m/);
});

test('Podman network: named after the file, gateway .1, MTU, and the created time of the file already there', (t) => {
  const subnet = parsePrefix('10.5.3.0/24');
  if (!subnet) throw new Error('fixture');
  const first = podmanNetworkFor({
    file: '/etc/containers/networks/weft.json',
    id: 'a'.repeat(64),
    subnet,
    mtu: 1450,
    previous: undefined,
    nowISO: '2026-01-01T00:00:00.000Z',
  });
  const doc = JSON.parse(first) as Record<string, unknown>;
  t.like(doc, {
    name: 'weft',
    id: 'a'.repeat(64),
    driver: 'bridge',
    network_interface: 'weft0',
    created: '2026-01-01T00:00:00.000Z',
    subnets: [{ subnet: '10.5.3.0/24', gateway: '10.5.3.1' }],
    options: { mtu: '1450' },
  });
  const again = podmanNetworkFor({
    file: '/etc/containers/networks/weft.json',
    id: 'a'.repeat(64),
    subnet,
    mtu: 1450,
    previous: first,
    nowISO: '2026-06-01T00:00:00.000Z',
  });
  t.is(again, first, 'an unchanged lease renders byte-identical (no rewrite)');
  t.regex(
    podmanNetworkFor({ file: '/x/weft.json', id: 'b', subnet, mtu: 1400, previous: '{not json', nowISO: 'T' }),
    /"created": "T"/,
  );
});

test('weft status escapes what the daemon reports: a hostile error adds no line and no terminal control', (t) => {
  const hostile = 'boom\n  ready      yes\x1b[2J\u202eevil';
  const rep = statusReport(
    at({
      reconcile: { ...base.reconcile, lastPassOk: false, lastError: hostile },
      etcd: { ...base.etcd, lastError: `${'x'.repeat(400)}\n` },
    }),
  );
  const text = renderStatus(rep, NOW);
  t.is(
    text.split('\n').length,
    renderStatus(statusReport(base), NOW).split('\n').length,
    'the same number of lines as a clean report',
  );
  // eslint-disable-next-line no-control-regex
  t.false(/[\x1b\u202e]/.test(text));
  t.regex(text, /FAILED \(boom\\n {2}ready {6}yes\\x1b\[2J\\u202eevil\)/);
  t.regex(rep.etcd.lastError, /^x{256}\.\.\.\[145 more chars\]$/, 'the JSON report caps an error at 256 characters');
});

test('running from the cached state: ready with a warning, etcd out of reach and the renewal overdue are not reasons', (t) => {
  const lease = base.lease;
  if (!lease) throw new Error('fixture');
  const since = NOW - 120_000;
  const s = at({
    degraded: { sinceMs: since },
    etcd: { lastOkAtMs: 0, lastError: 'no answer', requestErrors: 9, watchRestarts: 0 },
    lease: { ...lease, renewDueAtMs: NOW - 600_000, lastRenewedAtMs: 0 },
  });
  const warning = `running from cached state, etcd unreachable since ${new Date(since).toISOString()}`;
  t.deepEqual(readiness(s), { ready: true, reasons: [], warnings: [warning] });
  t.is(statusLine(s), `leased 10.5.3.0/24, 12 peers; DEGRADED: ${warning}`);
  t.is(statusReport(s).degradedSince, new Date(since).toISOString());
  t.regex(renderStatus(statusReport(s), NOW), /WARNING +running from cached state/);
  // The cached lease running out still makes the host not ready.
  t.deepEqual(readiness(at({ ...s, lease: { ...lease, expiresAtMs: NOW - 1000 } })).reasons, [
    'lease on 10.5.3.0/24 expired 1s ago',
  ]);
  t.is(statusReport(base).degradedSince, null);
});

test('a live config change: an unusable stored config and a pending Docker restart are warnings, not reasons; shown in status', (t) => {
  const s = at({
    config: {
      problem:
        'the stored network config is not in use (backend type "udp" is not supported by weft (vxlan, host-gw)); running on with the last one',
      restartNeeded: { sinceMs: NOW - 60_000, changes: ['FLANNEL_MTU 1450 -> 1350'] },
    },
  });
  const r = readiness(s);
  t.true(r.ready);
  t.deepEqual(r.warnings, [
    'the stored network config is not in use (backend type "udp" is not supported by weft (vxlan, host-gw)); running on with the last one',
    `restart Docker (or Podman): the network config changed at ${new Date(NOW - 60_000).toISOString()} and its bridge does not use the new FLANNEL_MTU 1450 -> 1350 until then`,
  ]);
  t.regex(
    statusLine(s),
    /; WARNING: the stored network config is not in use, see weft status; RESTART DOCKER: the bridge outputs changed$/,
  );
  t.regex(renderStatus(statusReport(s), NOW), /^ {2}WARNING +restart Docker \(or Podman\): /m);
  t.deepEqual(readiness(at({ config: { problem: '' } })).warnings, []);
});

test("weft status escapes every string of the report, the host identity's source included", (t) => {
  const evil = '\x1b]0;owned\x07\x9b2J\u202e';
  const rep = statusReport(
    at({
      identity: { hostID: evil, source: evil, clash: evil },
      version: evil,
      backend: { type: evil, device: evil, mtu: 1450, implementation: evil },
      lease: {
        subnet: evil,
        publicIP: evil,
        ipv6Subnet: evil,
        publicIPv6: evil,
        expiresAtMs: NOW + 1000,
        renewDueAtMs: NOW,
        lastRenewedAtMs: NOW,
        reacquiring: false,
      },
      reconcile: { ...base.reconcile, lastPassOk: false, lastError: evil, driftRepairs: { [evil]: 1 } },
      etcd: { ...base.etcd, lastError: evil },
    }),
  );
  const text = renderStatus({ ...rep, reasons: [evil], status: evil }, NOW);
  // eslint-disable-next-line no-control-regex
  t.false(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/.test(text), text);
});

test('host.listen taken by another process: a warning (the host stays ready), in full on STATUS=, at start-up too', (t) => {
  const problem =
    'cannot listen on 127.0.0.1:9473 (host.listen): EADDRINUSE, another process is listening on that address';
  const squatted = at({ listener: { address: '127.0.0.1:9473', problem, failures: 3 } });
  const warning = `not serving /healthz, /readyz, /status and /metrics: ${problem}; retrying`;
  t.deepEqual(readiness(squatted), { ready: true, reasons: [], warnings: [warning] });
  t.is(statusLine(squatted), `leased 10.5.3.0/24, 12 peers; WARNING: ${warning}`);
  t.is(
    statusLine({ ...squatted, phase: 'starting', step: 'acquiring a subnet lease' }),
    `starting: acquiring a subnet lease; WARNING: ${warning}`,
  );
  const serving = at({ listener: { address: '127.0.0.1:9473', problem: '', failures: 3 } });
  t.deepEqual(readiness(serving).warnings, [], 'once it serves, past failures are only counted (/metrics)');
  t.is(statusLine(serving), statusLine(base));
});

test('a stored config change pending (hold-down, rate limit): in /status and weft status with when it is applied, no warning', (t) => {
  const s = at({
    config: { problem: '', pending: { reason: 'hold-down', sinceMs: NOW - 2000, applyAtMs: NOW + 3000 } },
  });
  t.deepEqual(readiness(s).warnings, []);
  const rep = statusReport(s);
  t.deepEqual(rep.configPending, {
    reason: 'hold-down',
    since: new Date(NOW - 2000).toISOString(),
    applyAt: new Date(NOW + 3000).toISOString(),
  });
  t.regex(
    renderStatus(rep, NOW),
    new RegExp(
      `^ {2}config +change pending \\(stored 2s ago\\); applied at ${new Date(NOW + 3000).toISOString().replace(/\./g, '\\.')} \\(in 3s, once stable for host\\.configHoldDown\\)$`,
      'm',
    ),
  );
  const limited = statusReport(
    at({ config: { problem: '', pending: { reason: 'rate-limit', sinceMs: NOW - 10_000, applyAtMs: NOW + 20_000 } } }),
  );
  t.regex(
    renderStatus(limited, NOW),
    /config +change pending \(stored 10s ago\); applied at .* \(in 20s, at most one change per host\.configMinInterval\)/,
  );
  t.is(statusReport(base).configPending, null);
  t.false(renderStatus(statusReport(base), NOW).includes('  config '));
});

test('live following off: a newer stored config is a warning and a status row, used at the next start', (t) => {
  const s = at({ config: { problem: '', pending: { reason: 'not-followed', sinceMs: NOW - 60_000 } } });
  const r = readiness(s);
  t.true(r.ready);
  t.deepEqual(r.warnings, [
    `the stored network config changed at ${new Date(NOW - 60_000).toISOString()} and is not in use: live following is off (host.followConfig: false); it is used at the next start of weft`,
  ]);
  const rep = statusReport(s);
  t.deepEqual(rep.configPending, {
    reason: 'not-followed',
    since: new Date(NOW - 60_000).toISOString(),
    applyAt: null,
  });
  t.regex(
    renderStatus(rep, NOW),
    /^ {2}config +a newer stored config \(stored 1m ago\) is not applied: host\.followConfig is false; it is used at the next start$/m,
  );
});

test('a listing that keeps failing while etcd answers other calls is a reason, with its error, once past the grace period; what a cap leaves out is shown', (t) => {
  const failing = (sinceMs: number) =>
    at({
      listings: [
        {
          what: 'subnets',
          failingSinceMs: sinceMs,
          lastError: 'etcd list: answer too large or etcd too busy (8 RESOURCE_EXHAUSTED)',
        },
        { what: 'config', failingSinceMs: 0, lastError: '' },
      ],
    });
  t.true(readiness(failing(NOW - 30_000)).ready, 'within the grace period: a retry may still succeed');
  t.deepEqual(readiness(failing(NOW - 61_000)).reasons, [
    'etcd listing of <prefix>/subnets failing for 1m1s: etcd list: answer too large or etcd too busy (8 RESOURCE_EXHAUSTED)',
  ]);
  t.true(
    etcdReachableOf(failing(NOW - 61_000)),
    'etcd itself answers (the renewals): only the listing says what is wrong',
  );
  const capped = at({
    peers: { ...base.peers, caps: { maxPeers: 100, maxEntries: 200, entriesLeftOut: 5, peersLeftOut: 3 } },
  });
  t.deepEqual(statusReport(capped).peers.caps, { maxPeers: 100, maxEntries: 200, entriesLeftOut: 5, peersLeftOut: 3 });
  t.regex(
    renderStatus(statusReport(capped), NOW),
    /CAPPED by host\.maxPeers 100: 3 valid leases not programmed, 5 entries not read/,
  );
  t.notRegex(
    renderStatus(
      statusReport(
        at({ peers: { ...base.peers, caps: { maxPeers: 100, maxEntries: 200, entriesLeftOut: 0, peersLeftOut: 0 } } }),
      ),
      NOW,
    ),
    /CAPPED/,
  );
});
