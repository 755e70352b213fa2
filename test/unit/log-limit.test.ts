// Lines about untrusted writes are limited per key and in all, and what is held back is summed
// up (core/base/log-limit.ts; the agent's LimitedLog runs it on a timer). A fake clock throughout.
import test from 'ava';
import { DEFAULT_LOG_LIMITS, LogLimiter } from '../../src/core/base/log-limit.js';
import { LimitedLog } from '../../src/agent/limited-log.js';
import { jsonLogger } from '../../src/adapters/log.js';

const limits = { perKeyMs: 3_600_000, burst: 3, summaryEveryMs: 60_000, maxKeys: 5 };

test('a key is logged in full once, its later writes are counted and summed up a period after the first of them', (t) => {
  const l = new LogLimiter(limits);
  t.true(l.note('k', 0), 'the first write of a key: in full');
  t.false(l.note('k', 1000));
  t.false(l.note('k', 2000));
  t.is(l.summaryDueAtMs(), 61_000);
  t.is(l.summary(60_999), undefined, 'not before its period is over');
  t.deepEqual(l.summary(61_000), { events: 2, keys: 1, lastKey: 'k', overSeconds: 60 });
  t.is(l.summary(200_000), undefined, 'nothing held back since: no summary');
  t.false(l.note('k', 3_599_999), 'still within the hour');
  t.true(l.note('k', 3_600_000), 'an hour after its last full line, a key is logged in full again');
});

test('at most `burst` lines in full per period, whatever the keys; the next period has room again', (t) => {
  const l = new LogLimiter(limits);
  t.deepEqual(
    ['a', 'b', 'c', 'd', 'e'].map((k) => l.note(k, 10)),
    [true, true, true, false, false],
  );
  t.deepEqual(l.summary(60_010), { events: 2, keys: 2, lastKey: 'e', overSeconds: 60 });
  t.true(l.note('d', 60_011), 'a held-back key is logged in full once there is room');
});

test('10,000 malformed writes to 10,000 keys in one minute: 20 lines in full and one summary line (the defaults)', (t) => {
  const l = new LogLimiter(DEFAULT_LOG_LIMITS);
  let full = 0;
  for (let i = 0; i < 10_000; i++) if (l.note(`/coreos.com/network/subnets/k${i}`, i * 5)) full++;
  t.is(full, 20);
  const s = l.summary(120_000);
  t.like(
    s,
    { events: 9980, keys: 1000, lastKey: '/coreos.com/network/subnets/k9999' },
    'distinct keys counted up to the cap',
  );
  t.is(l.summary(180_000), undefined);
});

test('keys past maxKeys are counted, not remembered; keys logged an hour ago make room', (t) => {
  const l = new LogLimiter({ ...limits, burst: 100 });
  for (let i = 0; i < 5; i++) t.true(l.note(`k${i}`, 0));
  t.false(l.note('k5', 1), 'no room to remember a sixth key: held back');
  t.true(l.note('k6', 3_600_000), 'after an hour the old keys are forgotten');
});

test('a forced summary (a stop) gives what is held back at once', (t) => {
  const l = new LogLimiter(limits);
  l.note('k', 0);
  l.note('k', 5);
  t.is(l.summary(10), undefined);
  t.like(l.summary(10, true), { events: 1, keys: 1 });
});

test('LimitedLog: lines in full and one summary line, written on stop', (t) => {
  const lines: string[] = [];
  let now = 0;
  const log = new LimitedLog({
    log: jsonLogger({
      write: (x) => {
        lines.push(x);
      },
    }),
    clock: { now: () => now },
    msg: 'ignoring a malformed lease',
    summaryMsg: 'ignoring malformed leases (not logged one by one)',
    limits,
  });
  for (let i = 0; i < 10; i++) {
    now = i;
    log.warn('/p/subnets/x', { key: '/p/subnets/x', reason: 'bad' });
  }
  t.is(lines.length, 1);
  log.stop();
  t.is(lines.length, 2);
  t.like(JSON.parse(lines[1] ?? '{}'), {
    level: 'warn',
    msg: 'ignoring malformed leases (not logged one by one)',
    events: 9,
    keys: 1,
    lastKey: '/p/subnets/x',
  });
});
