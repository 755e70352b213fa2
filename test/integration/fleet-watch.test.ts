// The fleet view from list + watch against a real etcd: it survives restarts (with auth),
// compaction and leader loss, and malformed entries never remove a valid peer.
import test from 'ava';
import { EtcdStore } from '../../src/adapters/etcd.js';
import { jsonLogger, silentLogger } from '../../src/adapters/log.js';
import { appendFileSync } from 'node:fs';
import { PrefixMirror } from '../../src/agent/prefix-mirror.js';
import type { EtcdSpec } from '../../src/core/spec/spec.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { Fleet } from '../../src/core/fleet/fleet.js';
import { subnetsPrefix } from '../../src/core/fleet/owner.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { config, vxlanValue } from '../helpers/fleet.js';
import { sleep, until } from '../helpers/procs.js';
import { BACKENDS } from '../helpers/backends.js';
import { vxlanDataOf } from '../../src/backends/vxlan-lease.js';
import type { PeerLease } from '../../src/core/flannel/peer-lease.js';

const vxlanMAC = (p: PeerLease | undefined): string | undefined => (p ? vxlanDataOf(p)?.vtepMAC : undefined);

const CFG = config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}');

async function watchFleet(
  spec: EtcdSpec,
  opts: { resyncIntervalMs?: number; seed?: { kvs: KeyValue[]; revision: string } } = {},
) {
  const store = await EtcdStore.connect(spec, { callTimeoutMs: 2000 });
  const fleet = new Fleet(subnetsPrefix(spec.prefix), CFG, BACKENDS);
  const mirror: PrefixMirror = new PrefixMirror({
    store,
    prefix: subnetsPrefix(spec.prefix),
    log: process.env.WEFT_TEST_LOG
      ? jsonLogger({
          level: 'debug',
          base: { ep: spec.endpoints[0], auth: Boolean(spec.username) },
          write: (l) => {
            appendFileSync(process.env.WEFT_TEST_LOG ?? '', l);
          },
        })
      : silentLogger,
    clock: Date,
    resyncIntervalMs: opts.resyncIntervalMs ?? 60_000,
    onChange: (keys) => {
      for (const k of keys) fleet.update(k, mirror.snapshot.get(k));
    },
  });
  await mirror.start(opts.seed);
  return {
    store,
    fleet,
    mirror,
    close: async () => {
      await mirror.stop();
      await store.close();
    },
  };
}

const peersOf = (f: Fleet) => [...f.peers.keys()].sort();
const put = (s: EtcdStore, key: string, value: string) => s.txn([], [{ op: 'put', key, value }]);

test("started from a listing made earlier (the acquisition's), the mirror holds what changed since: a put and a delete between the listing and the start", async (t) => {
  const etcd = await EtcdCluster.start();
  t.teardown(() => etcd.stop());
  const spec = etcd.spec();
  const P = '/coreos.com/network/subnets';
  const s = await EtcdStore.connect(spec, { callTimeoutMs: 2000 });
  t.teardown(() => s.close());
  await put(s, `${P}/198.18.1.0-24`, vxlanValue('192.0.2.1'));
  await put(s, `${P}/198.18.2.0-24`, vxlanValue('192.0.2.2'));
  const seed = await s.list(`${P}/`);
  await put(s, `${P}/198.18.3.0-24`, vxlanValue('192.0.2.3'));
  await s.txn([], [{ op: 'delete', key: `${P}/198.18.1.0-24` }]);
  const w = await watchFleet(spec, { seed });
  t.teardown(() => w.close());
  await until(() => w.fleet.peers.size === 2 && w.fleet.peers.has('198.18.3.0-24'), 5000).catch(() => undefined);
  t.deepEqual(peersOf(w.fleet), ['198.18.2.0-24', '198.18.3.0-24']);
  t.is(w.mirror.stats.lists, 1, 'the seed was the only list');
});

test('malformed entries are quarantined and never remove a valid peer', async (t) => {
  const etcd = await EtcdCluster.start();
  t.teardown(() => etcd.stop());
  const spec = etcd.spec();
  const w = await watchFleet(spec);
  t.teardown(() => w.close());
  const P = '/coreos.com/network/subnets';
  await put(w.store, `${P}/198.18.1.0-24`, vxlanValue('192.0.2.1'));
  await put(w.store, `${P}/198.18.2.0-24`, vxlanValue('192.0.2.2'));
  await until(() => w.fleet.peers.size === 2, 5000);
  const bad: [string, string][] = [
    [`${P}/garbage`, '{}'],
    [`${P}/198.18.3.0-24`, 'not json'],
    [`${P}/198.18.4.0-24`, '{"PublicIP":"192.0.2.4","PublicIPv6":""}'],
    [`${P}/10.9.0.0-24`, vxlanValue('192.0.2.5')],
    [`${P}-old/198.18.6.0-24`, vxlanValue('192.0.2.6')],
    [
      `${P}/198.18.7.0-24`,
      '{"PublicIP":"192.0.2.7","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"zz"}}',
    ],
  ];
  for (const [k, v] of bad) await put(w.store, k, v);
  await w.store.txn([], [{ op: 'delete', key: `${P}/garbage` }]);
  await put(w.store, `${P}/198.18.2.0-24`, 'corrupted'); // a peer's own value turns bad: last good lease kept
  await put(w.store, `${P}/198.18.9.0-24`, vxlanValue('192.0.2.9'));
  await until(() => w.fleet.peers.size === 3, 5000);
  t.deepEqual(peersOf(w.fleet), ['198.18.1.0-24', '198.18.2.0-24', '198.18.9.0-24']);
  t.deepEqual([...w.fleet.quarantined.keys()].sort(), [
    `${P}/10.9.0.0-24`,
    `${P}/198.18.2.0-24`,
    `${P}/198.18.3.0-24`,
    `${P}/198.18.4.0-24`,
    `${P}/198.18.7.0-24`,
  ]);
  t.false(
    [...w.fleet.quarantined.keys()].some((k) => k.includes('subnets-old')),
    'the watch prefix ends with a slash',
  );
});

async function survives(
  t: import('ava').ExecutionContext,
  spec: EtcdSpec,
  disrupt: (w: Awaited<ReturnType<typeof watchFleet>>) => Promise<void>,
) {
  const w = await watchFleet(spec);
  t.teardown(() => w.close());
  const writer = await EtcdStore.connect(spec, { callTimeoutMs: 2000 });
  t.teardown(() => writer.close());
  const P = `${spec.prefix}/subnets`;
  for (let i = 1; i <= 5; i++) await put(writer, `${P}/198.18.${i}.0-24`, vxlanValue(`192.0.2.${i}`));
  await until(() => w.fleet.peers.size === 5, 5000);
  await disrupt(w);
  // Changes made after the disruption must arrive: a new peer, a removed peer, a changed MAC.
  const writeAfter = async () => {
    await put(writer, `${P}/198.18.6.0-24`, vxlanValue('192.0.2.6'));
    await writer.txn([], [{ op: 'delete', key: `${P}/198.18.1.0-24` }]);
    await put(writer, `${P}/198.18.2.0-24`, vxlanValue('192.0.2.2', '02:00:00:00:00:22'));
    return true;
  };
  await until(writeAfter, 20_000, 200);
  await until(
    () =>
      w.fleet.peers.has('198.18.6.0-24') &&
      !w.fleet.peers.has('198.18.1.0-24') &&
      vxlanMAC(w.fleet.peers.get('198.18.2.0-24')) === '02:00:00:00:00:22',
    20_000,
    100,
  );
  // The writer's first call after a restart may meet an expired auth token: retry it like a client would.
  const inEtcd = (await until(() => writer.list(`${P}/`), 10_000, 200)).kvs
    .map((kv) => kv.key.slice(P.length + 1))
    .sort();
  t.deepEqual(peersOf(w.fleet), inEtcd, 'peer set equals the etcd contents');
}

test('the watch survives an etcd restart', async (t) => {
  const etcd = await EtcdCluster.start();
  t.teardown(() => etcd.stop());
  await survives(t, etcd.spec(), async () => {
    await etcd.restartAll();
  });
});

test('the watch survives an etcd restart with auth enabled (expired token)', async (t) => {
  const etcd = await EtcdCluster.start();
  t.teardown(() => etcd.stop());
  const auth = await etcd.enableAuth();
  await survives(t, etcd.spec(auth), async () => {
    await etcd.restartAll('root:s3cret-pw');
  });
});

test('a watch behind a compaction re-lists instead of dying silently', async (t) => {
  const etcd = await EtcdCluster.start();
  t.teardown(() => etcd.stop());
  await survives(t, etcd.spec(), async (w) => {
    const writer = await EtcdStore.connect(etcd.spec());
    await w.mirror.suspend(); // as if disconnected: the mirror keeps its revision
    await put(writer, '/coreos.com/network/subnets/198.18.7.0-24', vxlanValue('192.0.2.7'));
    await writer.txn([], [{ op: 'delete', key: '/coreos.com/network/subnets/198.18.5.0-24' }]);
    await etcd.compact(); // history past the mirror's revision is gone
    await writer.close();
    const restarts = w.mirror.stats.watchRestarts;
    await w.mirror.resume();
    await until(() => w.mirror.stats.watchRestarts > restarts, 5000);
    await until(() => w.fleet.peers.has('198.18.7.0-24') && !w.fleet.peers.has('198.18.5.0-24'), 5000);
  });
});

test('the watch survives a 3-member cluster losing its leader', async (t) => {
  const etcd = await EtcdCluster.start({ size: 3 });
  t.teardown(() => etcd.stop());
  await survives(t, etcd.spec(), async () => {
    const leader = await etcd.leaderIndex();
    t.log(`stopping leader m${leader}`);
    await etcd.stopMember(leader);
    await sleep(1500);
  });
});
