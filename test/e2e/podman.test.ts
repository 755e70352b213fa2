// Podman as a weft host runs it: real podman and netavark on two namespaced hosts, reading the
// network definition weft wrote (outputs.podman). A container on one host reaches a container
// on the other across the overlay, keeps the leased subnet and MTU, and the peer sees its real
// address (weft keeps netavark's masquerade off fabric traffic).
import test from 'ava';
import { join } from 'node:path';
import { fabric, mustLease } from '../helpers/fabric.js';
import { RUN, importBusyboxPodman, podmanOn } from '../helpers/podman.js';
import { until } from '../helpers/procs.js';
import { bounded } from '../helpers/bound.js';

/**
 * The remote IPv4 address of the first established TCP connection in /proc/net/tcp and tcp6
 * output (busybox nc listens on ::, so an IPv4 peer shows as ::ffff:a.b.c.d in tcp6; the last
 * 32-bit word is the IPv4 address either way, in the kernel's byte order).
 */
function peerOf(procNet: string): string | undefined {
  for (const line of procNet.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[3] !== '01') continue; // ESTABLISHED
    const hex = ((f[2] ?? '').split(':')[0] ?? '').slice(-8);
    return [3, 2, 1, 0].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).join('.');
  }
  return undefined;
}

test.serial(
  'vxlan: containers under real Podman on two hosts reach each other through weft, with their own addresses',
  async (t) => {
    bounded(t, 150_000);
    const NET = 'cidr: 198.18.0.0/16\nbackend:\n  type: vxlan';
    const f = await fabric(t, { hosts: 2, network: NET, start: 0 });
    const hosts = f.lab.hosts;
    const pods = hosts.map((h) => podmanOn(f.lab, h));
    for (const [i, h] of hosts.entries()) {
      const spec = f.lab.writeSpec(h, NET, {
        outputs: `outputs:\n  podman: ${join(pods[i]?.networkDir ?? '', 'weft.json')}\n`,
      });
      await f.lab.startWeft(h, spec);
    }
    const [h1, h2] = hosts;
    const [p1, p2] = pods;
    if (!h1 || !h2 || !p1 || !p2) throw new Error('no hosts');
    for (const p of [p1, p2]) await importBusyboxPodman(f.lab, p);

    // Podman reads weft's network definition as written.
    const net = JSON.parse(await p2.podman(['network', 'inspect', 'weft'])) as {
      subnets: { subnet: string; gateway: string }[];
      options: { mtu: string };
    }[];
    const lease2 = (await mustLease(f.lab, h2)).subnet;
    const env2 = f.lab.subnetEnv(h2);
    t.deepEqual(net[0]?.subnets, [{ subnet: lease2, gateway: (env2.get('FLANNEL_SUBNET') ?? '').split('/')[0] ?? '' }]);
    t.is(net[0]?.options.mtu, env2.get('FLANNEL_MTU') ?? '?');

    await p2.podman(['run', '-d', ...RUN, '--name', 'target', 'weft-busybox', 'sleep', '120']);
    t.teardown(async () => {
      await p2.podman(['rm', '-f', 'target']).catch(() => undefined);
    });
    const addr = await p2.podman(['exec', 'target', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
    const ip = /inet (198\.18\.\d+\.\d+)\//.exec(addr)?.[1] ?? '';
    t.true(
      ip.startsWith(lease2.split('.').slice(0, 3).join('.')),
      `the container's address ${ip} is in the leased ${lease2}`,
    );
    t.regex(
      await p2.podman(['exec', 'target', 'ip', 'link', 'show', 'eth0']),
      new RegExp(`mtu ${env2.get('FLANNEL_MTU') ?? '?'} `),
      'the overlay MTU',
    );

    const ping = await p1.podman(['run', '--rm', ...RUN, 'weft-busybox', 'ping', '-c', '3', '-W', '2', ip]);
    t.log(ping.trim().split('\n').slice(-2).join(' | '));
    t.regex(ping, /3 packets transmitted, 3 packets received/);

    // The peer sees the client container's own address, not its host's (netavark would NAT it).
    await p2.podman(['exec', '-d', 'target', 'sh', '-c', 'sleep 30 | nc -l -p 5000']);
    const client = p1.podman([
      'run',
      '--rm',
      ...RUN,
      '--name',
      'client',
      'weft-busybox',
      'sh',
      '-c',
      `ip -4 -o addr show eth0; sleep 6 | nc ${ip} 5000`,
    ]);
    const seen = await until(
      async () => peerOf(await p2.podman(['exec', 'target', 'cat', '/proc/net/tcp', '/proc/net/tcp6'])),
      15_000,
      200,
    );
    const clientOut = await client;
    const clientIP = /inet (198\.18\.\d+\.\d+)\//.exec(clientOut)?.[1];
    t.log(`client container ${clientIP ?? '?'} -> target ${ip}: the target sees ${seen ?? '?'}`);
    t.truthy(clientIP);
    t.is(seen, clientIP, 'no masquerade inside the fabric');
  },
);
