// A WireGuard PSK stored in the network config (flanneld's `Backend.PSK`): read as flanneld
// reads it (Go's base64: padding bits ignored), a new one is a live change that reaches every
// peer, and no diff, effect line or error ever shows a key.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { type IP, type Prefix, parseIPv4, parsePrefix } from '../../src/core/net/cidr.js';
import { type NetworkConfig, checkNetworkConfig, diffConfigs } from '../../src/core/flannel/config-check.js';
import { classifyConfigChange, fleetEffects } from '../../src/core/config/config-change.js';
import type { ObservedRoute, ObservedWireguard } from '../../src/core/datapath/datapath.js';
import type { HostFacts } from '../../src/core/host/host-facts.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { validatePeerLease } from '../../src/core/flannel/peer-lease.js';
import { parseSpec } from '../../src/core/spec/spec.js';
import { canonicalKey } from '../../src/core/flannel/wg-key.js';
import { planWireguard, renderWireguardOp } from '../../src/core/datapath/wireguard-plan.js';
import { wireguard } from '../../src/backends/wireguard.js';
import { jsonLogger } from '../../src/adapters/log.js';
import { pskTag } from '../../src/adapters/wireguard.js';
import { generatePrivateKey, publicKeyOf } from '../../src/adapters/wireguard-keys.js';
import { wireguardKeys } from '../../src/agent/wireguard-keys.js';
import { BACKENDS } from '../helpers/backends.js';
import { wireguardOptions } from '../../src/backends/wireguard-options.js';

/** What the wireguard backend asks the agent for under a config (its device, the stored PSK). */
const need = (c: NetworkConfig) => {
  const n = wireguard.wireguard?.(c);
  if (!n) throw new Error('no WireGuard need');
  return n;
};

const PSK_A = Buffer.alloc(32, 7).toString('base64'); // …Bwc=
const PSK_B = Buffer.alloc(32, 9).toString('base64'); // …CQk=
/** PSK_B with the two padding bits of its last character set: the same 32 bytes to Go. */
const PSK_B_PADDED = `${PSK_B.slice(0, 42)}n=`;
const wg = (psk?: string): NetworkConfig =>
  checkNetworkConfig(
    decodeNetworkConfig(
      `{"Network":"198.18.0.0/16","Backend":{"Type":"wireguard"${psk === undefined ? '' : `,"PSK":"${psk}"`}}}`,
      BACKENDS,
    ),
  );
const own = { v4: parsePrefix('198.18.1.0/24') as Prefix };
/** The backend types classifyConfigChange is told this weft runs. */
const RUNS = ['vxlan', 'host-gw', 'wireguard'];
const secrets = [PSK_A, PSK_B, PSK_B_PADDED];

test("Go's base64 reads a key with non-zero padding bits as the same 32 bytes: weft keeps the spelling wg accepts", (t) => {
  t.is(
    Buffer.from(PSK_B_PADDED, 'base64').toString('base64'),
    PSK_B,
    'the same bytes (Node, like Go, ignores the padding bits)',
  );
  t.is(canonicalKey(PSK_B_PADDED), PSK_B);
  t.is(canonicalKey(PSK_B), PSK_B);
  t.is(canonicalKey(`${PSK_B.slice(0, 20)}\r\n${PSK_B.slice(20)}\n`), PSK_B, 'CR and LF ignored anywhere, as Go does');
  for (const bad of [
    '',
    PSK_B.slice(0, 43),
    `${PSK_B.slice(0, 43)}==`,
    `${PSK_B} `,
    `${PSK_B.slice(0, 42)}-=`,
    `${PSK_B}AAAA`,
  ])
    t.is(canonicalKey(bad), undefined, JSON.stringify(bad));
  t.is(
    wireguardOptions(wg(PSK_B_PADDED)).psk,
    PSK_B,
    'a stored PSK flanneld accepts is accepted, in the canonical spelling',
  );
});

test('a PSK added, replaced or removed in etcd is a live change (psk); the same key spelt otherwise is none', (t) => {
  const parts = (before: NetworkConfig, after: NetworkConfig) => {
    const c = classifyConfigChange(before, after, own, RUNS);
    return c.kind === 'live' ? c.parts : c.kind;
  };
  t.deepEqual(parts(wg(), wg(PSK_A)), ['psk'], 'added');
  t.deepEqual(parts(wg(PSK_A), wg(PSK_B)), ['psk'], 'replaced: both sides show (set), still a change');
  t.deepEqual(parts(wg(PSK_A), wg()), ['psk'], 'removed');
  t.is(parts(wg(PSK_B), wg(PSK_B_PADDED)), 'none', 'the same key');
  t.is(parts(wg(PSK_A), wg(PSK_A)), 'none');
});

test("the diff, weft apply's effects and an error never show a PSK", (t) => {
  const diff = diffConfigs(wg(PSK_A), wg(PSK_B));
  t.deepEqual(diff, ['- Backend.PSK: (set)', '+ Backend.PSK: (set: a different key)']);
  const effects = fleetEffects(wg(PSK_A), wg(PSK_B), []);
  t.deepEqual(effects.parts, ['psk']);
  t.regex(effects.effects[0] ?? '', /^psk: live: every host sets the new preshared key/);
  t.false(effects.dockerRestart);
  const error = t.throws(() => wg(PSK_A.slice(0, 40)));
  const shown = [
    ...diff,
    ...diffConfigs(undefined, wg(PSK_A)),
    ...effects.effects,
    ...effects.outputs,
    error.message,
  ].join('\n');
  for (const s of secrets)
    t.false(shown.includes(s) || shown.includes(s.slice(0, 20)), 'no key, not even a part of one');
});

test('the live path: deriving a replaced PSK rewrites the copy wg reads and gives the device a new tag, so every peer is set again; a removed PSK deletes the copy', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-psk-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const saved = process.env.WIREGUARD_KEY_FILE;
  process.env.WIREGUARD_KEY_FILE = join(dir, 'no-flanneld-key');
  t.teardown(() => {
    if (saved === undefined) delete process.env.WIREGUARD_KEY_FILE;
    else process.env.WIREGUARD_KEY_FILE = saved;
  });
  const spec = parseSpec('n.yaml', `host:\n  stateDir: ${dir}\n`, BACKENDS, {});
  const lines: string[] = [];
  const log = jsonLogger({
    write: (l: string) => {
      lines.push(l);
      return true;
    },
  });
  const copy = join(dir, 'wireguard', 'preshared.key');

  const a = await wireguardKeys(spec, need(wg(PSK_A)), log);
  const b = await wireguardKeys(spec, need(wg(PSK_B_PADDED)), log);
  t.is(b.presharedKeyFile, copy);
  t.is(readFileSync(copy, 'utf8').trim(), PSK_B, 'wg gets the canonical spelling');
  t.is(b.presharedKeyTag, pskTag(PSK_B));
  t.not(b.presharedKeyTag, a.presharedKeyTag);

  // What the reconciler then plans: the peer, set with PSK_A, is set again with the file.
  const ip = (s: string): IP => {
    const a = parseIPv4(s);
    if (!a) throw new Error(s);
    return a;
  };
  const facts: HostFacts = {
    iface: 'eth0',
    ifaceIP: ip('192.0.2.1'),
    ifaceMTU: 1500,
    publicIP: ip('192.0.2.1'),
    why: 'test',
  };
  const routes: ObservedRoute[] = [
    { dst: parsePrefix('192.0.2.0/24') as Prefix, dev: 'eth0', proto: 'kernel', onlink: false, scopeLink: true },
  ];
  const peerKey = publicKeyOf(generatePrivateKey());
  const v = validatePeerLease(
    '198.18.2.0-24',
    `{"PublicIP":"192.0.2.12","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${peerKey}","Port":51820}}`,
    wg(PSK_B),
    BACKENDS,
    '2',
  );
  if (!v.ok) throw new Error(v.reason);
  const d = wireguard.desired({
    config: wg(PSK_B),
    own,
    facts,
    routes,
    peers: [v.lease],
    mtu: 1420,
    vtepMAC: '',
    wireguard: b,
  });
  const dev = d.devices[0];
  if (dev?.kind !== 'wireguard') throw new Error('no wireguard device');
  const seen: ObservedWireguard = {
    publicKey: b.publicKey,
    listenPort: 51820,
    implementation: 'kernel',
    peers: new Map([
      [
        peerKey,
        {
          publicKey: peerKey,
          endpoint: '192.0.2.12:51820',
          allowedIPs: ['198.18.2.0/24'],
          keepaliveSeconds: 0,
          presharedKey: true,
          presharedKeyTag: pskTag(PSK_A),
          latestHandshake: 0,
        },
      ],
    ]),
  };
  t.deepEqual(planWireguard(dev, seen).map(renderWireguardOp), [
    `set flannel-wg peer ${peerKey} endpoint 192.0.2.12:51820 allowed-ips 198.18.2.0/24 persistent-keepalive off preshared-key ${copy}`,
  ]);

  const none = await wireguardKeys(spec, need(wg()), log);
  t.is(none.presharedKeyFile, undefined);
  t.false(existsSync(copy), 'the copy of a PSK the config no longer has is deleted');
  for (const s of secrets) t.false(lines.join('\n').includes(s), 'no key in the log');
});
