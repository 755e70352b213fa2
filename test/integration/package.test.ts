/**
 * Packaging as an operator installs weft: the npm tarball installed with `npm install -g`
 * (into a scratch prefix, not the machine's), and the one-file bundle copied alone into an
 * empty directory. Both must really work: --version from package.json, a spec validated, and
 * (for the bundle, whose etcd protos are inlined) a real etcd spoken to.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../helpers/cli.js';
import { EtcdCluster } from '../helpers/etcd.js';

const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-pkg-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

const run = (cmd: string, args: string[], cwd?: string) =>
  spawnSync(cmd, args, { encoding: 'utf8', ...(cwd ? { cwd } : {}), timeout: 180_000 });

test('npm pack, then npm install -g of the tarball, gives a working weft', (t) => {
  const dir = scratch(t);
  // --ignore-scripts: dist/ is already built by the test run; nothing must rebuild it under the tests.
  const pack = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], REPO);
  t.is(pack.status, 0, pack.stderr);
  const tarball = join(dir, pack.stdout.trim().split('\n').pop() ?? '');
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  for (const f of [
    'package/dist/src/cli/weft.js',
    'package/units/weft.service',
    'package/units/docker-weft.conf',
    'package/examples/vxlan.yaml',
    'package/README.md',
  ])
    t.true(listing.includes(f), f);
  t.false(listing.includes('package/dist/test/'), 'tests are not shipped');
  const prefix = join(dir, 'prefix');
  const inst = run('npm', [
    'install',
    '-g',
    '--prefix',
    prefix,
    '--no-audit',
    '--no-fund',
    '--loglevel=error',
    tarball,
  ]);
  t.is(inst.status, 0, inst.stderr);
  const weft = join(prefix, 'bin', 'weft');
  t.is(run(weft, ['--version']).stdout.trim(), version);
  const v = run(weft, ['validate', '--spec', join(REPO, 'examples/vxlan.yaml')]);
  t.is(v.status, 0, v.stderr);
  t.regex(run(weft, ['--help']).stdout, /weft status/);
});

test('the one-file bundle runs with nothing beside it, and talks to a real etcd', async (t) => {
  const dir = scratch(t);
  const out = join(dir, 'weft.mjs');
  const b = run(process.execPath, [join(REPO, 'scripts/bundle.mjs'), out], REPO);
  t.is(b.status, 0, b.stderr);
  const alone = mkdtempSync(join(dir, 'alone-'));
  execFileSync('cp', [out, join(alone, 'weft.mjs')]);
  const weft = (args: string[]) => run(process.execPath, [join(alone, 'weft.mjs'), ...args], alone);
  t.is(weft(['--version']).stdout.trim(), version);
  const etcd = await EtcdCluster.start();
  t.teardown(() => etcd.stop());
  const spec = join(alone, 'network.yaml');
  writeFileSync(
    spec,
    `etcd:\n  endpoints: [${etcd.endpoints.join(', ')}]\nnetwork:\n  cidr: 198.18.0.0/16\n  backend: {type: vxlan}\n`,
  );
  const apply = weft(['apply', '--spec', spec]);
  t.is(apply.status, 0, apply.stderr);
  t.regex(apply.stdout, /^changed: \/coreos.com\/network\/config/);
  const leases = weft(['leases', '--spec', spec, '--json']);
  t.is(leases.status, 0, leases.stderr);
  t.deepEqual(JSON.parse(leases.stdout), []);
});
