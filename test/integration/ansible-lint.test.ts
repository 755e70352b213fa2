/**
 * The Ansible examples pass Debian's ansible-playbook --syntax-check and ansible-lint
 * (production profile). The role is run for real over SSH in test/e2e/ansible.test.ts.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';

const dir = join(REPO, 'examples/ansible');

test('ansible-playbook --syntax-check: site.yml and decommission.yml', (t) => {
  for (const book of ['site.yml', 'decommission.yml']) {
    const r = spawnSync('ansible-playbook', ['--syntax-check', '-i', 'inventory.ini', book], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, ANSIBLE_NOCOLOR: '1' },
    });
    t.is(r.status, 0, `${book}: ${r.stdout}${r.stderr}`);
  }
});

test('ansible-lint: the role and playbooks pass the production profile', (t) => {
  const home = mkdtempSync(join(tmpdir(), 'weft-lint-'));
  t.teardown(() => {
    rmSync(home, { recursive: true, force: true });
  });
  const r = spawnSync(
    'ansible-lint',
    ['--offline', '--nocolor', '--profile', 'production', 'site.yml', 'decommission.yml', 'roles/weft'],
    {
      cwd: dir,
      encoding: 'utf8',
      timeout: 240_000,
      env: { ...process.env, HOME: home, ANSIBLE_NOCOLOR: '1', NO_COLOR: '1' },
    },
  );
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
  t.regex(`${r.stdout}${r.stderr}`, /Passed with production profile: 0 failure\(s\), 0 warning\(s\)/);
});
