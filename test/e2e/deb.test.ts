/**
 * The Debian package on this machine, as an operator uses it: build it (npm run build:deb's
 * script), lintian (the result goes to the test log), `dpkg -i`, `systemd-analyze verify` of the
 * installed unit, weft run from /usr/bin/weft on a lab host, `dpkg -i` of a higher version while
 * traffic crosses that host (0 packets lost), `dpkg -r` (the datapath stays), `dpkg -P` (no file
 * of the package or of weft is left, at the spec's own paths too; the datapath goes; the
 * operator's credential in /etc/weft and the lease in etcd stay).
 *
 * No systemd runs here, so the test plays systemd's part: it runs the unit's ExecStart (with the
 * unit's Environment=) on the lab host, restarts it after the upgrade as postinst's
 * `deb-systemd-invoke restart` would (SIGTERM, then start again), and stops it on removal as
 * prerm's `deb-systemd-invoke stop` would. Every dpkg command runs inside the lab host's network
 * namespace (the maintainer scripts' datapath clean-up on purge must never touch this machine's
 * own). Both packages are built with --fast (gzip instead of xz: ~20 s less; the contents are
 * the same as npm run build:deb's). dpkg is machine-global: the test holds /run/weft-dpkg-test.lock, refuses to run if a
 * weft package is already installed, and purges its package in teardown whatever happens.
 */
import test from 'ava';
import { existsSync, readFileSync, readlinkSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bounded } from '../helpers/bound.js';
import { REPO } from '../helpers/cli.js';
import { buildDeb, withLock } from '../helpers/exe.js';
import { leaseOf, pingAll } from '../helpers/fabric.js';
import { Lab, type LabHost } from '../helpers/lab.js';
import { type Started, run, start, until } from '../helpers/procs.js';
import { unitEnvironment } from '../helpers/unit-env.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const LOCK = '/run/weft-dpkg-test.lock';
const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
/** What deb-systemd-helper leaves on enable/mask, which purge must remove too. */
const HELPER_FILES = [
  '/etc/systemd/system/multi-user.target.wants/weft.service',
  '/etc/systemd/system/weft.service',
  '/var/lib/systemd/deb-systemd-helper-enabled/weft.service.dsh-also',
  '/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/weft.service',
  '/var/lib/systemd/deb-systemd-helper-masked/weft.service',
];

const h1Dir = (lab: Lab): string => {
  const h = lab.hosts[0];
  if (!h) throw new Error('no h1');
  return h.dir;
};

/** An Exec line of a unit as systemd splits it: words, "quoted words", $$ for $. */
function execArgv(unit: string, key: string): string[] {
  const line = new RegExp(`^${key}=(.*)$`, 'm').exec(unit)?.[1] ?? '';
  return [...line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)].map((m) => (m[1] ?? m[2] ?? '').replace(/\$\$/g, '$'));
}

test('the Debian package: install, verify, hitless upgrade under traffic, remove keeps the datapath, purge leaves nothing', async (t) => {
  const bound = bounded(t, 200_000);
  const began = Date.now();
  const timings: string[] = [];
  const step = (what: string): void => {
    timings.push(`${((Date.now() - began) / 1000).toFixed(1)} s: ${what}`);
    bound(what);
  };
  t.teardown(() => {
    t.log(`steps:\n${timings.join('\n')}`);
  });
  step('building both packages, lintian, the lab');
  const lab = await Lab.create({ hosts: 2 });
  t.teardown(() => lab.destroy());
  const [deb1, deb2] = await Promise.all([
    buildDeb(version, join(lab.dir, 'v1'), { fast: true }),
    buildDeb(`${version}+upgrade1`, join(lab.dir, 'v2'), { fast: true }),
  ]);
  const lintian = run('lintian', ['--info', '--pedantic', '--show-overrides', '--tag-display-limit', '0', deb1], {
    timeoutMs: 120_000,
    env: { ...process.env, PATH },
  });
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  // h1's spec puts weft's files outside the package's defaults (the lab's state dir and subnet
  // file) and asks for a Podman network (so WEFT-NO-MASQ exists): purge must find them all.
  const podmanFile = join(h1Dir(lab), 'weft-podman.json');
  const specs = lab.hosts.map((h, i) =>
    lab.writeSpec(
      h,
      'cidr: 198.18.0.0/16\nbackend: {type: vxlan}',
      i === 0 ? { outputs: `outputs:\n  podman: ${podmanFile}\n` } : {},
    ),
  );
  await lab.startWeft(h2, specs[1] ?? '');
  const onH1 = (cmd: string, args: string[]) =>
    run('nsenter', [`--net=/var/run/netns/${h1.ns}`, cmd, ...args], {
      env: { PATH, LANG: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive' },
      timeoutMs: 120_000,
    });
  const dpkg = async (args: string[]) => {
    const r = await onH1('dpkg', args);
    t.log(`dpkg ${args.map((a) => a.replace(/.*\//, '')).join(' ')}: exit ${String(r.code)}\n${r.out.trim()}`);
    t.is(r.code, 0, r.out);
    return r.out;
  };

  step('lintian');
  const l = await lintian;
  const tags = l.out.split('\n').filter((x) => /^[EWIPXO]: /.test(x));
  t.log(
    `lintian ${deb1.replace(/.*\//, '')} (--pedantic --info --show-overrides; O: overridden, reasons in packaging/debian/lintian-overrides): exit ${String(l.code)}\n${tags.join('\n') || '(no tags)'}`,
  );
  t.deepEqual(
    tags.filter((x) => /^[EW]: /.test(x)),
    [],
    'no lintian error or warning that is not overridden with a reason',
  );
  // (lintian exits 2 with --show-overrides whenever an overridden tag is an error; the lines say more.)
  t.true(tags.length > 0 && l.code !== null, l.out);

  await withLock(LOCK, 120_000, async () => {
    const status = await run('dpkg-query', ['-W', '-f=${Status}', 'weft']);
    if (status.stdout.includes('installed'))
      throw new Error(
        `a weft package is already installed on this machine (${status.stdout}); this test installs and purges its own, so it will not touch that one`,
      );
    // Purge whatever happens (in a network namespace of its own: purge removes weft's datapath).
    t.teardown(async () => {
      await run('unshare', ['--net', 'dpkg', '--purge', 'weft'], { env: { PATH } });
    });
    const listing = (await run('sh', ['-c', `dpkg-deb -c "$1" | awk '{print $6}'`, 'sh', deb1])).stdout;
    const shipped = listing
      .split('\n')
      .map((p) => p.replace(/^\.\/?/, '/').replace(/\/$/, ''))
      .filter((p) => p.length > 1);
    const preexisting = new Set([...shipped, ...HELPER_FILES].filter((p) => existsSync(p)));

    step('dpkg -i (no spec yet: nothing starts)');
    const installOut = await dpkg(['-i', deb1]);
    t.regex(installOut, /has no spec yet .* the service stays stopped/);
    const files = (await run('dpkg', ['-L', 'weft'])).stdout.split('\n').filter(Boolean);
    for (const f of [
      '/usr/bin/weft',
      '/lib/systemd/system/weft.service',
      '/usr/share/weft/docker-weft.conf',
      '/etc/weft/network.yaml',
      '/var/lib/weft',
      '/usr/share/bash-completion/completions/weft',
      '/usr/share/man/man8/weft.8.gz',
      '/usr/share/doc/weft/examples/monitoring/weft-alerts.yml',
    ])
      t.true(files.includes(f), `the package installs ${f}`);
    t.regex(
      (await run('dpkg-query', ['-W', '-f=${Conffiles}', 'weft'])).stdout,
      /\/etc\/weft\/network\.yaml [0-9a-f]{32}/,
      'the example spec is a conffile',
    );
    t.regex((await run('/usr/bin/weft', ['--version'])).stdout, /^\S+ \(standalone executable, embedded Node\.js v\d+/);
    t.regex(
      (await run('man', ['-l', '-Tutf8', '/usr/share/man/man8/weft.8.gz'], { env: { PATH, MANWIDTH: '80' } })).stdout,
      /weft release/,
      'the man page renders',
    );

    step('systemd-analyze verify, and the unit\'s "no spec, no start" condition');
    const verify = await run('systemd-analyze', ['verify', '/lib/systemd/system/weft.service'], { env: { PATH } });
    t.is(verify.code, 0, verify.out);
    t.is(verify.out.trim(), '', 'systemd-analyze verify: no warnings');
    const unit = readFileSync('/lib/systemd/system/weft.service', 'utf8');
    const cond = execArgv(unit, 'ExecCondition');
    t.not(
      (await run(cond[0] ?? '', cond.slice(1))).code,
      0,
      'the shipped example (all comments) is no spec: ExecCondition skips the start',
    );
    t.is(
      (await run(cond[0] ?? '', [...cond.slice(1, -1), specs[0] ?? ''])).code,
      0,
      'a real spec passes ExecCondition',
    );
    const exec = execArgv(unit, 'ExecStart');
    t.deepEqual(exec.slice(0, 2), ['/usr/bin/weft', 'run']);
    const unitEnv = unitEnvironment(unit);

    step("weft run from /usr/bin/weft on h1 (systemd's part played by the test)");
    const startInstalled = async (): Promise<Started> => {
      const p = start('nsenter', [`--net=/var/run/netns/${h1.ns}`, '/usr/bin/weft', 'run', '--spec', specs[0] ?? ''], {
        env: { PATH, ...unitEnv, WEFT_HOST_ID: `${lab.prefix}-h1` },
      });
      lab.onDestroy(() => p.stop());
      await until(
        () => {
          if (p.child.exitCode !== null)
            throw new Error(`/usr/bin/weft exited ${String(p.child.exitCode)}: ${p.output()}`);
          return p.output().includes('"msg":"ready"');
        },
        30_000,
        10,
        'the installed weft ready',
      );
      return p;
    };
    const old = await startInstalled();
    const containers = [];
    for (const h of lab.hosts) containers.push({ ...(await lab.addContainer(h)), host: h });
    t.deepEqual(await pingAll({ lab, specs, containers, addContainers: () => Promise.resolve() }), []);
    const [c1, c2] = containers;
    if (!c1 || !c2) throw new Error('no containers');

    step('dpkg -i of a higher version under traffic, then the restart postinst asks for');
    const ping = run(
      'nsenter',
      [`--net=/var/run/netns/${c2.ns}`, 'ping', '-n', '-q', '-c', '400', '-i', '0.02', '-W', '2', c1.ip],
      { timeoutMs: 60_000 },
    );
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    await dpkg(['-i', deb2]);
    t.is((await run('dpkg-query', ['-W', '-f=${Version}', 'weft'])).stdout, `${version}+upgrade1`);
    t.is(
      readlinkSync(`/proc/${String(old.child.pid)}/exe`),
      '/usr/bin/weft (deleted)',
      'dpkg replaced the running executable',
    );
    const t1 = Date.now();
    await old.stop(30_000);
    const fresh = await startInstalled();
    const restartMs = Date.now() - t1;
    t.is(
      readlinkSync(`/proc/${String(fresh.child.pid)}/exe`),
      '/usr/bin/weft',
      'the new process runs the upgraded file',
    );
    const p = await ping;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(p.out);
    const sent = Number(m?.[1] ?? 0);
    const received = Number(m?.[2] ?? -1);
    t.log(
      `upgrade under traffic: dpkg -i ${((t1 - t0) / 1000).toFixed(1)} s, restart (stop, start, ready) ${restartMs} ms; ping every 20 ms: ${sent} sent, ${received} received, ${sent - received} lost`,
    );
    t.true(sent >= 390, `ping ran (${sent} sent)`);
    t.is(received, sent, '0 packets lost across the upgrade');

    step('dpkg -r: the service stops, the datapath stays');
    // The operator's spec is /etc/weft/network.yaml (prerm reads it), plus a credential of theirs.
    writeFileSync('/etc/weft/network.yaml', readFileSync(specs[0] ?? '', 'utf8'));
    const credential = `/etc/weft/${lab.prefix}-etcd-password`;
    writeFileSync(credential, 'not a real password\n', { mode: 0o600 });
    t.teardown(() => {
      rmSync(credential, { force: true });
      try {
        rmdirSync('/etc/weft');
      } catch {
        /* not empty or gone */
      }
    });
    const written = [h1.subnetFile, podmanFile, join(h1.dir, 'state', 'state.json')];
    for (const f of written) t.true(existsSync(f), `weft wrote ${f}`);
    t.regex(
      await lab.exec(h1.ns, 'iptables-save', ['-t', 'nat']),
      /-A POSTROUTING -m comment --comment "weft no-masq" -j WEFT-NO-MASQ/,
    );
    await dpkg(['-r', 'weft']);
    await fresh.stop(30_000);
    t.false(existsSync('/usr/bin/weft'));
    t.true(existsSync('/etc/weft/network.yaml'), 'the conffile stays until purge');
    t.regex(await lab.ip(h1.ns, ['-d', 'link', 'show', 'flannel.1']), /vxlan id 1/, 'the vxlan device stays');
    t.true(await lab.ping(c2.ns, c1.ip, { count: 3 }), 'traffic still flows with weft removed');

    step("dpkg -P: nothing of weft's left, the operator's credential kept; the lease stays in etcd");
    // An IPv6 vxlan device as weft makes it with network.ipv6 (this lab is IPv4): purge removes it too.
    await lab.ip(h1.ns, [
      'link',
      'add',
      'flannel-v6.1',
      'type',
      'vxlan',
      'id',
      '1',
      'dstport',
      '8472',
      'local',
      'fd00:2::1',
      'nolearning',
    ]);
    const purgeOut = await dpkg(['-P', 'weft']);
    t.regex(purgeOut, /lease in etcd was not released.*weft release/);
    t.regex(
      purgeOut,
      new RegExp(`weft: kept \\(yours, not the package's: .*\\): ${credential}\n`),
      'purge names what it kept',
    );
    const left = [...shipped, ...HELPER_FILES].filter((f) => !preexisting.has(f) && existsSync(f));
    t.deepEqual(
      left,
      ['/etc/weft'],
      "every file and directory the package brought is gone, but /etc/weft, which holds the operator's credential",
    );
    t.true(existsSync(credential), "the operator's credential stays");
    t.false(existsSync('/var/lib/weft'));
    for (const f of written) t.false(existsSync(f), `purge removed ${f}, a path the spec named`);
    t.false(existsSync(join(h1.dir, 'state')), "and the spec's state dir, empty once weft's files were gone");
    const links = await lab.ip(h1.ns, ['link', 'show']);
    t.false(links.includes('flannel.1') || links.includes('flannel-v6.1'), `purge removed the vxlan devices: ${links}`);
    t.false((await lab.ip(h1.ns, ['route', 'show', 'proto', '175'])).trim() !== '', "and weft's routes");
    const rules = await lab.exec(h1.ns, 'iptables-save', []);
    t.false(
      rules.includes('FLANNEL') || rules.includes('WEFT'),
      `and its rules, WEFT-NO-MASQ and its jump too: ${rules}`,
    );
    t.truthy(await leaseOf(lab, h1), 'purge released nothing in etcd (weft release does)');
  });
});
