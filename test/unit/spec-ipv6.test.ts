// The IPv6 keys of the spec: network.ipv6, network.ipv4: false, host.publicIPv6 (and
// WEFT_PUBLIC_IPV6), outputs.docker.ipv6; what they store in <prefix>/config, and every refusal
// positioned at the text to fix.
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import fc from 'fast-check';
import { formatIP, formatPrefix, parseIPv6 } from '../../src/core/net/cidr.js';
import { SpecError, formatProblem } from '../../src/core/base/errors.js';
import { badPublicIPv6, reservedIPv6, reservedIPv6Overlap } from '../../src/core/net/ip-scope.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { parseSpec } from '../../src/core/spec/spec.js';
import { BACKENDS } from '../helpers/backends.js';

const problems = (text: string, env = {}): string[] => {
  try {
    parseSpec('n.yaml', text, BACKENDS, env);
  } catch (e) {
    if (e instanceof SpecError) return e.problems.map(formatProblem);
    throw e;
  }
  return [];
};

const DUAL = 'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: fd18::/48\n';

test('dual stack: the stored config carries EnableIPv6 and IPv6Network as flannel names them; flannel defaults fill the range', (t) => {
  const spec = parseSpec('n.yaml', DUAL, BACKENDS);
  const net = spec.network!;
  t.is(
    net.configJson,
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}',
  );
  t.is(formatPrefix(net.cidr!), '198.18.0.0/16');
  t.is(formatPrefix(net.ipv6!), 'fd18::/48');
  const r6 = net.config.ipv6!;
  t.deepEqual(
    [formatPrefix(r6.network), r6.subnetLen, formatIP(r6.subnetMin), formatIP(r6.subnetMax)],
    ['fd18::/48', 64, 'fd18:0:0:1::', 'fd18:0:0:ffff::'],
  );
  t.is(formatPrefix(net.config.ipv4!.network), '198.18.0.0/16');
  // What weft stores, flanneld reads back to the same config.
  t.deepEqual(checkNetworkConfig(decodeNetworkConfig(net.configJson, BACKENDS)), net.config);
});

test('dual stack with every IPv6 key given: stored as IPv6SubnetLen, IPv6SubnetMin, IPv6SubnetMax', (t) => {
  const spec = parseSpec(
    'n.yaml',
    `${DUAL}    subnetLen: 64\n    subnetMin: "fd18:0:0:1::"\n    subnetMax: "fd18:0:0:ff::"\n  backend: {type: host-gw}\n`,
    BACKENDS,
  );
  t.is(
    spec.network?.configJson,
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","IPv6SubnetLen":64,"IPv6SubnetMin":"fd18:0:0:1::","IPv6SubnetMax":"fd18:0:0:ff::","Backend":{"Type":"host-gw"}}',
  );
  t.is(spec.network?.config.ipv6?.subnetMax && formatIP(spec.network.config.ipv6.subnetMax), 'fd18:0:0:ff::');
});

test('IPv6-only: ipv4: false stores EnableIPv4 false and no Network; the spec has no IPv4 cidr', (t) => {
  const spec = parseSpec('n.yaml', 'network:\n  ipv4: false\n  ipv6:\n    cidr: fd18::/48\n', BACKENDS);
  t.is(
    spec.network?.configJson,
    '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}',
  );
  t.is(spec.network?.cidr, undefined);
  t.is(spec.network?.config.ipv4, undefined);
  t.is(spec.network?.config.ipv6?.subnetLen, 64);
  // ipv4: true is the default, written out.
  t.is(
    parseSpec('n.yaml', 'network:\n  cidr: 198.18.0.0/16\n  ipv4: true\n', BACKENDS).network?.configJson,
    '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}',
  );
});

test('host.publicIPv6, WEFT_PUBLIC_IPV6 wins over it; outputs.docker.ipv6 is kept only when given', (t) => {
  const text = `${DUAL}host:\n  publicIPv6: fd00:2::11\noutputs:\n  docker:\n    ipv6: true\n`;
  const spec = parseSpec('n.yaml', text, BACKENDS);
  t.is(formatIP(spec.host.publicIPv6!), 'fd00:2::11');
  t.deepEqual(spec.outputs.docker, { file: '/run/flannel/docker', key: 'DOCKER_NETWORK_OPTIONS', ipv6: true });
  t.is(
    formatIP(parseSpec('n.yaml', text, BACKENDS, { WEFT_PUBLIC_IPV6: '2001:db8::7' }).host.publicIPv6!),
    '2001:db8::7',
  );
  const plain = parseSpec('n.yaml', 'outputs:\n  docker: {}\n', BACKENDS);
  t.deepEqual(plain.outputs.docker, { file: '/run/flannel/docker', key: 'DOCKER_NETWORK_OPTIONS' });
  t.is(plain.host.publicIPv6, undefined);
  t.is(parseSpec('n.yaml', 'outputs:\n  docker: {ipv6: false}\n', BACKENDS).outputs.docker?.ipv6, false);
});

// Each bad spec: every problem, exactly, positioned at the text to fix.
const malformed: [string, string, Record<string, string>, string[]][] = [
  [
    'an IPv4 CIDR in ipv6.cidr',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: 198.18.0.0/16\n',
    {},
    ['n.yaml:4:11: network.ipv6.cidr must be an IPv6 prefix such as fd00:10:244::/48, got "198.18.0.0/16"'],
  ],
  [
    'an IPv4-mapped prefix',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: "::ffff:198.18.0.0/112"\n',
    {},
    [
      'n.yaml:4:11: network.ipv6.cidr must be an IPv6 prefix such as fd00:10:244::/48, got "::ffff:198.18.0.0/112" (an IPv4-mapped prefix)',
    ],
  ],
  [
    'not a prefix',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: fd18::/129\n',
    {},
    ['n.yaml:4:11: network.ipv6.cidr must be an IPv6 prefix such as fd00:10:244::/48, got "fd18::/129"'],
  ],
  [
    'host bits set',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: fd18::1/48\n',
    {},
    ['n.yaml:4:11: network.ipv6.cidr fd18::1/48 has host bits set; the network address is needed (fd18::/48)'],
  ],
  [
    'link-local overlay',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: fe80::/64\n',
    {},
    [
      'n.yaml:4:11: network.ipv6.cidr fe80::/64 overlaps the link-local block fe80::/10; use a unique local (fd00::/8) or global unicast prefix',
    ],
  ],
  [
    'multicast overlay',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: ff05::/48\n',
    {},
    [
      'n.yaml:4:11: network.ipv6.cidr ff05::/48 overlaps the multicast block ff00::/8; use a unique local (fd00::/8) or global unicast prefix',
    ],
  ],
  [
    'the whole space',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: ::/0\n',
    {},
    [
      'n.yaml:4:11: network.ipv6.cidr ::/0 overlaps ::/8 (the unspecified, loopback, IPv4-mapped and IPv4-compatible addresses); use a unique local (fd00::/8) or global unicast prefix',
    ],
  ],
  [
    'ipv6 without cidr',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    subnetLen: 64\n',
    {},
    ['n.yaml:3:3: network.ipv6.cidr is required (the IPv6 overlay network, e.g. fd00:10:244::/48)'],
  ],
  [
    'ipv6 as a string',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6: fd18::/48\n',
    {},
    ['n.yaml:3:9: network.ipv6 must be a mapping of keys to values'],
  ],
  [
    'unknown key under ipv6',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: fd18::/48\n    subnetlen: 64\n',
    {},
    [
      'n.yaml:5:5: unknown key network.ipv6.subnetlen (did you mean subnetLen?); allowed here: cidr, subnetLen, subnetMin, subnetMax',
    ],
  ],
  [
    'subnetLen over 126',
    `${DUAL}    subnetLen: 127\n`,
    {},
    ['n.yaml:5:16: network.ipv6.subnetLen must be an integer 1..126, got 127'],
  ],
  [
    'subnetLen too short for four subnets',
    `${DUAL}    subnetLen: 49\n`,
    {},
    [
      'n.yaml:5:16: network.ipv6.subnetLen: network must be able to accommodate at least four subnets (network fd18::/48)',
    ],
  ],
  [
    'network too small',
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: fd18::/125\n',
    {},
    [
      'n.yaml:4:11: network.ipv6.cidr: IPv6Network is too small. Minimum useful network prefix is /124 (network fd18::/125)',
    ],
  ],
  [
    'subnetMin outside',
    `${DUAL}    subnetMin: "fd19::"\n`,
    {},
    ['n.yaml:5:16: network.ipv6.subnetMin: IPv6SubnetMin is not in the range of the IPv6Network (network fd18::/48)'],
  ],
  [
    'subnetMax misaligned',
    `${DUAL}    subnetMax: "fd18:0:0:5::1"\n`,
    {},
    [
      'n.yaml:5:16: network.ipv6.subnetMax: IPv6SubnetMax is not on a SubnetLen boundary: fd18:0:0:5::1 (network fd18::/48)',
    ],
  ],
  [
    'subnetMin not an IPv6 address',
    `${DUAL}    subnetMin: 198.18.1.0\n`,
    {},
    ['n.yaml:5:16: network.ipv6.subnetMin must be an IPv6 address such as fd00:10:244:1::, got "198.18.1.0"'],
  ],
  [
    'IPv6 subnetMin above subnetMax',
    `${DUAL}    subnetMin: "fd18:0:0:ff::"\n    subnetMax: "fd18:0:0:1::"\n`,
    {},
    [
      'n.yaml:5:16: network.ipv6.subnetMin: IPv6SubnetMin fd18:0:0:ff:: is above IPv6SubnetMax fd18:0:0:1::, so the range holds no subnet (network fd18::/48)',
    ],
  ],
  [
    'IPv6 subnetMax below the default subnetMin',
    `${DUAL}    subnetMax: "fd18::"\n`,
    {},
    [
      'n.yaml:5:16: network.ipv6.subnetMax: IPv6SubnetMin fd18:0:0:1:: is above IPv6SubnetMax fd18::, so the range holds no subnet (network fd18::/48)',
    ],
  ],
  [
    'IPv4 subnetMin above subnetMax',
    'network:\n  cidr: 198.18.0.0/16\n  subnetMin: 198.18.9.0\n  subnetMax: 198.18.2.0\n',
    {},
    [
      'n.yaml:3:14: network.subnetMin: SubnetMin 198.18.9.0 is above SubnetMax 198.18.2.0, so the range holds no subnet (network 198.18.0.0/16)',
    ],
  ],
  [
    'ipv4: false with IPv4 keys',
    'network:\n  ipv4: false\n  cidr: 198.18.0.0/16\n  subnetLen: 24\n  ipv6:\n    cidr: fd18::/48\n',
    {},
    [
      'n.yaml:3:3: network.cidr must be absent when network.ipv4 is false (an IPv6-only network has no IPv4 range)',
      'n.yaml:4:3: network.subnetLen must be absent when network.ipv4 is false (an IPv6-only network has no IPv4 range)',
    ],
  ],
  [
    'ipv4: false without ipv6',
    'network:\n  ipv4: false\n',
    {},
    [
      'n.yaml:2:9: network.ipv4: false needs network.ipv6 (an IPv6-only network): give network.ipv6.cidr, e.g. fd00:10:244::/48',
    ],
  ],
  [
    'ipv4 not a boolean',
    'network:\n  ipv4: no\n  ipv6:\n    cidr: fd18::/48\n',
    {},
    [
      'n.yaml:2:9: network.ipv4 must be true or false, got "no"',
      'n.yaml:1:1: network.cidr is required (the overlay network, e.g. 10.244.0.0/16) unless network.ipv4 is false (an IPv6-only network)',
    ],
  ],
  [
    'ipv6 alone without ipv4: false',
    'network:\n  ipv6:\n    cidr: fd18::/48\n',
    {},
    [
      'n.yaml:1:1: network.cidr is required (the overlay network, e.g. 10.244.0.0/16) unless network.ipv4 is false (an IPv6-only network)',
    ],
  ],
  [
    'link-local publicIPv6',
    'host:\n  publicIPv6: fe80::1\n',
    {},
    [
      "n.yaml:2:15: host.publicIPv6 fe80::1 is link-local (fe80::/10): peers cannot reach it; give this host's global or unique local IPv6 address",
    ],
  ],
  [
    'multicast publicIPv6',
    'host:\n  publicIPv6: ff02::1\n',
    {},
    [
      "n.yaml:2:15: host.publicIPv6 ff02::1 is multicast (ff00::/8): peers cannot reach it; give this host's global or unique local IPv6 address",
    ],
  ],
  [
    'loopback publicIPv6',
    'host:\n  publicIPv6: "::1"\n',
    {},
    [
      "n.yaml:2:15: host.publicIPv6 ::1 is the loopback address: peers cannot reach it; give this host's global or unique local IPv6 address",
    ],
  ],
  [
    'unspecified publicIPv6',
    'host:\n  publicIPv6: "::"\n',
    {},
    [
      "n.yaml:2:15: host.publicIPv6 :: is the unspecified address: peers cannot reach it; give this host's global or unique local IPv6 address",
    ],
  ],
  [
    'IPv4-mapped publicIPv6',
    'host:\n  publicIPv6: "::ffff:192.0.2.1"\n',
    {},
    [
      "n.yaml:2:15: host.publicIPv6 ::ffff:192.0.2.1 is an IPv4-mapped address (::ffff:0:0/96): peers cannot reach it; give this host's global or unique local IPv6 address",
    ],
  ],
  [
    'IPv4 publicIPv6',
    'host:\n  publicIPv6: 192.0.2.1\n',
    {},
    ['n.yaml:2:15: host.publicIPv6 must be an IPv6 address such as fd00:2::11, got "192.0.2.1"'],
  ],
  [
    'zoned publicIPv6',
    'host:\n  publicIPv6: "fe80::1%eth0"\n',
    {},
    ['n.yaml:2:15: host.publicIPv6 must be an IPv6 address such as fd00:2::11, got "fe80::1%eth0"'],
  ],
  [
    'publicIPv6 inside the IPv6 overlay',
    `${DUAL}host:\n  publicIPv6: "fd18:0:0:5::1"\n`,
    {},
    [
      "n.yaml:6:15: host.publicIPv6 fd18:0:0:5::1 is inside the IPv6 overlay network fd18::/48 (network.ipv6.cidr); give this host's underlay address",
    ],
  ],
  [
    'WEFT_PUBLIC_IPV6 link-local',
    'host:\n  publicIPv6: fd00:2::11\n',
    { WEFT_PUBLIC_IPV6: 'fe80::2' },
    [
      "WEFT_PUBLIC_IPV6 fe80::2 is link-local (fe80::/10): peers cannot reach it; give this host's global or unique local IPv6 address",
    ],
  ],
  [
    'WEFT_PUBLIC_IPV6 not an address',
    '',
    { WEFT_PUBLIC_IPV6: 'nope' },
    ['WEFT_PUBLIC_IPV6 must be an IPv6 address such as fd00:2::11, got "nope"'],
  ],
  [
    'IPv6 with the wireguard backend',
    `${DUAL}  backend: {type: wireguard}\n`,
    {},
    ['n.yaml:3:3: network.ipv6 needs the vxlan or host-gw backend: weft does not program IPv6 over wireguard yet'],
  ],
  [
    'docker ipv6 not a boolean',
    'outputs:\n  docker:\n    ipv6: "yes"\n',
    {},
    ['n.yaml:3:11: outputs.docker.ipv6 must be true or false, got "yes"'],
  ],
];

for (const [name, text, env, want] of malformed) {
  test(`malformed IPv6 spec: ${name}`, (t) => {
    t.deepEqual(problems(text, env), want);
  });
}

test("reserved IPv6 addresses and prefixes; a lease's PublicIPv6 judged like PublicIP", (t) => {
  const a = (s: string) => parseIPv6(s)!;
  t.is(reservedIPv6(a('fd00:2::11')), undefined);
  t.is(reservedIPv6(a('2001:db8::1')), undefined);
  t.is(reservedIPv6(a('febf::1')), 'is link-local (fe80::/10)');
  t.is(reservedIPv6(a('fec0::1')), undefined, 'fe80::/10 ends at febf');
  t.is(reservedIPv6Overlap({ ip: a('fd18::'), len: 48 }), undefined);
  t.is(
    reservedIPv6Overlap({ ip: a('fc00::'), len: 6 }),
    'the link-local block fe80::/10',
    'a short prefix holding fe80::/10',
  );
  t.is(badPublicIPv6(a('fe80::1')), 'PublicIPv6 fe80::1 is link-local (fe80::/10): not a usable unicast address');
  t.is(
    badPublicIPv6(a('fd18:0:0:3::9'), { ip: a('fd18::'), len: 48 }),
    'PublicIPv6 fd18:0:0:3::9 is inside the overlay network fd18::/48',
  );
  t.is(badPublicIPv6(a('fd00:2::3'), { ip: a('fd18::'), len: 48 }), undefined);
});

test('property: any network.ipv6 block gives a Spec or a SpecError, and an accepted one stores what it checked', (t) => {
  const v6 = fc.oneof(
    fc.constantFrom('fd18::/48', 'fd18::/64', '2001:db8::/32', 'fe80::/10', '::/0', '10.0.0.0/8', 'fd18::1/48'),
    fc.string(),
  );
  const addr = fc.oneof(fc.constantFrom('fd18:0:0:1::', 'fd18:0:0:ff::', 'fd18::', '::', 'fe80::1'), fc.string());
  const block = fc.record(
    { cidr: v6, subnetLen: fc.integer({ min: -1, max: 130 }), subnetMin: addr, subnetMax: addr },
    { requiredKeys: ['cidr'] },
  );
  fc.assert(
    fc.property(block, fc.boolean(), (ipv6, v4off) => {
      const text = JSON.stringify({ network: v4off ? { ipv4: false, ipv6 } : { cidr: '198.18.0.0/16', ipv6 } });
      try {
        const net = parseSpec('f.yaml', text, BACKENDS).network!;
        return isDeepStrictEqual(checkNetworkConfig(decodeNetworkConfig(net.configJson, BACKENDS)), net.config);
      } catch (e) {
        return e instanceof SpecError && e.problems.length > 0 && e.problems.every((p) => p.position !== undefined);
      }
    }),
    { numRuns: 1500 },
  );
  t.pass();
});
