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
import { type FlannelBackends, isOwnLease } from '../flannel/backend-codec.js';
import { ConfigError, decodeNetworkConfig } from '../flannel/network-config.js';

export type ApplyPlan =
  | { readonly kind: 'unchanged' }
  | {
      readonly kind: 'write';
      readonly diff: readonly string[];
      readonly stranded: readonly string[];
      readonly storedInvalid?: string;
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
export function strandReason(
  l: ListedLease,
  next: NetworkConfig,
  backends: FlannelBackends,
  stored?: NetworkConfig,
): string | undefined {
  const v4 = l.subnet;
  const v6 = l.subnetV6;
  if (!v4 && !v6) return undefined;
  const who = leaseName(l, v6);
  const outside = (p: Prefix, r: FamilyRange): string | undefined =>
    isCompatible(p, r)
      ? undefined
      : `${who}${r.network.ip.family === 6 && v4 ? `: its IPv6 half ${formatPrefix(p)}` : ''} lies outside ${formatIP(r.subnetMin)}..${formatIP(r.subnetMax)} /${r.subnetLen}`;
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
  // Whose lease it is, the backend says (flannel's alloc writes no BackendType); a type weft has no backend for, by name.
  const isOf = (c: NetworkConfig): boolean => {
    const b = backends.get(c.backend.type);
    return b ? isOwnLease(b, { backendType: l.attrs?.backendType }) : type === c.backend.type;
  };
  if (l.owner !== undefined && stored !== undefined && isOf(stored)) return undefined;
  if (!isOf(next)) return `${who} uses backend ${type || '(none)'}, not ${next.backend.type}`;
  // The data's fit to the new options, as its backend judges it (a VNI; a lease without one fits any).
  const codec = backends.get(next.backend.type)?.lease;
  const fields = [...(v4 ? ['BackendData' as const] : []), ...(v6 ? ['BackendV6Data' as const] : [])];
  for (const field of codec?.dataScope === 'half' ? fields : []) {
    const text = field === 'BackendData' ? l.attrs?.backendData : l.attrs?.backendV6Data;
    const d = text === undefined ? undefined : codec?.decodeData?.(text, field);
    const m = d?.ok ? codec?.mismatch?.(d.value, next.backend.options) : undefined;
    if (m) return `${who} uses ${m.setting} ${m.lease}, not ${m.network}`;
  }
  return undefined;
}

/** `backends`: the registry (src/backends/index.ts) the stored text is read with and leases are judged by. */
export function planApply(
  storedText: string | undefined,
  desired: NetworkConfig,
  leases: readonly ListedLease[],
  backends: FlannelBackends,
): ApplyPlan {
  let stored: NetworkConfig | undefined;
  let storedInvalid: string | undefined;
  if (storedText !== undefined) {
    try {
      stored = checkNetworkConfig(decodeNetworkConfig(storedText, backends));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      storedInvalid = e.message;
    }
  }
  const diff = diffConfigs(stored, desired);
  if (stored && diff.length === 0) return { kind: 'unchanged' };
  const stranded = stored ? leases.flatMap((l) => strandReason(l, desired, backends, stored) ?? []) : [];
  const effects = stored
    ? fleetEffects(
        stored,
        desired,
        leases.flatMap((l) =>
          l.owner && (l.subnet ?? l.subnetV6)
            ? [
                {
                  key: l.subnetKey,
                  ...(l.subnet ? { subnet: l.subnet } : {}),
                  ...(l.subnetV6 ? { subnetV6: l.subnetV6 } : {}),
                },
              ]
            : [],
        ),
      )
    : undefined;
  return {
    kind: 'write',
    diff,
    stranded,
    ...(storedInvalid !== undefined ? { storedInvalid } : {}),
    ...(effects ? { effects } : {}),
  };
}
