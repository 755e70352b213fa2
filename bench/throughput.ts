/**
 * bench/throughput: iperf3 between two namespaced hosts, in one run, each case on its own lab:
 *   - underlay: host to host on the veth/bridge segment (the reference);
 *   - host-gw and vxlan by hand: the datapath of flannel-compat.md §3.5/§4 programmed with `ip`,
 *     `bridge` and `iptables-restore` (the ceiling weft's datapath should reach: same device,
 *     MTU, routes and flanneld's masquerade/forward rules);
 *   - wireguard by hand: `wireguard-go` (this kernel has no WireGuard; each host its own
 *     /run/wireguard) configured with `wg` and `ip` as flanneld's wireguard backend configures its
 *     device (MTU 1420, /32, the network route via the device, one peer), with the same rules;
 *   - weft host-gw, weft vxlan and weft wireguard: `weft run` on both hosts;
 *   - IPv6 (hosts with an IPv6 underlay address too, fd00:2::N): the IPv6 underlay, and
 *     `vxlan over IPv6` and `host-gw IPv6` programmed by hand with the commands flanneld issues
 *     (flannel-v6.1 with its /128, a permanent neighbour, an fdb entry to the peer's IPv6
 *     address and an onlink route; or a route via the peer's IPv6 address; flanneld's ip6tables
 *     chains) against weft on a dual-stack fabric, iperf3 over IPv6 between the containers.
 * The overlay cases run container to container (a bridge holding the leased gateway, as
 * Docker's --bip does). Rounds are interleaved (every case once per round, every other round in
 * reverse order) and the median is
 * reported, so machine noise hits all cases alike. Each row's ratio to the underlay is to the
 * underlay of its own family.
 * Usage: node dist/bench/throughput.js [--rounds 3] [--seconds 3]
 *          [--only host-gw|vxlan|wireguard|vxlan-v6|host-gw-v6|ipv4|ipv6]
 */
import { Lab, type LabHost, addIPv6 } from '../test/helpers/lab.js';
import { run, until } from '../test/helpers/procs.js';
import { median, table, unitEnvironment } from './lib/lab-bench.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePrivateKey, publicKeyOf } from '../src/adapters/wireguard-keys.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const rounds = arg('rounds', 3);
const seconds = arg('seconds', 3);
/** Only the underlay and the cases of this backend (`--only wireguard`), or of one family (`--only ipv6`). */
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const wanted = (backend: string): boolean =>
  only === undefined || only === backend || only === (backend.endsWith('-v6') ? 'ipv6' : 'ipv4');

interface Case {
  name: string;
  lab: Lab;
  from: string;
  to: string;
  toAddr: string;
  mtu: string;
  family: 4 | 6;
}

/** A "container" on h behind bridge cbr0 holding `gw` (as Docker's --bip does). */
async function container(lab: Lab, h: LabHost, gw: string, mtu: string): Promise<{ ns: string; ip: string }> {
  const sub = gw.split('/')[0] ?? '';
  const ip = sub.replace(/\.1$/, '.2');
  const ns = await lab.addNamespace(`c${h.name}`);
  await lab.ip(h.ns, ['link', 'add', 'cbr0', 'mtu', mtu, 'type', 'bridge']);
  await lab.ip(h.ns, ['addr', 'add', gw, 'dev', 'cbr0']);
  await lab.ip(h.ns, ['link', 'set', 'cbr0', 'up']);
  await lab.ip(h.ns, ['link', 'add', 'veth-c', 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
  await lab.ip(h.ns, ['link', 'set', 'veth-c', 'master', 'cbr0', 'up']);
  await lab.ip(ns, ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
  await lab.ip(ns, ['link', 'set', 'eth0', 'up']);
  await lab.ip(ns, ['route', 'add', 'default', 'via', sub]);
  return { ns, ip };
}

async function weftCase(name: string, backend: string): Promise<Case> {
  const lab = await Lab.create({ hosts: 2 });
  const [h1, h2] = lab.hosts;
  if (!h1 || !h2) throw new Error('no hosts');
  for (const h of [h1, h2])
    await lab.startWeft(h, lab.writeSpec(h, `cidr: 198.18.0.0/16\nbackend:\n  type: ${backend}`), {
      env: { ...unitEnvironment(), WIREGUARD_KEY_FILE: join(h.dir, 'flanneld-wgkey') },
      ownRun: backend === 'wireguard',
    });
  const c1 = await lab.addContainer(h1);
  const c2 = await lab.addContainer(h2);
  return {
    name,
    lab,
    from: c1.ns,
    to: c2.ns,
    toAddr: c2.ip,
    mtu: lab.subnetEnv(h1).get('FLANNEL_MTU') ?? '?',
    family: 4,
  };
}

/** weft on a dual-stack fabric (hosts with IPv4 and IPv6 underlay addresses), measured over IPv6. */
async function weftCase6(name: string, backend: 'vxlan' | 'host-gw'): Promise<Case> {
  const lab = await Lab.create({ hosts: 2, ipv6: true });
  const [h1, h2] = lab.hosts;
  if (!h1 || !h2) throw new Error('no hosts');
  const network = `cidr: 198.18.0.0/16\nipv6:\n  cidr: fd18::/48\nbackend:\n  type: ${backend}`;
  try {
    for (const h of [h1, h2]) await lab.startWeft(h, lab.writeSpec(h, network), { env: unitEnvironment() });
    const c1 = await lab.addContainer(h1);
    const c2 = await lab.addContainer(h2);
    if (!c2.ip6) throw new Error(`${name}: weft gave h2 no IPv6 subnet:\n${lab.subnetText(h2)}`);
    const dev =
      backend === 'vxlan'
        ? ` (flannel-v6.1 ${/mtu (\d+)/.exec(await lab.ip(h1.ns, ['link', 'show', 'flannel-v6.1']))?.[1] ?? '?'})`
        : '';
    return {
      name,
      lab,
      from: c1.ns,
      to: c2.ns,
      toAddr: c2.ip6,
      mtu: `${lab.subnetEnv(h1).get('FLANNEL_MTU') ?? '?'}${dev}`,
      family: 6,
    };
  } catch (e) {
    await lab.destroy();
    throw e;
  }
}

/**
 * flanneld's IPv6 datapath typed in by hand (flannel-ipv6-wireguard.md §1.9-1.11): subnets
 * fd18:0:0:1::/64 and fd18:0:0:2::/64 of fd18::/48. vxlan: flannel-v6.1 (same VNI and port as
 * flannel.1) with `local` the host's IPv6 address, the MTU flanneld asks for clamped by the
 * kernel to the underlay's - 70 (1430), the subnet address as /128, per peer a permanent
 * neighbour, an fdb entry to its IPv6 address and an onlink route. host-gw: a route via the
 * peer's IPv6 address. Both: IPv6 forwarding and flanneld's ip6tables chains. The containers'
 * MTU is FLANNEL_MTU (1450 for vxlan: flanneld writes one MTU for both families).
 */
async function handCase6(name: string, backend: 'vxlan' | 'host-gw'): Promise<Case> {
  const lab = await Lab.create({ hosts: 2, ipv6: true });
  const hs = lab.hosts;
  const mtu = backend === 'vxlan' ? '1450' : '1500';
  const subs = ['fd18:0:0:1::', 'fd18:0:0:2::'];
  const macs = ['0e:77:00:00:06:01', '0e:77:00:00:06:02'];
  const ip6 = (h: LabHost | undefined): string => {
    if (!h?.ip6) throw new Error('no IPv6 underlay');
    return h.ip6;
  };
  for (const [i, h] of hs.entries()) {
    await lab.exec(h.ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    if (backend === 'vxlan') {
      await lab.ip(h.ns, [
        'link',
        'add',
        'flannel-v6.1',
        'address',
        macs[i] ?? '',
        'type',
        'vxlan',
        'id',
        '1',
        'local',
        ip6(h),
        'dev',
        'eth0',
        'dstport',
        '8472',
        'nolearning',
      ]);
      await lab.ip(h.ns, ['link', 'set', 'flannel-v6.1', 'mtu', '1430']);
      await lab.ip(h.ns, ['addr', 'add', `${subs[i] ?? ''}/128`, 'dev', 'flannel-v6.1', 'nodad']);
      await lab.ip(h.ns, ['link', 'set', 'flannel-v6.1', 'up']);
    }
  }
  for (const [i, h] of hs.entries()) {
    const j = 1 - i;
    const net = subs[j] ?? '';
    if (backend === 'vxlan') {
      await lab.ip(h.ns, [
        '-6',
        'neigh',
        'replace',
        net,
        'lladdr',
        macs[j] ?? '',
        'dev',
        'flannel-v6.1',
        'nud',
        'permanent',
      ]);
      await lab.exec(h.ns, 'bridge', [
        'fdb',
        'replace',
        macs[j] ?? '',
        'dev',
        'flannel-v6.1',
        'dst',
        ip6(hs[j]),
        'self',
        'permanent',
      ]);
      await lab.ip(h.ns, ['-6', 'route', 'replace', `${net}/64`, 'via', net, 'dev', 'flannel-v6.1', 'onlink']);
    } else {
      await lab.ip(h.ns, ['-6', 'route', 'replace', `${net}/64`, 'via', ip6(hs[j]), 'dev', 'eth0']);
    }
  }
  for (const [i, h] of hs.entries()) {
    const rules = flanneldRules('fd18::/48', `${subs[i] ?? ''}/64`, 'ff00::/8');
    const r = await run('nsenter', [
      `--net=/var/run/netns/${h.ns}`,
      'sh',
      '-c',
      'printf "%s" "$1" | ip6tables-restore --noflush',
      'sh',
      rules,
    ]);
    if (r.code !== 0) throw new Error(r.out);
  }
  const [h1, h2] = hs;
  if (!h1 || !h2) throw new Error('no hosts');
  const c = await Promise.all(
    [h1, h2].map(async (h, i) => {
      writeFileSync(
        h.subnetFile,
        `FLANNEL_IPV6_NETWORK=fd18::/48\nFLANNEL_IPV6_SUBNET=${addIPv6(subs[i] ?? '', 1)}/64\nFLANNEL_MTU=${mtu}\nFLANNEL_IPMASQ=true\n`,
      );
      return lab.addContainer(h);
    }),
  );
  const to = c[1]?.ip6;
  if (!c[0] || !c[1] || !to) throw new Error('no containers');
  return {
    name,
    lab,
    from: c[0].ns,
    to: c[1].ns,
    toAddr: to,
    mtu: backend === 'vxlan' ? `${mtu} (flannel-v6.1 1430)` : mtu,
    family: 6,
  };
}

/** flanneld's masquerade and forward chains for one family (flannel-compat.md §5, flannel-ipv6-wireguard.md §1.11), as iptables-restore input. */
function flanneldRules(n: string, l: string, multicast: string): string {
  const m = '-m comment --comment "flanneld masq"';
  const f = '-m comment --comment "flanneld forward"';
  return [
    '*nat',
    ':FLANNEL-POSTRTG - [0:0]',
    `-A POSTROUTING ${m} -j FLANNEL-POSTRTG`,
    `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 ${m} -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${l} -d ${n} ${m} -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${n} -d ${l} ${m} -j RETURN`,
    `-A FLANNEL-POSTRTG ! -s ${n} -d ${l} ${m} -j RETURN`,
    `-A FLANNEL-POSTRTG -s ${n} ! -d ${multicast} ${m} -j MASQUERADE --random-fully`,
    `-A FLANNEL-POSTRTG ! -s ${n} -d ${n} ${m} -j MASQUERADE --random-fully`,
    'COMMIT',
    '*filter',
    ':FLANNEL-FWD - [0:0]',
    `-A FORWARD ${f} -j FLANNEL-FWD`,
    `-A FLANNEL-FWD -s ${n} ${f} -j ACCEPT`,
    `-A FLANNEL-FWD -d ${n} ${f} -j ACCEPT`,
    'COMMIT',
    '',
  ].join('\n');
}

/** flanneld's wireguard device by hand on both hosts: userspace (wireguard-go), its own /run/wireguard per host. */
async function wireguardByHand(lab: Lab, hs: readonly LabHost[]): Promise<void> {
  const keys = hs.map(() => generatePrivateKey());
  for (const [i, h] of hs.entries()) {
    mkdirSync(lab.wireguardRun(h), { recursive: true });
    mkdirSync('/run/wireguard', { recursive: true });
    const file = join(h.dir, 'wg.key');
    writeFileSync(file, `${keys[i] ?? ''}\n`, { mode: 0o600 });
    // In a session of its own, as weft starts it: this kernel shares CPU time between sessions
    // (sched_autogroup), so one started inside the benchmark's session would get more of it.
    await lab.execOnHost(h, 'setsid', ['wireguard-go', 'flannel-wg']);
    await lab.ip(h.ns, ['link', 'set', 'flannel-wg', 'mtu', '1420']);
    await lab.ip(h.ns, ['addr', 'add', `198.18.${i + 1}.0/32`, 'dev', 'flannel-wg']);
    await lab.ip(h.ns, ['link', 'set', 'flannel-wg', 'up']);
    const j = 1 - i;
    await lab.execOnHost(h, 'wg', [
      'set',
      'flannel-wg',
      'listen-port',
      '51820',
      'private-key',
      file,
      'peer',
      publicKeyOf(keys[j] ?? ''),
      'endpoint',
      `${hs[j]?.ip ?? ''}:51820`,
      'allowed-ips',
      `198.18.${j + 1}.0/24`,
    ]);
    await lab.ip(h.ns, ['route', 'replace', '198.18.0.0/16', 'dev', 'flannel-wg', 'scope', 'link']);
  }
}

/** The same datapath as weft's (and flanneld's), typed in by hand: subnets 198.18.1.0/24 and 198.18.2.0/24. */
async function handCase(name: string, backend: 'vxlan' | 'host-gw' | 'wireguard'): Promise<Case> {
  const lab = await Lab.create({ hosts: 2 });
  const hs = lab.hosts;
  const mtu = backend === 'vxlan' ? '1450' : backend === 'wireguard' ? '1420' : '1500';
  if (backend === 'wireguard') await wireguardByHand(lab, hs);
  const macs = ['0e:77:00:00:00:01', '0e:77:00:00:00:02'];
  for (const [i, h] of hs.entries()) {
    await lab.exec(h.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    if (backend === 'vxlan') {
      await lab.ip(h.ns, [
        'link',
        'add',
        'flannel.1',
        'address',
        macs[i] ?? '',
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
      await lab.ip(h.ns, ['link', 'set', 'flannel.1', 'mtu', mtu]);
      await lab.ip(h.ns, ['addr', 'add', `198.18.${i + 1}.0/32`, 'dev', 'flannel.1']);
      await lab.ip(h.ns, ['link', 'set', 'flannel.1', 'up']);
    }
  }
  for (const [i, h] of hs.entries()) {
    const j = 1 - i;
    const peer = hs[j];
    if (!peer) continue;
    const net = `198.18.${j + 1}.0`;
    if (backend === 'wireguard') continue;
    if (backend === 'vxlan') {
      await lab.ip(h.ns, ['neigh', 'replace', net, 'lladdr', macs[j] ?? '', 'dev', 'flannel.1', 'nud', 'permanent']);
      await run('nsenter', [
        `--net=/var/run/netns/${h.ns}`,
        'bridge',
        'fdb',
        'replace',
        macs[j] ?? '',
        'dev',
        'flannel.1',
        'dst',
        peer.ip,
        'self',
        'permanent',
      ]);
      await lab.ip(h.ns, ['route', 'replace', `${net}/24`, 'via', net, 'dev', 'flannel.1', 'onlink']);
    } else {
      await lab.ip(h.ns, ['route', 'replace', `${net}/24`, 'via', peer.ip, 'dev', 'eth0']);
    }
  }
  // flanneld's masquerade and forward rules (flannel-compat.md §5), as flanneld installs them:
  // the nat table (and so conntrack) is part of the datapath being compared.
  for (const [i, h] of hs.entries()) {
    const rules = flanneldRules('198.18.0.0/16', `198.18.${i + 1}.0/24`, '224.0.0.0/4');
    const r = await run('nsenter', [
      `--net=/var/run/netns/${h.ns}`,
      'sh',
      '-c',
      'printf "%s" "$1" | iptables-restore --noflush',
      'sh',
      rules,
    ]);
    if (r.code !== 0) throw new Error(r.out);
  }
  const [h1, h2] = hs;
  if (!h1 || !h2) throw new Error('no hosts');
  const c1 = await container(lab, h1, '198.18.1.1/24', mtu);
  const c2 = await container(lab, h2, '198.18.2.1/24', mtu);
  return { name, lab, from: c1.ns, to: c2.ns, toAddr: c2.ip, mtu, family: 4 };
}

const UNDERLAY = { 4: 'underlay (host to host)', 6: 'underlay IPv6 (host to host)' } as const;

async function underlayCase(family: 4 | 6): Promise<Case> {
  const lab = await Lab.create({ hosts: 2, ipv6: family === 6 });
  const [h1, h2] = lab.hosts;
  if (!h1 || !h2) throw new Error('no hosts');
  return {
    name: UNDERLAY[family],
    lab,
    from: h1.ns,
    to: h2.ns,
    toAddr: family === 6 ? (h2.ip6 ?? '') : h2.ip,
    mtu: '1500',
    family,
  };
}

async function iperf(c: Case): Promise<number> {
  const server = c.lab.spawnIn(c.to, 'iperf3', ['-s', '-1', '-p', '5201']);
  // Listening? (not by connecting: `-1` would take the probe as its one client)
  await until(
    async () =>
      (await run('nsenter', [`--net=/var/run/netns/${c.to}`, 'ss', '-Hltn', 'sport = :5201'])).stdout.includes('5201'),
    5000,
    50,
  );
  const r = await run('nsenter', [
    `--net=/var/run/netns/${c.from}`,
    'iperf3',
    '-c',
    c.toAddr,
    '-p',
    '5201',
    '-t',
    String(seconds),
    '-J',
  ]);
  await server.stop(2000);
  const j = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second?: number } }; error?: string };
  if (!j.end?.sum_received?.bits_per_second) throw new Error(`${c.name}: iperf3 failed: ${j.error ?? r.out}`);
  return j.end.sum_received.bits_per_second / 1e9;
}

const cases: Case[] = [];
try {
  if (['host-gw', 'vxlan', 'wireguard'].some(wanted)) cases.push(await underlayCase(4));
  for (const backend of ['host-gw', 'vxlan', 'wireguard'] as const) {
    if (!wanted(backend)) continue;
    const label = backend === 'wireguard' ? 'wireguard (userspace)' : backend;
    cases.push(await handCase(`${label}, by hand (ceiling)`, backend));
    cases.push(await weftCase(`${label}, weft`, backend));
  }
  if (['host-gw-v6', 'vxlan-v6'].some(wanted)) cases.push(await underlayCase(6));
  for (const backend of ['host-gw', 'vxlan'] as const) {
    if (!wanted(`${backend}-v6`)) continue;
    const label = backend === 'vxlan' ? 'vxlan over IPv6' : 'host-gw IPv6';
    cases.push(await handCase6(`${label}, by hand (ceiling)`, backend));
    cases.push(await weftCase6(`${label}, weft`, backend));
  }
  const results = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  // Every other round runs the cases in reverse order, so a slow phase of this shared machine does not always hit the same case.
  for (let r = 0; r < rounds; r++)
    for (const c of r % 2 === 0 ? cases : [...cases].reverse()) results.get(c.name)?.push(await iperf(c));
  const med = (name: string) => median(results.get(name) ?? []);
  const rows = cases.map((c) => {
    const m = med(c.name);
    const under = med(UNDERLAY[c.family]);
    const ceiling = c.name.includes('weft') ? med(c.name.replace('weft', 'by hand (ceiling)')) : NaN;
    return [
      c.name,
      c.mtu,
      `${m.toFixed(2)} Gbit/s`,
      (results.get(c.name) ?? []).map((x) => x.toFixed(2)).join(' / '),
      (m / under).toFixed(2),
      Number.isNaN(ceiling) ? '' : (m / ceiling).toFixed(3),
    ];
  });
  console.log(`\nThroughput: iperf3 TCP, ${seconds} s per run, ${rounds} interleaved rounds, median\n`);
  console.log(table(['case', 'MTU', 'median', 'runs', 'ratio to underlay', 'ratio to hand-programmed'], rows));
  console.log('\nGoal: weft within 3% of the hand-programmed datapath for each backend (ratio >= 0.97).');
} finally {
  for (const c of cases) await c.lab.destroy();
}
