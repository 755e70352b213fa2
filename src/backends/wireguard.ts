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
 * peer of another backend, a key or subnet clash (the oldest lease wins both) or this host's own
 * key is reported, not skipped silently. IPv4 only for now (`families`). Its options are
 * wireguard-options.ts, its lease data wireguard-lease.ts.
 */
import { type Prefix, formatIP, formatPrefix, maskPrefix, prefix, sameIP } from '../core/net/cidr.js';
import { type LinkRoute, type Skipped, type WireguardPeer, routeKey } from '../core/datapath/datapath.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import type { Backend, BackendInput } from './types.js';
import { oldestBy } from './claims.js';
import {
  WIREGUARD,
  WIREGUARD_SPEC_KEYS,
  decodeWireguardOptions,
  wireguardBackendObject,
  wireguardOptions,
  wireguardSettings,
} from './wireguard-options.js';
import { type WireguardData, wireguardDataOf, wireguardLease, wireguardLeaseAttrs } from './wireguard-lease.js';

/** flanneld's constant overhead (IPv6 header + UDP + WireGuard), for both families (§2.4). */
const WIREGUARD_OVERHEAD = 80;
export const WIREGUARD_DEVICE = 'flannel-wg';

export const wireguard: Backend = {
  type: WIREGUARD,
  decodeOptions: decodeWireguardOptions,
  settings: wireguardSettings,
  lease: wireguardLease,
  families: [4],
  specKeys: WIREGUARD_SPEC_KEYS,
  backendObject: wireguardBackendObject,
  // Its peers have no route each: doctor-fleet.ts checks them against `wg show`.
  doctor: () => ({
    overheadBytes: WIREGUARD_OVERHEAD,
    peerRoutes: false,
    probeTarget: 'bridge',
    checksumOffload: true,
  }),
  deviceNames: () => [WIREGUARD_DEVICE],
  wireguard: (c) => {
    const psk = wireguardOptions(c).psk;
    return { device: WIREGUARD_DEVICE, ...(psk !== undefined ? { storedPSK: psk } : {}) };
  },
  overheadBytes: WIREGUARD_OVERHEAD,
  mtu: (c, facts, hostMTU) => hostMTU ?? (wireguardOptions(c).mtu || facts.ifaceMTU) - WIREGUARD_OVERHEAD,
  leaseAttrs: (c, facts, _vtepMAC, keys) => {
    if (!keys) throw new Error("the wireguard backend needs this host's public key");
    return wireguardLeaseAttrs(facts.publicIP, { publicKey: keys.publicKey, port: wireguardOptions(c).listenPort });
  },
  // flanneld's wireguard has flannel-wg-v6; weft's does not yet.
  refusal: (c) =>
    c.ipv6
      ? "weft's wireguard backend carries IPv4 only: IPv6 over WireGuard is not built yet; use vxlan or host-gw for an IPv6 network"
      : undefined,
  desired: wireguardDesired,
};

function wireguardDesired(i: BackendInput) {
  const o = wireguardOptions(i.config);
  const keys = i.wireguard;
  if (!keys) throw new Error("the wireguard backend needs this host's keys");
  const skipped: Skipped[] = [];
  const peers = [...i.peers];
  // A peer that can be programmed (its wireguard data and IPv4 subnet), or why not (it then claims no key).
  const fit = (p: PeerLease): { wg: WireguardData; subnet: Prefix } | { why: string } => {
    const wg = wireguardDataOf(p);
    if (p.attrs.backendType !== WIREGUARD || !wg)
      return {
        why: `backend ${p.attrs.backendType ?? '(none)'} is not wireguard: unreachable from this wireguard host (no encrypted tunnel to it)`,
      };
    if (!p.subnet) return { why: "no IPv4 half: weft's wireguard backend carries IPv4 only" };
    if (sameIP(p.attrs.publicIP, i.facts.publicIP))
      return { why: `PublicIP ${formatIP(p.attrs.publicIP)} is this host's own public IP` };
    if (wg.publicKey === keys.publicKey) return { why: "PublicKey is this host's own" };
    return { wg, subnet: p.subnet };
  };
  // One subnet, one peer: a subnet can sit in two keys (`S-24` and `S-24&V-64`: the IPv6 half is
  // ignored here), and WireGuard gives an allowed IP to one peer only, so without this the
  // later `wg set` would take the subnet from its holder (and back on every resync). The
  // oldest claim keeps it, as in vxlan and host-gw.
  const subnetOwner = oldestBy(peers, (p) => {
    const f = fit(p);
    return 'why' in f ? [] : [routeKey(f.subnet)];
  });
  // One key, one peer: the oldest lease that claims a key wins (a copy written later never
  // takes its traffic). A lease claims a key only with a subnet of its own.
  const keyOwner = oldestBy(peers, (p) => {
    const f = fit(p);
    return 'why' in f || subnetOwner.get(routeKey(f.subnet)) !== p ? [] : [f.wg.publicKey];
  });
  const wanted = new Map<string, WireguardPeer>();
  for (const p of peers) {
    const f = fit(p);
    if ('why' in f) {
      skipped.push({ subnetKey: p.subnetKey, reason: f.why });
      continue;
    }
    const holder = subnetOwner.get(routeKey(f.subnet));
    if (holder !== p) {
      skipped.push({
        subnetKey: p.subnetKey,
        reason: `subnet ${formatPrefix(f.subnet)} is also claimed by the older lease ${holder?.subnetKey ?? '?'}`,
      });
      continue;
    }
    const key = f.wg.publicKey;
    const owner = keyOwner.get(key);
    if (owner !== p) {
      skipped.push({
        subnetKey: p.subnetKey,
        reason: `PublicKey is already used by the older lease ${owner?.subnetKey ?? '?'}`,
      });
      continue;
    }
    wanted.set(key, {
      publicKey: key,
      endpoint: `${formatIP(p.attrs.publicIP)}:${f.wg.port ?? o.listenPort}`,
      allowedIPs: [f.subnet],
      keepaliveSeconds: o.keepaliveSeconds,
    });
  }
  const network = i.config.ipv4?.network;
  const linkRoutes = new Map<string, LinkRoute>(
    network ? [[routeKey(network), { dst: network, dev: WIREGUARD_DEVICE }]] : [],
  );
  return {
    devices: [
      {
        kind: 'wireguard' as const,
        name: WIREGUARD_DEVICE,
        mtu: i.mtu,
        addresses: i.own.v4 ? [prefix(maskPrefix(i.own.v4).ip, 32)] : [],
        listenPort: o.listenPort,
        privateKeyFile: keys.privateKeyFile,
        publicKey: keys.publicKey,
        ...(keys.presharedKeyFile !== undefined ? { presharedKeyFile: keys.presharedKeyFile } : {}),
        ...(keys.presharedKeyTag !== undefined ? { presharedKeyTag: keys.presharedKeyTag } : {}),
        peers: wanted,
      },
    ],
    routes: new Map(),
    neighs: new Map(),
    fdb: new Map(),
    linkRoutes,
    skipped,
    peersProgrammed: wanted.size,
  };
}
