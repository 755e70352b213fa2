// Issue 17's acceptance, end to end in namespaces on the real kernel: dual-stack vxlan and
// host-gw fabrics (flanneld's dual-stack lease bytes, subnet.env, IPv4 and IPv6 between
// containers, IPv6 drift repaired), real dockerd with the opt-in IPv6 options, IPv6-only hosts
// (no IPv4 underlay address at all), IPv6 turned on in a running IPv4 fleet under traffic, and a
// flanneld dual-stack peer seen by a dual-stack and by an IPv4-only weft host.
//
// Addresses: IPv4 underlay 192.0.2.N, IPv6 underlay fd00:2::N (lab.ts), overlays
// 198.18.0.0/16 and fd18::/48 (subnets /24 and /64).
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Container,
  type Fabric,
  type LabLease,
  applySpec,
  fabric,
  leaseOf,
  macOf,
  mustLease,
  pingAll,
  pingAll6,
  pingStream,
  timeUntil,
} from '../helpers/fabric.js';
import { type Lab, type LabHost, addIPv6, inIPv6Prefix } from '../helpers/lab.js';
import { dockerOptions, importBusybox, startDockerd } from '../helpers/docker.js';
import { sleep, until } from '../helpers/procs.js';
import { bounded } from '../helpers/bound.js';

const P = '/coreos.com/network';
const V6 = 'ipv6:\n  cidr: fd18::/48\n';
const V4 = (backend: string, extra = ''): string => `cidr: 198.18.0.0/16\n${extra}backend:\n  type: ${backend}`;
const DUAL = (backend: string, extra = ''): string => `cidr: 198.18.0.0/16\n${extra}${V6}backend:\n  type: ${backend}`;
const V6ONLY = `ipv4: false\n${V6}backend:\n  type: vxlan`;
const TTL = 'leaseTTL: 10s\nleaseRenewMargin: 3s\n';
/** A dual-stack key as flanneld writes it: `198.18.X.0-24&fd18:0:0:Y::-64` (Go's text form, first subnet skipped). */
const DUAL_KEY = /^\/coreos\.com\/network\/subnets\/198\.18\.\d{1,3}\.0-24&fd18:0:0:[1-9a-f][0-9a-f]{0,3}::-64$/;
const V6ONLY_KEY = /^\/coreos\.com\/network\/subnets\/0\.0\.0\.0-0&fd18:0:0:[1-9a-f][0-9a-f]{0,3}::-64$/;

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** The address of a prefix: `fd18:0:0:5::/64` -> `fd18:0:0:5::`. */
const addrOf = (p: string): string => p.split('/')[0] ?? '';
/** flanneld's FLANNEL_SUBNET for a /24: `198.18.5.0/24` -> `198.18.5.1/24`. */
const gw4 = (subnet: string): string => subnet.replace(/\.0\/24$/, '.1/24');
/** flanneld's FLANNEL_IPV6_SUBNET: the subnet address + 1 with its length. */
const gw6 = (subnet6: string): string => `${addIPv6(addrOf(subnet6), 1)}/${subnet6.split('/')[1] ?? ''}`;
const v6Of = (l: LabLease): string => {
  if (!l.subnet6) throw new Error(`${l.key} has no IPv6 half`);
  return l.subnet6;
};
const ip6Of = (h: LabHost): string => {
  if (!h.ip6) throw new Error(`${h.name} has no IPv6 underlay address`);
  return h.ip6;
};

const routes6 = (lab: Lab, h: LabHost): Promise<string> => lab.ip(h.ns, ['-6', 'route', 'show']);
const routes4 = (lab: Lab, h: LabHost): Promise<string> => lab.ip(h.ns, ['-4', 'route', 'show']);
const neigh = (lab: Lab, h: LabHost, dev: string): Promise<string> => lab.ip(h.ns, ['neigh', 'show', 'dev', dev]);
const fdb = (lab: Lab, h: LabHost, dev: string): Promise<string> =>
  lab.exec(h.ns, 'bridge', ['fdb', 'show', 'dev', dev]);

/**
 * vxlan over IPv`family` on h toward a peer (common brief): onlink route, permanent neighbour,
 * fdb entry to its public address (PublicIP, PublicIPv6), on flannel.1 or flannel-v6.1.
 */
async function hasVxlanPeer(
  lab: Lab,
  h: LabHost,
  family: 4 | 6,
  subnet: string,
  mac: string,
  publicIP: string,
): Promise<boolean> {
  const dev = family === 6 ? 'flannel-v6.1' : 'flannel.1';
  const g = addrOf(subnet);
  return (
    new RegExp(`^${esc(subnet)} via ${esc(g)} dev ${esc(dev)} proto 175 .*onlink`, 'm').test(
      await (family === 6 ? routes6 : routes4)(lab, h),
    ) &&
    (await neigh(lab, h, dev)).includes(`${g} lladdr ${mac} PERMANENT`) &&
    (await fdb(lab, h, dev)).includes(`${mac} dst ${publicIP} self permanent`)
  );
}

/** Lines weft logged at level error (a host that tolerates something must log none). */
const errorLines = (h: LabHost): string[] =>
  (h.weft?.output() ?? '').split('\n').filter((l) => l.includes('"level":"error"'));

/** SIGTERM weft on h (it must exit 0, leaving lease and datapath) and start it again with `spec`. */
async function restart(f: Fabric, h: LabHost, spec: string): Promise<void> {
  const old = h.weft;
  if (!old) throw new Error(`weft is not running on ${h.name}`);
  await old.stop(10_000);
  if (old.child.exitCode !== 0)
    throw new Error(
      `weft on ${h.name} exited ${String(old.child.exitCode ?? old.child.signalCode)} on SIGTERM:\n${old.output().slice(-2000)}`,
    );
  await f.lab.startWeft(h, spec);
}

for (const backend of ['vxlan', 'host-gw'] as const) {
  test.serial(
    `${backend} dual-stack, 3 hosts: flanneld's dual-stack lease bytes and subnet.env, every container pair reachable over IPv4 and IPv6, IPv6 drift repaired`,
    async (t) => {
      const step = bounded(t, 180_000);
      const f = await fabric(t, { hosts: 3, network: DUAL(backend), ipv6: true, start: 0 });
      const hosts = f.lab.hosts as [LabHost, LabHost, LabHost];
      const [h1, h2] = hosts;
      const mtu = backend === 'vxlan' ? 1450 : 1500;
      step('starting weft (docker options output without the IPv6 opt-in)');
      for (const [i, h] of hosts.entries()) {
        f.specs[i] = f.lab.writeSpec(h, DUAL(backend), {
          host: TTL,
          outputs: `outputs:\n  docker:\n    file: ${join(h.dir, 'docker.env')}\n`,
        });
        await f.lab.startWeft(h, f.specs[i] ?? '');
      }

      step('leases, subnet.env, docker options');
      const leases: LabLease[] = [];
      const macs4: string[] = [];
      const macs6: string[] = [];
      for (const h of hosts) {
        const l = await mustLease(f.lab, h);
        leases.push(l);
        t.regex(l.key, DUAL_KEY, `${h.name} holds one dual-stack key`);
        let data = '';
        if (backend === 'vxlan') {
          macs4.push(await macOf(f.lab, h, 'flannel.1'));
          macs6.push(await macOf(f.lab, h, 'flannel-v6.1'));
          t.not(macs4.at(-1), macs6.at(-1), 'two devices, two MACs');
          data = `,"BackendData":{"VNI":1,"VtepMAC":"${macs4.at(-1) ?? '?'}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${macs6.at(-1) ?? '?'}"}`;
        }
        t.is(
          l.value,
          `{"PublicIP":"${h.ip}","PublicIPv6":"${ip6Of(h)}","BackendType":"${backend}"${data}}`,
          `${h.name}'s lease is byte-identical to flanneld's dual-stack lease`,
        );
        t.is(
          f.lab.subnetText(h),
          `FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=${gw4(l.subnet)}\nFLANNEL_IPV6_NETWORK=fd18::/48\nFLANNEL_IPV6_SUBNET=${gw6(v6Of(l))}\nFLANNEL_MTU=${mtu}\nFLANNEL_IPMASQ=true\n`,
          `${h.name}'s subnet.env`,
        );
        const g = gw4(l.subnet);
        t.is(
          readFileSync(join(h.dir, 'docker.env'), 'utf8'),
          `DOCKER_OPT_BIP="--bip=${g}"\nDOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=${mtu}"\nDOCKER_NETWORK_OPTIONS=" --bip=${g} --ip-masq=false --mtu=${mtu}"\n`,
          "docker options stay mk-docker-opts' bytes without the opt-in",
        );
      }
      t.is(new Set(leases.map((l) => l.subnet)).size, 3, 'three different IPv4 subnets');
      t.is(new Set(leases.map((l) => l.subnet6)).size, 3, 'three different IPv6 subnets');
      const keys = (await f.lab.etcdctl(['get', '--prefix', '--keys-only', `${P}/subnets/`]))
        .split('\n')
        .filter((k) => k !== '');
      t.deepEqual(keys.sort(), leases.map((l) => l.key).sort(), 'one key per host, nothing else');

      step('the datapath on h1');
      const peers = [1, 2].map((i) => ({
        h: hosts[i] as LabHost,
        l: leases[i] as LabLease,
        mac4: macs4[i] ?? '',
        mac6: macs6[i] ?? '',
      }));
      const own = leases[0] as LabLease;
      if (backend === 'vxlan') {
        const link6 = await f.lab.ip(h1.ns, ['-d', 'link', 'show', 'flannel-v6.1']);
        t.regex(link6, /mtu 1430 /, 'flannel-v6.1 gets min(overlay MTU, underlay MTU - 70)');
        t.regex(link6, /vxlan id 1 local fd00:2::1 dev eth0 .*dstport 8472 nolearning/);
        t.regex(
          await f.lab.ip(h1.ns, ['-6', 'addr', 'show', 'dev', 'flannel-v6.1']),
          new RegExp(`inet6 ${esc(addrOf(v6Of(own)))}/128 `),
        );
        // h3 joined last: give h1 a moment (joins converge well within 1 s in fabric.test.ts).
        await timeUntil(
          async () =>
            (await Promise.all(peers.map((p) => hasVxlanPeer(f.lab, h1, 6, v6Of(p.l), p.mac6, ip6Of(p.h))))).every(
              Boolean,
            ),
          5000,
        ).catch(() => 0);
        for (const p of peers) {
          t.true(
            await hasVxlanPeer(f.lab, h1, 6, v6Of(p.l), p.mac6, ip6Of(p.h)),
            `v6 route, neighbour and fdb entry for ${p.h.name}`,
          );
          t.true(
            await hasVxlanPeer(f.lab, h1, 4, p.l.subnet, p.mac4, p.h.ip),
            `v4 route, neighbour and fdb entry for ${p.h.name}`,
          );
        }
      } else {
        const viaPeers = (r6: string): boolean =>
          peers.every((p) => new RegExp(`^${esc(v6Of(p.l))} via ${esc(ip6Of(p.h))} dev eth0 proto 175`, 'm').test(r6));
        await timeUntil(async () => viaPeers(await routes6(f.lab, h1)), 5000).catch(() => 0);
        const r6 = await routes6(f.lab, h1);
        for (const p of peers)
          t.regex(
            r6,
            new RegExp(`^${esc(v6Of(p.l))} via ${esc(ip6Of(p.h))} dev eth0 proto 175`, 'm'),
            `v6 route via ${p.h.name}'s PublicIPv6`,
          );
        t.not((await f.lab.tryExec(h1.ns, 'ip', ['link', 'show', 'flannel-v6.1'])).code, 0, 'no device for host-gw');
      }
      t.is(
        (await f.lab.exec(h1.ns, 'sysctl', ['-n', 'net.ipv6.conf.all.forwarding'])).trim(),
        '1',
        'IPv6 forwarding on',
      );
      const nat6 = await f.lab.exec(h1.ns, 'ip6tables-save', ['-t', 'nat']);
      t.regex(nat6, /-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG/);
      t.regex(
        nat6,
        new RegExp(
          `-A FLANNEL-POSTRTG -s ${esc(v6Of(own))} -d fd18::/48 -m comment --comment "flanneld masq" -j RETURN`,
        ),
      );
      t.regex(
        nat6,
        /-A FLANNEL-POSTRTG -s fd18::\/48 ! -d ff00::\/8 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully/,
      );
      t.regex(
        await f.lab.exec(h1.ns, 'ip6tables-save', ['-t', 'filter']),
        /-A FLANNEL-FWD -d fd18::\/48 -m comment --comment "flanneld forward" -j ACCEPT/,
      );

      step('containers');
      await f.addContainers();
      t.deepEqual(await pingAll(f), [], 'every container reaches every other over IPv4');
      t.deepEqual(await pingAll6(f), [], 'every container reaches every other over IPv6');

      step('IPv6 drift on h1');
      const p2 = peers[0];
      if (!p2) throw new Error('no peer');
      const s6 = v6Of(p2.l);
      const g6 = addrOf(s6);
      if (backend === 'host-gw') {
        await f.lab.ip(h1.ns, ['-6', 'route', 'del', s6]);
        t.log(
          `host-gw: deleted v6 route repaired in ${await timeUntil(async () => new RegExp(`^${esc(s6)} via ${esc(ip6Of(h2))} dev eth0`, 'm').test(await routes6(f.lab, h1)), 2000)} ms`,
        );
      } else {
        const routeBack = async (): Promise<boolean> =>
          new RegExp(`^${esc(s6)} via ${esc(g6)} dev flannel-v6\\.1 .*onlink`, 'm').test(await routes6(f.lab, h1));
        await f.lab.ip(h1.ns, ['-6', 'route', 'del', s6]);
        t.log(`vxlan: deleted v6 route repaired in ${await timeUntil(routeBack, 2000)} ms`);
        await f.lab.ip(h1.ns, ['-6', 'neigh', 'del', g6, 'dev', 'flannel-v6.1']);
        t.log(
          `vxlan: deleted v6 neighbour repaired in ${await timeUntil(async () => (await neigh(f.lab, h1, 'flannel-v6.1')).includes(`${g6} lladdr ${p2.mac6} PERMANENT`), 2000)} ms`,
        );
        await f.lab.exec(h1.ns, 'bridge', ['fdb', 'del', p2.mac6, 'dev', 'flannel-v6.1', 'dst', ip6Of(h2), 'self']);
        t.log(
          `vxlan: deleted v6 fdb entry repaired in ${await timeUntil(async () => (await fdb(f.lab, h1, 'flannel-v6.1')).includes(`${p2.mac6} dst ${ip6Of(h2)} self permanent`), 2000)} ms`,
        );

        const mac6 = macs6[0] ?? '';
        await f.lab.ip(h1.ns, ['link', 'del', 'flannel-v6.1']);
        const ms = await timeUntil(async () => {
          for (const p of peers)
            if (!(await hasVxlanPeer(f.lab, h1, 6, v6Of(p.l), p.mac6, ip6Of(p.h)).catch(() => false))) return false;
          return true;
        }, 2000);
        t.log(`vxlan: deleted flannel-v6.1 recreated with every peer's entries in ${ms} ms`);
        const link6 = await f.lab.ip(h1.ns, ['-d', 'link', 'show', 'flannel-v6.1']);
        t.regex(link6, /mtu 1430 /, 'the same device again: its MTU');
        t.regex(link6, /vxlan id 1 local fd00:2::1 dev eth0 .*dstport 8472 nolearning/, 'its VNI, local address, port');
        t.regex(
          await f.lab.ip(h1.ns, ['-6', 'addr', 'show', 'dev', 'flannel-v6.1']),
          new RegExp(`inet6 ${esc(addrOf(v6Of(own)))}/128 `),
          'with its /128 address',
        );
        t.is(
          await macOf(f.lab, h1, 'flannel-v6.1'),
          mac6,
          'the recreated device keeps its MAC, so peers stay valid (as flannel.1 does)',
        );
        t.true(
          (await mustLease(f.lab, h1)).value.includes(
            `"BackendV6Data":{"VNI":1,"VtepMAC":"${await macOf(f.lab, h1, 'flannel-v6.1')}"}`,
          ),
          "the lease names the device's MAC",
        );
        t.regex(
          h1.weft?.output() ?? '',
          /"msg":"repaired drift","change":"ip link add flannel-v6\.1 /,
          'weft recreated it',
        );

        // The ip6tables chains have no events: they come back on the drift check, as the IPv4 ones do (resilience.test.ts).
        await f.lab.exec(h1.ns, 'ip6tables', ['-F', 'FLANNEL-FWD']);
        await f.lab.exec(h1.ns, 'ip6tables', [
          '-t',
          'nat',
          '-D',
          'POSTROUTING',
          '-m',
          'comment',
          '--comment',
          'flanneld masq',
          '-j',
          'FLANNEL-POSTRTG',
        ]);
        t.log(
          `vxlan: flushed ip6tables chains repaired in ${await timeUntil(async () => {
            const fwd = await f.lab.exec(h1.ns, 'ip6tables-save', ['-t', 'filter']);
            const nat = await f.lab.exec(h1.ns, 'ip6tables-save', ['-t', 'nat']);
            return (
              fwd.includes('-A FLANNEL-FWD -s fd18::/48') &&
              nat.includes('-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG')
            );
          }, 10_000)} ms`,
        );
      }
      t.deepEqual(await pingAll6(f), [], 'IPv6 between every pair again');
      t.deepEqual(await pingAll(f), [], 'IPv4 untouched');
      for (const h of hosts) t.deepEqual(errorLines(h), [], `${h.name} logged no error`);
    },
  );
}

for (const backend of ['vxlan', 'host-gw'] as const)
  test.serial(
    `${backend} dual-stack with real dockerd started with the emitted options (outputs.docker.ipv6: --ipv6 --fixed-cidr-v6): a container reaches the other host's container over IPv6 and IPv4`,
    async (t) => {
      const step = bounded(t, 150_000);
      const f = await fabric(t, { hosts: 2, network: DUAL(backend), ipv6: true, start: 0 });
      const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
      for (const [i, h] of [h1, h2].entries()) {
        f.specs[i] = f.lab.writeSpec(h, DUAL(backend), {
          outputs: `outputs:\n  docker:\n    file: ${join(h.dir, 'docker.env')}\n    ipv6: true\n`,
        });
        // Docker's own FORWARD policy on a real host (DROP, for ip6tables too since Docker 27).
        await f.lab.exec(h.ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
        await f.lab.exec(h.ns, 'ip6tables', ['-P', 'FORWARD', 'DROP']);
        await f.lab.startWeft(h, f.specs[i] ?? '');
      }
      step('dockerd on both hosts');
      const ds = [];
      for (const h of [h1, h2]) {
        const l = await mustLease(f.lab, h);
        const opts = dockerOptions(join(h.dir, 'docker.env'), 'DOCKER_NETWORK_OPTIONS');
        t.log(`${h.name}: dockerd ${opts.join(' ')}`);
        t.true(opts.includes('--ipv6'), 'the opt-in adds --ipv6');
        t.true(opts.includes(`--fixed-cidr-v6=${v6Of(l)}`), "and --fixed-cidr-v6 = this host's IPv6 subnet");
        t.true(
          opts.includes(`--bip=${gw4(l.subnet)}`) && opts.includes(`--mtu=${backend === 'vxlan' ? 1450 : 1500}`),
          'besides --bip and --mtu',
        );
        const d = await startDockerd(f.lab, h, opts);
        t.teardown(() => d.proc.stop(10_000));
        await importBusybox(f.lab, d);
        ds.push(d);
        const docker0 = await f.lab.ip(h.ns, ['addr', 'show', 'docker0']);
        const env = f.lab.subnetEnv(h);
        t.true(
          docker0.includes(`inet ${env.get('FLANNEL_SUBNET') ?? '?'} `),
          `docker0 on ${h.name} holds the leased IPv4 gateway`,
        );
        t.true(
          docker0.includes(`inet6 ${env.get('FLANNEL_IPV6_SUBNET') ?? '?'} `),
          `docker0 on ${h.name} holds the leased IPv6 gateway`,
        );
      }
      const [d1, d2] = ds;
      if (!d1 || !d2) throw new Error('no dockerd');
      step('containers');
      await d2.docker(['run', '-d', '--name', 'target', 'weft-busybox', 'sleep', '120']);
      const ip6 = (await d2.docker(['inspect', '-f', '{{.NetworkSettings.GlobalIPv6Address}}', 'target'])).trim();
      const ip4 = (await d2.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'target'])).trim();
      t.true(
        inIPv6Prefix(ip6, v6Of(await mustLease(f.lab, h2))),
        `the container's IPv6 address ${ip6} is in h2's IPv6 subnet`,
      );
      // A new container's IPv6 address is tentative for a moment (duplicate address detection) and
      // neighbour discovery runs on first use: warm up (bounded), then require three of three.
      const warm = (fam: '-4' | '-6', to: string): string[] => [
        'run',
        '--rm',
        'weft-busybox',
        'sh',
        '-c',
        `for i in 1 2 3 4 5 6; do ping ${fam} -c 1 -W 1 ${to} >/dev/null && break; done; ping ${fam} -c 3 -W 3 ${to}`,
      ];
      const out6 = await d1.docker(warm('-6', ip6));
      t.log(`IPv6: ${out6.trim().split('\n').slice(-2).join(' | ')}`);
      t.regex(out6, /3 packets transmitted, 3 packets received/);
      const out4 = await d1.docker(warm('-4', ip4));
      t.regex(out4, /3 packets transmitted, 3 packets received/);
      await d2.docker(['rm', '-f', 'target']);
    },
  );

test.serial(
  'IPv6-only (network.ipv4: false): three hosts with no IPv4 underlay address get three different IPv6 subnets, keep them across restarts, and their containers reach each other',
  async (t) => {
    const step = bounded(t, 180_000);
    const f = await fabric(t, {
      hosts: 3,
      network: V6ONLY,
      host: 'leaseTTL: 30s\nleaseRenewMargin: 10s\n',
      ipv4: false,
    });
    const hosts = f.lab.hosts as [LabHost, LabHost, LabHost];
    for (const h of hosts) {
      t.is(
        (await f.lab.ip(h.ns, ['-4', '-o', 'addr', 'show', 'dev', 'eth0'])).trim(),
        '',
        `${h.name}: no IPv4 address on eth0`,
      );
      t.is((await routes4(f.lab, h)).trim(), '', `${h.name}: no IPv4 route at all`);
    }
    step('leases and subnet.env');
    const leases: LabLease[] = [];
    for (const h of hosts) {
      const l = await mustLease(f.lab, h);
      leases.push(l);
      t.regex(l.key, V6ONLY_KEY, `${h.name}'s key has the zero IPv4 half`);
      t.is(
        l.value,
        `{"PublicIP":"0.0.0.0","PublicIPv6":"${ip6Of(h)}","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"${await macOf(f.lab, h, 'flannel-v6.1')}"}}`,
        `${h.name}'s lease as flanneld writes an IPv6-only one`,
      );
      t.is(
        f.lab.subnetText(h),
        `FLANNEL_IPV6_NETWORK=fd18::/48\nFLANNEL_IPV6_SUBNET=${gw6(v6Of(l))}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
        `${h.name}'s subnet.env has no IPv4 lines`,
      );
      t.not((await f.lab.tryExec(h.ns, 'ip', ['link', 'show', 'flannel.1'])).code, 0, 'no IPv4 vxlan device');
    }
    t.is(
      new Set(leases.map((l) => l.subnet6)).size,
      3,
      'three different IPv6 subnets (PublicIP 0.0.0.0 does not make them share one)',
    );
    const keysNow = async (): Promise<string[]> =>
      (await f.lab.etcdctl(['get', '--prefix', '--keys-only', `${P}/subnets/`]))
        .split('\n')
        .filter((k) => k !== '')
        .sort();
    t.deepEqual(await keysNow(), leases.map((l) => l.key).sort(), 'one key per host, nothing else');

    step('containers');
    await f.addContainers();
    t.deepEqual(await pingAll6(f), [], 'every container reaches every other over IPv6');

    step('restarting each weft in turn');
    for (const [i, h] of hosts.entries()) {
      await restart(f, h, f.specs[i] ?? '');
      t.is((await mustLease(f.lab, h)).key, leases[i]?.key ?? '?', `${h.name} kept its subnet across its restart`);
    }
    step('stopping all three, starting them in reverse order');
    for (const h of hosts) {
      await h.weft?.stop(10_000);
      t.is(h.weft?.child.exitCode, 0);
    }
    for (const [i, h] of [...hosts.entries()].reverse()) await f.lab.startWeft(h, f.specs[i] ?? '');
    for (const [i, h] of hosts.entries())
      t.is(
        (await mustLease(f.lab, h)).key,
        leases[i]?.key ?? '?',
        `${h.name} kept its subnet when the last one started first`,
      );
    t.deepEqual(await keysNow(), leases.map((l) => l.key).sort(), 'still one key per host');
    t.deepEqual(await pingAll6(f), [], 'every container reaches every other after the restarts');
    for (const h of hosts) t.deepEqual(errorLines(h), [], `${h.name} logged no error`);
  },
);

test.serial(
  'turning IPv6 on in a running IPv4 fleet (weft apply, then a rolling restart): every host keeps its IPv4 subnet, IPv4 traffic flows throughout, then every pair is reachable over IPv6',
  async (t) => {
    const step = bounded(t, 200_000);
    const f = await fabric(t, { hosts: 3, network: V4('vxlan'), host: TTL, ipv6: true });
    const hosts = f.lab.hosts as [LabHost, LabHost, LabHost];
    await f.addContainers();
    t.deepEqual(await pingAll(f), []);
    const before = await Promise.all(hosts.map((h) => mustLease(f.lab, h)));
    for (const l of before) t.is(l.subnet6, undefined, 'IPv4 only to start with');

    step('apply, under traffic');
    const cs = f.containers;
    const ring = [
      [0, 1],
      [1, 2],
      [2, 0],
    ] as const;
    const container = (i: number): Container => {
      const c = cs[i];
      if (!c) throw new Error(`no container ${i}`);
      return c;
    };
    const streams = ring.map(([a, b]) =>
      pingStream(container(a), container(b).ip, { intervalS: 0.05, maxSeconds: 160 }),
    );
    const streamsAt = Date.now();
    await sleep(1000);
    const out = await applySpec(f, 'ipv6-on', DUAL('vxlan'));
    t.log(`weft apply: ${out.trim().split('\n').join(' | ')}`);
    await sleep(2000);
    for (const h of hosts) t.is(h.weft?.child.exitCode, null, `${h.name} keeps running on the changed config`);

    step('rolling restart');
    for (const [i, h] of hosts.entries()) {
      f.specs[i] = f.lab.writeSpec(h, DUAL('vxlan'), { host: TTL });
      await restart(f, h, f.specs[i] ?? '');
      const l = await until(
        async () => {
          const x = await leaseOf(f.lab, h);
          return x?.subnet6 ? x : undefined;
        },
        10_000,
        100,
        `${h.name}'s lease to gain its IPv6 half`,
      );
      if (!l) throw new Error('no lease');
      t.is(l.subnet, before[i]?.subnet ?? '?', `${h.name} kept its IPv4 subnet`);
      t.regex(l.key, DUAL_KEY);
      await sleep(2000);
    }
    const ranMs = Date.now() - streamsAt;
    const results = await Promise.all(streams.map((s) => s.stop()));
    for (const [k, r] of results.entries()) {
      const [a, b] = ring[k] ?? [0, 0];
      const lost = r.sent - r.received;
      t.log(
        `IPv4 ping h${a + 1} -> h${b + 1} (every 50 ms through apply and ${hosts.length} restarts): ${r.received}/${r.sent} replies, ${lost} lost`,
      );
      // One every 50 ms for the whole apply and the restarts (busybox ping may lag a little on a loaded machine).
      t.true(r.sent >= Math.floor((0.7 * ranMs) / 50), `the ping ran throughout (${r.sent} sent in ${ranMs} ms)`);
      t.true(lost <= 3 * hosts.length, `at most 3 packets lost per restart (lost ${lost})`);
    }

    step('IPv6 between the containers');
    for (const h of hosts)
      await until(
        () => f.lab.subnetEnv(h).has('FLANNEL_IPV6_SUBNET'),
        10_000,
        100,
        `${h.name}'s subnet.env to carry FLANNEL_IPV6_SUBNET`,
      );
    for (const c of cs) c.ip6 = await f.lab.addContainerIPv6(c.host, c.ns);
    t.deepEqual(await pingAll6(f), [], 'every pair reachable over IPv6');
    t.deepEqual(await pingAll(f), [], 'and over IPv4');
    const after = await Promise.all(hosts.map((h) => mustLease(f.lab, h)));
    t.deepEqual(
      after.map((l) => l.subnet),
      before.map((l) => l.subnet),
      'every IPv4 subnet kept',
    );
    t.is(new Set(after.map((l) => l.subnet6)).size, 3, 'three different IPv6 subnets');
    for (const h of hosts) t.deepEqual(errorLines(h), [], `${h.name} logged no error`);
  },
);

test.serial(
  'a flanneld-format dual-stack peer written into etcd by hand is programmed on a dual-stack weft host (IPv4 and IPv6); an IPv4-only weft host programs its IPv4 half and ignores the IPv6 half without error',
  async (t) => {
    const step = bounded(t, 180_000);
    // The flanneld host's subnets lie inside the ranges (weft apply would otherwise call its lease
    // stranded): 198.18.240.0/24 (241 if h2 took 240) and fd18:0:0:f0::/64, written after h2
    // leased and before h1 starts, so no weft host takes them.
    const f = await fabric(t, { hosts: 3, network: V4('vxlan'), ipv6: true, start: 0 });
    const [h1, h2, h3] = f.lab.hosts as [LabHost, LabHost, LabHost];

    step('an IPv4-only weft host (h2)');
    await f.lab.startWeft(h2, f.specs[1] ?? '');
    const n = (await mustLease(f.lab, h2)).subnet === '198.18.240.0/24' ? 241 : 240;
    const S4 = `198.18.${n}.0/24`;
    const S6 = 'fd18:0:0:f0::/64';
    const MAC4 = '0e:aa:00:00:00:04';
    const MAC6 = '0e:aa:00:00:00:06';
    const KEY = `${P}/subnets/198.18.${n}.0-24&fd18:0:0:f0::-64`;

    step("h3 behaves exactly like a dual-stack flanneld: its datapath by hand, its lease in flanneld's format");
    await f.lab.exec(h3.ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    await f.lab.exec(h3.ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    await f.lab.ip(h3.ns, [
      'link',
      'add',
      'flannel.1',
      'address',
      MAC4,
      'type',
      'vxlan',
      'id',
      '1',
      'local',
      h3.ip,
      'dev',
      'eth0',
      'dstport',
      '8472',
      'nolearning',
    ]);
    await f.lab.ip(h3.ns, ['link', 'set', 'flannel.1', 'mtu', '1450', 'up']);
    await f.lab.ip(h3.ns, ['addr', 'add', `198.18.${n}.0/32`, 'dev', 'flannel.1']);
    // flanneld asks for 1450; the kernel gives a vxlan device over IPv6 at most 1500 - 70.
    await f.lab.ip(h3.ns, [
      'link',
      'add',
      'flannel-v6.1',
      'address',
      MAC6,
      'type',
      'vxlan',
      'id',
      '1',
      'local',
      ip6Of(h3),
      'dev',
      'eth0',
      'dstport',
      '8472',
      'nolearning',
    ]);
    await f.lab.ip(h3.ns, ['link', 'set', 'flannel-v6.1', 'mtu', '1430', 'up']);
    await f.lab.ip(h3.ns, ['addr', 'add', 'fd18:0:0:f0::/128', 'dev', 'flannel-v6.1', 'nodad']);
    writeFileSync(
      h3.subnetFile,
      `FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.${n}.1/24\nFLANNEL_IPV6_NETWORK=fd18::/48\nFLANNEL_IPV6_SUBNET=fd18:0:0:f0::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
    );
    const c3 = { ...(await f.lab.addContainer(h3)), host: h3 };
    /** flanneld on h3 programs a weft host from its lease (the v6 half only if there is one). */
    const flanneldProgram = async (l: LabLease): Promise<void> => {
      const v = JSON.parse(l.value) as {
        PublicIP: string;
        PublicIPv6: string | null;
        BackendData?: { VtepMAC: string };
        BackendV6Data?: { VtepMAC: string };
      };
      if (v.BackendData) {
        const g = addrOf(l.subnet);
        await f.lab.ip(h3.ns, [
          'neigh',
          'replace',
          g,
          'lladdr',
          v.BackendData.VtepMAC,
          'dev',
          'flannel.1',
          'nud',
          'permanent',
        ]);
        await f.lab.exec(h3.ns, 'bridge', [
          'fdb',
          'replace',
          v.BackendData.VtepMAC,
          'dev',
          'flannel.1',
          'dst',
          v.PublicIP,
          'self',
          'permanent',
        ]);
        await f.lab.ip(h3.ns, ['route', 'replace', l.subnet, 'via', g, 'dev', 'flannel.1', 'onlink']);
      }
      if (v.BackendV6Data && v.PublicIPv6 && l.subnet6) {
        const g = addrOf(l.subnet6);
        await f.lab.ip(h3.ns, [
          '-6',
          'neigh',
          'replace',
          g,
          'lladdr',
          v.BackendV6Data.VtepMAC,
          'dev',
          'flannel-v6.1',
          'nud',
          'permanent',
        ]);
        await f.lab.exec(h3.ns, 'bridge', [
          'fdb',
          'replace',
          v.BackendV6Data.VtepMAC,
          'dev',
          'flannel-v6.1',
          'dst',
          v.PublicIPv6,
          'self',
          'permanent',
        ]);
        await f.lab.ip(h3.ns, ['-6', 'route', 'replace', l.subnet6, 'via', g, 'dev', 'flannel-v6.1', 'onlink']);
      }
    };
    const granted = await f.lab.etcdctl(['lease', 'grant', '600']);
    const leaseID = /lease ([0-9a-f]+) granted/.exec(granted)?.[1] ?? '';
    if (leaseID === '') throw new Error(`etcdctl lease grant gave no lease: ${granted}`);
    const value = `{"PublicIP":"${h3.ip}","PublicIPv6":"${ip6Of(h3)}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${MAC4}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${MAC6}"}}`;
    await f.lab.etcdctl(['put', `--lease=${leaseID}`, KEY, value]);

    step('the IPv4-only weft host programs the IPv4 half');
    t.log(
      `h2 programmed the flanneld peer's IPv4 half in ${await timeUntil(() => hasVxlanPeer(f.lab, h2, 4, S4, MAC4, h3.ip), 5000)} ms`,
    );
    await flanneldProgram(await mustLease(f.lab, h2));
    await f.addContainers();
    const c2 = f.containers.find((c) => c.host === h2);
    if (!c2) throw new Error('no container on h2');
    t.true(
      await until(() => f.lab.ping(c2.ns, c3.ip), 5000).catch(() => false),
      "h2's container reaches the flanneld host's over IPv4",
    );
    t.true(await until(() => f.lab.ping(c3.ns, c2.ip), 5000).catch(() => false), 'and back');
    await sleep(1000);
    t.not(
      (await f.lab.tryExec(h2.ns, 'ip', ['link', 'show', 'flannel-v6.1'])).code,
      0,
      'no IPv6 device on the IPv4-only host',
    );
    t.false((await routes6(f.lab, h2)).includes('fd18:'), 'no IPv6 overlay route on the IPv4-only host');
    t.is(h2.weft?.child.exitCode, null, 'it keeps running');
    t.deepEqual(errorLines(h2), [], 'and logs no error');

    step('the network turns dual-stack; a dual-stack weft host (h1) joins');
    t.log(`weft apply: ${(await applySpec(f, 'dual', DUAL('vxlan'))).trim().split('\n').join(' | ')}`);
    f.specs[0] = f.lab.writeSpec(h1, DUAL('vxlan'));
    await f.lab.startWeft(h1, f.specs[0]);
    const l1 = await mustLease(f.lab, h1);
    t.regex(l1.key, DUAL_KEY);
    t.log(
      `h1 programmed both halves of the flanneld peer in ${await timeUntil(async () => (await hasVxlanPeer(f.lab, h1, 4, S4, MAC4, h3.ip)) && (await hasVxlanPeer(f.lab, h1, 6, S6, MAC6, ip6Of(h3))), 5000)} ms`,
    );
    await flanneldProgram(l1);
    await f.addContainers();
    const c1 = f.containers.find((c) => c.host === h1);
    if (!c1?.ip6 || !c3.ip6) throw new Error('containers without IPv6 addresses');
    for (const [from, to, what] of [
      [c1.ns, c3.ip, 'IPv4'],
      [c1.ns, c3.ip6, 'IPv6'],
      [c3.ns, c1.ip, 'IPv4 back'],
      [c3.ns, c1.ip6, 'IPv6 back'],
    ] as const) {
      t.true(
        await until(() => f.lab.ping(from, to), 5000).catch(() => false),
        `h1's container <-> the flanneld host's: ${what}`,
      );
    }

    step('the IPv4-only host after the switch');
    await sleep(1000);
    t.is(h2.weft?.child.exitCode, null, 'h2 keeps running while the network is dual-stack');
    t.deepEqual(errorLines(h2), [], 'h2 logged no error');
    t.true(
      await until(() => f.lab.ping(c2.ns, c3.ip), 5000).catch(() => false),
      "h2's container still reaches the flanneld host's over IPv4",
    );
    t.deepEqual(errorLines(h1), [], 'h1 logged no error');
  },
);
