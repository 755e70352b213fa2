/**
 * `weft config show`: the stored `<prefix>/config` as weft reads it. Decoded and checked as
 * flanneld does (decodeNetworkConfig + checkNetworkConfig), then judged for what weft itself
 * needs to run on it (a backend weft has). The result is flannel's field names
 * with every default applied, so an operator sees what hosts actually use. Pure.
 */
import { formatIP, formatPrefix } from '../net/cidr.js';
import {
  type FamilyRange,
  type NetworkConfig,
  capacityOf,
  checkNetworkConfig,
  diffConfigs,
} from '../flannel/config-check.js';
import { capText, safeLines, safeText } from '../base/escape.js';
import { decodeNetworkConfig } from '../flannel/network-config.js';
import type { BackendOptions, FlannelBackend } from '../flannel/backend-codec.js';

/** The Backend object `weft config show` prints: `Type`, and the backend's options under flannel's names. */
export interface BackendView {
  readonly Type: string;
  readonly [option: string]: unknown;
}

/** A backend as `weft config show` sees it: how it reads a config, and how it shows its options. */
export interface ConfigViewBackend extends FlannelBackend {
  /** Its options under flannel's names, weft's defaults applied (absent: only `Type` is shown). */
  view?(options: BackendOptions | undefined): BackendView;
  /** The summary line after `backend   ` (absent: the type). */
  summary?(options: BackendOptions | undefined): string;
}

/** The registry as `weft config show` sees it (src/backends/index.ts BACKENDS). */
export type ConfigViewBackends = ReadonlyMap<string, ConfigViewBackend>;

/** The config with flannel's names; a family that is off has null fields. */
export interface ConfigView {
  readonly Network: string | null;
  readonly SubnetLen: number | null;
  readonly SubnetMin: string | null;
  readonly SubnetMax: string | null;
  readonly EnableIPv4: boolean;
  readonly EnableIPv6: boolean;
  readonly IPv6Network: string | null;
  readonly IPv6SubnetLen: number | null;
  readonly IPv6SubnetMin: string | null;
  readonly IPv6SubnetMax: string | null;
  /** `Type` lower-cased as flanneld reads it (`udp` when Backend is absent); a backend may add its options (vxlan does). */
  readonly Backend: BackendView;
}

/**
 * What `weft config show --json` prints. `valid`: weft can run on the stored config. `config`:
 * null when the text cannot be decoded or fails flannel's checks; set with `valid: false` when
 * flannel would accept it but weft cannot run on it (another backend).
 */
export interface StoredConfigReport {
  readonly valid: boolean;
  readonly error: string | null;
  readonly config: ConfigView | null;
}

function family(r: FamilyRange | undefined): {
  network: string | null;
  len: number | null;
  min: string | null;
  max: string | null;
} {
  return r
    ? { network: formatPrefix(r.network), len: r.subnetLen, min: formatIP(r.subnetMin), max: formatIP(r.subnetMax) }
    : { network: null, len: null, min: null, max: null };
}

/** The checked config under flannel's names, defaults applied; `backend`: the backend of its type, when weft has one. */
export function configView(c: NetworkConfig, backend?: ConfigViewBackend): ConfigView {
  const v4 = family(c.ipv4);
  const v6 = family(c.ipv6);
  const Backend = backend?.view?.(c.backend.options) ?? { Type: capText(c.backend.type) };
  return {
    Network: v4.network,
    SubnetLen: v4.len,
    SubnetMin: v4.min,
    SubnetMax: v4.max,
    EnableIPv4: c.ipv4 !== undefined,
    EnableIPv6: c.ipv6 !== undefined,
    IPv6Network: v6.network,
    IPv6SubnetLen: v6.len,
    IPv6SubnetMin: v6.min,
    IPv6SubnetMax: v6.max,
    Backend,
  };
}

/** Why weft cannot run on a config flannel accepts, or undefined when it can. */
function weftRefusal(c: NetworkConfig, backends: ConfigViewBackends): string | undefined {
  if (!backends.has(c.backend.type)) {
    return `backend type ${JSON.stringify(c.backend.type)} is not supported by weft (${[...backends.keys()].join(', ')})`;
  }
  return undefined;
}

/** A stored config as weft reads it: the report `--json` prints, and the checked config. */
export interface StoredConfig {
  readonly report: StoredConfigReport;
  /** Set when the text decodes and passes flannel's checks. */
  readonly checked?: NetworkConfig;
  /** The backend's summary of its options (the human view), when it has one. */
  readonly backendSummary?: string;
}

/** Judge the stored text. `backends`: the backends weft has (src/backends/index.ts BACKENDS). */
export function readStoredConfig(text: string, backends: ConfigViewBackends): StoredConfig {
  let checked: NetworkConfig;
  try {
    checked = checkNetworkConfig(decodeNetworkConfig(text, backends));
  } catch (e) {
    return { report: { valid: false, error: capText(e instanceof Error ? e.message : String(e)), config: null } };
  }
  const refusal = weftRefusal(checked, backends);
  const backend = backends.get(checked.backend.type);
  const backendSummary = backend?.summary?.(checked.backend.options);
  return {
    report: {
      valid: refusal === undefined,
      error: refusal === undefined ? null : capText(refusal),
      config: configView(checked, backend),
    },
    checked,
    ...(backendSummary !== undefined ? { backendSummary } : {}),
  };
}

/** A count as JSON shows it: a number while it is exact in a JS number, else its decimal string. */
export function jsonCount(n: bigint): number | string {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

/** One family's derived range in `weft validate --json`. */
export interface DerivedRange {
  readonly subnetLen: number;
  readonly subnetMin: string;
  readonly subnetMax: string;
  /** Host subnets between subnetMin and subnetMax: a number, or a decimal string past 2^53 − 1 (IPv6). */
  readonly capacity: number | string;
}

/**
 * `weft validate --json`'s `derived`: the IPv4 range at the top level as before (every field
 * null for an IPv6-only network) and, only when IPv6 is on, the same four fields under `ipv6`.
 */
export type DerivedView =
  | (DerivedRange & { readonly ipv6?: DerivedRange })
  | {
      readonly subnetLen: null;
      readonly subnetMin: null;
      readonly subnetMax: null;
      readonly capacity: null;
      readonly ipv6?: DerivedRange;
    };

function derivedRange(r: FamilyRange): DerivedRange {
  return {
    subnetLen: r.subnetLen,
    subnetMin: formatIP(r.subnetMin),
    subnetMax: formatIP(r.subnetMax),
    capacity: jsonCount(capacityOf(r)),
  };
}

export function derivedView(c: NetworkConfig): DerivedView {
  const v6 = c.ipv6 ? { ipv6: derivedRange(c.ipv6) } : {};
  return c.ipv4
    ? { ...derivedRange(c.ipv4), ...v6 }
    : { subnetLen: null, subnetMin: null, subnetMax: null, capacity: null, ...v6 };
}

function summary(c: ConfigView, s: StoredConfig): string[] {
  const capacity = (r: FamilyRange | undefined): string => (r ? ` (${capacityOf(r)} host subnets)` : '');
  const b = c.Backend;
  return [
    c.Network === null
      ? '  ipv4      off'
      : `  network   ${c.Network}: /${c.SubnetLen ?? '?'} subnets from ${c.SubnetMin ?? '?'} to ${c.SubnetMax ?? '?'}${capacity(s.checked?.ipv4)}`,
    c.IPv6Network === null
      ? '  ipv6      off'
      : `  ipv6      ${c.IPv6Network}: /${c.IPv6SubnetLen ?? '?'} subnets from ${c.IPv6SubnetMin ?? '?'} to ${c.IPv6SubnetMax ?? '?'}${capacity(s.checked?.ipv6)}`,
    `  backend   ${s.backendSummary ?? (b.Type === '' ? '(no type)' : safeText(b.Type))}`,
  ];
}

/** The most lines of stored text shown (a config is a few lines; etcd allows megabytes). */
const STORED_LINES = 40;

/**
 * `weft config show` for a human: valid or not and why, the settings hosts use, how the spec's
 * network compares, and the stored text itself. Every etcd string is escaped, line by line.
 */
export function renderStoredConfig(
  key: string,
  revision: string,
  text: string,
  s: StoredConfig,
  spec?: { readonly file: string; readonly config: NetworkConfig },
): string {
  const r = s.report;
  const lines = [`${key}: ${r.valid ? 'valid' : 'INVALID'} (revision ${revision})`];
  if (r.error !== null) lines.push(`  error     ${safeText(r.error)}`);
  if (r.config) lines.push(...summary(r.config, s));
  if (spec && s.checked) {
    const differs = diffConfigs(s.checked, spec.config).length > 0;
    lines.push(
      `  spec      ${differs ? `differs from ${spec.file} (weft apply --dry-run shows how)` : `matches ${spec.file}`}`,
    );
  }
  lines.push('stored text:', ...safeLines(text, STORED_LINES).map((l) => `  ${l}`));
  return `${lines.join('\n')}\n`;
}
