/**
 * wireguard's options, read as flanneld reads them (wireguard.go RegisterNetwork's config
 * struct, flannel-ipv6-wireguard.md §2.1), written from the spec's keys and compared for live
 * changes (the PSK by its key, shown only as set). Pure.
 */
import type { BackendOptions, BackendSetting } from '../core/flannel/backend-codec.js';
import { type JsonNode, decodeStruct } from '../core/flannel/gojson.js';
import { type BackendConfig, ConfigError } from '../core/flannel/network-config.js';
import { canonicalKey } from '../core/flannel/wg-key.js';
import type { Entry, YamlReader } from '../core/spec/yaml-reader.js';

export const WIREGUARD = 'wireguard';

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

const DEFAULT_OPTIONS: WireguardOptions = Object.freeze({
  listenPort: 51820,
  listenPortV6: 51821,
  mtu: 0,
  keepaliveSeconds: 0,
  mode: 'separate',
});

/** A wireguard config's options (the defaults for a config of another backend). */
export const wireguardOptions = (c: { readonly backend: BackendConfig }): WireguardOptions =>
  optionsOf(c.backend.type === WIREGUARD ? c.backend.options : undefined);

const optionsOf = (o: BackendOptions | undefined): WireguardOptions =>
  (o as WireguardOptions | undefined) ?? DEFAULT_OPTIONS;

/** wireguard.go RegisterNetwork's config struct: keys matched as Go matches them, values case-sensitive. */
const WIREGUARD_CONFIG = {
  ListenPort: { kind: 'int' },
  ListenPortV6: { kind: 'int' },
  MTU: { kind: 'int' },
  PSK: { kind: 'string' },
  PersistentKeepaliveInterval: { kind: 'int' },
  Mode: { kind: 'string' },
} as const;

const WG_MODES: readonly string[] = ['separate', 'auto', 'ipv4', 'ipv6'];

const shortMode = (m: string): string => (m.length > 32 ? `${m.slice(0, 32)}…` : m);

/**
 * Decode wireguard options as flanneld does, refusing what flanneld would accept but cannot
 * work (a port outside 1..65535 is truncated to uint16 in its lease; a keepalive over 65535 s
 * is refused by the kernel), and mode `ipv6`, which needs the IPv6 fabric weft does not
 * program yet (flanneld panics on it with a v4-only config, §2.9).
 */
export function decodeWireguardOptions(node: JsonNode): WireguardOptions {
  const r = decodeStruct(node, 'wireguard config', WIREGUARD_CONFIG);
  if (!r.ok) throw new ConfigError(`error decoding backend config: ${r.reason}`, 'Backend');
  const v = r.value;
  const ranged = (n: bigint | undefined, name: string, min: bigint, max: bigint, dflt: number): number => {
    if (n === undefined) return dflt;
    if (n < min || n > max)
      throw new ConfigError(
        `error decoding backend config: Backend.${name} ${n} is outside ${min}..${max}`,
        `Backend.${name}`,
      );
    return Number(n);
  };
  const mode = v.Mode ?? 'separate';
  if (!WG_MODES.includes(mode))
    throw new ConfigError(
      `no valid Mode configured: Backend.Mode ${JSON.stringify(shortMode(mode))} is not separate, auto, ipv4 or ipv6`,
      'Backend.Mode',
    );
  if (mode === 'ipv6')
    throw new ConfigError(
      'Backend.Mode "ipv6" needs an IPv6 fabric, which weft does not program yet; use separate, auto or ipv4',
      'Backend.Mode',
    );
  const pskText = (v.PSK ?? '').replace(/[\r\n]/g, '');
  // Read as flanneld's wgtypes.ParseKey reads it (CR, LF and the padding bits ignored), kept in
  // the spelling wg accepts. The value itself is never echoed (it is a secret).
  const psk = canonicalKey(pskText);
  if (pskText !== '' && psk === undefined)
    throw new ConfigError('could not parse psk: Backend.PSK is not the base64 of 32 bytes (wg genpsk)', 'Backend.PSK');
  return Object.freeze({
    listenPort: ranged(v.ListenPort, 'ListenPort', 1n, 65535n, 51820),
    listenPortV6: ranged(v.ListenPortV6, 'ListenPortV6', 1n, 65535n, 51821),
    mtu: ranged(v.MTU, 'MTU', 0n, 65535n, 0),
    keepaliveSeconds: ranged(v.PersistentKeepaliveInterval, 'PersistentKeepaliveInterval', 0n, 65535n, 0),
    mode: mode as WireguardMode,
    ...(psk !== undefined ? { psk } : {}),
  });
}

/** What the diff shows for a PSK: that it is set, never the key. */
const PSK_SET = '(set)';
/** What the diff shows for a PSK replaced by another: that it changed, never either key. */
const PSK_REPLACED = '(set: a different key)';

/** What a live change compares: the ports and mode, MTU and keepalive when set, the PSK by its key (shown as set). */
export function wireguardSettings(o: BackendOptions | undefined): BackendSetting[] {
  const w = optionsOf(o);
  return [
    { name: 'Backend.ListenPort', value: String(w.listenPort) },
    { name: 'Backend.ListenPortV6', value: String(w.listenPortV6) },
    { name: 'Backend.Mode', value: w.mode },
    ...(w.mtu ? [{ name: 'Backend.MTU', value: String(w.mtu) }] : []),
    ...(w.keepaliveSeconds ? [{ name: 'Backend.PersistentKeepaliveInterval', value: String(w.keepaliveSeconds) }] : []),
    ...(w.psk ? [{ name: 'Backend.PSK', value: PSK_SET, secret: { compared: w.psk, replaced: PSK_REPLACED } }] : []),
  ];
}

/** The spec keys under `network.backend` wireguard reads. */
export const WIREGUARD_SPEC_KEYS = ['listenPort', 'listenPortV6', 'persistentKeepalive', 'mode', 'mtu'];

/** The spec's keys as the Backend object weft stores, under flanneld's names (ListenPort, ListenPortV6, PersistentKeepaliveInterval, Mode, MTU), given ones only. */
export function wireguardBackendObject(r: YamlReader, m: ReadonlyMap<string, Entry>): Record<string, unknown> {
  const out: Record<string, unknown> = { Type: WIREGUARD };
  const listenPort = r.integer(m.get('listenPort'), 1, 65535);
  const listenPortV6 = r.integer(m.get('listenPortV6'), 1, 65535);
  const keepalive = r.integer(m.get('persistentKeepalive'), 0, 65535);
  const mtu = r.integer(m.get('mtu'), 1360, 65535);
  const modeEntry = m.get('mode');
  const mode = modeEntry ? r.string(modeEntry) : undefined;
  if (mode !== undefined && modeEntry && !WG_MODES.includes(mode))
    r.problem(
      modeEntry.path,
      `${modeEntry.path} must be separate, auto, ipv4 or ipv6, got ${JSON.stringify(mode)}`,
      r.at(modeEntry),
    );
  else if (mode === 'ipv6' && modeEntry)
    r.problem(
      modeEntry.path,
      `${modeEntry.path} ipv6 needs an IPv6 fabric, which weft does not program yet; use separate, auto or ipv4`,
      r.at(modeEntry),
    );
  if (listenPort !== undefined) out.ListenPort = listenPort;
  if (listenPortV6 !== undefined) out.ListenPortV6 = listenPortV6;
  if (keepalive !== undefined) out.PersistentKeepaliveInterval = keepalive;
  if (mode !== undefined) out.Mode = mode;
  if (mtu !== undefined) out.MTU = mtu;
  return out;
}
