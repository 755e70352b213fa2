// Dual-stack and IPv6-only leases against a real etcd: per-family uniqueness under concurrent
// joins, IPv6 turned on keeping each host's IPv4 subnet in one transaction, IPv6-only hosts
// that never take over each other's leases.
import test from 'ava';
import { formatPrefix, parseIP } from '../../src/core/net/cidr.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { config, ip4, keeperFor, vxlanValue } from '../helpers/fleet.js';

let etcd: EtcdCluster;
test.before(async () => {
  etcd = await EtcdCluster.start();
});
test.after.always(async () => {
  await etcd.stop();
});

const ip6 = (s: string) => {
  const a = parseIP(s);
  if (!a) throw new Error(s);
  return a;
};
// A small IPv4 range and a large IPv6 one: concurrent joiners collide on IPv4 with different
// IPv6 halves, so the keys differ and the key guard alone would let both in (flanneld, §1.6).
const DUAL = config(
  '{"Network":"198.18.0.0/22","SubnetLen":26,"EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}',
);

test('concurrent dual-stack joins: every IPv4 half and every IPv6 half distinct (the family guard, not only the key)', async (t) => {
  const spec = etcd.spec({ prefix: '/dual-race' });
  const n = 14; // 14 of the 15 /26s between SubnetMin and SubnetMax
  const hosts = await Promise.all(Array.from({ length: n }, (_, i) => keeperFor(spec, `h${i}`)));
  t.teardown(() => Promise.all(hosts.map((h) => h.store.close())));
  const held = await Promise.all(
    hosts.map((h, i) =>
      h.keeper.acquire({
        range: DUAL.ipv4!,
        rangeV6: DUAL.ipv6!,
        publicIP: ip4(`192.0.2.${i + 1}`),
        publicIPv6: ip6(`fd00:2::${i + 1}`),
        value: vxlanValue(`192.0.2.${i + 1}`),
      }),
    ),
  );
  const v4 = held.map((h) => formatPrefix(h.subnets.v4!));
  const v6 = held.map((h) => formatPrefix(h.subnets.v6!));
  t.is(new Set(v4).size, n, 'IPv4 halves distinct');
  t.is(new Set(v6).size, n, 'IPv6 halves distinct');
  const keys = (await hosts[0]!.store.list('/dual-race/subnets/')).kvs.map((kv) =>
    kv.key.slice('/dual-race/subnets/'.length),
  );
  t.is(keys.length, n);
  for (const k of keys) t.regex(k, /^198\.18\.\d+\.\d+-26&fd18:0:0:[0-9a-f]+::-64$/);
  t.log(`lost races retried: ${hosts.reduce((s, h) => s + h.keeper.stats.lostRaces, 0)}`);
});

test('IPv6 turned on: the host keeps its IPv4 subnet; the v4-only key is replaced by the dual-stack key in one transaction', async (t) => {
  const spec = etcd.spec({ prefix: '/v6on' });
  const v4 = config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}');
  const a = await keeperFor(spec, 'host-a');
  t.teardown(() => a.store.close());
  const before = await a.keeper.acquire({
    range: v4.ipv4!,
    publicIP: ip4('192.0.2.1'),
    value: vxlanValue('192.0.2.1'),
  });
  const { revision } = await a.store.list('/v6on/subnets/');
  // What a peer's watch sees: the delete and the create in one response, at one revision.
  const responses: { types: string[]; revisions: string[] }[] = [];
  const w = await a.store.watch('/v6on/subnets/', String(BigInt(revision) + 1n), {
    onEvents: (events) => {
      responses.push({
        types: events.map((e) => e.type),
        revisions: events.map((e) => (e.type === 'put' ? e.kv.modRevision : e.modRevision)),
      });
    },
    onBroken: () => undefined,
  });
  t.teardown(() => w.cancel());
  const dual = config(
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}',
  );
  const after = await a.keeper.acquire({
    range: dual.ipv4!,
    rangeV6: dual.ipv6!,
    publicIP: ip4('192.0.2.1'),
    publicIPv6: ip6('fd00:2::1'),
    value: vxlanValue('192.0.2.1'),
    previous: before.subnets,
  });
  t.is(formatPrefix(after.subnets.v4!), formatPrefix(before.subnet), 'same IPv4 subnet');
  t.truthy(after.subnets.v6);
  const keys = (await a.store.list('/v6on/subnets/')).kvs.map((kv) => kv.key);
  t.deepEqual(keys, [after.key], 'the v4-only key is gone, only the dual-stack key is left');
  t.deepEqual(
    (await a.store.list('/v6on/weft/owners/')).kvs.map((kv) => kv.key),
    [after.ownerKey],
  );
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(
    responses.map((r) => [...r.types].sort()),
    [['delete', 'put']],
    'one watch response: the delete and the create',
  );
  t.is(new Set(responses[0]?.revisions).size, 1, 'at one etcd revision: peers never see the subnet free');
  t.is(await a.store.timeToLive(before.lease), -1, 'the old etcd lease is revoked');
});

test('IPv6-only hosts (PublicIP 0.0.0.0): three hosts, three subnets, each kept across a restart', async (t) => {
  const spec = etcd.spec({ prefix: '/v6only' });
  const c = config('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}');
  const value = (n: number) =>
    `{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:2::${n}","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:0${n}"}}`;
  const req = (n: number) => ({
    rangeV6: c.ipv6!,
    publicIP: ip4('0.0.0.0'),
    publicIPv6: ip6(`fd00:2::${n}`),
    value: value(n),
  });
  const first: string[] = [];
  for (const n of [1, 2, 3]) {
    const h = await keeperFor(spec, `v6-${n}`);
    const held = await h.keeper.acquire(req(n));
    t.is(held.subnets.v4, undefined);
    t.regex(held.subnetKey, /^0\.0\.0\.0-0&fd18:0:0:[0-9a-f]+::-64$/);
    first.push(held.subnetKey);
    await h.store.close();
  }
  t.is(new Set(first).size, 3, "three different subnets (flanneld's v6-only hosts take over each other's lease)");
  for (const n of [1, 2, 3]) {
    const h = await keeperFor(spec, `v6-${n}`);
    const again = await h.keeper.acquire(req(n));
    t.is(again.subnetKey, first[n - 1] ?? '', `host ${n} keeps its subnet across a restart`);
    await h.store.close();
  }
});

test('the store\'s "none in range" compare: a create fails while any key under <key>& exists, and succeeds when none does', async (t) => {
  const spec = etcd.spec({ prefix: '/none-range' });
  const a = await keeperFor(spec, 'host-a');
  t.teardown(() => a.store.close());
  const key = '/none-range/subnets/198.18.5.0-24';
  const guard = { prefix: `${key}&`, target: 'none' as const };
  t.true(
    (await a.store.txn([guard], [{ op: 'put', key: '/none-range/probe', value: '1' }])).succeeded,
    'no key in range: the compare holds',
  );
  await a.store.txn([], [{ op: 'put', key: `${key}&fd18:0:0:5::-64`, value: 'x' }]);
  t.false(
    (await a.store.txn([guard, { key, target: 'version', equals: 0 }], [{ op: 'put', key, value: 'y' }])).succeeded,
    'a dual-stack key holds the IPv4 half: the IPv4-only create fails',
  );
  t.is((await a.store.get(key)).kv, undefined);
});
