/**
 * Which `ip monitor label link address route neigh` lines concern weft. An event only says
 * "look again"; this filter keeps the underlay's ordinary churn (ARP on eth0, other devices)
 * from waking the reconciler. fdb changes arrive as [NEIGH] lines too.
 */
import { type Prefix, parsePrefix, parseIP, prefix, within } from './cidr.js';
import { WEFT_ROUTE_PROTO } from './datapath.js';

export interface EventScope {
  /** weft's devices, e.g. flannel.1 (none for host-gw). */
  readonly devices: readonly string[];
  /** The underlay interface. */
  readonly iface: string;
  readonly network: Prefix;
}

const mentionsDev = (line: string, dev: string): boolean =>
  line.includes(`dev ${dev} `) || line.endsWith(`dev ${dev}`) || line.includes(`: ${dev}: `) || line.includes(`: ${dev}@`) || line.includes(`: ${dev} `);

export function isRelevantEvent(line: string, s: EventScope): boolean {
  const m = /^\[(LINK|ADDR|ROUTE|NEIGH)\](?:Deleted )?(.*)$/.exec(line);
  if (!m) return false;
  const [, kind, rest = ''] = m;
  const onDevice = s.devices.some((d) => mentionsDev(rest, d));
  switch (kind) {
    case 'LINK': return onDevice || mentionsDev(rest, s.iface);
    case 'ADDR': return onDevice || mentionsDev(rest, s.iface);
    case 'NEIGH': return onDevice;
    default: {
      if (onDevice || rest.includes(` proto ${WEFT_ROUTE_PROTO} `) || rest.endsWith(` proto ${WEFT_ROUTE_PROTO}`)) return true;
      const first = rest.split(' ')[0] ?? '';
      const dst = first.includes('/') ? parsePrefix(first) : (() => { const a = parseIP(first); return a ? prefix(a, 32) : undefined; })();
      return dst !== undefined && within(dst, s.network);
    }
  }
}
