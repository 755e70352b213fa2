/**
 * What a change of `<prefix>/config` means for a running host (issue 19 part 2). Pure: the
 * agent decodes the new text (untrusted, core/flannel/network-config.ts + config-check.ts), then asks
 * `classifyConfigChange` whether it can apply it live, whether this host's subnet must move,
 * or whether it must keep running on the config it has. `weft apply` asks `fleetEffects` what
 * the same change does to every running host before it writes anything.
 */
import { type Prefix, formatPrefix, within } from '../net/cidr.js';
import { type FamilyRange, type NetworkConfig, changedSettings, diffConfigs } from '../flannel/config-check.js';
import type { SubnetKey } from '../flannel/subnet-key.js';
import { isCompatible } from '../fleet/allocate.js';

/** One kind of change, as the log, `weft apply` and the docs name it. */
export type ChangePart =
  | 'mtu'
  | 'port'
  | 'vni'
  | 'directRouting'
  | 'gbp'
  | 'learning'
  | 'backend'
  | 'grow'
  | 'renumber'
  | 'subnetLen'
  | 'subnetRange'
  | 'ipv6'
  | 'nftables'
  | 'psk'
  | 'option';

/** flannel config setting (effectiveSettings name) -> the kind of change it is. */
const PART_OF: Readonly<Record<string, ChangePart>> = {
  'Backend.MTU': 'mtu',
  'Backend.Port': 'port',
  'Backend.VNI': 'vni',
  'Backend.DirectRouting': 'directRouting',
  'Backend.GBP': 'gbp',
  'Backend.Learning': 'learning',
  'Backend.Type': 'backend',
  SubnetLen: 'subnetLen',
  SubnetMin: 'subnetRange',
  SubnetMax: 'subnetRange',
  EnableNFTables: 'nftables',
  'Backend.PSK': 'psk',
};

export type ConfigChange =
  /** Nothing that changes what a host does (JSON formatting, key case, defaults spelled out). */
  | { readonly kind: 'none' }
  /** Applied in place: this host keeps its subnet (and so its lease key). */
  | { readonly kind: 'live'; readonly parts: readonly ChangePart[]; readonly diff: readonly string[] }
  /** Applied in place, but this host's subnet no longer fits: it acquires a new one (never one another host holds). */
  | {
      readonly kind: 'move';
      readonly parts: readonly ChangePart[];
      readonly diff: readonly string[];
      readonly why: string;
    }
  /** Not usable by this host: keep running on the old config, warn in the log and status. */
  | { readonly kind: 'unusable'; readonly reason: string };

/** `- Name: old` / `+ Name: new` lines and the kinds of change they make. */
function partsOf(before: NetworkConfig, after: NetworkConfig): { parts: ChangePart[]; diff: string[] } {
  const parts = new Set<ChangePart>();
  const typeChanged = before.backend.type !== after.backend.type;
  for (const { key } of changedSettings(before, after)) {
    if (key.startsWith('IPv6')) {
      parts.add('ipv6');
      continue;
    }
    if (key === 'Network') {
      parts.add(networkPart(before, after));
      continue;
    }
    // Backend.VNI/Port appear and vanish with a backend switch: the switch says it all.
    if (key.startsWith('Backend.') && typeChanged) {
      parts.add('backend');
      continue;
    }
    // A backend option without a kind of its own (wireguard's ListenPort, a new backend's): still
    // a change every host applies, never a silent no-op.
    const p = PART_OF[key] ?? (key.startsWith('Backend.') ? 'option' : undefined);
    if (p) parts.add(p);
  }
  return { parts: [...parts], diff: diffConfigs(before, after) };
}

function networkPart(before: NetworkConfig, after: NetworkConfig): ChangePart {
  const x = before.ipv4?.network;
  const y = after.ipv4?.network;
  return x && y && within(x, y) ? 'grow' : 'renumber';
}

/**
 * Classify `before` -> `after` for a host holding `own` (undefined: none yet; a lease key's
 * halves). `backends` are the backend types this weft runs. An unknown backend is unusable; a
 * lease whose halves no longer fit (SubnetMin..SubnetMax, SubnetLen, or a family turned on or
 * off) is a move (IPv6 turned on keeps the IPv4 subnet: core/fleet/acquire.ts); anything else is live.
 */
export function classifyConfigChange(
  before: NetworkConfig,
  after: NetworkConfig,
  own: SubnetKey | undefined,
  backends: readonly string[],
): ConfigChange {
  if (!backends.includes(after.backend.type))
    return {
      kind: 'unusable',
      reason: `backend type "${after.backend.type}" is not supported by weft (${backends.join(', ')})`,
    };
  const { parts, diff } = partsOf(before, after);
  if (parts.length === 0) return { kind: 'none' };
  const why = own ? misfit(own, after) : undefined;
  return why ? { kind: 'move', parts, diff, why } : { kind: 'live', parts, diff };
}

/** Why a lease's halves no longer fit `c`, or undefined when they do. */
function misfit(own: SubnetKey, c: NetworkConfig): string | undefined {
  const half = (p: Prefix | undefined, r: FamilyRange | undefined, fam: string): string | undefined => {
    if (!r) return p ? `the network has no ${fam} any more (this host holds ${formatPrefix(p)})` : undefined;
    if (!p)
      return `the network now has ${fam} (${formatPrefix(r.network)}): this host adds an ${fam} subnet and keeps the other`;
    if (isCompatible(p, r)) return undefined;
    return p.len !== r.subnetLen
      ? `${fam === 'IPv6' ? 'IPv6' : ''}SubnetLen is now /${r.subnetLen} (this host holds ${formatPrefix(p)})`
      : `${formatPrefix(p)} lies outside the new ${fam === 'IPv6' ? 'IPv6' : ''}SubnetMin..${fam === 'IPv6' ? 'IPv6' : ''}SubnetMax of ${formatPrefix(r.network)}`;
  };
  return half(own.v4, c.ipv4, 'IPv4') ?? half(own.v6, c.ipv6, 'IPv6');
}

/**
 * Devices this host owned and no longer wants (a VNI or backend change retires `flannel.<old>`):
 * the reconciler observes them too, and the planner deletes what it observes and does not want.
 * A name wanted again stops being retired.
 */
export function retiredDevices(
  retired: readonly string[],
  owned: readonly string[],
  wanted: readonly string[],
): string[] {
  const want = new Set(wanted);
  return [...new Set([...retired, ...owned])].filter((n) => !want.has(n));
}

/** What one kind of change does to running hosts (for `weft apply` and docs/operations.md). */
const EFFECT: Readonly<Record<ChangePart, string>> = {
  mtu: 'live: every host sets the new device MTU and rewrites FLANNEL_MTU; Docker must be restarted for its bridge to use it',
  port: 'live: every host re-creates its vxlan device with the new UDP port (a short loss while peers switch)',
  vni: 'live: every host creates flannel.<new VNI>, publishes a new VtepMAC, deletes the old device (a short loss while peers switch)',
  directRouting: 'live: peers on the same L2 segment switch between direct routes and vxlan',
  gbp: 'live: every host re-creates its vxlan device',
  learning: 'live: every host re-creates its vxlan device',
  backend:
    'live: every host switches backend, republishes its lease and rewrites FLANNEL_MTU if it changes (then restart Docker)',
  grow: 'live: leases kept; every host rewrites FLANNEL_NETWORK and its masquerade rules; no Docker restart',
  renumber: 'live for hosts whose subnet still fits; the others move (see below)',
  subnetLen: 'every host moves to a subnet of the new length',
  subnetRange: 'live for hosts whose subnet still fits; the others move (see below)',
  ipv6: 'live: each weft host re-keys its lease (IPv6 on: it adds an IPv6 subnet and keeps its IPv4 one, in one transaction; off: it drops the IPv6 half), programs or removes flannel-v6.<VNI> (or the IPv6 host-gw routes) and the ip6tables chains, and rewrites FLANNEL_IPV6_* in subnet.env; restart Docker for containers to get IPv6; a host without a global IPv6 address keeps running on the last config and warns',
  nftables: 'ignored by weft (iptables rules)',
  option:
    'live: every host programs its device and peers with the new backend option and republishes its lease if the option is in it (a WireGuard ListenPort: peers switch to the new port)',
  psk: 'live: every host sets the new preshared key (or none) on every peer, except hosts whose host.wireguardPSKFile overrides it; until both ends of a pair have it, their handshakes fail and are retried',
};

export interface FleetEffects {
  readonly parts: readonly ChangePart[];
  /** One line per kind of change. */
  readonly effects: readonly string[];
  /** Outputs that change on every host. */
  readonly outputs: readonly string[];
  /** No host restarts weft: every change is applied by the running agents. */
  readonly restart: 'none';
  /** Docker (or Podman) must be restarted on every host for its bridge to pick the change up. */
  readonly dockerRestart: boolean;
  /** Lease keys (subnet keys) of hosts that move, with why. */
  readonly moves: readonly string[];
}

/** Hosts holding `leases` run `before`; what writing `after` does to them. Pure. */
export function fleetEffects(
  before: NetworkConfig,
  after: NetworkConfig,
  leases: readonly { readonly key: string; readonly subnet?: Prefix; readonly subnetV6?: Prefix }[],
): FleetEffects {
  const { parts } = partsOf(before, after);
  const misfit = (p: Prefix | undefined, r: FamilyRange | undefined): string | undefined =>
    p && r && !isCompatible(p, r)
      ? `${formatPrefix(p)} no longer fits ${formatPrefix(r.network)} /${r.subnetLen}`
      : undefined;
  const moves = leases.flatMap((l) => {
    const why = misfit(l.subnet, after.ipv4) ?? misfit(l.subnetV6, after.ipv6);
    return why ? [`${l.key}: ${why}`] : [];
  });
  const outputs: string[] = [];
  const mtu = parts.includes('mtu') || parts.includes('backend');
  if (mtu) outputs.push('FLANNEL_MTU (and the Docker/Podman --mtu) where the overlay MTU changes');
  if (parts.includes('grow') || parts.includes('renumber')) outputs.push('FLANNEL_NETWORK (and the masquerade rules)');
  if (moves.length > 0)
    outputs.push(`FLANNEL_SUBNET (and the Docker/Podman --bip) on the ${moves.length} host(s) that move`);
  const v6 = parts.includes('ipv6');
  if (v6)
    outputs.push(
      "FLANNEL_IPV6_NETWORK and FLANNEL_IPV6_SUBNET (and, with outputs.docker.ipv6, Docker's --ipv6 --fixed-cidr-v6)",
    );
  return {
    parts,
    effects: parts.map((p) => `${p}: ${EFFECT[p]}`),
    outputs,
    restart: 'none',
    dockerRestart: mtu || moves.length > 0 || v6,
    moves,
  };
}
