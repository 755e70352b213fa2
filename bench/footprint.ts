/**
 * bench/footprint: what one `weft run` (vxlan, 10 peers, health listener on) costs a host:
 * start-to-ready time, CPU over an idle window (its own and its children's: the periodic
 * passes run ip, bridge and iptables-save), and memory. Baselines in the same run: a bare Node
 * process that only keeps a timer (Node's own floor) for CPU and memory, and `node -e ''` for
 * start-up. Usage: node dist/bench/footprint.js [--idle 60] [--starts 3] [--bundle] (--bundle: run the
 * one-file bundle dist/weft.mjs instead of dist/src)
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Lab } from '../test/helpers/lab.js';
import { run, sleep } from '../test/helpers/procs.js';
import { vxlanValue } from '../test/helpers/fleet.js';
import {
  EtcdAgent,
  TICK,
  cpuParts,
  cpuTicks,
  macFor,
  median,
  procMemoryMB,
  table,
  unitEnvironment,
  weftEntry,
} from './lib/lab-bench.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const idleS = arg('idle', 60);
const starts = arg('starts', 3);
const entry = weftEntry();
const lab = await Lab.create({ hosts: 1 });
try {
  const [h] = lab.hosts;
  if (!h) throw new Error('no host');
  const agent = await EtcdAgent.start(lab, await lab.addNode('bench', '192.0.2.201'));
  await agent.putMany(
    Array.from({ length: 10 }, (_, i) => [
      `/coreos.com/network/subnets/198.18.${200 + i}.0-24`,
      vxlanValue(`192.0.2.${150 + i}`, macFor(i + 1)),
    ]),
  );
  const spec = lab.writeSpec(h, 'cidr: 198.18.0.0/16\nsubnetMax: 198.18.99.0\nbackend:\n  type: vxlan', {
    host: 'listen: 127.0.0.1:9473\n',
  });

  const readyMs: number[] = [];
  const nodeMs: number[] = [];
  for (let k = 0; k < starts; k++) {
    const t0 = performance.now();
    const p = await lab.startWeft(h, spec, { env: unitEnvironment(), ...(entry ? { entry } : {}) });
    readyMs.push(performance.now() - t0);
    if (k < starts - 1) await p.stop(5000);
    const t1 = performance.now();
    await run(process.execPath, ['-e', '']);
    nodeMs.push(performance.now() - t1);
  }
  const weftPid = h.weft?.child.pid ?? 0;
  const bare = lab.spawnIn(h.ns, process.execPath, ['-e', 'setInterval(() => {}, 1000)']);
  // The floor weft's memory stands on: Node with the etcd client weft must use loaded, and nothing else.
  const etcd3 = createRequire(import.meta.url).resolve('etcd3');
  const client = lab.spawnIn(
    h.ns,
    process.execPath,
    ['-e', `require(${JSON.stringify(etcd3)}); setInterval(() => {}, 1000)`],
    { ...process.env, ...unitEnvironment() },
  );
  await sleep(2000);
  const barePid = bare.child.pid ?? 0;
  const wp0 = cpuParts(weftPid);
  const b0 = cpuTicks(barePid);
  await sleep(idleS * 1000);
  const perHour = (ticks: number) => (ticks / TICK) * (3600 / idleS);
  const wp = cpuParts(weftPid).map((x, k) => perHour(x - (wp0[k] ?? 0)));
  const wCpu = wp.reduce((s, x) => s + x, 0);
  const bCpu = perHour(cpuTicks(barePid) - b0);
  const wm = procMemoryMB(weftPid);
  const bm = procMemoryMB(barePid);
  const cm = procMemoryMB(client.child.pid ?? 0);
  console.log(
    `\nFootprint: one weft run (vxlan, 10 peers, health listener on) from ${entry ? 'the bundle (dist/weft.mjs)' : 'dist/src'}, idle ${idleS} s\n`,
  );
  console.log(
    table(
      ['', 'weft run', 'bare Node process (baseline)', 'ratio', 'Node with the etcd3 client loaded, nothing else'],
      [
        [
          'start to ready (median of ' + String(starts) + ')',
          `${Math.round(median(readyMs))} ms`,
          `${Math.round(median(nodeMs))} ms (node -e '')`,
          `${(median(readyMs) / median(nodeMs)).toFixed(1)}x`,
        ],
        [
          'CPU per hour idle (own + children)',
          `${wCpu.toFixed(1)} s (${((wCpu / 3600) * 100).toFixed(2)}% of a core)`,
          `${bCpu.toFixed(1)} s`,
          bCpu > 0 ? `${(wCpu / bCpu).toFixed(0)}x` : 'n/a',
        ],
        [
          '  of which weft itself (user + system)',
          `${((wp[0] ?? 0) + (wp[1] ?? 0)).toFixed(1)} s (${(wp[0] ?? 0).toFixed(1)} + ${(wp[1] ?? 0).toFixed(1)})`,
          '',
          '',
        ],
        [
          '  of which the programs it runs (ip, bridge, iptables-save, ...)',
          `${((wp[2] ?? 0) + (wp[3] ?? 0)).toFixed(1)} s`,
          '',
          '',
        ],
        [
          'RSS',
          `${wm.rss.toFixed(0)} MB (peak ${wm.hwm.toFixed(0)} MB)`,
          `${bm.rss.toFixed(0)} MB`,
          `${(wm.rss / bm.rss).toFixed(1)}x`,
          `${cm.rss.toFixed(0)} MB`,
        ],
        [
          '  of which anonymous (heaps, stacks) / file-backed (mostly the node executable)',
          `${wm.anon.toFixed(0)} / ${wm.file.toFixed(0)} MB`,
          `${bm.anon.toFixed(0)} / ${bm.file.toFixed(0)} MB`,
          '',
          `${cm.anon.toFixed(0)} / ${cm.file.toFixed(0)} MB`,
        ],
      ],
    ),
  );
} finally {
  await lab.destroy();
}
