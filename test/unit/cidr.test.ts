import test from 'ava';
import fc from 'fast-check';
import {
  contains,
  formatIP,
  formatPrefix,
  ip,
  isAligned,
  maskPrefix,
  nextPrefix,
  overlaps,
  parseIP,
  parseIPv4,
  parseIPv6,
  parsePrefix,
  prefix,
} from '../../src/core/net/cidr.js';

const P = (s: string) => {
  const p = parsePrefix(s);
  if (!p) throw new Error(`bad prefix ${s}`);
  return p;
};
const I = (s: string) => {
  const a = parseIP(s);
  if (!a) throw new Error(`bad ip ${s}`);
  return a;
};

test('IPv4 parse and format (pkg/ip vectors)', (t) => {
  const a = I('1.2.3.4');
  t.is(a.value, 0x01020304n);
  t.is(formatIP(a), '1.2.3.4');
  t.is(parseIPv4('2001:db8::1'), undefined);
});

test('IPv4 parsing is strict like Go net.ParseIP', (t) => {
  for (const bad of [
    '01.2.3.4',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '1.2.3.-1',
    ' 1.2.3.4',
    '1.2.3.4 ',
    '',
    '1..3.4',
    '0x1.2.3.4',
  ]) {
    t.is(parseIPv4(bad), undefined, bad);
  }
  t.is(formatIP(I('0.0.0.0')), '0.0.0.0');
  t.is(formatIP(I('255.255.255.255')), '255.255.255.255');
});

test('IPv6 format is Go-canonical', (t) => {
  const cases: [string, string][] = [
    ['fc00::1', 'fc00::1'],
    ['::', '::'],
    ['FD00:0:0:0:0:0:0:1', 'fd00::1'],
    ['fc00:0:0:0:8000:0:0:0', 'fc00::8000:0:0:0'], // tie: leftmost run shortened
    ['fc00:0:0:1:8000:0:0:0', 'fc00:0:0:1:8000::'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not shortened
    ['fd00:12:13::', 'fd00:12:13::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    // Go would print an IPv4-mapped address as 1.2.3.4, which flannel's own key regex cannot
    // read back; weft keeps hex groups so every key it writes parses again.
    ['::ffff:1.2.3.4', '::ffff:102:304'],
  ];
  for (const [input, want] of cases) t.is(formatIP(I(input)), want, input);
  for (const bad of [':12:13:', '20011::', '2001', '1:2:3:4:5:6:7:8:9', '1::2::3', 'fe80::1%eth0', 'g::1'])
    t.is(parseIPv6(bad), undefined, bad);
});

test('IP4Net vectors (pkg/ip)', (t) => {
  const n = P('1.2.3.0/24');
  t.is(formatPrefix(n), '1.2.3.0/24');
  t.true(overlaps(n, n));
  t.true(overlaps(n, P('1.2.0.0/16')));
  t.false(overlaps(n, P('1.2.4.0/24')));
  t.false(overlaps(n, P('7.2.4.0/22')));
  t.true(contains(n, I('1.2.3.0')));
  t.true(contains(n, I('1.2.3.4')));
  t.false(contains(n, I('1.2.4.0')));
  t.is(parsePrefix('2001:db8::/64')?.ip.family, 6);
});

test('IP6Net vectors (pkg/ip)', (t) => {
  const n = P('fc00:1::/64');
  t.true(overlaps(n, n));
  t.true(overlaps(n, P('fc00::/16')));
  t.false(overlaps(n, P('fc00:2::/64')));
  t.false(overlaps(n, P('fb00:2::/48')));
  t.true(contains(n, I('fc00:1::')));
  t.true(contains(n, I('fc00:1::1')));
  t.false(contains(n, I('fc00:2::')));
  t.is(formatPrefix(n), 'fc00:1::/64');
});

test('prefix parsing rejects bad lengths and masks on request', (t) => {
  for (const bad of ['10.0.0.0/33', '10.0.0.0/024', '10.0.0.0/', '10.0.0.0', 'fc00::/129', '10.0.0.0/-1'])
    t.is(parsePrefix(bad), undefined, bad);
  t.is(formatPrefix(maskPrefix(P('10.3.5.7/16'))), '10.3.0.0/16');
  t.is(formatPrefix(nextPrefix(P('10.3.255.0/24')) ?? P('0.0.0.0/0')), '10.4.0.0/24');
  t.is(nextPrefix(P('255.255.255.0/24')), undefined);
  t.true(isAligned(I('10.3.1.0'), 24));
  t.false(isAligned(I('10.3.1.128'), 24));
  t.false(overlaps(P('10.0.0.0/8'), P('fc00::/8')));
});

test('property: IPv4 and IPv6 text round-trips', (t) => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), (v) => parseIPv4(formatIP(ip(4, v)))?.value === v),
  );
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (v) => {
      const text = formatIP(ip(6, v));
      return parseIPv6(text)?.value === v && text === text.toLowerCase();
    }),
  );
  t.pass();
});

test('property: overlap is symmetric and implied by containment', (t) => {
  const arbPrefix = fc
    .record({ v: fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), len: fc.integer({ min: 0, max: 32 }) })
    .map(({ v, len }) => maskPrefix(prefix(ip(4, v), len)));
  fc.assert(
    fc.property(arbPrefix, arbPrefix, (a, b) => {
      if (overlaps(a, b) !== overlaps(b, a)) return false;
      if (contains(a, b.ip) && a.len <= b.len && !overlaps(a, b)) return false;
      return parsePrefix(formatPrefix(a))?.ip.value === a.ip.value;
    }),
  );
  t.pass();
});

test("IPv6 syntax is Go's: an embedded IPv4 only at the end", (t) => {
  t.is(formatIP(parseIPv6('::ffff:1.2.3.4')!), '::ffff:102:304');
  t.is(formatIP(parseIPv6('1:2:3:4:5:6:1.2.3.4')!), '1:2:3:4:5:6:102:304');
  t.is(formatIP(parseIPv6('1::1.2.3.4')!), '1::102:304');
  for (const bad of [
    '1.2.3.4::',
    '1:1.2.3.4::',
    '1:2:3:4:5:1.2.3.4',
    '::1.2.3.04',
    '1:2:3:4:5:6:7:8::',
    '12345::',
    ':1::',
    '1::2:',
    'fe80::1%eth0',
    '::1.2.3',
  ]) {
    t.is(parseIP(bad), undefined, bad);
  }
});
