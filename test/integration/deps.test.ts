// The two README commands install what they need and no more: the demo installs etcd, iproute2,
// iptables and ping (no Docker, Podman, Ansible or sshd); the test suite installs the rest.
// Checked by running scripts/lib/deps.sh as on a machine that has nothing (every probe fails)
// with apt-get replaced by a function that records what it was asked to install.
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';
import { run } from '../helpers/procs.js';

async function installs(group: 'demo' | 'test'): Promise<{ packages: string[]; out: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-deps-'));
  try {
    const script = `. scripts/lib/deps.sh; _dep_present() { return 1; }; apt-get() { [ "$1" = install ] && echo "APT-INSTALL $*" >&2; return 0; }; ensure_debian_packages ${group}`;
    const r = await run('bash', ['-c', script], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', WEFT_POLICY_RC_D: join(dir, 'policy-rc.d') },
    });
    if (r.code !== 0) throw new Error(r.out);
    const line = r.out.split('\n').find((l) => l.startsWith('APT-INSTALL')) ?? '';
    return {
      packages: line.split(' ').filter((w) => w !== '' && !w.startsWith('-') && w !== 'APT-INSTALL' && w !== 'install'),
      out: r.stdout,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the demo installs only what the demo needs, and says why', async (t) => {
  const { packages, out } = await installs('demo');
  t.deepEqual(packages.sort(), [
    'etcd-client',
    'etcd-server',
    'iproute2',
    'iptables',
    'iputils-ping',
    'procps',
    'util-linux',
  ]);
  t.regex(out, /to install: etcd-server +the fabric's etcd/);
});

test('the test suite installs the demo packages and the rest (Docker, Podman, Ansible, sshd)', async (t) => {
  const { packages } = await installs('test');
  for (const p of [
    'etcd-server',
    'iproute2',
    'docker.io',
    'podman',
    'netavark',
    'ansible-core',
    'ansible-lint',
    'openssh-server',
    'systemd',
    'iperf3',
    'lintian',
    'prometheus',
  ])
    t.true(packages.includes(p), p);
});
