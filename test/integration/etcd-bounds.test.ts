// What a writer under the prefix can store must not stall weft, and weft's own watch handling
// must not break its watches (issue 28 findings 2 and 7), against a real etcd: listings of more
// than the gRPC receive limit, watch events of that size, oversize values as markers, a
// cancelled watch that leaves its siblings alone, and a member that stops answering.
import test from 'ava';
import { EtcdStore } from '../../src/adapters/etcd.js';
import type { WatchEvent } from '../../src/core/fleet/store.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { sleep, until } from '../helpers/procs.js';

let etcd: EtcdCluster;
test.before(async () => {
  etcd = await EtcdCluster.start();
});
test.after.always(async () => {
  await etcd.stop();
});

/** 1.4 MB: under etcd's 1.5 MiB request limit; three of them are over grpc-js's 4 MiB receive limit. */
const JUNK = 'x'.repeat(1_400_000);
const LEASE = '{"PublicIP":"192.0.2.7","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:07"}}';

async function store(t: { teardown: (fn: () => Promise<void>) => void }): Promise<EtcdStore> {
  const s = await EtcdStore.connect(etcd.spec());
  t.teardown(() => s.close());
  return s;
}

const put = (s: EtcdStore, key: string, value: string) => s.txn([], [{ op: 'put', key, value }]);

test('a prefix holding 4.2 MB of junk lists: every entry, each big value a marker with its stored size, never its bytes', async (t) => {
  const s = await store(t);
  for (const n of ['a', 'b', 'c']) await put(s, `/b1/subnets/junk-${n}`, JUNK);
  for (let i = 1; i <= 5; i++) await put(s, `/b1/subnets/198.18.${String(i)}.0-24`, LEASE);
  // Before: RESOURCE_EXHAUSTED ("Received message larger than max"), on every try, for every host.
  const l = await s.list('/b1/subnets/', { maxValueBytes: 4096 });
  t.is(l.kvs.length, 8);
  t.deepEqual(
    l.kvs.filter((kv) => kv.value === LEASE).map((kv) => kv.key.slice('/b1/subnets/'.length)),
    ['198.18.1.0-24', '198.18.2.0-24', '198.18.3.0-24', '198.18.4.0-24', '198.18.5.0-24'],
  );
  const junk = l.kvs.filter((kv) => kv.key.includes('junk'));
  t.deepEqual(
    junk.map((kv) => [kv.value, kv.oversize]),
    Array(3).fill(['', { part: 'value', bytes: 1_400_000, limitBytes: 4096 }]),
  );
  t.is(l.leftOut, 0);
  // One key read alone: the same marker (the network config is read this way, up to 64 KiB).
  t.deepEqual((await s.get('/b1/subnets/junk-a')).kv?.oversize, { part: 'value', bytes: 1_400_000, limitBytes: 65536 });
});

test('a listing is one snapshot: writes made while its pages are read are in it exactly when they are at or before its revision', async (t) => {
  const s = await store(t);
  // 2,500 keys: three pages of 1,000; keys written meanwhile sort into the last page.
  for (let i = 0; i < 25; i++)
    await s.txn(
      [],
      Array.from({ length: 100 }, (_, j) => ({
        op: 'put' as const,
        key: `/b2/${String(i * 100 + j).padStart(5, '0')}`,
        value: 'v',
      })),
    );
  const state = { done: false };
  const writes: { key: string; revision: bigint }[] = [];
  const writer = (async () => {
    for (let n = 0; !state.done && n < 500; n++) {
      const key = `/b2/late-${String(n).padStart(3, '0')}`;
      writes.push({ key, revision: BigInt((await put(s, key, 'v')).revision) });
    }
  })();
  await sleep(5);
  const l = await s.list('/b2/');
  state.done = true;
  await writer;
  const at = BigInt(l.revision);
  const listed = new Set(l.kvs.map((kv) => kv.key));
  t.true(
    writes.some((w) => w.revision > at),
    'some writes came after the first page (else this proves nothing)',
  );
  for (const w of writes)
    t.is(listed.has(w.key), w.revision <= at, `${w.key} (revision ${String(w.revision)}, listing at ${l.revision})`);
});

test('maxEntries keeps the oldest entries by create revision: keys written later cannot push them out', async (t) => {
  const s = await store(t);
  for (const k of ['m', 'n', 'o']) await put(s, `/b3/${k}`, 'fleet');
  for (const k of ['a', 'b', 'c', 'd']) await put(s, `/b3/${k}`, 'junk'); // sort first, created later
  const l = await s.list('/b3/', { maxEntries: 3 });
  t.deepEqual(
    l.kvs.map((kv) => kv.key),
    ['/b3/m', '/b3/n', '/b3/o'],
  );
  t.is(l.leftOut, 4);
});

test('a watch behind three 1.4 MB writes gets all three, as markers: etcd fragments the response, weft reassembles it', async (t) => {
  const s = await store(t);
  const { revision } = await s.get('/b4/');
  for (const n of ['a', 'b', 'c']) await put(s, `/b4/junk-${n}`, JUNK);
  await put(s, '/b4/198.18.9.0-24', LEASE);
  const seen: WatchEvent[] = [];
  let broken = '';
  // Before: the three events came in one 4.2 MB response, over the receive limit: the watch broke at once, every time.
  const w = await s.watch(
    '/b4/',
    String(BigInt(revision) + 1n),
    {
      onEvents: (evs) => {
        seen.push(...evs);
      },
      onBroken: (r) => {
        broken = r;
      },
    },
    { maxValueBytes: 4096 },
  );
  t.teardown(() => w.cancel());
  await until(() => seen.length >= 4 || broken !== '', 10_000).catch(() => undefined);
  t.is(broken, '');
  t.deepEqual(
    seen.map((e) => (e.type === 'put' ? [e.kv.key, e.kv.oversize?.bytes ?? e.kv.value.length] : [e.key, -1])),
    [
      ['/b4/junk-a', 1_400_000],
      ['/b4/junk-b', 1_400_000],
      ['/b4/junk-c', 1_400_000],
      ['/b4/198.18.9.0-24', LEASE.length],
    ],
  );
});

test("cancelling one watch leaves the client's other watches running (it broke them 6 s later, through the keepalive)", async (t) => {
  const s = await store(t);
  const { revision } = await s.get('/b5/');
  const from = String(BigInt(revision) + 1n);
  let broken = '';
  const seen: string[] = [];
  const a = await s.watch('/b5/a/', from, { onEvents: () => undefined, onBroken: () => undefined });
  const b = await s.watch('/b5/b/', from, {
    onEvents: (evs) => {
      for (const e of evs) seen.push(e.type === 'put' ? e.kv.key : e.key);
    },
    onBroken: (r) => {
      broken = r;
    },
  });
  t.teardown(() => b.cancel());
  // What the mirror's periodic re-list does to its own watch.
  await a.cancel();
  await sleep(9000);
  t.is(broken, '', 'the other watch is still running');
  await put(s, '/b5/b/k', 'v');
  await until(() => seen.includes('/b5/b/k'), 5000).catch(() => undefined);
  t.deepEqual(seen, ['/b5/b/k']);
  t.is(s.clientResets, 0);
});

test('a watch on an etcd that stops answering (SIGSTOP: the connection stays up) is reported broken within 10 s', async (t) => {
  const own = await EtcdCluster.start();
  t.teardown(() => own.stop());
  const s = await EtcdStore.connect(own.spec());
  t.teardown(() => s.close());
  let brokenAt = 0;
  let reason = '';
  const w = await s.watch('/b6/', '1', {
    onEvents: () => undefined,
    onBroken: (r) => {
      brokenAt = Date.now();
      reason = r;
    },
  });
  t.teardown(() => w.cancel());
  await sleep(1000);
  await own.freeze();
  const frozenAt = Date.now();
  await until(() => brokenAt > 0, 15_000).catch(() => undefined);
  own.thaw();
  t.log(`broken ${brokenAt - frozenAt} ms after the freeze: ${reason}`);
  t.true(
    brokenAt > 0 && brokenAt - frozenAt < 10_000,
    `noticed within 10 s (${brokenAt > 0 ? String(brokenAt - frozenAt) : 'never'})`,
  );
});
