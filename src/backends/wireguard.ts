/**
 * wireguard as flanneld programs it (flannel-ipv6-wireguard.md §2): device `flannel-wg` with
 * this host's key and ListenPort, the own subnet address /32, one route for the whole network
 * via the device (cryptokey routing picks the peer; traffic to a subnet no peer holds is
 * dropped in the device, never sent in clear), and per peer lease: its public key, endpoint
 * `PublicIP:Port` (its own listen port; a lease without Port means this host's, as flanneld
 * reads it), allowed-ips = its subnet, the keepalive, the PSK. MTU = underlay MTU − 80.
 *
 * Better than flanneld while wire-compatible: the device and its peers are kept across
 * restarts, a peer no lease wants (an old key after a rotation or reboot) is removed, and a
 * peer of another backend, a key clash or this host's own key is reported, not skipped silently.
 */
import { formatIP, maskPrefix, prefix, sameIP } from '../core/cidr.js';
import type { NetworkConfig } from '../core/config-check.js';
import { type LinkRoute, type Skipped, type WireguardPeer, routeKey } from '../core/datapath.js';
import { wireguardLeaseAttrs } from '../core/lease.js';
import type { WireguardOptions } from '../core/network-config.js';
import type { PeerLease } from '../core/peer-lease.js';
import type { Backend, BackendInput } from './types.js';
import { older } from './vxlan.js';

/** flanneld's constant overhead (IPv6 header + UDP + WireGuard), for both families (§2.4). */
const WIREGUARD_OVERHEAD = 80;
export const WIREGUARD_DEVICE = 'flannel-wg';

const opts = (c: NetworkConfig): WireguardOptions => c.backend.wireguard ?? { listenPort: 51820, listenPortV6: 51821, mtu: 0, keepaliveSeconds: 0, mode: 'separate' };

export const wireguard: Backend = {
  type: 'wireguard',
  deviceNames: () => [WIREGUARD_DEVICE],
  mtu: (c, facts, hostMTU) => hostMTU ?? (opts(c).mtu || facts.ifaceMTU) - WIREGUARD_OVERHEAD,
  leaseAttrs: (c, facts, _vtepMAC, keys) => {
    if (!keys) throw new Error('the wireguard backend needs this host\'s public key');
    return wireguardLeaseAttrs(facts.publicIP, { publicKey: keys.publicKey, port: opts(c).listenPort });
  },
  refusal: () => undefined,
  desired(i: BackendInput) {
    const o = opts(i.config);
    const keys = i.wireguard;
    if (!keys) throw new Error('the wireguard backend needs this host\'s keys');
    const skipped: Skipped[] = [];
    const peers = [...i.peers];
    const unfit = (p: PeerLease): string | undefined => {
      if (p.attrs.backendType !== 'wireguard' || !p.wireguard) return `backend ${p.attrs.backendType ?? '(none)'} is not wireguard: unreachable from this wireguard host (no encrypted tunnel to it)`;
      if (!p.subnet) return 'no IPv4 half: weft\'s wireguard backend carries IPv4 only';
      if (sameIP(p.attrs.publicIP, i.facts.publicIP)) return `PublicIP ${formatIP(p.attrs.publicIP)} is this host's own public IP`;
      if (p.wireguard.publicKey === keys.publicKey) return 'PublicKey is this host\'s own';
      return undefined;
    };
    // One key, one peer: the oldest lease that claims a key wins (a copy written later never takes its traffic).
    const keyOwner = new Map<string, PeerLease>();
    for (const p of peers) {
      if (unfit(p) !== undefined || !p.wireguard) continue;
      const had = keyOwner.get(p.wireguard.publicKey);
      if (!had || older(p, had)) keyOwner.set(p.wireguard.publicKey, p);
    }
    const wanted = new Map<string, WireguardPeer>();
    for (const p of peers) {
      const why = unfit(p);
      if (why !== undefined || !p.wireguard) { skipped.push({ subnetKey: p.subnetKey, reason: why ?? 'not wireguard' }); continue; }
      const key = p.wireguard.publicKey;
      const owner = keyOwner.get(key);
      if (owner !== p) { skipped.push({ subnetKey: p.subnetKey, reason: `PublicKey is already used by the older lease ${owner?.subnetKey ?? '?'}` }); continue; }
      wanted.set(key, { publicKey: key, endpoint: `${formatIP(p.attrs.publicIP)}:${p.wireguard.port ?? o.listenPort}`, allowedIPs: p.subnet ? [p.subnet] : [], keepaliveSeconds: o.keepaliveSeconds });
    }
    const network = i.config.ipv4?.network;
    const linkRoutes = new Map<string, LinkRoute>(network ? [[routeKey(network), { dst: network, dev: WIREGUARD_DEVICE }]] : []);
    return {
      devices: [{
        kind: 'wireguard', name: WIREGUARD_DEVICE, mtu: i.mtu, addresses: i.own.v4 ? [prefix(maskPrefix(i.own.v4).ip, 32)] : [], listenPort: o.listenPort,
        privateKeyFile: keys.privateKeyFile, publicKey: keys.publicKey, ...(keys.presharedKeyFile !== undefined ? { presharedKeyFile: keys.presharedKeyFile } : {}),
        ...(keys.presharedKeyTag !== undefined ? { presharedKeyTag: keys.presharedKeyTag } : {}), peers: wanted,
      }],
      routes: new Map(), neighs: new Map(), fdb: new Map(), linkRoutes, skipped, peersProgrammed: wanted.size,
    };
  },
};
