/** A lab fabric running weft, and what e2e tests ask of it (leases, routes, reachability). */
import type { ExecutionContext } from 'ava';
import { Lab, type LabHost } from './lab.js';
import { start, until } from './procs.js';

export interface Fabric {
  readonly lab: Lab;
  readonly specs: string[];
  readonly containers: { ns: string; ip: string; host: LabHost }[];
  addContainers(): Promise<void>;
}

export async function fabric(t: ExecutionContext, o: { hosts: number; network: string; host?: string; behindRouter?: number[]; start?: number; etcdMembers?: 1 | 3 }): Promise<Fabric> {
  const lab = await Lab.create({ hosts: o.hosts, ...(o.behindRouter ? { behindRouter: o.behindRouter } : {}), ...(o.etcdMembers ? { etcdMembers: o.etcdMembers } : {}) });
  t.teardown(() => lab.destroy());
  const specs = lab.hosts.map((h) => lab.writeSpec(h, o.network, o.host ? { host: o.host } : {}));
  for (const [i, h] of lab.hosts.entries()) if (i < (o.start ?? o.hosts)) await lab.startWeft(h, specs[i] ?? '');
  const f: Fabric = {
    lab, specs, containers: [],
    async addContainers() {
      for (const h of lab.hosts) if (!f.containers.some((c) => c.host === h) && h.weft?.child.exitCode === null) f.containers.push({ ...(await lab.addContainer(h)), host: h });
    },
  };
  return f;
}

/** The lease host h owns (found through weft's owner record), or undefined. */
export async function leaseOf(lab: Lab, h: LabHost): Promise<{ subnet: string; value: string; key: string } | undefined> {
  const out = (await lab.etcdctl(['get', '--prefix', '/coreos.com/network/weft/owners/'])).trim().split('\n');
  for (let i = 0; i + 1 < out.length; i += 2) {
    if (!out[i + 1]?.includes(`"hostID":"${lab.prefix}-${h.name}"`)) continue;
    const subnetKey = out[i]?.split('/').pop() ?? '';
    const key = `/coreos.com/network/subnets/${subnetKey}`;
    const value = (await lab.etcdctl(['get', '--print-value-only', key])).trim();
    if (!value) return undefined;
    return { subnet: subnetKey.replace('-', '/'), value, key };
  }
  return undefined;
}

export async function hostRoutes(lab: Lab, h: LabHost): Promise<string> {
  return lab.ip(h.ns, ['route', 'show']);
}

/** Milliseconds until `fn` holds (polled every 20 ms); throws after timeoutMs. */
export async function timeUntil(fn: () => Promise<boolean> | boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await until(fn, timeoutMs, 20);
  return Date.now() - t0;
}

/** Every ordered pair of containers that could NOT reach each other within 5 s. */
export async function pingAll(f: Fabric): Promise<string[]> {
  const failed: string[] = [];
  for (const a of f.containers) {
    for (const b of f.containers) {
      if (a === b) continue;
      const ok = await until(() => f.lab.ping(a.ns, b.ip), 5000).catch(() => false);
      if (!ok) failed.push(`${a.host.name} -> ${b.host.name}`);
    }
  }
  return failed;
}

export async function mustLease(lab: Lab, h: LabHost): Promise<{ subnet: string; value: string; key: string }> {
  const l = await leaseOf(lab, h);
  if (!l) throw new Error(`${h.name} holds no lease`);
  return l;
}

/**
 * A bounded continuous ping from container `from` to container `to`: `count` packets, or for
 * `seconds` (ping -w), `intervalS` apart. Resolves with what was sent and received.
 */
export function continuousPing(f: Fabric, from: number, to: number, o: { count?: number; seconds?: number; intervalS: number }): Promise<{ sent: number; received: number }> {
  const a = f.containers[from];
  const b = f.containers[to];
  if (!a || !b) throw new Error('no such container');
  const bound = o.count !== undefined ? ['-c', String(o.count)] : ['-w', String(o.seconds ?? 10)];
  const p = start('nsenter', [`--net=/var/run/netns/${a.ns}`, 'ping', '-n', '-q', ...bound, '-i', String(o.intervalS), '-W', '1', b.ip]);
  const limitS = o.count !== undefined ? o.count * o.intervalS : (o.seconds ?? 10);
  return (async () => {
    await until(() => p.child.exitCode !== null, (limitS + 20) * 1000, 100);
    const m = /(\d+) packets transmitted, (\d+) received/.exec(p.output());
    return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? -1) };
  })();
}
