/**
 * `weft apply`'s decision: is the stored network config already what the spec says (compared
 * by effect, not by JSON text), and would the change strand live leases (an IPv4 or IPv6 half
 * outside its new range or of another length, a family turned off under it, another backend
 * type, another VNI)? Pure.
 */
import { type Prefix, formatIP, formatPrefix } from '../net/cidr.js';
import { type FamilyRange, type NetworkConfig, checkNetworkConfig, diffConfigs } from '../flannel/config-check.js';
import { type FleetEffects, fleetEffects } from './config-change.js';
import { isCompatible } from '../fleet/allocate.js';
import { hostAddress } from '../net/ip-scope.js';
import type { ListedLease } from '../fleet/acquire.js';
import { decodeVxlanData } from '../flannel/lease.js';
import { ConfigError, decodeNetworkConfig } from '../flannel/network-config.js';

export type ApplyPlan =
  | { readonly kind: 'unchanged' }
  | {
    readonly kind: 'write'; readonly diff: readonly string[]; readonly stranded: readonly string[]; readonly storedInvalid?: string;
    /** What the change does to running hosts (absent when no valid config was stored: nothing runs it). */
    readonly effects?: FleetEffects;
  };

/** How a lease is named in a refusal: its subnets (`v4`, `v6` or `v4 & v6`) and its host's public address. */
function leaseName(l: ListedLease, v6: Prefix | undefined): string {
  const subnets = [l.subnet, v6].flatMap((p) => (p ? [formatPrefix(p)] : [])).join(' & ');
  // An IPv6-only host publishes PublicIP 0.0.0.0 (as flanneld): hostAddress names it by its IPv6 address.
  return `${subnets}${l.attrs ? ` (host ${hostAddress(l.attrs)})` : ''}`;
}

/**
 * Why a live lease would not fit `next`, or undefined when it fits. Each half is judged against
 * its family's new range: a half whose family the new config turns off strands the lease, and
 * so does a half outside its range. Turning IPv6 on strands no weft lease (a weft host keeps its
 * IPv4 subnet and adds an IPv6 half), but it does strand a lease that is not weft's (no owner
 * record: a flanneld host): flanneld without IPv6 crashes on its peers' dual-stack leases, and
 * restarted with IPv6 on it renumbers its IPv4 subnet (flannel-ipv6-wireguard.md §1.6, §1.7).
 * A lease weft holds under the `stored` config's backend follows a backend or VNI change live
 * (issue 19), so only its subnets can strand it; a flanneld host's lease cannot follow.
 */
export function strandReason(l: ListedLease, next: NetworkConfig, stored?: NetworkConfig): string | undefined {
  const v4 = l.subnet;
  const v6 = l.subnetV6;
  if (!v4 && !v6) return undefined;
  const who = leaseName(l, v6);
  const outside = (p: Prefix, r: FamilyRange): string | undefined => (isCompatible(p, r) ? undefined
    : `${who}${r.network.ip.family === 6 && v4 ? `: its IPv6 half ${formatPrefix(p)}` : ''} lies outside ${formatIP(r.subnetMin)}..${formatIP(r.subnetMax)} /${r.subnetLen}`);
  if (v4) {
    if (!next.ipv4) return `${who} holds an IPv4 subnet, but the new config turns IPv4 off`;
    const why = outside(v4, next.ipv4);
    if (why) return why;
  }
  if (v6) {
    if (!next.ipv6) return `${who} holds an IPv6 subnet, but the new config turns IPv6 off`;
    const why = outside(v6, next.ipv6);
    if (why) return why;
  } else if (next.ipv6 && !stored?.ipv6 && l.owner === undefined) {
    return `${who} is not weft's (no owner record: a flanneld host): flanneld without IPv6 crashes on dual-stack leases, and restarted with IPv6 on it takes a new IPv4 subnet; move the host to weft first`;
  }
  const type = l.attrs?.backendType ?? '';
  if (l.owner !== undefined && stored !== undefined && type === stored.backend.type) return undefined;
  if (type !== next.backend.type) return `${who} uses backend ${type || '(none)'}, not ${next.backend.type}`;
  const vni = next.backend.vxlan?.vni;
  if (vni !== undefined) {
    // A lease without a VNI fits any: flanneld never reads a peer's VNI.
    for (const data of [v4 ? l.attrs?.backendData : undefined, v6 ? l.attrs?.backendV6Data : undefined]) {
      const d = data === undefined ? undefined : decodeVxlanData(data);
      if (d?.ok && d.value.vni !== undefined && d.value.vni !== vni) return `${who} uses VNI ${d.value.vni}, not ${vni}`;
    }
  }
  return undefined;
}

export function planApply(storedText: string | undefined, desired: NetworkConfig, leases: readonly ListedLease[]): ApplyPlan {
  let stored: NetworkConfig | undefined;
  let storedInvalid: string | undefined;
  if (storedText !== undefined) {
    try {
      stored = checkNetworkConfig(decodeNetworkConfig(storedText));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      storedInvalid = e.message;
    }
  }
  const diff = diffConfigs(stored, desired);
  if (stored && diff.length === 0) return { kind: 'unchanged' };
  const stranded = stored ? leases.flatMap((l) => strandReason(l, desired, stored) ?? []) : [];
  const effects = stored ? fleetEffects(stored, desired, leases.flatMap((l) => (l.owner && (l.subnet ?? l.subnetV6) ? [{ key: l.subnetKey, ...(l.subnet ? { subnet: l.subnet } : {}), ...(l.subnetV6 ? { subnetV6: l.subnetV6 } : {}) }] : []))) : undefined;
  return { kind: 'write', diff, stranded, ...(storedInvalid !== undefined ? { storedInvalid } : {}), ...(effects ? { effects } : {}) };
}
