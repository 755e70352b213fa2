// weft run in a real fabric: 3 namespaced hosts, a real etcd, the kernel's vxlan and routes.
import test from 'ava';
import { type Lab, type LabHost } from '../helpers/lab.js';
import { until } from '../helpers/procs.js';
import { fabric, hostRoutes, leaseOf, mustLease, pingAll, timeUntil } from '../helpers/fabric.js';
import { bounded } from '../helpers/bound.js';

const VXLAN = 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan';
const HOSTGW = 'cidr: 198.18.0.0/16\nbackend:\n  type: host-gw';

for (const [backend, net] of [
  ['vxlan', VXLAN],
  ['host-gw', HOSTGW],
] as const) {
  test.serial(
    `${backend}: flanneld-format leases and subnet.env, every pair reachable, joins and leaves converge fast`,
    async (t) => {
      bounded(t, 150_000);
      const f = await fabric(t, { hosts: 3, network: net, host: 'leaseTTL: 5s\nleaseRenewMargin: 2s\n', start: 2 });
      const [h1, h2, h3] = f.lab.hosts as [LabHost, LabHost, LabHost];

      // A host joining is programmed on every peer within 1 s of its lease appearing.
      const joinedAt = Date.now();
      await f.lab.startWeft(h3, f.specs[2]!, { waitReady: false });
      await until(async () => (await leaseOf(f.lab, h3)) !== undefined, 10_000, 20);
      const leasedAt = Date.now();
      const sub3 = (await mustLease(f.lab, h3)).subnet;
      for (const h of [h1, h2]) {
        const ms = await timeUntil(async () => (await hostRoutes(f.lab, h)).includes(`${sub3} via`), 5000);
        t.log(
          `${backend}: ${h.name} programmed ${sub3} ${ms} ms after the lease appeared (start-to-lease ${leasedAt - joinedAt} ms)`,
        );
        t.true(Date.now() - leasedAt <= 1000 + 100, `${h.name} programmed the new host within 1 s`);
      }
      await until(() => h3.weft!.output().includes('"msg":"ready"'), 10_000);

      for (const h of f.lab.hosts) {
        const { value, subnet } = await mustLease(f.lab, h);
        const mac =
          backend === 'vxlan'
            ? (await f.lab.ip(h.ns, ['-j', 'link', 'show', 'flannel.1'])).match(/"address":"([0-9a-f:]+)"/)?.[1]
            : undefined;
        const expected =
          backend === 'vxlan'
            ? `{"PublicIP":"${h.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac ?? '?'}"}}`
            : `{"PublicIP":"${h.ip}","PublicIPv6":null,"BackendType":"host-gw"}`;
        t.is(value, expected, `${h.name}'s lease is byte-identical to flanneld's`);
        const gw = subnet.replace(/\.0\/24$/, '.1/24');
        t.is(
          f.lab.subnetText(h),
          `FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=${gw}\nFLANNEL_MTU=${backend === 'vxlan' ? 1450 : 1500}\nFLANNEL_IPMASQ=true\n`,
        );
      }
      if (backend === 'vxlan') {
        const link = await f.lab.ip(h1.ns, ['-d', 'link', 'show', 'flannel.1']);
        t.regex(link, /mtu 1450 /);
        t.regex(link, /vxlan id 1 local 192\.0\.2\.1 dev eth0 .*dstport 8472 nolearning/);
        const sub1 = (await mustLease(f.lab, h1)).subnet.replace('/24', '/32');
        t.regex(
          await f.lab.ip(h1.ns, ['addr', 'show', 'flannel.1']),
          new RegExp(`inet ${sub1.replace(/\./g, '\\.')} `),
        );
      }
      const nat = await f.lab.exec(h1.ns, 'iptables-save', ['-t', 'nat']);
      t.regex(nat, /-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG/);
      t.regex(
        nat,
        /-A FLANNEL-POSTRTG -s 198\.18\.0\.0\/16 ! -d 224\.0\.0\.0\/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully/,
      );
      t.regex(
        await f.lab.exec(h1.ns, 'iptables-save', ['-t', 'filter']),
        /-A FLANNEL-FWD -d 198\.18\.0\.0\/16 -m comment --comment "flanneld forward" -j ACCEPT/,
      );

      await f.addContainers();
      t.deepEqual(await pingAll(f), [], 'every container reaches every other across the overlay');

      // Drift: a peer route deleted by someone else comes back within 2 s of the netlink event.
      const sub2 = (await mustLease(f.lab, h2)).subnet;
      await f.lab.ip(h1.ns, ['route', 'del', sub2]);
      t.log(
        `${backend}: deleted route repaired in ${await timeUntil(async () => (await hostRoutes(f.lab, h1)).includes(`${sub2} via`), 2000)} ms`,
      );

      // A peer leaving (its lease expires after kill -9) is removed everywhere within 2 s.
      h3.weft!.child.kill('SIGKILL');
      await until(async () => (await leaseOf(f.lab, h3).catch(() => undefined)) === undefined, 15_000, 50);
      const goneAt = Date.now();
      for (const h of [h1, h2]) {
        await timeUntil(async () => !(await hostRoutes(f.lab, h)).includes(`${sub3} via`), 5000);
        t.true(Date.now() - goneAt <= 2000, `${h.name} removed the expired peer within 2 s`);
      }
      if (backend === 'vxlan') {
        const fdb = await f.lab.exec(h1.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1']);
        t.notRegex(fdb, new RegExp(`dst ${h3.ip.replace(/\./g, '\\.')} `), 'its fdb entry is gone too');
      }
    },
  );
}

test.serial(
  'host-gw: a peer behind a router is reported and skipped; the others keep working. vxlan crosses the router',
  async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 3, network: HOSTGW, behindRouter: [3] });
    const [h1, h2, h3] = f.lab.hosts as [LabHost, LabHost, LabHost];
    const sub3 = (await mustLease(f.lab, h3)).subnet;
    await until(() => h1.weft!.output().includes('"msg":"peer not programmed"'), 5000);
    t.regex(
      h1.weft!.output(),
      new RegExp(
        `"subnet":"${sub3.replace('/', '-')}","reason":"PublicIP 198\\.51\\.100\\.3 is not on eth0's L2 segment \\(reached via router 192\\.0\\.2\\.254\\)`,
      ),
    );
    t.false((await hostRoutes(f.lab, h1)).includes(sub3), 'no route to the far peer');
    await f.addContainers();
    const c = f.containers;
    t.true(await until(() => f.lab.ping(c[0]!.ns, c[1]!.ip), 5000), 'adjacent peers still reach each other');
    t.is(h1.weft!.child.exitCode, null, 'the agent keeps running');
    t.is(h2.weft!.child.exitCode, null);

    const v = await fabric(t, { hosts: 3, network: VXLAN, behindRouter: [3] });
    await v.addContainers();
    t.deepEqual(await pingAll(v), [], 'vxlan reaches the host behind the router');
  },
);

test.serial('host-gw refuses to run behind NAT (public IP not on the interface)', async (t) => {
  bounded(t, 150_000);
  const f = await fabric(t, { hosts: 1, network: HOSTGW, start: 0, host: 'publicIP: 203.0.113.9\n' });
  const h = f.lab.hosts[0]!;
  const p = await f.lab.startWeft(h, f.specs[0]!, { waitReady: false });
  await until(() => p.child.exitCode !== null, 15_000);
  t.is(p.child.exitCode, 1);
  t.regex(
    p.output(),
    /host-gw cannot run behind NAT: host\.publicIP 203\.0\.113\.9 differs from eth0's address 192\.0\.2\.1/,
  );
});

export type { Lab };
