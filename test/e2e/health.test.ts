// Running under systemd's eyes: sd_notify on a real NOTIFY_SOCKET, the watchdog, /healthz,
// /readyz, /metrics (parsed by Prometheus' own parser), weft status, and the Podman output.
// weft runs in a namespaced host of a lab fabric, with real etcd and the real kernel.
import test from 'ava';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { WEFT } from '../helpers/cli.js';
import { fabric, leaseOf } from '../helpers/fabric.js';
import type { Lab, LabHost } from '../helpers/lab.js';
import { parseMetrics, sample } from '../helpers/metrics.js';
import { NotifySocket } from '../helpers/notify.js';
import { run, sleep, start, until } from '../helpers/procs.js';
import { bounded } from '../helpers/bound.js';

const NETWORK = 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan';

/** GET http://127.0.0.1:9473<path> from inside the host's namespace. */
const get = (lab: Lab, h: LabHost, path: string) => lab.httpGet(h.ns, `http://127.0.0.1:9473${path}`);

async function weftIn(h: LabHost, args: string[]): Promise<{ code: number | null; stdout: string; out: string }> {
  return run('nsenter', [`--net=/var/run/netns/${h.ns}`, process.execPath, WEFT, ...args]);
}

test.serial(
  'sd_notify order, health endpoints, metrics, weft status and the Podman output; /readyz follows etcd and the lease both ways',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: NETWORK, start: 0 });
    const [h1, h2] = f.lab.hosts;
    if (!h1 || !h2) throw new Error('no hosts');
    const podman = join(h1.dir, 'weft.json');
    const spec1 = f.lab.writeSpec(h1, NETWORK, {
      host: 'listen: 127.0.0.1:9473\netcdGrace: 3s\nleaseTTL: 10s\nleaseRenewMargin: 5s\n',
      outputs: `outputs:\n  podman: ${podman}\n  dockerDaemonJson: ${join(h1.dir, 'daemon.json')}\n`,
    });
    await f.lab.startWeft(h2, f.specs[1] ?? '');
    const sock = await NotifySocket.open(h1.dir);
    t.teardown(() => sock.close());
    await f.lab.startWeft(h1, spec1, { env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '1000000' } });

    // --- sd_notify: start-up STATUS lines, then READY=1 with a human STATUS, then the watchdog.
    const ready = await sock.waitFor('READY=1');
    const env = f.lab.subnetEnv(h1);
    const subnet = (await leaseOf(f.lab, h1))?.subnet ?? '?';
    t.is(ready.msg, `READY=1\nSTATUS=leased ${subnet}, 1 peer`);
    const before = sock
      .all()
      .filter((m) => m.t < ready.t)
      .map((m) => m.msg);
    t.true(before.length > 0 && before.every((m) => m.startsWith('STATUS=starting: ')), before.join(' | '));
    t.true(
      before.some((m) => m.includes('acquiring a subnet lease')),
      'the start-up steps are reported',
    );
    t.true(statSync(h1.subnetFile).mtimeMs <= ready.t, 'subnet.env was written before READY=1');
    t.true(existsSync(podman) && existsSync(join(h1.dir, 'daemon.json')), 'every output exists before READY=1');
    t.true(
      (await f.lab.ip(h1.ns, ['route', 'show'])).includes('dev flannel.1'),
      'the peer route is in place before READY=1',
    );
    t.true(
      sock.with('WATCHDOG=1').every((m) => m.t >= ready.t),
      'no WATCHDOG=1 before READY=1',
    );
    await sleep(2200);
    const pets = sock.with('WATCHDOG=1').filter((m) => m.t > ready.t);
    t.true(pets.length >= 3, `WATCHDOG=1 every WatchdogSec/2 while healthy (${pets.length} in 2.2 s)`);
    // NotifyAccess=all accepts a message from any process of the unit: weft's own children (the
    // ip/bridge monitors here, iptables, wg, the outputs hook) must not inherit NOTIFY_SOCKET.
    const descendants = async (pid: number, depth = 3): Promise<number[]> => {
      if (depth === 0) return [];
      const kids = (await run('pgrep', ['-P', String(pid)])).stdout.split('\n').filter(Boolean).map(Number);
      return [...kids, ...(await Promise.all(kids.map((k) => descendants(k, depth - 1)))).flat()];
    };
    const kids = await descendants(h1.weft?.child.pid ?? 0);
    const environs = kids.flatMap((k) => {
      try {
        return [{ k, env: readFileSync(`/proc/${k}/environ`, 'utf8').split('\0') }];
      } catch {
        return [];
      }
    });
    const weftItself = environs
      .filter((e) => readFileSync(`/proc/${e.k}/cmdline`, 'utf8').includes(`${WEFT}\0run`))
      .map((e) => e.k);
    const children = environs.filter((e) => !weftItself.includes(e.k));
    t.true(children.length >= 2, `weft's long-lived children (the monitors) found: ${children.length}`);
    t.deepEqual(
      children
        .filter((e) => e.env.some((v) => v.startsWith('NOTIFY_SOCKET=')))
        .map((e) => readFileSync(`/proc/${e.k}/cmdline`, 'utf8').replace(/\0/g, ' ')),
      [],
      'no child of weft holds NOTIFY_SOCKET',
    );

    // --- HTTP: healthz, readyz, status, metrics (parsed by Prometheus' own parser).
    t.deepEqual(await get(f.lab, h1, '/healthz'), { status: 200, body: 'weft is running\n' });
    t.deepEqual(await get(f.lab, h1, '/readyz'), { status: 200, body: 'ready\n' });
    const fams = parseMetrics((await get(f.lab, h1, '/metrics')).body);
    t.is(sample(fams, 'weft_ready'), 1);
    t.is(sample(fams, 'weft_peers', { state: 'programmed' }), 1);
    t.is(sample(fams, 'weft_peers', { state: 'known' }), 1);
    t.is(sample(fams, 'weft_info', { subnet, backend: 'vxlan' }), 1);
    const expiry = sample(fams, 'weft_lease_expiry_seconds') ?? -1;
    t.true(expiry > 0 && expiry <= 10, `lease expiry ${expiry} s`);
    t.true((sample(fams, 'weft_reconcile_passes_total') ?? 0) >= 1);
    t.true((sample(fams, 'weft_reconcile_duration_seconds_count') ?? 0) >= 1, 'pass durations are observed');
    t.true((sample(fams, 'process_resident_memory_bytes') ?? 0) > 10e6, 'process RSS');
    for (const name of [
      'weft_lease_renewals',
      'weft_etcd_request_errors',
      'weft_etcd_watch_restarts',
      'weft_malformed_leases_seen',
      'weft_drift_repairs',
    ]) {
      t.is(fams.find((x) => x.name === name)?.type, 'counter', `${name} is a counter`);
    }

    // --- weft status, human and --json, from the running daemon.
    const st = await weftIn(h1, ['status', '--spec', spec1, '--json']);
    t.is(st.code, 0, st.out);
    const report = JSON.parse(st.stdout) as {
      ready: boolean;
      lease: { subnet: string; publicIP: string };
      peers: { programmed: number };
      etcd: { reachable: boolean };
    };
    t.like(report, {
      ready: true,
      lease: { subnet, publicIP: h1.ip },
      peers: { programmed: 1 },
      etcd: { reachable: true },
    });
    const human = await weftIn(h1, ['status', '--spec', spec1]);
    t.is(human.code, 0);
    t.regex(human.stdout, new RegExp(`^leased ${subnet.replace(/\./g, '\\.')}, 1 peer\\n`));
    t.regex(human.stdout, /ready +yes/);
    t.log(human.stdout.trimEnd());

    // --- Podman (netavark) network: the lease, its gateway, the overlay MTU; stable across restarts.
    const net = JSON.parse(readFileSync(podman, 'utf8')) as {
      name: string;
      id: string;
      subnets: { subnet: string; gateway: string }[];
      options: { mtu: string };
    };
    t.is(net.name, 'weft');
    t.regex(net.id, /^[0-9a-f]{64}$/);
    t.deepEqual(net.subnets, [{ subnet, gateway: (env.get('FLANNEL_SUBNET') ?? '').split('/')[0] ?? '' }]);
    t.is(net.options.mtu, env.get('FLANNEL_MTU') ?? '?');

    // --- etcd gone (hung) past the grace period: not ready, and the datapath keeps working.
    await f.addContainers();
    const [c1, c2] = f.containers;
    if (!c1 || !c2) throw new Error('no containers');
    f.lab.freezeEtcd(true);
    const t0 = Date.now();
    const down = await until(
      async () => {
        const r = await get(f.lab, h1, '/readyz');
        return r.status === 503 && r.body.includes('etcd unreachable') ? r : undefined;
      },
      20_000,
      200,
    );
    t.log(`etcd frozen: /readyz 503 after ${Date.now() - t0} ms: ${down?.body.trim() ?? ''}`);
    t.true(await f.lab.ping(c1.ns, c2.ip, { count: 3 }), 'the datapath keeps working while etcd is gone');
    const notReady = await until(
      () => sock.with('STATUS=').find((m) => m.t > t0 && m.msg.includes('NOT READY')),
      10_000,
      100,
    );
    t.truthy(notReady, 'STATUS= says NOT READY');
    // The lease (TTL 10 s) cannot be renewed: by our clock it expires, and /readyz says so.
    const expired = await until(
      async () => {
        const r = await get(f.lab, h1, '/readyz');
        return r.body.includes('expired') ? r : undefined;
      },
      20_000,
      200,
    );
    t.regex(expired?.body ?? '', /lease on .* expired/);
    t.is(sample(parseMetrics((await get(f.lab, h1, '/metrics')).body), 'weft_ready'), 0);
    t.is((await weftIn(h1, ['status', '--spec', spec1])).code, 1, 'weft status exits 1 when not ready');

    // --- etcd back: the lease is renewed or re-acquired (same subnet) and /readyz is 200 again.
    f.lab.freezeEtcd(false);
    const t1 = Date.now();
    await until(async () => (await get(f.lab, h1, '/readyz')).status === 200, 30_000, 200);
    t.log(`etcd back: /readyz 200 after ${Date.now() - t1} ms`);
    t.is((await leaseOf(f.lab, h1))?.subnet, subnet, 'the same subnet');
    t.is(f.lab.subnetEnv(h1).get('FLANNEL_SUBNET'), env.get('FLANNEL_SUBNET') ?? '?');
    t.true(await f.lab.ping(c1.ns, c2.ip, { count: 2 }));

    // --- SIGTERM: STOPPING=1, exit 0, and no message after it.
    await h1.weft?.stop(10_000);
    t.is(h1.weft?.child.exitCode, 0);
    const all = await sock.count(1);
    const stop = all.findIndex((m) => m.msg.startsWith('STOPPING=1'));
    t.true(stop >= 0, 'STOPPING=1 sent');
    t.is(stop, all.length - 1, 'nothing after STOPPING=1');
  },
);

test.serial(
  'watchdog: pings stop while the reconcile loop is stuck (a hung iptables-save) and resume after',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 1, network: NETWORK, start: 0 });
    const [h1] = f.lab.hosts;
    if (!h1) throw new Error('no host');
    // Injected fault: an iptables-save that hangs while a flag file exists (as on a host whose
    // nftables is wedged). weft finds it first on PATH; everything else is the real thing.
    const bin = join(h1.dir, 'bin');
    const flag = join(h1.dir, 'hang');
    const real = (await run('sh', ['-c', 'command -v iptables-save'])).stdout.trim();
    await run('mkdir', ['-p', bin]);
    writeFileSync(
      join(bin, 'iptables-save'),
      `#!/bin/sh\nwhile [ -e ${flag} ]; do sleep 0.1; done\nexec ${real} "$@"\n`,
    );
    chmodSync(join(bin, 'iptables-save'), 0o755);
    const spec = f.lab.writeSpec(h1, NETWORK, { host: 'listen: 127.0.0.1:9473\n' });
    const sock = await NotifySocket.open(h1.dir);
    t.teardown(() => sock.close());
    await f.lab.startWeft(h1, spec, {
      env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '1000000', PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    await sock.waitFor('READY=1');
    await until(() => sock.with('WATCHDOG=1').length >= 2, 5000, 50);

    writeFileSync(flag, '');
    const hungAt = Date.now();
    // The rules are read on a ruleset change (xtables-monitor): make one; the pass that reads them
    // hangs from then on. After 15 s it counts as stuck.
    await f.lab.exec(h1.ns, 'iptables', ['-t', 'filter', '-N', 'WEFT-TEST-CHANGE']);
    await until(() => h1.weft?.output().includes('reconcile loop stuck'), 40_000, 100);
    const stuckAt = Date.now();
    await sleep(3000);
    const during = sock.with('WATCHDOG=1').filter((m) => m.t > stuckAt + 600);
    t.is(during.length, 0, 'no WATCHDOG=1 while stuck: systemd would restart weft');
    t.is((await get(f.lab, h1, '/healthz')).status, 200, 'the process itself is alive');
    const r = await get(f.lab, h1, '/readyz');
    t.is(r.status, 503);
    t.regex(r.body, /reconciler stuck/);
    t.log(`stuck after ${stuckAt - hungAt} ms of a hung pass; /readyz: ${r.body.trim()}`);

    rmSync(flag);
    const freedAt = Date.now();
    t.true(
      await until(() => sock.with('WATCHDOG=1').some((m) => m.t > freedAt), 10_000, 50),
      'pings resume once the loop moves again',
    );
    await until(async () => (await get(f.lab, h1, '/readyz')).status === 200, 10_000, 200);
  },
);

test('an output that cannot be written keeps the host not ready, and its lease is renewed all the while (it never runs out)', async (t) => {
  bounded(t, 90_000);
  const f = await fabric(t, { hosts: 1, network: NETWORK, start: 0 });
  const [h1] = f.lab.hosts;
  if (!h1) throw new Error('no hosts');
  // The Docker options file's directory is a regular file: every write fails (ENOTDIR), even as root.
  const blocker = join(h1.dir, 'not-a-directory');
  writeFileSync(blocker, '');
  const spec = f.lab.writeSpec(h1, NETWORK, {
    host: 'listen: 127.0.0.1:9473\nleaseTTL: 5s\nleaseRenewMargin: 3s\n',
    outputs: `outputs:\n  docker:\n    file: ${join(blocker, 'docker')}\n`,
  });
  await f.lab.startWeft(h1, spec, { waitReady: false });
  const first = await until(() => leaseOf(f.lab, h1), 30_000, 100, 'the host leases a subnet').catch((e: unknown) => {
    t.log(h1.weft?.output().slice(-3000));
    throw e;
  });
  // Three lease TTLs: a lease nobody renews is gone after one.
  await sleep(15_000);
  const later = await leaseOf(f.lab, h1);
  t.truthy(first);
  t.is(later?.key, first?.key, 'the same lease key, still there: renewed while the host is not ready');
  const readyz = await get(f.lab, h1, '/readyz');
  t.is(readyz.status, 503, readyz.body);
  t.regex(readyz.body, /not-a-directory/, 'readiness names the output it cannot write');
  t.is(h1.weft?.child.exitCode, null, 'weft keeps running and retrying');
});

/**
 * Another local process on weft's port, in the host's namespace: an HTTP server answering every
 * path with a document shaped like weft's whose fields are terminal escapes.
 */
const SQUATTER_JS = `const evil = '\\x1b]0;owned\\x07\\x1b[2J';
require('node:http').createServer((q, r) => { r.writeHead(200, { 'content-type': 'application/json' }); r.end(JSON.stringify({ ready: true, status: evil, peers: { known: evil } })); })
  .listen(9473, '127.0.0.1', () => { console.log('listening'); });`;

test.serial(
  'another process holds host.listen when weft starts: weft leases, programs its peer and is READY all the same, says why, and takes the port once it is free',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: NETWORK, start: 0 });
    const [h1, h2] = f.lab.hosts;
    if (!h1 || !h2) throw new Error('no hosts');
    await f.lab.startWeft(h2, f.specs[1] ?? '');
    const squatter = start('nsenter', [`--net=/var/run/netns/${h1.ns}`, process.execPath, '-e', SQUATTER_JS]);
    t.teardown(() => squatter.stop());
    await until(() => squatter.stdout().includes('listening'), 10_000, 50, 'the squatter listens');
    const spec1 = f.lab.writeSpec(h1, NETWORK, { host: 'listen: 127.0.0.1:9473\n' });
    const sock = await NotifySocket.open(h1.dir);
    t.teardown(() => sock.close());
    await f.lab.startWeft(h1, spec1, { env: { NOTIFY_SOCKET: sock.path } });

    // --- The fabric does not depend on the port: lease, peer programmed both ways, READY=1.
    const ready = await sock.waitFor('READY=1');
    const warning =
      'WARNING: not serving /healthz, /readyz, /status and /metrics: cannot listen on 127.0.0.1:9473 (host.listen): EADDRINUSE, another process is listening on that address; retrying';
    const [l1, l2] = [await leaseOf(f.lab, h1), await leaseOf(f.lab, h2)];
    t.is(
      ready.msg,
      `READY=1\nSTATUS=leased ${l1?.subnet ?? '?'}, 1 peer; ${warning}`,
      'READY=1, and STATUS= says why nothing answers on the port',
    );
    t.true((await f.lab.ip(h1.ns, ['route', 'show'])).includes(`${l2?.subnet ?? '?'} via`), "h1 routes h2's subnet");
    await until(
      async () => (await f.lab.ip(h2.ns, ['route', 'show'])).includes(`${l1?.subnet ?? '?'} via`),
      10_000,
      100,
      "h2 routes h1's subnet",
    );
    t.regex(
      h1.weft?.output() ?? '',
      /"level":"warn","msg":"cannot serve health and metrics; weft runs on without them and retries".*"error":"cannot listen on 127\.0\.0\.1:9473 \(host\.listen\): EADDRINUSE/,
    );

    // --- weft status and weft doctor read the squatter's answer: refused, nothing of it printed.
    const st = await weftIn(h1, ['status', '--spec', spec1]);
    t.is(st.code, 1);
    t.false(st.out.includes('\x1b'), 'no escape character reaches the terminal');
    t.regex(
      st.out,
      /^weft: what answers on http:\/\/127\.0\.0\.1:9473\/status is not weft's status: phase is missing, expected a string; see which process listens there/,
    );
    const doc = await weftIn(h1, ['doctor', '--spec', spec1, '--json']);
    const agent = (
      JSON.parse(doc.stdout) as { findings: { check: string; verdict: string; what: string }[] }
    ).findings.find((x) => x.check === 'agent');
    t.like(agent, { verdict: 'fail' });
    t.regex(
      agent?.what ?? '',
      /^what answers on http:\/\/127\.0\.0\.1:9473\/status is not weft's status \(.*\): another process may hold host\.listen$/,
    );
    t.log(`weft status: ${st.out.trim()}`);

    // --- The squatter goes: weft binds within its backoff (10 s at most), the warning goes.
    await squatter.stop();
    const goneAt = Date.now();
    await until(
      async () => (await get(f.lab, h1, '/healthz')).body === 'weft is running\n',
      20_000,
      100,
      'weft serves the port',
    );
    t.log(`weft served host.listen ${Date.now() - goneAt} ms after the squatter exited`);
    t.deepEqual(await get(f.lab, h1, '/readyz'), { status: 200, body: 'ready\n' });
    t.regex(h1.weft?.output() ?? '', /"msg":"serving health and metrics".*"failedAttempts":\d+/);
    await until(
      () => sock.with('STATUS=').some((m) => m.t > goneAt && !m.msg.includes('WARNING')),
      5000,
      50,
      'STATUS= without the warning',
    );
    const failures =
      sample(parseMetrics((await get(f.lab, h1, '/metrics')).body), 'weft_health_listen_failures_total') ?? 0;
    t.true(failures >= 1, `weft_health_listen_failures_total ${failures}`);
    t.log(`failed attempts before the port was free: ${failures}`);
    const after = await weftIn(h1, ['status', '--spec', spec1]);
    t.is(after.code, 0, after.out);
    t.true(after.stdout.startsWith(`leased ${l1?.subnet ?? '?'}, 1 peer\n`));
  },
);
