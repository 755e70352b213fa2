// Cloned hosts: three lab hosts with no WEFT_HOST_ID all read this machine's /etc/machine-id,
// as VMs cloned from one image without a new machine-id do; each has a kernel boot ID of its
// own, as separate VMs have. They must never hold the same subnet. And a single host whose
// underlay address changes across a restart (or a reboot) keeps its subnet.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bounded } from '../helpers/bound.js';
import { type Fabric, pingAll } from '../helpers/fabric.js';
import { Lab, type LabHost } from '../helpers/lab.js';
import { until } from '../helpers/procs.js';

const NETWORK = 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan';

const subnetOf = (lab: Lab, h: LabHost): string => lab.subnetEnv(h).get('FLANNEL_SUBNET') ?? '';

async function moveAddress(lab: Lab, h: LabHost, to: string): Promise<void> {
  await lab.ip(h.ns, ['addr', 'flush', 'dev', 'eth0']);
  await lab.ip(h.ns, ['addr', 'add', `${to}/24`, 'dev', 'eth0']);
  await lab.ip(h.ns, ['route', 'replace', 'default', 'via', '192.0.2.254']);
}

test.serial(
  'three hosts sharing one machine-id never hold the same subnet; a host whose address changes across a restart or a reboot keeps its own',
  async (t) => {
    const step = bounded(t, 150_000);
    const lab = await Lab.create({ hosts: 3 });
    t.teardown(() => lab.destroy());
    const [h1, h2, h3] = lab.hosts as [LabHost, LabHost, LabHost];
    const specs = lab.hosts.map((h) => lab.writeSpec(h, NETWORK));
    const boots = lab.hosts.map(() => randomUUID());

    step('starting three clones together');
    const t0 = Date.now();
    await Promise.all(
      lab.hosts.map((h, i) => lab.startWeft(h, specs[i] ?? '', { machineIdentity: true, bootID: boots[i] ?? '' })),
    );
    t.log(`three clones ready in ${Date.now() - t0} ms`);
    const subnets = lab.hosts.map((h) => subnetOf(lab, h));
    t.is(new Set(subnets).size, 3, `three different subnets: ${subnets.join(' ')}`);
    const clashes = lab.hosts.filter((h) => h.weft?.output().includes('host identity clash'));
    t.is(clashes.length, 2, 'the two later clones found the clash and moved');
    for (const h of clashes) {
      t.regex(h.weft?.output() ?? '', /systemd-machine-id-setup/, `${h.name} names the fix`);
    }
    const owners = (await lab.etcdctl(['get', '--prefix', '--print-value-only', '/coreos.com/network/weft/owners/']))
      .trim()
      .split('\n');
    t.is(new Set(owners.map((o) => (JSON.parse(o) as { hostID: string }).hostID)).size, 3, 'three owners in etcd');
    t.false(
      owners.some((o) => o.includes(lab.prefix)),
      'no WEFT_HOST_ID in use',
    );
    const machineID = readFileSync('/etc/machine-id', 'utf8').trim();
    t.false(
      (await lab.etcdctl(['get', '--prefix', '/coreos.com/network/'])).includes(machineID),
      'the raw machine-id is never published',
    );

    step('containers on the clones reach each other');
    const f: Fabric = { lab, specs, containers: [], addContainers: () => Promise.resolve() };
    for (const h of lab.hosts) f.containers.push({ ...(await lab.addContainer(h)), host: h });
    t.deepEqual(await pingAll(f), []);

    step('h1 restarted on a new underlay address (same boot)');
    const s1 = subnetOf(lab, h1);
    await h1.weft?.stop();
    await moveAddress(lab, h1, '192.0.2.41');
    await lab.startWeft(h1, specs[0] ?? '', { machineIdentity: true, bootID: boots[0] ?? '' });
    t.is(subnetOf(lab, h1), s1, 'h1 keeps its subnet on a new address');

    step('h2 "rebooted" (new boot ID) on a new underlay address');
    const s2 = subnetOf(lab, h2);
    await h2.weft?.stop();
    await moveAddress(lab, h2, '192.0.2.42');
    await lab.startWeft(h2, specs[1] ?? '', { machineIdentity: true, bootID: randomUUID() });
    t.is(subnetOf(lab, h2), s2, 'h2 keeps its subnet across a reboot on a new address');
    t.is(new Set(lab.hosts.map((h) => subnetOf(lab, h))).size, 3);

    step('peers follow the new addresses');
    await until(
      async () =>
        (await lab.ip(h3.ns, ['neigh', 'show'])).length > 0 &&
        (await lab.exec(h3.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1'])).includes('192.0.2.41'),
      5000,
      100,
      "h3 learns h1's new address",
    );
    t.deepEqual(await pingAll(f), []);
  },
);
