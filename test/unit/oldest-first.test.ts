// The caps a writer cannot steer (core/base/oldest-first.ts): the oldest entries are kept, and the
// count of what is left out stays exact under any sequence of watch events.
import test from 'ava';
import fc from 'fast-check';
import { CappedEntries, OldestKept, olderThan } from '../../src/core/base/oldest-first.js';

interface E {
  key: string;
  createRevision: string;
  modRevision: string;
}
const e = (key: string, create: number, mod = create): E => ({
  key,
  createRevision: String(create),
  modRevision: String(mod),
});

test('age order: create revision as a number (not text), then key', (t) => {
  t.true(olderThan(e('b', 9), e('a', 10)), '9 < 10 although "9" > "10" as text');
  t.true(olderThan(e('a', 10), e('b', 10)));
  t.false(olderThan(e('a', 10), e('a', 10)));
});

test('OldestKept holds the cap oldest of any stream, in arrival order, and counts the rest', (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: 1e9 }), { maxLength: 300 }),
      fc.integer({ min: 0, max: 50 }),
      (revs, cap) => {
        const keep = new OldestKept<E>(cap);
        const all = revs.map((r, i) => e(`k${String(i)}`, r));
        for (const x of all) keep.add(x);
        const expected = [...all].sort((a, b) => Number(a.createRevision) - Number(b.createRevision)).slice(0, cap);
        const got = keep.inArrivalOrder();
        t.deepEqual(got.map((x) => x.key).sort(), expected.map((x) => x.key).sort());
        t.deepEqual(
          got,
          all.filter((x) => expected.includes(x)),
          'arrival order kept',
        );
        t.is(keep.leftOut, all.length - got.length);
      },
    ),
  );
});

test('CappedEntries: under random creates, updates and deletes, kept + left out is every key, the map never exceeds the cap, and a key created while full is never kept', (t) => {
  const op = fc.oneof(
    fc.record({ t: fc.constant('create' as const) }),
    fc.record({ t: fc.constant('update' as const), i: fc.nat() }),
    fc.record({ t: fc.constant('delete' as const), i: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 200 }), (cap, ops) => {
      const m = new CappedEntries<E>(cap);
      const etcd = new Map<string, E>();
      let rev = 1;
      for (const o of ops) {
        rev++;
        const existing = [...etcd.keys()];
        if (o.t === 'create') {
          const kv = e(`k${String(rev)}`, rev);
          const full = m.entries.size >= cap;
          etcd.set(kv.key, kv);
          const r = m.put(kv);
          if (full) t.false(r.kept, 'a new key never pushes an older one out');
        } else if (existing.length > 0) {
          const key = existing[o.i % existing.length] ?? '';
          const old = etcd.get(key);
          if (!old) continue;
          if (o.t === 'update') {
            const kv = { ...old, modRevision: String(rev) };
            etcd.set(key, kv);
            m.put(kv);
          } else {
            etcd.delete(key);
            m.delete(key);
          }
        }
        t.true(m.entries.size <= cap);
        t.is(m.entries.size + m.leftOut, etcd.size, 'every key is kept or counted');
        for (const [k, kv] of m.entries) t.deepEqual(kv, etcd.get(k), 'kept entries are current');
      }
    }),
  );
});

test('CappedEntries: an update of a left-out key older than the youngest kept takes its place (a re-list would keep it)', (t) => {
  const m = new CappedEntries<E>(2);
  m.reset([e('a', 5), e('c', 9)], 1); // b (created at 7) was left out by a listing made... by another reader's order
  const r = m.put(e('b', 7, 12));
  t.deepEqual(r, { kept: true, evicted: 'c' });
  t.deepEqual([...m.entries.keys()].sort(), ['a', 'b']);
  t.is(m.leftOut, 1);
});
