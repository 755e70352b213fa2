/**
 * flannel's network config JSON (`<prefix>/config`), decoded exactly as flanneld decodes it
 * (pkg/subnet/config.go ParseConfig: Go's encoding/json into subnet.Config, flannel-compat.md
 * §2.1): keys matched as Go matches them, the last duplicate wins, unknown keys ignored, `null`
 * a no-op, integers parsed from their token, addresses through flannel's own UnmarshalJSON
 * methods (flannel-types.ts), `Network` masked, `0.0.0.0` / `::` meaning "unset", an absent
 * `Backend` meaning `udp`. A config over 64 KiB or nested deeper than 32 levels is refused
 * unread. Decoding never applies defaults; `checkNetworkConfig` (config-check.ts) does that, into
 * a new frozen value.
 */
import { type IP, type Prefix, formatIP, formatPrefix } from '../net/cidr.js';
import { WeftError } from '../base/errors.js';
import { unmarshalIP4, unmarshalIP4Net, unmarshalIP6, unmarshalIP6Net } from './flannel-types.js';
import { type JsonLimits, type JsonNode, compactJson, decodeStruct, parseJson } from './gojson.js';
import { goToLower } from './go-text.js';
import { canonicalKey } from './wg-key.js';

/** Options of the vxlan backend (§3.1). Zero means "unset" where flannel says so. */
export interface VxlanOptions {
  readonly vni: number;
  readonly port: number;
  readonly mtu: number;
  readonly gbp: boolean;
  readonly learning: boolean;
  readonly directRouting: boolean;
}

/** flanneld's wireguard Mode (flannel-ipv6-wireguard.md §2.1, §2.3). */
export type WireguardMode = 'separate' | 'auto' | 'ipv4' | 'ipv6';

/**
 * Options of the wireguard backend (flannel-ipv6-wireguard.md §2.1), defaults filled as
 * flanneld fills them. `psk` is the stored config's `PSK` (a secret: never logged, never shown).
 */
export interface WireguardOptions {
  readonly listenPort: number;
  readonly listenPortV6: number;
  /** The underlay MTU to use (0: the interface's); the device gets MTU − 80. */
  readonly mtu: number;
  readonly psk?: string;
  readonly keepaliveSeconds: number;
  readonly mode: WireguardMode;
}

/** A WireGuard key as `wg` prints it: canonical base64 of 32 bytes (44 characters, the last padding bits zero). */
export const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/**
 * `Backend`: its lower-cased type, the vxlan options when the type is vxlan, and the object as
 * stored, compact (Go's RawMessage: `null` when stored as null; absent when there is none).
 */
export interface BackendConfig {
  readonly type: string;
  readonly vxlan?: VxlanOptions;
  readonly wireguard?: WireguardOptions;
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
  constructor(message: string, readonly field?: string) {
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

/** vxlan.go VXLANConfig (Linux): every field a Go int or bool, matched by its json tag. */
const VXLAN_CONFIG = {
  vni: { kind: 'int' }, port: { kind: 'int' }, mtu: { kind: 'int' },
  gbp: { kind: 'bool' }, learning: { kind: 'bool' }, directRouting: { kind: 'bool' },
} as const;

/** weft refuses what the kernel cannot program (flanneld fails creating the device, or truncates the port). */
const VXLAN_RANGES = [['vni', 'VNI', 0xffffff], ['port', 'Port', 0xffff]] as const;

function decodeVxlan(node: JsonNode): VxlanOptions {
  const r = decodeStruct(node, 'vxlan.VXLANConfig', VXLAN_CONFIG);
  if (!r.ok) throw new ConfigError(`error decoding VXLAN backend config: ${r.reason}`, 'Backend');
  const v = r.value;
  for (const [tag, name, max] of VXLAN_RANGES) {
    const n = v[tag];
    if (n !== undefined && (n < 0n || n > BigInt(max))) {
      throw new ConfigError(`error decoding VXLAN backend config: Backend.${name} ${n} is outside 0..${max}`, `Backend.${name}`);
    }
  }
  return Object.freeze({
    vni: Number(v.vni ?? 1n), port: Number(v.port ?? 0n), mtu: Number(v.mtu ?? 0n),
    gbp: v.gbp ?? false, learning: v.learning ?? false, directRouting: v.directRouting ?? false,
  });
}

/** wireguard.go RegisterNetwork's config struct: keys matched as Go matches them, values case-sensitive. */
const WIREGUARD_CONFIG = {
  ListenPort: { kind: 'int' }, ListenPortV6: { kind: 'int' }, MTU: { kind: 'int' }, PSK: { kind: 'string' },
  PersistentKeepaliveInterval: { kind: 'int' }, Mode: { kind: 'string' },
} as const;

const WG_MODES: readonly string[] = ['separate', 'auto', 'ipv4', 'ipv6'];

/**
 * Decode wireguard options as flanneld does, refusing what flanneld would accept but cannot
 * work (a port outside 1..65535 is truncated to uint16 in its lease; a keepalive over 65535 s
 * is refused by the kernel), and mode `ipv6`, which needs the IPv6 fabric weft does not
 * program yet (flanneld panics on it with a v4-only config, §2.9).
 */
function decodeWireguard(node: JsonNode): WireguardOptions {
  const r = decodeStruct(node, 'wireguard config', WIREGUARD_CONFIG);
  if (!r.ok) throw new ConfigError(`error decoding backend config: ${r.reason}`, 'Backend');
  const v = r.value;
  const ranged = (n: bigint | undefined, name: string, min: bigint, max: bigint, dflt: number): number => {
    if (n === undefined) return dflt;
    if (n < min || n > max) throw new ConfigError(`error decoding backend config: Backend.${name} ${n} is outside ${min}..${max}`, `Backend.${name}`);
    return Number(n);
  };
  const mode = v.Mode ?? 'separate';
  if (!WG_MODES.includes(mode)) throw new ConfigError(`no valid Mode configured: Backend.Mode ${JSON.stringify(shortMode(mode))} is not separate, auto, ipv4 or ipv6`, 'Backend.Mode');
  if (mode === 'ipv6') throw new ConfigError('Backend.Mode "ipv6" needs an IPv6 fabric, which weft does not program yet; use separate, auto or ipv4', 'Backend.Mode');
  const pskText = (v.PSK ?? '').replace(/[\r\n]/g, '');
  // Read as flanneld's wgtypes.ParseKey reads it (CR, LF and the padding bits ignored), kept in
  // the spelling wg accepts. The value itself is never echoed (it is a secret).
  const psk = canonicalKey(pskText);
  if (pskText !== '' && psk === undefined) throw new ConfigError('could not parse psk: Backend.PSK is not the base64 of 32 bytes (wg genpsk)', 'Backend.PSK');
  return Object.freeze({
    listenPort: ranged(v.ListenPort, 'ListenPort', 1n, 65535n, 51820),
    listenPortV6: ranged(v.ListenPortV6, 'ListenPortV6', 1n, 65535n, 51821),
    mtu: ranged(v.MTU, 'MTU', 0n, 65535n, 0),
    keepaliveSeconds: ranged(v.PersistentKeepaliveInterval, 'PersistentKeepaliveInterval', 0n, 65535n, 0),
    mode: mode as WireguardMode,
    ...(psk !== undefined ? { psk } : {}),
  });
}

const shortMode = (m: string): string => (m.length > 32 ? `${m.slice(0, 32)}…` : m);

/** parseBackendType: an absent Backend is `udp`; else its `Type` (a struct { Type string }), lower-cased as the backend manager does (Go's strings.ToLower). */
function decodeBackendNode(node: JsonNode | undefined): BackendConfig {
  if (node === undefined) return Object.freeze({ type: 'udp' });
  const r = decodeStruct(node, 'struct { Type string }', { Type: { kind: 'string' } } as const);
  if (!r.ok) throw new ConfigError(`error decoding Backend property of config: ${r.reason}`, 'Backend');
  const type = goToLower(r.value.Type ?? '');
  const raw = compactJson(node);
  if (type === 'wireguard') return Object.freeze({ type, wireguard: decodeWireguard(node), raw });
  return Object.freeze(type === 'vxlan' ? { type, vxlan: decodeVxlan(node), raw } : { type, raw });
}

/** Decode a Backend given as JSON text (undefined: no Backend). Throws ConfigError. */
export function decodeBackend(text: string | undefined): BackendConfig {
  if (text === undefined) return decodeBackendNode(undefined);
  const doc = parseJson(text, CONFIG_LIMITS);
  if (!doc.ok) throw new ConfigError(`error decoding Backend property of config: ${doc.reason}`, 'Backend');
  return decodeBackendNode(doc.value);
}

/** Decode `<prefix>/config` text as flanneld does. Throws ConfigError. Never applies defaults. */
export function decodeNetworkConfig(text: string): RawNetworkConfig {
  const doc = parseJson(text, CONFIG_LIMITS);
  if (!doc.ok) throw new ConfigError(`the network config is unreadable: ${doc.reason}`);
  const r = decodeStruct(doc.value, 'subnet.Config', CONFIG);
  if (!r.ok) throw new ConfigError(r.reason, r.field);
  const v = r.value;
  const nonZero = (a: IP | null | undefined): IP | undefined => (a && a.value !== 0n ? a : undefined);
  const opt = <K extends keyof RawNetworkConfig>(k: K, x: RawNetworkConfig[K] | undefined): Partial<RawNetworkConfig> => (x === undefined ? {} : { [k]: x });
  return Object.freeze({
    subnetLen: Number(v.SubnetLen ?? 0n),
    enableIPv4: v.EnableIPv4 ?? true,
    enableIPv6: v.EnableIPv6 ?? false,
    ipv6SubnetLen: Number(v.IPv6SubnetLen ?? 0n),
    enableNFTables: v.EnableNFTables ?? false,
    backend: decodeBackendNode(v.Backend),
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

/**
 * A Backend object as weft writes it: `{"Type":"vxlan","VNI":1,"Port":8472}`, `{"Type":"host-gw"}`
 * or `{"Type":"wireguard","ListenPort":51820,...}` (the wireguard options given, flanneld's keys).
 */
export function backendJson(type: 'vxlan' | 'host-gw' | 'wireguard', vxlan?: { vni: number; port: number; directRouting: boolean; mtu?: number }, wireguard?: Record<string, unknown>): Record<string, unknown> {
  if (type === 'wireguard') return { Type: 'wireguard', ...wireguard };
  if (type === 'host-gw' || !vxlan) return { Type: type };
  return { Type: 'vxlan', VNI: vxlan.vni, Port: vxlan.port, ...(vxlan.mtu !== undefined ? { MTU: vxlan.mtu } : {}), ...(vxlan.directRouting ? { DirectRouting: true } : {}) };
}
