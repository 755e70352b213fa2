// `weft leases`: each entry's status (ok, stranded, quarantined), its VNI, and a table no etcd
// value can forge a row of.
import test from 'ava';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { type LeaseRow, leaseRow, leaseRows, renderLeaseTable } from '../../src/core/fleet/lease-report.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { BACKENDS } from '../helpers/backends.js';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const vxlanNet = checkNetworkConfig(
  decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","VNI":1}}', BACKENDS),
);
const kv = (subnetKey: string, value: string): KeyValue => ({
  key: `/p/subnets/${subnetKey}`,
  value,
  lease: '7',
  modRevision: '5',
  createRevision: '5',
});
const vx = (ip: string, mac: string, vni = 1, type = 'vxlan') =>
  JSON.stringify({ PublicIP: ip, PublicIPv6: null, BackendType: type, BackendData: { VNI: vni, VtepMAC: mac } });
const row = (
  subnetKey: string,
  value: string,
  config = vxlanNet,
  owner?: { hostID: string; hostname: string; publicIP: string },
): LeaseRow => leaseRow(subnetKey, kv(subnetKey, value), config, 600, owner, NOW, BACKENDS);

test('an ok vxlan lease: every field, its VNI, status ok, malformed null', (t) => {
  t.deepEqual(
    row('198.18.3.0-24', vx('192.0.2.3', '02:00:00:00:00:03'), vxlanNet, {
      hostID: 'id3',
      hostname: 'web-3',
      publicIP: '192.0.2.3',
    }),
    {
      subnet: '198.18.3.0/24',
      ipv6Subnet: null,
      publicIP: '192.0.2.3',
      publicIPv6: null,
      backendType: 'vxlan',
      vtepMAC: '02:00:00:00:00:03',
      vtepMACv6: null,
      vni: 1,
      expiresAt: '2030-01-01T00:10:00.000Z',
      ttlSeconds: 600,
      host: 'web-3',
      key: '/p/subnets/198.18.3.0-24',
      status: 'ok',
      malformed: null,
    },
  );
});

test('a host-gw lease in a host-gw network has no VNI', (t) => {
  const hostgw = checkNetworkConfig(
    decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"host-gw"}}', BACKENDS),
  );
  t.like(row('198.18.4.0-24', '{"PublicIP":"192.0.2.4","PublicIPv6":null,"BackendType":"host-gw"}', hostgw), {
    status: 'ok',
    backendType: 'host-gw',
    vni: null,
    vtepMAC: null,
    malformed: null,
  });
});

test('stranded: the lease decodes but lies outside the network (weft apply --force moved it); shown like an ok row', (t) => {
  t.like(
    row('10.9.1.0-24', vx('192.0.2.9', '02:00:00:00:00:09'), vxlanNet, {
      hostID: 'id9',
      hostname: 'db-9',
      publicIP: '192.0.2.9',
    }),
    {
      subnet: '10.9.1.0/24',
      publicIP: '192.0.2.9',
      backendType: 'vxlan',
      vtepMAC: '02:00:00:00:00:09',
      vni: 1,
      host: 'db-9',
      status: 'stranded',
      malformed: 'stranded: outside the network 198.18.0.0/16',
    },
  );
});

test('stranded: another subnet length, another backend, another VNI', (t) => {
  t.like(row('198.18.8.0-25', vx('192.0.2.8', '02:00:00:00:00:08')), {
    status: 'stranded',
    malformed: "stranded: a /25, but the network's SubnetLen is 24",
  });
  t.like(row('198.18.6.0-24', '{"PublicIP":"192.0.2.6","PublicIPv6":null,"BackendType":"host-gw"}'), {
    status: 'stranded',
    backendType: 'host-gw',
    malformed: 'stranded: backend host-gw, but the network uses vxlan',
  });
  t.like(row('198.18.7.0-24', vx('192.0.2.7', '02:00:00:00:00:07', 2)), {
    status: 'stranded',
    vni: 2,
    malformed: 'stranded: VNI 2, but the network uses VNI 1',
  });
});

test('quarantined: what cannot be trusted shows only what its key says, with the reason', (t) => {
  t.like(row('bogus', 'x'), {
    status: 'quarantined',
    subnet: null,
    publicIP: null,
    vni: null,
    malformed: 'key "bogus" is not a flannel subnet key',
  });
  t.like(row('198.18.9.0-24', '{not json'), {
    status: 'quarantined',
    subnet: '198.18.9.0/24',
    publicIP: null,
    malformed: 'invalid JSON at offset 1: expected a string key',
  });
  t.like(row('198.18.9.1-24', vx('192.0.2.9', '02:00:00:00:00:09')), {
    status: 'quarantined',
    malformed: 'subnet 198.18.9.1/24 is not aligned on its prefix length',
  });
  t.like(row('198.18.10.0-24', vx('127.0.0.1', '02:00:00:00:00:0a')), {
    status: 'quarantined',
    malformed: 'PublicIP 127.0.0.1 is a loopback address: not a usable unicast address',
  });
  t.like(row('198.18.11.0-24', vx('192.0.2.11', 'not-a-mac')), {
    status: 'quarantined',
    vtepMAC: null,
    malformed: 'BackendData: vxlanLeaseAttrs.VtepMAC "not-a-mac": address not-a-mac: invalid MAC address',
  });
  t.like(row('198.18.12.0-24', vx('192.0.2.12', '00:00:00:00:00:00')), {
    status: 'quarantined',
    malformed: 'VtepMAC 00:00:00:00:00:00 is not a unicast, non-zero Ethernet address',
  });
  t.like(row('198.18.13.0-24', vx('192.0.2.13', '01:00:5e:00:00:01')), {
    status: 'quarantined',
    malformed: 'VtepMAC 01:00:5e:00:00:01 is not a unicast, non-zero Ethernet address',
  });
  t.like(row('198.18.14.0-24', vx('169.254.1.1', '02:00:00:00:00:0e')), {
    status: 'quarantined',
    malformed: 'PublicIP 169.254.1.1 is link-local (169.254.0.0/16): not a usable unicast address',
  });
  t.like(row('198.18.15.0-24', vx('198.18.200.1', '02:00:00:00:00:0f')), {
    status: 'quarantined',
    malformed: 'PublicIP 198.18.200.1 is inside the overlay network 198.18.0.0/16',
  });
  // A bad value outside the network is quarantined, not stranded: nothing about it can be trusted.
  t.like(row('10.1.1.0-24', '{"PublicIP":"nope"}'), { status: 'quarantined' });
});

test('etcd strings in a row are capped (JSON escapes the rest)', (t) => {
  const r = row('198.18.12.0-24', vx('192.0.2.12', '02:00:00:00:00:0c', 1, `vxlan${'A'.repeat(1000)}`), vxlanNet, {
    hostID: 'id',
    hostname: 'h'.repeat(300),
    publicIP: '',
  });
  t.is(r.status, 'quarantined', 'a BackendType of 1,005 characters is no backend name');
  t.regex(r.malformed ?? '', /^BackendType "vxlanAAA/);
  t.is(r.host, `${'h'.repeat(256)}...[44 more chars]`);
  t.true((r.malformed ?? '').length < 300);
});

test('two leases with one VTEP MAC: the older (create revision) is programmed, the copy quarantined, whatever the keys sort as', (t) => {
  const kv = (k: string, value: string, createRevision: string) => ({
    key: `/p/subnets/${k}`,
    value,
    lease: '7',
    modRevision: createRevision,
    createRevision,
  });
  const entries = [
    {
      subnetKey: '198.18.0.0-24',
      kv: kv('198.18.0.0-24', vx('192.0.2.66', '02:00:00:00:00:21'), '90'),
      ttlSeconds: 600,
      owner: undefined,
    },
    {
      subnetKey: '198.18.21.0-24',
      kv: kv('198.18.21.0-24', vx('192.0.2.21', '02:00:00:00:00:21'), '12'),
      ttlSeconds: 600,
      owner: undefined,
    },
  ];
  const rows = leaseRows(entries, vxlanNet, 0, BACKENDS);
  t.like(rows[1], { status: 'ok', malformed: null });
  t.like(rows[0], { status: 'quarantined', publicIP: '192.0.2.66' });
  t.regex(
    rows[0]?.malformed ?? '',
    /VtepMAC 02:00:00:00:00:21 is already used by the older lease 198\.18\.21\.0\/24 \(created at etcd revision 12\)/,
  );
});

test('the table groups programmed, STRANDED (with the fix) and QUARANTINED', (t) => {
  const text = renderLeaseTable([
    row('198.18.3.0-24', vx('192.0.2.3', '02:00:00:00:00:03')),
    row('10.9.1.0-24', vx('192.0.2.9', '02:00:00:00:00:09'), vxlanNet, {
      hostID: 'id9',
      hostname: 'db-9',
      publicIP: '192.0.2.9',
    }),
    row('bogus', 'x'),
  ]);
  const lines = text.split('\n');
  t.regex(lines[0] ?? '', /^SUBNET +PUBLIC-IP +BACKEND +VTEP-MAC +EXPIRES-IN +HOST$/);
  t.regex(lines[1] ?? '', /^198\.18\.3\.0\/24 +192\.0\.2\.3 +vxlan +02:00:00:00:00:03 +600s +\(flanneld or unowned\)$/);
  t.regex(
    text,
    /\nSTRANDED \(1: not programmed, the lease does not fit the network config\):\n {2}SUBNET .* WHY\n {2}10\.9\.1\.0\/24 +192\.0\.2\.9 +vxlan +02:00:00:00:00:09 +600s +db-9 +outside the network 198\.18\.0\.0\/16\n {2}fix: restart weft/,
  );
  t.regex(text, /weft release/);
  t.regex(
    text,
    /\nQUARANTINED \(1, ignored by weft\):\n {2}\/p\/subnets\/bogus: key "bogus" is not a flannel subnet key\n$/,
  );
});

test('a BackendType with a newline, a fake row and ANSI escapes adds no row and no terminal control to the table', (t) => {
  const fake = '\n198.18.9.0/24  6.6.6.6  vxlan  02:66:66:66:66:66  600s  trusted-host\x1b[2K\x1b[1A\u202e';
  const hostgw = checkNetworkConfig(
    decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"host-gw"}}', BACKENDS),
  );
  const rows = [
    row('198.18.3.0-24', JSON.stringify({ PublicIP: '192.0.2.3', PublicIPv6: null, BackendType: 'host-gw' }), hostgw),
    row('198.18.5.0-24', JSON.stringify({ PublicIP: '192.0.2.5', PublicIPv6: null, BackendType: fake }), hostgw, {
      hostID: 'x',
      hostname: 'evil\r\x1b[31mhost',
      publicIP: '',
    }),
  ];
  const text = renderLeaseTable(rows);
  t.false(
    // eslint-disable-next-line no-control-regex
    /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/.test(text),
    'no control character but the line breaks the table itself makes',
  );
  t.false(
    text.split('\n').some((l) => /^\s*198\.18\.9\.0\/24/.test(l)),
    'no line starts with the forged subnet',
  );
  t.is(
    text.split('\n').filter((l) => /^\s*198\.18\.\d+\.0\/24/.test(l)).length,
    1,
    'one line for the one lease weft programs',
  );
  t.regex(
    text,
    /QUARANTINED \(1, ignored by weft\):\n {2}\/p\/subnets\/198\.18\.5\.0-24: BackendType "\\u000a198\.18\.9\.0\/24 {2}6\.6\.6\.6/,
    'the forged BackendType is quarantined and shown escaped',
  );
});
