// The etcd adapter against a real etcd: the KvStore contract, deadlines, TLS and auth.
import test from 'ava';
import { Etcd3 } from 'etcd3';
import { EtcdStore } from '../../src/adapters/etcd.js';
import { WeftError } from '../../src/core/base/errors.js';
import { decodeLeaseAttrs } from '../../src/core/flannel/lease.js';
import type { WatchEvent } from '../../src/core/fleet/store.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { until } from '../helpers/procs.js';

let etcd: EtcdCluster;
test.before(async () => {
  etcd = await EtcdCluster.start();
});
test.after.always(async () => {
  await etcd.stop();
});

test('get, list by prefix in byte order, and compare-and-swap transactions', async (t) => {
  const s = await EtcdStore.connect(etcd.spec());
  t.teardown(() => s.close());
  t.is((await s.get('/t1/a')).kv, undefined);
  const created = await s.txn(
    [{ key: '/t1/a', target: 'version', equals: 0 }],
    [{ op: 'put', key: '/t1/a', value: 'one' }],
  );
  t.true(created.succeeded);
  t.false(
    (await s.txn([{ key: '/t1/a', target: 'version', equals: 0 }], [{ op: 'put', key: '/t1/a', value: 'two' }]))
      .succeeded,
    'create-if-absent loses when the key exists',
  );
  const a = (await s.get('/t1/a')).kv;
  t.is(a?.value, 'one');
  t.true(
    (
      await s.txn(
        [{ key: '/t1/a', target: 'mod', equals: a?.modRevision ?? '' }],
        [{ op: 'put', key: '/t1/a', value: 'three' }],
      )
    ).succeeded,
  );
  t.false(
    (
      await s.txn(
        [{ key: '/t1/a', target: 'mod', equals: a?.modRevision ?? '' }],
        [{ op: 'put', key: '/t1/a', value: 'four' }],
      )
    ).succeeded,
    'a stale mod revision loses',
  );
  await s.txn(
    [],
    [
      { op: 'put', key: '/t1/10.5.10.0-24', value: 'x' },
      { op: 'put', key: '/t1/10.5.2.0-24', value: 'y' },
      { op: 'put', key: '/t1x', value: 'z' },
    ],
  );
  t.deepEqual(
    (await s.list('/t1/')).kvs.map((k) => k.key),
    ['/t1/10.5.10.0-24', '/t1/10.5.2.0-24', '/t1/a'],
  );
});

test('leases: grant, attach, keepalive, ttl, revoke deletes the keys', async (t) => {
  const s = await EtcdStore.connect(etcd.spec());
  t.teardown(() => s.close());
  const lease = await s.grant(30);
  await s.txn([], [{ op: 'put', key: '/t2/k', value: 'v', lease }]);
  t.is((await s.get('/t2/k')).kv?.lease, lease);
  t.true((await s.timeToLive(lease)) > 25);
  t.is(await s.keepAliveOnce(lease), 30);
  t.is(await s.timeToLive('0'), -1);
  await s.revoke(lease);
  t.is((await s.get('/t2/k')).kv, undefined);
  t.is(await s.keepAliveOnce(lease), 0, 'keepalive of a gone lease reports TTL 0');
  t.is(await s.timeToLive(lease), -1);
  await s.revoke(lease);
});

test('watch delivers puts and deletes from a revision', async (t) => {
  const s = await EtcdStore.connect(etcd.spec());
  t.teardown(() => s.close());
  const { revision } = await s.get('/t3/');
  const seen: WatchEvent[] = [];
  const w = await s.watch('/t3/', String(BigInt(revision) + 1n), {
    onEvents: (evs) => {
      seen.push(...evs);
    },
    onBroken: () => undefined,
  });
  t.teardown(() => w.cancel());
  await s.txn([], [{ op: 'put', key: '/t3/a', value: '1' }]);
  await s.txn([], [{ op: 'delete', key: '/t3/a' }]);
  await until(() => seen.length >= 2, 5000);
  t.deepEqual(
    seen.map((e) => e.type),
    ['put', 'delete'],
  );
});

test('values are read as Go reads their bytes (get, list and watch): invalid UTF-8 is one U+FFFD per byte and counts as stored', async (t) => {
  const s = await EtcdStore.connect(etcd.spec());
  t.teardown(() => s.close());
  // Bytes no UTF-8 writer makes, put with etcd3 directly (weft's store writes text).
  const raw = new Etcd3({ hosts: etcd.endpoints });
  t.teardown(() => {
    raw.close();
  });
  const { revision } = await s.get('/t6/');
  const seen: WatchEvent[] = [];
  const w = await s.watch('/t6/', String(BigInt(revision) + 1n), {
    onEvents: (evs) => {
      seen.push(...evs);
    },
    onBroken: () => undefined,
  });
  t.teardown(() => w.cancel());
  const value = Buffer.concat([
    Buffer.from('{"PublicIP":"192.0.2.9","BackendType":"host-gw'),
    Buffer.from([0xe2, 0x82]),
    Buffer.from('","X":"'),
    Buffer.alloc(3000, 0xff),
    Buffer.from('"}'),
  ]);
  await raw.put('/t6/198.18.9.0-24').value(value);
  await until(() => seen.length >= 1, 5000);
  const texts = [
    (await s.get('/t6/198.18.9.0-24')).kv?.value,
    (await s.list('/t6/')).kvs[0]?.value,
    seen[0]?.type === 'put' ? seen[0].kv.value : undefined,
  ];
  for (const text of texts) {
    const a = decodeLeaseAttrs(text ?? '');
    t.true(a.ok, a.ok ? '' : `${value.length} stored bytes: ${a.reason}`);
    if (a.ok) t.is(a.value.backendType, 'host-gw\ufffd\ufffd', "two bad bytes, two U+FFFD (flanneld's reading)");
  }
});

test('an unreachable etcd is a clear, typed error within the deadline', async (t) => {
  const s = await EtcdStore.connect({ endpoints: ['http://127.0.0.1:1'], prefix: '/x' }, { callTimeoutMs: 1000 });
  t.teardown(() => s.close());
  const started = Date.now();
  const e = await t.throwsAsync(s.get('/x'), { instanceOf: WeftError });
  t.is(e.code, 'E_ETCD_UNAVAILABLE');
  t.true(e.retryable);
  t.true(Date.now() - started < 5000);
});

for (const withAuth of [false, true]) {
  // The reset guards against a wedge seen once under CI load (etcd3 parked behind a pending
  // authentication after a restart); it has no deterministic reproduction. This proves the reset
  // runs when our deadline ends a call, and that the store works again afterwards.
  test(`a call ended by our deadline resets the client, and the store works again afterwards${withAuth ? ' (auth on)' : ''}`, async (t) => {
    const hung = await EtcdCluster.start();
    t.teardown(() => hung.stop());
    const spec = withAuth ? hung.spec(await hung.enableAuth()) : hung.spec();
    const s = await EtcdStore.connect(spec, { callTimeoutMs: 1000 });
    t.teardown(() => s.close());
    await s.txn([], [{ op: 'put', key: '/h/a', value: '1' }]);
    await hung.freeze();
    const e = await t.throwsAsync(s.get('/h/a'), { instanceOf: WeftError });
    t.is(e.code, 'E_ETCD_UNAVAILABLE');
    t.true(s.clientResets > 0, 'a call our deadline had to end replaces the client');
    hung.thaw();
    const kv = await until(async () => (await s.get('/h/a')).kv, 10_000, 200);
    t.is(kv?.value, '1');
  });
}

test('TLS with a CA file alone (no client certificate) works; the wrong CA is refused', async (t) => {
  const etcd = await EtcdCluster.start({ tls: 'server-only' });
  t.teardown(() => etcd.stop());
  const files = etcd.tls!;
  const s = await EtcdStore.connect({ endpoints: etcd.endpoints, prefix: '/p', caFile: files.ca });
  t.teardown(() => s.close());
  await s.txn([], [{ op: 'put', key: '/ca-only', value: 'ok' }]);
  t.is((await s.get('/ca-only')).kv?.value, 'ok');
  // The server certificate is not a CA: trusting it as one must fail verification, not pass silently.
  const wrong = await EtcdStore.connect(
    { endpoints: etcd.endpoints, prefix: '/p', caFile: files.clientCert },
    { callTimeoutMs: 1500 },
  );
  t.teardown(() => wrong.close());
  const e = await t.throwsAsync(wrong.get('/ca-only'), { instanceOf: WeftError });
  t.is(e.code, 'E_ETCD_UNAVAILABLE');
});
