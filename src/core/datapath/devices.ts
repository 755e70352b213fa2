/**
 * The registry of device kinds: the only place a device's kind is looked up. Everything else
 * (the planner, the doctor, the adapters, the agent) calls the functions below and never
 * branches on `kind`. Each kind is one module (device-vxlan.ts, device-wireguard.ts) that
 * supplies what device-kind.ts's DeviceKind asks for: whether an observed device can be kept,
 * the line that creates one, what is fixed in place, its configuration beyond the link, the
 * doctor's checks; and the parser of each kernel link kind it shows as.
 *
 * Adding a kind: its module (its desired and observed values, its parser, its DeviceKind), its
 * members of the DesiredDevice and ObservedDevice unions (datapath.ts), and its entries in
 * DEVICE_KINDS and OBSERVED_KINDS below (both maps are typed over the unions, so the compiler
 * points at a kind left out). docs/architecture.md, "Adding a device kind".
 */
import type { DesiredDevice, ObservedDevice, ObservedOtherDevice } from './datapath.js';
import {
  type DeviceConfigOp,
  type DeviceFinding,
  type DeviceKind,
  type LinkReport,
  type LinkSetting,
  type Tool,
  commonFields,
} from './device-kind.js';
import { parseVxlan, vxlanKind } from './device-vxlan.js';
import { parseTun, parseWireguardLink, wireguardKind } from './device-wireguard.js';

export type { DeviceFinding, LinkReport, LinkSetting, Tool } from './device-kind.js';
export { vtepMACOf } from './device-vxlan.js';
export { wireguardImplementationOf, wireguardOf, withWireguard } from './device-wireguard.js';

type DesiredOf<K extends DesiredDevice['kind']> = Extract<DesiredDevice, { readonly kind: K }>;
type ObservedOf<K extends ObservedDevice['kind']> = Extract<ObservedDevice, { readonly kind: K }>;

/** Every kind of device weft owns, by DesiredDevice kind (a const map, as backends/index.ts is for backends). */
export const DEVICE_KINDS: { readonly [K in DesiredDevice['kind']]: DeviceKind<DesiredOf<K>> } = {
  vxlan: vxlanKind,
  wireguard: wireguardKind,
};

/** The parser of each kernel link kind weft deals with; any other kind reads as `other` (never compatible). */
type KernelKind = Exclude<ObservedDevice['kind'], 'other'>;
export const OBSERVED_KINDS: { readonly [K in KernelKind]: (l: LinkReport) => ObservedOf<K> } = {
  vxlan: parseVxlan,
  wireguard: parseWireguardLink,
  tun: parseTun,
};

const parsers = new Map<string, (l: LinkReport) => ObservedDevice>(Object.entries(OBSERVED_KINDS));
const parseOther = (l: LinkReport): ObservedOtherDevice => ({
  ...commonFields(l),
  kind: 'other',
  linkKind: l.linkKind,
});

/** A device as `ip -d -json` reported it, read by the parser of its kind. */
export const observedDevice = (l: LinkReport): ObservedDevice => (parsers.get(l.linkKind) ?? parseOther)(l);

/**
 * The kind of `d`. DEVICE_KINDS is keyed by kind, so the entry found is `d`'s own kind: calling
 * it with `d` is sound though the compiler sees an entry of any kind (its methods take their
 * device bivariantly).
 */
const kindOf = (d: DesiredDevice): DeviceKind<DesiredDevice> => DEVICE_KINDS[d.kind];

export const deviceCompatible = (o: ObservedDevice, d: DesiredDevice): boolean => kindOf(d).compatible(o, d);
export const deviceAddLine = (d: DesiredDevice): string => kindOf(d).addLine(d);
export const deviceAddTool = (d: DesiredDevice): Tool => kindOf(d).addTool;

/**
 * How an observed device becomes `d`: undefined when it cannot be kept (it is deleted and
 * created again), else the link settings fixed in place (none when it is right).
 */
export function deviceFixes(o: ObservedDevice, d: DesiredDevice): LinkSetting[] | undefined {
  const k = kindOf(d);
  return k.compatible(o, d) ? k.fixInPlace(o, d) : undefined;
}

/** The device's configuration beyond its link; `kept` undefined for a device created this pass. */
export function deviceConfigOps(d: DesiredDevice, kept: ObservedDevice | undefined): DeviceConfigOp[] {
  const k = kindOf(d);
  return k.configure?.(d, kept && k.compatible(kept, d) ? kept : undefined) ?? [];
}

/** `weft doctor`'s finding about device `d`, seen as `seen` (undefined: absent). */
export const deviceCheck = (d: DesiredDevice, seen: ObservedDevice | undefined): DeviceFinding =>
  kindOf(d).check(d, seen);

/** Does `d`'s kind check its peers itself (it has no route per peer for the per-peer probes)? */
export const checksOwnPeers = (d: DesiredDevice): boolean => kindOf(d).checkPeers !== undefined;

/** `weft doctor`'s findings about each peer on `d` (none for a kind whose peers are probed through routes). */
export const devicePeerChecks = (d: DesiredDevice, seen: ObservedDevice | undefined): DeviceFinding[] =>
  kindOf(d).checkPeers?.(d, seen) ?? [];
