// `weft plan` on the e2e fabrics (vxlan dual-stack, vxlan DirectRouting across a router, host-gw
// across a router, wireguard), with drift on one host: what it prints is the repair, and it
// changes nothing. With WEFT_PLAN_BASELINE=<another build's dist/src/cli/weft.js> the same plan
// is also printed by that build and must be byte-identical: how a refactor proves it changed no
// behaviour (issue 29: run on main's build and on the branch's).
import test, { type ExecutionContext } from 'ava';
import type { LabHost } from '../helpers/lab.js';
import { until } from '../helpers/procs.js';
import { type Fabric, fabric, hostRoutes, mustLease } from '../helpers/fabric.js';
import { bounded } from '../helpers/bound.js';
import { WEFT } from '../helpers/cli.js';

const BASELINE = process.env.WEFT_PLAN_BASELINE;

/** `weft plan` on host `i` by the CLI at `cli`, as the host sees itself (its own /run/wireguard when `own`). */
async function planBy(f: Fabric, i: number, cli: string, own: boolean): Promise<string> {
  const h = f.lab.hosts[i];
  const spec = f.specs[i];
  if (!h || !spec) throw new Error(`no host ${String(i)}`);
  const args = [`WEFT_HOST_ID=${f.lab.prefix}-${h.name}`, process.execPath, cli, 'plan', '--spec', spec];
  return own ? f.lab.execOnHost(h, 'env', args) : f.lab.exec(h.ns, 'env', args);
}

/**
 * The plan of host `i` by this build, twice (it must not depend on anything but the state), and
 * by the baseline build when one is given: the same text. Returns this build's.
 */
async function plan(t: ExecutionContext, f: Fabric, i: number, own = false): Promise<string> {
  const ours = await planBy(f, i, WEFT, own);
  t.is(await planBy(f, i, WEFT, own), ours, 'weft plan prints the same plan for the same state');
  if (BASELINE) t.is(await planBy(f, i, BASELINE, own), ours, `the baseline build (${BASELINE}) prints the same plan`);
  t.log(ours.trimEnd());
  return ours;
}

/** Until host `i`'s plan is empty (its agent converged, the fleet listed). */
const converged = (f: Fabric, i: number, own = false): Promise<unknown> =>
  until(async () => (await planBy(f, i, WEFT, own)).includes('no changes'), 20_000, 500, 'the host to converge');

/** Stop weft on h (SIGTERM leaves the datapath, rules, files and lease in place). */
async function stop(h: LabHost): Promise<void> {
  const w = h.weft;
  if (!w) throw new Error(`${h.name} runs no weft`);
  w.child.kill('SIGTERM');
  await until(() => w.child.exitCode !== null, 10_000, 50, `${h.name}'s weft to stop`);
}

test.serial('weft plan, vxlan dual stack: a deleted route of each family and a changed MTU are the plan', async (t) => {
  bounded(t, 150_000);
  const f = await fabric(t, {
    hosts: 3,
    network: 'cidr: 198.18.0.0/16\nipv6:\n  cidr: fd18::/48\nbackend:\n  type: vxlan',
    ipv6: true,
  });
  const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
  await converged(f, 0);
  await stop(h1);
  const l2 = await mustLease(f.lab, h2);
  await f.lab.ip(h1.ns, ['route', 'del', l2.subnet]);
  if (l2.subnet6) await f.lab.ip(h1.ns, ['-6', 'route', 'del', l2.subnet6]);
  await f.lab.ip(h1.ns, ['link', 'set', 'flannel.1', 'mtu', '1400']);
  const out = await plan(t, f, 0);
  t.true(
    out.includes(`ip route replace ${l2.subnet} via ${l2.subnet.replace('/24', '')} dev flannel.1 onlink proto 175`),
    out,
  );
  t.true(l2.subnet6 !== undefined && out.includes(`route replace ${l2.subnet6} via`), out);
  t.true(out.includes('ip link set dev flannel.1 mtu 1450'), out);
  t.false((await hostRoutes(f.lab, h1)).includes(l2.subnet), 'plan changed nothing');
  await plan(t, f, 1);
});

test.serial(
  'weft plan, vxlan DirectRouting across a router: the adjacent peer routed directly, the far one through the tunnel',
  async (t) => {
    bounded(t, 150_000);
    const v = await fabric(t, {
      hosts: 3,
      network: 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan\n  directRouting: true',
      behindRouter: [3],
    });
    const [v1, v2, v3] = v.lab.hosts as [LabHost, LabHost, LabHost];
    await converged(v, 0);
    await stop(v1);
    const [d2, d3] = [await mustLease(v.lab, v2), await mustLease(v.lab, v3)];
    await v.lab.ip(v1.ns, ['route', 'del', d2.subnet]);
    await v.lab.ip(v1.ns, ['route', 'del', d3.subnet]);
    const out = await plan(t, v, 0);
    t.true(
      out.includes(`ip route replace ${d2.subnet} via ${v2.ip} dev eth0 proto 175`),
      `the adjacent peer is routed directly:\n${out}`,
    );
    t.true(
      out.includes(`ip route replace ${d3.subnet} via ${d3.subnet.replace('/24', '')} dev flannel.1 onlink proto 175`),
      `the peer behind the router through vxlan:\n${out}`,
    );
  },
);

test.serial(
  "weft plan, host-gw across a router: the adjacent peer's route, the far one skipped with the reason",
  async (t) => {
    bounded(t, 150_000);
    const g = await fabric(t, {
      hosts: 3,
      network: 'cidr: 198.18.0.0/16\nbackend:\n  type: host-gw',
      behindRouter: [3],
    });
    const [g1, g2] = g.lab.hosts as [LabHost, LabHost];
    await converged(g, 0);
    await stop(g1);
    const l2 = await mustLease(g.lab, g2);
    await g.lab.ip(g1.ns, ['route', 'del', l2.subnet]);
    const out = await plan(t, g, 0);
    t.true(out.includes(`ip route replace ${l2.subnet} via ${g2.ip} dev eth0 proto 175`), out);
    t.regex(
      out,
      /# skipped \S+: PublicIP \S+ is not on eth0's L2 segment \(reached via router \S+\); host-gw needs adjacent hosts, use vxlan/,
    );
  },
);

test.serial('weft plan, wireguard: the deleted network route through flannel-wg is the plan', async (t) => {
  bounded(t, 150_000);
  const f = await fabric(t, { hosts: 2, network: 'cidr: 198.18.0.0/16\nbackend:\n  type: wireguard', start: 0 });
  for (const [i, h] of f.lab.hosts.entries())
    await f.lab.startWeft(h, f.specs[i] ?? '', {
      ownRun: true,
      env: { WIREGUARD_KEY_FILE: `${h.dir}/flanneld-wgkey` },
    });
  const [h1] = f.lab.hosts as [LabHost];
  await converged(f, 0, true);
  await stop(h1);
  await f.lab.ip(h1.ns, ['route', 'del', '198.18.0.0/16', 'dev', 'flannel-wg']);
  const out = await plan(t, f, 0, true);
  t.true(out.includes('ip route replace 198.18.0.0/16 dev flannel-wg scope link proto 175'), out);
  t.regex(out, /1 peer\(s\) programmed, 0 skipped/);
});
