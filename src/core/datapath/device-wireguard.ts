/**
 * The WireGuard device kind: its values, parsers, compatibility, add line, configuration and doctor checks.
 * WireGuard is a kernel `wireguard` link, or a `tun` that wireguard-go serves (its configuration
 * then readable through `wg`, which is how the adapter tells it from someone else's tun). The
 * key, listen port and peers are not link attributes: they are planned right after the device
 * (core/datapath/wireguard-plan.ts) against what `wg show` reported for it.
 */
import { type Prefix, formatPrefix } from '../net/cidr.js';
import { safeText } from '../base/escape.js';
import type { ObservedDevice, ObservedDeviceBase } from './datapath.js';
import {
  type DeviceFinding,
  type DeviceKind,
  type LinkReport,
  DEVICE_FIX,
  commonFields,
  deviceFinding,
  stateAndMTU,
} from './device-kind.js';
import { planWireguard } from './wireguard-plan.js';

/** A WireGuard peer as weft wants it (keyed by public key in WireguardDevice.peers). */
export interface WireguardPeer {
  readonly publicKey: string;
  /** `ip:port` (IPv4). */
  readonly endpoint: string;
  readonly allowedIPs: readonly Prefix[];
  /** 0: off. */
  readonly keepaliveSeconds: number;
}

/**
 * A WireGuard device as weft wants it (flannel-ipv6-wireguard.md §2.3): kernel or userspace,
 * chosen by the adapter. Keys appear only as a file path and the public key, never the secret.
 */
export interface WireguardDevice {
  readonly kind: 'wireguard';
  readonly name: string;
  readonly mtu: number;
  readonly addresses: readonly Prefix[];
  readonly listenPort: number;
  readonly privateKeyFile: string;
  /** Derived from the private key: how an observed device shows it carries that key. */
  readonly publicKey: string;
  /** Every peer gets this preshared key file when set. */
  readonly presharedKeyFile?: string;
  /** A fingerprint of that key (adapters/wireguard.ts pskTag; never the key): a changed PSK is set again. */
  readonly presharedKeyTag?: string;
  /** Keyed by public key. */
  readonly peers: ReadonlyMap<string, WireguardPeer>;
}

/** The kernel's WireGuard link; `wireguard`: its configuration (`wg show DEV dump`), when it could be read. */
export interface ObservedWireguardLink extends ObservedDeviceBase {
  readonly kind: 'wireguard';
  readonly wireguard?: ObservedWireguard;
}

/**
 * A tun device: userspace WireGuard's (wireguard-go) when `wg` reads a configuration from it
 * (`wireguard`), else someone else's.
 */
export interface ObservedTun extends ObservedDeviceBase {
  readonly kind: 'tun';
  readonly wireguard?: ObservedWireguard;
}

/** A peer as `wg show DEV dump` lists it. */
export interface ObservedWireguardPeer {
  readonly publicKey: string;
  readonly endpoint?: string;
  /** As wg prints them (`198.18.2.0/24`). */
  readonly allowedIPs: readonly string[];
  readonly keepaliveSeconds: number;
  readonly presharedKey: boolean;
  /** The PSK's fingerprint (adapters/wireguard.ts pskTag), when it has one. */
  readonly presharedKeyTag?: string;
  /** Unix seconds of the latest handshake (0: none). */
  readonly latestHandshake: number;
}

/** A WireGuard device's configuration; the private key is dropped by the adapter, never kept. */
export interface ObservedWireguard {
  readonly publicKey: string;
  readonly listenPort: number;
  readonly peers: ReadonlyMap<string, ObservedWireguardPeer>;
  /** `kernel` or `userspace` (wireguard-go), as the adapter found the device. */
  readonly implementation: 'kernel' | 'userspace';
}

/** The observed kinds that can carry a WireGuard configuration, and which implementation serves each. */
type Carrier = ObservedWireguardLink | ObservedTun;
type Implementation = ObservedWireguard['implementation'];
const IMPLEMENTATION: { readonly [K in Carrier['kind']]: Implementation } = { wireguard: 'kernel', tun: 'userspace' };
const carries = (o: ObservedDevice): o is Carrier => Object.hasOwn(IMPLEMENTATION, o.kind);

/** `ip -d -json` of the kernel's WireGuard link. */
export const parseWireguardLink = (l: LinkReport): ObservedWireguardLink => ({ ...commonFields(l), kind: 'wireguard' });
/** `ip -d -json` of a tun device (wireguard-go's, or anyone's). */
export const parseTun = (l: LinkReport): ObservedTun => ({ ...commonFields(l), kind: 'tun' });

/** The implementation a device is if `wg` can read it; undefined for a kind WireGuard never is (no `wg show`). */
export const wireguardImplementationOf = (o: ObservedDevice): Implementation | undefined =>
  carries(o) ? IMPLEMENTATION[o.kind] : undefined;

/** The device's WireGuard configuration, when it has one and `wg` could read it. */
export const wireguardOf = (o: ObservedDevice | undefined): ObservedWireguard | undefined =>
  o && carries(o) ? o.wireguard : undefined;

/** The device with its WireGuard configuration (`wg show`); a kind that cannot carry one is returned as it is. */
export const withWireguard = (o: ObservedDevice, w: ObservedWireguard): ObservedDevice =>
  carries(o) ? { ...o, wireguard: w } : o;

/** The doctor: present and readable with `wg`, up, the lease's key and port, the MTU. */
function check(want: WireguardDevice, seen: ObservedDevice | undefined): DeviceFinding {
  const w = wireguardOf(seen);
  if (!seen || !w) {
    const why = seen ? ' (its configuration cannot be read with wg)' : '';
    return deviceFinding('fail', `the WireGuard device ${want.name} is missing${why}`, DEVICE_FIX);
  }
  const bad: string[] = [];
  if (!seen.up) bad.push('it is down');
  if (w.publicKey !== want.publicKey) {
    bad.push(`its public key ${safeText(w.publicKey)} is not the lease's ${want.publicKey}`);
  }
  if (w.listenPort !== want.listenPort) {
    bad.push(`it listens on ${String(w.listenPort)}, the lease says ${String(want.listenPort)}`);
  }
  if (seen.mtu !== want.mtu) bad.push(`its MTU is ${String(seen.mtu)}, weft wants ${String(want.mtu)}`);
  if (bad.length > 0) return deviceFinding('fail', `${want.name}: ${bad.join('; ')}`, DEVICE_FIX);
  const [port, mtu, peers] = [String(want.listenPort), String(want.mtu), String(w.peers.size)];
  return deviceFinding('ok', `${want.name} is up (${w.implementation}), UDP ${port}, MTU ${mtu}, ${peers} peers`);
}

const PEER_FIX =
  'restart weft (it sets every peer again), then weft doctor; ' + "check UDP to the peer's port on its public IP";

/**
 * Each peer the leases want, against `wg show` (at most 20): present with the lease's endpoint
 * and subnet, and whether a handshake ever completed. None when the device cannot be read.
 */
function checkPeers(want: WireguardDevice, seenDevice: ObservedDevice | undefined): DeviceFinding[] {
  const seen = wireguardOf(seenDevice);
  if (!seen) return [];
  return [...want.peers.values()].slice(0, 20).map((p): DeviceFinding => {
    const subnet = p.allowedIPs.map(formatPrefix).join(', ');
    const finding = (verdict: DeviceFinding['verdict'], what: string, fix = PEER_FIX): DeviceFinding => ({
      check: 'wireguard-peer',
      verdict,
      peer: safeText(subnet),
      what,
      fix,
    });
    const o = seen.peers.get(p.publicKey);
    if (!o) return finding('fail', `no peer with the lease's key ${p.publicKey} on ${want.name}`);
    if (o.endpoint !== p.endpoint || !o.allowedIPs.includes(subnet)) {
      const [endpoint, allowed] = [safeText(o.endpoint ?? '(none)'), safeText(o.allowedIPs.join(',') || '(none)')];
      const leased = `${p.endpoint}, ${subnet}`;
      return finding('fail', `the peer is endpoint ${endpoint}, allowed ips ${allowed}; the lease wants ${leased}`);
    }
    if (o.latestHandshake === 0) {
      const port = p.endpoint.split(':').pop() ?? '';
      return finding(
        'warn',
        `no handshake with ${p.endpoint} yet: nothing was sent to it, or UDP to it is blocked`,
        `send traffic to ${subnet}; if it stays so, open UDP ${port} between the hosts`,
      );
    }
    return finding('ok', `peer ${p.endpoint} with the lease's key; a handshake has completed`, '');
  });
}

export const wireguardKind: DeviceKind<WireguardDevice, Carrier> = {
  // A tun is wireguard-go's only if `wg` read a configuration from it; anyone else's is recreated.
  compatible: (o): o is Carrier => o.kind === 'wireguard' || (o.kind === 'tun' && o.wireguard !== undefined),
  addLine: (d) => `add ${d.name} mtu ${d.mtu}`,
  addTool: 'wireguard',
  fixInPlace: (o, d) => stateAndMTU(o, d),
  configure: (d, kept) => planWireguard(d, kept?.wireguard),
  check,
  checkPeers,
};
