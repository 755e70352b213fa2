// The reliability suite (docs/reliability.md): each scenario injects one fault into a real
// fabric (namespaces, etcd, the kernel datapath, weft run) and checks what must hold, printing
// its figure with t.log. Scenarios already covered elsewhere are listed in docs/reliability.md.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { type Fabric, continuousPing, fabric, hostRoutes, mustLease, timeUntil } from '../helpers/fabric.js';
import type { LabHost } from '../helpers/lab.js';
import { EtcdAgent } from '../helpers/lab-etcd.js';
import { sleep, until } from '../helpers/procs.js';
import { bounded } from '../helpers/bound.js';

const VXLAN = 'cidr: 198.18.0.0/16\nsubnetMax: 198.18.99.0\nbackend:\n  type: vxlan';
const HOSTGW = 'cidr: 198.18.0.0/16\nsubnetMax: 198.18.99.0\nbackend:\n  type: host-gw';

const loss = (r: { sent: number; received: number }): string => `${r.sent - r.received}/${r.sent} lost`;

test.serial(
  'agent: kill -9 in a loop of 20 restarts under continuous traffic: same subnet every time, no packet lost',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: VXLAN });
    await f.addContainers();
    const [h1] = f.lab.hosts as [LabHost];
    const subnet = (await mustLease(f.lab, h1)).subnet;
    const env = f.lab.subnetText(h1);
    const flow = continuousPing(f, 1, 0, { seconds: 30, intervalS: 0.05 });
    const readyMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      h1.weft?.child.kill('SIGKILL');
      const killed = h1.weft;
      await until(() => killed?.child.exitCode !== null || killed.child.signalCode !== null, 5000, 10);
      const t0 = Date.now();
      await f.lab.startWeft(h1, f.specs[0] ?? '');
      readyMs.push(Date.now() - t0);
      t.is((await mustLease(f.lab, h1)).subnet, subnet, `restart ${i + 1}: same subnet`);
      t.is(f.lab.subnetText(h1), env, `restart ${i + 1}: subnet.env unchanged`);
    }
    const r = await flow;
    readyMs.sort((a, b) => a - b);
    t.log(
      `20 x kill -9 + restart: ${loss(r)}; start to ready median ${readyMs[10] ?? 0} ms, max ${readyMs[19] ?? 0} ms`,
    );
    t.is(r.received, r.sent, 'no packet lost');
  },
);

test.serial(
  'etcd: every member down for longer than the renew margin: no packet lost, the lease is kept (same subnet), ready again after',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: VXLAN, host: 'leaseTTL: 12s\nleaseRenewMargin: 8s\n' });
    await f.addContainers();
    const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
    const before = [await mustLease(f.lab, h1), await mustLease(f.lab, h2)].map((l) => l.subnet);
    const flow = continuousPing(f, 0, 1, { seconds: 16, intervalS: 0.05 });
    await sleep(1000);
    await f.lab.stopEtcd();
    const downAt = Date.now();
    await sleep(10_000); // renewals fall due 4 s after each renewal, and fail for the rest
    await f.lab.startEtcd();
    t.log(`etcd down for ${Date.now() - downAt} ms (renew margin 8 s of a 12 s TTL)`);
    const r = await flow;
    t.log(`traffic while etcd was down: ${loss(r)}`);
    t.is(r.received, r.sent, 'no packet lost');
    for (const h of [h1, h2])
      await until(
        () =>
          h.weft?.output().includes('lease renewed') ||
          h.weft?.output().includes('lease re-acquired with the same subnet'),
        20_000,
        200,
      ).catch(() => undefined);
    const after = [await mustLease(f.lab, h1), await mustLease(f.lab, h2)].map((l) => l.subnet);
    t.deepEqual(after, before, 'the same subnets');
    t.false(h1.weft?.output().includes('DIFFERENT subnet'));
  },
);

test.serial(
  'etcd: a host cut off from etcd while the fleet changes and history is compacted: it re-lists and catches up',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: VXLAN });
    const [h1] = f.lab.hosts as [LabHost];
    const agent = await EtcdAgent.start(f.lab, await f.lab.addNode('w', '192.0.2.201'));
    // h1 loses etcd (its packets to etcd are dropped, in h1's own namespace)...
    const out = ['OUTPUT', '-p', 'tcp', '-d', '192.0.2.100', '--dport', '2379', '-j', 'DROP'];
    const inp = ['INPUT', '-p', 'tcp', '-s', '192.0.2.100', '--sport', '2379', '-j', 'DROP'];
    for (const rule of [out, inp]) await f.lab.exec(h1.ns, 'iptables', ['-I', ...rule]);
    // ...while a peer joins, the fleet churns, and the history h1's watch stands on is compacted.
    await agent.put(
      '/coreos.com/network/subnets/198.18.230.0-24',
      '{"PublicIP":"192.0.2.66","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:66"}}',
    );
    for (let i = 0; i < 20; i++) await agent.put(`/coreos.com/network/churn/${String(i)}`, 'x');
    const rev = /"revision":(\d+)/.exec(await f.lab.etcdctl(['endpoint', 'status', '-w', 'json']))?.[1] ?? '';
    await f.lab.etcdctl(['compact', rev, '--physical']);
    await sleep(3000);
    t.false((await hostRoutes(f.lab, h1)).includes('198.18.230.0/24'), 'h1 could not have heard of the new peer');
    // Its connections to etcd die (as after a long partition): it must reconnect and watch again
    // from a revision that no longer exists.
    await f.lab.exec(h1.ns, 'ss', ['-K', 'dst', '192.0.2.100', 'dport', '=', '2379']);
    for (const rule of [out, inp]) await f.lab.exec(h1.ns, 'iptables', ['-D', ...rule]);
    const ms = await timeUntil(
      async () => (await hostRoutes(f.lab, h1)).includes('198.18.230.0/24 via 198.18.230.0 dev flannel.1'),
      90_000,
    );
    const why = /"msg":"(etcd watch broken; re-listing|periodic re-list found changes the watch missed)"[^\n]*/.exec(
      h1.weft?.output() ?? '',
    )?.[0];
    t.log(
      `compacted at revision ${rev} while h1 was cut off; the new peer was programmed on h1 ${ms} ms after etcd came back (${why?.slice(0, 200) ?? 'no re-list logged'})`,
    );
    t.truthy(why, 'h1 re-listed');
  },
);

async function etcdLeaseOf(f: Fabric, key: string): Promise<string> {
  const out = JSON.parse(await f.lab.etcdctl(['get', key, '-w', 'json'])) as { kvs?: { lease?: number | string }[] };
  return String(out.kvs?.[0]?.lease ?? '');
}

const NEW_PEER =
  '{"PublicIP":"192.0.2.67","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:67"}}';

test.serial(
  'etcd: a 3-member cluster loses its leader: no packet lost, leases keep being renewed, a new peer is programmed everywhere',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, {
      hosts: 3,
      network: VXLAN,
      host: 'leaseTTL: 12s\nleaseRenewMargin: 8s\n',
      etcdMembers: 3,
    });
    await f.addContainers();
    const leases = await Promise.all(
      f.lab.hosts.map(async (h) => {
        const l = await mustLease(f.lab, h);
        return { h, l, etcdLease: await etcdLeaseOf(f, l.key) };
      }),
    );
    const flow = continuousPing(f, 0, 2, { seconds: 16, intervalS: 0.05 });
    await sleep(1000);
    const leader = await f.lab.etcdLeader();
    t.true(leader >= 0);
    await f.lab.stopEtcdMember(leader);
    const killedAt = Date.now();
    await f.lab.etcdctl(['put', '/coreos.com/network/subnets/198.18.231.0-24', NEW_PEER]);
    const ms = await timeUntil(async () => {
      for (const h of f.lab.hosts) if (!(await hostRoutes(f.lab, h)).includes('198.18.231.0/24 via')) return false;
      return true;
    }, 30_000).catch(async (e: unknown) => {
      for (const h of f.lab.hosts) {
        if ((await hostRoutes(f.lab, h)).includes('198.18.231.0/24 via')) continue;
        t.log(
          `${h.name} never programmed the new peer; its log:\n${(h.weft?.output() ?? '').split('\n').slice(-25).join('\n')}`,
        );
      }
      throw e;
    });
    t.log(
      `leader m${String(leader + 1)} stopped; a new peer written right after was programmed on all 3 hosts ${Date.now() - killedAt} ms after the stop (${ms} ms after the write)`,
    );
    await sleep(Math.max(0, 13_000 - (Date.now() - killedAt))); // past a whole TTL: only renewals keep the keys
    for (const { h, l, etcdLease } of leases) {
      t.is(
        await etcdLeaseOf(f, l.key),
        etcdLease,
        `${h.name}: the same etcd lease, still alive a TTL after the leader died (renewed through the fail-over)`,
      );
    }
    const r = await flow;
    t.log(`traffic across the leader loss: ${loss(r)}`);
    t.is(r.received, r.sent);
    f.lab.startEtcdMember(leader);
  },
);

/** The member that holds h's fleet watch: the only one with a watcher (one host runs weft). */
async function watchMember(f: Fabric, h: LabHost): Promise<number> {
  for (let i = 0; i < f.lab.etcdURLs.length; i++) {
    const r = await f.lab.httpGet(h.ns, `${f.lab.etcdURLs[i] ?? ''}/metrics`);
    if (/^etcd_debugging_mvcc_watcher_total [1-9]/m.test(r.body)) return i;
  }
  return -1;
}

test.serial(
  "etcd: the member holding a host's watch is cut off the network: the host notices and still learns of new peers",
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 1, network: VXLAN, etcdMembers: 3 });
    const [h1] = f.lab.hosts as [LabHost];
    const i = (await until(() => watchMember(f, h1).then((m) => (m >= 0 ? m + 1 : 0)), 10_000, 200)) - 1;
    t.true(i >= 0, 'found the member with the watch');
    await f.lab.isolateEtcdMember(i, true);
    const cutAt = Date.now();
    await sleep(1000);
    await f.lab.etcdctl(['put', '/coreos.com/network/subnets/198.18.232.0-24', NEW_PEER], { except: i });
    await timeUntil(async () => (await hostRoutes(f.lab, h1)).includes('198.18.232.0/24 via'), 90_000);
    const took = Date.now() - cutAt;
    const why =
      /"msg":"etcd watch broken; re-listing"[^\n]*/.exec(h1.weft?.output() ?? '')?.[0] ?? 'no broken watch logged';
    t.log(
      `the member with h1's watch (m${String(i + 1)}) cut off; a new peer written 1 s later was programmed on h1 ${took} ms after the cut (${why.slice(0, 170)})`,
    );
    // The watch's liveness check (5 s of silence, then 3 s for the answer to a progress request)
    // finds the dead member, which is then skipped for 2 s (its breaker opened), so the re-list
    // goes to another: about 8 s, under 20 s whatever the load, far from the 60 s periodic re-list.
    t.true(took < 20_000, 'within 20 s of the cut');
    await f.lab.isolateEtcdMember(i, false);
  },
);

test.serial(
  "etcd: the member holding a host's watch loses its peers but not its clients: it cancels the watch (no leader) and the host re-lists elsewhere",
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 1, network: VXLAN, etcdMembers: 3 });
    const [h1] = f.lab.hosts as [LabHost];
    const i = (await until(() => watchMember(f, h1).then((m) => (m >= 0 ? m + 1 : 0)), 10_000, 200)) - 1;
    t.true(i >= 0, 'found the member with the watch');
    // Raft traffic (port 2380) to and from that member is dropped in its own namespace; clients still reach it.
    const ns = `${f.lab.prefix}-etcd${i === 0 ? '' : String(i + 1)}`;
    for (const rule of [
      ['INPUT', '--dport'],
      ['INPUT', '--sport'],
      ['OUTPUT', '--dport'],
      ['OUTPUT', '--sport'],
    ]) {
      await f.lab.exec(ns, 'iptables', ['-I', rule[0] ?? '', '-p', 'tcp', rule[1] ?? '', '2380', '-j', 'DROP']);
    }
    const cutAt = Date.now();
    await sleep(1000);
    // Written through the healthy members: the writer is not what is being tested.
    await f.lab.etcdctl(['put', '/coreos.com/network/subnets/198.18.233.0-24', NEW_PEER], { except: i });
    await timeUntil(async () => (await hostRoutes(f.lab, h1)).includes('198.18.233.0/24 via'), 90_000);
    const programmedMs = Date.now() - cutAt;
    // weft holds two watches (the subnets and the config key), each on its own stream, which the
    // client may open on different members: the member found holds at least one of them. Whichever
    // it holds, the member cancels it (no leader) and weft re-lists that prefix elsewhere.
    const noLeader = (): string | undefined =>
      /"msg":"etcd watch broken; re-listing"[^\n]*no leader[^\n]*/.exec(h1.weft?.output() ?? '')?.[0];
    await until(() => noLeader() !== undefined, Math.max(1000, 15_000 - (Date.now() - cutAt)), 100).catch(
      () => undefined,
    );
    const why = noLeader() ?? 'no watch cancelled for lack of a leader';
    t.log(
      `m${String(i + 1)} cut off from its peers; a new peer written 1 s later was programmed on h1 ${programmedMs} ms after the cut; ${why.slice(0, 200)}`,
    );
    t.regex(why, /no leader/, 'the member itself cancelled the watch (require-leader)');
    t.true(programmedMs < 15_000, 'the new peer programmed within 15 s of the cut');
  },
);

test.serial(
  'host: the underlay link flaps (host-gw routes are flushed by the kernel): weft puts them back',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: HOSTGW });
    await f.addContainers();
    const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
    const s2 = (await mustLease(f.lab, h2)).subnet;
    t.true((await hostRoutes(f.lab, h1)).includes(`${s2} via ${h2.ip} dev eth0`));
    await f.lab.ip(h1.ns, ['link', 'set', 'eth0', 'down']);
    await until(async () => !(await hostRoutes(f.lab, h1)).includes(s2), 5000, 20);
    await sleep(1000);
    await f.lab.ip(h1.ns, ['link', 'set', 'eth0', 'up']);
    const ms = await timeUntil(
      async () => (await hostRoutes(f.lab, h1)).includes(`${s2} via ${h2.ip} dev eth0`),
      10_000,
    );
    t.log(`link down 1 s: the kernel dropped the route to ${s2}; back ${ms} ms after the link came up`);
    t.true(
      await until(
        () => f.lab.ping(f.containers[0]?.ns ?? '', f.containers[1]?.ip ?? '', { count: 1, waitS: 1 }),
        10_000,
        100,
      ),
    );
    t.true(ms < 2000, 'within 2 s');
  },
);

/** Garbage as an attacker or a broken tool would write it: bad keys, bad JSON, wrong types, huge values. */
function junk(i: number): [string, string] {
  const r = randomBytes(8).toString('hex');
  const keys = [
    `/coreos.com/network/subnets/${r}`,
    `/coreos.com/network/subnets/198.18.${i % 256}.${i % 7}-24`,
    `/coreos.com/network/subnets/198.18.${i % 256}.0-${i % 33}`,
    `/coreos.com/network/subnets/10.${i % 256}.0.0-24`,
    `/coreos.com/network/subnets/198.18.${100 + (i % 150)}.0-24/extra`,
    `/coreos.com/network/subnets/${'9'.repeat(i % 40)}`,
  ];
  const values = [
    '',
    '{',
    'null',
    '[]',
    '{"PublicIP":1}',
    `{"PublicIP":"192.0.2.${i % 300}","BackendType":"vxlan","BackendData":{"VNI":"x","VtepMAC":"zz"}}`,
    `{"PublicIP":"192.0.2.9","PublicIPv6":"","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:09"}}`,
    r.repeat(i % 2000),
    '{"PublicIP":"192.0.2.8","BackendType":"host-gw"}',
  ];
  return [keys[i % keys.length] ?? '', values[(i * 7) % values.length] ?? ''];
}

test.serial(
  "hostile data: 1,000 random malformed entries and a lease outside the network: no valid peer lost, never routed, no crash; a claim on a host's own subnet is never routed there and is undone",
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: VXLAN });
    await f.addContainers();
    const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
    const agent = await EtcdAgent.start(f.lab, await f.lab.addNode('w', '192.0.2.201'));
    const own1 = await mustLease(f.lab, h1);
    const routesBefore = (await hostRoutes(f.lab, h2))
      .split('\n')
      .filter((l) => l.includes('flannel.1'))
      .sort();
    const entries = Array.from({ length: 1000 }, (_, i) => junk(i)).filter(
      ([k]) => !k.endsWith(own1.subnet.replace('/', '-')),
    );
    const flow = continuousPing(f, 0, 1, { seconds: 6, intervalS: 0.05 });
    await agent.putMany(entries);
    // A lease outside the network, well formed: must never be routed.
    await agent.put(
      '/coreos.com/network/subnets/203.0.113.0-24',
      '{"PublicIP":"192.0.2.55","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:55"}}',
    );
    const r = await flow;
    t.log(`${entries.length} malformed entries and a lease outside the network written under traffic: ${loss(r)}`);
    t.is(r.received, r.sent, 'no packet lost');
    for (const h of [h1, h2]) t.is(h.weft?.child.exitCode, null, `${h.name} still runs`);
    t.deepEqual(
      (await hostRoutes(f.lab, h2))
        .split('\n')
        .filter((l) => l.includes('flannel.1'))
        .sort(),
      routesBefore,
      'h2 routes exactly the valid peers it had',
    );
    for (const h of [h1, h2])
      t.false((await hostRoutes(f.lab, h)).includes('203.0.113.0/24'), 'a lease outside the network is never routed');
    // One line per write would let any writer flood every host's journal: the first 20 in full,
    // the rest counted and summed up once a minute (core/base/log-limit.ts).
    const quarantined = (h1.weft?.output().match(/"msg":"ignoring a malformed lease"/g) ?? []).length;
    t.log(
      `h1 logged ${quarantined} of ${entries.length} malformed entries in full (the rest go into a summary line a minute after the first held back)`,
    );
    t.true(quarantined >= 1 && quarantined <= 20, `${quarantined} lines in full`);

    // Someone writes another host's value on h1's own key. h2 believes it for a moment (it cannot
    // know better); h1 must never route its own subnet anywhere, and takes its key back.
    const claimed = await agent.put(
      own1.key,
      '{"PublicIP":"192.0.2.56","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:56"}}',
    );
    const back = await timeUntil(
      async () => (await f.lab.etcdctl(['get', '--print-value-only', own1.key])).includes(`"PublicIP":"${h1.ip}"`),
      20_000,
    );
    await until(
      async () => (await f.lab.exec(h2.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1'])).includes(`dst ${h1.ip}`),
      10_000,
      50,
    );
    t.log(
      `a foreign value on h1's own key was replaced by h1 ${back} ms later (write took ${claimed.t1 - claimed.t0} ms); h2 follows`,
    );
    t.false((await hostRoutes(f.lab, h1)).includes(`${own1.subnet} via`), 'h1 never routes its own subnet');
    t.is((await mustLease(f.lab, h1)).subnet, own1.subnet, 'h1 keeps its subnet');
    t.true(
      await until(() => f.lab.ping(f.containers[0]?.ns ?? '', f.containers[1]?.ip ?? '', { count: 1 }), 10_000, 100),
    );
  },
);
