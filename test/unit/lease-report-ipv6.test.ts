// `weft leases` with IPv6: both halves of a dual-stack key judged on their own (as the agents
// program them), IPv6-only leases named by their IPv6 subnet and PublicIPv6, the v6 VTEP MAC, and
// the table's IPv6 columns (only when some lease has an IPv6 half).
import test from 'ava';
import { type NetworkConfig, checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { type LeaseRow, leaseRow, leaseRows, renderLeaseTable } from '../../src/core/fleet/lease-report.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { BACKENDS } from '../helpers/backends.js';

const cfg = (json: string): NetworkConfig => checkNetworkConfig(decodeNetworkConfig(json, BACKENDS));
const V4 = cfg('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","VNI":1}}');
const DUAL = cfg(
  '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan","VNI":1}}',
);
const V6 = cfg('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}');
const NOW = Date.parse('2030-01-01T00:00:00Z');
const kv = (subnetKey: string, value: string, createRevision = '5'): KeyValue => ({
  key: `/p/subnets/${subnetKey}`,
  value,
  lease: '7',
  modRevision: createRevision,
  createRevision,
});
const row = (subnetKey: string, value: string, config = DUAL): LeaseRow =>
  leaseRow(subnetKey, kv(subnetKey, value), config, 600, undefined, NOW, BACKENDS);

/** flanneld's dual-stack vxlan value (flannel-ipv6-wireguard.md §1.5), with overrides. */
const dual = (n: number, o: Record<string, unknown> = {}) =>
  JSON.stringify({
    PublicIP: `192.0.2.${n}`,
    PublicIPv6: `fd00:2::${n}`,
    BackendType: 'vxlan',
    BackendData: { VNI: 1, VtepMAC: `02:00:00:00:00:0${n}` },
    BackendV6Data: { VNI: 1, VtepMAC: `02:00:00:00:66:0${n}` },
    ...o,
  });
const v6only = (n: number, o: Record<string, unknown> = {}) =>
  JSON.stringify({
    PublicIP: '0.0.0.0',
    PublicIPv6: `fd00:2::${n}`,
    BackendType: 'vxlan',
    BackendV6Data: { VNI: 1, VtepMAC: `02:00:00:00:66:0${n}` },
    ...o,
  });

test('a dual-stack vxlan lease: both subnets, both public addresses, both VTEP MACs', (t) => {
  t.deepEqual(row('198.18.3.0-24&fd18:0:0:3::-64', dual(3)), {
    subnet: '198.18.3.0/24',
    ipv6Subnet: 'fd18:0:0:3::/64',
    publicIP: '192.0.2.3',
    publicIPv6: 'fd00:2::3',
    backendType: 'vxlan',
    vtepMAC: '02:00:00:00:00:03',
    vtepMACv6: '02:00:00:00:66:03',
    vni: 1,
    expiresAt: '2030-01-01T00:10:00.000Z',
    ttlSeconds: 600,
    host: null,
    key: '/p/subnets/198.18.3.0-24&fd18:0:0:3::-64',
    status: 'ok',
    malformed: null,
  });
});

test('an IPv6-only lease: no IPv4 subnet, PublicIP 0.0.0.0 shown as null, the VNI from BackendV6Data; ok in a dual-stack or IPv6-only network', (t) => {
  for (const config of [DUAL, V6]) {
    t.like(row('0.0.0.0-0&fd18:0:0:5::-64', v6only(5), config), {
      subnet: null,
      ipv6Subnet: 'fd18:0:0:5::/64',
      publicIP: null,
      publicIPv6: 'fd00:2::5',
      vtepMAC: null,
      vtepMACv6: '02:00:00:00:66:05',
      vni: 1,
      status: 'ok',
      malformed: null,
    });
  }
});

test("mixed families: a v4-only network shows a dual-stack lease's IPv6 half without judging it; an IPv6-only lease there is stranded", (t) => {
  t.like(row('198.18.3.0-24&fd18:0:0:3::-64', dual(3, { PublicIPv6: null, BackendV6Data: null }), V4), {
    status: 'ok',
    malformed: null,
    ipv6Subnet: 'fd18:0:0:3::/64',
    publicIPv6: null,
    vtepMACv6: null,
  });
  t.like(row('198.18.3.0-24&fd18:0:0:3::-64', dual(3), V4), {
    status: 'ok',
    malformed: null,
    publicIPv6: 'fd00:2::3',
    vtepMACv6: '02:00:00:00:66:03',
  });
  t.like(row('0.0.0.0-0&fd18:0:0:5::-64', v6only(5), V4), {
    status: 'stranded',
    malformed: 'stranded: an IPv6-only lease, but the network config has no IPv6 network',
    ipv6Subnet: 'fd18:0:0:5::/64',
    publicIPv6: 'fd00:2::5',
  });
  t.like(row('198.18.3.0-24', dual(3, { PublicIPv6: null, BackendV6Data: null }), V6), {
    status: 'stranded',
    malformed: 'stranded: an IPv4-only lease, but the network config has no IPv4 network (EnableIPv4 is false)',
    subnet: '198.18.3.0/24',
  });
  // A v4-only lease in a dual-stack network is a host that has not added IPv6 yet (or a v4-only flanneld): ok.
  t.like(
    row(
      '198.18.3.0-24',
      JSON.stringify({
        PublicIP: '192.0.2.3',
        PublicIPv6: null,
        BackendType: 'vxlan',
        BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:03' },
      }),
    ),
    { status: 'ok', malformed: null, ipv6Subnet: null },
  );
});

test('a bad IPv6 half of a dual-stack lease: the IPv4 half is programmed, the row says which half is not and why', (t) => {
  const key = '198.18.3.0-24&fd18:0:0:3::-64';
  const cases: [Record<string, unknown>, string][] = [
    [
      { PublicIPv6: 'fe80::3' },
      'IPv6 half not programmed: PublicIPv6 fe80::3 is link-local (fe80::/10): not a usable unicast address',
    ],
    [
      { PublicIPv6: 'ff02::1' },
      'IPv6 half not programmed: PublicIPv6 ff02::1 is multicast (ff00::/8): not a usable unicast address',
    ],
    [
      { PublicIPv6: 'fd18:0:0:9::1' },
      'IPv6 half not programmed: PublicIPv6 fd18:0:0:9::1 is inside the overlay network fd18::/48',
    ],
    [{ PublicIPv6: null }, 'IPv6 half not programmed: PublicIPv6 is null: the IPv6 half has no endpoint'],
    [{ BackendV6Data: undefined }, 'IPv6 half not programmed: vxlan lease without BackendV6Data'],
    [{ BackendV6Data: null }, 'IPv6 half not programmed: BackendV6Data has no VtepMAC'],
    [{ BackendV6Data: { VNI: 1 } }, 'IPv6 half not programmed: BackendV6Data has no VtepMAC'],
    [
      { BackendV6Data: { VNI: 1, VtepMAC: '00:00:00:00:00:00' } },
      'IPv6 half not programmed: IPv6 VtepMAC 00:00:00:00:00:00 is not a unicast, non-zero Ethernet address',
    ],
    [
      { BackendV6Data: { VNI: 2, VtepMAC: '02:00:00:00:66:03' } },
      'IPv6 half not programmed: VNI 2, but the network uses VNI 1',
    ],
  ];
  for (const [o, why] of cases) {
    const r = row(key, dual(3, o));
    t.like(
      r,
      { status: 'ok', malformed: why, subnet: '198.18.3.0/24', publicIP: '192.0.2.3', vtepMAC: '02:00:00:00:00:03' },
      JSON.stringify(o),
    );
  }
  t.like(
    row(key, dual(3, { PublicIPv6: 'fe80::3' })),
    { publicIPv6: null, vtepMACv6: null },
    'nothing of a quarantined half is shown',
  );
  t.like(row('198.18.3.0-24&fd19:0:0:3::-64', dual(3)), {
    status: 'ok',
    malformed: 'IPv6 half not programmed: IPv6 subnet outside the network fd18::/48',
    ipv6Subnet: 'fd19:0:0:3::/64',
    publicIPv6: 'fd00:2::3',
  });
  t.like(row('198.18.3.0-24&fd18:0:0:3::-80', dual(3)), {
    status: 'ok',
    malformed: "IPv6 half not programmed: an IPv6 /80, but the network's IPv6SubnetLen is 64",
  });
  // The other way, as the agents judge it: an unusable IPv4 half makes the whole lease untrusted.
  t.like(row(key, dual(3, { PublicIP: '127.0.0.1' })), {
    status: 'quarantined',
    publicIP: null,
    publicIPv6: null,
    backendType: null,
    malformed: 'PublicIP 127.0.0.1 is a loopback address: not a usable unicast address',
  });
});

test("the IPv4 half decides a dual-stack lease: not fitting, it strands the lease (the agents drop it whole), with the IPv6 half's problem too", (t) => {
  t.like(row('10.9.1.0-24&fd19:0:0:1::-64', dual(1)), {
    status: 'stranded',
    malformed:
      'stranded: outside the network 198.18.0.0/16; IPv6 half not programmed: IPv6 subnet outside the network fd18::/48',
    publicIP: '192.0.2.1',
    publicIPv6: 'fd00:2::1',
  });
  t.like(row('10.9.1.0-24&fd18:0:0:1::-64', dual(1)), {
    status: 'stranded',
    malformed: 'stranded: outside the network 198.18.0.0/16',
  });
  t.like(row('10.9.1.0-24&fd18:0:0:1::-64', dual(1, { PublicIPv6: 'fe80::1' })), {
    status: 'stranded',
    publicIPv6: null,
    malformed:
      'stranded: outside the network 198.18.0.0/16; IPv6 half not programmed: PublicIPv6 fe80::1 is link-local (fe80::/10): not a usable unicast address',
  });
  t.like(row('0.0.0.0-0&fd19:0:0:5::-64', v6only(5)), {
    status: 'stranded',
    malformed: 'stranded: IPv6 subnet outside the network fd18::/48',
  });
  t.like(row('0.0.0.0-0&fd18:0:0:5::-64', v6only(5, { PublicIPv6: 'fe80::5' })), {
    status: 'quarantined',
    backendType: null,
    publicIPv6: null,
    malformed: 'IPv6 half: PublicIPv6 fe80::5 is link-local (fe80::/10): not a usable unicast address',
  });
  t.like(row('0.0.0.0-0&fd18:0:0:5::-64', v6only(5, { BackendType: 'host-gw' })), {
    status: 'stranded',
    malformed: 'stranded: backend host-gw, but the network uses vxlan',
  });
});

test('keys: a misaligned or non-canonical IPv6 half quarantines the entry', (t) => {
  t.like(row('198.18.1.0-24&fd18:0:0:1::1-64', dual(1)), {
    status: 'quarantined',
    subnet: '198.18.1.0/24',
    ipv6Subnet: 'fd18:0:0:1::1/64',
    malformed: 'subnet fd18:0:0:1::1/64 is not aligned on its prefix length',
  });
  t.like(row('198.18.1.0-24&fd18:0:0:1:0::-64', dual(1)), {
    status: 'quarantined',
    malformed:
      'key "198.18.1.0-24&fd18:0:0:1:0::-64" is not in canonical form (flanneld reads it as 198.18.1.0/24 & fd18:0:0:1::/64; weft writes 198.18.1.0-24&fd18:0:0:1::-64)',
  });
  t.like(row('0.0.0.0-0&fd18:0:0:1:0::-64', v6only(1)), {
    status: 'quarantined',
    malformed:
      'key "0.0.0.0-0&fd18:0:0:1:0::-64" is not in canonical form (flanneld reads it as fd18:0:0:1::/64; weft writes 0.0.0.0-0&fd18:0:0:1::-64)',
  });
});

test("a lease without a VNI fits any VNI (flanneld never reads a peer's VNI)", (t) => {
  t.like(
    row(
      '198.18.3.0-24&fd18:0:0:3::-64',
      dual(3, { BackendData: { VtepMAC: '02:00:00:00:00:03' }, BackendV6Data: { VtepMAC: '02:00:00:00:66:03' } }),
    ),
    { status: 'ok', malformed: null, vni: null },
  );
});

test('host-gw dual stack: no MACs; a bad PublicIPv6 leaves the IPv4 route', (t) => {
  const hostgw = cfg(
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"host-gw"}}',
  );
  t.like(
    row(
      '198.18.4.0-24&fd18:0:0:4::-64',
      '{"PublicIP":"192.0.2.4","PublicIPv6":"fd00:2::4","BackendType":"host-gw"}',
      hostgw,
    ),
    { status: 'ok', malformed: null, publicIPv6: 'fd00:2::4', vtepMAC: null, vtepMACv6: null, vni: null },
  );
  t.like(
    row(
      '198.18.4.0-24&fd18:0:0:4::-64',
      '{"PublicIP":"192.0.2.4","PublicIPv6":"fe80::4","BackendType":"host-gw"}',
      hostgw,
    ),
    {
      status: 'ok',
      malformed: 'IPv6 half not programmed: PublicIPv6 fe80::4 is link-local (fe80::/10): not a usable unicast address',
    },
  );
});

test("one VTEP MAC, one VTEP, across both halves (backends/vxlan.ts): the oldest lease keeps it, a newer claim's half is not programmed", (t) => {
  const entry = (k: string, value: string, rev: string) => ({
    subnetKey: k,
    kv: kv(k, value, rev),
    ttlSeconds: 600,
    owner: undefined,
  });
  const rows = leaseRows(
    [
      entry(
        '198.18.9.0-24&fd18:0:0:9::-64',
        dual(9, { BackendV6Data: { VNI: 1, VtepMAC: '02:00:00:00:66:01' } }),
        '90',
      ),
      entry('198.18.1.0-24&fd18:0:0:1::-64', dual(1), '12'),
      // Its IPv4 MAC is the older lease's IPv6 MAC: one MAC, one VTEP, so it loses.
      entry(
        '198.18.2.0-24',
        JSON.stringify({
          PublicIP: '192.0.2.2',
          PublicIPv6: null,
          BackendType: 'vxlan',
          BackendData: { VNI: 1, VtepMAC: '02:00:00:00:66:01' },
        }),
        '13',
      ),
      entry('0.0.0.0-0&fd18:0:0:7::-64', v6only(7, { BackendV6Data: { VNI: 1, VtepMAC: '02:00:00:00:66:01' } }), '95'),
      // Its IPv4 MAC is a copy, its IPv6 MAC its own: the IPv6 half is still programmed.
      entry('198.18.8.0-24&fd18:0:0:8::-64', dual(8, { BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01' } }), '96'),
    ],
    DUAL,
    NOW,
    BACKENDS,
  );
  const used = 'is already used by the older lease 198.18.1.0/24 (created at etcd revision 12); a copy never wins';
  t.like(rows[1], { status: 'ok', malformed: null });
  t.like(rows[0], {
    status: 'ok',
    vtepMACv6: '02:00:00:00:66:01',
    malformed: `IPv6 half not programmed: VtepMAC 02:00:00:00:66:01 ${used}`,
  });
  t.like(rows[2], {
    status: 'quarantined',
    publicIP: '192.0.2.2',
    backendType: 'vxlan',
    malformed: `VtepMAC 02:00:00:00:66:01 ${used}`,
  });
  t.like(rows[3], { status: 'quarantined', publicIPv6: 'fd00:2::7', malformed: `VtepMAC 02:00:00:00:66:01 ${used}` });
  t.like(rows[4], {
    status: 'ok',
    vtepMACv6: '02:00:00:00:66:08',
    malformed: `IPv4 half not programmed: VtepMAC 02:00:00:00:00:01 ${used}`,
  });
});

test('the table gains IPV6-SUBNET, PUBLIC-IPV6 and VTEP-MAC-V6 when a lease has an IPv6 half, and lists half-programmed leases', (t) => {
  const text = renderLeaseTable([
    row('198.18.3.0-24&fd18:0:0:3::-64', dual(3)),
    row('0.0.0.0-0&fd18:0:0:5::-64', v6only(5)),
    row('198.18.4.0-24&fd18:0:0:4::-64', dual(4, { PublicIPv6: 'fe80::4' })),
    row('0.0.0.0-0&fd19:0:0:6::-64', v6only(6)),
  ]);
  const lines = text.split('\n');
  t.regex(
    lines[0] ?? '',
    /^SUBNET +IPV6-SUBNET +PUBLIC-IP +PUBLIC-IPV6 +BACKEND +VTEP-MAC +VTEP-MAC-V6 +EXPIRES-IN +HOST$/,
  );
  t.regex(
    lines[1] ?? '',
    /^198\.18\.3\.0\/24 +fd18:0:0:3::\/64 +192\.0\.2\.3 +fd00:2::3 +vxlan +02:00:00:00:00:03 +02:00:00:00:66:03 +600s +\(flanneld or unowned\)$/,
  );
  t.regex(lines[2] ?? '', /^- +fd18:0:0:5::\/64 +- +fd00:2::5 +vxlan +- +02:00:00:00:66:05 +600s/);
  t.regex(lines[3] ?? '', /^198\.18\.4\.0\/24 +fd18:0:0:4::\/64 +192\.0\.2\.4 +- +vxlan +02:00:00:00:00:04 +- +600s/);
  t.regex(
    text,
    /\nPARTLY PROGRAMMED \(1: one half of the lease is not programmed\):\n {2}\/p\/subnets\/198\.18\.4\.0-24&fd18:0:0:4::-64: IPv6 half not programmed: PublicIPv6 fe80::4 is link-local/,
  );
  t.regex(
    text,
    /\nSTRANDED \(1: [^\n]*\n {2}SUBNET +IPV6-SUBNET .* WHY\n {2}- +fd19:0:0:6::\/64 .* IPv6 subnet outside the network fd18::\/48\n/,
  );
  t.false(
    /IPV6/.test(
      renderLeaseTable([
        row(
          '198.18.3.0-24',
          JSON.stringify({
            PublicIP: '192.0.2.3',
            PublicIPv6: null,
            BackendType: 'vxlan',
            BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:03' },
          }),
        ),
      ]),
    ),
    'an IPv4 fleet keeps its table',
  );
});
