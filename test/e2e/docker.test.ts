// The mission end to end: real dockerd on two namespaced hosts, started with exactly the
// options weft emitted, FORWARD policy DROP as Docker sets it; a busybox container on one host
// pings a container on the other across the overlay.
import test from 'ava';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { fabric } from '../helpers/fabric.js';
import { dockerOptions, importBusybox, startDockerd } from '../helpers/docker.js';
import { bounded } from '../helpers/bound.js';

for (const backend of ['vxlan', 'host-gw', 'wireguard'] as const) {
  test.serial(`${backend}: containers under real dockerd on two hosts reach each other through weft`, async (t) => {
    bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: `cidr: 198.18.0.0/16\nbackend:\n  type: ${backend}`, start: 0 });
    const [h1, h2] = f.lab.hosts;
    if (!h1 || !h2) throw new Error('no hosts');
    for (const [i, h] of [h1, h2].entries()) {
      const spec = f.lab.writeSpec(h, `cidr: 198.18.0.0/16\nbackend:\n  type: ${backend}`, {});
      appendFileSync(spec, `outputs:\n  docker:\n    file: ${join(h.dir, 'docker.env')}\n`);
      f.specs[i] = spec;
      // Docker's own FORWARD policy on a real host (it sets DROP when it manages iptables).
      await f.lab.exec(h.ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
      // wireguard: each host its own /run/wireguard (userspace WireGuard's sockets), as separate VMs have.
      await f.lab.startWeft(h, spec, {
        ownRun: backend === 'wireguard',
        env: { WIREGUARD_KEY_FILE: join(h.dir, 'flanneld-wgkey') },
      });
    }
    const ds = [];
    for (const h of [h1, h2]) {
      const opts = dockerOptions(join(h.dir, 'docker.env'), 'DOCKER_NETWORK_OPTIONS');
      t.log(`${h.name}: dockerd ${opts.join(' ')}`);
      const d = await startDockerd(f.lab, h, opts);
      t.teardown(() => d.proc.stop(10_000));
      await importBusybox(f.lab, d);
      ds.push(d);
      const env = f.lab.subnetEnv(h);
      const docker0 = await f.lab.ip(h.ns, ['addr', 'show', 'docker0']);
      t.true(
        docker0.includes(`inet ${env.get('FLANNEL_SUBNET') ?? '?'} `),
        `docker0 on ${h.name} holds the leased gateway`,
      );
    }
    const [d1, d2] = ds;
    if (!d1 || !d2) throw new Error('no dockerd');
    await d2.docker(['run', '-d', '--name', 'target', 'weft-busybox', 'sleep', '120']);
    const ip = (await d2.docker(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'target'])).trim();
    t.regex(ip, /^198\.18\./);
    // docker0 takes the MTU of its ports once a container is attached; the container gets --mtu.
    const mtu = f.lab.subnetEnv(h2).get('FLANNEL_MTU') ?? '?';
    t.regex(
      await d2.docker(['exec', 'target', 'ip', 'link', 'show', 'eth0']),
      new RegExp(`mtu ${mtu} `),
      'the container has the overlay MTU',
    );
    t.regex(
      await f.lab.ip(h2.ns, ['link', 'show', 'docker0']),
      new RegExp(`mtu ${mtu} `),
      'docker0 has the overlay MTU',
    );
    const out = await d1.docker(['run', '--rm', 'weft-busybox', 'ping', '-c', '3', '-W', '2', ip]);
    t.log(out.trim().split('\n').slice(-2).join(' | '));
    t.regex(out, /3 packets transmitted, 3 packets received/);
    await d2.docker(['rm', '-f', 'target']);
  });
}
