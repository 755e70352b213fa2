/**
 * The operator guides, executed: docs/quickstart.md and docs/migration.md, block by block and
 * command by command, on lab hosts, as an operator on a Debian 12 VM with systemd would type
 * them. A block runs where its `<!-- run: host -->` marker says (test/helpers/guide.ts); a
 * command must exit as the guide says (0, or the `(exit N)` of its comment) and print what its
 * comment quotes. A failure names the guide's file:line, the command as run, its output and
 * the block.
 *
 * What the lab provides in place of the real thing (faithful stand-ins, nothing of this
 * machine changed):
 * - Each guide host is a lab host (network namespace) with a private mount namespace whose
 *   /etc, /usr, /var are overlays of this machine's and whose /run and /root are empty
 *   (test/helpers/guide-host.ts): `dpkg -i`, unit files, /etc/default/etcd land in the host's
 *   own layer. Each host has its own /etc/machine-id, as a separate VM has.
 * - No systemd runs here: `systemctl` is test/helpers/systemctl-shim.ts, which starts, stops,
 *   enables and masks services from their real unit files (ExecStart=, Environment=,
 *   Type=notify with a real NOTIFY_SOCKET, ...), so `systemctl restart etcd` runs Debian's
 *   etcd.service, `enable --now weft` the packaged weft.service, `restart docker` Debian's
 *   docker.service with the guide's drop-in.
 * - No package mirror: `apt`/`apt-get install PKG` checks the machine already has PKG and
 *   installs nothing; `apt install ./x.deb` is `dpkg -i` into the host's own layer. The package
 *   is built by the test (npm run build:deb's script, --fast: gzip instead of xz).
 * - Docker: /etc/docker/daemon.json on each host says `storage-driver: vfs` (overlay2 cannot
 *   stack on the overlay the host's /var is) and `iptables: false` (as every lab dockerd; no
 *   machine-wide module loading); the `busybox` image is imported from the static busybox
 *   binary (there is no registry), as `docker pull` would have fetched it.
 * - Addresses: the guides' 10.244.0.0/16 runs as 198.18.0.0/16, the migration's etcd
 *   192.0.2.10 is the lab's 192.0.2.100, and the quick start's vm1/vm2 hold 192.0.2.11/.12.
 * - Migration: flanneld itself is not here. The fleet is what flanneld leaves: its config JSON
 *   as an operator stores it (with Backend fields weft's spec cannot express), each host's
 *   lease key and value byte for byte as flanneld writes them (on an etcd lease of 24 h), its
 *   datapath (flannel.1, neighbours, fdb entries, routes) and subnet.env; the migrated host runs
 *   a `flanneld` stand-in process under a hand-written unit in /etc/systemd/system.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { bounded } from '../helpers/bound.js';
import { REPO } from '../helpers/cli.js';
import { buildDeb } from '../helpers/exe.js';
import { type GuideBlock, guideBlocks } from '../helpers/guide.js';
import { type CommandResult, GuideHost, failureOf } from '../helpers/guide-host.js';
import { Lab, type LabHost } from '../helpers/lab.js';
import { run } from '../helpers/procs.js';

const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const SHIM = join(REPO, 'dist/test/helpers/systemctl-shim.js');
const APT = `#!/bin/sh
# The lab's stand-in for apt/apt-get (test/e2e/guides.test.ts): no mirror, and this machine
# must not change. A package name: there already, or an error. ./x.deb: dpkg -i into this
# lab host's own /usr, /etc and /var.
[ "$1" = install ] || { echo "apt stand-in: only install" >&2; exit 100; }
shift
for a; do
  case "$a" in
    -*) ;;
    *.deb) dpkg -i "$a" || exit 100 ;;
    *) dpkg-query -W -f='\${Status}' "$a" 2>/dev/null | grep -q 'install ok installed' || { echo "E: the lab machine lacks $a" >&2; exit 100; }
       echo "$a is already the newest version." ;;
  esac
done
`;

let shared: Promise<{ lab: Lab; deb: string; image: string }> | undefined;
/** One lab (five hosts) and one package for both guides. */
function setup(): Promise<{ lab: Lab; deb: string; image: string }> {
  shared ??= (async () => {
    const lab = await Lab.create({ hosts: 5 });
    try {
      const deb = await buildDeb(version, join(lab.dir, 'deb'), { fast: true });
      // The busybox image, from the static binary: every applet, and /tmp.
      const root = join(lab.dir, 'busybox-root');
      mkdirSync(join(root, 'bin'), { recursive: true });
      mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
      copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
      for (const a of (await run('/bin/busybox', ['--list'])).stdout.split('\n').filter((x) => x && x !== 'busybox'))
        symlinkSync('busybox', join(root, 'bin', a));
      const image = join(lab.dir, 'busybox.tar');
      const r = await run('tar', ['-C', root, '-cf', image, '.']);
      if (r.code !== 0) throw new Error(r.out);
      return { lab, deb, image };
    } catch (e) {
      await lab.destroy();
      throw e;
    }
  })();
  return shared;
}
// (A setup that failed destroyed its lab itself.)
test.after.always(async () => {
  const s = await shared?.catch(() => undefined);
  await s?.lab.destroy();
});

/** A guide host with the lab's stand-ins in place (see the file comment). */
async function guideHost(lab: Lab, h: LabHost, name: string): Promise<GuideHost> {
  const g = await GuideHost.open(lab, h, name);
  g.write(
    '/usr/local/sbin/systemctl',
    `#!/bin/sh\n# The lab's stand-in for systemctl: test/helpers/systemctl-shim.ts\nexec ${process.execPath} ${SHIM} "$@"\n`,
    0o755,
  );
  g.write('/usr/local/sbin/apt', APT, 0o755);
  g.write('/usr/local/sbin/apt-get', APT, 0o755);
  g.write('/etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  return g;
}

interface Ran {
  block: GuideBlock;
  host: string;
  results: CommandResult[];
}

/**
 * Run a guide: every block in order on the hosts its marker names. `rewrite` maps a command
 * to what the lab runs; `before` prepares a host for a block (what the operator would have).
 */
async function follow(
  t: ExecutionContext,
  step: (s: string) => void,
  file: string,
  hosts: Record<string, GuideHost>,
  o: {
    rewrite: (text: string) => string;
    before?: (block: GuideBlock, g: GuideHost, ran: readonly Ran[]) => Promise<void>;
  },
): Promise<Ran[]> {
  const ran: Ran[] = [];
  const transcript: string[] = [];
  t.teardown(() => {
    t.log(`${file}, as run (first lines of each output):\n${transcript.join('\n')}`);
  });
  const began = Date.now();
  for (const block of guideBlocks(readFileSync(join(REPO, file), 'utf8'), file)) {
    const m = block.marker;
    if (m.kind === 'skip') {
      t.log(`${block.where}: skipped (${m.why})`);
      continue;
    }
    for (const name of m.hosts) {
      const g = hosts[name];
      if (!g) throw new Error(`${block.where}: no lab host for "${name}"`);
      step(`${block.where} on ${name}`);
      if (m.kind === 'file') {
        g.write(m.path, `${o.rewrite(block.text)}\n`);
        continue;
      }
      await o.before?.(block, g, ran);
      const results = await g.run(block.commands, o.rewrite, 100_000);
      ran.push({ block, host: name, results });
      transcript.push(
        ...results.map(
          (r) =>
            `[${name}] $ ${r.text.split('\n')[0] ?? ''}  -> exit ${String(r.code)}${r.out ? `\n    ${r.out.split('\n').slice(0, 4).join('\n    ')}` : ''}`,
        ),
      );
      const failure = failureOf(block, name, results);
      if (failure) throw new Error(`the guide failed:\n${failure}`);
    }
  }
  t.log(
    `${file}: ${ran.reduce((n, r) => n + r.results.length, 0)} commands in ${ran.length} block runs passed, ${((Date.now() - began) / 1000).toFixed(1)} s`,
  );
  return ran;
}

const out = (ran: readonly Ran[], host: string, command: RegExp): string =>
  ran
    .filter((r) => r.host === host)
    .flatMap((r) => r.results)
    .find((r) => command.test(r.text))?.out ?? '';

test.serial('docs/quickstart.md, every block on two lab VMs, ends with a page served across the overlay', async (t) => {
  const step = bounded(t, 150_000);
  step('the lab and the package');
  const { lab, deb, image } = await setup();
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const vm1 = await guideHost(lab, h1, 'vm1');
  const vm2 = await guideHost(lab, h2, 'vm2');
  for (const [g, ip] of [
    [vm1, '192.0.2.11'],
    [vm2, '192.0.2.12'],
  ] as const) {
    await lab.ip(g.host.ns, ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    g.write(`/root/${basename(deb)}`, readFileSync(deb));
    g.write('/etc/docker/daemon.json', '{"storage-driver": "vfs", "iptables": false}\n');
    // Containers first, then Docker and containerd, so nothing outlives the lab.
    lab.onDestroy(async () => {
      await g.run(
        [{ text: 'docker ps -aq | xargs -r docker rm -f; systemctl stop docker containerd weft', line: 0, exit: 0 }],
        undefined,
        30_000,
      );
    });
  }
  const imported = new Set<GuideHost>();
  let webIP = '';
  const ran = await follow(
    t,
    step,
    'docs/quickstart.md',
    { vm1, vm2 },
    {
      rewrite: (text) => text.replace(/10\.244\./g, '198.18.').replace(/198\.18\.7\.2\b/g, webIP || '198.18.7.2'),
      before: async (block, g, sofar) => {
        if (block.text.includes('docker run') && !imported.has(g)) {
          await g.sh(`docker import ${image} busybox >/dev/null`);
          imported.add(g);
        }
        if (block.text.includes('wget')) webIP = out(sofar, 'vm2', /docker inspect/).trim();
      },
    },
  );
  t.regex(out(ran, 'vm1', /readyz/), /^ready/, '/readyz answered 200 "ready"');
  // The checks of step 5 say what to look for; hold the output to it.
  const subnet = (vm: string): string =>
    /^FLANNEL_SUBNET=(198\.18\.\d+)\.1\/24$/m.exec(out(ran, vm, /subnet\.env/))?.[1] ?? 'none';
  t.is(
    out(ran, 'vm1', /^weft leases/)
      .split('\n')
      .filter((l) => /^198\.18\.\d+\.0\/24 /.test(l)).length,
    2,
    "weft leases: both VMs' leases",
  );
  for (const [vm, other] of [
    ['vm1', 'vm2'],
    ['vm2', 'vm1'],
  ] as const) {
    t.regex(
      out(ran, vm, /addr show docker0/),
      new RegExp(`inet ${subnet(vm).replace(/\./g, '\\.')}\\.1/24 `),
      `${vm}: docker0 holds FLANNEL_SUBNET`,
    );
    t.regex(
      out(ran, vm, /grep flannel\.1/),
      new RegExp(`^${subnet(other).replace(/\./g, '\\.')}\\.0/24 via .* dev flannel\\.1`),
      `${vm}: the other VM's subnet via flannel.1`,
    );
  }
  t.regex(out(ran, 'vm1', /wget/), /hello from vm2/, 'a container on vm1 fetched the page of a container on vm2');
  t.regex(webIP, /^198\.18\.\d+\.2$/);
});

/** flanneld's config as an operator stores it (spacing, key order and all), with Backend fields weft's spec cannot express. */
const CONFIG =
  '{"Network": "198.18.0.0/16", "SubnetLen": 24, "Backend": {"Type": "vxlan", "VNI": 1, "MTU": 1450, "GBP": false, "Learning": false}}';
const FLANNELD = `#!/bin/sh
# A stand-in for flanneld v0.25.7 (flanneld itself is not in the lab; test/e2e/guides.test.ts):
# the datapath, lease and subnet.env it keeps were written by the test, as flanneld writes them.
case "$1" in --version) echo v0.25.7; exit 0 ;; esac
systemd-notify --ready
trap 'exit 0' TERM INT
while :; do sleep 1 & wait $!; done
`;
const FLANNELD_UNIT = `[Unit]
Description=flannel (written by hand, as most flanneld installs are)
After=network-online.target
Before=docker.service

[Service]
Type=notify
NotifyAccess=all
ExecStart=/usr/local/bin/flanneld --etcd-endpoints=http://192.0.2.100:2379 --iface=eth0 --ip-masq
Restart=always

[Install]
WantedBy=multi-user.target
`;

test.serial(
  'docs/migration.md on one host of a flanneld-format fleet: same subnet, config bytes unchanged, one agent, traffic to the flanneld hosts',
  async (t) => {
    const step = bounded(t, 120_000);
    step('the lab and the package');
    const { lab, deb } = await setup();
    const fleet = lab.hosts.slice(2, 5) as [LabHost, LabHost, LabHost];
    const [h3] = fleet;
    step('a flanneld-format fleet');
    const P = '/coreos.com/network';
    await lab.etcdctl(['put', `${P}/config`, CONFIG]);
    const hosts = fleet.map((h, i) => ({ h, n: 33 + 11 * i, mac: `0e:f1:00:00:00:0${String(i + 3)}` }));
    for (const x of hosts) {
      const leaseID = /lease ([0-9a-f]+) granted/.exec(await lab.etcdctl(['lease', 'grant', '86400']))?.[1] ?? '';
      await lab.etcdctl([
        'put',
        `--lease=${leaseID}`,
        `${P}/subnets/198.18.${String(x.n)}.0-24`,
        `{"PublicIP":"${x.h.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${x.mac}"}}`,
      ]);
      // flanneld's datapath (flannel-compat.md §3): the device, its /32, and per peer a neighbour, an fdb entry and an onlink route.
      const ns = x.h.ns;
      await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      await lab.ip(ns, [
        'link',
        'add',
        'flannel.1',
        'address',
        x.mac,
        'type',
        'vxlan',
        'id',
        '1',
        'local',
        x.h.ip,
        'dev',
        'eth0',
        'dstport',
        '8472',
        'nolearning',
      ]);
      await lab.ip(ns, ['link', 'set', 'flannel.1', 'mtu', '1450', 'up']);
      await lab.ip(ns, ['addr', 'add', `198.18.${String(x.n)}.0/32`, 'dev', 'flannel.1']);
      for (const p of hosts.filter((y) => y !== x)) {
        await lab.ip(ns, [
          'neigh',
          'replace',
          `198.18.${String(p.n)}.0`,
          'lladdr',
          p.mac,
          'dev',
          'flannel.1',
          'nud',
          'permanent',
        ]);
        await lab.exec(ns, 'bridge', ['fdb', 'replace', p.mac, 'dev', 'flannel.1', 'dst', p.h.ip, 'self', 'permanent']);
        await lab.ip(ns, [
          'route',
          'replace',
          `198.18.${String(p.n)}.0/24`,
          'via',
          `198.18.${String(p.n)}.0`,
          'dev',
          'flannel.1',
          'onlink',
        ]);
      }
      writeFileSync(
        x.h.subnetFile,
        `FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.${String(x.n)}.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n`,
      );
    }
    const c = await Promise.all(fleet.map((h) => lab.addContainer(h)));
    const [c3, c4, c5] = c as [{ ns: string; ip: string }, { ns: string; ip: string }, { ns: string; ip: string }];
    t.true(await lab.ping(c4.ns, c3.ip), 'the flanneld fleet carries traffic before the migration');

    step('the host to migrate: flanneld running, weft installed and its spec written');
    const host = await guideHost(lab, h3, 'host');
    host.write('/run/flannel/subnet.env', readFileSync(h3.subnetFile));
    host.write('/usr/local/bin/flanneld', FLANNELD, 0o755);
    host.write('/etc/systemd/system/flanneld.service', FLANNELD_UNIT);
    host.write(`/root/${basename(deb)}`, readFileSync(deb));
    await host.sh(`systemctl enable --now flanneld && apt install ./${basename(deb)} && rm ./${basename(deb)}`);
    // Step 2 of the guide, from the stand-in's flags: --etcd-endpoints, --iface, --ip-masq.
    host.write(
      '/etc/weft/network.yaml',
      'etcd:\n  endpoints: [http://192.0.2.100:2379]\nnetwork:\n  cidr: 198.18.0.0/16\n  backend:\n    type: vxlan\nhost:\n  interface: eth0\n  ipMasq: true\n',
    );
    const macBefore = await lab.ip(h3.ns, ['-br', 'link', 'show', 'flannel.1']);

    const ran = await follow(
      t,
      step,
      'docs/migration.md',
      { host },
      { rewrite: (text) => text.replace(/192\.0\.2\.10:2379/g, '192.0.2.100:2379') },
    );

    step('what the guide promises');
    t.regex(out(ran, 'host', /^weft status/), /leased 198\.18\.33\.0\/24/, 'weft status: the subnet flanneld had');
    t.regex(
      out(ran, 'host', /^weft apply --dry-run/),
      /^would change: \/coreos\.com\/network\/config\n.*Backend\.MTU: 1450/m,
      'the dry run names the field the spec cannot express, as the guide says',
    );
    const table = out(ran, 'host', /^weft leases/);
    for (const x of hosts)
      t.regex(
        table,
        new RegExp(`^198\\.18\\.${String(x.n)}\\.0/24 .*\\(flanneld or unowned\\)$`, 'm'),
        'weft leases, before weft ran: every flanneld lease in the table',
      );
    t.notRegex(table, /STRANDED|QUARANTINED/);
    const leases = await lab.etcdctl(['get', '--prefix', `${P}/subnets/`]);
    t.deepEqual(
      leases.split('\n').filter((l) => l.startsWith(`${P}/subnets/`)),
      hosts.map((x) => `${P}/subnets/198.18.${String(x.n)}.0-24`),
      'no new lease: the host kept its subnet',
    );
    t.is(
      (await lab.etcdctl(['get', '--print-value-only', `${P}/subnets/198.18.33.0-24`])).trim(),
      `{"PublicIP":"${h3.ip}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:f1:00:00:00:03"}}`,
      'the lease value, byte for byte as flanneld wrote it',
    );
    t.is(
      await lab.etcdctl(['get', '--print-value-only', `${P}/config`]),
      `${CONFIG}\n`,
      'the stored config, byte for byte (MTU, GBP, Learning and its spacing kept)',
    );
    t.is(
      await lab.ip(h3.ns, ['-br', 'link', 'show', 'flannel.1']),
      macBefore,
      "flannel.1 kept, with its MAC: the flanneld hosts' fdb entries stay right",
    );
    t.regex(host.read('/run/flannel/subnet.env'), /^FLANNEL_SUBNET=198\.18\.33\.1\/24$/m);
    for (const [from, to, what] of [
      [c3, c4, 'weft host -> flanneld host 4'],
      [c3, c5, 'weft host -> flanneld host 5'],
      [c5, c3, 'flanneld host 5 -> weft host'],
    ] as const) {
      t.true(await lab.ping(from.ns, to.ip, { count: 2, waitS: 2 }), what);
    }
    const pids = (await run('ip', ['netns', 'pids', h3.ns])).stdout.split('\n').filter(Boolean);
    const comms = pids.map((p) => {
      try {
        return readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      } catch {
        return '';
      }
    });
    t.deepEqual(
      comms.filter((x) => x === 'weft' || x === 'flanneld'),
      ['weft'],
      'one agent on the host: weft, no flanneld',
    );
  },
);
