/**
 * The demo fabric (README's main job): etcd and three hosts in network namespaces, `weft run`
 * on each, `weft leases`, `weft status`, then a ping between containers on every pair of hosts across the
 * overlay, and `weft doctor` on h1. Everything is torn down at the end, on failure, and on Ctrl-C. Nothing touches the
 * machine's own network namespace.
 *
 * Usage (as root): node dist/demo/demo.js [--backend vxlan|host-gw]
 */
import { Lab } from '../test/helpers/lab.js';
import { WEFT } from '../test/helpers/cli.js';
import { until } from '../test/helpers/procs.js';

const i = process.argv.indexOf('--backend');
const backend = i > 0 ? process.argv[i + 1] : 'vxlan';
if (backend !== 'vxlan' && backend !== 'host-gw') {
  console.error(`demo: --backend must be vxlan or host-gw, not ${String(backend)}`);
  process.exit(2);
}

const say = (s: string) => { process.stdout.write(`${s}\n`); };

async function main(): Promise<number> {
  say(`== building a lab: a switch, etcd at 192.0.2.100 and hosts h1..h3 on 192.0.2.0/24 (namespaces, backend ${backend})`);
  const lab = await Lab.create({ hosts: 3 });
  process.once('SIGINT', () => { say('\n== interrupted: tearing down'); void lab.destroy().then(() => process.exit(130)); });
  try {
    for (const h of lab.hosts) {
      // Each host serves health and status on its own loopback (the default host.listen).
      const spec = lab.writeSpec(h, `cidr: 198.18.0.0/16\nbackend:\n  type: ${backend}`, { host: 'listen: 127.0.0.1:9473\n' });
      const p = await lab.startWeft(h, spec);
      const ready = p.output().split('\n').find((l) => l.includes('"msg":"ready"')) ?? '';
      say(`   ${h.name} (${h.ip}): weft run is ready: ${ready}`);
    }
    const h1 = lab.hosts[0];
    if (!h1) throw new Error('no hosts');
    say('\n== weft leases (from h1)');
    say(await lab.exec(h1.ns, process.execPath, [WEFT, 'leases', '--spec', `${h1.dir}/network.yaml`]));
    say('== weft status (on h1, from its running daemon)');
    say(await lab.exec(h1.ns, process.execPath, [WEFT, 'status', '--spec', `${h1.dir}/network.yaml`]));
    say('== subnet.env on h1');
    say(lab.subnetText(h1));
    say('== routes on h1 (weft stamps its routes proto 175)');
    say(await lab.ip(h1.ns, ['route', 'show']));
    const containers = [];
    for (const h of lab.hosts) containers.push({ h, ...(await lab.addContainer(h)) });
    say('== a container on each host, behind a bridge holding the leased gateway (as Docker --bip does)');
    for (const c of containers) say(`   ${c.h.name}: container ${c.ip}`);
    say('\n== ping across the overlay, every pair');
    let failed = 0;
    for (const a of containers) {
      for (const b of containers) {
        if (a === b) continue;
        const ok = await until(() => lab.ping(a.ns, b.ip), 5000).catch(() => false);
        if (!ok) failed++;
        say(`   ${a.h.name} ${a.ip} -> ${b.h.name} ${b.ip}: ${ok ? 'ok' : 'FAILED'}`);
      }
    }
    say(failed === 0 ? '\n== every pair reachable through weft' : `\n== ${failed} pair(s) unreachable`);
    say('\n== weft doctor (on h1): the agent, the lease, each peer\'s datapath, overlay, underlay and MTU, FORWARD, rp_filter, ...');
    const doctor = await lab.tryExec(h1.ns, process.execPath, [WEFT, 'doctor', '--spec', `${h1.dir}/network.yaml`]);
    say(doctor.out);
    say(`   weft doctor exited ${String(doctor.code)}`);
    return failed === 0 && doctor.code === 0 ? 0 : 1;
  } finally {
    say('== tearing down (namespaces, etcd, weft processes)');
    await lab.destroy();
  }
}

process.exitCode = await main();
