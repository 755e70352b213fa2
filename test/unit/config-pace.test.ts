// How fast a host takes up a changed <prefix>/config (issue 28 finding 3), with time as a
// parameter: the hold-down, the rate limit, the latest value only, following off, and one
// notice per burst. The last test drives the machine as the agent does (a timer at dueAtMs)
// through random write sequences and checks the guarantees on every applied change.
import test from 'ava';
import { ConfigPace, type PaceSettings } from '../../src/core/config/config-pace.js';
import { rng } from '../helpers/rng.js';

const S: PaceSettings = { follow: true, holdDownMs: 5000, minIntervalMs: 30_000 };
const RUNNING = '{"Network":"198.18.0.0/16"}';
const A = '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","MTU":1400}}';
const B = '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","MTU":1300}}';

test('a changed stored config is taken up only once it has been stable for the hold-down', (t) => {
  const p = new ConfigPace(S);
  p.observe(A, RUNNING, 1000);
  t.is(p.dueAtMs(), 6000);
  t.deepEqual(p.view(), { reason: 'hold-down', sinceMs: 1000, applyAtMs: 6000 });
  t.is(p.take(5999), undefined, 'not before the hold-down');
  t.deepEqual(p.take(6000), { text: A });
  t.is(p.take(6001), undefined, 'taken once: not due again until the value changes');
  t.is(p.view(), undefined, 'nothing pending once taken');
});

test('a value replaced before it is due is never taken: the hold-down restarts and the latest wins', (t) => {
  const p = new ConfigPace(S);
  p.observe(A, RUNNING, 0);
  p.observe(B, RUNNING, 4000);
  t.is(p.take(5000), undefined, 'A would have been due at 5000');
  t.is(p.dueAtMs(), 9000);
  t.deepEqual(p.take(9000), { text: B });
});

test('the same value seen again does not restart the hold-down (a re-list reports it again)', (t) => {
  const p = new ConfigPace(S);
  p.observe(A, RUNNING, 0);
  p.observe(A, RUNNING, 4000);
  t.deepEqual(p.take(5000), { text: A });
});

test('the stored value back to the running one drops the pending change', (t) => {
  const p = new ConfigPace(S);
  p.observe(A, RUNNING, 0);
  p.observe(RUNNING, RUNNING, 2000);
  t.is(p.dueAtMs(), undefined);
  t.is(p.view(), undefined);
  t.is(p.take(10_000), undefined);
});

test('a value toggled every 2 s under a 5 s hold-down is never applied while it toggles', (t) => {
  const p = new ConfigPace(S);
  let taken = 0;
  for (let ms = 0; ms <= 20_000; ms += 2000) {
    p.observe(ms % 4000 === 0 ? A : RUNNING, RUNNING, ms);
    for (let x = ms; x < ms + 2000; x += 100) if (p.take(x)) taken++;
  }
  t.is(taken, 0);
  t.deepEqual(p.take(25_000), { text: A }, 'the last value, once stable');
});

test('at most one change per interval: the next one waits for the end of the last plus minInterval', (t) => {
  const p = new ConfigPace(S);
  p.observe(A, RUNNING, 0);
  t.truthy(p.take(5000));
  p.done(6000, true);
  p.observe(B, A, 7000);
  t.is(p.dueAtMs(), 36_000, 'end of the last change (6 s) + 30 s, later than the hold-down (12 s)');
  t.deepEqual(p.view(), { reason: 'rate-limit', sinceMs: 7000, applyAtMs: 36_000 });
  t.is(p.take(35_999), undefined);
  t.deepEqual(p.take(36_000), { text: B });
});

test('a change that was not counted (unusable, or formatting only) does not hold up the next one', (t) => {
  const p = new ConfigPace(S);
  p.observe(A, RUNNING, 0);
  t.truthy(p.take(5000));
  p.done(5000, false);
  p.observe(B, RUNNING, 6000);
  t.is(p.dueAtMs(), 11_000);
});

test('a value judged unusable is not taken again until the stored value changes', (t) => {
  const p = new ConfigPace(S);
  p.observe(null, RUNNING, 0);
  t.deepEqual(p.take(5000), { text: null }, 'a deleted key is a value too (judged after the hold-down)');
  p.done(5000, false);
  p.observe(null, RUNNING, 8000);
  t.is(p.take(20_000), undefined);
  p.observe(A, RUNNING, 21_000);
  t.deepEqual(p.take(26_000), { text: A });
});

test('with live following off a differing stored config is reported, never given an apply time', (t) => {
  const p = new ConfigPace({ ...S, follow: false });
  t.false(p.observe(A, RUNNING, 0), 'no pending notice: the report when due is the one log line');
  t.deepEqual(p.view(), { reason: 'not-followed', sinceMs: 0 });
  t.deepEqual(p.take(5000), { text: A }, 'due for its report at the same pace');
  p.done(5000, true);
  t.deepEqual(p.view(), { reason: 'not-followed', sinceMs: 0 }, 'still shown after the report');
  p.observe(B, RUNNING, 6000);
  t.is(p.dueAtMs(), 35_000, 'reports are rate limited like changes');
  p.observe(RUNNING, RUNNING, 7000);
  t.is(p.view(), undefined, 'back to the running config: nothing to report');
});

test('one pending notice per burst, at most one per minInterval', (t) => {
  const p = new ConfigPace(S);
  t.true(p.observe(A, RUNNING, 0));
  t.false(p.observe(B, RUNNING, 2000));
  t.false(p.observe(RUNNING, RUNNING, 3000));
  t.false(p.observe(A, RUNNING, 4000));
  t.true(p.observe(B, RUNNING, 31_000));
});

test('driven by a timer through random write sequences: every applied value was stable for the hold-down, applies are spaced by minInterval, the last value wins', (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    const r = rng(seed);
    const s: PaceSettings = { follow: true, holdDownMs: 1000 + r(5) * 1000, minIntervalMs: 1000 + r(40) * 1000 };
    const p = new ConfigPace(s);
    const values = ['v0', 'v1', 'v2', 'v3'];
    let running = 'v0';
    let stored = 'v0';
    let storedSinceMs = 0;
    let lastEndMs = -Infinity;
    const applied: string[] = [];
    // Writes at random times for a minute, then quiet: the agent wakes at dueAtMs and on each write.
    const writes: { atMs: number; value: string }[] = [];
    for (let ms = 0; ms < 60_000; ms += 100 + r(6000))
      writes.push({ atMs: ms, value: values[r(values.length)] ?? 'v0' });
    let now = 0;
    const wake = (): void => {
      const due = p.take(now);
      if (!due) return;
      t.is(due.text, stored, `seed ${seed}: only the latest stored value is taken`);
      t.true(now - storedSinceMs >= s.holdDownMs, `seed ${seed}: stable for the hold-down`);
      t.true(now - lastEndMs >= s.minIntervalMs, `seed ${seed}: spaced by minInterval`);
      running = due.text ?? running;
      applied.push(running);
      const endMs = now + r(3000); // applying takes a while
      p.done(endMs, true);
      lastEndMs = endMs;
      now = endMs;
      p.observe(stored, running, now);
    };
    for (const w of writes) {
      for (let at = p.dueAtMs(); at !== undefined && at <= w.atMs; at = p.dueAtMs()) {
        now = Math.max(now, at);
        wake();
      }
      now = Math.max(now, w.atMs);
      if (w.value !== stored) {
        stored = w.value;
        storedSinceMs = now;
      }
      p.observe(stored, running, now);
    }
    for (let at = p.dueAtMs(); at !== undefined; at = p.dueAtMs()) {
      now = Math.max(now, at);
      wake();
    }
    t.is(running, stored, `seed ${seed}: converges on the last stored value`);
    t.true(applied.length <= 1 + Math.ceil(60_000 / s.minIntervalMs) + 1, `seed ${seed}: ${applied.length} applied`);
  }
});
