// Host facts with IPv6: the link parser on output captured from a real kernel (Debian 12,
// iproute2 6.1, in a throwaway namespace), the interface choice for dual-stack and IPv6-only
// hosts, and familyRefusal's messages.
import test from 'ava';
import { type IP, type Prefix, formatIP, parseIP, parsePrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import type { ObservedRoute } from '../../src/core/datapath/datapath.js';
import {
  type FactsInput,
  type HostFacts,
  type ObservedLink,
  chooseInterface,
  familyRefusal,
  usableIPv6,
} from '../../src/core/host/host-facts.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { DEFAULTS } from '../../src/core/spec/spec.js';
import { parseLinks } from '../../src/adapters/iproute2.js';
import { parseRoutes } from '../../src/adapters/iproute2.js';
import { BACKENDS } from '../helpers/backends.js';

const ip = (s: string): IP => {
  const a = parseIP(s);
  if (!a) throw new Error(s);
  return a;
};
const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const host = {
  ipMasq: true,
  subnetFile: DEFAULTS.subnetFile,
  leaseTTLSeconds: 86400,
  leaseRenewMarginSeconds: 3600,
  etcdGraceSeconds: 60,
  stateDir: DEFAULTS.stateDir,
  followConfig: true,
  configHoldDownSeconds: 5,
  configMinIntervalSeconds: 30,
  maxPeers: 65_536,
};

// `ip -json addr show`: ens3 has IPv4, a tentative, a deprecated and a good global IPv6 address
// and a link-local one; ens4 and eth1 only link-local; eth0 only IPv6 (global + link-local).
const ADDRS =
  '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"],"mtu":65536,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[]},{"ifindex":2,"link":"ens3","ifname":"ens4","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"d2:11:74:70:b2:fc","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet6","local":"fe80::d011:74ff:fe70:b2fc","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":3,"link":"ens4","ifname":"ens3","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"5e:a4:c0:18:f5:75","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"192.0.2.11","prefixlen":24,"scope":"global","label":"ens3","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fd00:2::12","prefixlen":64,"scope":"global","tentative":true,"valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fd00:2::13","prefixlen":64,"scope":"global","nodad":true,"deprecated":true,"valid_life_time":4294967295,"preferred_life_time":0},{"family":"inet6","local":"fd00:2::11","prefixlen":64,"scope":"global","nodad":true,"valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::5ca4:c0ff:fe18:f575","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":4,"link":"eth0","ifname":"eth1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"9a:d0:92:ec:8c:26","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet6","local":"fe80::98d0:92ff:feec:8c26","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":5,"link":"eth1","ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"qdisc":"noqueue","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"6e:16:6a:fd:ec:3d","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet6","local":"fd00:3::11","prefixlen":64,"scope":"global","nodad":true,"valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::6c16:6aff:fefd:ec3d","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]';
// `ip -json -6 route show table main default`, and the whole IPv6 main table.
const DEFAULT6 = '[{"dst":"default","gateway":"fd00:3::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}]';
const MAIN6 =
  '[{"dst":"fd00:2::/64","dev":"ens3","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"fd00:3::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"fe80::/64","dev":"ens4","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"default","gateway":"fd00:3::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}]';

const links = parseLinks(ADDRS);
const def6 = parseRoutes(DEFAULT6, 6);
const v4default: ObservedRoute = {
  dst: pfx('0.0.0.0/0'),
  via: ip('192.0.2.254'),
  dev: 'ens3',
  proto: 'dhcp',
  onlink: false,
  scopeLink: false,
};
const choose = (
  h: Partial<FactsInput['host']>,
  routes: readonly ObservedRoute[],
  ls: readonly ObservedLink[] = links,
): HostFacts => chooseInterface({ host: { ...host, ...h }, links: ls, routes });
const show = (f: HostFacts) =>
  `${f.iface} v4=${formatIP(f.ifaceIP)} pub=${formatIP(f.publicIP)} v6=${f.ifaceIPv6 ? formatIP(f.ifaceIPv6) : '-'} pub6=${f.publicIPv6 ? formatIP(f.publicIPv6) : '-'} | ${f.why}`;

test('the link parser keeps both families and the flags that decide what may be advertised', (t) => {
  const ens3 = links.find((l) => l.name === 'ens3');
  t.deepEqual(
    ens3?.addrs.map((a) => `${formatIP(a.ip)}/${a.len}`),
    ['192.0.2.11/24'],
  );
  t.deepEqual(
    ens3?.addrs6?.map(
      (a) =>
        `${formatIP(a.ip)}/${a.len} ${a.scope}${a.tentative ? ' tentative' : ''}${a.deprecated ? ' deprecated' : ''}`,
    ),
    [
      'fd00:2::12/64 global tentative',
      'fd00:2::13/64 global deprecated',
      'fd00:2::11/64 global',
      'fe80::5ca4:c0ff:fe18:f575/64 link',
    ],
  );
  t.deepEqual(
    links.map((l) => l.name),
    ['lo', 'ens4', 'ens3', 'eth1', 'eth0'],
  );
  t.deepEqual(links.find((l) => l.name === 'eth0')?.addrs, [], 'no IPv4 on eth0');
  t.deepEqual(
    def6.map((r) => `${formatIP(r.dst.ip)}/${r.dst.len} via ${r.via ? formatIP(r.via) : '-'} dev ${r.dev} ${r.proto}`),
    ['::/0 via fd00:3::1 dev eth0 boot'],
  );
  const main6 = parseRoutes(MAIN6, 6);
  t.is(
    show(choose({}, main6)),
    'eth0 v4=0.0.0.0 pub=0.0.0.0 v6=fd00:3::11 pub6=fd00:3::11 | eth0 carries the IPv6 default route (there is no IPv4 one)',
    'the whole IPv6 table, as listRoutes gives it',
  );
});

test('usable IPv6: global, not tentative or deprecated, never link-local; otherwise why not', (t) => {
  const by = (n: string) => links.find((l) => l.name === n) as ObservedLink;
  t.deepEqual(usableIPv6(by('ens3')), { ip: ip('fd00:2::11') });
  t.deepEqual(usableIPv6(by('eth0')), { ip: ip('fd00:3::11') });
  t.deepEqual(usableIPv6(by('ens4')), {
    missing: 'ens4 has only link-local IPv6 addresses (fe80::d011:74ff:fe70:b2fc), which peers cannot reach',
  });
  t.deepEqual(usableIPv6(by('lo')), { missing: 'lo has no IPv6 address' });
  const onlyBad: ObservedLink = {
    ...by('ens3'),
    addrs6: (by('ens3').addrs6 ?? []).filter((a) => a.tentative || a.deprecated),
  };
  t.deepEqual(usableIPv6(onlyBad), {
    missing:
      "ens3's global IPv6 addresses (fd00:2::12, fd00:2::13) are all deprecated or tentative (duplicate address detection not finished or failed)",
  });
  const slaac: ObservedLink = {
    ...by('eth0'),
    addrs6: [
      {
        ip: ip('2001:db8::aaaa'),
        len: 64,
        scope: 'global',
        deprecated: false,
        tentative: false,
        temporary: true,
        dynamic: true,
      },
      { ip: ip('2001:db8::5'), len: 64, scope: 'global', deprecated: false, tentative: false, dynamic: true },
      { ip: ip('2001:db8::1'), len: 64, scope: 'global', deprecated: false, tentative: false },
      { ip: ip('2001:db8::bad'), len: 64, scope: 'global', deprecated: false, tentative: false, dadfailed: true },
    ],
  };
  t.deepEqual(usableIPv6(slaac), { ip: ip('2001:db8::1') }, 'configured before learned before temporary');
  t.deepEqual(usableIPv6({ ...slaac, addrs6: (slaac.addrs6 ?? []).slice(0, 2) }), { ip: ip('2001:db8::5') });
});

test('interface choice with IPv6: dual-stack facts, the IPv6 default route on an IPv6-only host, publicIPv6', (t) => {
  t.is(
    show(choose({}, [v4default, ...def6])),
    'ens3 v4=192.0.2.11 pub=192.0.2.11 v6=fd00:2::11 pub6=fd00:2::11 | ens3 carries the default route',
    'the IPv4 default route wins',
  );
  t.is(
    show(choose({}, def6)),
    'eth0 v4=0.0.0.0 pub=0.0.0.0 v6=fd00:3::11 pub6=fd00:3::11 | eth0 carries the IPv6 default route (there is no IPv4 one)',
  );
  t.is(
    show(choose({ interface: 'eth0' }, [v4default])),
    'eth0 v4=0.0.0.0 pub=0.0.0.0 v6=fd00:3::11 pub6=fd00:3::11 | host.interface is eth0',
  );
  t.is(
    show(choose({ interface: 'ens3', publicIPv6: ip('2001:db8:5::11') }, [])),
    'ens3 v4=192.0.2.11 pub=192.0.2.11 v6=fd00:2::11 pub6=2001:db8:5::11 | host.interface is ens3',
  );
  t.is(
    show(choose({ publicIPv6: ip('fd00:3::11') }, [v4default])),
    'eth0 v4=0.0.0.0 pub=0.0.0.0 v6=fd00:3::11 pub6=fd00:3::11 | eth0 holds host.publicIPv6 fd00:3::11',
  );
  t.is(
    show(choose({ interfaceRegex: '^fd00:3:' }, [])),
    'eth0 v4=0.0.0.0 pub=0.0.0.0 v6=fd00:3::11 pub6=fd00:3::11 | eth0 matches host.interfaceRegex ^fd00:3:',
  );
  t.is(
    show(choose({ interfaceRegex: '^(ens4|eth0)$' }, [])),
    'eth0 v4=0.0.0.0 pub=0.0.0.0 v6=fd00:3::11 pub6=fd00:3::11 | eth0 matches host.interfaceRegex ^(ens4|eth0)$',
    'a link with only link-local addresses is no candidate',
  );
  t.is(choose({ interface: 'ens3' }, []).ipv6Missing, undefined);
  t.throws(() => choose({ interface: 'ens4' }, []), {
    message:
      'interface ens4 (host.interface is ens4) has no IPv4 address and no usable IPv6 address: ens4 has only link-local IPv6 addresses (fe80::d011:74ff:fe70:b2fc), which peers cannot reach',
  });
  const ens4 = choose({ interface: 'ens4', publicIPv6: ip('fd00:2::11') }, []);
  t.is(
    show(ens4),
    'ens4 v4=0.0.0.0 pub=0.0.0.0 v6=- pub6=fd00:2::11 | host.interface is ens4',
    'an explicit publicIPv6 may live elsewhere (flanneld: with --iface)',
  );
  t.regex(ens4.ipv6Missing ?? '', /only link-local/);
  t.throws(() => choose({}, []), {
    message: 'no interface found: set host.interface (no default route to pick one from)',
  });
  const weftDefault: ObservedRoute = { ...(def6[0] as ObservedRoute), proto: '175' };
  t.throws(
    () => choose({}, [weftDefault]),
    { message: /no interface found/ },
    "weft's own routes never choose the interface",
  );
});

const V4 = checkNetworkConfig(decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}', BACKENDS));
const DUAL = checkNetworkConfig(
  decodeNetworkConfig(
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}',
    BACKENDS,
  ),
);
const V6 = checkNetworkConfig(
  decodeNetworkConfig(
    '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan"}}',
    BACKENDS,
  ),
);

test('familyRefusal: a host serves the families it has addresses for, and says why not otherwise', (t) => {
  const dual = choose({ interface: 'ens3' }, []);
  const v6only = choose({ interface: 'eth0' }, []);
  const v4only = choose(
    { interface: 'ens3' },
    [],
    links.map((l) => ({ ...l, addrs6: (l.addrs6 ?? []).filter((a) => a.scope === 'link') })),
  );
  t.is(familyRefusal(V4, dual), undefined);
  t.is(familyRefusal(DUAL, dual), undefined);
  t.is(familyRefusal(V6, dual), undefined, 'an IPv4 address is not needed, and not in the way');
  t.is(familyRefusal(V6, v6only), undefined);
  t.is(familyRefusal(V4, v4only), undefined);
  t.is(
    familyRefusal(DUAL, v4only),
    "IPv6 is on in the network config but ens3 (host.interface is ens3) has no usable global IPv6 address: ens3 has only link-local IPv6 addresses (fe80::5ca4:c0ff:fe18:f575), which peers cannot reach; set host.publicIPv6 (or WEFT_PUBLIC_IPV6) to this host's global IPv6 address, or choose another interface with host.interface",
  );
  t.is(
    familyRefusal(V4, v6only),
    'IPv4 is on in the network config but eth0 (host.interface is eth0) has no IPv4 address: choose an interface that has one (host.interface, host.interfaceRegex, host.canReach) or make the network IPv6-only (network.ipv4: false)',
  );
  t.is(
    familyRefusal(DUAL, v6only),
    familyRefusal(V4, v6only),
    'dual-stack on an IPv6-only interface: the IPv4 half is what is missing',
  );
  t.is(
    familyRefusal(DUAL, { ...dual, publicIPv6: ip('fe80::1') }),
    "IPv6 is on in the network config but the public IPv6 address fe80::1 is link-local (fe80::/10), which peers cannot reach; set host.publicIPv6 to this host's global IPv6 address",
  );
  t.regex(
    familyRefusal(DUAL, { ...dual, publicIPv6: ip('::') }) ?? '',
    /public IPv6 address :: is the unspecified address, which peers cannot reach/,
  );
  const none: HostFacts = {
    iface: 'eth9',
    ifaceIP: ip('0.0.0.0'),
    ifaceMTU: 1500,
    publicIP: ip('0.0.0.0'),
    why: 'test',
  };
  t.is(
    familyRefusal(DUAL, none)?.split('; ').length,
    3,
    'both families named (the IPv6 message carries its own advice after a semicolon)',
  );
  t.regex(familyRefusal(V6, none) ?? '', /has no usable global IPv6 address: none found/);
});
