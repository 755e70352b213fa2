// Does a network config fit this host (issue 28, finding 1)? The pure judgement, with no host.
import test from 'ava';
import { type Prefix, parseIP, parsePrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import {
  type FitInput,
  type HostSurroundings,
  configMisfit,
  endpointHosts,
  fabricPrefixes,
  linkAddresses,
} from '../../src/core/config/config-fit.js';
import type { ObservedRoute } from '../../src/core/datapath/datapath.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { parseEnvFile } from '../../src/core/outputs/outputs.js';
import { BACKENDS } from '../helpers/backends.js';

const ip = (s: string) => {
  const a = parseIP(s);
  if (!a) throw new Error(s);
  return a;
};
const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const cfg = (json: string) => checkNetworkConfig(decodeNetworkConfig(json, BACKENDS));
const facts: HostFacts = {
  iface: 'eth0',
  ifaceIP: ip('192.0.2.1'),
  ifaceMTU: 1500,
  publicIP: ip('192.0.2.1'),
  why: 'test',
};
const route = (dst: string, dev: string, extra: Partial<ObservedRoute> = {}): ObservedRoute => ({
  dst: pfx(dst),
  dev,
  proto: 'kernel',
  onlink: false,
  scopeLink: true,
  ...extra,
});
/** A host on the LAN 192.0.2.0/24 (gateway .254), etcd on 203.0.113.10 behind it, a Docker bridge in its subnet. */
const around: HostSurroundings = {
  addresses: [
    { dev: 'eth0', addr: pfx('192.0.2.1/24') },
    { dev: 'docker0', addr: pfx('198.18.1.1/24') },
    { dev: 'flannel.1', addr: pfx('198.18.1.0/32') },
  ],
  routes: [
    route('192.0.2.0/24', 'eth0'),
    route('0.0.0.0/0', 'eth0', { via: ip('192.0.2.254'), proto: 'boot', scopeLink: false }),
    route('198.18.1.0/24', 'docker0'),
    route('198.18.2.0/24', 'flannel.1', { via: ip('198.18.2.0'), proto: '175', onlink: true, scopeLink: false }),
  ],
  etcd: [{ endpoint: 'http://203.0.113.10:2379', ip: ip('203.0.113.10') }],
};
const fit = (json: string, over: Partial<FitInput> = {}): string | undefined =>
  configMisfit({
    config: cfg(json),
    facts,
    around,
    fabric: [pfx('198.18.0.0/16'), pfx('198.18.1.0/24')],
    mtu: { overlay: 1450, carried: 1450, overheadBytes: 50, fixedByHost: false },
    ...over,
  });

test("a fabric beside the LAN fits; a wider foreign route around the network (a VPN's) is fine", (t) => {
  t.is(fit('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}'), undefined);
  const vpn: HostSurroundings = {
    ...around,
    routes: [
      ...around.routes,
      route('198.0.0.0/8', 'tun0', { via: ip('192.0.2.253'), proto: 'static', scopeLink: false }),
    ],
  };
  t.is(fit('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}', { around: vpn }), undefined);
});

test('finding 1: a network containing the LAN is refused, naming what it would take', (t) => {
  t.regex(
    fit('{"Network":"192.0.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}') ?? '',
    /^Network 192\.0\.0\.0\/16 cannot be used on this host: it contains this host's own address 192\.0\.2\.1 \(eth0\)$/,
  );
  // Another link's LAN: its address, and a connected network without any address of the host's.
  const eth1: HostSurroundings = {
    ...around,
    addresses: [...around.addresses, { dev: 'eth1', addr: pfx('203.0.113.5/24') }],
  };
  t.regex(
    fit('{"Network":"203.0.112.0/22","Backend":{"Type":"vxlan"}}', { around: eth1 }) ?? '',
    /contains 203\.0\.113\.5, an address of eth1/,
  );
  const onlink: HostSurroundings = {
    ...around,
    routes: [...around.routes, route('198.51.100.0/24', 'eth1', { proto: 'static' })],
  };
  t.regex(
    fit('{"Network":"198.51.0.0/16","Backend":{"Type":"vxlan"}}', { around: onlink }) ?? '',
    /contains the connected network 198\.51\.100\.0\/24 dev eth1 proto static/,
  );
});

test('the gateway and the etcd endpoints stay outside the network', (t) => {
  t.regex(
    fit('{"Network":"192.0.2.128/25","SubnetLen":28,"Backend":{"Type":"vxlan"}}') ?? '',
    /contains the gateway 192\.0\.2\.254 \(route 0\.0\.0\.0\/0 via 192\.0\.2\.254 dev eth0\)/,
  );
  t.regex(
    fit('{"Network":"203.0.113.0/24","SubnetLen":26,"Backend":{"Type":"vxlan"}}') ?? '',
    /contains the etcd endpoint http:\/\/203\.0\.113\.10:2379 \(203\.0\.113\.10\)/,
  );
});

test('reserved blocks: half of IPv4, loopback, link-local, multicast, and their IPv6 twins', (t) => {
  t.regex(
    fit('{"Network":"0.0.0.0/1","Backend":{"Type":"vxlan"}}') ?? '',
    /^Network 0\.0\.0\.0\/1 cannot be used on this host: it overlaps 0\.0\.0\.0\/8/,
  );
  t.regex(fit('{"Network":"127.0.0.0/16","Backend":{"Type":"vxlan"}}') ?? '', /loopback/);
  t.regex(fit('{"Network":"169.254.0.0/16","Backend":{"Type":"host-gw"}}') ?? '', /link-local/);
  t.regex(fit('{"Network":"224.0.0.0/16","Backend":{"Type":"vxlan"}}') ?? '', /multicast/);
  t.regex(
    fit('{"EnableIPv6":true,"Network":"198.18.0.0/16","IPv6Network":"fe80::/48","Backend":{"Type":"vxlan"}}') ?? '',
    /^IPv6Network fe80::\/48 .*link-local/,
  );
});

test("IPv6: a network containing the host's own IPv6 address is refused", (t) => {
  const v6: HostFacts = { ...facts, ifaceIPv6: ip('fd00:2::1'), publicIPv6: ip('fd00:2::1') };
  t.regex(
    fit('{"EnableIPv6":true,"Network":"198.18.0.0/16","IPv6Network":"fd00::/16","Backend":{"Type":"vxlan"}}', {
      facts: v6,
    }) ?? '',
    /^IPv6Network fd00::\/16 .*own address fd00:2::1 \(eth0\)/,
  );
  t.is(
    fit('{"EnableIPv6":true,"Network":"198.18.0.0/16","IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}', {
      facts: v6,
    }),
    undefined,
  );
});

test("what is the fabric's never counts: the Docker bridge in a subnet this host runs or ran, weft's and flanneld's devices", (t) => {
  const grown = '{"Network":"198.16.0.0/14","Backend":{"Type":"vxlan"}}';
  t.is(fit(grown), undefined);
  // The same bridge is a foreign LAN to a host that never ran the fabric.
  t.regex(fit(grown, { fabric: [] }) ?? '', /contains 198\.18\.1\.1, an address of docker0/);
  // A bridge still on a subnet a restart left in subnet.env.
  const env = parseEnvFile('FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.1.1/24\nFLANNEL_MTU=1450\n');
  t.is(fit(grown, { fabric: fabricPrefixes(env) }), undefined);
  t.deepEqual(
    fabricPrefixes(env).map((p) => `${p.ip.value}/${p.len}`),
    [`${pfx('198.18.0.0/16').ip.value}/16`, `${pfx('198.18.1.0/24').ip.value}/24`],
  );
});

test('finding 3: an overlay MTU above what the underlay carries (or out of bounds) is refused unless host.mtu fixes it', (t) => {
  const json = '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","MTU":65535}}';
  t.regex(
    fit(json, { mtu: { overlay: 65485, carried: 1450, overheadBytes: 50, fixedByHost: false } }) ?? '',
    /overlay MTU would be 65485, above the 1450 that eth0's MTU 1500 carries after the backend's 50-byte overhead/,
  );
  t.is(fit(json, { mtu: { overlay: 1400, carried: 1450, overheadBytes: 50, fixedByHost: true } }), undefined);
  t.regex(
    fit(json, { mtu: { overlay: 400, carried: 1450, overheadBytes: 50, fixedByHost: false } }) ?? '',
    /must be 576\.\.65535/,
  );
});

test("the links' addresses (no link-local IPv6) and the etcd endpoints' hosts", (t) => {
  const links = [
    {
      name: 'eth0',
      index: 2,
      mtu: 1500,
      up: true,
      addrs: [pfx('192.0.2.1/24')],
      addrs6: [
        { ip: ip('fe80::1'), len: 64, scope: 'link', deprecated: false, tentative: false },
        { ip: ip('fd00:2::1'), len: 64, scope: 'global', deprecated: false, tentative: false },
      ],
    },
  ];
  t.deepEqual(
    linkAddresses(links).map((a) => `${a.dev} ${a.addr.len}`),
    ['eth0 24', 'eth0 64'],
  );
  t.deepEqual(
    endpointHosts([
      'http://192.0.2.100:2379',
      'https://[fd00:2::64]:2379',
      'https://etcd.example:2379',
      'not a url',
    ]).map((e) => e.host),
    ['192.0.2.100', 'fd00:2::64', 'etcd.example'],
  );
});
