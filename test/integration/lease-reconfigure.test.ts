// A live network config change and this host's lease, against a real etcd (issue 19 part 2):
// a new lease value is a guarded put under the same etcd lease, never over a key another host
// took; a subnet the new config no longer allows is given up for one that fits.
import test from 'ava';
import { formatPrefix } from '../../src/core/net/cidr.js';
import type { IdentityKeeper } from '../../src/agent/identity-keeper.js';
import { LeaseHolder } from '../../src/agent/lease-holder.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { silentLogger } from '../../src/adapters/log.js';
import { config, ip4, keeperFor, vxlanValue } from '../helpers/fleet.js';

let etcd: EtcdCluster;
test.before(async () => {
  etcd = await EtcdCluster.start();
});
test.after.always(async () => {
  await etcd.stop();
});

/** The identity part a LeaseHolder asks about: never lost here (presence is tested elsewhere). */
const steadyIdentity = { needsClaim: false, claim: () => Promise.resolve(false) } as unknown as IdentityKeeper;

async function holderFor(prefix: string, network: string, onSubnet: (s: string) => void = () => undefined) {
  const spec = etcd.spec({ prefix });
  const { keeper, store } = await keeperFor(spec, `${prefix}-host`);
  const abort = new AbortController();
  const range = config(`{"Network":"${network}","Backend":{"Type":"vxlan"}}`).ipv4;
  if (!range) throw new Error('no range');
  const holder = new LeaseHolder({
    keeper,
    ids: steadyIdentity,
    store,
    log: silentLogger,
    signal: abort.signal,
    renewMarginMs: 1000,
    tickMs: 50,
    request: { range, publicIP: ip4('192.0.2.40'), value: vxlanValue('192.0.2.40', '02:00:00:00:00:40') },
    onSubnet: (s) => {
      if (s.v4) onSubnet(formatPrefix(s.v4));
    },
  });
  const held = await holder.acquire();
  return {
    holder,
    held,
    store,
    abort,
    close: async () => {
      abort.abort();
      await holder.stop();
      await store.close();
    },
  };
}

test('a new lease value is republished in place: same key, same etcd lease', async (t) => {
  const h = await holderFor('/reconf1', '198.18.0.0/16');
  t.teardown(h.close);
  const range = config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","VNI":2}}').ipv4;
  if (!range) return;
  const value = vxlanValue('192.0.2.40', '02:00:00:00:00:41').replace('"VNI":1', '"VNI":2');
  await h.holder.reconfigure({ range }, value);
  const kv = (await h.store.get(h.held.key)).kv;
  t.is(kv?.value, value);
  t.is(kv?.lease, h.held.lease, 'under the same etcd lease');
  t.is(h.holder.lease?.key, h.held.key);
  t.is(h.holder.stats.valueUpdates, 1);
});

test('a key another host took meanwhile is never overwritten; the host re-acquires elsewhere with the new value', async (t) => {
  const h = await holderFor('/reconf2', '198.18.0.0/16');
  t.teardown(h.close);
  // Our etcd lease is revoked (a long partition) and another host takes the subnet.
  await h.store.revoke(h.held.lease);
  const other = await keeperFor(etcd.spec({ prefix: '/reconf2' }), 'other');
  t.teardown(() => other.store.close());
  const range = config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}').ipv4;
  if (!range) return;
  const theirs = await other.keeper.acquire({
    range,
    publicIP: ip4('192.0.2.41'),
    value: vxlanValue('192.0.2.41'),
    previous: h.held.subnets,
  });
  t.is(formatPrefix(theirs.subnet), formatPrefix(h.held.subnet));
  const value = vxlanValue('192.0.2.40', '02:00:00:00:00:42');
  await h.holder.reconfigure({ range }, value);
  t.is((await h.store.get(h.held.key)).kv?.value, vxlanValue('192.0.2.41'), 'their value stands');
  h.holder.start();
  const until = Date.now() + 5000;
  while (h.holder.lease?.key === h.held.key && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  const now = h.holder.lease;
  t.not(now?.key, h.held.key, 'moved to another subnet');
  t.is(now ? (await h.store.get(now.key)).kv?.value : undefined, value, 'published with the new value');
});

test('a subnet outside the new range is given up for one that fits (onSubnet), the old key deleted', async (t) => {
  const moved: string[] = [];
  const h = await holderFor('/reconf3', '198.18.0.0/16', (s) => moved.push(s));
  t.teardown(h.close);
  const third = Number(formatPrefix(h.held.subnet).split('.')[2]);
  // A range of two subnets that excludes the held one.
  const min = third < 200 ? third + 1 : 1;
  const range = config(
    `{"Network":"198.18.0.0/16","SubnetMin":"198.18.${min}.0","SubnetMax":"198.18.${min + 1}.0","Backend":{"Type":"vxlan"}}`,
  ).ipv4;
  if (!range) return;
  await h.holder.reconfigure({ range }, vxlanValue('192.0.2.40', '02:00:00:00:00:40'));
  t.is(moved.length, 1);
  t.not(moved[0], formatPrefix(h.held.subnet));
  t.is((await h.store.get(h.held.key)).kv, undefined, 'the old key is gone');
  t.is(h.holder.lease?.subnet && formatPrefix(h.holder.lease.subnet), moved[0]);
});
