// `weft config show`: the stored config as weft reads it, flannel's names, defaults applied.
import test from 'ava';
import { derivedView, jsonCount, readStoredConfig, renderStoredConfig } from '../../src/core/config/config-view.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { BACKENDS } from '../helpers/backends.js';

/** A weft with two backends (the registry's vxlan and host-gw). */
const WEFT = new Map([...BACKENDS].filter(([type]) => ['vxlan', 'host-gw'].includes(type)));

test('a minimal vxlan config gets every default: subnet length and range, VNI 1, port 8472, IPv6 off', (t) => {
  t.deepEqual(readStoredConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}', WEFT).report, {
    valid: true,
    error: null,
    config: {
      Network: '198.18.0.0/16',
      SubnetLen: 24,
      SubnetMin: '198.18.1.0',
      SubnetMax: '198.18.255.0',
      EnableIPv4: true,
      EnableIPv6: false,
      IPv6Network: null,
      IPv6SubnetLen: null,
      IPv6SubnetMin: null,
      IPv6SubnetMax: null,
      Backend: { Type: 'vxlan', VNI: 1, Port: 8472, MTU: null, GBP: false, Learning: false, DirectRouting: false },
    },
  });
});

test('flannel spellings: keys in any case, Network masked, the type lower-cased, options kept', (t) => {
  const r = readStoredConfig(
    '{"network":"10.3.5.7/16","subnetlen":28,"Backend":{"type":"VXLAN","vni":42,"Port":4789,"MTU":9000,"GBP":true,"Learning":true,"DirectRouting":true}}',
    WEFT,
  ).report;
  t.like(r, {
    valid: true,
    config: { Network: '10.3.0.0/16', SubnetLen: 28, SubnetMin: '10.3.0.16', SubnetMax: '10.3.255.240' },
  });
  t.deepEqual(r.config?.Backend, {
    Type: 'vxlan',
    VNI: 42,
    Port: 4789,
    MTU: 9000,
    GBP: true,
    Learning: true,
    DirectRouting: true,
  });
});

test('host-gw has only its Type; a dual-stack config shows both families', (t) => {
  t.deepEqual(readStoredConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"host-gw"}}', WEFT).report.config?.Backend, {
    Type: 'host-gw',
  });
  const dual = readStoredConfig(
    '{"Network":"10.0.0.0/8","EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"host-gw"}}',
    WEFT,
  ).report;
  t.like(dual, {
    valid: true,
    config: {
      EnableIPv4: true,
      EnableIPv6: true,
      IPv6Network: 'fc00::/48',
      IPv6SubnetLen: 64,
      IPv6SubnetMin: 'fc00:0:0:1::',
      IPv6SubnetMax: 'fc00:0:0:ffff::',
    },
  });
});

test("an invalid config: valid false, flannel's error, no config", (t) => {
  t.deepEqual(readStoredConfig('{"Network":"10.3.0.0/16","SubnetLen":31}', WEFT).report, {
    valid: false,
    error: 'SubnetLen must be less than /31',
    config: null,
  });
  t.like(readStoredConfig('not json', WEFT).report, { valid: false, config: null });
  t.regex(readStoredConfig('not json', WEFT).report.error ?? '', /^the network config is unreadable: invalid JSON/);
  t.like(readStoredConfig('{}', WEFT).report, {
    valid: false,
    error: 'please define a correct Network parameter in the flannel config',
  });
});

test('flannel accepts it but weft cannot run on it: valid false with the reason, and the config shown', (t) => {
  const udp = readStoredConfig('{"Network":"10.0.0.0/8"}', WEFT).report;
  t.is(udp.valid, false);
  t.is(udp.error, 'backend type "udp" is not supported by weft (vxlan, host-gw)');
  t.deepEqual(udp.config?.Backend, { Type: 'udp' });
  t.like(udp.config, { Network: '10.0.0.0/8', SubnetLen: 24 });
});

test("IPv6 only: valid, the IPv4 fields null, the IPv6 ones with flannel's defaults; the summary says ipv4 off and counts IPv6 subnets", (t) => {
  const text = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}';
  const s = readStoredConfig(text, WEFT);
  t.deepEqual(s.report, {
    valid: true,
    error: null,
    config: {
      Network: null,
      SubnetLen: null,
      SubnetMin: null,
      SubnetMax: null,
      EnableIPv4: false,
      EnableIPv6: true,
      IPv6Network: 'fc00::/48',
      IPv6SubnetLen: 64,
      IPv6SubnetMin: 'fc00:0:0:1::',
      IPv6SubnetMax: 'fc00:0:0:ffff::',
      Backend: { Type: 'vxlan', VNI: 1, Port: 8472, MTU: null, GBP: false, Learning: false, DirectRouting: false },
    },
  });
  const lines = renderStoredConfig('/p/config', '4', text, s).split('\n');
  t.is(lines[1], '  ipv4      off');
  t.is(lines[2], '  ipv6      fc00::/48: /64 subnets from fc00:0:0:1:: to fc00:0:0:ffff:: (65535 host subnets)');
  // A stored inverted IPv6 range is refused like flannel's own errors (flanneld forgets it).
  t.deepEqual(
    readStoredConfig(
      '{"Network":"10.0.0.0/8","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetMin":"fc00:0:0:9::","IPv6SubnetMax":"fc00:0:0:2::","Backend":{"Type":"vxlan"}}',
      WEFT,
    ).report,
    {
      valid: false,
      error: 'IPv6SubnetMin fc00:0:0:9:: is above IPv6SubnetMax fc00:0:0:2::, so the range holds no subnet',
      config: null,
    },
  );
});

test('weft validate --json derived: the IPv4 range as before, ipv6 only when on, capacity a string past 2^53 - 1', (t) => {
  const c = (json: string) => checkNetworkConfig(decodeNetworkConfig(json, BACKENDS));
  t.deepEqual(derivedView(c('{"Network":"198.18.0.0/16"}')), {
    subnetLen: 24,
    subnetMin: '198.18.1.0',
    subnetMax: '198.18.255.0',
    capacity: 255,
  });
  t.false('ipv6' in derivedView(c('{"Network":"198.18.0.0/16"}')), 'no ipv6 key while IPv6 is off');
  t.deepEqual(derivedView(c('{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48"}')), {
    subnetLen: 24,
    subnetMin: '198.18.1.0',
    subnetMax: '198.18.255.0',
    capacity: 255,
    ipv6: { subnetLen: 64, subnetMin: 'fd18:0:0:1::', subnetMax: 'fd18:0:0:ffff::', capacity: 65535 },
  });
  t.deepEqual(
    derivedView(c('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"2001:db8::/32","IPv6SubnetLen":120}')),
    {
      subnetLen: null,
      subnetMin: null,
      subnetMax: null,
      capacity: null,
      ipv6: {
        subnetLen: 120,
        subnetMin: '2001:db8::100',
        subnetMax: '2001:db8:ffff:ffff:ffff:ffff:ffff:ff00',
        capacity: '309485009821345068724781055',
      },
    },
  );
  t.is(jsonCount(2n ** 53n - 1n), 9007199254740991);
  t.is(jsonCount(2n ** 53n), '9007199254740992');
});

test('a hostile stored config: the error and type are capped for JSON, and escaped line by line for a human', (t) => {
  const text = `{"Network":"198.18.0.0/16",\n"Backend":{"Type":"x\\u001b[2J${'y'.repeat(400)}"}}`;
  const s = readStoredConfig(text, WEFT);
  t.false(s.report.valid);
  t.true((s.report.config?.Backend.Type ?? '').length < 300);
  const out = renderStoredConfig('/p/config', '9', text, s);
  // eslint-disable-next-line no-control-regex
  t.false(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(out));
  t.regex(out, /^\/p\/config: INVALID \(revision 9\)\n {2}error {5}backend type "x\\u001b\[2jy+/);
  t.regex(out, /\n {2}backend {3}x\\x1b\[2jy+\.\.\.\[\d+ more chars\]\n/);
  t.regex(out, /\nstored text:\n {2}\{"Network":"198\.18\.0\.0\/16",\n {2}"Backend":/);
  const broken = renderStoredConfig(
    '/p/config',
    '9',
    '{"Network":\n\x1b[31m',
    readStoredConfig('{"Network":\n\x1b[31m', WEFT),
  );
  t.regex(broken, /^\/p\/config: INVALID \(revision 9\)\n {2}error {5}the network config is unreadable: invalid JSON/);
  t.regex(broken, /\nstored text:\n {2}\{"Network":\n {2}\\x1b\[31m\n$/);
  // eslint-disable-next-line no-control-regex
  t.false(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/.test(broken));
});

test('the human summary: network and capacity, backend options, and whether the spec matches', (t) => {
  const text = '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}';
  const s = readStoredConfig(text, WEFT);
  const same = checkNetworkConfig(
    decodeNetworkConfig(
      '{"Network":"198.18.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan","VNI":1,"Port":8472}}',
      BACKENDS,
    ),
  );
  t.is(
    renderStoredConfig('/p/config', '3', text, s, { file: 'n.yaml', config: same }),
    [
      '/p/config: valid (revision 3)',
      '  network   198.18.0.0/16: /24 subnets from 198.18.1.0 to 198.18.255.0 (255 host subnets)',
      '  ipv6      off',
      "  backend   vxlan: VNI 1, port 8472, MTU from each host's interface, GBP off, learning off, directRouting off",
      '  spec      matches n.yaml',
      'stored text:',
      `  ${text}`,
      '',
    ].join('\n'),
  );
  const other = checkNetworkConfig(
    decodeNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}', BACKENDS),
  );
  t.regex(
    renderStoredConfig('/p/config', '3', text, s, { file: 'n.yaml', config: other }),
    /spec {6}differs from n\.yaml \(weft apply --dry-run shows how\)/,
  );
});
