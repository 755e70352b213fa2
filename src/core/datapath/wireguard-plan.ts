/**
 * The WireGuard part of a plan: a device's key and listen port, and its peers, compared by
 * public key, so one changed peer is one `wg set` line and a peer no lease wants is removed
 * (flanneld leaves such peers behind forever after a key change, flannel-ipv6-wireguard.md
 * §2.7). Lines are for the `wireguard` tool (adapters/wireguard.ts: `set ...` is `wg set ...`).
 * Only file paths and public keys appear in a line: never a secret.
 */
import { formatPrefix } from '../net/cidr.js';
import type { ObservedWireguard, ObservedWireguardPeer, WireguardDevice, WireguardPeer } from './datapath.js';

export type WireguardOp =
  | { readonly kind: 'wg-device'; readonly device: WireguardDevice }
  | {
      readonly kind: 'wg-peer';
      readonly dev: string;
      readonly peer: WireguardPeer;
      readonly presharedKeyFile?: string;
      readonly clearPresharedKey: boolean;
    }
  | { readonly kind: 'wg-peer-remove'; readonly dev: string; readonly publicKey: string };

const allowedText = (p: WireguardPeer): string => p.allowedIPs.map(formatPrefix).sort().join(',');

/** The observed peer is the wanted one (endpoint, allowed-ips, keepalive, a PSK when wanted). */
function samePeer(o: ObservedWireguardPeer, d: WireguardPeer, psk: boolean, pskTag: string | undefined): boolean {
  const samePSK =
    o.presharedKey === psk && (pskTag === undefined || o.presharedKeyTag === undefined || o.presharedKeyTag === pskTag);
  return (
    o.endpoint === d.endpoint &&
    [...o.allowedIPs].sort().join(',') === allowedText(d) &&
    o.keepaliveSeconds === d.keepaliveSeconds &&
    samePSK
  );
}

/**
 * Operations for one WireGuard device: `o` is its observed configuration (undefined for a
 * device created this pass, or one whose configuration could not be read: everything is set).
 */
export function planWireguard(d: WireguardDevice, o: ObservedWireguard | undefined): WireguardOp[] {
  const ops: WireguardOp[] = [];
  if (!o || o.publicKey !== d.publicKey || o.listenPort !== d.listenPort) ops.push({ kind: 'wg-device', device: d });
  const psk = d.presharedKeyFile !== undefined;
  for (const key of o?.peers.keys() ?? [])
    if (!d.peers.has(key)) ops.push({ kind: 'wg-peer-remove', dev: d.name, publicKey: key });
  for (const [key, p] of d.peers) {
    const seen = o?.peers.get(key);
    if (seen && samePeer(seen, p, psk, d.presharedKeyTag)) continue;
    ops.push({
      kind: 'wg-peer',
      dev: d.name,
      peer: p,
      ...(d.presharedKeyFile !== undefined ? { presharedKeyFile: d.presharedKeyFile } : {}),
      clearPresharedKey: !psk && (seen?.presharedKey ?? false),
    });
  }
  return ops;
}

/** The `wireguard` tool line for one operation. */
export function renderWireguardOp(op: WireguardOp): string {
  switch (op.kind) {
    case 'wg-device':
      return `set ${op.device.name} listen-port ${op.device.listenPort} private-key ${op.device.privateKeyFile}`;
    case 'wg-peer-remove':
      return `set ${op.dev} peer ${op.publicKey} remove`;
    case 'wg-peer': {
      const p = op.peer;
      const psk =
        op.presharedKeyFile !== undefined
          ? ` preshared-key ${op.presharedKeyFile}`
          : op.clearPresharedKey
            ? ' preshared-key /dev/null'
            : '';
      return `set ${op.dev} peer ${p.publicKey} endpoint ${p.endpoint} allowed-ips ${allowedText(p)} persistent-keepalive ${p.keepaliveSeconds || 'off'}${psk}`;
    }
  }
}

/**
 * `wg show DEV dump`: the interface line (private key, public key, listen port, fwmark) and one
 * line per peer (public key, preshared key, endpoint, allowed ips, latest handshake, rx, tx,
 * keepalive), tab-separated. Secrets are dropped here: the private key, and the PSK (only its
 * fingerprint, `tagOf` (adapters/wireguard.ts pskTag), is kept, to notice a changed PSK).
 */
export function parseWgDump(
  text: string,
  implementation: ObservedWireguard['implementation'],
  tagOf: (psk: string) => string,
): ObservedWireguard | undefined {
  const [head, ...rest] = text.split('\n').filter((l) => l.trim() !== '');
  const h = head?.split('\t');
  if (!h || h.length < 4) return undefined;
  const peers = new Map<string, ObservedWireguardPeer>();
  for (const line of rest) {
    const f = line.split('\t');
    if (f.length < 8) continue;
    const [publicKey = '', psk = '', endpoint = '', allowed = '', handshake = '0', , , keepalive = 'off'] = f;
    peers.set(publicKey, {
      publicKey,
      presharedKey: psk !== '(none)',
      ...(psk !== '(none)' ? { presharedKeyTag: tagOf(psk) } : {}),
      ...(endpoint !== '(none)' ? { endpoint } : {}),
      allowedIPs: allowed === '(none)' ? [] : allowed.split(','),
      latestHandshake: Number(handshake) || 0,
      keepaliveSeconds: keepalive === 'off' ? 0 : Number(keepalive) || 0,
    });
  }
  return { publicKey: h[1] ?? '', listenPort: Number(h[2]) || 0, peers, implementation };
}
