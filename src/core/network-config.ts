/**
 * flannel's network config JSON (`<prefix>/config`), decoded the way flanneld decodes it
 * (flannel-compat.md §2.1): keys matched case-insensitively, the last duplicate wins, unknown
 * keys ignored, `Network` masked, `0.0.0.0` / `::` meaning "unset", an absent `Backend`
 * meaning `udp`. Decoding never applies defaults; `checkNetworkConfig` (config-check.ts) does
 * that, into a new frozen value.
 */
import { type IP, type Prefix, formatIP, formatPrefix, maskPrefix, parseIP, parseIPv4, parsePrefix } from './cidr.js';
import { WeftError } from './errors.js';

/** Options of the vxlan backend (§3.1). Zero means "unset" where flannel says so. */
export interface VxlanOptions {
  readonly vni: number;
  readonly port: number;
  readonly mtu: number;
  readonly gbp: boolean;
  readonly learning: boolean;
  readonly directRouting: boolean;
}

/** `Backend`: its lower-cased type, the vxlan options when the type is vxlan, and the raw JSON. */
export interface BackendConfig {
  readonly type: string;
  readonly vxlan?: VxlanOptions;
  readonly raw: unknown;
}

/** The config as written in etcd, nothing defaulted (0 / undefined = unset). */
export interface RawNetworkConfig {
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

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value of `key` matched case-insensitively; the last match wins, as in Go. */
function field(obj: Record<string, Json>, key: string): Json | undefined {
  const want = key.toLowerCase();
  let found: Json | undefined;
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === want) found = v;
  return found;
}

function uint(v: Json | undefined, name: string): number {
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new ConfigError(`json: cannot unmarshal ${JSON.stringify(v)} into Go struct field Config.${name} of type uint`, name);
  }
  return v;
}

function bool(v: Json | undefined, name: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new ConfigError(`json: cannot unmarshal ${JSON.stringify(v)} into Go struct field Config.${name} of type bool`, name);
  return v;
}

function ipv4(v: Json | undefined, name: string): IP | undefined {
  if (v === undefined) return undefined;
  const parsed = typeof v === 'string' ? parseIPv4(v) : undefined;
  if (!parsed) throw new ConfigError(`invalid IPv4 address in ${name}: ${JSON.stringify(v)}`, name);
  return parsed.value === 0n ? undefined : parsed;
}

function ipv6(v: Json | undefined, name: string): IP | undefined {
  if (v === undefined) return undefined;
  const parsed = typeof v === 'string' ? parseIP(v) : undefined;
  if (!parsed) throw new ConfigError(`invalid IP address in ${name}: ${JSON.stringify(v)}`, name);
  return parsed.value === 0n ? undefined : parsed;
}

function cidr(v: Json | undefined, name: string, family: 4 | undefined): Prefix | undefined {
  if (v === undefined) return undefined;
  const parsed = typeof v === 'string' ? parsePrefix(v) : undefined;
  if (!parsed || (family === 4 && parsed.ip.family !== 4)) throw new ConfigError(`invalid IPv4 CIDR format in ${name}: ${JSON.stringify(v)}`, name);
  return maskPrefix(parsed);
}

function decodeVxlan(obj: Record<string, Json>): VxlanOptions {
  const num = (k: string): number => {
    const v = field(obj, k);
    if (v === undefined) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new ConfigError(`error decoding VXLAN backend config: ${k} must be an integer`, 'Backend');
    return v;
  };
  const flag = (k: string): boolean => {
    const v = field(obj, k);
    if (v === undefined) return false;
    if (typeof v !== 'boolean') throw new ConfigError(`error decoding VXLAN backend config: ${k} must be a boolean`, 'Backend');
    return v;
  };
  const vni = field(obj, 'VNI') === undefined ? 1 : num('VNI');
  return Object.freeze({ vni, port: num('Port'), mtu: num('MTU'), gbp: flag('GBP'), learning: flag('Learning'), directRouting: flag('DirectRouting') });
}

export function decodeBackend(v: Json | undefined): BackendConfig {
  if (v === undefined) return Object.freeze({ type: 'udp', raw: undefined });
  if (v === null) return Object.freeze({ type: '', raw: null });
  if (!isObject(v)) throw new ConfigError(`error decoding Backend property of config: not a JSON object: ${JSON.stringify(v)}`, 'Backend');
  const t = field(v, 'Type');
  const type = typeof t === 'string' ? t.toLowerCase() : '';
  return Object.freeze(type === 'vxlan' ? { type, vxlan: decodeVxlan(v), raw: v } : { type, raw: v });
}

/** Decode `<prefix>/config` text as flanneld does. Throws ConfigError. Never applies defaults. */
export function decodeNetworkConfig(text: string): RawNetworkConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`invalid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isObject(doc)) throw new ConfigError('the network config must be a JSON object');
  const g = (k: string): Json | undefined => field(doc, k);
  const out: RawNetworkConfig = {
    subnetLen: uint(g('SubnetLen'), 'SubnetLen'),
    enableIPv4: bool(g('EnableIPv4'), 'EnableIPv4', true),
    enableIPv6: bool(g('EnableIPv6'), 'EnableIPv6', false),
    ipv6SubnetLen: uint(g('IPv6SubnetLen'), 'IPv6SubnetLen'),
    enableNFTables: bool(g('EnableNFTables'), 'EnableNFTables', false),
    backend: decodeBackend(g('Backend')),
  };
  const opt = <K extends keyof RawNetworkConfig>(k: K, v: RawNetworkConfig[K] | undefined): Partial<RawNetworkConfig> => (v === undefined ? {} : { [k]: v });
  return Object.freeze({
    ...out,
    ...opt('network', cidr(g('Network'), 'Network', 4)),
    ...opt('subnetMin', ipv4(g('SubnetMin'), 'SubnetMin')),
    ...opt('subnetMax', ipv4(g('SubnetMax'), 'SubnetMax')),
    ...opt('ipv6Network', cidr(g('IPv6Network'), 'IPv6Network', undefined)),
    ...opt('ipv6SubnetMin', ipv6(g('IPv6SubnetMin'), 'IPv6SubnetMin')),
    ...opt('ipv6SubnetMax', ipv6(g('IPv6SubnetMax'), 'IPv6SubnetMax')),
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
  if (c.backend.raw !== undefined) o.Backend = c.backend.raw;
  return JSON.stringify(o);
}

/** A Backend object as weft writes it: `{"Type":"vxlan","VNI":1,"Port":8472}` or `{"Type":"host-gw"}`. */
export function backendJson(type: 'vxlan' | 'host-gw', vxlan?: { vni: number; port: number; directRouting: boolean }): Record<string, unknown> {
  if (type === 'host-gw' || !vxlan) return { Type: type };
  return { Type: 'vxlan', VNI: vxlan.vni, Port: vxlan.port, ...(vxlan.directRouting ? { DirectRouting: true } : {}) };
}
