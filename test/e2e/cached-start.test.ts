// A host that reboots while etcd is unreachable comes up from its cached state (its own
// host.stateDir/state.json, as a separate VM has its own /var/lib/weft), degraded but ready,
// and rejoins etcd when it is back: without churn when nothing changed, and moving (never
// disturbing the new holder) when its subnet was taken while it was away.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Fabric, continuousPing, fabric, hostRoutes, mustLease, pingAll } from '../helpers/fabric.js';
import type { LabHost } from '../helpers/lab.js';
import { parseMetrics, sample } from '../helpers/metrics.js';
import { start, until } from '../helpers/procs.js';
import { bounded } from '../helpers/bound.js';

const VXLAN = 'cidr: 198.18.0.0/16\nsubnetMax: 198.18.199.0\nbackend:\n  type: vxlan';
const LISTEN = 'listen: 127.0.0.1:9473\n';

const stateFile = (h: LabHost): string => join(h.dir, 'state', 'state.json');
const cachedPeers = (h: LabHost): number =>
  existsSync(stateFile(h)) ? (JSON.parse(readFileSync(stateFile(h), 'utf8')) as { peers: unknown[] }).peers.length : -1;
const get = (f: Fabric, h: LabHost, path: string) => f.lab.httpGet(h.ns, `http://127.0.0.1:9473${path}`);

/** As after a power cut: weft gone, its vxlan device and iptables rules gone, the files under /run gone. */
/** Three lab hosts; h1 serves health on its loopback; the first `running` start weft; containers added. */
async function threeHosts(t: ExecutionContext, running: 2 | 3): Promise<{ f: Fabric; spec1: string }> {
  const f = await fabric(t, { hosts: 3, network: VXLAN, start: 0 });
  const spec1 = f.lab.writeSpec(f.lab.hosts[0] as LabHost, VXLAN, { host: LISTEN });
  for (const [i, h] of f.lab.hosts.slice(0, running).entries())
    await f.lab.startWeft(h, i === 0 ? spec1 : (f.specs[i] ?? ''));
  await f.addContainers();
  return { f, spec1 };
}

async function reboot(f: Fabric, h: LabHost): Promise<void> {
  const w = h.weft;
  if (!w) throw new Error(`${h.name} runs no weft`);
  w.child.kill('SIGTERM');
  await until(() => w.child.exitCode !== null, 20_000);
  await f.lab.ip(h.ns, ['link', 'del', 'flannel.1']);
  for (const table of ['filter', 'nat']) {
    await f.lab.exec(h.ns, 'iptables', ['-t', table, '-F']);
    await f.lab.exec(h.ns, 'iptables', ['-t', table, '-X']);
  }
  rmSync(h.subnetFile);
}

/** Every subnet key under the fleet prefix, in etcd. */
async function subnetKeys(f: Fabric): Promise<string[]> {
  return (await f.lab.etcdctl(['get', '--prefix', '--keys-only', '/coreos.com/network/subnets/']))
    .split('\n')
    .filter((l) => l.trim() !== '');
}

test.serial(
  'rebooted while etcd is down: ready from the cached state in seconds, same subnet.env, peers reachable; etcd back: normal, no churn, no duplicate',
  async (t) => {
    const step = bounded(t, 170_000);
    const { f, spec1 } = await threeHosts(t, 3);
    const [h1] = f.lab.hosts as [LabHost, LabHost, LabHost];
    step('waiting for the cached state');
    await until(() => cachedPeers(h1) === 2, 15_000);
    const env = f.lab.subnetText(h1);
    const lease = await mustLease(f.lab, h1);

    step('etcd down, h1 rebooted');
    await f.lab.stopEtcd();
    await reboot(f, h1);
    const t0 = Date.now();
    const w = await f.lab.startWeft(h1, spec1);
    const readyMs = Date.now() - t0;
    t.log(`ready from the cached state ${readyMs} ms after start (etcd down)`);
    t.true(readyMs < 10_000, 'ready within a few seconds');
    t.is(f.lab.subnetText(h1), env, 'subnet.env rewritten, unchanged');
    const readyz = await get(f, h1, '/readyz');
    t.is(readyz.status, 200);
    t.regex(readyz.body, /^ready\nwarning: running from cached state, etcd unreachable since \d{4}-\d\d-\d\dT/);
    const status = JSON.parse((await get(f, h1, '/status')).body) as {
      status: string;
      degradedSince: string | null;
      lease: { subnet: string };
    };
    t.regex(status.status, /DEGRADED: running from cached state/);
    t.truthy(status.degradedSince);
    t.is(status.lease.subnet, lease.subnet);
    t.is(sample(parseMetrics((await get(f, h1, '/metrics')).body), 'weft_degraded'), 1);
    step('pings while degraded');
    t.deepEqual(await pingAll(f), [], 'every container reaches every other, h1 included');

    step('etcd back');
    const monitor = start('nsenter', [
      `--net=/var/run/netns/${h1.ns}`,
      'ip',
      'monitor',
      'link',
      'address',
      'route',
      'neigh',
    ]);
    t.teardown(() => monitor.stop());
    const fdb = start('nsenter', [`--net=/var/run/netns/${h1.ns}`, 'bridge', 'monitor', 'fdb']);
    t.teardown(() => fdb.stop());
    await new Promise((r) => setTimeout(r, 500));
    const t1 = Date.now();
    await f.lab.startEtcd();
    await until(async () => (await get(f, h1, '/readyz')).body === 'ready\n', 60_000, 200);
    t.log(`normal again ${Date.now() - t1} ms after etcd started`);
    await new Promise((r) => setTimeout(r, 6000)); // a full check interval: files and rules re-read too
    await monitor.stop();
    await fdb.stop();
    // The kernel's own events (the IPv6 link-local address it gives a new device, the container's
    // ARP on cbr0) are not weft's: only weft's device and its routes, neighbours and addresses count.
    const lines = monitor
      .stdout()
      .split('\n')
      .filter((l) => l.trim() !== '');
    const weftLines = lines.filter(
      (l) => (l.includes('flannel.1') || l.includes('proto 175')) && !l.includes('fe80::'),
    );
    t.log(
      `ip monitor on h1 while it rejoined: ${weftLines.length} change(s) to weft's objects, ${lines.length - weftLines.length} kernel/container line(s) ignored`,
    );
    t.deepEqual(weftLines, [], 'no datapath change on h1 when it rejoined (ip monitor)');
    t.is(fdb.stdout().trim(), '', 'no fdb change on h1 (bridge monitor)');
    t.regex(w.output(), /"msg":"etcd answers again; left the cached state"/);
    const afterDegradedReady = w.output().slice(w.output().indexOf('"msg":"ready"'));
    t.notRegex(
      afterDegradedReady,
      /"msg":"(reconciled|wrote|repaired drift|iptables rules installed)"/,
      'nothing changed after the degraded start converged',
    );
    t.is(sample(parseMetrics((await get(f, h1, '/metrics')).body), 'weft_degraded'), 0);
    t.is((await mustLease(f.lab, h1)).subnet, lease.subnet, 'same lease');
    const keys = await subnetKeys(f);
    t.is(keys.length, 3, `one lease per host: ${keys.join(', ')}`);
    t.deepEqual(await pingAll(f), []);
  },
);

test.serial(
  'rebooted while etcd is down after its lease was deleted and its subnet taken: moves when etcd is back; the new host is never disturbed',
  async (t) => {
    const step = bounded(t, 170_000);
    const { f, spec1 } = await threeHosts(t, 2);
    const [h1, h2, h3] = f.lab.hosts as [LabHost, LabHost, LabHost];
    await until(() => cachedPeers(h1) === 1, 15_000);
    const taken = await mustLease(f.lab, h1);

    step('h1 away; its lease deleted; h3 takes its subnet');
    const w1 = h1.weft;
    if (!w1) throw new Error('no weft on h1');
    w1.child.kill('SIGTERM');
    await until(() => w1.child.exitCode !== null, 20_000);
    await f.lab.etcdctl(['del', taken.key]);
    await f.lab.etcdctl(['del', `/coreos.com/network/weft/owners/${taken.key.split('/').pop() ?? ''}`]);
    writeFileSync(h3.subnetFile, f.lab.subnetText(h1)); // h3 prefers that subnet, as a host that had it would
    const w3 = await f.lab.startWeft(h3, f.specs[2] ?? '');
    t.is((await mustLease(f.lab, h3)).subnet, taken.subnet, 'h3 now holds the subnet h1 had');
    await f.addContainers();
    const h3Lease = await mustLease(f.lab, h3);
    const h2Routes = await hostRoutes(f.lab, h2);

    step('etcd down, h1 rebooted');
    await f.lab.stopEtcd();
    await reboot(f, h1);
    const ping = continuousPing(f, 1, 2, { count: 300, intervalS: 0.1 }); // h2 -> h3's container, all along
    const w = await f.lab.startWeft(h1, spec1);
    t.regex((await get(f, h1, '/readyz')).body, /warning: running from cached state/);
    t.is(await hostRoutes(f.lab, h2), h2Routes, 'h2 still routes the subnet to h3');

    step('etcd back');
    await f.lab.startEtcd();
    await until(() => /"msg":"the cached subnet is held by another host; MOVED/.test(w.output()), 60_000, 100);
    await until(async () => (await get(f, h1, '/readyz')).body === 'ready\n', 30_000, 200);
    const moved = await mustLease(f.lab, h1);
    t.log(`h1 moved from ${taken.subnet} to ${moved.subnet}`);
    t.not(moved.subnet, taken.subnet);
    t.is(
      f.lab.subnetEnv(h1).get('FLANNEL_SUBNET'),
      moved.subnet.replace(/\.0\//, '.1/'),
      'subnet.env rewritten with the new subnet',
    );
    t.deepEqual(await mustLease(f.lab, h3), h3Lease, 'h3 keeps its lease, untouched');
    t.notRegex(w3.output(), /lease lost/);
    const keys = await subnetKeys(f);
    t.is(keys.length, 3, `one lease per host: ${keys.join(', ')}`);
    t.true(
      (await hostRoutes(f.lab, h2)).includes(`${taken.subnet} via ${taken.subnet.replace('/24', '')} dev flannel.1`),
      'h2 routes the taken subnet to h3',
    );
    await until(async () => (await hostRoutes(f.lab, h2)).includes(`${moved.subnet} via`), 10_000);
    // h1 left the subnet h3 now holds: it must program h3 there (its old own key is a peer now).
    await until(
      async () =>
        (await hostRoutes(f.lab, h1)).includes(`${taken.subnet} via ${taken.subnet.replace('/24', '')} dev flannel.1`),
      10_000,
      100,
      'h1 routes its old subnet to h3, its new holder',
    );
    const c3 = f.containers.find((c) => c.host === h3);
    t.true(
      await until(() => f.lab.ping(h1.ns, c3?.ip ?? '?'), 10_000, 200).catch(() => false),
      "h1 reaches h3's container in the subnet it left",
    );
    const r = await ping;
    t.log(`h2 -> h3 container across h1's degraded start and move: ${r.received}/${r.sent} replies`);
    t.is(r.received, r.sent, 'the new holder was never disturbed');
  },
);

test.serial(
  'stopped while running from the cached state: exits 0 promptly; without a cached state a start waits for etcd, as before',
  async (t) => {
    const step = bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: VXLAN });
    const [h1] = f.lab.hosts as [LabHost, LabHost];
    await until(() => cachedPeers(h1) === 1, 15_000);
    const lease = await mustLease(f.lab, h1);

    step('degraded, then SIGTERM');
    await f.lab.stopEtcd();
    await reboot(f, h1);
    const w = await f.lab.startWeft(h1, f.specs[0] ?? '');
    t.regex(w.output(), /"msg":"ready".*"degraded":"running from cached state/);
    const t0 = Date.now();
    w.child.kill('SIGTERM');
    await until(() => w.child.exitCode !== null, 20_000);
    t.log(`SIGTERM while degraded: exit ${w.child.exitCode} after ${Date.now() - t0} ms`);
    t.is(w.child.exitCode, 0);

    step('no cached state: waits');
    await f.lab.ip(h1.ns, ['link', 'del', 'flannel.1']);
    rmSync(h1.subnetFile);
    rmSync(stateFile(h1));
    const w2 = await f.lab.startWeft(h1, f.specs[0] ?? '', { waitReady: false });
    await new Promise((r) => setTimeout(r, 9000));
    t.notRegex(w2.output(), /"msg":"ready"/, 'not ready after 9 s without etcd and without a cached state');
    t.false(existsSync(h1.subnetFile), 'no subnet.env written from nothing');
    await f.lab.startEtcd();
    await until(() => w2.output().includes('"msg":"ready"'), 60_000, 100);
    t.is((await mustLease(f.lab, h1)).subnet, lease.subnet, 'its own lease, kept in etcd');
    await until(() => cachedPeers(h1) === 1, 15_000);
    t.pass();
  },
);
