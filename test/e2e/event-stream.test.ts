// Issue 22: between full looks, weft follows the kernel through its netlink event stream
// (`ip -4 monitor`, `bridge monitor fdb`). This shows the safety net: with that stream stalled
// (the monitors stopped with SIGSTOP, so events pile up unread), a deleted route, neighbour and
// fdb entry, and then the deleted device, are still repaired by the periodic full resync (every
// 30 s); the stale events delivered once the stream resumes (a lagging stream) undo nothing;
// and with the monitors killed, their restart makes weft look afresh.
import { execFileSync } from 'node:child_process';
import test from 'ava';
import { fabric, hostRoutes, mustLease, timeUntil } from '../helpers/fabric.js';
import type { LabHost } from '../helpers/lab.js';
import { bounded } from '../helpers/bound.js';

const VXLAN = 'cidr: 198.18.0.0/16\nsubnetMax: 198.18.199.0\nbackend:\n  type: vxlan';
const RESYNC_MS = 30_000;

/** The monitor processes weft runs (its children), by pid. */
function monitorsOf(pid: number): number[] {
  const out = execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=,args='], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => / monitor /.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

test('with the netlink event stream stalled, the full resync still repairs a deleted route, neighbour, fdb entry and device', async (t) => {
  const step = bounded(t, 120_000);
  const f = await fabric(t, { hosts: 2, network: VXLAN });
  const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
  const s2 = (await mustLease(f.lab, h2)).subnet;
  const g2 = s2.replace('/24', '');
  const mac2 = /"address":"([0-9a-f:]+)"/.exec(await f.lab.ip(h2.ns, ['-j', 'link', 'show', 'flannel.1']))?.[1] ?? '';
  const routeOK = async () => (await hostRoutes(f.lab, h1)).includes(`${s2} via ${g2} dev flannel.1`);
  const neighOK = async () =>
    (await f.lab.ip(h1.ns, ['neigh', 'show', 'dev', 'flannel.1'])).includes(`${g2} lladdr ${mac2} PERMANENT`);
  const fdbOK = async () =>
    (await f.lab.exec(h1.ns, 'bridge', ['fdb', 'show', 'dev', 'flannel.1'])).includes(
      `${mac2} dst ${h2.ip} self permanent`,
    );
  const allOK = async () =>
    (await routeOK().catch(() => false)) && (await neighOK().catch(() => false)) && (await fdbOK().catch(() => false));
  t.true(await allOK());

  const monitors = monitorsOf(h1.weft?.child.pid ?? 0);
  t.is(
    monitors.length,
    3,
    'weft runs an ip -4, an ip -6 and a bridge monitor (both families: a live config change may turn IPv6 on)',
  );
  step('stalling the event stream');
  for (const p of monitors) process.kill(p, 'SIGSTOP');
  try {
    await f.lab.ip(h1.ns, ['route', 'del', s2]);
    await f.lab.ip(h1.ns, ['neigh', 'del', g2, 'dev', 'flannel.1']);
    await f.lab.exec(h1.ns, 'bridge', ['fdb', 'del', mac2, 'dev', 'flannel.1', 'dst', h2.ip, 'self']);
    step('waiting for the resync to repair the route, neighbour and fdb entry');
    t.log(
      `route, neighbour and fdb entry repaired by the resync in ${await timeUntil(allOK, RESYNC_MS + 10_000)} ms (no events)`,
    );
    await f.lab.ip(h1.ns, ['link', 'del', 'flannel.1']);
    step('waiting for the resync to recreate the device');
    t.log(
      `device recreated with its peer by the resync in ${await timeUntil(allOK, RESYNC_MS + 10_000)} ms (no events)`,
    );
  } finally {
    for (const p of monitors) {
      try {
        process.kill(p, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
  }
  step('the stream resumes: stale events are delivered late');
  const out = h1.weft?.output() ?? '';
  t.regex(out, /"msg":"repaired drift","change":"ip route replace /);
  t.regex(out, /"msg":"repaired drift","change":"ip link add flannel\.1 /);
  // The late events (deletions that were repaired long ago) must not leave anything missing.
  await new Promise((r) => setTimeout(r, 1500));
  t.true(await allOK(), 'still converged after the lagging events');

  // Killed instead: a route deleted while the monitors are dead is repaired once they are back
  // (weft looks afresh on a restart), long before the next resync (the last one just ran).
  step('killing the event stream');
  for (const p of monitorsOf(h1.weft?.child.pid ?? 0)) process.kill(p, 'SIGKILL');
  await f.lab.ip(h1.ns, ['route', 'del', s2]);
  const killedMs = await timeUntil(routeOK, 8000);
  t.log(`route deleted while the monitors were dead repaired in ${killedMs} ms (monitors restart after 1 s)`);
  t.is(monitorsOf(h1.weft?.child.pid ?? 0).length, 3, 'every monitor was restarted');
});
