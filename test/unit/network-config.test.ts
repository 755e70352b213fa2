import test from 'ava';
import fc from 'fast-check';
import { formatIP, formatPrefix } from '../../src/core/net/cidr.js';
import { capacityOf, checkNetworkConfig, diffConfigs } from '../../src/core/flannel/config-check.js';
import { ConfigError, decodeNetworkConfig, encodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { backendFor } from '../../src/backends/index.js';
import { BACKENDS } from '../helpers/backends.js';
import { vxlanOptions } from '../../src/backends/vxlan-options.js';

const check = (json: string) => checkNetworkConfig(decodeNetworkConfig(json, BACKENDS));

test('§2.3: parse + check of {"network": "10.3.0.0/16"}', (t) => {
  const c = check('{ "network": "10.3.0.0/16" }');
  t.is(formatPrefix(c.ipv4!.network), '10.3.0.0/16');
  t.is(formatIP(c.ipv4!.subnetMin), '10.3.1.0');
  t.is(formatIP(c.ipv4!.subnetMax), '10.3.255.0');
  t.is(c.ipv4!.subnetLen, 24);
  t.is(c.backend.type, 'udp', 'an absent Backend means udp in flannel code');
});

test('§2.3: IPv6-only parse + check', (t) => {
  const c = check('{ "enableIPv6": true, "ipv6Network": "fc00::/48", "enableIPv4": false }');
  t.is(c.ipv4, undefined);
  t.is(formatPrefix(c.ipv6!.network), 'fc00::/48');
  t.is(formatIP(c.ipv6!.subnetMin), 'fc00:0:0:1::');
  t.is(formatIP(c.ipv6!.subnetMax), 'fc00:0:0:ffff::');
  t.is(c.ipv6!.subnetLen, 64);
});

test('§2.3: parse-only keeps values as given', (t) => {
  const r = decodeNetworkConfig(
    '{ "Network": "10.3.0.0/16", "SubnetMin": "10.3.5.0", "SubnetMax": "10.3.8.0", "SubnetLen": 28 }',
    BACKENDS,
  );
  t.is(formatPrefix(r.network!), '10.3.0.0/16');
  t.is(formatIP(r.subnetMin!), '10.3.5.0');
  t.is(formatIP(r.subnetMax!), '10.3.8.0');
  t.is(r.subnetLen, 28);
  const r6 = decodeNetworkConfig(
    '{ "EnableIPv6": true, "IPv6Network": "fc00::/48", "IPv6SubnetMin": "fc00:0:0:1::", "IPv6SubnetMax": "fc00:0:0:f::", "IPv6SubnetLen": 124, "enableIPv4": false }',
    BACKENDS,
  );
  t.is(formatPrefix(r6.ipv6Network!), 'fc00::/48');
  t.is(formatIP(r6.ipv6SubnetMin!), 'fc00:0:0:1::');
  t.is(formatIP(r6.ipv6SubnetMax!), 'fc00:0:0:f::');
  t.is(r6.ipv6SubnetLen, 124);
});

const derived: [string, string | [number, string, string]][] = [
  ['{"Network":"10.0.0.0/8"}', [24, '10.0.1.0', '10.255.255.0']],
  ['{"Network":"10.5.0.0/22"}', [24, '10.5.1.0', '10.5.3.0']],
  ['{"Network":"10.5.0.0/23"}', [25, '10.5.0.128', '10.5.1.128']],
  ['{"Network":"10.5.0.0/28"}', [30, '10.5.0.4', '10.5.0.12']],
  ['{"Network":"10.5.0.0/29"}', 'network is too small. Minimum useful network prefix is /28'],
  ['{"Network":"10.3.0.0/16","SubnetLen":28}', [28, '10.3.0.16', '10.3.255.240']],
  ['{"Network":"10.3.0.0/16","SubnetLen":18}', [18, '10.3.64.0', '10.3.192.0']],
  ['{"Network":"10.3.0.0/16","SubnetLen":17}', 'network must be able to accommodate at least four subnets'],
  ['{"Network":"10.3.0.0/16","SubnetLen":31}', 'SubnetLen must be less than /31'],
  ['{"Network":"0.0.0.0/0"}', 'please define a correct Network parameter in the flannel config'],
  ['{}', 'please define a correct Network parameter in the flannel config'],
  ['{"Network":"10.3.0.0/16","SubnetMin":"10.4.0.0"}', 'SubnetMin is not in the range of the Network'],
  ['{"Network":"10.3.0.0/16","SubnetMax":"10.4.0.0"}', 'SubnetMax is not in the range of the Network'],
  ['{"Network":"10.3.0.0/16","SubnetMin":"10.3.1.128"}', 'SubnetMin is not on a SubnetLen boundary: 10.3.1.128'],
  ['{"Network":"10.3.0.0/16","SubnetMax":"10.3.1.128"}', 'SubnetMax is not on a SubnetLen boundary: 10.3.1.128'],
  ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/63"}', [65, 'fc00::8000:0:0:0', 'fc00:0:0:1:8000::']],
  ['{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/124"}', [126, 'fc00::4', 'fc00::c']],
  [
    '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/125"}',
    'IPv6Network is too small. Minimum useful network prefix is /124',
  ],
  [
    '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":127}',
    'SubnetLen must be less than /127',
  ],
  [
    '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":49}',
    'network must be able to accommodate at least four subnets',
  ],
  ['{"EnableIPv4":false,"EnableIPv6":true}', 'please define a correct IPv6Network parameter in the flannel config'],
];

for (const [json, want] of derived) {
  test(`§2.4: ${json}`, (t) => {
    if (typeof want === 'string') {
      const e = t.throws(() => check(json), { instanceOf: ConfigError });
      t.true(e.message.startsWith(want), e.message);
      return;
    }
    const c = check(json);
    const r = c.ipv4 ?? c.ipv6!;
    t.deepEqual([r.subnetLen, formatIP(r.subnetMin), formatIP(r.subnetMax)], want);
  });
}

test('§12 item 20: an IPv4 CIDR in IPv6Network is rejected', (t) => {
  const e = t.throws(() => check('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"10.0.0.0/8"}'), {
    instanceOf: ConfigError,
  });
  t.regex(e.message, /IPv6Network must be an IPv6 CIDR/);
});

test('SubnetMin above SubnetMax is refused in both families (flanneld forgets it), naming the bound that was given', (t) => {
  const cases: [string, string, string][] = [
    [
      '{"Network":"10.3.0.0/16","SubnetMin":"10.3.9.0","SubnetMax":"10.3.2.0"}',
      'SubnetMin 10.3.9.0 is above SubnetMax 10.3.2.0, so the range holds no subnet',
      'SubnetMin',
    ],
    // Only SubnetMax given, below the default SubnetMin (the second subnet): the given bound is blamed.
    [
      '{"Network":"10.3.0.0/16","SubnetMax":"10.3.0.0"}',
      'SubnetMin 10.3.1.0 is above SubnetMax 10.3.0.0, so the range holds no subnet',
      'SubnetMax',
    ],
    [
      '{"EnableIPv6":true,"Network":"10.3.0.0/16","IPv6Network":"fd18::/48","IPv6SubnetMin":"fd18:0:0:ff::","IPv6SubnetMax":"fd18:0:0:1::"}',
      'IPv6SubnetMin fd18:0:0:ff:: is above IPv6SubnetMax fd18:0:0:1::, so the range holds no subnet',
      'IPv6SubnetMin',
    ],
    [
      '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","IPv6SubnetMax":"fd18::"}',
      'IPv6SubnetMin fd18:0:0:1:: is above IPv6SubnetMax fd18::, so the range holds no subnet',
      'IPv6SubnetMax',
    ],
  ];
  for (const [json, message, field] of cases) {
    const e = t.throws(() => check(json), { instanceOf: ConfigError }, json);
    t.is(e.message, message);
    t.is(e.field, field);
  }
  // Equal bounds are one subnet: accepted.
  t.is(capacityOf(check('{"Network":"10.3.0.0/16","SubnetMin":"10.3.5.0","SubnetMax":"10.3.5.0"}').ipv4!), 1n);
  t.is(
    capacityOf(
      check(
        '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","IPv6SubnetMin":"fd18:0:0:5::","IPv6SubnetMax":"fd18:0:0:5::"}',
      ).ipv6!,
    ),
    1n,
  );
});

test('decoding follows Go: case-insensitive keys, last duplicate wins, Network masked, unset zero values', (t) => {
  const r = decodeNetworkConfig('{"network":"10.3.5.7/16","NETWORK":"10.9.5.7/16","SubnetMin":"0.0.0.0"}', BACKENDS);
  t.is(formatPrefix(r.network!), '10.9.0.0/16');
  t.is(r.subnetMin, undefined);
  t.is(decodeNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"type":"VXLAN"}}', BACKENDS).backend.type, 'vxlan');
  t.is(decodeNetworkConfig('{"Network":"10.0.0.0/8","Backend":null}', BACKENDS).backend.type, '');
  t.is(vxlanOptions(decodeNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}', BACKENDS)).vni, 1);
  t.throws(() => decodeNetworkConfig('{"Network":"fc00::/8"}', BACKENDS), { message: /invalid IPv4 CIDR/ });
  t.throws(() => decodeNetworkConfig('{"Network":"10.0.0.0/8","Backend":"vxlan"}', BACKENDS), {
    message: /error decoding Backend property of config/,
  });
  t.throws(() => decodeNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan","VNI":"1"}}', BACKENDS), {
    message: /error decoding VXLAN backend config/,
  });
  t.throws(() => decodeNetworkConfig('{"Network":"10.0.0.0/8","SubnetLen":-1}', BACKENDS), { instanceOf: ConfigError });
});

test('stored vxlan options: null is unset; VNI outside 0..16777215 and Port outside 0..65535 are refused, naming the field', (t) => {
  const vx = decodeNetworkConfig(
    '{"Network":"10.0.0.0/8","SubnetLen":null,"Backend":{"Type":"vxlan","VNI":null,"Port":null,"DirectRouting":null}}',
    BACKENDS,
  );
  t.deepEqual(vxlanOptions(vx), { vni: 1, port: 0, mtu: 0, gbp: false, learning: false, directRouting: false });
  t.is(vx.subnetLen, 0);
  for (const [opt, field] of [
    ['"VNI":16777216', 'Backend.VNI'],
    ['"VNI":-1', 'Backend.VNI'],
    ['"Port":65536', 'Backend.Port'],
  ] as const) {
    const e = t.throws(
      () => decodeNetworkConfig(`{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan",${opt}}}`, BACKENDS),
      { instanceOf: ConfigError },
    );
    t.is(e.field, field);
    t.is(e.code, 'E_CONFIG');
  }
});

test('a backend type that names an Object property is just an unknown backend', (t) => {
  for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    const c = check(`{"Network":"10.0.0.0/8","Backend":{"Type":"${type}"}}`);
    t.is(c.backend.type, type.toLowerCase());
    t.throws(() => backendFor(c.backend.type), { instanceOf: ConfigError, message: /is not supported by weft/ });
  }
  t.is(backendFor('vxlan').type, 'vxlan');
});

test('checking never mutates its input (flannel does)', (t) => {
  const raw = decodeNetworkConfig('{"Network":"10.3.0.0/16"}', BACKENDS);
  const before = encodeNetworkConfig(raw);
  checkNetworkConfig(raw);
  t.is(raw.subnetLen, 0);
  t.is(raw.subnetMin, undefined);
  t.is(encodeNetworkConfig(raw), before);
  t.true(Object.isFrozen(checkNetworkConfig(raw)));
});

test('fuzz seeds (§2.3) never throw anything but ConfigError', (t) => {
  for (const seed of [
    '{"Network":"10.0.0.0/8"}',
    '{"Network":"10.0.0.0/8","SubnetLen":24,"Backend":{"Type":"vxlan"}}',
    '{"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}',
    '{"Network":"10.0.0.0/8","SubnetMin":"10.0.1.0","SubnetMax":"10.0.20.0"}',
    '',
    '{}',
  ]) {
    try {
      check(seed);
    } catch (e) {
      t.true(e instanceof ConfigError, seed);
    }
  }
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json()), (s) => {
      try {
        check(s);
      } catch (e) {
        if (!(e instanceof ConfigError)) return false;
      }
      return true;
    }),
  );
});

test('encode round-trips and capacity counts host subnets', (t) => {
  const text =
    '{"Network":"10.3.0.0/16","SubnetLen":24,"SubnetMin":"10.3.5.0","SubnetMax":"10.3.8.0","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}';
  t.is(encodeNetworkConfig(decodeNetworkConfig(text, BACKENDS)), text);
  t.is(capacityOf(check(text).ipv4!), 4n);
  t.is(capacityOf(check('{"Network":"10.3.0.0/16"}').ipv4!), 255n);
});

test('diffConfigs compares effective settings, not JSON text', (t) => {
  const a = check('{"Network":"10.3.0.0/16","Backend":{"Type":"vxlan"}}');
  const b = check('{"network":"10.3.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}}');
  t.deepEqual(diffConfigs(a, b), []);
  const c = check('{"Network":"10.4.0.0/16","Backend":{"Type":"host-gw"}}');
  t.true(diffConfigs(a, c).includes('- Network: 10.3.0.0/16'));
  t.true(diffConfigs(a, c).includes('+ Backend.Type: host-gw'));
});
