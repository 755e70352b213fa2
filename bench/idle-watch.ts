/**
 * bench/idle-watch: do weft's etcd watches hold on idle hosts? Two hosts (vxlan) run with
 * nothing changing for `--seconds` (default 600); every `--every` seconds (default 60) each
 * host's /metrics is read: watch restarts, client resets and etcd request errors (all three
 * must stay 0), and the CPU weft used (its own and its children's, from /proc). Issue 28:
 * before, each host restarted its watches every 8-10 s from about a minute after start.
 * Usage: node dist/bench/idle-watch.js [--seconds 600] [--every 60]
 */
import { Lab, type LabHost } from '../test/helpers/lab.js';
import { sleep } from '../test/helpers/procs.js';
import { TICK, cpuTicks, table } from './lib/lab-bench.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const seconds = arg('seconds', 600);
const everyS = arg('every', 60);
const COUNTERS = [
  'weft_etcd_watch_restarts_total',
  'weft_etcd_client_resets_total',
  'weft_etcd_request_errors_total',
] as const;

async function counters(lab: Lab, h: LabHost): Promise<number[]> {
  const body = (await lab.httpGet(h.ns, 'http://127.0.0.1:9473/metrics')).body;
  return COUNTERS.map((name) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(body)?.[1] ?? NaN));
}

const lab = await Lab.create({ hosts: 2 });
try {
  for (const h of lab.hosts)
    await lab.startWeft(
      h,
      lab.writeSpec(h, 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan', { host: 'listen: 127.0.0.1:9473\n' }),
    );
  const pids = lab.hosts.map((h) => h.weft?.child.pid ?? 0);
  const cpu0 = pids.map(cpuTicks);
  const t0 = Date.now();
  const rows: (string | number)[][] = [];
  for (let at = everyS; at <= seconds; at += everyS) {
    await sleep(Math.max(0, t0 + at * 1000 - Date.now()));
    for (const [i, h] of lab.hosts.entries()) {
      const [restarts, resets, errors] = await counters(lab, h);
      const cpuS = (cpuTicks(pids[i] ?? 0) - (cpu0[i] ?? 0)) / TICK;
      rows.push([at, h.name, restarts ?? NaN, resets ?? NaN, errors ?? NaN, cpuS.toFixed(2)]);
    }
  }
  console.log(`\nTwo idle hosts for ${seconds} s (counters since start; CPU since ready, weft and its children)\n`);
  console.log(table(['s', 'host', 'watch restarts', 'client resets', 'etcd request errors', 'CPU s'], rows));
  const last = rows.slice(-lab.hosts.length);
  const bad = last.filter((r) => r[2] !== 0 || r[3] !== 0);
  console.log(
    bad.length === 0
      ? '\nOK: no watch restart and no client reset on any host'
      : `\nFAIL: ${bad.map((r) => String(r[1])).join(', ')}`,
  );
  if (bad.length > 0) process.exitCode = 1;
} finally {
  await lab.destroy();
}
