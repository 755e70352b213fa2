// Reading /status back (core/health/status-report.ts): whatever holds host.listen answers, so weft
// status and weft doctor accept only weft's document, rebuilt from its known fields, bounded.
import test from 'ava';
import { statusReport } from '../../src/core/health/health.js';
import {
  STATUS_MAX_BYTES,
  STATUS_MAX_ITEMS,
  decodeStatusReport,
  judgeStatusAnswer,
} from '../../src/core/health/status-report.js';
import { healthSnapshot } from '../helpers/health-snapshot.js';

const real = statusReport(
  healthSnapshot({
    identity: { hostID: 'h-1', source: 'machine-id', clash: '' },
    degraded: { sinceMs: 1_800_000_000_000 },
    backend: { type: 'wireguard', device: 'flannel-wg', mtu: 1420, implementation: 'userspace' },
    peers: { known: 3, programmed: 2, rejected: 1, malformed: 4, halvesIgnored: 1 },
  }),
);
const doc = (patch: Record<string, unknown>): string => JSON.stringify({ ...real, ...patch });
const reason = (body: string): string => {
  const d = decodeStatusReport(body);
  return d.ok ? 'accepted' : d.reason;
};

test("weft's own document reads back as it was served", (t) => {
  t.deepEqual(decodeStatusReport(`${JSON.stringify(real, null, 2)}\n`), { ok: true, report: real });
  const bare = statusReport(healthSnapshot());
  t.deepEqual(
    decodeStatusReport(JSON.stringify(bare)),
    { ok: true, report: bare },
    'no identity, no IPv6, no halvesIgnored',
  );
});

test('fields an older daemon does not have read as null; fields weft does not know are dropped', (t) => {
  const old = JSON.parse(JSON.stringify(real)) as Record<string, unknown>;
  delete old.identity;
  delete old.degradedSince;
  const d = decodeStatusReport(JSON.stringify({ ...old, injected: '\x1b[2J', peers: { ...real.peers, extra: 'x' } }));
  if (!d.ok) {
    t.fail(d.reason);
    return;
  }
  t.is(d.report.identity, null);
  t.is(d.report.degradedSince, null);
  t.false('injected' in d.report);
  t.false('extra' in d.report.peers);
});

test("anything that is not weft's document is refused with the first wrong field, named by path and type, never quoted", (t) => {
  t.is(reason('<html><body>\x1b[2Jhello</body></html>'), 'not JSON');
  t.is(reason('[1,2]'), 'the document is a list, expected an object');
  t.is(reason(doc({ ready: 'yes' })), 'ready is a string, expected true or false');
  t.is(reason(doc({ peers: { ...real.peers, known: '\x1b[2J' } })), 'peers.known is a string, expected a number');
  t.is(reason(doc({ reasons: ['ok', 7] })), 'reasons[1] is a number, expected a string');
  t.is(
    reason(doc({ lease: { ...real.lease, subnet: { toString: 1 } } })),
    'lease.subnet is an object, expected a string',
  );
  t.is(
    reason(doc({ reconcile: { ...real.reconcile, driftRepairs: { route: '2' } } })),
    'reconcile.driftRepairs.route is a string, expected a number',
  );
  t.is(reason(doc({ etcd: undefined })), 'etcd is missing, expected an object');
  t.is(reason(doc({ phase: '\x1b[31mrunning' })), 'phase is not starting, running or stopping');
  t.is(reason(doc({ reconcile: { ...real.reconcile, lastAt: 'yesterday' } })), 'reconcile.lastAt is not a time');
  t.is(
    reason(doc({ uptimeSeconds: 0 }).replace('"uptimeSeconds":0', '"uptimeSeconds":1e400')),
    'uptimeSeconds is not a finite number',
    'JSON has no infinity: 1e400 parses to it',
  );
});

test('everything kept is bounded: strings cut, lists cut with a count, the document size capped', (t) => {
  const d = decodeStatusReport(
    doc({
      version: 'v'.repeat(5000),
      reasons: Array.from({ length: 40 }, () => 'r'.repeat(1100)),
      status: 's'.repeat(5000),
    }),
  );
  if (!d.ok) {
    t.fail(d.reason);
    return;
  }
  t.is(d.report.version, `${'v'.repeat(64)}...[4936 more chars]`);
  t.is(d.report.reasons.length, STATUS_MAX_ITEMS + 1);
  t.is(d.report.reasons.at(-1), `...[${40 - STATUS_MAX_ITEMS} more]`);
  t.is(d.report.reasons[0], `${'r'.repeat(1024)}...[76 more chars]`);
  t.is(d.report.status.length, 1024 + '...[3976 more chars]'.length);
  t.is(reason(doc({ version: 'v'.repeat(STATUS_MAX_BYTES) })), `larger than ${STATUS_MAX_BYTES} bytes`);
});

test("the answer: weft's document is answered; a cut body, a redirect or an error page is foreign, with why", (t) => {
  const url = 'http://127.0.0.1:9473/status';
  t.deepEqual(judgeStatusAnswer(url, { status: 200, body: JSON.stringify(real), truncated: false }), {
    kind: 'answered',
    url,
    report: real,
  });
  t.deepEqual(judgeStatusAnswer(url, { status: 200, body: JSON.stringify(real), truncated: true }), {
    kind: 'foreign',
    url,
    reason: `the answer is larger than ${STATUS_MAX_BYTES} bytes`,
  });
  t.deepEqual(judgeStatusAnswer(url, { status: 302, body: '', truncated: false }), {
    kind: 'foreign',
    url,
    reason: 'HTTP 302',
  });
  t.deepEqual(judgeStatusAnswer(url, { status: 200, body: 'hello', truncated: false }), {
    kind: 'foreign',
    url,
    reason: 'not JSON',
  });
});

test('a pending config change reads back; absent (an older daemon) is null; a wrong reason or time is refused', (t) => {
  const pending = statusReport(
    healthSnapshot({
      config: {
        problem: '',
        pending: { reason: 'rate-limit', sinceMs: 1_800_000_000_000, applyAtMs: 1_800_000_030_000 },
      },
    }),
  );
  t.deepEqual(decodeStatusReport(JSON.stringify(pending)), { ok: true, report: pending });
  const off = statusReport(
    healthSnapshot({ config: { problem: '', pending: { reason: 'not-followed', sinceMs: 1_800_000_000_000 } } }),
  );
  t.deepEqual(decodeStatusReport(JSON.stringify(off)), { ok: true, report: off });
  const old = JSON.parse(JSON.stringify(pending)) as Record<string, unknown>;
  delete old.configPending;
  const d = decodeStatusReport(JSON.stringify(old));
  t.true(d.ok && d.report.configPending === null);
  t.is(
    reason(doc({ configPending: { reason: '\x1b[2J', since: '2027-01-15T08:00:00.000Z', applyAt: null } })),
    'configPending.reason is not hold-down, rate-limit or not-followed',
  );
  t.is(
    reason(doc({ configPending: { reason: 'hold-down', since: 'soon', applyAt: null } })),
    'configPending.since is not a time',
  );
  t.is(
    reason(doc({ configPending: { reason: 'hold-down', since: '2027-01-15T08:00:00.000Z', applyAt: 5 } })),
    'configPending.applyAt is a number, expected a string',
  );
});
