/**
 * bench/scale: one host running `weft run` (vxlan) facing N synthetic peers whose leases are
 * loaded into etcd first (network 198.18.0.0/15 in /28s, room for 8,192 hosts). Measures:
 *   - cold start: process start to "ready" (every peer programmed), against the floor of the
 *     same N routes + neighbours + fdb entries applied by hand with one `ip -batch` and one
 *     `bridge -batch` on a bare namespace (what the kernel itself costs), and the same again
 *     with `ip monitor` and `bridge monitor fdb` listening, as weft's own monitors do;
 *   - one more peer at that size: lease written -> route present (`ip -ts monitor route`,
 *     median of 10), against the bare etcd watch event of the same puts;
 *   - idle: reconcile passes over a quiet 35 s window (timer passes check the rules every 5 s, a
 *     full resync looks at the whole kernel state every 30 s): operations applied (must be 0),
 *     the full resync's duration and a rules-only pass's;
 *   - RSS (VmRSS, and the peak VmHWM) of the weft process at ready and 45 s later.
 * Prints the ratios of issue 22's goals: +1 peer at the largest size against the smallest
 * (plus 2 ms) and against the bare watch; cold start against the floor.
 * Usage: node dist/bench/scale.js [--sizes 100,5000] [--bundle] [--phases] [--profile DIR]
 * (--bundle: run the one-file bundle dist/weft.mjs instead of dist/src; --phases: the
 * start's debug log as a timeline; DIR: weft's --cpu-prof and
 * --heap-prof output, written when weft stops)
 */
import { performance } from 'node:perf_hooks';
import { Lab, type LabHost } from '../test/helpers/lab.js';
import { run, sleep, until } from '../test/helpers/procs.js';
import { vxlanValue } from '../test/helpers/fleet.js';
import {
  EtcdAgent,
  RouteWatch,
  macFor,
  median,
  procMemoryMB,
  table,
  unitEnvironment,
  weftEntry,
} from './lib/lab-bench.js';

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const sizes = (flag('sizes') ?? '100,5000').split(',').map(Number);
const profileDir = flag('profile');
/** --phases: weft logs at debug level, and the start's log lines are printed as a timeline (ms after spawn). */
const phases = process.argv.includes('--phases');
const entry = weftEntry();
const PLUS_ONE = 10;
/** The profilers, when asked (Node refuses them in NODE_OPTIONS: they go on its command line). */
const profileArgs = (n: number): string[] =>
  profileDir
    ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}/n${n}`, '--heap-prof', `--heap-prof-dir=${profileDir}/n${n}`]
    : [];
const NETWORK = 'cidr: 198.18.0.0/15\nsubnetLen: 28\nbackend:\n  type: vxlan';

const subnetOf = (i: number): string => {
  const n = ((198 << 24) | (18 << 16)) + 16 * (i + 1);
  return `${[n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255].join('.')}/28`;
};
const peerIP = (i: number): string => `203.0.113.${(i % 250) + 1}`;

async function status(
  lab: Lab,
  h: LabHost,
): Promise<{ reconcile: { passes: number; lastDurationMs: number }; peers: { programmed: number } }> {
  return JSON.parse((await lab.httpGet(h.ns, 'http://127.0.0.1:9473/status')).body) as {
    reconcile: { passes: number; lastDurationMs: number };
    peers: { programmed: number };
  };
}

async function metric(lab: Lab, h: LabHost, re: RegExp): Promise<number> {
  return Number(re.exec((await lab.httpGet(h.ns, 'http://127.0.0.1:9473/metrics')).body)?.[1] ?? NaN);
}
const opsApplied = (lab: Lab, h: LabHost) =>
  metric(lab, h, /^weft_reconcile_operations_total\{result="applied"\} (\d+)/m);
const heapUsedMB = async (lab: Lab, h: LabHost) =>
  (await metric(lab, h, /^nodejs_heap_size_used_bytes (\d+)/m)) / 2 ** 20;

/**
 * The floor: the same datapath for n peers applied by hand in one ip and one bridge batch.
 * `monitored`: with `ip -4 monitor` and `bridge monitor fdb` listening as on a weft host (the
 * kernel then tells them, and they print, every one of the changes).
 */
async function handProgrammed(lab: Lab, h: LabHost, n: number, monitored = false): Promise<number> {
  await lab.ip(h.ns, ['link', 'del', 'flannel.1']).catch(() => undefined);
  const monitors = monitored
    ? [
        lab.spawnIn(h.ns, 'ip', ['-4', 'monitor', 'label', 'link', 'address', 'route', 'neigh']),
        lab.spawnIn(h.ns, 'bridge', ['monitor', 'fdb']),
      ]
    : [];
  if (monitored) await sleep(300);
  await lab.ip(h.ns, [
    'link',
    'add',
    'flannel.1',
    'type',
    'vxlan',
    'id',
    '1',
    'local',
    h.ip,
    'dev',
    'eth0',
    'dstport',
    '8472',
    'nolearning',
  ]);
  await lab.ip(h.ns, ['link', 'set', 'flannel.1', 'mtu', '1450', 'up']);
  const ipLines: string[] = [];
  const fdbLines: string[] = [];
  for (let i = 0; i < n; i++) {
    const net = subnetOf(i).split('/')[0] ?? '';
    ipLines.push(
      `neigh replace ${net} lladdr ${macFor(i + 1)} dev flannel.1 nud permanent`,
      `route replace ${subnetOf(i)} via ${net} dev flannel.1 onlink proto 175`,
    );
    fdbLines.push(`fdb replace ${macFor(i + 1)} dev flannel.1 dst ${peerIP(i)} self permanent`);
  }
  const t0 = performance.now();
  await Promise.all([
    run('nsenter', [
      `--net=/var/run/netns/${h.ns}`,
      'sh',
      '-c',
      `printf '%s\\n' "$@" | ip -force -batch -`,
      'sh',
      ...ipLines,
    ]),
    run('nsenter', [
      `--net=/var/run/netns/${h.ns}`,
      'sh',
      '-c',
      `printf '%s\\n' "$@" | bridge -force -batch -`,
      'sh',
      ...fdbLines,
    ]),
  ]);
  const ms = performance.now() - t0;
  for (const m of monitors) await m.stop();
  return ms;
}

const rows: (string | number)[][] = [];
const results = new Map<
  number,
  { plusOne: number; watch: number; coldMs: number; floorMs: number; monitoredMs: number }
>();
for (const n of sizes) {
  const lab = await Lab.create({ hosts: 2 });
  try {
    const [h1, h2] = lab.hosts;
    if (!h1 || !h2) throw new Error('no hosts');
    const agent = await EtcdAgent.start(lab, await lab.addNode('bench', '192.0.2.201'), '/coreos.com/network/subnets/');
    const kvs: [string, string][] = Array.from({ length: n }, (_, i) => [
      `/coreos.com/network/subnets/${subnetOf(i).replace('/', '-')}`,
      vxlanValue(peerIP(i), macFor(i + 1)),
    ]);
    await agent.putMany(kvs);
    const floorMs = await handProgrammed(lab, h2, n);
    const monitoredMs = await handProgrammed(lab, h2, n, true);

    const spec = lab.writeSpec(h1, NETWORK, { host: 'listen: 127.0.0.1:9473\n' });
    const t0 = performance.now();
    const spawnedAt = Date.now();
    const p = await lab.startWeft(h1, spec, {
      env: { ...unitEnvironment(), ...(phases ? { WEFT_LOG_LEVEL: 'debug' } : {}) },
      nodeArgs: profileArgs(n),
      waitReady: !phases,
      ...(entry ? { entry } : {}),
    });
    // With --phases the whole log is kept here (the helper keeps only its tail).
    let log = '';
    if (phases) {
      p.child.stderr?.on('data', (d: Buffer) => {
        log += d.toString();
      });
      await until(() => p.child.exitCode !== null || log.includes('"msg":"ready"'), 30_000, 20);
    }
    const coldMs = performance.now() - t0;
    const atReady = procMemoryMB(p.child.pid ?? 0);
    if (phases) {
      console.error(`n=${n}: the start, ms after spawn (cold start ${Math.round(coldMs)} ms):`);
      // Runs of one message (an "applied" per operation) are folded into one line with a count.
      const timeline: { at: number; last: number; msg: string; count: number }[] = [];
      for (const line of log.split('\n')) {
        const m = /^\{"ts":"([^"]+)","level":"\w+","msg":"([^"]*)"/.exec(line);
        if (!m) continue;
        const at = Date.parse(m[1] ?? '') - spawnedAt;
        const prev = timeline.at(-1);
        // A pass line says how long its plan and the whole pass took.
        const msg = m[2] === 'pass' ? `pass ${/"planMs":\d+,"ms":\d+,"ops":\d+/.exec(line)?.[0] ?? ''}` : (m[2] ?? '');
        if (prev && prev.msg === msg) {
          prev.count++;
          prev.last = at;
        } else timeline.push({ at, last: at, msg, count: 1 });
        if (msg === 'ready') break;
      }
      for (const e of timeline)
        console.error(`  ${String(e.at).padStart(6)}  ${e.msg}${e.count > 1 ? ` x${e.count} (until ${e.last})` : ''}`);
    }
    // Counted in the namespace: the output of 5,000 routes is larger than the helpers keep.
    const programmed = Number(
      (await lab.exec(h1.ns, 'sh', ['-c', 'ip route show proto 175 dev flannel.1 | wc -l'])).trim(),
    );
    if (programmed !== n) throw new Error(`expected ${n} routes, found ${programmed}`);
    const afterStart = procMemoryMB(p.child.pid ?? 0);

    const watch = RouteWatch.start(lab, h1);
    await sleep(300);
    const plusOne: number[] = [];
    const watchOnly: number[] = [];
    for (let k = 0; k < PLUS_ONE; k++) {
      const i = n + k;
      const key = `/coreos.com/network/subnets/${subnetOf(i).replace('/', '-')}`;
      const put = await agent.put(key, vxlanValue(peerIP(i), macFor(i + 1)));
      const seen = await until(() => watch.seen('add', subnetOf(i), put.t0), 20_000, 2);
      plusOne.push((seen ?? NaN) - put.t0);
      watchOnly.push((agent.eventAt('put', key, put.t0) ?? NaN) - put.t0);
      await sleep(200);
    }

    // A quiet window longer than the 30 s resync: timer passes (rules only) and at least one
    // full resync (a fresh look at every route, neighbour and fdb entry), nothing to change.
    await sleep(1000);
    const s0 = await status(lab, h1);
    const ops0 = await opsApplied(lab, h1);
    const durations = new Set<number>();
    for (let k = 0; k < 34; k++) {
      await sleep(1000);
      durations.add((await status(lab, h1)).reconcile.lastDurationMs);
    }
    const s1 = await status(lab, h1);
    const ops1 = await opsApplied(lab, h1);
    const mem = procMemoryMB(p.child.pid ?? 0);
    const heap = await heapUsedMB(lab, h1);
    results.set(n, { plusOne: median(plusOne), watch: median(watchOnly), coldMs, floorMs, monitoredMs });
    if (profileDir) await p.stop(10_000);
    rows.push([
      n,
      `${Math.round(coldMs)} ms`,
      `${Math.round(floorMs)} ms`,
      `${(coldMs / floorMs).toFixed(1)}x`,
      `${Math.round(monitoredMs)} ms`,
      `${median(plusOne).toFixed(1)} ms`,
      `${median(watchOnly).toFixed(1)} ms`,
      `${s1.reconcile.passes - s0.reconcile.passes} passes, ${ops1 - ops0} writes; full resync ${Math.max(...durations)} ms, rules-only ${Math.min(...durations)} ms`,
      `${Math.round(atReady.rss)} MB (peak ${Math.round(atReady.hwm)} MB)`,
      `${Math.round(mem.rss)} MB (peak ${Math.round(Math.max(mem.hwm, afterStart.hwm))} MB; JS heap in use ${Math.round(heap)} MB)`,
    ]);
    console.error(`n=${n}: done`);
  } finally {
    await lab.destroy();
  }
}
console.log(
  `\nScale: one weft host (vxlan) facing N peers loaded into etcd; weft run from ${entry ? 'the bundle (dist/weft.mjs)' : 'dist/src'}\n`,
);
console.log(
  table(
    [
      'peers',
      'cold start to ready',
      'floor: ip+bridge batch by hand',
      'ratio',
      'floor with ip/bridge monitors listening',
      `+1 peer (median of ${PLUS_ONE})`,
      'bare etcd watch',
      'idle 35 s (resync every 30 s)',
      'RSS at ready (peak so far)',
      'RSS 45 s later (peak)',
    ],
    rows,
  ),
);
const small = results.get(Math.min(...sizes));
const large = results.get(Math.max(...sizes));
if (small && large && small !== large) {
  console.log(
    `\nGoal 1: +1 peer at ${Math.max(...sizes)} / (+1 peer at ${Math.min(...sizes)} + 2 ms) = ${(large.plusOne / (small.plusOne + 2)).toFixed(2)} (goal <= 1.5); / bare watch = ${(large.plusOne / large.watch).toFixed(1)} (goal <= 5)`,
  );
}
if (large)
  console.log(
    `Goal 3: cold start at ${Math.max(...sizes)} / floor = ${(large.coldMs / large.floorMs).toFixed(2)} (goal <= 2); / floor with monitors = ${(large.coldMs / large.monitoredMs).toFixed(2)}`,
  );
console.log(
  'Goal 4: RSS < 100 MB steady, < 130 MB peak at 5,000 peers (bench/footprint: < 60 MB at 10 peers, idle CPU < 0.5% of a core).',
);
