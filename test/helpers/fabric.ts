/** A lab fabric running weft, and what e2e tests ask of it (leases, routes, reachability). */
import type { ExecutionContext } from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatPrefix } from '../../src/core/net/cidr.js';
import { parseSubnetKey } from '../../src/core/flannel/subnet-key.js';
import { WEFT } from './cli.js';
import { Lab, type LabHost, yamlURL } from './lab.js';
import { type Started, start, until } from './procs.js';

/** A container behind a host's bridge: `ip` its IPv4 address ('' if none), `ip6` its IPv6 address if it has one. */
export interface Container {
  ns: string;
  ip: string;
  ip6?: string;
  host: LabHost;
}

export interface Fabric {
  readonly lab: Lab;
  readonly specs: string[];
  readonly containers: Container[];
  addContainers(): Promise<void>;
}

/**
 * A lab running weft on `start` (default all) of its hosts. `ipv6` gives the hosts IPv6
 * underlay addresses too, `ipv4: false` makes them IPv6-only (LabOptions).
 */
export async function fabric(
  t: ExecutionContext,
  o: {
    hosts: number;
    network: string;
    host?: string;
    behindRouter?: number[];
    start?: number;
    etcdMembers?: 1 | 3;
    ipv6?: boolean;
    ipv4?: boolean;
  },
): Promise<Fabric> {
  const lab = await Lab.create({
    hosts: o.hosts,
    ...(o.behindRouter ? { behindRouter: o.behindRouter } : {}),
    ...(o.etcdMembers ? { etcdMembers: o.etcdMembers } : {}),
    ...(o.ipv6 !== undefined ? { ipv6: o.ipv6 } : {}),
    ...(o.ipv4 !== undefined ? { ipv4: o.ipv4 } : {}),
  });
  t.teardown(() => lab.destroy());
  const specs = lab.hosts.map((h) => lab.writeSpec(h, o.network, o.host ? { host: o.host } : {}));
  for (const [i, h] of lab.hosts.entries()) if (i < (o.start ?? o.hosts)) await lab.startWeft(h, specs[i] ?? '');
  const f: Fabric = {
    lab,
    specs,
    containers: [],
    async addContainers() {
      for (const h of lab.hosts)
        if (!f.containers.some((c) => c.host === h) && h.weft?.child.exitCode === null)
          f.containers.push({ ...(await lab.addContainer(h)), host: h });
    },
  };
  return f;
}

/**
 * `weft apply` as an operator runs it, from h1 (which reaches etcd on the underlay), with `flags`:
 * the spec `<lab>/apply-<name>.yaml` holds the lab's etcd URL and `network` (indented under
 * `network:`, ending in one newline). Returns what apply printed.
 */
export async function applySpec(
  f: Fabric,
  name: string,
  network: string,
  flags: readonly string[] = [],
): Promise<string> {
  const file = join(f.lab.dir, `apply-${name.replace(/[^a-z0-9]+/gi, '-')}.yaml`);
  const body = network.replace(/^(?=.)/gm, '  ');
  writeFileSync(
    file,
    `etcd:\n  endpoints: [${yamlURL(f.lab.etcdURL)}]\nnetwork:\n${body}${body.endsWith('\n') ? '' : '\n'}`,
  );
  const h1 = f.lab.hosts[0];
  if (!h1) throw new Error('no host');
  return f.lab.exec(h1.ns, process.execPath, [WEFT, 'apply', '--spec', file, ...flags]);
}

/**
 * A lease as e2e tests see it: `subnet` the key's IPv4 half as a prefix (`198.18.5.0/24`;
 * `0.0.0.0/0` for an IPv6-only key), `subnet6` its IPv6 half (`fd18:0:0:5::/64`) if any.
 */
export interface LabLease {
  subnet: string;
  subnet6?: string;
  value: string;
  key: string;
}

/**
 * The halves of a subnet key `198.18.5.0-24[&fd18:0:0:5::-64]` as prefixes, read by the core
 * (parseSubnetKey, formatPrefix); an IPv6-only key's IPv4 half is `0.0.0.0/0`.
 */
function keyHalves(subnetKey: string): { subnet: string; subnet6?: string } {
  const k = parseSubnetKey(subnetKey);
  if (!k) throw new Error(`not a subnet key: ${subnetKey}`);
  return { subnet: k.v4 ? formatPrefix(k.v4) : '0.0.0.0/0', ...(k.v6 ? { subnet6: formatPrefix(k.v6) } : {}) };
}

/** The lease host h owns (found through weft's owner record), or undefined. */
export async function leaseOf(lab: Lab, h: LabHost): Promise<LabLease | undefined> {
  const out = (await lab.etcdctl(['get', '--prefix', '/coreos.com/network/weft/owners/'])).trim().split('\n');
  for (let i = 0; i + 1 < out.length; i += 2) {
    if (!out[i + 1]?.includes(`"hostID":"${lab.prefix}-${h.name}"`)) continue;
    const subnetKey = out[i]?.split('/').pop() ?? '';
    const key = `/coreos.com/network/subnets/${subnetKey}`;
    const value = (await lab.etcdctl(['get', '--print-value-only', key])).trim();
    if (!value) return undefined;
    return { ...keyHalves(subnetKey), value, key };
  }
  return undefined;
}

/** The MAC address of device `dev` (`flannel.1`, `flannel-v6.1`) on h; throws when h has no such device. */
export async function macOf(lab: Lab, h: LabHost, dev: string): Promise<string> {
  const m = /"address":"([0-9a-f:]+)"/.exec(await lab.ip(h.ns, ['-j', 'link', 'show', dev]));
  if (!m?.[1]) throw new Error(`no ${dev} on ${h.name}`);
  return m[1];
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

/** Every ordered pair of containers that could NOT reach each other (IPv4) within 5 s. */
export async function pingAll(f: Fabric): Promise<string[]> {
  return pingPairs(f, 4);
}

/** Every ordered pair of containers that could NOT reach each other over IPv6 within 5 s. */
export async function pingAll6(f: Fabric): Promise<string[]> {
  return pingPairs(f, 6);
}

async function pingPairs(f: Fabric, family: 4 | 6): Promise<string[]> {
  const addr = (c: Container): string => {
    const a = family === 4 ? c.ip : c.ip6;
    // Never a silent pass: a container without an address of this family is a test mistake.
    if (!a) throw new Error(`the container on ${c.host.name} has no IPv${family} address`);
    return a;
  };
  if (f.containers.length < 2) throw new Error(`pingAll${family === 6 ? '6' : ''}: fewer than two containers`);
  const failed: string[] = [];
  for (const a of f.containers) {
    for (const b of f.containers) {
      if (a === b) continue;
      const ok = await until(() => f.lab.ping(a.ns, addr(b)), 5000).catch(() => false);
      if (!ok) failed.push(`${a.host.name} -> ${b.host.name}`);
    }
  }
  return failed;
}

export async function mustLease(lab: Lab, h: LabHost): Promise<LabLease> {
  const l = await leaseOf(lab, h);
  if (!l) throw new Error(`${h.name} holds no lease`);
  return l;
}

/** Packets sent and received, from ping's summary (`5 packets transmitted, 4 received`); undefined when it printed none. */
function pingSummary(output: string): { sent: number; received: number } | undefined {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(output);
  return m ? { sent: Number(m[1]), received: Number(m[2]) } : undefined;
}

/** ping from container `from` to address `to` (IPv4 or IPv6 by its form), `bound` (-c N or -w S), `intervalS` apart, one reply awaited 1 s. */
function startPing(from: Container, to: string, bound: readonly string[], intervalS: number): Started {
  return start('nsenter', [
    `--net=/var/run/netns/${from.ns}`,
    'ping',
    to.includes(':') ? '-6' : '-4',
    '-n',
    '-q',
    ...bound,
    '-i',
    String(intervalS),
    '-W',
    '1',
    to,
  ]);
}

/**
 * A bounded continuous ping over IPv4 from container `from` to container `to`: `count` packets,
 * or for `seconds` (ping -w), `intervalS` apart. Resolves with what was sent and received
 * (received -1 when ping printed no summary).
 */
export function continuousPing(
  f: Fabric,
  from: number,
  to: number,
  o: { count?: number; seconds?: number; intervalS: number },
): Promise<{ sent: number; received: number }> {
  const a = f.containers[from];
  const b = f.containers[to];
  if (!a || !b) throw new Error('no such container');
  if (!b.ip) throw new Error(`the container on ${b.host.name} has no IPv4 address`);
  const bound = o.count !== undefined ? ['-c', String(o.count)] : ['-w', String(o.seconds ?? 10)];
  const p = startPing(a, b.ip, bound, o.intervalS);
  const limitS = o.count !== undefined ? o.count * o.intervalS : (o.seconds ?? 10);
  return (async () => {
    await until(() => p.child.exitCode !== null || p.child.signalCode !== null, (limitS + 20) * 1000, 100);
    return pingSummary(p.output()) ?? { sent: 0, received: -1 };
  })();
}

/**
 * A continuous ping from one container to another's address `to` that runs until stopped (at
 * most `maxSeconds`, ping -w): `stop()` ends it with SIGINT, as ^C does, and returns what was
 * sent and received. For traffic across steps whose length is not known beforehand.
 */
export interface PingStream {
  stop(): Promise<{ sent: number; received: number }>;
}

export function pingStream(from: Container, to: string, o: { intervalS: number; maxSeconds: number }): PingStream {
  if (to === '') throw new Error('pingStream: no address');
  const p = startPing(from, to, ['-w', String(o.maxSeconds)], o.intervalS);
  return {
    async stop() {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGINT');
      await until(() => p.child.exitCode !== null || p.child.signalCode !== null, 10_000, 50, 'the ping to end');
      const r = pingSummary(p.output());
      if (!r) throw new Error(`ping printed no summary: ${p.output()}`);
      return r;
    },
  };
}
