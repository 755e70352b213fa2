// The CLI as a user runs it: exit statuses, positioned messages, byte-identical outputs.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runWeft } from '../helpers/cli.js';

const made: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'weft-cli-'));
  made.push(d);
  return d;
};
test.after.always(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const SAMPLE = 'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n';
const cleanEnv = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '', ...extra });

test('validate: examples pass; --json prints the stored config and derived values', async (t) => {
  const r = await runWeft(['validate', '--spec', 'examples/vxlan.yaml', '--json']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), {
    config: { Network: '10.244.0.0/16', SubnetLen: 24, Backend: { Type: 'vxlan', VNI: 1, Port: 8472 } },
    derived: { subnetLen: 24, subnetMin: '10.244.1.0', subnetMax: '10.244.255.0', capacity: 255 },
  });
  t.is(r.stderr, '');
  for (const f of ['host-gw', 'tls', 'wireguard'])
    t.is((await runWeft(['validate', '--spec', `examples/${f}.yaml`])).code, 0);
});

test('validate: a dual-stack and an IPv6-only spec, as JSON (derived.ipv6) and as text; a link-local host.publicIPv6 exits 2 at its position', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'dual.yaml'), 'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: fd18::/48\n');
  writeFileSync(
    join(d, 'v6.yaml'),
    'network:\n  ipv4: false\n  ipv6:\n    cidr: fd18::/48\n  backend: {type: host-gw}\n',
  );
  writeFileSync(join(d, 'bad.yaml'), 'host:\n  publicIPv6: fe80::1\n');
  const dual = await runWeft(['validate', '--spec', 'dual.yaml', '--json'], { cwd: d });
  t.is(dual.code, 0, dual.stderr);
  t.deepEqual(JSON.parse(dual.stdout), {
    config: {
      Network: '198.18.0.0/16',
      EnableIPv6: true,
      IPv6Network: 'fd18::/48',
      Backend: { Type: 'vxlan', VNI: 1, Port: 8472 },
    },
    derived: {
      subnetLen: 24,
      subnetMin: '198.18.1.0',
      subnetMax: '198.18.255.0',
      capacity: 255,
      ipv6: { subnetLen: 64, subnetMin: 'fd18:0:0:1::', subnetMax: 'fd18:0:0:ffff::', capacity: 65535 },
    },
  });
  const v6 = await runWeft(['validate', '--spec', 'v6.yaml', '--json'], { cwd: d });
  t.deepEqual(JSON.parse(v6.stdout), {
    config: { EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fd18::/48', Backend: { Type: 'host-gw' } },
    derived: {
      subnetLen: null,
      subnetMin: null,
      subnetMax: null,
      capacity: null,
      ipv6: { subnetLen: 64, subnetMin: 'fd18:0:0:1::', subnetMax: 'fd18:0:0:ffff::', capacity: 65535 },
    },
  });
  const text = await runWeft(['validate', '--spec', 'v6.yaml'], { cwd: d });
  t.regex(
    text.stdout,
    /^v6\.yaml: valid\n {2}network {3}IPv6 only \(ipv4: false\), backend host-gw\n {2}ipv6 {6}fd18::\/48: \/64 subnets from fd18:0:0:1:: to fd18:0:0:ffff::, 65535 hosts\n {2}etcd /,
  );
  const bad = await runWeft(['validate', '--spec', 'bad.yaml'], { cwd: d });
  t.is(bad.code, 2);
  t.is(bad.stdout, '');
  t.regex(bad.stderr, /^bad\.yaml:2:15: host\.publicIPv6 fe80::1 is link-local \(fe80::\/10\)/);
});

test('validate: a bad spec exits 2 with file:line:col and writes nothing to stdout', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'network.yaml'), 'network:\n  cidr: 10.244.0.0/16\n  backend:\n    type: vxlan\n    vni: 0\n');
  const r = await runWeft(['validate', '--spec', 'network.yaml'], { cwd: d });
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.is(r.stderr, 'network.yaml:5:10: network.backend.vni must be an integer 1..16777215, got 0\n');
});

test('validate: a missing spec file and a bad flag exit 2', async (t) => {
  const r = await runWeft(['validate', '--spec', '/nonexistent/weft.yaml']);
  t.is(r.code, 2);
  t.regex(r.stderr, /\/nonexistent\/weft.yaml: cannot read the spec: ENOENT/);
  const b = await runWeft(['validate', '--frobnicate']);
  t.is(b.code, 2);
  t.regex(b.stderr, /Unknown argument: frobnicate/);
  t.is((await runWeft(['no-such-command'])).code, 2);
  t.is((await runWeft(['validate', '--help'])).code, 0);
});

const cases: [string[], Record<string, string>, string][] = [
  [
    [],
    {},
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n',
  ],
  [
    ['-i'],
    {},
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\n',
  ],
  [['-c'], {}, 'DOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n'],
  [
    ['-k', 'CUSTOM_KEY'],
    {},
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nCUSTOM_KEY=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n',
  ],
  [
    ['-m'],
    {},
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"\n',
  ],
  [['-c', '-m'], {}, 'DOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"\n'],
  [['-cm'], {}, 'DOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"\n'],
  [['-k', 'X', '-c'], {}, 'X=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n'],
  [
    ['-k', 'X', '-i'],
    {},
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\n',
  ],
  [
    [],
    { DOCKER_OPTS: '--foo' },
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS="--foo  --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n',
  ],
];

for (const [flags, env, want] of cases) {
  test(`docker-opts ${flags.join(' ') || '(no flags)'}${Object.keys(env).length ? ` with ${JSON.stringify(env)}` : ''}: byte-identical to mk-docker-opts.sh`, async (t) => {
    const d = tmp();
    writeFileSync(join(d, 'subnet.env'), SAMPLE);
    const r = await runWeft(['docker-opts', '-f', join(d, 'subnet.env'), '-d', join(d, 'out.env'), ...flags], {
      env: cleanEnv(env),
    });
    t.is(r.code, 0, r.stderr);
    t.is(readFileSync(join(d, 'out.env'), 'utf8'), want);
    t.is(statSync(join(d, 'out.env')).mode & 0o777, 0o644);
  });
}

const DUAL = SAMPLE.replace(
  'FLANNEL_MTU',
  'FLANNEL_IPV6_NETWORK=fd18::/48\nFLANNEL_IPV6_SUBNET=fd18:0:0:4a::1/64\nFLANNEL_MTU',
);

for (const [flags, , want] of cases.filter(([, env]) => Object.keys(env).length === 0)) {
  test(`docker-opts ${flags.join(' ') || '(no flags)'} of a dual-stack subnet.env: still byte-identical to mk-docker-opts.sh (it ignores FLANNEL_IPV6_*)`, async (t) => {
    const d = tmp();
    writeFileSync(join(d, 'subnet.env'), DUAL);
    const r = await runWeft(['docker-opts', '-f', join(d, 'subnet.env'), '-d', join(d, 'out.env'), ...flags], {
      env: cleanEnv(),
    });
    t.is(r.code, 0, r.stderr);
    t.is(readFileSync(join(d, 'out.env'), 'utf8'), want);
  });
}

test('docker-opts -6 (opt-in): --ipv6 and --fixed-cidr-v6 from FLANNEL_IPV6_SUBNET; nothing added without one', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'subnet.env'), DUAL);
  const r = await runWeft(['docker-opts', '-6', '-f', join(d, 'subnet.env'), '-d', join(d, 'out.env')], {
    env: cleanEnv(),
  });
  t.is(r.code, 0, r.stderr);
  t.is(
    readFileSync(join(d, 'out.env'), 'utf8'),
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_FIXED_CIDR_V6="--fixed-cidr-v6=fd18:0:0:4a::/64"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_IPV6="--ipv6"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS=" --bip=10.1.74.1/24 --fixed-cidr-v6=fd18:0:0:4a::/64 --ip-masq=true --ipv6 --mtu=1472"\n',
  );
  t.is(
    (
      await runWeft(['docker-opts', '--ipv6', '-c', '-f', join(d, 'subnet.env'), '-d', join(d, 'c.env')], {
        env: cleanEnv(),
      })
    ).code,
    0,
  );
  t.is(
    readFileSync(join(d, 'c.env'), 'utf8'),
    'DOCKER_OPTS=" --bip=10.1.74.1/24 --fixed-cidr-v6=fd18:0:0:4a::/64 --ip-masq=true --ipv6 --mtu=1472"\n',
  );
  writeFileSync(join(d, 'v4.env'), SAMPLE);
  t.is(
    (await runWeft(['docker-opts', '-6', '-f', join(d, 'v4.env'), '-d', join(d, 'v4.out')], { env: cleanEnv() })).code,
    0,
  );
  t.is(readFileSync(join(d, 'v4.out'), 'utf8'), cases[0]?.[2] ?? 'the first case');
  writeFileSync(join(d, 'bad.env'), SAMPLE.replace('FLANNEL_MTU', 'FLANNEL_IPV6_SUBNET=10.9.0.1/24\nFLANNEL_MTU'));
  writeFileSync(join(d, 'bad.out'), 'OLD\n');
  const bad = await runWeft(['docker-opts', '-6', '-f', join(d, 'bad.env'), '-d', join(d, 'bad.out')], {
    env: cleanEnv(),
  });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /Invalid value of FLANNEL_IPV6_SUBNET: 10\.9\.0\.1\/24/);
  t.is(readFileSync(join(d, 'bad.out'), 'utf8'), 'OLD\n');
});

test('docker-opts: an invalid FLANNEL_IPMASQ fails and leaves the old output untouched', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'subnet.env'), SAMPLE.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=yes'));
  writeFileSync(join(d, 'out.env'), 'OLD\n');
  const r = await runWeft(['docker-opts', '-f', join(d, 'subnet.env'), '-d', join(d, 'out.env')], { env: cleanEnv() });
  t.not(r.code, 0);
  t.regex(r.stderr, /Invalid value of FLANNEL_IPMASQ: yes/);
  t.is(readFileSync(join(d, 'out.env'), 'utf8'), 'OLD\n');
});

test('docker-opts: a missing subnet file is an error (unlike mk-docker-opts.sh) unless --allow-missing', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'out.env'), 'OLD\n');
  const r = await runWeft(['docker-opts', '-f', join(d, 'missing.env'), '-d', join(d, 'out.env')], { env: cleanEnv() });
  t.is(r.code, 1);
  t.regex(r.stderr, /missing.env does not exist/);
  t.is(readFileSync(join(d, 'out.env'), 'utf8'), 'OLD\n');
  const a = await runWeft(['docker-opts', '--allow-missing', '-f', join(d, 'missing.env'), '-d', join(d, 'out.env')], {
    env: cleanEnv(),
  });
  t.is(a.code, 0);
  t.is(readFileSync(join(d, 'out.env'), 'utf8'), 'DOCKER_OPTS=""\n');
});

test('docker-opts: the FLANNEL_IPMASQ=true case and a bad -k', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'subnet.env'), SAMPLE.replace('FLANNEL_IPMASQ=false', 'FLANNEL_IPMASQ=true'));
  const r = await runWeft(['docker-opts', '-f', join(d, 'subnet.env'), '-d', join(d, 'o'), '-i'], { env: cleanEnv() });
  t.is(r.code, 0);
  t.regex(readFileSync(join(d, 'o'), 'utf8'), /DOCKER_OPT_IPMASQ="--ip-masq=false"/);
  t.is(
    (await runWeft(['docker-opts', '-k', 'A-B', '-f', join(d, 'subnet.env'), '-d', join(d, 'o')], { env: cleanEnv() }))
      .code,
    2,
  );
});

test('validate: a password file over http:// is refused with exit 2 and its position; nothing on stdout', async (t) => {
  const d = tmp();
  writeFileSync(
    join(d, 'network.yaml'),
    'etcd:\n  endpoints: [http://192.0.2.10:2379]\n  username: weft\n  passwordFile: pw\n',
  );
  const r = await runWeft(['validate', '--spec', 'network.yaml'], { cwd: d });
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^network\.yaml:4:17: etcd\.passwordFile: the password would cross the network in clear text/);
});

test('validate: a password file or client key others can read is a one-line warning naming the fix; exit stays 0', async (t) => {
  const d = tmp();
  writeFileSync(join(d, 'pw'), 'secret\n', { mode: 0o644 });
  chmodSync(join(d, 'pw'), 0o644);
  writeFileSync(join(d, 'key.pem'), 'key\n', { mode: 0o600 });
  writeFileSync(
    join(d, 'network.yaml'),
    'etcd:\n  endpoints: [https://192.0.2.10:2379]\n  caFile: ca.pem\n  certFile: cert.pem\n  keyFile: key.pem\n  username: weft\n  passwordFile: pw\n',
  );
  const r = await runWeft(['validate', '--spec', join(d, 'network.yaml'), '--json']);
  t.is(r.code, 0, r.stderr);
  t.is(
    r.stderr,
    `weft: warning: etcd.passwordFile ${join(d, 'pw')} is readable by group and others (mode 0644); fix: chmod 600 ${join(d, 'pw')}\n`,
  );
  t.notThrows(() => JSON.parse(r.stdout) as unknown, 'stdout is still one JSON document');
  chmodSync(join(d, 'pw'), 0o600);
  t.is((await runWeft(['validate', '--spec', join(d, 'network.yaml')])).stderr, '');
});

test('config show: --help names the command; a missing subcommand is a usage error (exit 2)', async (t) => {
  const help = await runWeft(['config', 'show', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /weft config show/);
  t.regex(help.stdout, /--json/);
  t.is((await runWeft(['config'])).code, 2);
  t.regex((await runWeft(['--help'])).stdout, /weft config +Inspect the network config stored in etcd/);
});
