// What a running fabric survives: drift, malformed etcd data, restarts, an etcd outage, and a
// host that behaves exactly like flanneld (interop both ways, its MAC changing on reboot).
import test from 'ava';
import { WEFT } from '../helpers/cli.js';
import { continuousPing, fabric, hostRoutes, macOf, mustLease, pingAll, timeUntil } from '../helpers/fabric.js';
import type { LabHost } from '../helpers/lab.js';
import { sleep, until } from '../helpers/procs.js';
import { bounded } from '../helpers/bound.js';

// Hosts lease from 198.18.1-199; the tests' own leases (flanneld-style host, synthetic peers) use 240 and 250.
const VXLAN = 'cidr: 198.18.0.0/16\nsubnetMax: 198.18.199.0\nbackend:\n  type: vxlan';

/** Continuous ping from one container to another: resolves with packets sent and received. */
test.serial(
  'drift is repaired: routes, neighbours, fdb entries and a deleted device within 2 s, flushed chains within 10 s',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 3, network: VXLAN });
    await f.addContainers();
    const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
    const s2 = (await mustLease(f.lab, h2)).subnet;
    const g2 = s2.replace('/24', '');
    const mac1 = await macOf(f.lab, h1, 'flannel.1');
    const mac2 = await macOf(f.lab, h2, 'flannel.1');
    const routeBack = async () => (await hostRoutes(f.lab, h1)).includes(`${s2} via ${g2} dev flannel.1`);

    await f.lab.ip(h1.ns, ['route', 'del', s2]);
    t.log(`route repaired in ${await timeUntil(routeBack, 2000)} ms`);
    await f.lab.ip(h1.ns, ['neigh', 'del', g2, 'dev', 'flannel.1']);
    t.log(
      `neighbour repaired in ${await timeUntil(async () => (await f.lab.ip(h1.ns, ['neigh', 'show', 'dev', 'flannel.1'])).includes(`${g2} lladdr ${mac2} PERMANENT`), 2000)} ms`,
    );
    await f.lab.exec(h1.ns, 'bridge', ['fdb', 'del', mac2, 'dev', 'flannel.1', 'dst', h2.ip, 'self']);
    t.log(
      `fdb entry repaired in ${await timeUntil(async () => (await f.lab.exec(h1.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1'])).includes(`${mac2} dst ${h2.ip} self permanent`), 2000)} ms`,
    );

    await f.lab.ip(h1.ns, ['link', 'del', 'flannel.1']);
    t.log(`device recreated with all peers in ${await timeUntil(async () => routeBack().catch(() => false), 2000)} ms`);
    t.is(await macOf(f.lab, h1, 'flannel.1'), mac1, 'the recreated device keeps its MAC, so peers stay valid');
    t.regex(h1.weft!.output(), /"msg":"repaired drift","change":"ip link add flannel\.1 /, 'weft recreated it');
    t.deepEqual(await pingAll(f), []);

    await f.lab.exec(h1.ns, 'iptables', ['-F', 'FLANNEL-FWD']);
    await f.lab.exec(h1.ns, 'iptables', [
      '-t',
      'nat',
      '-D',
      'POSTROUTING',
      '-m',
      'comment',
      '--comment',
      'flanneld masq',
      '-j',
      'FLANNEL-POSTRTG',
    ]);
    const rulesMs = await timeUntil(async () => {
      const fwd = await f.lab.exec(h1.ns, 'iptables-save', ['-t', 'filter']);
      const nat = await f.lab.exec(h1.ns, 'iptables-save', ['-t', 'nat']);
      return (
        fwd.includes('-A FLANNEL-FWD -s 198.18.0.0/16') &&
        nat.includes('-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG')
      );
    }, 10_000);
    t.log(`iptables chains repaired in ${rulesMs} ms`);
    t.regex(h1.weft!.output(), /"msg":"repaired drift"/);
  },
);

test.serial('malformed etcd entries disturb nothing', async (t) => {
  bounded(t, 150_000);
  const f = await fabric(t, { hosts: 3, network: VXLAN });
  await f.addContainers();
  const before = await Promise.all(f.lab.hosts.map((h) => hostRoutes(f.lab, h)));
  const P = '/coreos.com/network';
  const bad: [string, string][] = [
    [`${P}/subnets/not-a-subnet-key`, '{}'],
    [`${P}/subnets/198.18.77.0-24`, 'not json'],
    [
      `${P}/subnets/198.18.78.0-24`,
      '{"PublicIP":"192.0.2.9","PublicIPv6":"","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:09"}}',
    ],
    [
      `${P}/subnets/203.0.113.0-24`,
      '{"PublicIP":"192.0.2.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:0a"}}',
    ],
    [
      `${P}/subnets-old/198.18.79.0-24`,
      '{"PublicIP":"192.0.2.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:0b"}}',
    ],
  ];
  for (const [k, v] of bad) await f.lab.etcdctl(['put', k, v]);
  await until(() => f.lab.hosts[0]!.weft!.output().includes('ignoring a malformed lease'), 5000);
  await sleep(500);
  t.deepEqual(await Promise.all(f.lab.hosts.map((h) => hostRoutes(f.lab, h))), before, 'no route changed on any host');
  t.deepEqual(await pingAll(f), []);
});

test.serial(
  'a continuous ping survives a weft restart (SIGTERM, start) and a 20 s etcd outage without loss; the watch resumes',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 3, network: VXLAN });
    await f.addContainers();
    const h2 = f.lab.hosts[1]!;
    const lease = await mustLease(f.lab, h2);
    const mac = await macOf(f.lab, h2, 'flannel.1');

    const ping = continuousPing(f, 0, 1, { count: 250, intervalS: 0.02 });
    await sleep(1000);
    h2.weft!.child.kill('SIGTERM');
    await until(() => h2.weft!.child.exitCode !== null, 10_000);
    t.is(h2.weft!.child.exitCode, 0, 'SIGTERM exits 0');
    const again = await f.lab.startWeft(h2, f.specs[1]!);
    const r = await ping;
    t.log(`restart: ${r.received}/${r.sent} replies`);
    t.is(r.received, r.sent, 'no packet lost across the restart');
    t.is((await mustLease(f.lab, h2)).subnet, lease.subnet, 'same subnet');
    t.is(await macOf(f.lab, h2, 'flannel.1'), mac, 'same VTEP MAC');
    t.notRegex(again.output(), /"msg":"reconciled"/, 'the restarted agent adopted everything and changed nothing');

    const outage = continuousPing(f, 0, 2, { count: 240, intervalS: 0.1 });
    await sleep(1000);
    await f.lab.stopEtcd();
    await sleep(20_000);
    await f.lab.startEtcd();
    const o = await outage;
    t.log(`etcd outage: ${o.received}/${o.sent} replies`);
    t.is(o.received, o.sent, 'no packet lost while etcd was down');
    // The watch resumed: a new peer (flanneld-format lease) is programmed on every host.
    await f.lab.etcdctl([
      'put',
      '/coreos.com/network/subnets/198.18.240.0-24',
      '{"PublicIP":"192.0.2.77","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:77"}}',
    ]);
    for (const h of f.lab.hosts)
      await until(
        async () => (await hostRoutes(f.lab, h)).includes('198.18.240.0/24 via 198.18.240.0 dev flannel.1'),
        10_000,
      );
    t.pass();
  },
);

test.serial(
  'a host behaving exactly like flanneld and weft hosts reach each other; its MAC change leaves no stale fdb entry',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 3, network: VXLAN, start: 2 });
    const [h1, h2, h3] = f.lab.hosts as [LabHost, LabHost, LabHost];
    const S = '198.18.250.0/24';
    const G = '198.18.250.0';
    const key = '/coreos.com/network/subnets/198.18.250.0-24';
    const granted = await f.lab.etcdctl(['lease', 'grant', '600']);
    const leaseID = /lease ([0-9a-f]+) granted/.exec(granted)?.[1] ?? '';
    const weftPeers = await Promise.all(
      [h1, h2].map(async (h) => ({
        h,
        subnet: (await mustLease(f.lab, h)).subnet,
        mac: await macOf(f.lab, h, 'flannel.1'),
      })),
    );

    // flanneld's datapath (§3.2, §3.5), programmed by hand, and its lease in flanneld's format.
    const flanneld = async (mac: string) => {
      await f.lab.ip(h3.ns, [
        'link',
        'add',
        'flannel.1',
        'address',
        mac,
        'type',
        'vxlan',
        'id',
        '1',
        'local',
        h3.ip,
        'dev',
        'eth0',
        'dstport',
        '8472',
        'nolearning',
      ]);
      await f.lab.ip(h3.ns, ['link', 'set', 'flannel.1', 'mtu', '1450', 'up']);
      await f.lab.ip(h3.ns, ['addr', 'add', `${G}/32`, 'dev', 'flannel.1']);
      for (const p of weftPeers) {
        const g = p.subnet.replace('/24', '');
        await f.lab.ip(h3.ns, ['neigh', 'replace', g, 'lladdr', p.mac, 'dev', 'flannel.1', 'nud', 'permanent']);
        await f.lab.exec(h3.ns, 'bridge', [
          'fdb',
          'replace',
          p.mac,
          'dev',
          'flannel.1',
          'dst',
          p.h.ip,
          'self',
          'permanent',
        ]);
        await f.lab.ip(h3.ns, ['route', 'replace', p.subnet, 'via', g, 'dev', 'flannel.1', 'onlink']);
      }
      await f.lab.etcdctl([
        'put',
        `--lease=${leaseID}`,
        key,
        `{"PublicIP":"${h3.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`,
      ]);
    };
    await f.lab.exec(h3.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await flanneld('0e:aa:00:00:00:01');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      h3.subnetFile,
      `FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.250.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
    );
    await f.addContainers();
    f.containers.push({ ...(await f.lab.addContainer(h3)), host: h3 });
    t.deepEqual(await pingAll(f), [], 'weft <-> flanneld both ways');

    // The flanneld host reboots: new device, new MAC, lease rewritten (flanneld §3.2).
    await f.lab.ip(h3.ns, ['link', 'del', 'flannel.1']);
    await flanneld('0e:bb:00:00:00:02');
    for (const h of [h1, h2]) {
      await until(
        async () =>
          (await f.lab.exec(h.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1'])).includes(
            `0e:bb:00:00:00:02 dst ${h3.ip}`,
          ),
        5000,
      );
      const fdb = await f.lab.exec(h.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1']);
      t.false(fdb.includes('0e:aa:00:00:00:01'), `${h.name} has no stale fdb entry for the old MAC`);
      t.regex(
        await f.lab.ip(h.ns, ['neigh', 'show', 'dev', 'flannel.1']),
        new RegExp(`${G.replace(/\./g, '\\.')} lladdr 0e:bb:00:00:00:02 PERMANENT`),
      );
    }
    t.true((await hostRoutes(f.lab, h1)).includes(`${S} via ${G} dev flannel.1`));
    t.deepEqual(await pingAll(f), [], 'still reachable after the MAC change');
  },
);

test.serial('weft plan shows what a pass would change and changes nothing', async (t) => {
  bounded(t, 150_000);
  const f = await fabric(t, { hosts: 2, network: VXLAN });
  const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
  const plan = async () =>
    f.lab.exec(h1.ns, 'env', [
      `WEFT_HOST_ID=${f.lab.prefix}-h1`,
      process.execPath,
      WEFT,
      'plan',
      '--spec',
      f.specs[0]!,
    ]);
  t.regex(await plan(), /no changes: the datapath and rules match/);
  h1.weft!.child.kill('SIGTERM');
  await until(() => h1.weft!.child.exitCode !== null, 10_000);
  const s2 = (await mustLease(f.lab, h2)).subnet;
  await f.lab.ip(h1.ns, ['route', 'del', s2]);
  const out = await plan();
  t.true(out.includes(`ip route replace ${s2} via ${s2.replace('/24', '')} dev flannel.1 onlink proto 175`), out);
  t.false((await hostRoutes(f.lab, h1)).includes(s2), 'plan changed nothing');
  await f.lab.startWeft(h1, f.specs[0]!);
  t.true((await hostRoutes(f.lab, h1)).includes(s2), 'weft run repairs it');
});

test.serial(
  "a lease deleted behind the agent's back is re-acquired with the same subnet, and peers keep the host",
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: VXLAN });
    await f.addContainers();
    const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
    const before = await mustLease(f.lab, h2);
    await f.lab.etcdctl(['del', before.key]);
    await until(() => h2.weft!.output().includes('"msg":"lease re-acquired with the same subnet"'), 5000);
    const after = await mustLease(f.lab, h2);
    t.is(after.subnet, before.subnet);
    t.is(after.value, before.value, 'the same lease value (byte-identical) is published again');
    await until(async () => (await hostRoutes(f.lab, h1)).includes(`${before.subnet} via`), 5000);
    t.deepEqual(await pingAll(f), []);
    t.is(h2.weft!.child.exitCode, null, 'the agent never exits on a lost lease');
  },
);

test.serial(
  'a host whose subnet is taken over while it runs moves, and programs the new holder of the subnet it left',
  async (t) => {
    bounded(t, 120_000);
    const f = await fabric(t, { hosts: 2, network: VXLAN });
    const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
    const old = await mustLease(f.lab, h1);
    // Another host takes h1's subnet: its owner record goes, a foreign value (no etcd lease) lands on the key.
    await f.lab.etcdctl(['del', `/coreos.com/network/weft/owners/${old.key.split('/').pop() ?? ''}`]);
    await f.lab.etcdctl([
      'put',
      old.key,
      '{"PublicIP":"192.0.2.77","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:77"}}',
    ]);
    await until(
      () => h1.weft?.output().includes('re-acquired a DIFFERENT subnet') ?? false,
      20_000,
      100,
      'h1 moves to another subnet',
    );
    const moved = await mustLease(f.lab, h1);
    t.not(moved.subnet, old.subnet);
    const via = `${old.subnet} via ${old.subnet.replace('/24', '')} dev flannel.1`;
    for (const h of [h1, h2]) {
      await until(
        async () => (await hostRoutes(f.lab, h)).includes(via),
        10_000,
        100,
        `${h.name} routes the subnet h1 left to its new holder`,
      );
    }
    t.regex(
      await f.lab.exec(h1.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1']),
      /0e:00:00:00:00:77 dst 192\.0\.2\.77 /,
      'h1 programs the new holder',
    );
  },
);
