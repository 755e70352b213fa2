/**
 * bench/leases: lease contention. N hosts (each with its own etcd connection, as real hosts
 * have) acquire a lease on one network at the same moment. Reports wall time until all are
 * leased, etcd round trips per acquisition, races lost, and duplicates (must be 0).
 *
 * Baselines measured in the same run, so the ratios mean something on a noisy machine:
 *  - "floor": the same N connections each doing ONE create-if-absent transaction on a subnet
 *    key chosen in advance (no listing, no races). No allocator can do less work per host.
 *  - "solo": one acquirer alone (the uncontended cost of an acquisition).
 *
 * Usage: node dist/bench/leases.js [--sizes 100,500] [--members 1,3]
 */
import { performance } from 'node:perf_hooks';
import { formatPrefix } from '../src/core/net/cidr.js';
import { EtcdStore } from '../src/adapters/etcd.js';
import { EtcdCluster } from '../test/helpers/etcd.js';
import { config, ip4, keeperFor, vxlanValue } from '../test/helpers/fleet.js';

function arg(name: string, fallback: string): number[] {
  const i = process.argv.indexOf(`--${name}`);
  return (i > 0 ? (process.argv[i + 1] ?? fallback) : fallback).split(',').map(Number);
}

interface Row {
  members: number;
  hosts: number;
  kind: string;
  ms: number;
  rtPerHost: number;
  lost: number;
  dupes: number;
}

const range = config('{"Network":"198.18.0.0/15","SubnetLen":26,"Backend":{"Type":"vxlan"}}').ipv4;
if (!range) throw new Error('bench config has no IPv4 range');
const publicIP = (i: number) => `192.0.2.${(i % 250) + 1}`;

async function weftRun(etcd: EtcdCluster, prefix: string, n: number): Promise<Row> {
  const spec = etcd.spec({ prefix });
  const hosts = await Promise.all(Array.from({ length: n }, (_, i) => keeperFor(spec, `bench-${prefix}-${i}`)));
  try {
    const t0 = performance.now();
    const held = await Promise.all(
      hosts.map((h, i) =>
        h.keeper.acquire({ range: range!, publicIP: ip4(publicIP(i)), value: vxlanValue(publicIP(i)) }),
      ),
    );
    const ms = performance.now() - t0;
    const subnets = held.map((h) => formatPrefix(h.subnet));
    const stored = (await hosts[0]!.store.list(`${prefix}/subnets/`)).kvs.length;
    if (stored !== n) throw new Error(`expected ${n} keys in etcd, found ${stored}`);
    const rt = hosts.reduce((s, h) => s + h.keeper.stats.roundTrips, 0);
    const lost = hosts.reduce((s, h) => s + h.keeper.stats.lostRaces, 0);
    return {
      members: etcd.members.length,
      hosts: n,
      kind: n === 1 ? 'solo' : 'weft',
      ms,
      rtPerHost: rt / n,
      lost,
      dupes: n - new Set(subnets).size,
    };
  } finally {
    await Promise.all(hosts.map((h) => h.store.close()));
  }
}

async function floorRun(etcd: EtcdCluster, prefix: string, n: number): Promise<Row> {
  const spec = etcd.spec({ prefix });
  const stores = await Promise.all(Array.from({ length: n }, () => EtcdStore.connect(spec)));
  try {
    const t0 = performance.now();
    await Promise.all(
      stores.map(async (s, i) => {
        const key = `${prefix}/subnets/floor-${i}`;
        const res = await s.txn(
          [{ key, target: 'version', equals: 0 }],
          [{ op: 'put', key, value: vxlanValue(publicIP(i)) }],
        );
        if (!res.succeeded) throw new Error('floor txn failed');
      }),
    );
    return {
      members: etcd.members.length,
      hosts: n,
      kind: 'floor',
      ms: performance.now() - t0,
      rtPerHost: 1,
      lost: 0,
      dupes: 0,
    };
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
}

const pad = (s: string, w: number) => s.padStart(w);

async function main(): Promise<void> {
  const rows: Row[] = [];
  const ratios: string[] = [];
  for (const members of arg('members', '1,3')) {
    const etcd = await EtcdCluster.start({ size: members });
    try {
      const solo = await weftRun(etcd, '/solo', 1);
      rows.push(solo);
      for (const n of arg('sizes', '100,500')) {
        const floor = await floorRun(etcd, `/floor${n}`, n);
        const weft = await weftRun(etcd, `/weft${n}`, n);
        rows.push(floor, weft);
        ratios.push(
          `| ${members} | ${n} | ${(weft.ms / floor.ms).toFixed(1)}x | ${(weft.rtPerHost / solo.rtPerHost).toFixed(2)}x | ${(weft.ms / n).toFixed(2)} |`,
        );
      }
    } finally {
      await etcd.stop();
    }
  }
  console.log(
    '| etcd members | hosts | run | time to all leased (ms) | etcd round trips per host | lost races (retried) | duplicates |',
  );
  console.log('|---:|---:|---|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(
      `| ${r.members} | ${r.hosts} | ${r.kind} | ${pad(r.ms.toFixed(0), 6)} | ${r.rtPerHost.toFixed(2)} | ${r.lost} | ${r.dupes} |`,
    );
  console.log('');
  console.log('| etcd members | hosts | weft time / floor time | weft round trips / solo round trips | ms per lease |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const r of ratios) console.log(r);
  if (rows.some((r) => r.dupes > 0)) {
    console.error('DUPLICATE SUBNETS');
    process.exitCode = 1;
  }
}

await main();
