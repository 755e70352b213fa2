/**
 * flannel's network config JSON (`<prefix>/config`), decoded exactly as flanneld decodes it
 * (pkg/subnet/config.go ParseConfig: Go's encoding/json into subnet.Config, flannel-compat.md
 * §2.1): keys matched as Go matches them, the last duplicate wins, unknown keys ignored, `null`
 * a no-op, integers parsed from their token, addresses through flannel's own UnmarshalJSON
 * methods (flannel-types.ts), `Network` masked, `0.0.0.0` / `::` meaning "unset", an absent
 * `Backend` meaning `udp`; the Backend object kept as stored and its options decoded by the
 * backend of its type (backend-codec.ts), as each flanneld backend decodes its own. A config
 * over 64 KiB or nested deeper than 32 levels is refused unread. Decoding never applies the
 * network's defaults; `checkNetworkConfig` (config-check.ts) does that, into a new frozen value.
 */
import { type IP, type Prefix, formatIP, formatPrefix } from '../net/cidr.js';
import { WeftError } from '../base/errors.js';
import { unmarshalIP4, unmarshalIP4Net, unmarshalIP6, unmarshalIP6Net } from './flannel-types.js';
import { type JsonLimits, type JsonNode, compactJson, decodeStruct, parseJson } from './gojson.js';
import { goToLower } from './go-text.js';
import type { BackendOptions, BackendSetting, FlannelBackends } from './backend-codec.js';

/**
 * `Backend`: its lower-cased type; its options as the backend of that type decoded them
 * (backend-codec.ts: opaque to core; absent for a type weft has no backend for, or one without
 * options); the settings a live change compares; and the object as stored, compact (Go's
 * RawMessage: `null` when stored as null; absent when there is none).
 */
export interface BackendConfig {
  readonly type: string;
  readonly options?: BackendOptions;
  readonly settings: readonly BackendSetting[];
  readonly raw?: string;
}

/** The config as written in etcd, nothing defaulted (0 / undefined = unset). */
export interface RawNetworkConfig {
  /**
   * The masked network. Its length can exceed 32 where flannel keeps one: for an IPv4-mapped
   * IPv6 CIDR such as `::ffff:10.1.0.0/112` flannel keeps the 128-bit mask's length (96..128),
   * and CheckNetworkConfig then refuses it whenever IPv4 is enabled.
   */
  readonly network?: Prefix;
  readonly subnetLen: number;
  readonly subnetMin?: IP;
  readonly subnetMax?: IP;
  readonly enableIPv4: boolean;
  readonly enableIPv6: boolean;
  readonly ipv6Network?: Prefix;
  readonly ipv6SubnetLen: number;
  readonly ipv6SubnetMin?: IP;
  readonly ipv6SubnetMax?: IP;
  readonly enableNFTables: boolean;
  readonly backend: BackendConfig;
}

/** An invalid config; `field` names the flannel key at fault, when there is one. */
export class ConfigError extends WeftError {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super('E_CONFIG', message);
  }
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Limits on the stored config. */
export const CONFIG_LIMITS: JsonLimits = Object.freeze({ maxBytes: 64 * 1024, maxDepth: 32 });

/** subnet.Config (BackendType is `json:"-"`, so a `BackendType` key is ignored). */
const CONFIG = {
  EnableIPv4: { kind: 'bool' },
  EnableIPv6: { kind: 'bool' },
  EnableNFTables: { kind: 'bool' },
  Network: { kind: unmarshalIP4Net },
  IPv6Network: { kind: unmarshalIP6Net },
  SubnetMin: { kind: unmarshalIP4 },
  SubnetMax: { kind: unmarshalIP4 },
  IPv6SubnetMin: { kind: unmarshalIP6, pointer: true },
  IPv6SubnetMax: { kind: unmarshalIP6, pointer: true },
  SubnetLen: { kind: 'uint' },
  IPv6SubnetLen: { kind: 'uint' },
  Backend: { kind: 'raw' },
} as const;

/** flanneld's type when the config has no Backend (pkg/backend/manager.go: the udp backend). */
const NO_BACKEND_TYPE = 'udp';

/**
 * parseBackendType: an absent Backend is `udp`; else its `Type` (a struct { Type string }),
 * lower-cased as the backend manager does (Go's strings.ToLower); then the backend of that type
 * decodes its options from the same object (its New()), when weft has one.
 */
function decodeBackendNode(node: JsonNode | undefined, backends: FlannelBackends): BackendConfig {
  if (node === undefined) return Object.freeze({ type: NO_BACKEND_TYPE, settings: [] });
  const r = decodeStruct(node, 'struct { Type string }', { Type: { kind: 'string' } } as const);
  if (!r.ok) throw new ConfigError(`error decoding Backend property of config: ${r.reason}`, 'Backend');
  const type = goToLower(r.value.Type ?? '');
  const raw = compactJson(node);
  const backend = backends.get(type);
  const options = backend?.decodeOptions?.(node);
  const settings = Object.freeze([...(backend?.settings?.(options) ?? [])]);
  return Object.freeze({ type, ...(options !== undefined ? { options } : {}), settings, raw });
}

/** Decode a Backend given as JSON text (undefined: no Backend). Throws ConfigError. */
export function decodeBackend(text: string | undefined, backends: FlannelBackends): BackendConfig {
  if (text === undefined) return decodeBackendNode(undefined, backends);
  const doc = parseJson(text, CONFIG_LIMITS);
  if (!doc.ok) throw new ConfigError(`error decoding Backend property of config: ${doc.reason}`, 'Backend');
  return decodeBackendNode(doc.value, backends);
}

/**
 * Decode `<prefix>/config` text as flanneld does, the Backend's options by the backend of its
 * type in `backends` (src/backends/index.ts). Throws ConfigError. Never applies defaults.
 */
export function decodeNetworkConfig(text: string, backends: FlannelBackends): RawNetworkConfig {
  const doc = parseJson(text, CONFIG_LIMITS);
  if (!doc.ok) throw new ConfigError(`the network config is unreadable: ${doc.reason}`);
  const r = decodeStruct(doc.value, 'subnet.Config', CONFIG);
  if (!r.ok) throw new ConfigError(r.reason, r.field);
  const v = r.value;
  const nonZero = (a: IP | null | undefined): IP | undefined => (a && a.value !== 0n ? a : undefined);
  const opt = <K extends keyof RawNetworkConfig>(
    k: K,
    x: RawNetworkConfig[K] | undefined,
  ): Partial<RawNetworkConfig> => (x === undefined ? {} : { [k]: x });
  return Object.freeze({
    subnetLen: Number(v.SubnetLen ?? 0n),
    enableIPv4: v.EnableIPv4 ?? true,
    enableIPv6: v.EnableIPv6 ?? false,
    ipv6SubnetLen: Number(v.IPv6SubnetLen ?? 0n),
    enableNFTables: v.EnableNFTables ?? false,
    backend: decodeBackendNode(v.Backend, backends),
    ...opt('network', v.Network),
    ...opt('subnetMin', nonZero(v.SubnetMin)),
    ...opt('subnetMax', nonZero(v.SubnetMax)),
    ...opt('ipv6Network', v.IPv6Network),
    ...opt('ipv6SubnetMin', nonZero(v.IPv6SubnetMin)),
    ...opt('ipv6SubnetMax', nonZero(v.IPv6SubnetMax)),
  });
}

/**
 * The JSON text weft stores: flannel's PascalCase keys in a fixed order, only what is set,
 * compact. Round-trips through decodeNetworkConfig.
 */
export function encodeNetworkConfig(c: RawNetworkConfig): string {
  const o: Record<string, unknown> = {};
  if (c.network) o.Network = formatPrefix(c.network);
  if (c.subnetLen) o.SubnetLen = c.subnetLen;
  if (c.subnetMin) o.SubnetMin = formatIP(c.subnetMin);
  if (c.subnetMax) o.SubnetMax = formatIP(c.subnetMax);
  if (!c.enableIPv4) o.EnableIPv4 = false;
  if (c.enableIPv6) o.EnableIPv6 = true;
  if (c.ipv6Network) o.IPv6Network = formatPrefix(c.ipv6Network);
  if (c.ipv6SubnetLen) o.IPv6SubnetLen = c.ipv6SubnetLen;
  if (c.ipv6SubnetMin) o.IPv6SubnetMin = formatIP(c.ipv6SubnetMin);
  if (c.ipv6SubnetMax) o.IPv6SubnetMax = formatIP(c.ipv6SubnetMax);
  if (c.enableNFTables) o.EnableNFTables = true;
  const text = JSON.stringify(o);
  if (c.backend.raw === undefined) return text;
  return `${text.slice(0, -1)}${text === '{}' ? '' : ','}"Backend":${c.backend.raw}}`;
}
