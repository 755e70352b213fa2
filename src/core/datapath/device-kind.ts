/**
 * What a device kind supplies, and the helpers its module shares with the others. One module
 * per kind (device-vxlan.ts, device-wireguard.ts); devices.ts is the registry that the rest of
 * weft calls. The planner and the doctor handle
 * what every kind shares (addresses, what hangs off the device) the same way for all.
 */
import type { Prefix } from '../net/cidr.js';
import type { DesiredDevice, ObservedDevice } from './datapath.js';
import type { WireguardOp } from './wireguard-plan.js';

/**
 * The programs that apply operations in batches (adapters/iproute2.ts applies ip and bridge;
 * adapters/wireguard.ts applies `wireguard` lines: `add DEV mtu N` creates a kernel or
 * userspace device, `set DEV ...` is `wg set DEV ...`).
 */
export type Tool = 'ip' | 'bridge' | 'wireguard';

/** One `ip link set dev D ...` setting: how a kept device is fixed in place. */
export type LinkSetting = 'up' | 'down' | `mtu ${number}` | `address ${string}`;

/** An operation that configures a device beyond its link (right after it, before routes into it). */
export type DeviceConfigOp = WireguardOp;

/**
 * One device as `ip -d -json addr show dev X` reports it, the JSON read by the adapter
 * (adapters/iproute2.ts); its kind's parser reads `data` (`linkinfo.info_data`, untrusted JSON).
 */
export interface LinkReport {
  readonly name: string;
  /** The kernel's name of its kind (`linkinfo.info_kind`; '' when none). */
  readonly linkKind: string;
  readonly mtu: number;
  /** The link-layer address, normalised ('' when it has none). */
  readonly mac: string;
  readonly up: boolean;
  readonly addrs: readonly Prefix[];
  readonly data: Readonly<Record<string, unknown>>;
}

/**
 * A finding of `weft doctor` about a device or its peers: the shape of core/doctor's Finding
 * (doctor is below datapath in core's layers, so it wraps these; it never judges a kind itself).
 */
export interface DeviceFinding {
  readonly check: string;
  readonly verdict: 'ok' | 'warn' | 'fail';
  /** The peer subnet a per-peer finding is about; null for the device's own finding. */
  readonly peer: string | null;
  readonly what: string;
  readonly fix: string;
}

/**
 * A kind of device weft owns. `O`: the observed devices this kind can keep (what `compatible`
 * proves), so that fixing one in place sees that kind's fields.
 */
export interface DeviceKind<D extends DesiredDevice, O extends ObservedDevice = ObservedDevice> {
  /** The observed device is this kind with these parameters (else it is deleted and created again). */
  compatible(o: ObservedDevice, d: D): o is O;
  /** The line that creates the device (down, without addresses: the planner adds those). */
  addLine(d: D): string;
  /** The tool that applies addLine. */
  readonly addTool: Tool;
  /**
   * The link settings, in order, that bring a compatible device to `d` in place (state, MAC,
   * MTU; none when it is right). Addresses are every kind's and the planner's.
   */
  fixInPlace(o: O, d: D): LinkSetting[];
  /** Its configuration beyond the link; `kept`: the device as observed, undefined when created this pass. */
  configure?(d: D, kept: O | undefined): DeviceConfigOp[];
  /** `weft doctor`'s check of the device against `d`: present, of this kind, as the lease says. */
  check(d: D, seen: ObservedDevice | undefined): DeviceFinding;
  /**
   * `weft doctor`'s check of each peer on the device itself (a kind with no route per peer:
   * the per-peer probes through routes do not apply to it).
   */
  checkPeers?(d: D, seen: ObservedDevice | undefined): DeviceFinding[];
}

/** The fix for a device the doctor finds wrong. */
export const DEVICE_FIX = 'restart weft: it recreates the device with all peers within 2 s';

/** The doctor's finding about a device. */
export const deviceFinding = (verdict: DeviceFinding['verdict'], what: string, fix = ''): DeviceFinding => ({
  check: 'device',
  verdict,
  peer: null,
  what,
  fix,
});

/** State (up, unless `state` says how), then MTU: what every kind fixes in place. */
export function stateAndMTU(o: ObservedDevice, d: DesiredDevice, state?: LinkSetting[]): LinkSetting[] {
  const up = state ?? (o.up ? [] : ['up']);
  return o.mtu === d.mtu ? up : [...up, `mtu ${d.mtu}`];
}

/** The kernel's name of an observed device's kind (for messages). */
export const linkKindOf = (o: ObservedDevice): string => (o.kind === 'other' ? o.linkKind : o.kind);

/** A field of untrusted JSON, if it has the type the caller reads. */
export const jsonNumber = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
export const jsonString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
export const jsonBoolean = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);

/** The fields every kind reads from a report. */
export const commonFields = (l: LinkReport): { name: string; mtu: number; up: boolean; addrs: readonly Prefix[] } => ({
  name: l.name,
  mtu: l.mtu,
  up: l.up,
  addrs: l.addrs,
});
