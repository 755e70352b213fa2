// The registry of device kinds (core/datapath/devices.ts): each kind's parser on what iproute2
// prints, whether an observed device can be kept, what is fixed in place, the line that creates
// one, its configuration beyond the link and the doctor's checks; and that no code outside the
// device-kind modules branches on a device's kind.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import test from 'ava';
import { type IP, type Prefix, formatPrefix, parseIP, parsePrefix } from '../../src/core/net/cidr.js';
import type {
  ObservedDevice,
  ObservedWireguard,
  ObservedWireguardPeer,
  VxlanDevice,
  WireguardDevice,
} from '../../src/core/datapath/datapath.js';
import {
  DEVICE_KINDS,
  OBSERVED_KINDS,
  checksOwnPeers,
  deviceAddLine,
  deviceAddTool,
  deviceCheck,
  deviceCompatible,
  deviceConfigOps,
  deviceFixes,
  devicePeerChecks,
  observedDevice,
  vtepMACOf,
  wireguardImplementationOf,
  wireguardOf,
  withWireguard,
} from '../../src/core/datapath/devices.js';
import { renderWireguardOp } from '../../src/core/datapath/wireguard-plan.js';
import { parseDevice } from '../../src/adapters/iproute2.js';
import { DEV4, DEV6 } from './fixtures/iproute2-v6.js';
import { BRIDGE, OTHER_TUN, VETH, VXLAN_GBP, WG_KERNEL, WG_TUN } from './fixtures/iproute2-devices.js';
import { REPO } from '../helpers/cli.js';

const addr = (s: string): IP => {
  const a = parseIP(s);
  if (!a) throw new Error(s);
  return a;
};
const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const parsed = (text: string): ObservedDevice => {
  const d = parseDevice(text);
  if (!d) throw new Error('fixture');
  return d;
};
const renamed = (o: ObservedDevice, name: string): ObservedDevice => ({ ...o, name });

const VX: VxlanDevice = {
  kind: 'vxlan',
  name: 'flannel.1',
  vni: 1,
  local: addr('192.0.2.1'),
  underlay: 'eth0',
  port: 8472,
  learning: false,
  gbp: false,
  mtu: 1450,
  mac: '0e:00:00:00:00:01',
  addresses: [pfx('198.18.1.0/32')],
};
const KEY_A = 'A'.repeat(43) + '=';
const KEY_B = 'B'.repeat(43) + '=';
const WG: WireguardDevice = {
  kind: 'wireguard',
  name: 'flannel-wg',
  mtu: 1420,
  addresses: [pfx('198.18.1.0/32')],
  listenPort: 51820,
  privateKeyFile: '/var/lib/weft/wg.key',
  publicKey: KEY_A,
  peers: new Map([
    [KEY_B, { publicKey: KEY_B, endpoint: '192.0.2.2:51820', allowedIPs: [pfx('198.18.2.0/24')], keepaliveSeconds: 0 }],
  ]),
};
const wgPeer = (patch: Partial<ObservedWireguardPeer> = {}): ObservedWireguardPeer => ({
  publicKey: KEY_B,
  endpoint: '192.0.2.2:51820',
  allowedIPs: ['198.18.2.0/24'],
  keepaliveSeconds: 0,
  presharedKey: false,
  latestHandshake: 1700000000,
  ...patch,
});
const wgConfig = (patch: Partial<ObservedWireguard> = {}): ObservedWireguard => ({
  publicKey: KEY_A,
  listenPort: 51820,
  peers: new Map([[KEY_B, wgPeer()]]),
  implementation: 'userspace',
  ...patch,
});

test('parsers: each kernel link kind reads as its kind, with only its own fields', (t) => {
  t.like(parsed(DEV4), {
    kind: 'vxlan',
    name: 'flannel.1',
    vni: 1,
    local: '192.0.2.1',
    underlay: 'eth0',
    port: 8472,
    learning: false,
    gbp: false,
    mac: '0e:00:00:00:00:01',
    mtu: 1450,
    up: true,
  });
  t.like(parsed(DEV6), { kind: 'vxlan', local: 'fd00:2::1', mtu: 1430 }, 'over IPv6 the source address is local6');
  t.like(parsed(VXLAN_GBP), {
    kind: 'vxlan',
    vni: 9,
    port: 4789,
    learning: true,
    gbp: true,
    mac: '0e:00:00:00:00:09',
    up: false,
  });

  const tun = parsed(WG_TUN);
  t.deepEqual(
    { ...tun, addrs: tun.addrs.map(formatPrefix) },
    { kind: 'tun', name: 'flannel-wg', mtu: 1420, up: true, addrs: ['198.18.1.0/32'] },
    "wireguard-go's tun: no MAC, no vxlan fields, never its fe80::",
  );
  t.deepEqual(parsed(OTHER_TUN), { kind: 'tun', name: 'flannel.3', mtu: 1500, up: false, addrs: [] });
  t.deepEqual(parsed(WG_KERNEL).kind, 'wireguard');
  t.false('mac' in parsed(WG_KERNEL));

  t.deepEqual(parsed(BRIDGE), {
    kind: 'other',
    linkKind: 'bridge',
    name: 'flannel.2',
    mtu: 1500,
    up: false,
    addrs: [],
  });
  t.like(parsed(VETH), { kind: 'other', linkKind: 'veth', name: 'eth0' });
  t.like(
    parsed('[{"ifname":"flannel.1","mtu":1500,"flags":[]}]'),
    { kind: 'other', linkKind: '' },
    'no linkinfo at all',
  );
  t.like(
    parsed('[{"ifname":"flannel.1","linkinfo":{"info_kind":"constructor"}}]'),
    { kind: 'other', linkKind: 'constructor' },
    'a kind named like an Object member is just another kind',
  );
});

test('parsers: a vxlan parameter of the wrong JSON type is absent, and the device then cannot be kept', (t) => {
  const odd = parsed(DEV4.replace('"id":1', '"id":"1"').replace('"port":8472', '"port":null'));
  t.is(odd.kind, 'vxlan');
  t.false('vni' in odd);
  t.false('port' in odd);
  t.false(deviceCompatible(odd, VX));
  t.true(deviceCompatible(parsed(DEV4), VX));
});

test("registry: every observed kind's parser yields that kind; every desired kind renders its add line for its tool", (t) => {
  for (const [kind, parse] of Object.entries(OBSERVED_KINDS)) {
    const report = { name: 'x', linkKind: kind, mtu: 1500, mac: '', up: false, addrs: [], data: {} };
    const [direct, registered]: string[] = [parse(report).kind, observedDevice(report).kind];
    t.deepEqual([direct, registered], [kind, kind]);
  }
  t.deepEqual(Object.keys(DEVICE_KINDS).sort(), ['vxlan', 'wireguard']);
  t.is(deviceAddTool(VX), 'ip');
  t.is(
    deviceAddLine(VX),
    'link add flannel.1 address 0e:00:00:00:00:01 mtu 1450 type vxlan id 1 local 192.0.2.1 dev eth0 dstport 8472 nolearning',
  );
  t.is(
    deviceAddLine({ ...VX, learning: true, gbp: true }),
    'link add flannel.1 address 0e:00:00:00:00:01 mtu 1450 type vxlan id 1 local 192.0.2.1 dev eth0 dstport 8472 learning gbp',
  );
  t.is(deviceAddTool(WG), 'wireguard');
  t.is(deviceAddLine(WG), 'add flannel-wg mtu 1420');
});

test('vxlan: compatible only with a vxlan device of the same parameters; MAC, state and MTU are fixed in place', (t) => {
  const seen = parsed(DEV4);
  t.deepEqual(deviceFixes(seen, VX), []);
  for (const [what, d] of [
    ['vni', { ...VX, vni: 2 }],
    ['local', { ...VX, local: addr('192.0.2.9') }],
    ['underlay', { ...VX, underlay: 'eth1' }],
    ['port', { ...VX, port: 4789 }],
    ['learning', { ...VX, learning: true }],
    ['gbp', { ...VX, gbp: true }],
  ] as const) {
    t.is(deviceFixes(seen, d), undefined, `another ${what}: recreated`);
  }
  for (const other of [parsed(BRIDGE), parsed(WG_TUN), parsed(WG_KERNEL)])
    t.is(deviceFixes(renamed(other, 'flannel.1'), VX), undefined, `${other.kind}: recreated`);
  t.deepEqual(
    deviceFixes(seen, { ...VX, mac: '0e:00:00:00:00:99' }),
    ['down', 'address 0e:00:00:00:00:99', 'up'],
    'a new MAC: down, address, up',
  );
  t.deepEqual(deviceFixes(seen, { ...VX, mac: '0e:00:00:00:00:99', mtu: 1400 }), [
    'down',
    'address 0e:00:00:00:00:99',
    'up',
    'mtu 1400',
  ]);
  t.deepEqual(
    deviceFixes(parsed(VXLAN_GBP), {
      ...VX,
      name: 'flannel.9',
      vni: 9,
      port: 4789,
      learning: true,
      gbp: true,
      mac: '0e:00:00:00:00:09',
    }),
    ['up'],
    'down: up',
  );
  t.deepEqual(deviceFixes(seen, { ...VX, mtu: 1400 }), ['mtu 1400']);
  t.deepEqual(deviceConfigOps(VX, seen), [], 'nothing beyond the link');
  t.is(vtepMACOf(seen), '0e:00:00:00:00:01', 'a kept vxlan device keeps its MAC');
  t.is(vtepMACOf(renamed(parsed(BRIDGE), 'flannel.1')), undefined, "another kind's address is never a VTEP MAC");
  t.is(vtepMACOf(undefined), undefined);
});

test("wireguard: the kernel's link, or a tun wg can read; state and MTU fixed in place, never a MAC; the key and peers planned after it", (t) => {
  const kernel = parsed(WG_KERNEL);
  const tun = parsed(WG_TUN);
  t.deepEqual(deviceFixes(kernel, WG), []);
  t.is(deviceFixes(tun, WG), undefined, "a tun wg cannot read is someone else's: recreated");
  t.deepEqual(deviceFixes(withWireguard(tun, wgConfig()), WG), []);
  t.deepEqual(deviceFixes(withWireguard(tun, wgConfig()), { ...WG, mtu: 1380 }), ['mtu 1380']);
  t.deepEqual(deviceFixes({ ...kernel, up: false }, { ...WG, mtu: 1380 }), ['up', 'mtu 1380']);
  t.is(deviceFixes(renamed(parsed(DEV4), 'flannel-wg'), WG), undefined, 'a vxlan device with its name: recreated');
  t.is(deviceFixes(renamed(parsed(BRIDGE), 'flannel-wg'), WG), undefined);

  const lines = (kept: ObservedDevice | undefined) => deviceConfigOps(WG, kept).map(renderWireguardOp);
  t.deepEqual(lines(withWireguard(tun, wgConfig())), [], 'configured as wanted: nothing');
  t.deepEqual(lines(withWireguard(tun, wgConfig({ listenPort: 1 }))), [
    'set flannel-wg listen-port 51820 private-key /var/lib/weft/wg.key',
  ]);
  const everything = [
    'set flannel-wg listen-port 51820 private-key /var/lib/weft/wg.key',
    `set flannel-wg peer ${KEY_B} endpoint 192.0.2.2:51820 allowed-ips 198.18.2.0/24 persistent-keepalive off`,
  ];
  t.deepEqual(lines(undefined), everything, 'created this pass: everything is set');
  t.deepEqual(lines(kernel), everything, 'configuration not readable: everything is set');
  t.deepEqual(
    lines(renamed(parsed(DEV4), 'flannel-wg')),
    everything,
    'a device it cannot keep is no configuration to keep',
  );

  t.is(wireguardImplementationOf(kernel), 'kernel');
  t.is(wireguardImplementationOf(tun), 'userspace');
  t.is(wireguardImplementationOf(parsed(DEV4)), undefined, 'wg show is never run on a vxlan device');
  t.is(wireguardImplementationOf(parsed(BRIDGE)), undefined);
  t.is(
    wireguardOf(withWireguard(parsed(DEV4), wgConfig())),
    undefined,
    'a vxlan device carries no WireGuard configuration',
  );
});

test('doctor: each kind checks its device; a device of another kind holding the name is named', (t) => {
  const vx = parsed(DEV4);
  t.like(deviceCheck(VX, vx), {
    check: 'device',
    verdict: 'ok',
    peer: null,
    fix: '',
    what: 'flannel.1 is up, VNI 1, UDP 8472, MTU 1450, holds 198.18.1.0/32',
  });
  t.like(deviceCheck(VX, undefined), { verdict: 'fail', what: 'the vxlan device flannel.1 is missing' });
  t.like(deviceCheck(VX, renamed(parsed(BRIDGE), 'flannel.1')), {
    verdict: 'fail',
    what: 'the vxlan device flannel.1 is missing (a bridge device has its name)',
  });
  t.like(deviceCheck(VX, renamed(parsed(WG_TUN), 'flannel.1')), {
    what: 'the vxlan device flannel.1 is missing (a tun device has its name)',
  });
  t.like(deviceCheck(VX, renamed(parsed('[{"ifname":"x"}]'), 'flannel.1')), {
    what: 'the vxlan device flannel.1 is missing (a non-vxlan device has its name)',
  });
  t.like(deviceCheck({ ...VX, mac: '0e:00:00:00:00:99' }, vx), {
    verdict: 'fail',
    what: "flannel.1: its MAC 0e:00:00:00:00:01 is not the lease's VtepMAC 0e:00:00:00:00:99",
  });

  const tun = withWireguard(parsed(WG_TUN), wgConfig());
  t.like(deviceCheck(WG, tun), { verdict: 'ok', what: 'flannel-wg is up (userspace), UDP 51820, MTU 1420, 1 peers' });
  t.like(deviceCheck(WG, undefined), { verdict: 'fail', what: 'the WireGuard device flannel-wg is missing' });
  t.like(deviceCheck(WG, parsed(WG_TUN)), {
    verdict: 'fail',
    what: 'the WireGuard device flannel-wg is missing (its configuration cannot be read with wg)',
  });
  t.like(deviceCheck(WG, withWireguard(parsed(WG_TUN), wgConfig({ publicKey: KEY_B }))), {
    verdict: 'fail',
    what: `flannel-wg: its public key ${KEY_B} is not the lease's ${KEY_A}`,
  });
});

test('doctor: a kind without a route per peer checks its peers itself; the others leave peers to the route probes', (t) => {
  t.false(checksOwnPeers(VX));
  t.deepEqual(devicePeerChecks(VX, parsed(DEV4)), []);
  t.true(checksOwnPeers(WG));
  const checks = (c: ObservedWireguard) =>
    devicePeerChecks(WG, withWireguard(parsed(WG_TUN), c)).map(
      (f) => `${f.check} ${f.verdict} ${f.peer ?? ''}: ${f.what}`,
    );
  t.deepEqual(checks(wgConfig()), [
    "wireguard-peer ok 198.18.2.0/24: peer 192.0.2.2:51820 with the lease's key; a handshake has completed",
  ]);
  t.deepEqual(checks(wgConfig({ peers: new Map([[KEY_B, wgPeer({ latestHandshake: 0 })]]) })), [
    'wireguard-peer warn 198.18.2.0/24: no handshake with 192.0.2.2:51820 yet: nothing was sent to it, or UDP to it is blocked',
  ]);
  t.deepEqual(checks(wgConfig({ peers: new Map() })), [
    `wireguard-peer fail 198.18.2.0/24: no peer with the lease's key ${KEY_B} on flannel-wg`,
  ]);
  t.deepEqual(
    devicePeerChecks(WG, parsed(WG_TUN)),
    [],
    'a device wg cannot read has no peers to check (its device finding says so)',
  );
});

/** src files outside the device-kind modules (core/datapath/device*.ts, where kinds are defined and dispatched). */
function sourcesOutsideDeviceKinds(dir = join(REPO, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourcesOutsideDeviceKinds(path);
    return e.name.endsWith('.ts') && !/^src\/core\/datapath\/device[-\w]*\.ts$/.test(relative(REPO, path))
      ? [path]
      : [];
  });
}

test('no code outside the device-kind modules branches on a device kind (it calls the registry)', (t) => {
  const kinds = [...Object.keys(DEVICE_KINDS), ...Object.keys(OBSERVED_KINDS), 'other'];
  const test = new RegExp(
    String.raw`\.kind\s*[!=]==?\s*'(${kinds.join('|')})'|'(${kinds.join('|')})'\s*[!=]==?\s*\w+\.kind\b`,
  );
  const found = sourcesOutsideDeviceKinds().flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .flatMap((line, i) => (test.test(line) ? [`${relative(REPO, f)}:${i + 1}: ${line.trim()}`] : [])),
  );
  t.deepEqual(found, []);
  t.true(test.test("if (seen?.kind === 'vxlan' && seen.mac) return seen.mac;"), 'the check finds what it looks for');
});
