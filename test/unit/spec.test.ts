import { readFileSync } from 'node:fs';
import test from 'ava';
import fc from 'fast-check';
import { formatIP, formatPrefix } from '../../src/core/net/cidr.js';
import { SpecError, formatProblem } from '../../src/core/base/errors.js';
import { dialAddress, parseSpec } from '../../src/core/spec/spec.js';
import { REPO } from '../helpers/cli.js';
import { BACKENDS } from '../helpers/backends.js';
import { vxlanOptions } from '../../src/backends/vxlan-options.js';

const firstProblem = (text: string, env = {}): string => {
  try {
    parseSpec('n.yaml', text, BACKENDS, env);
  } catch (e) {
    if (e instanceof SpecError && e.problems[0]) return formatProblem(e.problems[0]);
    throw e;
  }
  return 'no problem';
};

test('the examples parse, with every default filled', (t) => {
  const spec = parseSpec('examples/vxlan.yaml', readFileSync(`${REPO}/examples/vxlan.yaml`, 'utf8'), BACKENDS);
  t.is(spec.etcd.prefix, '/coreos.com/network');
  t.is(
    spec.network?.configJson,
    '{"Network":"10.244.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}}',
  );
  t.is(spec.host.leaseTTLSeconds, 86400);
  t.is(spec.host.leaseRenewMarginSeconds, 3600);
  t.deepEqual(spec.host.listen, { host: '127.0.0.1', port: 9473 });
  t.deepEqual(spec.outputs.docker, { file: '/run/flannel/docker', key: 'DOCKER_NETWORK_OPTIONS' });
  t.true(Object.isFrozen(spec) && Object.isFrozen(spec.host) && Object.isFrozen(spec.etcd.endpoints));
  for (const f of ['host-gw.yaml', 'tls.yaml'])
    t.notThrows(() => parseSpec(f, readFileSync(`${REPO}/examples/${f}`, 'utf8'), BACKENDS));
});

test('an empty spec is all defaults', (t) => {
  const spec = parseSpec('n.yaml', '', BACKENDS);
  t.deepEqual(spec.etcd.endpoints, ['http://127.0.0.1:2379']);
  t.is(spec.network, undefined);
  t.is(spec.host.subnetFile, '/run/flannel/subnet.env');
  t.true(spec.host.ipMasq);
  t.deepEqual(spec.outputs, {});
});

test('live config following: on by default with a 5 s hold-down and at most one change per 30 s; each can be set', (t) => {
  t.like(parseSpec('n.yaml', '', BACKENDS).host, {
    followConfig: true,
    configHoldDownSeconds: 5,
    configMinIntervalSeconds: 30,
  });
  t.like(
    parseSpec('n.yaml', 'host:\n  followConfig: false\n  configHoldDown: 1m\n  configMinInterval: 2m\n', BACKENDS).host,
    { followConfig: false, configHoldDownSeconds: 60, configMinIntervalSeconds: 120 },
  );
});

test('environment overrides win over the file', (t) => {
  const text = 'etcd:\n  endpoints: [http://192.0.2.1:2379]\nhost:\n  interfaceRegex: "^eth"\n  publicIP: 192.0.2.5\n';
  const spec = parseSpec('n.yaml', text, BACKENDS, {
    WEFT_ETCD_ENDPOINTS: 'http://192.0.2.7:2379, http://192.0.2.8:2379',
    WEFT_ETCD_PREFIX: '/x//y/',
    WEFT_INTERFACE: 'ens3',
    WEFT_PUBLIC_IP: '192.0.2.9',
  });
  t.deepEqual(spec.etcd.endpoints, ['http://192.0.2.7:2379', 'http://192.0.2.8:2379']);
  t.is(spec.etcd.prefix, '/x/y');
  t.is(spec.host.interface, 'ens3');
  t.is(spec.host.interfaceRegex, undefined);
  t.is(formatIP(spec.host.publicIP!), '192.0.2.9');
  t.is(firstProblem('', { WEFT_PUBLIC_IP: 'nope' }), 'WEFT_PUBLIC_IP must be an IPv4 address, got "nope"');
});

test('TLS and a password over https:// are accepted; an http:// override of WEFT_ETCD_ENDPOINTS is refused and named', (t) => {
  const tls =
    'etcd:\n  endpoints: [https://192.0.2.1:2379]\n  caFile: /ca.pem\n  certFile: /c.pem\n  keyFile: /k.pem\n  username: u\n  passwordFile: /pw\n';
  t.is(parseSpec('n.yaml', tls, BACKENDS).etcd.certFile, '/c.pem');
  t.is(
    parseSpec('n.yaml', 'etcd:\n  endpoints: [https://192.0.2.1:2379]\n  username: u\n  passwordFile: /pw\n', BACKENDS)
      .etcd.passwordFile,
    '/pw',
    'https:// with the system CAs',
  );
  const e = t.throws(() => parseSpec('n.yaml', tls, BACKENDS, { WEFT_ETCD_ENDPOINTS: 'http://192.0.2.7:2379' }), {
    instanceOf: SpecError,
  });
  t.deepEqual(e.problems.map(formatProblem), [
    'n.yaml:7:17: etcd.passwordFile: the password would cross the network in clear text to the http:// endpoints of WEFT_ETCD_ENDPOINTS; use https:// endpoints (with etcd.caFile)',
    'n.yaml:3:11: etcd.caFile is set but WEFT_ETCD_ENDPOINTS use http://, so TLS is off and it would be ignored; use https:// endpoints',
    'n.yaml:4:13: etcd.certFile is set but WEFT_ETCD_ENDPOINTS use http://, so TLS is off and it would be ignored; use https:// endpoints',
    'n.yaml:5:12: etcd.keyFile is set but WEFT_ETCD_ENDPOINTS use http://, so TLS is off and it would be ignored; use https:// endpoints',
  ]);
});

test('relative credential files are read beside the spec; durations parse', (t) => {
  const spec = parseSpec(
    '/etc/weft/network.yaml',
    'etcd:\n  endpoints: [https://192.0.2.1:2379]\n  caFile: ca.pem\n  username: u\n  passwordFile: pw\nhost:\n  leaseTTL: 1h30m\n  leaseRenewMargin: 90s\n',
    BACKENDS,
  );
  t.is(spec.etcd.caFile, '/etc/weft/ca.pem');
  t.is(spec.etcd.passwordFile, '/etc/weft/pw');
  t.is(spec.host.leaseTTLSeconds, 5400);
  t.is(spec.host.leaseRenewMarginSeconds, 90);
  t.is(
    formatPrefix(
      parseSpec('n.yaml', 'network:\n  cidr: 198.18.0.0/16\n  backend: {type: host-gw}\n', BACKENDS).network!.cidr!,
    ),
    '198.18.0.0/16',
  );
});

// Each malformed spec: the exact first message, positioned at the offending text.
const malformed: [string, string, string][] = [
  ['YAML syntax error', 'etcd:\n  endpoints: [http://a:1\n', 'n.yaml:3:1: YAML syntax'],
  ['tab indentation', 'etcd:\n\tprefix: /x\n', 'n.yaml:2:1: YAML syntax'],
  ['duplicate key', 'host:\n  mtu: 1400\n  mtu: 1450\n', 'n.yaml:3:3: YAML syntax: Map keys must be unique'],
  ['top level is a list', '- a\n- b\n', 'n.yaml:1:1: the spec must be a mapping'],
  ['unknown top-level key', 'etcd: {}\nnetwrok:\n  cidr: 10.0.0.0/8\n', 'n.yaml:2:1: unknown key netwrok'],
  ['unknown nested key', 'host:\n  interfce: eth0\n', 'n.yaml:2:3: unknown key host.interfce'],
  ['wrong key case', 'host:\n  ipmasq: true\n', 'n.yaml:2:3: unknown key host.ipmasq (did you mean ipMasq?)'],
  [
    'vni out of range',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    type: vxlan\n    vni: 16777216\n',
    'n.yaml:5:10: network.backend.vni must be an integer 1..16777215, got 16777216',
  ],
  [
    'vni as a string',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    vni: "1"\n',
    'n.yaml:4:10: network.backend.vni must be an integer 1..16777215, got "1"',
  ],
  [
    'vni zero',
    'network:\n  cidr: 10.244.0.0/16\n  backend: {vni: 0}\n',
    'n.yaml:3:18: network.backend.vni must be an integer 1..16777215, got 0',
  ],
  [
    'port out of range',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    port: 70000\n',
    'n.yaml:4:11: network.backend.port must be an integer 1..65535, got 70000',
  ],
  [
    'unsupported backend',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    type: udp\n',
    'n.yaml:4:11: network.backend.type must be vxlan, host-gw or wireguard, got "udp"',
  ],
  [
    'vni on host-gw',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    type: host-gw\n    vni: 2\n',
    'n.yaml:5:5: network.backend.vni applies to the vxlan backend only',
  ],
  [
    'directRouting not a boolean',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    directRouting: yes\n',
    'n.yaml:4:20: network.backend.directRouting must be true or false, got "yes"',
  ],
  ['missing cidr', 'network:\n  subnetLen: 24\n', 'n.yaml:1:1: network.cidr is required'],
  [
    'bad cidr',
    'network:\n  cidr: 10.244.0.0/33\n',
    'n.yaml:2:9: network.cidr must be an IPv4 CIDR such as 10.244.0.0/16, got "10.244.0.0/33"',
  ],
  ['IPv6 cidr', 'network:\n  cidr: fd00::/48\n', 'n.yaml:2:9: network.cidr must be an IPv4 CIDR'],
  ['leading zeros in cidr', 'network:\n  cidr: 10.244.00.0/16\n', 'n.yaml:2:9: network.cidr must be an IPv4 CIDR'],
  ['host bits set', 'network:\n  cidr: 10.244.1.0/16\n', 'n.yaml:2:9: network.cidr 10.244.1.0/16 has host bits set'],
  [
    'half of IPv4',
    'network:\n  cidr: 0.0.0.0/1\n',
    'n.yaml:2:9: network.cidr 0.0.0.0/1 overlaps 0.0.0.0/8 ("this network"); use a private range such as 10.244.0.0/16',
  ],
  [
    'link-local cidr',
    'network:\n  cidr: 169.254.0.0/16\n',
    'n.yaml:2:9: network.cidr 169.254.0.0/16 overlaps the link-local block 169.254.0.0/16',
  ],
  ['cidr as a number', 'network:\n  cidr: 10\n', 'n.yaml:2:9: network.cidr must be an IPv4 CIDR, got 10'],
  [
    'subnetLen too long',
    'network:\n  cidr: 10.244.0.0/16\n  subnetLen: 31\n',
    'n.yaml:3:14: network.subnetLen must be an integer 1..30, got 31',
  ],
  [
    'subnetLen too short for four subnets',
    'network:\n  cidr: 10.244.0.0/16\n  subnetLen: 17\n',
    'n.yaml:3:14: network.subnetLen: network must be able to accommodate at least four subnets',
  ],
  [
    'network too small',
    'network:\n  cidr: 10.244.0.0/29\n',
    'n.yaml:2:9: network.cidr: network is too small. Minimum useful network prefix is /28',
  ],
  [
    'subnetMin outside',
    'network:\n  cidr: 10.244.0.0/16\n  subnetMin: 10.245.1.0\n',
    'n.yaml:3:14: network.subnetMin: SubnetMin is not in the range of the Network',
  ],
  [
    'subnetMax misaligned',
    'network:\n  cidr: 10.244.0.0/16\n  subnetMax: 10.244.7.128\n',
    'n.yaml:3:14: network.subnetMax: SubnetMax is not on a SubnetLen boundary: 10.244.7.128',
  ],
  [
    'subnetMin not an IP',
    'network:\n  cidr: 10.244.0.0/16\n  subnetMin: ten\n',
    'n.yaml:3:14: network.subnetMin must be an IPv4 address such as 192.0.2.11, got "ten"',
  ],
  [
    'endpoint without scheme',
    'etcd:\n  endpoints: [192.0.2.1:2379]\n',
    'n.yaml:2:15: etcd.endpoints: "192.0.2.1:2379" is not an etcd endpoint',
  ],
  [
    'mixed schemes',
    'etcd:\n  endpoints:\n    - http://192.0.2.1:2379\n    - https://192.0.2.2:2379\n',
    'n.yaml:3:7: etcd.endpoints mixes http:// and https://',
  ],
  ['empty endpoint list', 'etcd:\n  endpoints: []\n', 'n.yaml:2:14: etcd.endpoints must not be empty'],
  [
    'relative prefix',
    'etcd:\n  prefix: coreos.com/network\n',
    'n.yaml:2:11: etcd.prefix must be an absolute etcd path',
  ],
  [
    'cert without key',
    'etcd:\n  certFile: /c.pem\n',
    'n.yaml:2:3: etcd.certFile and etcd.keyFile must be given together',
  ],
  [
    'username without password file',
    'etcd:\n  username: weft\n',
    'n.yaml:2:3: etcd.username and etcd.passwordFile must be given together',
  ],
  [
    'password file over http://',
    'etcd:\n  endpoints: [http://192.0.2.1:2379]\n  username: u\n  passwordFile: /pw\n',
    'n.yaml:4:17: etcd.passwordFile: the password would cross the network in clear text to the http:// endpoints of etcd.endpoints; use https:// endpoints',
  ],
  [
    'password file with the default (http://) endpoint',
    'etcd:\n  username: u\n  passwordFile: /pw\n',
    'n.yaml:3:17: etcd.passwordFile: the password would cross the network in clear text',
  ],
  [
    'caFile with http:// endpoints',
    'etcd:\n  endpoints: [http://192.0.2.1:2379]\n  caFile: /ca.pem\n',
    'n.yaml:3:11: etcd.caFile is set but etcd.endpoints use http://, so TLS is off and it would be ignored; use https:// endpoints',
  ],
  [
    'client certificate with http:// endpoints',
    'etcd:\n  endpoints: [http://192.0.2.1:2379]\n  certFile: /c.pem\n  keyFile: /k.pem\n',
    'n.yaml:3:13: etcd.certFile is set but etcd.endpoints use http://',
  ],
  [
    'client certificate without caFile',
    'etcd:\n  endpoints: [https://192.0.2.1:2379]\n  certFile: /c.pem\n  keyFile: /k.pem\n',
    "n.yaml:3:13: etcd.certFile needs etcd.caFile: the CA that signed etcd's server certificate",
  ],
  [
    'key without certificate',
    'etcd:\n  endpoints: [https://192.0.2.1:2379]\n  caFile: /ca.pem\n  keyFile: /k.pem\n',
    'n.yaml:4:3: etcd.certFile and etcd.keyFile must be given together',
  ],
  ['inline password', 'etcd:\n  password: hunter2\n', 'n.yaml:2:3: unknown key etcd.password'],
  [
    'two interface choices',
    'host:\n  interface: eth0\n  canReach: 192.0.2.1\n',
    'n.yaml:3:3: host.interface and host.canReach are alternatives; give only one',
  ],
  [
    'bad regex',
    'host:\n  interfaceRegex: "(eth"\n',
    'n.yaml:2:19: host.interfaceRegex is not a valid regular expression',
  ],
  ['publicIP not IPv4', 'host:\n  publicIP: fd00::1\n', 'n.yaml:2:13: host.publicIP must be an IPv4 address'],
  ['ipMasq as a string', 'host:\n  ipMasq: "true"\n', 'n.yaml:2:11: host.ipMasq must be true or false, got "true"'],
  ['mtu too small', 'host:\n  mtu: 100\n', 'n.yaml:2:8: host.mtu must be an integer 576..65535, got 100'],
  [
    'relative subnet file',
    'host:\n  subnetFile: subnet.env\n',
    'n.yaml:2:15: host.subnetFile must be an absolute path',
  ],
  [
    'duration without unit',
    'host:\n  leaseTTL: 86400\n',
    'n.yaml:2:13: host.leaseTTL must be a duration such as 90s, 60m or 24h, got 86400',
  ],
  ['bad duration', 'host:\n  leaseTTL: 24hours\n', 'n.yaml:2:13: host.leaseTTL must be a whole number of seconds'],
  [
    'margin not shorter than ttl',
    'host:\n  leaseTTL: 1h\n  leaseRenewMargin: 2h\n',
    'n.yaml:3:21: host.leaseRenewMargin (7200s) must be shorter than host.leaseTTL (3600s)',
  ],
  ['bad listen', 'host:\n  listen: 9473\n', 'n.yaml:2:11: host.listen must be an address:port'],
  ['listen without port', 'host:\n  listen: "127.0.0.1"\n', 'n.yaml:2:11: host.listen must be ADDRESS:PORT'],
  [
    'docker key not a shell name',
    'outputs:\n  docker:\n    key: DOCKER-OPTS\n',
    'n.yaml:3:10: outputs.docker.key must be a shell variable name',
  ],
  ['outputs as a list', 'outputs: [a]\n', 'n.yaml:1:10: outputs must be a mapping'],
  ['relative podman path', 'outputs:\n  podman: weft.json\n', 'n.yaml:2:11: outputs.podman must be an absolute path'],
  [
    'mtu on host-gw',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    type: host-gw\n    mtu: 9000\n',
    'n.yaml:5:5: network.backend.mtu applies to the vxlan and wireguard backends only',
  ],
  [
    'backend mtu too small',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    mtu: 600\n',
    'n.yaml:4:10: network.backend.mtu must be',
  ],
  [
    'relative hook path',
    'host:\n  onOutputsChanged: restart-docker\n',
    'n.yaml:2:21: host.onOutputsChanged must be an absolute path',
  ],
  ['maxPeers zero', 'host:\n  maxPeers: 0\n', 'n.yaml:2:13: host.maxPeers must be an integer 1..10000000, got 0'],
  ['maxPeers as text', 'host:\n  maxPeers: many\n', 'n.yaml:2:13: host.maxPeers must be an integer'],
  [
    'followConfig as a string',
    'host:\n  followConfig: "no"\n',
    'n.yaml:2:17: host.followConfig must be true or false, got "no"',
  ],
  [
    'no config hold-down',
    'host:\n  configHoldDown: 0s\n',
    'n.yaml:2:19: host.configHoldDown must be a whole number of seconds of at least 1s',
  ],
  [
    'config interval in ms',
    'host:\n  configMinInterval: 500ms\n',
    'n.yaml:2:22: host.configMinInterval must be a whole number of seconds of at least 1s',
  ],
];

test('host.maxPeers: 65,536 by default, as given otherwise', (t) => {
  t.is(parseSpec('n.yaml', '', BACKENDS).host.maxPeers, 65_536);
  t.is(parseSpec('n.yaml', 'host:\n  maxPeers: 300\n', BACKENDS).host.maxPeers, 300);
});

test('network.backend.mtu becomes Backend.MTU; host.onOutputsChanged is kept as given', (t) => {
  const spec = parseSpec(
    'n.yaml',
    'network:\n  cidr: 10.244.0.0/16\n  backend:\n    mtu: 9000\nhost:\n  onOutputsChanged: /usr/local/bin/restart-docker\n',
    BACKENDS,
  );
  t.is(
    spec.network?.configJson,
    '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":1,"Port":8472,"MTU":9000}}',
  );
  t.is(spec.network ? vxlanOptions(spec.network.config).mtu : 0, 9000);
  t.is(spec.host.onOutputsChanged, '/usr/local/bin/restart-docker');
});

for (const [name, text, want] of malformed) {
  test(`malformed spec: ${name}`, (t) => {
    const got = firstProblem(text);
    t.true(got.startsWith(want), `got: ${got}`);
  });
}

test('every problem in a spec is reported, not only the first', (t) => {
  const e = t.throws(() => parseSpec('n.yaml', 'host:\n  mtu: 1\n  ipMasq: 3\nnetwork:\n  cidr: x\n', BACKENDS), {
    instanceOf: SpecError,
  });
  t.is(e.problems.length, 3);
});

test('property: the spec parser throws nothing but a SpecError, whatever the input', (t) => {
  const yamlish = fc.oneof(
    fc.string(),
    fc.json().map((j) => j),
    fc
      .dictionary(fc.constantFrom('etcd', 'network', 'host', 'outputs', 'x'), fc.jsonValue())
      .map((o) => JSON.stringify(o)),
    fc
      .record({
        cidr: fc.string(),
        subnetLen: fc.integer(),
        backend: fc.record({ type: fc.constantFrom('vxlan', 'host-gw', 'x'), vni: fc.integer(), port: fc.integer() }),
      })
      .map((n) => JSON.stringify({ network: n })),
  );
  fc.assert(
    fc.property(yamlish, (text) => {
      try {
        parseSpec('f.yaml', text, BACKENDS);
      } catch (e) {
        if (!(e instanceof SpecError) || e.problems.length === 0) return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('weft status dials host.listen, a wildcard on loopback, IPv6 in brackets', (t) => {
  t.is(dialAddress({ host: '127.0.0.1', port: 9473 }), '127.0.0.1:9473');
  t.is(dialAddress({ host: '0.0.0.0', port: 9473 }), '127.0.0.1:9473');
  t.is(dialAddress({ host: '::', port: 9473 }), '[::1]:9473');
  t.is(dialAddress({ host: 'fd00::5', port: 80 }), '[fd00::5]:80');
  t.is(dialAddress({ host: '192.0.2.7', port: 1 }), '192.0.2.7:1');
});
