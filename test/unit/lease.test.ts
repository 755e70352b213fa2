import test from 'ava';
import fc from 'fast-check';
import { formatPrefix, ip, maskPrefix, parseIPv4, parsePrefix, prefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { decodeLeaseAttrs, encodeLeaseAttrs, formatSubnetKey, parseSubnetKey } from '../../src/core/flannel/lease.js';
import { decodeVxlanData, encodeVxlanData, vxlanDataOf, vxlanLeaseAttrs } from '../../src/backends/vxlan-lease.js';
import { isUsableVtepMAC, localUnicastMAC, normalizeEthernetMAC, parseMAC } from '../../src/core/net/mac.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import { BACKENDS } from '../helpers/backends.js';

test('§1.2 key vectors: valid keys parse and format back to the same text', (t) => {
  const k = parseSubnetKey('10.12.13.0-24');
  t.is(formatPrefix(k!.v4!), '10.12.13.0/24');
  t.is(k!.v6, undefined);
  t.is(formatSubnetKey(k!), '10.12.13.0-24');
  const d = parseSubnetKey('10.12.13.0-24&fd00:12:13::-56');
  t.is(formatPrefix(d!.v4!), '10.12.13.0/24');
  t.is(formatPrefix(d!.v6!), 'fd00:12:13::/56');
  t.is(formatSubnetKey(d!), '10.12.13.0-24&fd00:12:13::-56');
  const v6only = parseSubnetKey('0.0.0.0-0&fc00:0:0:1::-64');
  t.is(v6only!.v4, undefined);
  t.is(formatSubnetKey(v6only!), '0.0.0.0-0&fc00:0:0:1::-64');
});

test('§1.2 key vectors: rejected keys', (t) => {
  for (const bad of [
    '10',
    '10.12.13.0',
    '10.12.13-24',
    '10.12.13.300-24',
    '10.12.13.0-24hi',
    '&2001::-56',
    '10.12.13.0-24&:12:13:-56',
    '10.12.13.0-24&20011::-56',
    '10.12.13.0-24&2001-56',
    '10.12.13.0-24&2001::',
    '10.12.13.0-24&2001::-56hi',
    '255.255.255.255-32',
    '10.12.13.0-24&FD00::-64',
    'garbage',
    '',
    '10.1.2.0-24/x',
    '010.1.2.0-24',
    '10.1.2.0-128',
  ]) {
    t.is(parseSubnetKey(bad), undefined, bad);
  }
  t.like(parseSubnetKey('10.5.1.0-24&fc00::-64'), { canonical: true });
  t.like(parseSubnetKey('10.5.1.0-24'), { canonical: true });
});

test('§1.2 keys flanneld reads although weft would never write them: the subnet, flagged non-canonical', (t) => {
  // subnetRegex is not anchored at the start, and ParseUint takes leading zeros.
  for (const odd of ['x10.1.2.0-24', '10.1.2.0-024', '1.10.1.2.0-24', 'subnets-old/10.1.2.0-00024']) {
    const k = parseSubnetKey(odd);
    t.is(k?.v4 && formatPrefix(k.v4), '10.1.2.0/24', odd);
    t.false(k?.canonical, odd);
  }
});

test('property: key codec round-trips for every v4 (0..31) and v6 (0..127) prefix', (t) => {
  const v4 = fc
    .record({ v: fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }), len: fc.integer({ min: 0, max: 31 }) })
    .map(({ v, len }) => maskPrefix(prefix(ip(4, v), len)));
  const v6 = fc
    .record({ v: fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), len: fc.integer({ min: 0, max: 127 }) })
    .map(({ v, len }) => maskPrefix(prefix(ip(6, v), len)));
  fc.assert(
    fc.property(
      v4.filter((p) => p.len > 0 || p.ip.value !== 0n),
      fc.option(v6, { nil: undefined }),
      (a, b) => {
        const text = formatSubnetKey(b ? { v4: a, v6: b } : { v4: a });
        const back = parseSubnetKey(text);
        return back !== undefined && formatSubnetKey(back) === text;
      },
    ),
  );
  fc.assert(
    fc.property(fc.string(), (s) => {
      parseSubnetKey(s);
      return true;
    }),
  );
  t.pass();
});

test('§1.3 exact serialisations', (t) => {
  t.is(encodeLeaseAttrs({ publicIP: parseIPv4('1.2.3.4')! }), '{"PublicIP":"1.2.3.4","PublicIPv6":null}');
  t.is(
    encodeLeaseAttrs(vxlanLeaseAttrs(parseIPv4('192.168.64.3')!, { vni: 1, vtepMAC: 'c6:d2:32:6f:8f:44' })),
    '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}',
  );
  t.is(
    encodeLeaseAttrs({ publicIP: parseIPv4('10.0.0.2')!, backendType: 'host-gw' }),
    '{"PublicIP":"10.0.0.2","PublicIPv6":null,"BackendType":"host-gw"}',
  );
});

test('lease values decode as Go does, and bad ones are rejected with a reason', (t) => {
  const ok = decodeLeaseAttrs(
    '{"publicip":"10.0.0.2","BackendType":"vxlan","BackendData":{ "VNI" : 1, "VtepMAC":"C6-D2-32-6F-8F-44"}}',
  );
  t.true(ok.ok);
  if (ok.ok) {
    t.is(ok.value.backendData, '{"VNI":1,"VtepMAC":"C6-D2-32-6F-8F-44"}', 'raw BackendData is compacted');
    const vx = decodeVxlanData(ok.value.backendData);
    t.deepEqual(vx.ok ? vx.value : undefined, { vni: 1, vtepMAC: 'c6:d2:32:6f:8f:44' });
  }
  for (const bad of [
    'not json',
    '[]',
    '{"PublicIP":null}',
    '{"PublicIP":""}',
    '{"PublicIP":"fd00::1"}',
    '{"PublicIP":"1.2.3.4","PublicIPv6":""}',
    '{"PublicIP":"1.2.3.4","BackendType":5}',
  ]) {
    t.false(decodeLeaseAttrs(bad).ok, bad);
  }
  t.deepEqual(
    decodeVxlanData('{"VtepMAC":"0e:00:00:00:00:01","VNI":null}'),
    { ok: true, value: { vtepMAC: '0e:00:00:00:00:01' } },
    'no VNI: still a peer',
  );
  t.like(
    decodeLeaseAttrs('{}'),
    { ok: true, value: { publicIP: { value: 0n } } },
    "a missing PublicIP is Go's zero value, 0.0.0.0",
  );
  t.like(decodeLeaseAttrs(`{"PublicIP":"10.0.0.1","BackendData":${'['.repeat(5000)}${']'.repeat(5000)}}`), {
    ok: false,
    reason: 'value is 10,038 bytes, over the 4,096-byte limit',
  });
  t.false(decodeVxlanData('{"VNI":1,"VtepMAC":5}').ok);
  t.false(decodeVxlanData('{"VNI":-1,"VtepMAC":"c6:d2:32:6f:8f:44"}').ok);
  t.false(decodeVxlanData('{"VNI":1,"VtepMAC":"00:00:00:00:fe:80:00:00"}').ok, '8-byte MACs are not Ethernet');
  t.is(encodeVxlanData({ vni: 7, vtepMAC: 'aa:bb:cc:dd:ee:ff' }), '{"VNI":7,"VtepMAC":"aa:bb:cc:dd:ee:ff"}');
});

test('MAC parsing accepts what Go ParseMAC accepts', (t) => {
  t.is(normalizeEthernetMAC('00:1A:2b:3c:4d:5e'), '00:1a:2b:3c:4d:5e');
  t.is(normalizeEthernetMAC('00-1a-2b-3c-4d-5e'), '00:1a:2b:3c:4d:5e');
  t.is(normalizeEthernetMAC('001a.2b3c.4d5e'), '00:1a:2b:3c:4d:5e');
  t.is(parseMAC('00:00:00:00:fe:80:00:00')?.length, 8);
  t.is(parseMAC('00:1a:2b:3c:4d'), undefined);
  t.is(parseMAC('00:1a:2b:3c:4d:5e:'), undefined);
});

test('§2.5 NewHardwareAddr: locally administered unicast', (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 6, maxLength: 6 }), (bytes) => {
      const mac = localUnicastMAC(bytes);
      const first = parseMAC(mac)![0]!;
      return (first & 1) === 0 && (first & 2) === 2;
    }),
  );
  t.true(isUsableVtepMAC('02:00:00:00:00:01'));
  t.false(isUsableVtepMAC('01:00:5e:00:00:01'), 'multicast');
  t.false(isUsableVtepMAC('00:00:00:00:00:00'));
});

test('peer validation rejects what could hijack traffic or choke flanneld', (t) => {
  const config = checkNetworkConfig(
    decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}', BACKENDS),
  );
  const good =
    '{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:aa:bb:cc:dd:ee"}}';
  const v = validatePeerLease('198.18.5.0-24', good, config, BACKENDS);
  t.true(v.ok);
  if (v.ok) t.is(vxlanDataOf(v.lease)?.vtepMAC, '02:aa:bb:cc:dd:ee');
  const cases: [string, string, RegExp][] = [
    ['garbage', good, /not a flannel subnet key/],
    ['198.18.5.7-24', good, /not aligned/],
    ['198.19.5.0-24', good, /outside the network/],
    ['198.18.0.0-16', good, /not a \/24/],
    ['198.18.5.0-24', '{"PublicIP":"192.0.2.2","PublicIPv6":""}', /PublicIPv6/],
    ['198.18.5.0-24', '{"PublicIP":"0.0.0.0","PublicIPv6":null}', /not a usable unicast/],
    [
      '198.18.5.0-24',
      '{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"bad"}}',
      /VtepMAC/,
    ],
    ['198.18.5.0-24', '{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan"}', /without BackendData/],
    ['0.0.0.0-0&fc00::-64', good, /IPv6-only/],
  ];
  for (const [key, value, reason] of cases) {
    const r = validatePeerLease(key, value, config, BACKENDS);
    t.false(r.ok, key);
    if (!r.ok) t.regex(r.reason, reason, `${key} ${value}`);
  }
  const odd = validatePeerLease('198.18.05.0-24', good, config, BACKENDS);
  t.like(
    odd,
    { ok: false, reason: 'key "198.18.05.0-24" is not a flannel subnet key' },
    'ParseIP refuses leading zeros',
  );
  const x = validatePeerLease('x198.18.5.0-024', good, config, BACKENDS);
  t.like(x, {
    ok: false,
    reason:
      'key "x198.18.5.0-024" is not in canonical form (flanneld reads it as 198.18.5.0/24; weft writes 198.18.5.0-24)',
  });
  if (!x.ok)
    t.is(
      x.subnet && formatPrefix(x.subnet),
      '198.18.5.0/24',
      'a key weft will not program still names the subnet flanneld reads',
    );
  const bad = validatePeerLease('198.18.9.0-24', 'nope', config, BACKENDS);
  t.false(bad.ok);
  if (!bad.ok)
    t.is(
      bad.subnet && formatPrefix(bad.subnet),
      '198.18.9.0/24',
      'a rejected lease still names its subnet so it counts as taken',
    );
  t.true(
    validatePeerLease(
      '198.18.6.0-24',
      '{"PublicIP":"192.0.2.3","PublicIPv6":null,"BackendType":"host-gw"}',
      config,
      BACKENDS,
    ).ok,
  );
  t.is(parsePrefix('198.18.6.0/24')?.len, 24);
});
