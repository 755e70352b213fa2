/**
 * The vxlan device kind: its values, parser, compatibility, add line, fixes in place and doctor check.
 * vxlan over either family: `flannel.<VNI>` with an IPv4 `local`, `flannel-v6.<VNI>` with an
 * IPv6 one (the kernel then tunnels over IPv6; a device whose `local` changed family is
 * recreated, as one whose address changed). The MTU is the backend's: over IPv6 the kernel
 * clamps a new device to the underlay's MTU − 70 and refuses a larger `mtu` on an existing one.
 * A kept device's MAC is set in place (down, address, up): peers know this host by it.
 */
import { type IP, type Prefix, formatIP, formatPrefix, parseIP, sameIP } from '../net/cidr.js';
import { safeText } from '../base/escape.js';
import type { ObservedDevice, ObservedDeviceBase } from './datapath.js';
import {
  type DeviceFinding,
  type DeviceKind,
  type LinkReport,
  DEVICE_FIX,
  commonFields,
  deviceFinding,
  jsonBoolean,
  jsonNumber,
  jsonString,
  linkKindOf,
  stateAndMTU,
} from './device-kind.js';

/** A vxlan device as weft wants it (flannel-compat.md §3.2). */
export interface VxlanDevice {
  readonly kind: 'vxlan';
  readonly name: string;
  readonly vni: number;
  readonly local: IP;
  /** The underlay interface name. */
  readonly underlay: string;
  readonly port: number;
  readonly learning: boolean;
  readonly gbp: boolean;
  readonly mtu: number;
  readonly mac: string;
  /** Its addresses: the own subnet's network address, /32 (flannel's convention); /128 for IPv6. */
  readonly addresses: readonly Prefix[];
}

/**
 * A vxlan device and its parameters as iproute2 prints them (parseVxlan reads them); a parameter
 * iproute2 did not print is absent, and the device then is not compatible.
 */
export interface ObservedVxlan extends ObservedDeviceBase {
  readonly kind: 'vxlan';
  readonly mac: string;
  readonly vni?: number;
  /** vxlan's source address as iproute2 prints it (`local`, or `local6` over IPv6). */
  readonly local?: string;
  /** The underlay interface (`link`). */
  readonly underlay?: string;
  readonly port?: number;
  readonly learning?: boolean;
  readonly gbp?: boolean;
}

/** The observed `local` (iproute2's text, `local` or `local6`) is this address, compared as addresses. */
const sameLocal = (observed: string | undefined, want: IP): boolean => {
  const o = observed === undefined ? undefined : parseIP(observed);
  return o !== undefined && sameIP(o, want);
};

/** `ip -d -json` of a vxlan link: its parameters from `info_data` (over IPv6 the source address is `local6`). */
export function parseVxlan(l: LinkReport): ObservedVxlan {
  const d = l.data;
  const vni = jsonNumber(d.id);
  const local = jsonString(d.local) ?? jsonString(d.local6);
  const underlay = jsonString(d.link);
  const port = jsonNumber(d.port);
  const learning = jsonBoolean(d.learning);
  return {
    ...commonFields(l),
    kind: 'vxlan',
    mac: l.mac,
    ...(vni !== undefined ? { vni } : {}),
    ...(local ? { local } : {}),
    ...(underlay ? { underlay } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(learning !== undefined ? { learning } : {}),
    gbp: jsonBoolean(d.gbp) ?? false,
  };
}

/** This host's VTEP MAC as a vxlan device already carries it (a restart keeps it), if `o` is one. */
export const vtepMACOf = (o: ObservedDevice | undefined): string | undefined =>
  o?.kind === 'vxlan' && o.mac ? o.mac : undefined;

/** The doctor: present, up, the lease's MAC, the MTU, the network's port, its addresses. */
function check(want: VxlanDevice, seen: ObservedDevice | undefined): DeviceFinding {
  if (seen?.kind !== 'vxlan') {
    const holder = seen ? ` (a ${safeText(linkKindOf(seen) || 'non-vxlan')} device has its name)` : '';
    return deviceFinding('fail', `the vxlan device ${want.name} is missing${holder}`, DEVICE_FIX);
  }
  const problems: string[] = [];
  if (!seen.up) problems.push('it is down');
  if (seen.mac !== want.mac) problems.push(`its MAC ${safeText(seen.mac)} is not the lease's VtepMAC ${want.mac}`);
  if (seen.mtu !== want.mtu) problems.push(`its MTU is ${String(seen.mtu)}, weft wants ${String(want.mtu)}`);
  if (seen.port !== undefined && seen.port !== want.port) {
    problems.push(`its UDP port is ${String(seen.port)}, the network's is ${String(want.port)}`);
  }
  for (const address of want.addresses) {
    const text = formatPrefix(address);
    if (!seen.addrs.some((a) => formatPrefix(a) === text)) problems.push(`it does not hold ${text}`);
  }
  if (problems.length > 0) return deviceFinding('fail', `${want.name}: ${problems.join('; ')}`, DEVICE_FIX);
  const holds = want.addresses.map(formatPrefix).join(', ');
  const [vni, port, mtu] = [String(want.vni), String(want.port), String(want.mtu)];
  return deviceFinding('ok', `${want.name} is up, VNI ${vni}, UDP ${port}, MTU ${mtu}, holds ${holds}`);
}

const addLine = (d: VxlanDevice): string =>
  `link add ${d.name} address ${d.mac} mtu ${d.mtu} type vxlan id ${d.vni} local ${formatIP(d.local)} ` +
  `dev ${d.underlay} dstport ${d.port} ${d.learning ? 'learning' : 'nolearning'}${d.gbp ? ' gbp' : ''}`;

export const vxlanKind: DeviceKind<VxlanDevice, ObservedVxlan> = {
  compatible: (o, d): o is ObservedVxlan =>
    o.kind === 'vxlan' &&
    o.vni === d.vni &&
    sameLocal(o.local, d.local) &&
    o.underlay === d.underlay &&
    o.port === d.port &&
    (o.learning ?? false) === d.learning &&
    (o.gbp ?? false) === d.gbp,
  addLine,
  addTool: 'ip',
  fixInPlace: (o, d) => stateAndMTU(o, d, o.mac !== d.mac ? ['down', `address ${d.mac}`, 'up'] : undefined),
  check,
};
