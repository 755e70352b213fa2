/**
 * flannel's `CheckNetworkConfig` (flannel-compat.md §2.2): the same defaults and the same
 * first-error-wins messages, but returning a new frozen value instead of mutating its input,
 * rejecting an IPv4 CIDR in `IPv6Network` (flannel accepts it, §12 item 20), and refusing
 * SubnetMin above SubnetMax in either family (flannel never checks it; every host then fails
 * with `out of subnets`).
 */
import {
  type IP,
  type Prefix,
  addToIP,
  bitsOf,
  contains,
  formatIP,
  formatPrefix,
  ip,
  isAligned,
  sizeOf,
} from '../net/cidr.js';
import { type BackendConfig, ConfigError, type RawNetworkConfig } from './network-config.js';

/** One address family of a checked config: every value filled in. */
export interface FamilyRange {
  readonly network: Prefix;
  readonly subnetLen: number;
  readonly subnetMin: IP;
  readonly subnetMax: IP;
}

/** A checked config: each enabled family complete, the backend decoded. */
export interface NetworkConfig {
  readonly ipv4?: FamilyRange;
  readonly ipv6?: FamilyRange;
  readonly enableNFTables: boolean;
  readonly backend: BackendConfig;
}

interface FamilyInput {
  readonly network: Prefix | undefined;
  readonly subnetLen: number;
  readonly subnetMin: IP | undefined;
  readonly subnetMax: IP | undefined;
}

function checkIPv4(f: FamilyInput): FamilyRange {
  const net = f.network;
  if (!net || (net.ip.value === 0n && net.len === 0)) {
    throw new ConfigError('please define a correct Network parameter in the flannel config', 'Network');
  }
  let len = f.subnetLen;
  if (len > 0) {
    if (len > 30) throw new ConfigError('SubnetLen must be less than /31', 'SubnetLen');
    if (len < net.len + 2)
      throw new ConfigError('network must be able to accommodate at least four subnets', 'SubnetLen');
  } else {
    if (net.len > 28) throw new ConfigError('network is too small. Minimum useful network prefix is /28', 'Network');
    len = net.len <= 22 ? 24 : net.len + 2;
  }
  return finishRange(net, len, f, '', 'Network');
}

function checkIPv6(f: FamilyInput): FamilyRange {
  const net = f.network;
  if (!net || (net.ip.value === 0n && net.len === 0)) {
    throw new ConfigError('please define a correct IPv6Network parameter in the flannel config', 'IPv6Network');
  }
  if (net.ip.family !== 6)
    throw new ConfigError(`IPv6Network must be an IPv6 CIDR, not ${formatPrefix(net)}`, 'IPv6Network');
  let len = f.subnetLen;
  if (len > 0) {
    if (len > 126) throw new ConfigError('SubnetLen must be less than /127', 'IPv6SubnetLen');
    if (len < net.len + 2)
      throw new ConfigError('network must be able to accommodate at least four subnets', 'IPv6SubnetLen');
  } else {
    if (net.len > 124)
      throw new ConfigError('IPv6Network is too small. Minimum useful network prefix is /124', 'IPv6Network');
    len = net.len <= 62 ? 64 : net.len + 2;
  }
  return finishRange(net, len, f, 'IPv6', 'IPv6Network');
}

/** Defaults for SubnetMin/Max (the second and the last subnet), then range and alignment checks. */
function finishRange(net: Prefix, len: number, f: FamilyInput, p: '' | 'IPv6', netName: string): FamilyRange {
  const fam = net.ip.family;
  const size = sizeOf(fam, len);
  const space = 1n << BigInt(bitsOf(fam));
  const min = f.subnetMin ?? addToIP(net.ip, size) ?? ip(fam, 0n);
  const max = f.subnetMax ?? ip(fam, (net.ip.value + sizeOf(fam, net.len) - size + space) % space);
  if (!contains(net, min))
    throw new ConfigError(`${p}SubnetMin is not in the range of the ${netName}`, `${p}SubnetMin`);
  if (!contains(net, max))
    throw new ConfigError(`${p}SubnetMax is not in the range of the ${netName}`, `${p}SubnetMax`);
  if (!isAligned(min, len))
    throw new ConfigError(`${p}SubnetMin is not on a SubnetLen boundary: ${formatIP(min)}`, `${p}SubnetMin`);
  if (!isAligned(max, len))
    throw new ConfigError(`${p}SubnetMax is not on a SubnetLen boundary: ${formatIP(max)}`, `${p}SubnetMax`);
  // flanneld does not check this: an inverted range surfaces later as "out of subnets" on every host.
  if (min.value > max.value) {
    // Blame the bound that was given (a given SubnetMax below the default SubnetMin is the mistake).
    const field = f.subnetMax && !f.subnetMin ? `${p}SubnetMax` : `${p}SubnetMin`;
    throw new ConfigError(
      `${p}SubnetMin ${formatIP(min)} is above ${p}SubnetMax ${formatIP(max)}, so the range holds no subnet`,
      field,
    );
  }
  return Object.freeze({ network: net, subnetLen: len, subnetMin: min, subnetMax: max });
}

/** Validate and complete a decoded config. Throws ConfigError (first error wins, as flannel). */
export function checkNetworkConfig(raw: RawNetworkConfig): NetworkConfig {
  const ipv4 = raw.enableIPv4
    ? checkIPv4({ network: raw.network, subnetLen: raw.subnetLen, subnetMin: raw.subnetMin, subnetMax: raw.subnetMax })
    : undefined;
  const ipv6 = raw.enableIPv6
    ? checkIPv6({
        network: raw.ipv6Network,
        subnetLen: raw.ipv6SubnetLen,
        subnetMin: raw.ipv6SubnetMin,
        subnetMax: raw.ipv6SubnetMax,
      })
    : undefined;
  if (!ipv4 && !ipv6) throw new ConfigError('none defined stack: enable IPv4 or IPv6', 'EnableIPv4');
  return Object.freeze({
    ...(ipv4 ? { ipv4 } : {}),
    ...(ipv6 ? { ipv6 } : {}),
    enableNFTables: raw.enableNFTables,
    backend: raw.backend,
  });
}

/** How many host subnets lie between SubnetMin and SubnetMax inclusive. */
export function capacityOf(r: FamilyRange): bigint {
  if (r.subnetMax.value < r.subnetMin.value) return 0n;
  return (r.subnetMax.value - r.subnetMin.value) / sizeOf(r.network.ip.family, r.subnetLen) + 1n;
}

/**
 * The settings that change what hosts do, one `name: value` line each, so two configs can be
 * compared (and their difference printed) whatever the JSON formatting, key case or defaults.
 */
export function effectiveSettings(c: NetworkConfig): Map<string, string> {
  const out = new Map<string, string>();
  const fam = (tag: string, r: FamilyRange | undefined): void => {
    if (!r) return;
    out.set(`${tag}Network`, formatPrefix(r.network));
    out.set(`${tag}SubnetLen`, String(r.subnetLen));
    out.set(`${tag}SubnetMin`, formatIP(r.subnetMin));
    out.set(`${tag}SubnetMax`, formatIP(r.subnetMax));
  };
  fam('', c.ipv4);
  fam('IPv6', c.ipv6);
  if (c.enableNFTables) out.set('EnableNFTables', 'true');
  out.set('Backend.Type', c.backend.type);
  // The backend's own (backend-codec.ts BackendSetting), decoded with its options.
  for (const x of c.backend.settings) out.set(x.name, x.value);
  return out;
}

/** The effective settings that differ between `before` and `after` (absent: not set on that side). */
export function changedSettings(
  before: NetworkConfig | undefined,
  after: NetworkConfig,
): { key: string; was?: string; now?: string }[] {
  const a = before ? effectiveSettings(before) : new Map<string, string>();
  const b = effectiveSettings(after);
  const out: { key: string; was?: string; now?: string }[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const was = a.get(key);
    const now = b.get(key);
    if (was !== now) out.push({ key, ...(was !== undefined ? { was } : {}), ...(now !== undefined ? { now } : {}) });
  }
  // A secret shown the same on both sides (`(set)`): a new key is a change all the same (every host must set it).
  for (const x of after.backend.settings) {
    const had = before?.backend.settings.find((y) => y.name === x.name);
    if (x.secret && had?.secret && had.value === x.value && had.secret.compared !== x.secret.compared)
      out.push({ key: x.name, was: had.value, now: x.secret.replaced });
  }
  return out;
}

/** Lines describing how `after` differs from `before` (`- Name: old` / `+ Name: new`); empty when equal. */
export function diffConfigs(before: NetworkConfig | undefined, after: NetworkConfig): string[] {
  return changedSettings(before, after).flatMap((c) => [
    ...(c.was !== undefined ? [`- ${c.key}: ${c.was}`] : []),
    ...(c.now !== undefined ? [`+ ${c.key}: ${c.now}`] : []),
  ]);
}
