// Issue 28, finding 1 and the MTU half of finding 3: network configs that do not fit the hosts,
// written straight into etcd by a writer on the LAN (as any host of the fleet can), on a
// running two-host fabric under traffic. Each must be refused by every host: subnets, routes,
// rules, the device's MTU and subnet.env unchanged, no packet lost, etcd reachable, and the
// reason in `weft status`. With the network around the LAN stored, a restarted host comes back
// on its own subnet (from its cached state) and rejoins once a usable config is back.
import test from 'ava';
import { WEFT } from '../helpers/cli.js';
import { bounded } from '../helpers/bound.js';
import { continuousPing, fabric, mustLease } from '../helpers/fabric.js';
import type { LabHost } from '../helpers/lab.js';
import { EtcdAgent } from '../helpers/lab-etcd.js';
import { until } from '../helpers/procs.js';

const NETWORK = 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan';
const CONFIG = '/coreos.com/network/config';
const LAN_LEASE = '/coreos.com/network/subnets/192.0.2.0-24';
// Its VTEP is the writer's: on a host that took the config, the LAN would be routed to it.
const LAN_LEASE_VALUE =
  '{"PublicIP":"203.0.113.66","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:66:66:66:66:66"}}';

interface Status {
  ready: boolean;
  warnings: string[];
  degradedSince: string | null;
  etcd: { reachable: boolean };
}

test.serial(
  'configs that take the LAN, half of IPv4 or an MTU the underlay cannot carry are refused by every host: nothing changes, no packet lost, etcd reachable; a host restarted meanwhile comes back on its subnet',
  async (t) => {
    const step = bounded(t, 170_000);
    const f = await fabric(t, { hosts: 2, network: NETWORK, host: 'listen: 127.0.0.1:9473\n' });
    await f.addContainers();
    const hosts = f.lab.hosts as [LabHost, LabHost];
    const writer = await EtcdAgent.start(f.lab, await f.lab.addNode('w', '192.0.2.201'));
    const good = (await f.lab.etcdctl(['get', '--print-value-only', CONFIG])).trim();
    const status = async (h: LabHost): Promise<Status> =>
      JSON.parse((await f.lab.httpGet(h.ns, 'http://127.0.0.1:9473/status')).body) as Status;
    /** What must not change: the lease, every route, weft's rules (without counters), the device MTU, subnet.env. */
    const state = async (h: LabHost) => ({
      lease: (await mustLease(f.lab, h)).key,
      routes: await f.lab.ip(h.ns, ['route', 'show']),
      rules: (await f.lab.exec(h.ns, 'iptables-save', []))
        .split('\n')
        .filter((l) => l.startsWith('-A') && l.includes('FLANNEL'))
        .join('\n'),
      mtu: /\bmtu (\d+)/.exec(await f.lab.ip(h.ns, ['link', 'show', 'flannel.1']))?.[1],
      subnetEnv: f.lab.subnetText(h),
    });
    const before = await Promise.all(hosts.map(state));
    t.true(
      before.every((s) => s.rules.length > 0 && s.mtu === '1450'),
      'a converged fabric to compare against',
    );

    const refusedBy = async (h: LabHost, reason: RegExp): Promise<boolean> =>
      (await status(h)).warnings.some((w) => reason.test(w));
    const cases: [string, string, RegExp, boolean][] = [
      [
        'Backend.MTU 65535 over a 1500-byte underlay',
        '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","MTU":65535}}',
        /overlay MTU would be 65485, above the 1450/,
        false,
      ],
      [
        'Network 0.0.0.0/1',
        '{"Network":"0.0.0.0/1","Backend":{"Type":"vxlan"}}',
        /Network 0\.0\.0\.0\/1 cannot be used on this host: it overlaps 0\.0\.0\.0\/8/,
        false,
      ],
      [
        'a network around the LAN, with a lease on the LAN',
        '{"Network":"192.0.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}',
        /Network 192\.0\.0\.0\/16 cannot be used on this host: it contains this host's own address 192\.0\.2\.\d+ \(eth0\)/,
        true,
      ],
    ];
    for (const [name, config, reason, lanLease] of cases) {
      step(`${name}: written by the writer under traffic`);
      const pings = [
        continuousPing(f, 0, 1, { seconds: 8, intervalS: 0.05 }),
        continuousPing(f, 1, 0, { seconds: 8, intervalS: 0.05 }),
      ];
      if (lanLease) await writer.put(LAN_LEASE, LAN_LEASE_VALUE);
      await writer.put(CONFIG, config);
      // Bounded, and not an assertion yet: a host that took the config shows what it changed first.
      for (const h of hosts)
        await until(() => refusedBy(h, reason), 25_000, 200, `${h.name} says why it refuses ${name}`).catch(
          () => false,
        );
      const got = await Promise.all(pings);
      t.log(`${name}: ${got.map((r) => `${r.sent - r.received}/${r.sent} lost`).join(', ')}`);
      const after = await Promise.all(hosts.map(state));
      for (const [i, h] of hosts.entries())
        t.deepEqual(after[i], before[i], `${name}: ${h.name}'s lease, routes, rules, MTU and subnet.env unchanged`);
      t.true(
        got.every((r) => r.sent > 0 && r.received === r.sent),
        `${name}: no packet lost`,
      );
      for (const h of hosts) t.true(await refusedBy(h, reason), `${name}: ${h.name} says why it refuses it`);
      for (const h of hosts) t.true((await status(h)).etcd.reachable, `${name}: ${h.name} reaches etcd`);
      const leases = await f.lab.exec(hosts[0].ns, process.execPath, [WEFT, 'leases', '--spec', f.specs[0] ?? '']);
      t.regex(leases, /198\.18\./, `${name}: weft leases answers`);

      if (lanLease) {
        step('restarting h2 while the network around the LAN is stored');
        const h2 = hosts[1];
        await h2.weft?.stop();
        await f.lab.startWeft(h2, f.specs[1] ?? '');
        t.deepEqual(
          await state(h2),
          before[1],
          'the restarted h2 runs its own subnet, routes and rules (from its cached state), nothing of the stored config',
        );
        t.true(await refusedBy(h2, reason), 'and says why it does not use the stored config');
        t.false(
          (await f.lab.ip(h2.ns, ['route', 'show', '192.0.2.0/24'])).includes('flannel'),
          'the LAN is never routed into the fabric',
        );
      }

      step(`${name}: the usable config back`);
      if (lanLease) await writer.del(LAN_LEASE);
      await writer.put(CONFIG, good);
      for (const h of hosts)
        await until(
          async () => {
            const s = await status(h);
            return s.ready && s.degradedSince === null && !s.warnings.some((w) => reason.test(w));
          },
          25_000,
          200,
          `${h.name} ready on the usable config`,
        );
    }
    const final = await Promise.all(hosts.map(state));
    for (const [i, h] of hosts.entries()) t.deepEqual(final[i], before[i], `${h.name} ends as it began`);
  },
);
