/**
 * The shipped systemd units: `systemd-analyze verify` clean, the security exposure score at or
 * under 5.0 (and the README says what it is), and the paths in them agree with weft's defaults.
 * Checked offline: no systemd needs to run here, so what a booted host would add (the sandbox
 * actually applied, Docker really waiting) is not proven by this file.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DEFAULTS } from '../../src/core/spec/spec.js';
import { REPO, WEFT } from '../helpers/cli.js';

const unit = readFileSync(join(REPO, 'units/weft.service'), 'utf8');
const dropIn = readFileSync(join(REPO, 'units/docker-weft.conf'), 'utf8');

/** A copy of the units whose binaries exist here (verify checks ExecStart is executable). */
function staged(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'weft-units-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const weft = join(dir, 'weft');
  writeFileSync(weft, `#!/bin/sh\nexec ${process.execPath} ${WEFT} "$@"\n`);
  chmodSync(weft, 0o755);
  writeFileSync(join(dir, 'weft.service'), unit.replace('/usr/local/bin/weft', weft));
  const dockerd =
    spawnSync('sh', ['-c', 'command -v dockerd'], { encoding: 'utf8' }).stdout.trim() || '/usr/bin/dockerd';
  // Docker CE's own unit, reduced to what the drop-in touches.
  writeFileSync(
    join(dir, 'docker.service'),
    `[Unit]\nDescription=Docker\nAfter=network-online.target\n\n[Service]\nType=notify\nExecStart=${dockerd} -H fd://\n\n[Install]\nWantedBy=multi-user.target\n`,
  );
  mkdirSync(join(dir, 'docker.service.d'));
  writeFileSync(join(dir, 'docker.service.d', 'weft.conf'), dropIn.replace('/usr/bin/dockerd', dockerd));
  return dir;
}

const analyze = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync('systemd-analyze', args, { encoding: 'utf8', env: { ...process.env, ...env } });

test('systemd-analyze verify: weft.service and docker.service with the weft drop-in are clean', (t) => {
  const dir = staged(t);
  const env = { SYSTEMD_UNIT_PATH: `${dir}:` };
  for (const u of ['weft.service', 'docker.service']) {
    const r = analyze(['verify', join(dir, u)], env);
    t.is(r.status, 0, `${u}: ${r.stderr}${r.stdout}`);
    t.is(`${r.stdout}${r.stderr}`.trim(), '', `${u}: no warnings`);
  }
  // The drop-in was really read: a broken copy of it fails verification.
  writeFileSync(join(dir, 'docker.service.d', 'weft.conf'), `${dropIn}\n[Service]\nExecStart=relative/path\n`);
  t.not(analyze(['verify', join(dir, 'docker.service')], env).status, 0);
});

test('systemd-analyze security: exposure 5.0 or better, and the README states the score', (t) => {
  const dir = staged(t);
  const r = analyze(['security', '--offline=true', '--threshold=50', join(dir, 'weft.service')]);
  const m = /Overall exposure level for weft\.service: (\d+\.\d)/.exec(r.stdout);
  t.truthy(m, r.stdout + r.stderr);
  const score = Number(m?.[1]);
  t.log(`exposure ${score}`);
  t.true(score <= 5.0, `exposure ${score}`);
  t.is(r.status, 0, 'systemd-analyze --threshold=50 (5.0) passes');
  t.true(
    readFileSync(join(REPO, 'README.md'), 'utf8').includes(`exposure level ${score.toFixed(1)}`),
    'README records this exposure score',
  );
});

test("the units agree with weft's defaults: writable output directories, the Docker options file and key", (t) => {
  const rw = [...unit.matchAll(/^ReadWritePaths=(.*)$/gm)]
    .flatMap((m) => (m[1] ?? '').split(/\s+/))
    .map((p) => p.replace(/^-/, ''));
  for (const dir of [dirname(DEFAULTS.subnetFile), dirname(DEFAULTS.dockerFile), '/run/weft'])
    t.true(rw.includes(dir), `${dir} is writable`);
  t.regex(unit, /^Type=notify$/m);
  t.regex(unit, /^NotifyAccess=all$/m, 'systemd-notify is a child process');
  t.regex(unit, /^PrivateMounts=yes$/m, 'weft mounts nothing');
  t.regex(unit, /^WatchdogSec=\d+s$/m);
  t.regex(unit, /^Restart=always$/m);
  t.regex(unit, /^RuntimeDirectoryPreserve=yes$/m, 'subnet.env survives a restart of weft (Docker reads it)');
  t.regex(dropIn, new RegExp(`^EnvironmentFile=${DEFAULTS.dockerFile}$`, 'm'));
  t.regex(dropIn, new RegExp(`^ExecStart=.*\\$${DEFAULTS.dockerKey}$`, 'm'));
  t.regex(dropIn, /^After=weft\.service$/m);
  t.notRegex(dropIn, /^(Requires|BindsTo|PartOf)=/m, 'restarting weft must never restart Docker');
});
