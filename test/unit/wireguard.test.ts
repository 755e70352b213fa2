// The wireguard backend: config decoding as flanneld decodes it, lease values byte-identical to
// flanneld's, untrusted BackendData judged per entry, and the kernel path through the reconciler
// against the honest fake host (it applies the `wireguard` tool lines as `wg set` would).
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { type Prefix, formatPrefix, parseIPv4, parsePrefix } from '../../src/core/net/cidr.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import type { ObservedRoute } from '../../src/core/datapath/datapath.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { encodeLeaseAttrs } from '../../src/core/flannel/lease.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { type PeerLease, validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import { batches, plan } from '../../src/core/datapath/plan.js';
import { parseSpec } from '../../src/core/spec/spec.js';
import { SpecError, formatProblem } from '../../src/core/base/errors.js';
import { wireguard } from '../../src/backends/wireguard.js';
import { jsonLogger } from '../../src/adapters/log.js';
import { pskTag } from '../../src/adapters/wireguard.js';
import { parseWgDump, planWireguard, renderWireguardOp } from '../../src/core/datapath/wireguard-plan.js';
import { generatePrivateKey, loadOrCreateKey, publicKeyOf } from '../../src/adapters/wireguard-keys.js';
import { type ReconcileInputs, Reconciler } from '../../src/agent/reconciler.js';
import { FakeHost } from '../helpers/fake-host.js';
import { BACKENDS } from '../helpers/backends.js';
import { wireguardDataOf } from '../../src/backends/wireguard-lease.js';

const ip = (s: string) => {
  const a = parseIPv4(s);
  if (!a) throw new Error(s);
  return a;
};
const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const WG = checkNetworkConfig(
  decodeNetworkConfig(
    '{"Network":"198.18.0.0/16","Backend":{"Type":"wireguard","PersistentKeepaliveInterval":25}}',
    BACKENDS,
  ),
);
const facts: HostFacts = {
  iface: 'eth0',
  ifaceIP: ip('192.0.2.1'),
  ifaceMTU: 1500,
  publicIP: ip('192.0.2.1'),
  why: 'test',
};
const underlay: ObservedRoute[] = [
  { dst: pfx('192.0.2.0/24'), dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true },
];
const own = pfx('198.18.1.0/24');
const KEY_FILE = '/var/lib/weft/wireguard/private.key';
const priv = generatePrivateKey();
const pub = publicKeyOf(priv);
const peerKeys = new Map<number, string>();
const keyOf = (n: number): string => {
  let k = peerKeys.get(n);
  if (!k) {
    k = publicKeyOf(generatePrivateKey());
    peerKeys.set(n, k);
  }
  return k;
};

function lease(n: number, data: string, type = 'wireguard'): PeerLease {
  const v = validatePeerLease(
    `198.18.${n}.0-24`,
    `{"PublicIP":"192.0.2.${n + 10}","PublicIPv6":null,"BackendType":"${type}","BackendData":${data}}`,
    WG,
    BACKENDS,
    String(n),
  );
  if (!v.ok) throw new Error(v.reason);
  return v.lease;
}
const peer = (n: number, port = 51820): PeerLease => lease(n, `{"PublicKey":"${keyOf(n)}","Port":${port}}`);

test("config: flanneld's defaults, keys matched case-insensitively, bad values refused with the field", (t) => {
  const d = checkNetworkConfig(
    decodeNetworkConfig('{"Network":"198.18.0.0/16","Backend":{"Type":"wireguard"}}', BACKENDS),
  ).backend.options;
  t.deepEqual(d, { listenPort: 51820, listenPortV6: 51821, mtu: 0, keepaliveSeconds: 0, mode: 'separate' });
  const c = decodeNetworkConfig(
    '{"Network":"198.18.0.0/16","Backend":{"type":"WireGuard","listenport":51000,"persistentkeepaliveinterval":25,"mode":"auto","PSK":"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE="}}',
    BACKENDS,
  ).backend;
  t.is(c.type, 'wireguard');
  t.like(c.options, {
    listenPort: 51000,
    keepaliveSeconds: 25,
    mode: 'auto',
    psk: 'YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE=',
  });
  const bad = (backend: string) =>
    t.throws(() => decodeNetworkConfig(`{"Network":"198.18.0.0/16","Backend":${backend}}`, BACKENDS));
  t.regex(bad('{"Type":"wireguard","Mode":"Separate"}').message, /no valid Mode configured/);
  t.regex(bad('{"Type":"wireguard","Mode":"ipv6"}').message, /needs an IPv6 fabric/);
  t.regex(bad('{"Type":"wireguard","PersistentKeepaliveInterval":"25s"}').message, /cannot unmarshal string/);
  const psk = bad('{"Type":"wireguard","PSK":"c2VjcmV0"}').message;
  t.regex(psk, /could not parse psk/);
  t.false(psk.includes('c2VjcmV0'), 'the PSK is never echoed');
  t.regex(bad('{"Type":"wireguard","ListenPort":70000}').message, /ListenPort 70000 is outside 1\.\.65535/);
});

test("spec: wireguard keys become flanneld's Backend; mode ipv6 and vxlan keys are positioned errors", (t) => {
  const spec = parseSpec(
    'n.yaml',
    'network:\n  cidr: 198.18.0.0/16\n  backend:\n    type: wireguard\n    listenPort: 51000\n    persistentKeepalive: 25\n',
    BACKENDS,
    {},
  );
  t.is(
    spec.network?.configJson,
    '{"Network":"198.18.0.0/16","Backend":{"Type":"wireguard","ListenPort":51000,"PersistentKeepaliveInterval":25}}',
  );
  t.is(spec.host.wireguardKeyFile, '/var/lib/weft/wireguard/private.key');
  const e = t.throws(() =>
    parseSpec(
      'n.yaml',
      'network:\n  cidr: 198.18.0.0/16\n  backend:\n    type: wireguard\n    mode: ipv6\n    vni: 2\n',
      BACKENDS,
      {},
    ),
  );
  t.true(e instanceof SpecError);
  const text = e instanceof SpecError ? e.problems.map(formatProblem).join('\n') : '';
  t.regex(text, /n\.yaml:5:11: network\.backend\.mode ipv6 needs an IPv6 fabric/);
  t.regex(text, /n\.yaml:6:5: network\.backend\.vni applies to the vxlan backend only/);
  const host = parseSpec(
    'n.yaml',
    'host:\n  stateDir: /srv/weft\n  wireguardPSKFile: /etc/weft/psk\n',
    BACKENDS,
    {},
  ).host;
  t.like(host, { wireguardKeyFile: '/srv/weft/wireguard/private.key', wireguardPSKFile: '/etc/weft/psk' });
  const spaced = t.throws(() => parseSpec('n.yaml', 'host:\n  wireguardKeyFile: /etc/my keys/wg\n', BACKENDS, {}));
  t.regex(
    spaced instanceof SpecError ? spaced.problems.map(formatProblem).join('\n') : '',
    /n\.yaml:2:21: host\.wireguardKeyFile must not contain spaces/,
  );
});

test("lease value: byte-identical to flanneld's; BackendData judged per entry", (t) => {
  t.is(
    encodeLeaseAttrs(wireguard.leaseAttrs(WG, facts, '', { privateKeyFile: KEY_FILE, publicKey: pub })),
    `{"PublicIP":"192.0.2.1","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${pub}","Port":51820}}`,
  );
  t.is(pub.length, 44);
  const judge = (data: string) =>
    validatePeerLease(
      '198.18.9.0-24',
      `{"PublicIP":"192.0.2.9","PublicIPv6":null,"BackendType":"wireguard","BackendData":${data}}`,
      WG,
      BACKENDS,
    );
  t.like(judge(`{"PublicKey":"${pub}"}`), { ok: true });
  const old = judge(`{"PublicKey":"${pub}"}`);
  t.is(old.ok ? wireguardDataOf(old.lease)?.port : -1, undefined, 'no Port (flanneld < v0.26.6): none');
  for (const [data, why] of [
    ['{"PublicKey":"short"}', /not a WireGuard key/],
    ['{}', /no PublicKey/],
    ['{"PublicKey":7}', /cannot unmarshal number/],
    [`{"PublicKey":"${pub}","Port":70000}`, /uint16/],
    ['null', /no PublicKey/],
    [`{"PublicKey":"${pub.slice(0, 42)}B="}`, /not a WireGuard key/],
  ] as const) {
    const v = judge(data);
    t.false(v.ok, data);
    if (!v.ok) t.regex(v.reason, why, data);
  }
});

test('dump parser: keys, endpoints, allowed ips, keepalive; the private key and PSK are dropped', (t) => {
  const dump = `PRIVATEKEYSECRET=\t${pub}\t51820\toff\n${keyOf(2)}\tPSKSECRET=\t192.0.2.12:51820\t198.18.2.0/24\t1700000000\t10\t20\t25\n${keyOf(3)}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n`;
  const o = parseWgDump(dump, 'userspace', pskTag);
  t.truthy(o);
  t.false(
    JSON.stringify(o, (_k, v: unknown) => (v instanceof Map ? [...v.entries()] : v)).includes('SECRET'),
    'no secret kept',
  );
  t.like(o, { publicKey: pub, listenPort: 51820, implementation: 'userspace' });
  t.like(o?.peers.get(keyOf(2)), {
    endpoint: '192.0.2.12:51820',
    allowedIPs: ['198.18.2.0/24'],
    keepaliveSeconds: 25,
    presharedKey: true,
    latestHandshake: 1700000000,
  });
  t.like(o?.peers.get(keyOf(3)), { allowedIPs: [], keepaliveSeconds: 0, presharedKey: false });
});

function setup(peers: PeerLease[]) {
  const host = new FakeHost(underlay);
  host.files.set(KEY_FILE, `${priv}\n`);
  const lines: string[] = [];
  const r = new Reconciler({
    host,
    log: jsonLogger({
      write: (l: string) => {
        lines.push(l);
      },
    }),
    clock: Date,
    resyncMs: 60_000,
    rulesEveryMs: 60_000,
  });
  const inputs = (keys = { privateKeyFile: KEY_FILE, publicKey: pub }): ReconcileInputs => ({
    backend: wireguard,
    config: WG,
    v4: { network: pfx('198.18.0.0/16'), subnet: own },
    facts,
    mtu: 1420,
    vtepMAC: '',
    ipMasq: true,
    randomFully: false,
    peers: () => peers,
    wireguard: keys,
  });
  r.setInputs(inputs());
  return { r, host, lines, inputs };
}

const wgPeers = (host: FakeHost) =>
  [...(host.wg.get('flannel-wg')?.peers.values() ?? [])]
    .map((p) => `${p.publicKey} ${p.endpoint ?? ''} ${p.allowedIPs.join(',')} ${p.keepaliveSeconds}`)
    .sort();

test('kernel path: device, key, port, address, the network route, one peer per lease; a second look changes nothing', async (t) => {
  const peers = [peer(2), peer(3, 51999)];
  const { r, host } = setup(peers);
  await r.settle();
  t.like(host.links.get('flannel-wg'), { kind: 'wireguard', mtu: 1420, up: true });
  t.deepEqual(host.links.get('flannel-wg')?.addrs.map(formatPrefix), ['198.18.1.0/32']);
  t.like(host.wg.get('flannel-wg'), { publicKey: pub, listenPort: 51820 });
  t.deepEqual(
    wgPeers(host),
    [`${keyOf(2)} 192.0.2.12:51820 198.18.2.0/24 25`, `${keyOf(3)} 192.0.2.13:51999 198.18.3.0/24 25`].sort(),
  );
  t.true(
    host.routes.some(
      (x) =>
        formatPrefix(x.dst) === '198.18.0.0/16' && x.dev === 'flannel-wg' && x.proto === '175' && x.scopeLink && !x.via,
    ),
  );
  const before = host.applied.length;
  r.poke('netlink');
  await r.settle();
  t.is(host.applied.length, before, 'converged: nothing applied');
});

test('peer changes are O(1) wg lines; a new key replaces the old peer (none left behind); a vxlan peer is reported', async (t) => {
  const peers = [peer(2), peer(3), peer(4)];
  const { r, host, lines } = setup(peers);
  await r.settle();
  const mark = host.applied.length;
  peerKeys.delete(3);
  peers[1] = peer(3); // host 3 rotated its key
  peers.splice(2, 1); // host 4 left
  peers.push(lease(5, '{"VNI":1,"VtepMAC":"0e:00:00:00:00:05"}', 'vxlan'));
  r.poke('peers');
  await r.settle();
  const applied = host.applied.slice(mark);
  t.is(applied.length, 3, applied.join('\n'));
  t.true(applied.every((l) => l.startsWith('wireguard set flannel-wg peer ')));
  t.deepEqual(
    wgPeers(host),
    [`${keyOf(2)} 192.0.2.12:51820 198.18.2.0/24 25`, `${keyOf(3)} 192.0.2.13:51820 198.18.3.0/24 25`].sort(),
    'no stale peer',
  );
  t.regex(
    lines.join('\n'),
    /"msg":"peer not programmed","subnet":"198\.18\.5\.0-24","reason":"backend vxlan is not wireguard: unreachable/,
  );
  t.is(r.stats.peersSkipped, 1);
});

test('rotation on this host: the device switches key with one line; drift (device deleted, peer removed) is repaired', async (t) => {
  const { r, host, inputs } = setup([peer(2)]);
  await r.settle();
  const priv2 = generatePrivateKey();
  host.files.set(KEY_FILE, `${priv2}\n`);
  const mark = host.applied.length;
  r.setInputs(inputs({ privateKeyFile: KEY_FILE, publicKey: publicKeyOf(priv2) }));
  await r.settle();
  t.deepEqual(host.applied.slice(mark), [`wireguard set flannel-wg listen-port 51820 private-key ${KEY_FILE}`]);
  t.is(host.wg.get('flannel-wg')?.publicKey, publicKeyOf(priv2));
  host.wg.get('flannel-wg')?.peers.clear();
  r.poke('netlink');
  await r.settle();
  t.is(wgPeers(host).length, 1, 'peer restored');
  await host.applyBatch('ip', ['link del flannel-wg']);
  r.poke('netlink');
  await r.settle();
  t.is(wgPeers(host).length, 1, 'device recreated with its peer');
  t.true(host.routes.some((x) => formatPrefix(x.dst) === '198.18.0.0/16' && x.dev === 'flannel-wg'));
});

test('plan: a clashing key goes to the older lease; own key and own IP are skipped; ops render for the wireguard tool', (t) => {
  const a = lease(2, `{"PublicKey":"${keyOf(7)}","Port":51820}`);
  const b = lease(3, `{"PublicKey":"${keyOf(7)}","Port":51820}`);
  const self = lease(4, `{"PublicKey":"${pub}","Port":51820}`);
  const d = wireguard.desired({
    config: WG,
    own: { v4: own },
    facts,
    routes: underlay,
    peers: [b, a, self],
    mtu: 1420,
    vtepMAC: '',
    wireguard: { privateKeyFile: KEY_FILE, publicKey: pub, presharedKeyFile: '/etc/weft/psk' },
  });
  t.deepEqual(d.skipped.map((s) => s.subnetKey).sort(), ['198.18.3.0-24', '198.18.4.0-24']);
  const ops = plan(
    d,
    { devices: new Map(), routes: underlay, neighs: [], fdb: [] },
    { networks: [pfx('198.18.0.0/16')], ownSubnets: [own], iface: 'eth0' },
  );
  const text = batches(ops).map((x) => `${x.tool}: ${x.lines.join(' | ')}`);
  t.deepEqual(text, [
    'wireguard: add flannel-wg mtu 1420',
    'ip: link set dev flannel-wg up | addr add 198.18.1.0/32 dev flannel-wg',
    `wireguard: set flannel-wg listen-port 51820 private-key /var/lib/weft/wireguard/private.key | set flannel-wg peer ${keyOf(7)} endpoint 192.0.2.12:51820 allowed-ips 198.18.2.0/24 persistent-keepalive 25 preshared-key /etc/weft/psk`,
    'ip: route replace 198.18.0.0/16 dev flannel-wg scope link proto 175',
  ]);
});

test('plan: a subnet in two keys (`S-24` and `S-24&V-64`) goes to the older lease, whatever the order; the copy is skipped with a reason', (t) => {
  const value = (n: number, key: string) =>
    `{"PublicIP":"192.0.2.${n}","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${key}","Port":51820}}`;
  const judged = (subnetKey: string, v: string, rev: string): PeerLease => {
    const r = validatePeerLease(subnetKey, v, WG, BACKENDS, rev);
    if (!r.ok) throw new Error(r.reason);
    return r.lease;
  };
  const real = judged('198.18.5.0-24', value(15, keyOf(5)), '5');
  const copy = judged('198.18.5.0-24&fd18:0:0:5::-64', value(99, keyOf(99)), '9');
  t.is(copy.subnet && formatPrefix(copy.subnet), '198.18.5.0/24', 'the copy claims the same IPv4 subnet');
  for (const order of [
    [real, copy],
    [copy, real],
  ]) {
    const d = wireguard.desired({
      config: WG,
      own: { v4: own },
      facts,
      routes: underlay,
      peers: order,
      mtu: 1420,
      vtepMAC: '',
      wireguard: { privateKeyFile: KEY_FILE, publicKey: pub },
    });
    const dev = d.devices[0];
    if (dev?.kind !== 'wireguard') throw new Error('no wireguard device');
    t.deepEqual(
      [...dev.peers.values()].map((p) => `${p.publicKey} ${p.allowedIPs.map(formatPrefix).join(',')}`),
      [`${keyOf(5)} 198.18.5.0/24`],
      'only the older lease gets the allowed IPs',
    );
    t.deepEqual(d.skipped, [
      {
        subnetKey: '198.18.5.0-24&fd18:0:0:5::-64',
        reason: 'subnet 198.18.5.0/24 is also claimed by the older lease 198.18.5.0-24',
      },
    ]);
    t.is(d.peersProgrammed, 1);
  }
  // A copy that loses the subnet claims no key either: the real host keeps its peer when the
  // copy also reuses its public key.
  const both = judged('198.18.5.0-24&fd18:0:0:7::-64', value(98, keyOf(5)), '11');
  const d = wireguard.desired({
    config: WG,
    own: { v4: own },
    facts,
    routes: underlay,
    peers: [both, real],
    mtu: 1420,
    vtepMAC: '',
    wireguard: { privateKeyFile: KEY_FILE, publicKey: pub },
  });
  const dev = d.devices[0];
  t.is(dev?.kind === 'wireguard' ? dev.peers.get(keyOf(5))?.endpoint : '', '192.0.2.15:51820');
});

test('a changed PSK is set again on every peer (its fingerprint differs); the same PSK changes nothing', (t) => {
  const d = wireguard.desired({
    config: WG,
    own: { v4: own },
    facts,
    routes: underlay,
    peers: [peer(2)],
    mtu: 1420,
    vtepMAC: '',
    wireguard: { privateKeyFile: KEY_FILE, publicKey: pub, presharedKeyFile: '/p', presharedKeyTag: pskTag('new') },
  });
  const dev = d.devices[0];
  if (dev?.kind !== 'wireguard') throw new Error('no wireguard device');
  const seen = (tag: string) => ({
    publicKey: pub,
    listenPort: 51820,
    implementation: 'kernel' as const,
    peers: new Map([
      [
        keyOf(2),
        {
          publicKey: keyOf(2),
          endpoint: '192.0.2.12:51820',
          allowedIPs: ['198.18.2.0/24'],
          keepaliveSeconds: 25,
          presharedKey: true,
          presharedKeyTag: tag,
          latestHandshake: 0,
        },
      ],
    ]),
  });
  t.deepEqual(planWireguard(dev, seen(pskTag('new'))), []);
  t.deepEqual(planWireguard(dev, seen(pskTag('old'))).map(renderWireguardOp), [
    `set flannel-wg peer ${keyOf(2)} endpoint 192.0.2.12:51820 allowed-ips 198.18.2.0/24 persistent-keepalive 25 preshared-key /p`,
  ]);
  t.not(pskTag('new'), pskTag('old'));
  t.false(pskTag('new').includes('new'));
});

test("key file: created 0600 in a 0700 directory; flanneld's key adopted once; a loose mode tightened; errors never quote the key", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-wgkey-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const theirs = generatePrivateKey();
  writeFileSync(join(dir, 'wgkey'), theirs); // flanneld writes it with no newline
  const file = join(dir, 'state', 'wireguard', 'private.key');
  t.like(await loadOrCreateKey(file, join(dir, 'wgkey')), {
    publicKey: publicKeyOf(theirs),
    adopted: true,
    created: false,
  });
  t.is(statSync(file).mode & 0o777, 0o600);
  t.is(statSync(join(dir, 'state', 'wireguard')).mode & 0o777, 0o700);
  t.like(
    await loadOrCreateKey(file, join(dir, 'wgkey')),
    { publicKey: publicKeyOf(theirs), adopted: false, created: false },
    'kept, not adopted again',
  );
  chmodSync(file, 0o644);
  t.like(await loadOrCreateKey(file), { fixedMode: true });
  t.is(statSync(file).mode & 0o777, 0o600);
  const fresh = join(dir, 'other', 'private.key');
  writeFileSync(join(dir, 'bad'), 'not a key');
  t.like(await loadOrCreateKey(fresh, join(dir, 'bad')), { created: true, adopted: false });
  writeFileSync(file, 'c2VjcmV0LW5vdC1hLWtleQ==\n');
  const e = await t.throwsAsync(loadOrCreateKey(file));
  t.false(e.message.includes('c2VjcmV0'), e.message);
});
