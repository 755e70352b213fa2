/**
 * What a live config change does to the bridge-relevant outputs (subnet.env, Docker's and
 * Podman's options), per address family, and what the `host.onOutputsChanged` hook is told.
 * Docker (or Podman) must be restarted for its bridge to take a new MTU or subnet (`--mtu`,
 * `--bip`, `--fixed-cidr-v6` are read at daemon start). Pure.
 *
 * Each family is its own: FLANNEL_SUBNET and WEFT_SUBNET are IPv4's (as in subnet.env, where an
 * IPv6-only host writes no FLANNEL_SUBNET), FLANNEL_IPV6_SUBNET and WEFT_IPV6_* IPv6's, so
 * turning IPv4 off reads `FLANNEL_SUBNET 10.5.3.0/24 -> (none)` and an IPv6-only host's move is
 * reported once.
 */
import { type Prefix, formatPrefix, samePrefix } from '../net/cidr.js';

/** One family's network and this host's subnet in it. */
export interface FamilyBridge {
  readonly network: Prefix;
  readonly subnet: Prefix;
}

/** The values a host's bridge outputs carry. */
export interface BridgeState {
  readonly mtu: number;
  readonly v4?: FamilyBridge;
  readonly v6?: FamilyBridge;
}

const text = (p: Prefix | undefined): string => (p ? formatPrefix(p) : '(none)');
const same = (a: Prefix | undefined, b: Prefix | undefined): boolean => (a && b ? samePrefix(a, b) : a === b);

/**
 * Which bridge outputs changed, as `NAME old -> new` lines: FLANNEL_MTU, FLANNEL_SUBNET (IPv4),
 * FLANNEL_IPV6_SUBNET; a family turned on or off reads `(none)` on its side. Empty when none did.
 * The networks (FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK) are in subnet.env only, not in Docker's
 * or Podman's options: they need no restart.
 */
export function bridgeChanges(before: BridgeState, after: BridgeState): string[] {
  const out: string[] = [];
  if (before.mtu !== after.mtu) out.push(`FLANNEL_MTU ${before.mtu} -> ${after.mtu}`);
  if (!same(before.v4?.subnet, after.v4?.subnet))
    out.push(`FLANNEL_SUBNET ${text(before.v4?.subnet)} -> ${text(after.v4?.subnet)}`);
  if (!same(before.v6?.subnet, after.v6?.subnet))
    out.push(`FLANNEL_IPV6_SUBNET ${text(before.v6?.subnet)} -> ${text(after.v6?.subnet)}`);
  return out;
}

const value = (p: Prefix | undefined): string => (p ? formatPrefix(p) : '');

/** One state's WEFT_* variables, `prefix` '' for the new values and 'PREVIOUS_' for the old. */
function stateVars(s: BridgeState, prefix: string): Record<string, string> {
  return {
    [`WEFT_${prefix}MTU`]: String(s.mtu),
    [`WEFT_${prefix}NETWORK`]: value(s.v4?.network),
    [`WEFT_${prefix}SUBNET`]: value(s.v4?.subnet),
    [`WEFT_${prefix}IPV6_NETWORK`]: value(s.v6?.network),
    [`WEFT_${prefix}IPV6_SUBNET`]: value(s.v6?.subnet),
  };
}

/**
 * The hook's environment for the change `before` -> `after`: WEFT_CHANGED (the names that
 * changed, comma-separated), the new and WEFT_PREVIOUS_* values (empty for a family that is
 * off) and WEFT_SUBNET_FILE.
 */
export function hookEnvironment(before: BridgeState, after: BridgeState, subnetFile: string): Record<string, string> {
  const changed = bridgeChanges(before, after)
    .map((x) => x.split(' ')[0] ?? '')
    .join(',');
  return {
    WEFT_CHANGED: changed,
    ...stateVars(after, ''),
    ...stateVars(before, 'PREVIOUS_'),
    WEFT_SUBNET_FILE: subnetFile,
  };
}
