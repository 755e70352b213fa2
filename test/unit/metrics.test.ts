// weft's /metrics (agent/metrics.ts): values read from the agent at scrape time, the pass
// histogram, the process metrics (prom-client's names) and their /proc readers (core/health/proc-status.ts,
// adapters/proc-self.ts).
import test from 'ava';
import { Metrics } from '../../src/agent/metrics.js';
import { readProcSelf } from '../../src/adapters/proc-self.js';
import { parseMaxOpenFiles, parseProcStatus } from '../../src/core/health/proc-status.js';
import type { HealthSnapshot } from '../../src/core/health/health.js';
import { COUNTERS, NOW, healthSnapshot } from '../helpers/health-snapshot.js';

const base = healthSnapshot();
const SNAPSHOT: HealthSnapshot = healthSnapshot({
  lease: {
    subnet: '10.5.3.0/24',
    publicIP: '192.0.2.3',
    expiresAtMs: NOW + 86_400,
    renewDueAtMs: NOW + 1_800_000,
    lastRenewedAtMs: NOW - 10_000,
    reacquiring: false,
  },
  peers: { known: 3, programmed: 2, rejected: 1, malformed: 0 },
  reconcile: { ...base.reconcile, passes: 5 },
});

/** The lines of one family's samples (name or name_suffix, then labels or a space). */
const samples = (body: string, name: string): string[] =>
  body.split('\n').filter((l) => !l.startsWith('#') && new RegExp(`^${name}(_bucket|_sum|_count)?[{ ]`).test(l));
const value = (body: string, name: string): number => Number(samples(body, name)[0]?.split(' ').at(-1));

test('families() lists every family with its type, help and labels, without reading the agent', (t) => {
  const never = (): never => {
    throw new Error('read');
  };
  const fams = new Metrics({ snapshot: never, counters: never }).families();
  t.deepEqual(
    fams.find((f) => f.name === 'weft_info'),
    {
      name: 'weft_info',
      type: 'gauge',
      help: 'weft version, backend and leased subnets, IPv4 (or the IPv6 one on an IPv6-only network) and IPv6 (always 1)',
      labelNames: ['version', 'backend', 'subnet', 'ipv6_subnet'],
    },
  );
  t.deepEqual(
    fams.find((f) => f.name === 'weft_reconcile_duration_seconds'),
    {
      name: 'weft_reconcile_duration_seconds',
      type: 'histogram',
      help: 'duration of reconcile passes',
      labelNames: [],
    },
  );
  t.deepEqual(fams.find((f) => f.name === 'nodejs_version_info')?.labelNames, ['version', 'major', 'minor', 'patch']);
  t.is(new Set(fams.map((f) => f.name)).size, fams.length, 'no name twice');
  for (const f of fams)
    t.is(f.type === 'counter', f.name.endsWith('_total'), `${f.name}: counters and only counters end in _total`);
});

test("weft's values come from the snapshot and the counters at scrape time", async (t) => {
  let snap = SNAPSHOT;
  const m = new Metrics({ snapshot: () => snap, counters: () => COUNTERS });
  const { type, body } = await m.text();
  t.is(type, 'text/plain; version=0.0.4; charset=utf-8');
  t.deepEqual(samples(body, 'weft_info'), [
    'weft_info{version="9.9.9",backend="vxlan",subnet="10.5.3.0/24",ipv6_subnet=""} 1',
  ]);
  t.deepEqual(samples(body, 'weft_peers'), [
    'weft_peers{state="known"} 3',
    'weft_peers{state="programmed"} 2',
    'weft_peers{state="rejected"} 1',
  ]);
  t.deepEqual(samples(body, 'weft_lease_renewals_total'), [
    'weft_lease_renewals_total{result="ok"} 4',
    'weft_lease_renewals_total{result="failed"} 1',
  ]);
  t.deepEqual(samples(body, 'weft_drift_repairs_total'), ['weft_drift_repairs_total{kind="route"} 2']);
  t.is(value(body, 'weft_lease_expiry_seconds'), 86.4);
  t.is(value(body, 'weft_reconcile_passes_total'), 5);
  t.is(value(body, 'weft_etcd_reachable'), 1);

  snap = { ...SNAPSHOT, reconcile: { ...SNAPSHOT.reconcile, passes: 6 } };
  t.is(value((await m.text()).body, 'weft_reconcile_passes_total'), 6, 'read again on the next scrape');
});

test('no lease yet: weft_lease_expiry_seconds has no sample (not 0, which would read as expiring now)', async (t) => {
  const unleased: HealthSnapshot = { ...SNAPSHOT };
  delete (unleased as { lease?: unknown }).lease;
  const { body } = await new Metrics({ snapshot: () => unleased, counters: () => COUNTERS }).text();
  t.deepEqual(samples(body, 'weft_lease_expiry_seconds'), []);
  t.true(body.includes('# TYPE weft_lease_expiry_seconds gauge\n\n'), 'the family is still announced');
  t.deepEqual(samples(body, 'weft_info'), ['weft_info{version="9.9.9",backend="vxlan",subnet="",ipv6_subnet=""} 1']);
});

test('observePass fills the duration histogram: a bound is inclusive, beyond 10 s counts only in +Inf', async (t) => {
  const m = new Metrics({ snapshot: () => SNAPSHOT, counters: () => COUNTERS });
  for (const ms of [1, 0.5, 3, 25, 20_000]) m.observePass(ms);
  const { body } = await m.text();
  t.deepEqual(samples(body, 'weft_reconcile_duration_seconds'), [
    ...[
      ['0.001', 2],
      ['0.005', 3],
      ['0.01', 3],
      ['0.025', 4],
      ['0.05', 4],
      ['0.1', 4],
      ['0.25', 4],
      ['0.5', 4],
      ['1', 4],
      ['2.5', 4],
      ['5', 4],
      ['10', 4],
      ['+Inf', 5],
    ].map(([le, n]) => `weft_reconcile_duration_seconds_bucket{le="${le ?? ''}"} ${n ?? ''}`),
    `weft_reconcile_duration_seconds_sum ${0.001 + 0.0005 + 0.003 + 0.025 + 20}`,
    'weft_reconcile_duration_seconds_count 5',
  ]);
});

test("process metrics: prom-client's names, read from Node and /proc at scrape time", async (t) => {
  const { body } = await new Metrics({ snapshot: () => SNAPSHOT, counters: () => COUNTERS }).text();
  const user = value(body, 'process_cpu_user_seconds_total');
  const system = value(body, 'process_cpu_system_seconds_total');
  t.true(user > 0 && system >= 0);
  t.true(Math.abs(value(body, 'process_cpu_seconds_total') - (user + system)) < 1e-6, 'total is user plus system');
  const start = value(body, 'process_start_time_seconds');
  t.true(Number.isInteger(start) && Math.abs(start - (Date.now() / 1000 - process.uptime())) < 2);
  t.true(value(body, 'process_resident_memory_bytes') > 10e6);
  t.true(value(body, 'process_virtual_memory_bytes') >= value(body, 'process_resident_memory_bytes'));
  t.true(value(body, 'process_open_fds') >= 3);
  t.true(value(body, 'process_max_fds') >= value(body, 'process_open_fds'));
  t.true(
    value(body, 'nodejs_heap_size_used_bytes') > 0 &&
      value(body, 'nodejs_heap_size_used_bytes') <= value(body, 'nodejs_heap_size_total_bytes'),
  );
  t.true(value(body, 'nodejs_external_memory_bytes') > 0);
  const lag = value(body, 'nodejs_eventloop_lag_seconds');
  t.true(lag > 0 && lag < 5, `event-loop lag ${lag} s`);
  const [major, minor, patch] = process.version.slice(1).split('.');
  t.deepEqual(samples(body, 'nodejs_version_info'), [
    `nodejs_version_info{version="${process.version}",major="${major ?? ''}",minor="${minor ?? ''}",patch="${patch ?? ''}"} 1`,
  ]);
});

test("the event-loop lag is how long the scrape's setImmediate waited", async (t) => {
  const m = new Metrics({ snapshot: () => SNAPSHOT, counters: () => COUNTERS });
  // Keep the loop busy for 150 ms just after the scrape queued its setImmediate.
  const scrape = m.text();
  const until = performance.now() + 150;
  while (performance.now() < until) {
    /* busy */
  }
  const lag = value((await scrape).body, 'nodejs_eventloop_lag_seconds');
  t.true(lag >= 0.14 && lag < 5, `lag ${lag} s`);
});

test('/proc/self/status: VmRSS and VmSize in bytes', (t) => {
  const status =
    'Name:\tnode\nVmPeak:\t 1100000 kB\nVmSize:\t  761824 kB\nVmLck:\t       0 kB\nVmHWM:\t   60000 kB\nVmRSS:\t   43640 kB\nRssAnon:\t   20000 kB\n';
  t.deepEqual(parseProcStatus(status), { residentBytes: 43640 * 1024, virtualBytes: 761824 * 1024 });
  t.deepEqual(parseProcStatus('Name:\tkthreadd\n'), {}, 'a kernel thread has neither');
});

test('/proc/self/limits: the soft limit of open files; unlimited or missing is absent', (t) => {
  const head =
    'Limit                     Soft Limit           Hard Limit           Units     \nMax cpu time              unlimited            unlimited            seconds   \n';
  t.is(
    parseMaxOpenFiles(`${head}Max open files            1024                 524288               files     \n`),
    1024,
  );
  t.is(
    parseMaxOpenFiles(`${head}Max open files            unlimited            unlimited            files     \n`),
    undefined,
  );
  t.is(parseMaxOpenFiles(head), undefined);
});

test('readProcSelf reads this process', (t) => {
  const p = readProcSelf();
  t.true((p.residentBytes ?? 0) > 10e6);
  t.true((p.openFds ?? 0) >= 3);
  t.true((p.maxFds ?? 0) > 0);
});

test('weft_health_listen_failures_total counts failed attempts to listen on host.listen (0 when it is not set)', async (t) => {
  const m = (s: HealthSnapshot): Promise<{ body: string }> =>
    new Metrics({ snapshot: () => s, counters: () => COUNTERS }).text();
  t.is(
    value(
      (await m({ ...SNAPSHOT, listener: { address: '127.0.0.1:9473', problem: '', failures: 7 } })).body,
      'weft_health_listen_failures_total',
    ),
    7,
  );
  t.is(value((await m(SNAPSHOT)).body, 'weft_health_listen_failures_total'), 0);
});
