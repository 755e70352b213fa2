// Lease lifecycle against a real etcd: races, stickiness, loss, ownership, release.
import test from 'ava';
import { formatPrefix } from '../../src/core/net/cidr.js';
import { WeftError } from '../../src/core/base/errors.js';
import { EtcdStore } from '../../src/adapters/etcd.js';
import { silentLogger } from '../../src/adapters/log.js';
import { releaseOwnLeases } from '../../src/agent/lease-release.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { config, ip4, keeperFor, vxlanValue } from '../helpers/fleet.js';

let etcd: EtcdCluster;
test.before(async () => {
  etcd = await EtcdCluster.start();
});
test.after.always(async () => {
  await etcd.stop();
});

test('200 concurrent acquirers get 200 distinct subnets; lost races are retried', async (t) => {
  const spec = etcd.spec({ prefix: '/race200' });
  const range = config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}').ipv4!;
  const hosts = await Promise.all(Array.from({ length: 200 }, (_, i) => keeperFor(spec, `host-${i}`)));
  t.teardown(() => Promise.all(hosts.map((h) => h.store.close())));
  const held = await Promise.all(
    hosts.map((h, i) =>
      h.keeper.acquire({
        range,
        publicIP: ip4(`192.0.2.${(i % 250) + 1}`),
        value: vxlanValue(`192.0.2.${(i % 250) + 1}`),
      }),
    ),
  );
  const subnets = held.map((h) => formatPrefix(h.subnet));
  t.is(new Set(subnets).size, 200, 'no duplicates');
  const lost = hosts.reduce((n, h) => n + h.keeper.stats.lostRaces, 0);
  t.log(`lost races retried: ${lost}`);
  const store = hosts[0]!.store;
  t.is((await store.list('/race200/subnets/')).kvs.length, 200);
  t.is((await store.list('/race200/weft/owners/')).kvs.length, 200);
});

test('a full network gives a clear out-of-subnets error', async (t) => {
  const spec = etcd.spec({ prefix: '/full' });
  const range = config('{"Network":"198.18.0.0/22"}').ipv4!; // /24s: min .1.0, max .3.0 -> 3 subnets
  const hosts = await Promise.all(Array.from({ length: 4 }, (_, i) => keeperFor(spec, `h${i}`)));
  t.teardown(() => Promise.all(hosts.map((h) => h.store.close())));
  for (const h of hosts.slice(0, 3))
    await h.keeper.acquire({ range, publicIP: ip4('192.0.2.1'), value: vxlanValue('192.0.2.1') });
  const e = await t.throwsAsync(
    hosts[3]!.keeper.acquire({ range, publicIP: ip4('192.0.2.9'), value: vxlanValue('192.0.2.9') }),
    { instanceOf: WeftError },
  );
  t.is(e.code, 'E_OUT_OF_SUBNETS');
  t.is(e.message, 'out of subnets: network 198.18.0.0/22 holds 3 /24 subnets and 3 are leased');
});

test('restart keeps the subnet; a lease deleted behind our back is re-acquired with the same subnet', async (t) => {
  const spec = etcd.spec({ prefix: '/sticky' });
  const range = config('{"Network":"198.18.0.0/16"}').ipv4!;
  const a = await keeperFor(spec, 'host-a');
  const first = await a.keeper.acquire({ range, publicIP: ip4('192.0.2.10'), value: vxlanValue('192.0.2.10') });
  await a.store.close();
  const again = await keeperFor(spec, 'host-a');
  t.teardown(() => again.store.close());
  const second = await again.keeper.acquire({ range, publicIP: ip4('192.0.2.10'), value: vxlanValue('192.0.2.10') });
  t.is(formatPrefix(second.subnet), formatPrefix(first.subnet));
  t.is(second.how, 'owned');
  t.is(await again.store.timeToLive(first.lease), -1, 'the previous etcd lease is revoked, not orphaned for 24 h');
  await again.store.txn([], [{ op: 'delete', key: second.key }]);
  t.is(await again.keeper.renew(second), 'lost');
  const third = await again.keeper.acquire({
    range,
    publicIP: ip4('192.0.2.10'),
    value: vxlanValue('192.0.2.10'),
    previous: second.subnets,
  });
  t.is(formatPrefix(third.subnet), formatPrefix(first.subnet));
});

test('two hosts with one public IP (NAT, cloned VMs) never share a subnet', async (t) => {
  const spec = etcd.spec({ prefix: '/nat' });
  const range = config('{"Network":"198.18.0.0/16"}').ipv4!;
  const a = await keeperFor(spec, 'nat-a');
  const b = await keeperFor(spec, 'nat-b');
  t.teardown(async () => {
    await a.store.close();
    await b.store.close();
  });
  const la = await a.keeper.acquire({ range, publicIP: ip4('192.0.2.15'), value: vxlanValue('192.0.2.15') });
  const lb = await b.keeper.acquire({ range, publicIP: ip4('192.0.2.15'), value: vxlanValue('192.0.2.15') });
  t.not(formatPrefix(la.subnet), formatPrefix(lb.subnet));
});

test('a renewal never overwrites a key another host took over', async (t) => {
  const spec = etcd.spec({ prefix: '/takeover' });
  const range = config('{"Network":"198.18.0.0/16"}').ipv4!;
  const a = await keeperFor(spec, 'old-owner', 5);
  const b = await keeperFor(spec, 'new-owner');
  t.teardown(async () => {
    await a.store.close();
    await b.store.close();
  });
  const la = await a.keeper.acquire({ range, publicIP: ip4('192.0.2.20'), value: vxlanValue('192.0.2.20') });
  await a.store.revoke(la.lease); // A's lease expires (e.g. A was partitioned for longer than the TTL)
  const lb = await b.keeper.acquire({
    range,
    publicIP: ip4('192.0.2.21'),
    value: vxlanValue('192.0.2.21'),
    previous: la.subnets,
  });
  t.is(formatPrefix(lb.subnet), formatPrefix(la.subnet), 'B legitimately takes the freed subnet');
  t.is(await a.keeper.renew(la), 'lost');
  t.is(await a.keeper.updateValue(la, vxlanValue('192.0.2.20', '02:00:00:00:00:99')), 'lost');
  const kv = (await b.store.get(lb.key)).kv;
  t.is(kv?.value, vxlanValue('192.0.2.21'), "B's lease is untouched");
  const la2 = await a.keeper.acquire({
    range,
    publicIP: ip4('192.0.2.20'),
    value: vxlanValue('192.0.2.20'),
    previous: la.subnets,
  });
  t.not(formatPrefix(la2.subnet), formatPrefix(la.subnet), 'A re-acquires elsewhere');
});

test('a flanneld lease with our public IP is adopted; release deletes it and peers see the delete', async (t) => {
  const spec = etcd.spec({ prefix: '/adopt' });
  const range = config('{"Network":"198.18.0.0/16"}').ipv4!;
  const raw = await EtcdStore.connect(spec);
  t.teardown(() => raw.close());
  const lease = await raw.grant(3600);
  await raw.txn([], [{ op: 'put', key: '/adopt/subnets/198.18.42.0-24', value: vxlanValue('192.0.2.30'), lease }]);
  const a = await keeperFor(spec, 'migrating-host');
  t.teardown(() => a.store.close());
  const held = await a.keeper.acquire({
    range,
    publicIP: ip4('192.0.2.30'),
    value: vxlanValue('192.0.2.30', '02:00:00:00:00:42'),
  });
  t.is(formatPrefix(held.subnet), '198.18.42.0/24');
  t.is(held.how, 'public-ip');
  t.is(await raw.timeToLive(lease), -1, "flanneld's old etcd lease is revoked after the take-over");
  const { released } = await releaseOwnLeases(
    {
      store: a.store,
      prefix: '/adopt',
      identity: { hostID: 'migrating-host', hostname: 'migrating-host' },
      log: silentLogger,
    },
    { publicIP: ip4('192.0.2.30'), heldKeys: [] },
  );
  t.is(released && formatPrefix(released), '198.18.42.0/24');
  t.is((await raw.list('/adopt/')).kvs.length, 0);
});

test('renewal keeps the same etcd lease and extends it', async (t) => {
  const spec = etcd.spec({ prefix: '/renew' });
  const range = config('{"Network":"198.18.0.0/16"}').ipv4!;
  const a = await keeperFor(spec, 'r', 10);
  t.teardown(() => a.store.close());
  const held = await a.keeper.acquire({ range, publicIP: ip4('192.0.2.40'), value: vxlanValue('192.0.2.40') });
  await new Promise((r) => setTimeout(r, 2200));
  const before = await a.store.timeToLive(held.lease);
  const renewed = await a.keeper.renew(held);
  t.not(renewed, 'lost');
  t.true((await a.store.timeToLive(held.lease)) > before);
  if (renewed !== 'lost') t.is(renewed.lease, held.lease);
});
