/**
 * bench/convergence: N hosts (default 8) run `weft run` (vxlan) in a lab. A synthetic peer's
 * lease is written to etcd, then deleted, J times (default 50). For each we time, from just
 * before the etcd request:
 *   - "etcd watch": a bare etcd watcher (in the lab) receiving the event (the baseline: what
 *     any agent has to wait for);
 *   - "weft, all peers": the LAST of the N hosts to have the route added (join) or removed
 *     (leave), seen by `ip -ts monitor route` in each namespace.
 * Prints p50/p99 tables. Usage: node dist/bench/convergence.js [--hosts 8] [--joins 50]
 */
import { performance } from 'node:perf_hooks';
import { Lab } from '../test/helpers/lab.js';
import { sleep, until } from '../test/helpers/procs.js';
import { vxlanValue } from '../test/helpers/fleet.js';
import { EtcdAgent, RouteWatch, macFor, percentile, table } from './lib/lab-bench.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const hosts = arg('hosts', 8);
const joins = arg('joins', 50);
// Hosts lease from 198.18.1-99; the synthetic peers use 198.18.200-249, never a real host's subnet.
const NETWORK = 'cidr: 198.18.0.0/16\nsubnetMax: 198.18.99.0\nbackend:\n  type: vxlan';

const lab = await Lab.create({ hosts });
try {
  const t0 = performance.now();
  for (const h of lab.hosts) lab.writeSpec(h, NETWORK);
  await Promise.all(lab.hosts.map((h) => lab.startWeft(h, `${h.dir}/network.yaml`)));
  console.error(`${hosts} hosts ready in ${Math.round(performance.now() - t0)} ms`);
  const agentNs = await lab.addNode('bench', '192.0.2.201');
  const agent = await EtcdAgent.start(lab, agentNs, '/coreos.com/network/subnets/');
  const watches = lab.hosts.map((h) => RouteWatch.start(lab, h));
  await sleep(500);

  const rows = {
    joinWatch: [] as number[],
    joinAll: [] as number[],
    leaveWatch: [] as number[],
    leaveAll: [] as number[],
  };
  for (let j = 0; j < joins; j++) {
    const subnet = `198.18.${200 + (j % 50)}.0/24`;
    const key = `/coreos.com/network/subnets/${subnet.replace('/', '-')}`;
    const put = await agent.put(key, vxlanValue(`203.0.113.${(j % 250) + 1}`, macFor(j + 1)));
    const added = (await until(
      () => {
        const ts = watches.map((w) => w.seen('add', subnet, put.t0));
        return ts.every((x) => x !== undefined) ? ts : undefined;
      },
      10_000,
      5,
    )) ?? [NaN];
    rows.joinAll.push(Math.max(...added) - put.t0);
    rows.joinWatch.push((agent.eventAt('put', key, put.t0) ?? NaN) - put.t0);
    const del = await agent.del(key);
    const removed = (await until(
      () => {
        const ts = watches.map((w) => w.seen('del', subnet, del.t0));
        return ts.every((x) => x !== undefined) ? ts : undefined;
      },
      10_000,
      5,
    )) ?? [NaN];
    rows.leaveAll.push(Math.max(...removed) - del.t0);
    rows.leaveWatch.push((agent.eventAt('del', key, del.t0) ?? NaN) - del.t0);
    await sleep(50);
  }
  const r = (xs: number[]) =>
    [percentile(xs, 50), percentile(xs, 99), Math.max(...xs)].map((x) => `${Math.round(x)} ms`);
  console.log(
    `\nConvergence: ${hosts} hosts running weft (vxlan), ${joins} joins and ${joins} leaves of a peer lease\n`,
  );
  console.log(
    table(
      ['event', 'measured until', 'p50', 'p99', 'max', 'p50 ratio to etcd watch'],
      [
        ['join (lease written)', 'bare etcd watch event', ...r(rows.joinWatch), '1.00x'],
        [
          'join (lease written)',
          `route on all ${hosts} hosts`,
          ...r(rows.joinAll),
          `${(percentile(rows.joinAll, 50) / Math.max(1, percentile(rows.joinWatch, 50))).toFixed(2)}x`,
        ],
        ['leave (lease deleted)', 'bare etcd watch event', ...r(rows.leaveWatch), '1.00x'],
        [
          'leave (lease deleted)',
          `route gone on all ${hosts} hosts`,
          ...r(rows.leaveAll),
          `${(percentile(rows.leaveAll, 50) / Math.max(1, percentile(rows.leaveWatch, 50))).toFixed(2)}x`,
        ],
      ],
    ),
  );
  console.log(
    `\nGoal: p99 < 200 ms for both (join ${Math.round(percentile(rows.joinAll, 99))} ms, leave ${Math.round(percentile(rows.leaveAll, 99))} ms).`,
  );
} finally {
  await lab.destroy();
}
