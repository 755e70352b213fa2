// What an etcd writer can forge about a host, against a real etcd (issue 28, finding 4 and two
// LOWs): a foreign value on the host's own key under its own etcd lease, its key moved to an
// etcd lease of another host's, a presence record under its host ID kept alive by someone
// else, and a flood of malformed writes the fleet view must not log one line each for.
import test from 'ava';
import { EtcdStore } from '../../src/adapters/etcd.js';
import { jsonLogger, silentLogger } from '../../src/adapters/log.js';
import { FleetView } from '../../src/agent/fleet-view.js';
import { LeaseKeeper } from '../../src/agent/lease-keeper.js';
import { Presence } from '../../src/agent/presence.js';
import { prefix } from '../../src/core/net/cidr.js';
import { encodePresence, presencePrefix } from '../../src/core/fleet/presence.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { config, ip4, vxlanValue } from '../helpers/fleet.js';
import { until } from '../helpers/procs.js';

const range = config('{"Network":"198.18.0.0/16"}').ipv4!;
let etcd: EtcdCluster;
test.before(async () => {
  etcd = await EtcdCluster.start();
});
test.after.always(async () => {
  await etcd.stop();
});

function keeper(store: EtcdStore, prefix: string, hostID: string, lines: string[] = []): LeaseKeeper {
  return new LeaseKeeper({
    store,
    prefix,
    identity: () => ({ hostID, hostname: hostID }),
    ttlSeconds: 600,
    clock: Date,
    rng: Math.random,
    log: jsonLogger({
      write: (l) => {
        lines.push(l);
      },
    }),
  });
}

test("a foreign value under the host's own etcd lease is put back by the next check, with one warning that quotes it escaped; the host's own pending value is published quietly", async (t) => {
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  const lines: string[] = [];
  const k = keeper(store, '/own', 'a', lines);
  const held = await k.acquire({ range, publicIP: ip4('192.0.2.10'), value: vxlanValue('192.0.2.10') });
  const foreign = vxlanValue('192.0.2.201', '0e:00:00:00:02:01').replace('"vxlan"', '"vxlan\\u001b[31m"');
  const w = await store.txn([], [{ op: 'put', key: held.key, value: foreign, lease: held.lease }]);
  const checked = await k.check(held);
  t.not(checked, 'lost');
  const kv = (await store.get(held.key)).kv;
  t.is(kv?.value, vxlanValue('192.0.2.10'), 'our value is back');
  t.is(kv?.lease, held.lease, 'on our etcd lease');
  t.is(
    checked === 'lost' ? 'lost' : checked.modRevision,
    kv?.modRevision ?? '',
    'the held lease knows the revision of the restore',
  );
  t.is(k.stats.restores, 1);
  const warned = lines.map((l) => JSON.parse(l) as Record<string, string>).filter((l) => l.level === 'warn');
  t.is(warned.length, 1);
  t.like(warned[0], { key: held.key, foreignRevision: w.revision, restoredRevision: kv?.modRevision ?? '' });
  t.regex(
    warned[0]?.foreignValue ?? '',
    /"PublicIP":"192\.0\.2\.201".*vxlan\\u001b\[31m/,
    'the foreign value, its escape shown, not sent',
  );
  // A value of ours that did not reach etcd (a republish that failed): published by the check, no warning.
  const next = vxlanValue('192.0.2.10', '02:00:00:00:00:02');
  const again = checked === 'lost' ? 'lost' : await k.check(checked, next);
  t.is((await store.get(held.key)).kv?.value, next);
  t.is(again === 'lost' ? 'lost' : again.value, next);
  t.is(k.stats.restores, 1, 'not counted as a foreign write');
  t.is(lines.filter((l) => l.includes('"level":"warn"')).length, 1);
});

test("a key moved to an etcd lease of another host's: re-acquired (the same key: its owner record and the subnet held), and the other host's etcd lease is not revoked", async (t) => {
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  const k = keeper(store, '/moved', 'a');
  const held = await k.acquire({ range, publicIP: ip4('192.0.2.10'), value: vxlanValue('192.0.2.10') });
  const other = await store.grant(600);
  await store.txn(
    [],
    [{ op: 'put', key: '/moved/subnets/198.18.250.0-24', value: vxlanValue('192.0.2.250'), lease: other }],
  );
  await store.txn([], [{ op: 'put', key: held.key, value: vxlanValue('192.0.2.201'), lease: other }]);
  t.is(await k.check(held), 'lost', 'on another etcd lease: lost');
  const back = await k.acquire({
    range,
    publicIP: ip4('192.0.2.10'),
    value: vxlanValue('192.0.2.10'),
    previous: held.subnets,
  });
  t.is(back.subnetKey, held.subnetKey);
  t.is(back.how, 'owned');
  t.is((await store.get(held.key)).kv?.value, vxlanValue('192.0.2.10'));
  t.true((await store.timeToLive(other)) > 0, 'the etcd lease the writer moved the key to is not revoked');
  t.truthy((await store.get('/moved/subnets/198.18.250.0-24')).kv, "nor the other host's key on it deleted");
  t.is(await store.timeToLive(held.lease), -1, "the host's own previous etcd lease is revoked");
});

/** A presence record under `hostID` kept alive by someone else (a writer's keepalive loop); stop() ends it. */
async function forgedPresence(store: EtcdStore, prefix: string, hostID: string, publicIP: string): Promise<() => void> {
  const lease = await store.grant(6);
  await store.txn(
    [],
    [
      {
        op: 'put',
        key: presencePrefix(prefix) + hostID,
        value: encodePresence({
          bootID: 'forged-boot',
          instance: 'x',
          hostname: 'writer',
          publicIP,
          since: new Date().toISOString(),
        }),
        lease,
      },
    ],
  );
  const timer = setInterval(() => {
    void store.keepAliveOnce(lease).catch(() => undefined);
  }, 2000);
  return () => {
    clearInterval(timer);
  };
}

test("a presence record under this host's ID, kept alive, that no lease of the ID bears out is taken over, not believed (no move to a new identity); one a lease bears out is a clash", async (t) => {
  t.timeout(60_000);
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  const lines: string[] = [];
  const me = { hostID: 'victim', hostname: 'victim', bootID: 'my-boot' };
  const stopForging = await forgedPresence(store, '/pres', 'victim', '192.0.2.201');
  t.teardown(stopForging);
  const p = new Presence({
    store,
    prefix: '/pres',
    log: jsonLogger({
      write: (l) => {
        lines.push(l);
      },
    }),
    ttlSeconds: 3,
    onLost: () => undefined,
  });
  t.teardown(() => p.release());
  const r = await p.claim(me, '192.0.2.10', new AbortController().signal);
  t.deepEqual(r, { ok: true }, 'forged: taken over');
  t.regex((await store.get(presencePrefix('/pres') + 'victim')).kv?.value ?? '', /"bootID":"my-boot"/);
  t.regex(lines.join(''), /no lease of this identity bears it out/);

  // A real clone: a live record whose public IP the identity's lease bears out.
  const clone = await store.grant(600);
  await store.txn(
    [],
    [
      { op: 'put', key: '/pres2/subnets/198.18.7.0-24', value: vxlanValue('192.0.2.7'), lease: clone },
      {
        op: 'put',
        key: '/pres2/weft/owners/198.18.7.0-24',
        value: '{"hostID":"twin","hostname":"twin-1","publicIP":"192.0.2.7"}',
        lease: clone,
      },
    ],
  );
  const stopClone = await forgedPresence(store, '/pres2', 'twin', '192.0.2.7');
  t.teardown(stopClone);
  const q = new Presence({ store, prefix: '/pres2', log: silentLogger, ttlSeconds: 3, onLost: () => undefined });
  const c = await q.claim(
    { hostID: 'twin', hostname: 'twin-2', bootID: 'boot-2' },
    '192.0.2.8',
    new AbortController().signal,
  );
  t.false(c.ok, 'borne out: a clash');
});

test('the fleet view logs 300 malformed writes and 20 rewrites of one key in at most 20 lines in full, and sums up the rest in one line', async (t) => {
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  const lines: string[] = [];
  const view = new FleetView({
    store,
    prefix: '/flood',
    config: config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}'),
    own: { v4: prefix(ip4('198.18.1.0'), 24) },
    log: jsonLogger({
      write: (l) => {
        lines.push(l);
      },
    }),
    ownLease: () => undefined,
    onOwnKeyChanged: () => undefined,
    onPeersChanged: () => undefined,
  });
  await view.start(new AbortController().signal);
  for (let b = 0; b < 3; b++)
    await store.txn(
      [],
      Array.from({ length: 100 }, (_, i) => ({ op: 'put' as const, key: `/flood/subnets/junk-${b}-${i}`, value: 'x' })),
    );
  for (let i = 0; i < 20; i++) await store.txn([], [{ op: 'put', key: '/flood/subnets/junk-0-0', value: `x${i}` }]);
  await until(() => view.stats.malformedSeen === 320, 10_000);
  await view.stop();
  const full = lines.filter((l) => l.includes('"msg":"ignoring a malformed lease"'));
  const summary = lines.filter((l) => l.includes('"msg":"ignoring malformed leases (not logged one by one)"'));
  t.log(`320 malformed writes: ${full.length} lines in full, ${summary.length} summary line(s)`);
  t.true(full.length <= 20, `${full.length} lines in full`);
  t.is(summary.length, 1);
  t.like(JSON.parse(summary[0] ?? '{}'), { events: 320 - full.length });
});
