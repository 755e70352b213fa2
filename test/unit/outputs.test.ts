import test from 'ava';
import { formatPrefix, parsePrefix } from '../../src/core/net/cidr.js';
import {
  type DockerOptsFlags,
  parseEnvFile,
  previousSubnet,
  renderDaemonJson,
  renderDockerOpts,
  renderPodmanNetwork,
  renderSubnetEnv,
} from '../../src/core/outputs/outputs.js';

const P = (s: string) => parsePrefix(s)!;

test('§6 subnet.env: variables in flannel order, .1 gateway, no quotes', (t) => {
  t.is(
    renderSubnetEnv({ network: P('10.1.0.0/16'), subnet: P('10.1.74.0/24'), mtu: 1472, ipMasq: false }),
    'FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n',
  );
  t.is(
    renderSubnetEnv({
      network: P('10.5.0.0/16'),
      subnet: P('10.5.52.0/24'),
      ipv6Network: P('2001:cafe:42::/56'),
      ipv6Subnet: P('2001:cafe:42::/64'),
      mtu: 1450,
      ipMasq: true,
    }),
    'FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=10.5.52.1/24\nFLANNEL_IPV6_NETWORK=2001:cafe:42::/56\nFLANNEL_IPV6_SUBNET=2001:cafe:42::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
  );
});

test('subnet-file read vectors (main_test.go)', (t) => {
  t.is(
    previousSubnet(parseEnvFile('FLANNEL_SUBNET=10.244.1.0/24,not-a-cidr,10.244.2.0/24\n')),
    undefined,
    'more than one valid entry counts as absent',
  );
  t.is(previousSubnet(parseEnvFile('FLANNEL_SUBNET=not-a-cidr\n')), undefined);
  t.is(
    previousSubnet(parseEnvFile('FLANNEL_IPV6_SUBNET=fd00::/64,not-a-cidr,fd01::/64\n'), 'FLANNEL_IPV6_SUBNET'),
    undefined,
  );
  t.is(
    formatPrefix(previousSubnet(parseEnvFile('FLANNEL_SUBNET=10.1.74.1/24\n'))!),
    '10.1.74.0/24',
    'masked back to the network address',
  );
  t.is(
    formatPrefix(previousSubnet(parseEnvFile('FLANNEL_SUBNET=10.1.74.1/24,garbage\n'))!),
    '10.1.74.0/24',
    'one valid entry plus junk is that entry',
  );
  t.deepEqual(
    [...parseEnvFile('# c\nexport A="x y"\nB=\'q\'\nnot a line\nC=1=2\n')],
    [
      ['A', 'x y'],
      ['B', 'q'],
      ['C', '1=2'],
    ],
  );
});

const SAMPLE = new Map([
  ['FLANNEL_NETWORK', '10.1.0.0/16'],
  ['FLANNEL_SUBNET', '10.1.74.1/24'],
  ['FLANNEL_MTU', '1472'],
  ['FLANNEL_IPMASQ', 'false'],
]);
const flags = (f: Partial<DockerOptsFlags>): DockerOptsFlags => ({
  individual: false,
  combined: false,
  key: 'DOCKER_OPTS',
  omitIpMasq: false,
  ...f,
});
const render = (f: Partial<DockerOptsFlags>, extra: [string, string][] = []) => {
  const r = renderDockerOpts(flags(f), new Map([...extra, ...SAMPLE]));
  if (!r.ok) throw new Error(r.message);
  return r.text;
};
const LINES = 'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\n';
const COMBINED = ' --bip=10.1.74.1/24 --ip-masq=true --mtu=1472';

test('§7 mk-docker-opts cases from mk_docker_opts_test.go, byte for byte', (t) => {
  t.is(render({}), `${LINES}DOCKER_OPTS="${COMBINED}"\n`);
  t.is(render({ individual: true }), LINES);
  t.is(render({ combined: true }), `DOCKER_OPTS="${COMBINED}"\n`);
  t.is(render({ key: 'CUSTOM_KEY' }), `${LINES}CUSTOM_KEY="${COMBINED}"\n`);
  t.is(
    render({ omitIpMasq: true }),
    'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"\n',
  );
});

test('§7 additional [run] cases', (t) => {
  t.is(render({ combined: true, omitIpMasq: true }), 'DOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"\n');
  t.is(render({ key: 'X', combined: true }), `X="${COMBINED}"\n`);
  t.is(render({ key: 'X', individual: true }), LINES);
  t.is(
    render({}, [['DOCKER_OPTS', '--foo']]),
    `${LINES}DOCKER_OPTS="--foo  --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n`,
  );
  const masqTrue = renderDockerOpts(flags({}), new Map([...SAMPLE, ['FLANNEL_IPMASQ', 'true']]));
  t.true(masqTrue.ok && masqTrue.text.includes('DOCKER_OPT_IPMASQ="--ip-masq=false"'));
  const empty = renderDockerOpts(flags({}), new Map());
  t.deepEqual(empty, { ok: true, text: 'DOCKER_OPTS=""\n' });
  const bad = renderDockerOpts(flags({}), new Map([...SAMPLE, ['FLANNEL_IPMASQ', 'yes']]));
  t.deepEqual(bad, { ok: false, message: 'Invalid value of FLANNEL_IPMASQ: yes' });
  t.is(
    render({}, [['DOCKER_OPT_AAA', '--x']]),
    `DOCKER_OPT_AAA="--x"\n${LINES}DOCKER_OPTS=" --x${COMBINED}"\n`,
    'inherited DOCKER_OPT_* variables are included, in byte order',
  );
});

test('daemon.json and podman network carry the leased gateway and MTU', (t) => {
  t.deepEqual(JSON.parse(renderDaemonJson(P('198.18.5.0/24'), 1450)), { bip: '198.18.5.1/24', mtu: 1450 });
  const pod = JSON.parse(
    renderPodmanNetwork({
      name: 'weft',
      id: 'a'.repeat(64),
      subnet: P('198.18.5.0/24'),
      mtu: 1450,
      created: '2026-01-01T00:00:00Z',
    }),
  ) as Record<string, unknown>;
  t.deepEqual(pod.subnets, [{ subnet: '198.18.5.0/24', gateway: '198.18.5.1' }]);
  t.deepEqual(pod.options, { mtu: '1450' });
});
