// The IPv6 outputs: subnet.env's IPv6 variables per lease, the opt-in Docker IPv6 options
// (mk-docker-opts.sh's bytes otherwise), daemon.json and the Podman network with the IPv6 subnet.
import test from 'ava';
import { type Prefix, parsePrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import {
  type DockerOptsFlags,
  parseEnvFile,
  renderDaemonJson,
  renderDockerOpts,
  renderPodmanNetwork,
  renderSubnetEnv,
} from '../../src/core/outputs/outputs.js';
import { type Spec, DEFAULTS } from '../../src/core/spec/spec.js';
import { outputFiles } from '../../src/agent/outputs.js';
import { BACKENDS } from '../helpers/backends.js';

const P = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const flags = (f: Partial<DockerOptsFlags>): DockerOptsFlags => ({
  individual: false,
  combined: false,
  key: 'DOCKER_OPTS',
  omitIpMasq: false,
  ...f,
});
const render = (f: Partial<DockerOptsFlags>, env: string): string => {
  const r = renderDockerOpts(flags(f), parseEnvFile(env));
  if (!r.ok) throw new Error(r.message);
  return r.text;
};

const V4_ENV = 'FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';
const DUAL_ENV =
  'FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.5.1/24\nFLANNEL_IPV6_NETWORK=fd18::/48\nFLANNEL_IPV6_SUBNET=fd18:0:0:5::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';
const V6_ENV =
  'FLANNEL_IPV6_NETWORK=fd18::/48\nFLANNEL_IPV6_SUBNET=fd18:0:0:5::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

test('docker options: the IPv6 variables change nothing by default (mk-docker-opts.sh ignores them), in every flag combination', (t) => {
  for (const f of [
    {},
    { individual: true },
    { combined: true },
    { omitIpMasq: true },
    { key: 'DOCKER_NETWORK_OPTIONS' },
    { ipv6: false },
  ]) {
    t.is(render(f, DUAL_ENV), render(f, V4_ENV), JSON.stringify(f));
  }
  t.is(
    render({}, V6_ENV),
    'DOCKER_OPT_IPMASQ="--ip-masq=false"\nDOCKER_OPT_MTU="--mtu=1450"\nDOCKER_OPTS=" --ip-masq=false --mtu=1450"\n',
    'IPv6-only: no --bip, as the script',
  );
});

test('docker options with ipv6: --ipv6 and --fixed-cidr-v6 (network form) as two more DOCKER_OPT_ variables, in byte order', (t) => {
  t.is(
    render({ ipv6: true }, DUAL_ENV),
    [
      'DOCKER_OPT_BIP="--bip=198.18.5.1/24"',
      'DOCKER_OPT_FIXED_CIDR_V6="--fixed-cidr-v6=fd18:0:0:5::/64"',
      'DOCKER_OPT_IPMASQ="--ip-masq=false"',
      'DOCKER_OPT_IPV6="--ipv6"',
      'DOCKER_OPT_MTU="--mtu=1450"',
      'DOCKER_OPTS=" --bip=198.18.5.1/24 --fixed-cidr-v6=fd18:0:0:5::/64 --ip-masq=false --ipv6 --mtu=1450"',
      '',
    ].join('\n'),
  );
  t.is(
    render({ ipv6: true, combined: true }, V6_ENV),
    'DOCKER_OPTS=" --fixed-cidr-v6=fd18:0:0:5::/64 --ip-masq=false --ipv6 --mtu=1450"\n',
  );
  t.is(render({ ipv6: true }, V4_ENV), render({}, V4_ENV), 'no IPv6 subnet: nothing to add');
  t.deepEqual(renderDockerOpts(flags({ ipv6: true }), parseEnvFile(`${V4_ENV}FLANNEL_IPV6_SUBNET=198.18.9.1/24\n`)), {
    ok: false,
    message: 'Invalid value of FLANNEL_IPV6_SUBNET: 198.18.9.1/24',
  });
  t.deepEqual(renderDockerOpts(flags({ ipv6: true }), parseEnvFile(`${V4_ENV}FLANNEL_IPV6_SUBNET=nonsense\n`)), {
    ok: false,
    message: 'Invalid value of FLANNEL_IPV6_SUBNET: nonsense',
  });
});

test('daemon.json: ipv6 and fixed-cidr-v6 with an IPv6 subnet, no bip when IPv6-only; IPv4 unchanged', (t) => {
  t.is(renderDaemonJson(P('198.18.5.0/24'), 1450), '{\n  "bip": "198.18.5.1/24",\n  "mtu": 1450\n}\n');
  t.deepEqual(JSON.parse(renderDaemonJson(P('198.18.5.0/24'), 1450, P('fd18:0:0:5::/64'))), {
    bip: '198.18.5.1/24',
    ipv6: true,
    'fixed-cidr-v6': 'fd18:0:0:5::/64',
    mtu: 1450,
  });
  t.deepEqual(JSON.parse(renderDaemonJson(undefined, 1450, P('fd18:0:0:5::/64'))), {
    ipv6: true,
    'fixed-cidr-v6': 'fd18:0:0:5::/64',
    mtu: 1450,
  });
});

test('podman network: a second subnet with its gateway and ipv6_enabled; IPv6-only has only that one', (t) => {
  const pod = (p: { subnet?: Prefix; ipv6Subnet?: Prefix }) =>
    JSON.parse(renderPodmanNetwork({ name: 'weft', id: 'a'.repeat(64), mtu: 1450, created: 'T', ...p })) as {
      subnets: unknown;
      ipv6_enabled: boolean;
    };
  t.like(pod({ subnet: P('198.18.5.0/24') }), {
    subnets: [{ subnet: '198.18.5.0/24', gateway: '198.18.5.1' }],
    ipv6_enabled: false,
  });
  t.like(pod({ subnet: P('198.18.5.0/24'), ipv6Subnet: P('fd18:0:0:5::/64') }), {
    subnets: [
      { subnet: '198.18.5.0/24', gateway: '198.18.5.1' },
      { subnet: 'fd18:0:0:5::/64', gateway: 'fd18:0:0:5::1' },
    ],
    ipv6_enabled: true,
  });
  t.like(pod({ ipv6Subnet: P('fd18:0:0:5::/64') }), {
    subnets: [{ subnet: 'fd18:0:0:5::/64', gateway: 'fd18:0:0:5::1' }],
    ipv6_enabled: true,
  });
});

const spec = (docker: { ipv6?: boolean } = {}): Spec => ({
  file: 'network.yaml',
  etcd: { endpoints: DEFAULTS.endpoints, prefix: DEFAULTS.prefix },
  host: {
    ipMasq: true,
    subnetFile: '/run/flannel/subnet.env',
    leaseTTLSeconds: 86400,
    leaseRenewMarginSeconds: 3600,
    etcdGraceSeconds: 60,
    stateDir: DEFAULTS.stateDir,
    followConfig: true,
    configHoldDownSeconds: 5,
    configMinIntervalSeconds: 30,
    maxPeers: 65_536,
  },
  outputs: {
    docker: { file: '/run/flannel/docker', key: 'DOCKER_NETWORK_OPTIONS', ...docker },
    dockerDaemonJson: '/run/weft/daemon.json',
    podman: '/etc/containers/networks/weft.json',
  },
});
const V4 = checkNetworkConfig(decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}', BACKENDS));
const DUAL = checkNetworkConfig(
  decodeNetworkConfig(
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}',
    BACKENDS,
  ),
);
const V6 = checkNetworkConfig(
  decodeNetworkConfig(
    '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}',
    BACKENDS,
  ),
);
const files = (s: Spec, c: typeof V4, own: { v4?: Prefix; v6?: Prefix }) =>
  new Map(outputFiles(s, c, own, 1450, 'T').map((f) => [f.path, f.render(undefined)]));
const v4 = P('198.18.5.0/24');
const v6 = P('fd18:0:0:5::/64');

test('outputFiles: each family the lease and the config both have; the Docker IPv6 options only on request', (t) => {
  const dual = files(spec(), DUAL, { v4, v6 });
  t.is(dual.get('/run/flannel/subnet.env'), DUAL_ENV);
  t.is(
    dual.get('/run/flannel/docker'),
    render({ key: 'DOCKER_NETWORK_OPTIONS' }, V4_ENV),
    "the docker options stay mk-docker-opts.sh's by default",
  );
  t.regex(dual.get('/run/weft/daemon.json') ?? '', /"fixed-cidr-v6": "fd18:0:0:5::\/64"/);
  t.regex(dual.get('/etc/containers/networks/weft.json') ?? '', /"ipv6_enabled": true/);
  t.regex(
    files(spec({ ipv6: true }), DUAL, { v4, v6 }).get('/run/flannel/docker') ?? '',
    /^DOCKER_NETWORK_OPTIONS=" --bip=198\.18\.5\.1\/24 --fixed-cidr-v6=fd18:0:0:5::\/64 --ip-masq=false --ipv6 --mtu=1450"$/m,
  );

  const only6 = files(spec({ ipv6: true }), V6, { v6 });
  t.is(only6.get('/run/flannel/subnet.env'), V6_ENV, 'no FLANNEL_NETWORK or FLANNEL_SUBNET');
  t.false((only6.get('/run/weft/daemon.json') ?? '').includes('bip'));
  t.regex(only6.get('/run/flannel/docker') ?? '', /DOCKER_OPT_FIXED_CIDR_V6="--fixed-cidr-v6=fd18:0:0:5::\/64"/);

  const four = files(spec({ ipv6: true }), V4, { v4 });
  t.is(four.get('/run/flannel/subnet.env'), V4_ENV);
  t.is(four.get('/run/weft/daemon.json'), '{\n  "bip": "198.18.5.1/24",\n  "mtu": 1450\n}\n');
  t.deepEqual(files(spec(), V4, { v4, v6 }), four, "a lease's IPv6 half the config does not have is left out");
  t.is(
    files(spec(), DUAL, { v4 }).get('/run/flannel/subnet.env'),
    V4_ENV,
    'an IPv4-only lease on a dual-stack network: IPv4 only (not an error)',
  );
  t.is(renderSubnetEnv({ ipv6Network: P('fd18::/48'), ipv6Subnet: v6, mtu: 1450, ipMasq: true }), V6_ENV);
});
