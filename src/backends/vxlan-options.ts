/**
 * vxlan's options, read as flanneld reads them (vxlan.go VXLANConfig, flannel-compat.md §3.1),
 * written from the spec's keys, compared for live changes and shown by `weft config show` and
 * `weft validate`. Pure.
 */
import type { BackendOptions, BackendSetting } from '../core/flannel/backend-codec.js';
import { type JsonNode, decodeStruct } from '../core/flannel/gojson.js';
import { type BackendConfig, ConfigError } from '../core/flannel/network-config.js';
import type { BackendView } from '../core/config/config-view.js';
import type { Entry, YamlReader } from '../core/spec/yaml-reader.js';

export const VXLAN = 'vxlan';

/** The UDP port when the config has none (Linux's IANA port is 4789; flannel's default is 8472). */
export const VXLAN_PORT = 8472;

/** Options of the vxlan backend (§3.1). Zero means "unset" where flannel says so. */
export interface VxlanOptions {
  readonly vni: number;
  readonly port: number;
  readonly mtu: number;
  readonly gbp: boolean;
  readonly learning: boolean;
  readonly directRouting: boolean;
}

const DEFAULT_OPTIONS: VxlanOptions = Object.freeze({
  vni: 1,
  port: 0,
  mtu: 0,
  gbp: false,
  learning: false,
  directRouting: false,
});

/** A vxlan config's options (the defaults for a config of another backend). */
export const vxlanOptions = (c: { readonly backend: BackendConfig }): VxlanOptions =>
  optionsOf(c.backend.type === VXLAN ? c.backend.options : undefined);

/** Options this backend decoded (opaque to core), or the defaults. */
export const optionsOf = (o: BackendOptions | undefined): VxlanOptions =>
  (o as VxlanOptions | undefined) ?? DEFAULT_OPTIONS;

/** vxlan.go VXLANConfig (Linux): every field a Go int or bool, matched by its json tag. */
const VXLAN_CONFIG = {
  vni: { kind: 'int' },
  port: { kind: 'int' },
  mtu: { kind: 'int' },
  gbp: { kind: 'bool' },
  learning: { kind: 'bool' },
  directRouting: { kind: 'bool' },
} as const;

/** weft refuses what the kernel cannot program (flanneld fails creating the device, or truncates the port). */
const VXLAN_RANGES = [
  ['vni', 'VNI', 0xffffff],
  ['port', 'Port', 0xffff],
] as const;

/** Decode the Backend object as vxlan's New() does. Throws ConfigError with flanneld's message. */
export function decodeVxlanOptions(node: JsonNode): VxlanOptions {
  const r = decodeStruct(node, 'vxlan.VXLANConfig', VXLAN_CONFIG);
  if (!r.ok) throw new ConfigError(`error decoding VXLAN backend config: ${r.reason}`, 'Backend');
  const v = r.value;
  for (const [tag, name, max] of VXLAN_RANGES) {
    const n = v[tag];
    if (n !== undefined && (n < 0n || n > BigInt(max))) {
      throw new ConfigError(
        `error decoding VXLAN backend config: Backend.${name} ${n} is outside 0..${max}`,
        `Backend.${name}`,
      );
    }
  }
  return Object.freeze({
    vni: Number(v.vni ?? 1n),
    port: Number(v.port ?? 0n),
    mtu: Number(v.mtu ?? 0n),
    gbp: v.gbp ?? false,
    learning: v.learning ?? false,
    directRouting: v.directRouting ?? false,
  });
}

/** What a live change compares (core/flannel/config-check.ts effectiveSettings): the port with its default, flags only when on. */
export function vxlanSettings(o: BackendOptions | undefined): BackendSetting[] {
  const v = optionsOf(o);
  const on = (name: string, b: boolean): BackendSetting[] => (b ? [{ name, value: 'true' }] : []);
  return [
    { name: 'Backend.VNI', value: String(v.vni) },
    { name: 'Backend.Port', value: String(v.port || VXLAN_PORT) },
    ...(v.mtu ? [{ name: 'Backend.MTU', value: String(v.mtu) }] : []),
    ...on('Backend.GBP', v.gbp),
    ...on('Backend.Learning', v.learning),
    ...on('Backend.DirectRouting', v.directRouting),
  ];
}

/** The spec keys under `network.backend` vxlan reads. */
export const VXLAN_SPEC_KEYS = ['vni', 'port', 'directRouting', 'mtu'];

/** The spec's keys as the Backend object weft stores: `{"Type":"vxlan","VNI":1,"Port":8472}`, MTU and DirectRouting when given. */
export function vxlanBackendObject(r: YamlReader, m: ReadonlyMap<string, Entry>): Record<string, unknown> {
  const vni = r.integer(m.get('vni'), 1, 16777215) ?? 1;
  const port = r.integer(m.get('port'), 1, 65535) ?? VXLAN_PORT;
  const directRouting = r.boolean(m.get('directRouting')) ?? false;
  const mtu = r.integer(m.get('mtu'), 626, 65535);
  return {
    Type: VXLAN,
    VNI: vni,
    Port: port,
    ...(mtu !== undefined ? { MTU: mtu } : {}),
    ...(directRouting ? { DirectRouting: true } : {}),
  };
}

/** `weft config show`'s Backend: the options with weft's defaults (VNI 1, port 8472); MTU null = each host's interface MTU. */
export function vxlanView(o: BackendOptions | undefined): BackendView {
  const v = optionsOf(o);
  return {
    Type: VXLAN,
    VNI: v.vni,
    Port: v.port || VXLAN_PORT,
    MTU: v.mtu || null,
    GBP: v.gbp,
    Learning: v.learning,
    DirectRouting: v.directRouting,
  };
}

const onOff = (b: boolean): string => (b ? 'on' : 'off');

/** `weft config show`'s summary of the options. */
export function vxlanSummary(o: BackendOptions | undefined): string {
  const v = optionsOf(o);
  return `vxlan: VNI ${v.vni}, port ${v.port || VXLAN_PORT}, MTU ${v.mtu ? v.mtu : "from each host's interface"}, GBP ${onOff(v.gbp)}, learning ${onOff(v.learning)}, directRouting ${onOff(v.directRouting)}`;
}

/** `weft validate`'s words for it: `vxlan (VNI 1, port 8472, directRouting)`. */
export function vxlanDescription(o: BackendOptions | undefined): string {
  const v = optionsOf(o);
  return `vxlan (VNI ${v.vni}, port ${v.port}${v.directRouting ? ', directRouting' : ''})`;
}
