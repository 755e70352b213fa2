/**
 * `weft apply`'s decision: is the stored network config already what the spec says (compared
 * by effect, not by JSON text), and would the change strand live leases (a subnet outside the
 * new range or of another length, another backend type, another VNI)? Pure.
 */
import { formatIP, formatPrefix } from './cidr.js';
import { type NetworkConfig, checkNetworkConfig, diffConfigs } from './config-check.js';
import { type FleetEffects, fleetEffects } from './config-change.js';
import { isCompatible } from './allocate.js';
import type { ListedLease } from './acquire.js';
import { decodeVxlanData } from './lease.js';
import { ConfigError, decodeNetworkConfig } from './network-config.js';

export type ApplyPlan =
  | { readonly kind: 'unchanged' }
  | {
    readonly kind: 'write'; readonly diff: readonly string[]; readonly stranded: readonly string[]; readonly storedInvalid?: string;
    /** What the change does to running hosts (absent when no valid config was stored: nothing runs it). */
    readonly effects?: FleetEffects;
  };

/**
 * Why a live lease would not fit `next`, or undefined when it fits. A lease weft holds (it has
 * an owner record) under the `stored` config's backend follows a backend or VNI change live
 * (issue 19), so only its subnet can strand it; a flanneld host's lease cannot follow.
 */
export function strandReason(l: ListedLease, next: NetworkConfig, stored?: NetworkConfig): string | undefined {
  const r = next.ipv4;
  if (!l.subnet || !r) return undefined;
  const who = `${formatPrefix(l.subnet)}${l.attrs ? ` (host ${formatIP(l.attrs.publicIP)})` : ''}`;
  if (!isCompatible(l.subnet, r)) return `${who} lies outside ${formatIP(r.subnetMin)}..${formatIP(r.subnetMax)} /${r.subnetLen}`;
  const type = l.attrs?.backendType ?? '';
  if (l.owner !== undefined && stored !== undefined && type === stored.backend.type) return undefined;
  if (type !== next.backend.type) return `${who} uses backend ${type || '(none)'}, not ${next.backend.type}`;
  if (next.backend.vxlan) {
    const d = decodeVxlanData(l.attrs?.backendData);
    // A lease without a VNI fits any: flanneld never reads a peer's VNI.
    if (d.ok && d.value.vni !== undefined && d.value.vni !== next.backend.vxlan.vni) return `${who} uses VNI ${d.value.vni}, not ${next.backend.vxlan.vni}`;
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
  const effects = stored ? fleetEffects(stored, desired, leases.flatMap((l) => (l.owner && l.subnet ? [{ key: l.subnetKey, subnet: l.subnet }] : []))) : undefined;
  return { kind: 'write', diff, stranded, ...(storedInvalid !== undefined ? { storedInvalid } : {}), ...(effects ? { effects } : {}) };
}
