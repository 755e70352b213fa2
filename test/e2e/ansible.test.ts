// The Ansible role for real: ansible-playbook on a controller namespace drives three namespaced
// hosts over SSH (a real sshd in each), with a real etcd on the same underlay. site.yml rolls
// weft out; the fleet converges (leases, overlay ping); a second run changes nothing; a change
// that validates but never becomes ready stops after the first batch; decommission.yml
// releases a host's lease and removes its datapath.
//
// What this does NOT prove: the hosts share this machine's filesystem, so every path is a
// per-host role variable (weft_*_dir, weft_bin, ...) and the role installs the standalone
// executable (weft_install: executable; dpkg is machine-wide, so three lab hosts cannot each
// have the package: test/e2e/deb.test.ts covers it); and no systemd runs here, so the role runs
// in `weft_service: process` mode (weft started detached by the role, with a pid file) instead
// of its systemd tasks. The systemd unit itself is checked by test/integration/units.test.ts.
//
// Hermetic: the controller and every sshd run as the lab's own root account (Lab.labAccount:
// home inside the lab directory, shell /bin/sh), with a clean environment and the lab's ssh
// config (-F), so nothing reads this machine's ~/.bashrc, ~/.ssh or ~/.pyenv.
import test, { type ExecutionContext } from 'ava';
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';
import { leaseOf, pingAll } from '../helpers/fabric.js';
import { Lab, type LabHost } from '../helpers/lab.js';
import { bounded } from '../helpers/bound.js';
import { ensureExe } from '../helpers/exe.js';
import { run, until } from '../helpers/procs.js';

const CTL_IP = '192.0.2.200';

async function sshd(lab: Lab, h: LabHost, keys: string): Promise<void> {
  const cfg = join(h.dir, 'sshd_config');
  writeFileSync(
    cfg,
    [
      `ListenAddress ${h.ip}`,
      `HostKey ${join(keys, 'host_key')}`,
      `PidFile ${join(h.dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(keys, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp internal-sftp',
      'PermitUserRC no',
      'PermitUserEnvironment no',
      'PrintMotd no',
      'PrintLastLog no',
      '',
    ].join('\n'),
  );
  lab.spawnIn(h.ns, '/usr/sbin/sshd', ['-D', '-e', '-f', cfg], lab.labAccount().env, { asLabAccount: true });
  const probe = `require('net').connect(22, ${JSON.stringify(h.ip)}).on('connect', () => process.exit(0)).on('error', () => process.exit(1))`;
  await until(
    async () => (await lab.tryExec(h.ns, process.execPath, ['-e', probe])).code === 0,
    10_000,
    100,
    `sshd on ${h.name} accepting connections`,
  );
}

interface Fleet {
  lab: Lab;
  ctl: string;
  dir: string;
  inventory: string;
  exe: string;
  log: (line: string) => void;
}

function hostVars(lab: Lab, h: LabHost, exe: string, extra: Record<string, unknown>): Record<string, unknown> {
  const d = h.dir;
  return {
    ansible_host: h.ip,
    ansible_user: 'root',
    ansible_python_interpreter: '/usr/bin/python3',
    weft_network: '198.18.0.0/16',
    weft_backend: 'vxlan',
    weft_interface: 'eth0',
    weft_etcd_endpoints: [lab.etcdURL],
    weft_listen: '127.0.0.1:9473',
    weft_docker: true,
    weft_service: 'process',
    weft_environment: { WEFT_HOST_ID: `${lab.prefix}-${h.name}` },
    weft_install: 'executable',
    weft_executable: exe,
    weft_units_dir: join(REPO, 'units'),
    weft_deb_cache_dir: join(d, 'cache'),
    weft_bin: join(d, 'bin', 'weft'),
    weft_config_dir: join(d, 'etc'),
    weft_subnet_file: h.subnetFile,
    weft_systemd_dir: join(d, 'systemd'),
    weft_docker_opts_file: join(d, 'docker.env'),
    weft_pid_file: join(d, 'weft.pid'),
    weft_log_file: join(d, 'weft.log'),
    weft_ready_retries: 30,
    ...extra,
  };
}

function writeInventory(f: Fleet, extra: Record<string, unknown> = {}): void {
  const hosts = Object.fromEntries(f.lab.hosts.map((h) => [h.name, hostVars(f.lab, h, f.exe, extra)]));
  writeFileSync(f.inventory, JSON.stringify({ weft: { hosts } }, null, 2));
}

/** One playbook run must finish within this (a hang, not slowness): each took 8-25 s when last measured alone, and the first run over 75 s once with e2e lanes and four other builds sharing the 2 cores. */
const PLAYBOOK_MS = 110_000;

async function playbook(
  f: Fleet,
  book: string,
  args: string[] = [],
): Promise<{ code: number | null; out: string; recap: Map<string, Record<string, number>> }> {
  // Only what Ansible needs; nothing of the test runner's environment (PYENV_*, PYTHONPATH, ...).
  const env = {
    ANSIBLE_CONFIG: join(f.dir, 'ansible.cfg'),
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORCE_COLOR: '0',
    ANSIBLE_LOCAL_TEMP: join(f.dir, 'tmp-local'),
  };
  const started = Date.now();
  const r = await f.lab.runAsLabAccount(
    f.ctl,
    'ansible-playbook',
    ['-i', f.inventory, join(REPO, 'examples/ansible', book), ...args],
    { env, timeoutMs: PLAYBOOK_MS },
  );
  if (r.timedOut) {
    const tasks = [...r.out.matchAll(/^(TASK|PLAY|RUNNING HANDLER) \[(.*)\]/gm)];
    const last = tasks.at(-1);
    throw new Error(
      `ansible-playbook ${book} ${args.join(' ')} did not finish within ${PLAYBOOK_MS / 1000} s; last ${last ? `${last[1] ?? ''} [${last[2] ?? ''}]` : 'task: none started'}. Last lines:\n${r.out.trimEnd().split('\n').slice(-25).join('\n')}`,
    );
  }
  f.log(`ansible-playbook ${book} ${args.join(' ')}: ${Date.now() - started} ms, exit ${String(r.code)}`);
  const recap = new Map<string, Record<string, number>>();
  for (const m of r.stdout.matchAll(/^(\S+)\s+:\s+(.*)$/gm)) {
    recap.set(
      m[1] ?? '',
      Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)=(\d+)/g)].map((x) => [x[1] ?? '', Number(x[2])])),
    );
  }
  return { code: r.code, out: r.out, recap };
}

async function setup(t: ExecutionContext): Promise<Fleet> {
  const lab = await Lab.create({ hosts: 3 });
  t.teardown(() => lab.destroy());
  const dir = join(lab.dir, 'ctl');
  const keys = join(dir, 'keys');
  mkdirSync(keys, { recursive: true });
  mkdirSync(join(dir, 'tmp-local'));
  // sshd refuses to start without its privilege-separation directory (the openssh-server package makes it).
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  for (const k of ['host_key', 'id_ed25519'])
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, k)]);
  writeFileSync(join(keys, 'authorized_keys'), readFileSync(join(keys, 'id_ed25519.pub')));
  chmodSync(join(keys, 'id_ed25519'), 0o600);
  const ctl = await lab.addNode('ctl', CTL_IP);
  for (const h of lab.hosts) await sshd(lab, h, keys);
  writeFileSync(
    join(dir, 'ansible.cfg'),
    [
      '[defaults]',
      `roles_path = ${join(REPO, 'examples/ansible/roles')}`,
      'host_key_checking = False',
      'forks = 5',
      `remote_tmp = ${join(dir, 'tmp-remote')}`,
      'retry_files_enabled = False',
      'stdout_callback = default',
      '[ssh_connection]',
      `ssh_args = -F ${join(dir, 'ssh_config')} -o UserKnownHostsFile=/dev/null -o IdentityFile=${join(keys, 'id_ed25519')} -o IdentitiesOnly=yes -o ControlMaster=auto -o ControlPersist=60s`,
      `control_path_dir = ${join(dir, 'cp')}`,
      'pipelining = True',
      '',
    ].join('\n'),
  );
  // The lab's ssh client config: -F replaces both ~/.ssh/config and /etc/ssh/ssh_config.
  writeFileSync(join(dir, 'ssh_config'), 'Host *\n  BatchMode yes\n  StrictHostKeyChecking no\n  ConnectTimeout 10\n');
  const exe = await ensureExe();
  return {
    lab,
    ctl,
    dir,
    inventory: join(dir, 'inventory.json'),
    exe,
    log: (line) => {
      t.log(line);
    },
  };
}

const pidOf = (h: LabHost): string =>
  existsSync(join(h.dir, 'weft.pid')) ? readFileSync(join(h.dir, 'weft.pid'), 'utf8').trim() : '';

test.serial(
  'site.yml over SSH: rollout, convergence, idempotence, a bad change stops after one batch, decommission',
  async (t) => {
    const step = bounded(t, 240_000);
    const testStart = Date.now();
    const f = await setup(t);
    const { lab } = f;
    const [h1, h2, h3] = lab.hosts;
    if (!h1 || !h2 || !h3) throw new Error('no hosts');

    // 0. Hermetic: a command over the lab's SSH runs under /bin/sh with the lab's home, so no
    //    start-up file of this machine (root's ~/.bashrc, ~/.profile) is ever read.
    step('0. a plain command over the lab SSH');
    const probe = await lab.runAsLabAccount(
      f.ctl,
      'ssh',
      [
        '-F',
        join(f.dir, 'ssh_config'),
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        `IdentityFile=${join(f.dir, 'keys', 'id_ed25519')}`,
        '-o',
        'IdentitiesOnly=yes',
        `root@${h1.ip}`,
        'echo "shell=$0 home=$HOME"; ps -o comm= -p $$',
      ],
      { timeoutMs: 20_000 },
    );
    t.is(probe.stdout.trim().split('\n').join(' | '), `shell=sh home=${lab.labAccount().home} | sh`, probe.out);

    // 1. Roll out.
    step('1. rollout (site.yml)');
    writeInventory(f);
    const t0 = Date.now();
    const first = await playbook(f, 'site.yml');
    t.is(first.code, 0, first.out);
    t.log(`site.yml, first run: ${Date.now() - t0} ms; recap ${JSON.stringify(Object.fromEntries(first.recap))}`);
    for (const h of lab.hosts) {
      t.truthy(await leaseOf(lab, h), `${h.name} holds a lease`);
      t.regex(
        readFileSync(join(h.dir, 'docker.env'), 'utf8'),
        /^DOCKER_NETWORK_OPTIONS=" --bip=198\.18\.\d+\.1\/24 --ip-masq=false --mtu=1450"$/m,
      );
      t.true(
        existsSync(join(h.dir, 'systemd', 'weft.service')) &&
          existsSync(join(h.dir, 'systemd', 'docker.service.d', 'weft.conf')),
      );
      t.is(
        readlinkSync(`/proc/${pidOf(h)}/exe`),
        join(h.dir, 'bin', 'weft'),
        `${h.name} runs the standalone executable`,
      );
      t.regex(
        readFileSync(join(h.dir, 'systemd', 'weft.service.d', 'ansible.conf'), 'utf8'),
        new RegExp(`ExecStart=${join(h.dir, 'bin', 'weft')} run --spec ${join(h.dir, 'etc', 'network.yaml')}`),
      );
    }
    t.regex(first.out, /changed: \/coreos\.com\/network\/config/, 'weft apply stored the network once');
    const containers = [];
    for (const h of lab.hosts) containers.push({ ...(await lab.addContainer(h)), host: h });
    t.deepEqual(
      await pingAll({ lab, specs: [], containers, addContainers: () => Promise.resolve() }),
      [],
      'every pair of hosts reaches each other over the overlay',
    );

    // 2. Run again: nothing changes anywhere.
    step('2. idempotent second run');
    const pids = lab.hosts.map(pidOf);
    const second = await playbook(f, 'site.yml');
    t.is(second.code, 0, second.out);
    for (const h of lab.hosts) t.is(second.recap.get(h.name)?.changed, 0, `${h.name}: second run changed nothing`);
    t.deepEqual(lab.hosts.map(pidOf), pids, 'no restart');
    t.regex(second.out, /unchanged: \/coreos\.com\/network\/config/);

    // 3. An invalid value on one host: the run stops before any live file changes on any host.
    step('3. invalid value on h3');
    const spec = (h: LabHost) => readFileSync(join(h.dir, 'etc', 'network.yaml'), 'utf8');
    const specs = lab.hosts.map(spec);
    const hosts = JSON.parse(readFileSync(f.inventory, 'utf8')) as {
      weft: { hosts: Record<string, Record<string, unknown>> };
    };
    (hosts.weft.hosts.h3 ?? {}).weft_vni = 0;
    writeFileSync(f.inventory, JSON.stringify(hosts));
    const invalid = await playbook(f, 'site.yml');
    t.not(invalid.code, 0);
    t.regex(invalid.out, /backend\.vni must be an integer 1\.\.16777215/, 'weft validate names the problem');
    t.deepEqual(lab.hosts.map(spec), specs, 'no live spec changed');
    t.deepEqual(lab.hosts.map(pidOf), pids, 'nothing restarted');

    // 4. A change that validates but never becomes ready (an interface that does not exist):
    //    the first batch fails its /readyz gate and the others are left as they were.
    step('4. a change that never becomes ready');
    writeInventory(f, { weft_interface: 'nonexistent0', weft_ready_retries: 4 });
    const bad = await playbook(f, 'site.yml');
    t.not(bad.code, 0);
    t.regex(bad.out, /Wait until weft is ready/);
    t.regex(spec(h1), /interface: nonexistent0/, 'the first batch got the change');
    t.deepEqual([spec(h2), spec(h3)], [specs[1], specs[2]], 'later batches were not touched');
    t.deepEqual([pidOf(h2), pidOf(h3)], [pids[1], pids[2]], 'and not restarted');
    t.true((await lab.tryExec(h2.ns, 'sh', ['-c', `kill -0 ${pids[1] ?? ''}`])).code === 0, 'h2 still runs weft');

    // 5. Fix it: the next run brings h1 back.
    step('5. fix run');
    writeInventory(f);
    const fixed = await playbook(f, 'site.yml');
    t.is(fixed.code, 0, fixed.out);
    t.deepEqual(await pingAll({ lab, specs: [], containers, addContainers: () => Promise.resolve() }), []);

    // 6. Decommission h3: lease released, peers drop its routes, its datapath and files removed.
    step('6. decommission.yml --limit h3');
    const lease3 = await leaseOf(lab, h3);
    const gone = await playbook(f, 'decommission.yml', ['--limit', 'h3']);
    t.is(gone.code, 0, gone.out);
    t.is(await leaseOf(lab, h3), undefined, 'the lease is released');
    await until(async () => !(await lab.ip(h1.ns, ['route', 'show'])).includes(lease3?.subnet ?? '?'), 5000, 100);
    t.false((await lab.ip(h3.ns, ['link', 'show'])).includes('flannel.1'), 'the vxlan device is gone');
    t.false((await lab.exec(h3.ns, 'iptables-save', [])).includes('FLANNEL'), 'the rules are gone');
    t.false(
      existsSync(join(h3.dir, 'etc', 'network.yaml')) || existsSync(join(h3.dir, 'bin', 'weft')),
      'the files are gone',
    );
    t.log(`the whole Ansible test took ${Math.round((Date.now() - testStart) / 1000)} s (its bound: 200 s)`);
  },
);
