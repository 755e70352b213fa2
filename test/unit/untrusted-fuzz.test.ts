// Everything under the etcd prefix is untrusted: any host with write access can store any bytes.
// Whatever is stored, weft's readers return a decision and throw nothing (a config may throw
// only a ConfigError). Property-based, over arbitrary strings and JSON-ish texts built to hit
// the decoders' corners: flannel's field names in odd case (ſ, K), duplicates, raw tokens such
// as 26.0 or -0, escapes, null, deep nesting and huge strings.
import test from 'ava';
import fc from 'fast-check';
import { joinListing, planAcquire } from '../../src/core/fleet/acquire.js';
import { parseIPv4 } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { ConfigError, decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { backendFor } from '../../src/backends/index.js';
import { BACKENDS } from '../helpers/backends.js';

const KEYS = [
  'PublicIP',
  'publicip',
  'PUBLICIP',
  'PublicIPv6',
  'BackendType',
  'BackendData',
  'BackendV6Data',
  'VNI',
  'vni',
  'VtepMAC',
  'vtepmac',
  'Network',
  'networ\u212a',
  'SubnetLen',
  'ſubnetLen',
  'SubnetMin',
  'SubnetMax',
  'EnableIPv4',
  'EnableIPv6',
  'IPv6Network',
  'IPv6SubnetLen',
  'IPv6SubnetMin',
  'IPv6SubnetMax',
  'EnableNFTables',
  'Backend',
  'Bac\u212aend',
  'Type',
  'type',
  'Port',
  'MTU',
  'GBP',
  'Learning',
  'DirectRouting',
  'hostID',
  '__proto__',
  'constructor',
  'x',
];
const TOKENS = [
  'null',
  'true',
  'false',
  '0',
  '-0',
  '1',
  '24',
  '26.0',
  '2.6e1',
  '1e2',
  '-1',
  '4294967295',
  '4294967296',
  '16777216',
  '18446744073709551616',
  '70000',
  '1.5',
  '"10.3.0.0/16"',
  '"10.3.0.0/016"',
  '"::ffff:10.3.0.0/112"',
  '"fc00::/48"',
  '"10.0.0.0/8"',
  '"10.1.5.1"',
  '"::ffff:10.1.5.1"',
  '"0.0.0.0"',
  '"::"',
  '"vxlan"',
  '"host-gw"',
  '"VXLAN"',
  '"constructor"',
  '"__proto__"',
  '"udp"',
  '"02:aa:bb:cc:dd:ee"',
  '"00:00:00:00:fe:80:00:02"',
  String.raw`"10.1.5.\u0031"`,
  String.raw`"\ud800"`,
  '""',
  '"198.18.5.0"',
];

const scalar = fc.oneof(
  fc.constantFrom(...TOKENS),
  fc.string({ maxLength: 12, unit: 'binary' }).map((s) => JSON.stringify(s)),
  fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })).map(String),
);
const nested = fc.integer({ min: 1, max: 6000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`);
const huge = fc.integer({ min: 0, max: 100_000 }).map((n) => `"${'a'.repeat(n)}"`);
/** A JSON-ish text: valid JSON most of the time, built from flannel's names and tricky tokens. */
const jsonish: fc.Arbitrary<string> = fc.letrec<{ v: string; arr: string; obj: string }>((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, scalar, tie('arr'), tie('obj'), nested, huge),
  arr: fc.array(tie('v'), { maxLength: 4 }).map((a) => `[${a.join(',')}]`),
  obj: fc
    .array(fc.tuple(fc.constantFrom(...KEYS), tie('v')), { maxLength: 7 })
    .map((ms) => `{${ms.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`),
})).v;
/** Anything: arbitrary strings (lone surrogates included), JSON-ish texts, and broken JSON-ish texts. */
const anyText = fc.oneof(
  fc.string({ maxLength: 80, unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
  fc.string({ maxLength: 80, unit: 'binary' }),
  jsonish,
  fc
    .tuple(jsonish, fc.nat(), fc.nat({ max: 5 }))
    .map(([s, at, cut]) => s.slice(0, at % (s.length + 1)) + s.slice((at % (s.length + 1)) + cut)),
);
const members = fc
  .array(fc.tuple(fc.constantFrom(...KEYS), fc.oneof(scalar, jsonish)), { maxLength: 3 })
  .map((ms) => ms.map(([k, v]) => `,${JSON.stringify(k)}:${v}`).join(''));
const goodLease = fc
  .tuple(fc.constantFrom('1', 'null', '2', '1.0', '"1"'), members, members, fc.constantFrom('vxlan', 'host-gw'))
  .map(
    ([vni, a, b, type]) =>
      `{"PublicIP":"192.0.2.7","PublicIPv6":null,"BackendType":"${type}","BackendData":{"VNI":${vni},"VtepMAC":"02:aa:bb:cc:dd:ee"${a}}${b}}`,
  );
const leaseValue = fc.oneof(
  anyText,
  goodLease,
  fc
    .tuple(scalar, scalar, jsonish)
    .map(([pub, type, data]) => `{"PublicIP":${pub},"BackendType":${type},"BackendData":${data}}`),
  fc
    .tuple(fc.constantFrom('"192.0.2.7"', '"::ffff:192.0.2.7"'), fc.constantFrom('"vxlan"', '"host-gw"'), jsonish)
    .map(([pub, type, data]) => `{"PublicIP":${pub},"PublicIPv6":null,"BackendType":${type},"BackendData":${data}}`),
);
const subnetKey = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map((c) => `198.18.${c}.0-24`),
  fc.string({ maxLength: 40, unit: 'binary' }),
  fc.array(fc.constantFrom(...'0123456789..--&:afx1980'.split('')), { maxLength: 30 }).map((a) => a.join('')),
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 40 }), fc.constantFrom('', 'x', '0', '1.'))
    .map(([c, len, pre]) => `${pre}198.18.${c}.0-${len}`),
);
const configText = fc.oneof(
  anyText,
  fc
    .tuple(members, fc.constantFrom('"vxlan"', '"host-gw"', '"VXLAN"'), members)
    .map(([a, type, b]) => `{"Network":"198.18.0.0/16"${a},"Backend":{"Type":${type}${b}}}`),
  fc
    .tuple(scalar, scalar, jsonish)
    .map(([net, len, backend]) => `{"Network":${net},"SubnetLen":${len},"Backend":${backend}}`),
  fc
    .tuple(jsonish, jsonish)
    .map(([a, b]) => `{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","VNI":${a},"Port":${b}}}`),
);

const checked = (json: string) => checkNetworkConfig(decodeNetworkConfig(json, BACKENDS));
const CONFIGS = [
  checked('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}'),
  checked('{"Network":"198.18.0.0/16","SubnetLen":28,"Backend":{"Type":"host-gw"}}'),
  checked('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}'),
];
const RUNS = { numRuns: 1000 };

test('validatePeerLease: any key and value give a verdict with a reason, never an exception', (t) => {
  let peers = 0;
  const goodKey = fc.integer({ min: 0, max: 255 }).map((c) => `198.18.${c}.0-24`);
  const entry = fc.oneof(fc.tuple(subnetKey, leaseValue), fc.tuple(goodKey, goodLease));
  fc.assert(
    fc.property(entry, fc.constantFrom(...CONFIGS), ([key, value], config) => {
      const v = validatePeerLease(key, value, config, BACKENDS);
      if (v.ok) peers++;
      return v.ok
        ? (v.lease.subnet?.ip.family ?? 4) === 4 &&
            (v.lease.subnetV6?.ip.family ?? 6) === 6 &&
            (v.lease.subnet !== undefined || v.lease.subnetV6 !== undefined)
        : typeof v.reason === 'string' && v.reason.length > 0 && v.reason.length < 400;
    }),
    RUNS,
  );
  t.log(`${peers} valid peers`);
  t.pass();
});

test('decodeNetworkConfig + checkNetworkConfig + backendFor: a config or a ConfigError, nothing else', (t) => {
  let valid = 0;
  fc.assert(
    fc.property(configText, (text) => {
      try {
        backendFor(checked(text).backend.type);
        valid++;
      } catch (e) {
        return e instanceof ConfigError && e.code === 'E_CONFIG' && e.message.length < 400;
      }
      return true;
    }),
    { numRuns: 1500 },
  );
  t.log(`${valid} valid configs`);
  t.pass();
});

test('joinListing + planAcquire: any listing gives a plan', (t) => {
  const S = '/p/subnets/';
  const O = '/p/weft/owners/';
  const range = CONFIGS[0]?.ipv4;
  if (!range) throw new Error('no range');
  let rev = 1;
  const kv = (key: string, value: string): KeyValue => ({
    key,
    value,
    lease: '7',
    modRevision: String(rev++),
    createRevision: '1',
  });
  const entry = fc.tuple(subnetKey, leaseValue, fc.option(anyText, { nil: undefined }));
  fc.assert(
    fc.property(fc.array(entry, { maxLength: 6 }), (entries) => {
      const listed = joinListing(
        entries.map(([k, v]) => kv(S + k, v)),
        entries.flatMap(([k, , o]) => (o === undefined ? [] : [kv(O + k, o)])),
        S,
        O,
      );
      if (listed.length !== entries.length) return false;
      const d = planAcquire({
        range,
        leases: listed,
        hostID: 'me',
        publicIP: parseIPv4('192.0.2.7') ?? parseIPv4('0.0.0.0')!,
        rng: () => 0.5,
      });
      return ['reuse', 'create', 'full'].includes(d.plan.kind);
    }),
    RUNS,
  );
  t.pass();
});

test('the 5,000-level value that crashed every agent is quarantined, listed and refused everywhere', (t) => {
  const deep = `{"PublicIP":"192.0.2.7","BackendType":"vxlan","BackendData":${'['.repeat(5000)}${']'.repeat(5000)}}`;
  const cfg = CONFIGS[0];
  if (!cfg) throw new Error('no config');
  t.like(validatePeerLease('198.18.5.0-24', deep, cfg, BACKENDS), {
    ok: false,
    reason: 'value is 10,061 bytes, over the 4,096-byte limit',
  });
  const [listed] = joinListing(
    [{ key: '/p/subnets/198.18.5.0-24', value: deep, lease: '7', modRevision: '1', createRevision: '1' }],
    [],
    '/p/subnets/',
    '/p/weft/owners/',
  );
  t.is(listed?.attrs, undefined);
  t.truthy(listed?.subnet, 'its subnet still counts as taken');
  t.throws(
    () => decodeNetworkConfig(`{"Network":"198.18.0.0/16","X":${'['.repeat(5000)}${']'.repeat(5000)}}`, BACKENDS),
    { instanceOf: ConfigError, message: /nested deeper than 32 levels/ },
  );
});
