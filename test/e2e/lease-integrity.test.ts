// A host's own lease cannot be taken by an etcd writer (issue 28, finding 4). Any host can write
// any key, also under another host's etcd lease ID (`etcdctl put --lease`). A writer that puts
// its own PublicIP and VtepMAC on h1's key and keeps h1's etcd lease used to go unnoticed: h1
// renewed happily while h2 sent h1's traffic to the writer. Now h1 puts its value back (CAS on
// the revision it saw) and says so, once per key; a writer that also moves the key to an etcd
// lease of its own makes h1 re-acquire: h1's owner record and the subnet it held make it take
// the same key back.
import test from 'ava';
import { bounded } from '../helpers/bound.js';
import { fabric, macOf, mustLease, timeUntil } from '../helpers/fabric.js';
import type { Lab, LabHost } from '../helpers/lab.js';
import { sleep, until } from '../helpers/procs.js';

const VXLAN = 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan';
const WRITER_IP = '192.0.2.201';
const WRITER_MAC = '0e:00:00:00:02:01';
const writerValue = (n = 1): string =>
  `{"PublicIP":"${WRITER_IP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":${n},"VtepMAC":"${WRITER_MAC}"}}`;
const RESTORED = "another writer overwrote this host's lease value under its etcd lease; restored it";

/** The etcd lease a key is attached to, in etcdctl's hex (`-w fields` prints it in decimal, exactly). */
async function leaseHexOf(lab: Lab, key: string): Promise<string> {
  const m = /"Lease" : (\d+)/.exec(await lab.etcdctl(['get', key, '-w', 'fields']));
  if (!m?.[1]) throw new Error(`${key} has no lease`);
  return BigInt(m[1]).toString(16);
}

/** h2 sends h1's subnet to h1: its route, neighbour and fdb entry name h1's VTEP, nothing the writer's. */
async function pointsAt(lab: Lab, from: LabHost, to: LabHost, subnet: string, mac: string): Promise<boolean> {
  const gw = subnet.replace('/24', '');
  const [routes, neigh, fdb] = await Promise.all([
    lab.ip(from.ns, ['route', 'show', subnet]),
    lab.ip(from.ns, ['neigh', 'show', gw, 'dev', 'flannel.1']),
    lab.exec(from.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1']),
  ]);
  return (
    routes.includes(`via ${gw} dev flannel.1`) &&
    neigh.includes(`lladdr ${mac}`) &&
    fdb.includes(`${mac} dst ${to.ip} `) &&
    !fdb.includes(`dst ${WRITER_IP} `)
  );
}

test.serial(
  "a writer that overwrites a host's lease value under its etcd lease: the host restores it within seconds, logs it once, and its peer points at it again; one that also moves the key to its own etcd lease: the host takes the same key back",
  async (t) => {
    const step = bounded(t, 120_000);
    const f = await fabric(t, { hosts: 2, network: VXLAN });
    await f.addContainers();
    const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
    const own = await mustLease(f.lab, h1);
    const mac1 = await macOf(f.lab, h1, 'flannel.1');
    const lease1 = await leaseHexOf(f.lab, own.key);
    t.true(await pointsAt(f.lab, h2, h1, own.subnet, mac1), 'h2 points at h1 before');

    step("the value overwritten under h1's etcd lease");
    const writtenAt = Date.now();
    await f.lab.etcdctl(['put', `--lease=${lease1}`, own.key, writerValue()]);
    const restoreMs = await timeUntil(
      async () => (await f.lab.etcdctl(['get', '--print-value-only', own.key])).trim() === own.value,
      10_000,
    );
    const backMs = await timeUntil(() => pointsAt(f.lab, h2, h1, own.subnet, mac1), 10_000);
    t.log(
      `h1's value restored ${restoreMs} ms after the overwrite; h2 points at h1 again ${Date.now() - writtenAt} ms after it (${backMs} ms after the restore)`,
    );
    t.is(await leaseHexOf(f.lab, own.key), lease1, "still on h1's own etcd lease");
    const warnings = () => (h1.weft?.output() ?? '').split('\n').filter((l) => l.includes(`"msg":"${RESTORED}"`));
    t.is(warnings().length, 1, 'one warning');
    t.regex(
      warnings()[0] ?? '',
      new RegExp(
        `"key":"${own.key}","foreignRevision":"\\d+","foreignValue":"\\{\\\\"PublicIP\\\\":\\\\"${WRITER_IP.replace(/\./g, '\\.')}`,
      ),
      'the warning names the key, the revision and the foreign value',
    );
    t.false((h1.weft?.output() ?? '').includes('lease lost'), 'h1 kept its lease: nothing to re-acquire');
    t.true(
      await until(() => f.lab.ping(f.containers[1]?.ns ?? '', f.containers[0]?.ip ?? '', { count: 1 }), 5000, 100),
      "h2's container reaches h1's",
    );

    step('five more overwrites, 300 ms apart');
    for (let i = 0; i < 5; i++) {
      await f.lab.etcdctl(['put', `--lease=${lease1}`, own.key, writerValue()]);
      await sleep(300);
    }
    await timeUntil(
      async () => (await f.lab.etcdctl(['get', '--print-value-only', own.key])).trim() === own.value,
      10_000,
    );
    await timeUntil(() => pointsAt(f.lab, h2, h1, own.subnet, mac1), 10_000);
    t.is(warnings().length, 1, 'still one warning in full: the rest are counted for the summary line');

    step("the key moved to the writer's own etcd lease");
    const granted = /lease ([0-9a-f]+) granted/.exec(await f.lab.etcdctl(['lease', 'grant', '600']))?.[1] ?? '';
    await f.lab.etcdctl(['put', `--lease=${granted}`, own.key, writerValue()]);
    const retakeMs = await timeUntil(
      async () => (await f.lab.etcdctl(['get', '--print-value-only', own.key])).trim() === own.value,
      10_000,
    );
    t.log(`the key moved to the writer's etcd lease: h1 re-acquired it ${retakeMs} ms after the write`);
    await until(
      () => (h1.weft?.output() ?? '').includes('"msg":"lease re-acquired with the same subnet"'),
      10_000,
      50,
      'h1 re-acquires its key',
    );
    t.not(await leaseHexOf(f.lab, own.key), granted, "the key is on an etcd lease of h1's, not the writer's");
    t.is((await mustLease(f.lab, h1)).subnet, own.subnet, 'h1 keeps its subnet');
    await timeUntil(() => pointsAt(f.lab, h2, h1, own.subnet, mac1), 10_000);
    t.is(
      (await f.lab.etcdctl(['lease', 'timetolive', granted])).includes('already expired'),
      false,
      "the writer's etcd lease is not revoked by h1",
    );
  },
);
