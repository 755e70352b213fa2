/**
 * What the planner needs to know about each kind of device weft owns: whether an observed
 * device can be kept (same kind and parameters; otherwise it is deleted and created again)
 * and the operation lines that create one. The planner handles everything common (MTU, MAC,
 * up, addresses, what hangs off the device) the same way for every kind.
 *
 * Adding a kind (WireGuard): a member of DesiredDevice in datapath.ts and an entry here; its
 * configuration beyond the link (keys, peers, listen port) is its own operation kind, rendered
 * for its own tool (`wg set` / `wg syncconf`), planned from its own observation.
 */
import { type IP, formatIP, parseIP, sameIP } from '../net/cidr.js';
import type { DesiredDevice, ObservedDevice } from './datapath.js';

/**
 * The programs that apply operations in batches (adapters/iproute2.ts applies ip and bridge;
 * adapters/wireguard.ts applies `wireguard` lines: `add DEV mtu N` creates a kernel or
 * userspace device, `set DEV ...` is `wg set DEV ...`).
 */
export type Tool = 'ip' | 'bridge' | 'wireguard';

export interface DeviceKind<D extends DesiredDevice> {
  /** The observed device is this kind with these parameters (MTU, MAC and state are fixed in place). */
  compatible(o: ObservedDevice, d: D): boolean;
  /** `ip` lines that create the device (down, without addresses: the planner adds those). */
  addLine(d: D): string;
  /** The tool that applies addLine (default `ip`). */
  readonly addTool?: Tool;
}

/** The observed `local` (iproute2's text, `local` or `local6`) is this address, compared as addresses. */
const sameLocal = (observed: string | undefined, want: IP): boolean => {
  const o = observed === undefined ? undefined : parseIP(observed);
  return o !== undefined && sameIP(o, want);
};

/**
 * vxlan over either family: `flannel.<VNI>` with an IPv4 `local`, `flannel-v6.<VNI>` with an
 * IPv6 one (the kernel then tunnels over IPv6; a device whose `local` changed family is
 * recreated, as one whose address changed). The MTU is the backend's: over IPv6 the kernel
 * clamps a new device to the underlay's MTU − 70 and refuses a larger `mtu` on an existing one.
 */
const vxlanKind: DeviceKind<Extract<DesiredDevice, { kind: 'vxlan' }>> = {
  compatible: (o, d) => o.kind === 'vxlan' && o.vni === d.vni && sameLocal(o.local, d.local) && o.underlay === d.underlay
    && o.port === d.port && (o.learning ?? false) === d.learning && (o.gbp ?? false) === d.gbp,
  addLine: (d) => `link add ${d.name} address ${d.mac} mtu ${d.mtu} type vxlan id ${d.vni} local ${formatIP(d.local)} dev ${d.underlay} dstport ${d.port} ${d.learning ? 'learning' : 'nolearning'}${d.gbp ? ' gbp' : ''}`,
};

/**
 * WireGuard: a kernel `wireguard` link, or a `tun` that wireguard-go serves (its configuration
 * then readable through `wg`, which is how the adapter tells it from someone else's tun).
 */
const wireguardKind: DeviceKind<Extract<DesiredDevice, { kind: 'wireguard' }>> = {
  compatible: (o) => o.kind === 'wireguard' || (o.kind === 'tun' && o.wireguard !== undefined),
  addLine: (d) => `add ${d.name} mtu ${d.mtu}`,
  addTool: 'wireguard',
};

/** Every device kind; a const map, the only registry (as backends/index.ts is for backends). */
export const DEVICE_KINDS: { readonly [K in DesiredDevice['kind']]: DeviceKind<Extract<DesiredDevice, { kind: K }>> } = { vxlan: vxlanKind, wireguard: wireguardKind };

export const deviceCompatible = (o: ObservedDevice, d: DesiredDevice): boolean => (d.kind === 'vxlan' ? vxlanKind.compatible(o, d) : wireguardKind.compatible(o, d));
export const deviceAddLine = (d: DesiredDevice): string => (d.kind === 'vxlan' ? vxlanKind.addLine(d) : wireguardKind.addLine(d));
export const deviceAddTool = (d: DesiredDevice): Tool => DEVICE_KINDS[d.kind].addTool ?? 'ip';
