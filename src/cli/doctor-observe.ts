/**
 * Gathering for `weft doctor`: everything the pure checks (core/doctor*.ts) judge, read through
 * the existing adapters, each part on its own so that one failing source (the daemon down, etcd
 * unreachable) never stops the others. The desired datapath is computed as `weft plan` does:
 * the stored config, this host's lease, the peers judged by the Fleet, the backend's desired().
 */
import {
  type IP,
  type Prefix,
  addToIP,
  contains,
  formatIP,
  formatPrefix,
  maskPrefix,
  parseIPv4,
  parsePrefix,
  samePrefix,
} from '../core/net/cidr.js';
import type { NetworkConfig } from '../core/flannel/config-check.js';
import type { DesiredDatapath, ObservedDatapath } from '../core/datapath/datapath.js';
import type {
  DoctorDescriptor,
  DoctorObservations,
  EtcdObservation,
  OwnLease,
  StatusObservation,
} from '../core/doctor/doctor-observations.js';
import type { PeerObservation } from '../core/doctor/doctor-observations.js';
import { WeftError } from '../core/base/errors.js';
import { Fleet } from '../core/fleet/fleet.js';
import { type HostFacts, chooseInterface } from '../core/host/host-facts.js';
import { decodeLeaseAttrs } from '../core/flannel/lease.js';
import { publishedView } from '../core/flannel/backend-codec.js';
import { wireguardKeysOfLease } from '../agent/wireguard-keys.js';
import { leaseRows } from '../core/fleet/lease-report.js';
import { configKey, decodeOwner, ownersPrefix, subnetsPrefix } from '../core/fleet/owner.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import { type Spec, dialAddress } from '../core/spec/spec.js';
import type { KeyValue } from '../core/fleet/store.js';
import { BACKENDS, backendFor } from '../backends/index.js';
import { hostIdentity } from '../adapters/identity.js';
import { listLinks, listRoutes, routeDevTo } from '../adapters/iproute2.js';
import { kernelHost } from '../agent/bootstrap.js';
import {
  daemonStatus,
  etcdClock,
  filterTable,
  offloadOf,
  ping,
  routeGet,
  routesMatching,
  rpFilters,
} from '../adapters/probe.js';
import { readSysctl } from '../adapters/sysctl.js';
import { checkedStoredConfig, withStore } from './common.js';
import { fleetLimits } from '../core/fleet/store-limits.js';

/** At most this many peers are probed per run (unless --peer names one). */
export const PEER_CAP = 20;
/** Peers probed at once. */
const CONCURRENCY = 8;

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e));

interface EtcdRead {
  readonly config: NetworkConfig;
  readonly subs: KeyValue[];
  readonly owners: KeyValue[];
  readonly ttl: Map<string, number>;
}

async function readEtcd(spec: Spec): Promise<EtcdRead> {
  const P = spec.etcd.prefix;
  return withStore(spec, async (store) => {
    const [cfg, subs, owners] = await Promise.all([
      store.get(configKey(P)),
      store.list(subnetsPrefix(P), fleetLimits(spec.host.maxPeers)),
      store.list(ownersPrefix(P), fleetLimits(spec.host.maxPeers)),
    ]);
    const config = cfg.kv ? checkedStoredConfig(configKey(P), cfg.kv) : spec.network?.config;
    if (!config)
      throw new WeftError(
        'E_NOT_FOUND',
        `no network config: ${configKey(P)} is absent and ${spec.file} has no network section`,
      );
    const ttl = new Map<string, number>();
    const ids = [...new Set(subs.kvs.map((kv) => kv.lease))].filter((id) => id !== '0').slice(0, 200);
    await Promise.all(
      ids.map(async (id) => {
        ttl.set(id, await store.timeToLive(id).catch(() => -1));
      }),
    );
    return { config, subs: subs.kvs, owners: owners.kvs, ttl };
  });
}

/** This host's lease: by its owner record, else the daemon's word, else its public IP. */
function ownLease(
  e: EtcdRead,
  P: string,
  ids: readonly string[],
  status: StatusObservation,
  facts: HostFacts | undefined,
): { own?: OwnLease; kv?: KeyValue } {
  const candidates = e.subs.map((kv) => {
    const subnetKey = kv.key.slice(subnetsPrefix(P).length);
    const ownerKv = e.owners.find((o) => o.key.slice(ownersPrefix(P).length) === subnetKey);
    const attrs = decodeLeaseAttrs(kv.value);
    return {
      kv,
      subnet: parsePrefix(subnetKey.replace('-', '/')),
      owner: ownerKv ? decodeOwner(ownerKv.value) : undefined,
      attrs: attrs.ok ? attrs.value : undefined,
    };
  });
  const statusSubnet =
    status.kind === 'answered' && status.report.lease ? parsePrefix(status.report.lease.subnet) : undefined;
  const pick = candidates.find((c) => c.owner && ids.includes(c.owner.hostID))
    ? { c: candidates.find((c) => c.owner && ids.includes(c.owner.hostID)), how: 'its owner record' }
    : statusSubnet
      ? { c: candidates.find((c) => c.subnet && samePrefix(c.subnet, statusSubnet)), how: "the daemon's status" }
      : {
          c: facts
            ? candidates.find((c) => c.attrs && formatIP(c.attrs.publicIP) === formatIP(facts.publicIP))
            : undefined,
          how: 'its public IP',
        };
  const c = pick.c;
  if (!c?.subnet || !c.attrs) return {};
  return {
    own: {
      subnet: c.subnet,
      publicIP: formatIP(c.attrs.publicIP),
      ttlSeconds: c.kv.lease === '0' ? -1 : (e.ttl.get(c.kv.lease) ?? -1),
      how: pick.how,
    },
    kv: c.kv,
  };
}

/** A peer with an IPv4 half: what `weft doctor` probes (its IPv6 probes are not built yet). */
type V4Peer = PeerLease & { readonly subnet: Prefix };

/** Does `--peer` (a subnet, an address inside one, or a public IP) name this peer? */
export function peerMatches(p: V4Peer, filter: string): boolean {
  const asPrefix = parsePrefix(filter);
  if (asPrefix) return samePrefix(maskPrefix(asPrefix), p.subnet);
  const ip = parseIPv4(filter);
  return ip !== undefined && (contains(p.subnet, ip) || formatIP(ip) === formatIP(p.attrs.publicIP));
}

/** The overlay address to probe on a peer (the backend's doctor descriptor says which), and this host's address to probe from. */
function probeAddresses(
  target: DoctorDescriptor['probeTarget'],
  ownSubnet: Prefix,
  links: Awaited<ReturnType<typeof listLinks>>,
): { source?: IP; targetOf: (p: V4Peer) => IP } {
  const zero = (s: Prefix): IP => maskPrefix(s).ip;
  if (target === 'device') {
    // flannel's convention: every host holds its subnet's .0/32 on the backend's device
    // (flannel.N), so the peer's .0 answers there (no container runtime needed), and ours is the source.
    return { source: zero(ownSubnet), targetOf: (p) => zero(p.subnet) };
  }
  // host-gw: nothing holds .0; the container bridge (docker0, cbr0, podman's) holds .1 once the
  // runtime runs with weft's options. Without a bridge here there is no overlay source.
  const own = links.flatMap((l) => l.addrs).find((a) => contains(ownSubnet, a.ip));
  return { ...(own ? { source: own.ip } : {}), targetOf: (p) => addToIP(zero(p.subnet), 1n) ?? zero(p.subnet) };
}

async function probePeer(p: V4Peer, source: IP | undefined, target: IP, mtu: number): Promise<PeerObservation> {
  const t = formatIP(target);
  const src = source ? formatIP(source) : undefined;
  const [lookup, matching, underlay, overlay, df] = await Promise.all([
    routeGet(t),
    routesMatching(t),
    ping(formatIP(p.attrs.publicIP), { count: 1 }),
    src ? ping(t, { source: src }) : Promise.resolve(undefined),
    src ? ping(t, { source: src, dfSize: Math.max(0, mtu - 28) }) : Promise.resolve(undefined),
  ]);
  return {
    subnet: p.subnet,
    publicIP: formatIP(p.attrs.publicIP),
    target,
    ...(source ? { source } : {}),
    lookup,
    matching,
    underlay,
    ...(overlay ? { overlay } : {}),
    ...(df ? { df } : {}),
  };
}

async function inBatches<T, R>(items: readonly T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i] as T);
    }),
  );
  return out;
}

export async function observeForDoctor(spec: Spec, peerFilter: string | undefined): Promise<DoctorObservations> {
  const url = spec.host.listen ? `http://${dialAddress(spec.host.listen)}/status` : undefined;
  const [status, links, routes, filter, ipForward, clock, identity, etcdRead] = await Promise.all([
    url ? daemonStatus(url) : Promise.resolve<StatusObservation>({ kind: 'disabled' }),
    listLinks().catch(() => []),
    listRoutes().catch(() => []),
    filterTable(),
    readSysctl('net/ipv4/ip_forward'),
    etcdClock(spec.etcd, () => Date.now()),
    hostIdentity({ stateDir: spec.host.stateDir }).catch(() => undefined),
    readEtcd(spec).then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, error: message(e) }),
    ),
  ]);
  const canReachDev = spec.host.canReach
    ? await routeDevTo(formatIP(spec.host.canReach)).catch(() => undefined)
    : undefined;
  let facts: HostFacts | undefined;
  try {
    facts = chooseInterface({ host: spec.host, links, routes, ...(canReachDev ? { canReachDev } : {}) });
  } catch {
    facts = undefined;
  }
  const base = {
    status,
    filterTable: filter,
    ...(ipForward !== undefined ? { ipForward } : {}),
    clock,
    peers: [] as PeerObservation[],
    peersOmitted: 0,
    peerCap: PEER_CAP,
  };
  if (!etcdRead.ok) {
    return {
      ...base,
      etcd: { ok: false, error: etcdRead.error },
      rpFilter: await rpFilters(facts ? [facts.iface] : []),
      offload: { kind: 'not-vxlan' },
      ...(facts ? { iface: facts.iface } : {}),
    };
  }
  const e = etcdRead.r;
  const P = spec.etcd.prefix;
  const backend = backendFor(e.config.backend.type);
  const device = backend.deviceNames(e.config)[0];
  const network = e.config.ipv4?.network;
  if (!network) throw new WeftError('E_CONFIG', 'the network config has no IPv4 Network');
  const { own, kv: ownKv } = ownLease(e, P, identity ? [identity.hostID, ...identity.formerIDs] : [], status, facts);
  const now = Date.now();
  const rows = leaseRows(
    e.subs.map((kv) => {
      const subnetKey = kv.key.slice(subnetsPrefix(P).length);
      const ownerKv = e.owners.find((o) => o.key.slice(ownersPrefix(P).length) === subnetKey);
      return {
        subnetKey,
        kv,
        ttlSeconds: e.ttl.get(kv.lease) ?? -1,
        owner: ownerKv ? decodeOwner(ownerKv.value) : undefined,
      };
    }),
    e.config,
    now,
    BACKENDS,
  );
  const doctor = backend.doctor(e.config);
  const etcd: EtcdObservation = { ok: true, backendType: backend.type, doctor, network, rows, own };
  const [rpFilter, offload, observed] = await Promise.all([
    rpFilters([facts?.iface, device].filter((d): d is string => d !== undefined)),
    device && doctor.checksumOffload ? offloadOf(device) : Promise.resolve({ kind: 'not-vxlan' as const }),
    // kernelHost: the devices, and a WireGuard device's configuration (wg show).
    kernelHost.observeDatapath(device ? [device] : []).catch((): ObservedDatapath | undefined => undefined),
  ]);
  const common = {
    ...base,
    etcd,
    rpFilter,
    offload,
    ...(device ? { device } : {}),
    ...(observed ? { observed } : {}),
    ...(facts ? { iface: facts.iface } : {}),
  };
  if (!own || !ownKv || !facts) return common;
  const mtu = backend.mtu(e.config, facts, spec.host.mtu);
  // What this host's lease publishes (its MAC, its WireGuard key), as its backend reads it.
  const attrs = decodeLeaseAttrs(ownKv.value);
  const published = attrs.ok ? publishedView(backend.lease, attrs.value) : {};
  const wireguard = wireguardKeysOfLease(spec, backend.wireguard?.(e.config), published.lease?.publicKey);
  const fleet = new Fleet(subnetsPrefix(P), e.config, BACKENDS, { v4: own.subnet }, spec.host.maxPeers);
  for (const kv of e.subs) fleet.update(kv.key, kv);
  const desired: DesiredDatapath = backend.desired({
    config: e.config,
    own: { v4: own.subnet },
    facts,
    routes: observed?.routes ?? routes,
    peers: fleet.peers.values(),
    mtu,
    vtepMAC: published.v4?.vtepMAC ?? '',
    ...(wireguard ? { wireguard } : {}),
  });
  const programmed = [...fleet.peers.values()]
    .filter((p): p is V4Peer => p.subnet !== undefined && desired.routes.has(formatPrefix(p.subnet)))
    .sort((a, b) => (a.subnet.ip.value < b.subnet.ip.value ? -1 : 1));
  const chosen = peerFilter === undefined ? programmed : programmed.filter((p) => peerMatches(p, peerFilter));
  const probed = peerFilter === undefined ? chosen.slice(0, PEER_CAP) : chosen;
  const { source, targetOf } = probeAddresses(doctor.probeTarget, own.subnet, links);
  const peers = await inBatches(probed, CONCURRENCY, (p) => probePeer(p, source, targetOf(p), mtu));
  return {
    ...common,
    desired,
    mtu,
    peers,
    peersOmitted: chosen.length - probed.length,
    ...(peerFilter !== undefined && chosen.length === 0 ? { peerFilterUnmatched: peerFilter } : {}),
  };
}
