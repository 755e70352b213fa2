/**
 * The last known good state a host keeps on disk (`<host.stateDir>/state.json`) so that it can
 * come up after a reboot while etcd is out of reach: its lease, the fleet's network config (the
 * stored text) and the peers the reconciler converged on, with the etcd revision they were read
 * at. Pure: encoding, decoding and the one decision "may this host start from it?".
 *
 * The file is untrusted (stale, edited, truncated, from another version): decoding checks its
 * shape and never throws; the peers in it are raw etcd entries that the caller judges through
 * the same path as etcd's (core/fleet/fleet.ts, validatePeerLease), the config through the same
 * decode and check as etcd's.
 */
import type { FlannelBackends } from '../flannel/backend-codec.js';
import { type Prefix, formatPrefix, parsePrefix, samePrefix, within } from '../net/cidr.js';
import { type FamilyRange, type NetworkConfig, checkNetworkConfig } from '../flannel/config-check.js';
import { type SubnetKey, parseSubnetKey, primarySubnet } from '../flannel/subnet-key.js';
import { decodeNetworkConfig } from '../flannel/network-config.js';
import type { KeyValue } from './store.js';

export const CACHED_STATE_VERSION = 1;
/** A cache file larger than this is refused unread (a fleet of 5,000 leases is ~2 MB). */
export const CACHED_STATE_MAX_BYTES = 32 * 1024 * 1024;

/** One peer entry as read from etcd (lease IDs are not kept: they mean nothing after a reboot). */
export interface CachedPeer {
  readonly key: string;
  readonly value: string;
  readonly createRevision: string;
  readonly modRevision: string;
}

export interface CachedLease {
  /** The subnet named first (IPv4, else IPv6), as `198.18.5.0/24`. */
  readonly subnet: string;
  /** The lease key's halves as the key text (`198.18.5.0-24&fd18:0:0:5::-64`); absent in files written before IPv6. */
  readonly subnetKey?: string;
  /** The lease value this host published (flannel LeaseAttrs JSON). */
  readonly value: string;
  readonly expiresAtMs: number;
  readonly hostID: string;
}

export interface CachedState {
  readonly version: typeof CACHED_STATE_VERSION;
  readonly savedAtMs: number;
  /** The network config text as stored in etcd. */
  readonly config: string;
  readonly lease: CachedLease;
  readonly peers: readonly CachedPeer[];
  /** The etcd revision the peers were listed at. */
  readonly revision: string;
}

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export function encodeCachedState(s: CachedState): string {
  return `${JSON.stringify(s, null, 1)}\n`;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: Obj, k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);
const num = (o: Obj, k: string): number | undefined =>
  typeof o[k] === 'number' && Number.isFinite(o[k]) ? o[k] : undefined;

function decodePeer(v: unknown): CachedPeer | undefined {
  if (!isObj(v)) return undefined;
  const key = str(v, 'key');
  const value = str(v, 'value');
  const createRevision = str(v, 'createRevision');
  const modRevision = str(v, 'modRevision');
  const decimal = (r: string | undefined): r is string => r !== undefined && /^\d{1,19}$/.test(r);
  return key !== undefined && value !== undefined && decimal(createRevision) && decimal(modRevision)
    ? { key, value, createRevision, modRevision }
    : undefined;
}

/** Decode the file's text; a reason (never a throw) for anything that is not a state of this version. */
export function decodeCachedState(text: string): Decoded<CachedState> {
  if (text.length > CACHED_STATE_MAX_BYTES) return { ok: false, reason: `larger than ${CACHED_STATE_MAX_BYTES} bytes` };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (!isObj(raw)) return { ok: false, reason: 'not a JSON object' };
  if (raw.version !== CACHED_STATE_VERSION)
    return { ok: false, reason: `version ${String(raw.version)}, expected ${CACHED_STATE_VERSION}` };
  const savedAtMs = num(raw, 'savedAtMs');
  const config = str(raw, 'config');
  const revision = str(raw, 'revision');
  const l = raw.lease;
  if (savedAtMs === undefined || config === undefined || revision === undefined || !isObj(l))
    return { ok: false, reason: 'missing savedAtMs, config, revision or lease' };
  const subnet = str(l, 'subnet');
  const value = str(l, 'value');
  const expiresAtMs = num(l, 'expiresAtMs');
  const hostID = str(l, 'hostID');
  const subnetKey = str(l, 'subnetKey');
  if (subnet === undefined || value === undefined || expiresAtMs === undefined || hostID === undefined)
    return { ok: false, reason: 'lease lacks subnet, value, expiresAtMs or hostID' };
  if (!Array.isArray(raw.peers)) return { ok: false, reason: 'peers is not a list' };
  const peers: CachedPeer[] = [];
  for (const p of raw.peers) {
    const peer = decodePeer(p);
    if (!peer) return { ok: false, reason: 'a peer entry lacks key, value or revisions' };
    peers.push(peer);
  }
  return {
    ok: true,
    value: {
      version: CACHED_STATE_VERSION,
      savedAtMs,
      config,
      lease: { subnet, ...(subnetKey !== undefined ? { subnetKey } : {}), value, expiresAtMs, hostID },
      peers,
      revision,
    },
  };
}

/** What a usable cache gives the agent: the checked config, its own subnet, the peers as etcd entries. */
export interface CacheStart {
  readonly config: NetworkConfig;
  /** The subnet named first (IPv4, else IPv6). */
  readonly subnet: Prefix;
  /** Every half of the cached lease. */
  readonly subnets: SubnetKey;
  readonly expiresAtMs: number;
  readonly peers: readonly KeyValue[];
}

export interface CacheContext {
  readonly nowMs: number;
  /** This host's identity now: a cache written under another one is not this host's lease. */
  readonly hostID: string;
  /** The spec's network, when it names one: the cache must be of the same network and backend. */
  readonly specConfig?: NetworkConfig;
  /** The registry the cached config is read with (src/backends/index.ts). */
  readonly backends: FlannelBackends;
}

/**
 * May this host start from the cached state while etcd is unreachable? Only when the state is
 * present, decodes, is this host's, its lease has not expired by the local clock, its config
 * is valid, holds the subnet, and matches the spec's network and backend (when the spec names
 * one). Any other answer means: wait for etcd, as without a cache.
 */
export function cacheStart(text: string | undefined, c: CacheContext): Decoded<CacheStart> {
  if (text === undefined) return { ok: false, reason: 'no cached state' };
  const d = decodeCachedState(text);
  if (!d.ok) return { ok: false, reason: `cached state unreadable: ${d.reason}` };
  const s = d.value;
  if (s.lease.hostID !== c.hostID)
    return { ok: false, reason: `cached state belongs to host ID ${s.lease.hostID}, this host is ${c.hostID}` };
  if (c.nowMs >= s.lease.expiresAtMs)
    return {
      ok: false,
      reason: `cached lease on ${s.lease.subnet} expired at ${new Date(s.lease.expiresAtMs).toISOString()}`,
    };
  let config: NetworkConfig;
  try {
    config = checkNetworkConfig(decodeNetworkConfig(s.config, c.backends));
  } catch (e) {
    return { ok: false, reason: `cached network config invalid: ${e instanceof Error ? e.message : String(e)}` };
  }
  const key = s.lease.subnetKey !== undefined ? parseSubnetKey(s.lease.subnetKey) : undefined;
  const v4only = parsePrefix(s.lease.subnet);
  const subnets: SubnetKey | undefined =
    s.lease.subnetKey !== undefined
      ? key?.canonical
        ? key
        : undefined
      : v4only && v4only.ip.family === 4
        ? { v4: v4only }
        : undefined;
  if (!subnets)
    return { ok: false, reason: `cached lease key ${s.lease.subnetKey ?? s.lease.subnet} is not a subnet key` };
  // Each half must lie in its family's network, and the lease must have exactly the families the config has.
  for (const [half, r, fam] of [
    [subnets.v4, config.ipv4, 'IPv4'],
    [subnets.v6, config.ipv6, 'IPv6'],
  ] as const) {
    if (!r && half)
      return { ok: false, reason: `cached lease has an ${fam} subnet but the cached network has no ${fam}` };
    if (r && !half) return { ok: false, reason: `cached state has no ${fam} subnet` };
    if (r && half && !within(half, r.network))
      return {
        ok: false,
        reason: `cached subnet ${formatPrefix(half)} is outside the cached network ${formatPrefix(r.network)}`,
      };
  }
  const spec = c.specConfig;
  if (spec) {
    const same = (a: FamilyRange | undefined, b: FamilyRange | undefined): boolean =>
      a && b ? samePrefix(a.network, b.network) : a === b;
    if (!same(spec.ipv4, config.ipv4) || !same(spec.ipv6, config.ipv6))
      return {
        ok: false,
        reason: `cached network ${[config.ipv4, config.ipv6].flatMap((r) => (r ? [formatPrefix(r.network)] : [])).join(' + ')} is not the spec's`,
      };
    if (spec.backend.type !== config.backend.type)
      return { ok: false, reason: `cached backend ${config.backend.type} is not the spec's ${spec.backend.type}` };
  }
  const subnet = primarySubnet(subnets);
  if (!subnet) return { ok: false, reason: 'cached lease has no subnet' };
  const peers = s.peers.map((p) => ({ ...p, lease: '0' }));
  return {
    ok: true,
    value: {
      config,
      subnet,
      subnets: { ...(subnets.v4 ? { v4: subnets.v4 } : {}), ...(subnets.v6 ? { v6: subnets.v6 } : {}) },
      expiresAtMs: s.lease.expiresAtMs,
      peers,
    },
  };
}
