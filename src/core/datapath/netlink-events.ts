/**
 * Which `ip -4 monitor label link address route neigh` and `ip -6 monitor label address route
 * neigh` lines concern weft. An event only says "look again"; this filter keeps the underlay's
 * ordinary churn (ARP and neighbour discovery on eth0, other devices) from waking the
 * reconciler. fdb changes arrive as [FDB] lines (`bridge monitor fdb`).
 */
import { type IP, type Prefix, bitsOf, parsePrefix, parseIP, prefix, within } from '../net/cidr.js';
import { type FdbEntry, type Neighbour, type ObservedRoute, WEFT_ROUTE_PROTO, modelledRouteDst } from './datapath.js';
import { normalizeEthernetMAC } from '../net/mac.js';

export interface EventScope {
  /** weft's devices, e.g. flannel.1 (none for host-gw). */
  readonly devices: readonly string[];
  /** The underlay interface. */
  readonly iface: string;
  /** The overlay networks (one per family served). */
  readonly networks: readonly Prefix[];
}

const mentionsDev = (line: string, dev: string): boolean =>
  line.includes(`dev ${dev} `) ||
  line.endsWith(`dev ${dev}`) ||
  line.includes(`: ${dev}: `) ||
  line.includes(`: ${dev}@`) ||
  line.includes(`: ${dev} `);

export function isRelevantEvent(line: string, s: EventScope): boolean {
  const m = /^\[(LINK|ADDR|ROUTE|NEIGH|FDB)\](?:Deleted )?(.*)$/.exec(line);
  if (!m) return false;
  const [, kind, rest = ''] = m;
  const onDevice = s.devices.some((d) => mentionsDev(rest, d));
  switch (kind) {
    case 'LINK':
      return onDevice || mentionsDev(rest, s.iface);
    case 'ADDR':
      return onDevice || mentionsDev(rest, s.iface);
    case 'NEIGH':
      return onDevice;
    case 'FDB':
      return onDevice;
    default: {
      if (onDevice || rest.includes(` proto ${WEFT_ROUTE_PROTO} `) || rest.endsWith(` proto ${WEFT_ROUTE_PROTO}`))
        return true;
      const dst = destination(rest.split(' ')[0] ?? '', undefined);
      return dst !== undefined && s.networks.some((n) => within(dst, n));
    }
  }
}

/**
 * A route line's destination: `a.b.c.d/n`, a bare address (a host route: /32 or /128), or
 * `default`, whose family the line does not name: `family` (6 when the line carries `pref`,
 * which the kernel sends with every IPv6 route and only those, else the gateway's), else 4.
 */
function destination(first: string, family: 4 | 6 | undefined): Prefix | undefined {
  if (first === 'default') return parsePrefix(family === 6 ? '::/0' : '0.0.0.0/0');
  if (first.includes('/')) return parsePrefix(first);
  const a = parseIP(first);
  return a ? prefix(a, bitsOf(a.family)) : undefined;
}

/**
 * What one event line says about an object the planner looks at, or undefined when it says
 * nothing weft can model (then the caller looks at the kernel afresh if the line is relevant).
 * Lines come from `ip -4 monitor label link address route neigh`, `ip -6 monitor label address
 * route neigh` and, prefixed `[FDB]`, from `bridge monitor fdb`. Main-table unicast routes of
 * either family (any owner: the underlay's decide host-gw adjacency; not IPv6 link-local ones,
 * as the observation), permanent neighbours and fdb entries on weft's devices; a neighbour or
 * fdb entry that turns non-permanent is, to the planner, gone (the observation keeps permanent
 * ones only).
 */
export type ModelEvent =
  | { readonly kind: 'route'; readonly deleted: boolean; readonly route: ObservedRoute }
  | { readonly kind: 'neigh'; readonly gone: boolean; readonly neigh: Neighbour }
  | { readonly kind: 'fdb'; readonly gone: boolean; readonly fdb: FdbEntry };

const ROUTE_TYPES = new Set([
  'local',
  'broadcast',
  'multicast',
  'unreachable',
  'prohibit',
  'blackhole',
  'throw',
  'anycast',
  'nat',
  'unicast',
]);
const ROUTE_VALUED = new Set([
  'via',
  'dev',
  'proto',
  'scope',
  'src',
  'metric',
  'table',
  'mtu',
  'expires',
  'pref',
  'realms',
  'advmss',
  'initcwnd',
  'initrwnd',
  'weight',
  'nhid',
  'tos',
  'dsfield',
  'from',
  'hoplimit',
  'rtt',
  'rttvar',
  'ssthresh',
  'cwnd',
  'window',
  'congctl',
  'features',
  'quickack',
  'fastopen_no_cookie',
  'encap',
  'ttl-propagate',
]);

const NEIGH_VALUED: ReadonlySet<string> = new Set(['dev', 'lladdr', 'used', 'probes', 'nomaster', 'vrf', 'protocol']);
const FDB_VALUED: ReadonlySet<string> = new Set([
  'dev',
  'dst',
  'master',
  'vlan',
  'port',
  'vni',
  'via',
  'src_vni',
  'nhid',
  'used',
  'updated',
]);

/** `word value` pairs and bare flags of a monitor line (after the object's first word). */
function fields(ws: readonly string[], valued: ReadonlySet<string>): { kv: Map<string, string>; flags: Set<string> } {
  const kv = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i] ?? '';
    if (valued.has(w)) {
      kv.set(w, ws[i + 1] ?? '');
      i++;
    } else if (w) flags.add(w);
  }
  return { kv, flags };
}

function parseRouteEvent(rest: string, deleted: boolean): ModelEvent | undefined {
  const ws = rest.trim().split(/\s+/);
  if (ROUTE_TYPES.has(ws[0] ?? ''))
    return ws[0] === 'unicast' ? parseRouteEvent(ws.slice(1).join(' '), deleted) : undefined;
  // `via inet6 X`: a gateway of the other family (an IPv4 route via an IPv6 next hop, RFC 5549).
  const named = ws.findIndex((w, i) => w === 'via' && (ws[i + 1] === 'inet' || ws[i + 1] === 'inet6'));
  const words = named < 0 ? ws : [...ws.slice(0, named + 1), ...ws.slice(named + 2)];
  const { kv, flags } = fields(words.slice(1), ROUTE_VALUED);
  const via = kv.has('via') ? parseIP(kv.get('via') ?? '') : undefined;
  if (kv.has('via') && !via) return undefined;
  // The kernel sends `pref` with every IPv6 route (and iproute2 prints it): the family of `default`.
  const dst = destination(words[0] ?? '', kv.has('pref') ? 6 : named < 0 ? via?.family : 4);
  const table = kv.get('table');
  const dev = kv.get('dev');
  if (
    !dst ||
    !modelledRouteDst(dst) ||
    (via && named < 0 && via.family !== dst.ip.family) ||
    !dev ||
    (table !== undefined && table !== 'main')
  )
    return undefined;
  const metric = Number(kv.get('metric') ?? 0);
  return {
    kind: 'route',
    deleted,
    route: {
      dst,
      dev,
      proto: kv.get('proto') ?? 'boot',
      onlink: flags.has('onlink'),
      scopeLink: kv.get('scope') === 'link',
      ...(via ? { via } : {}),
      ...(metric ? { metric } : {}),
    },
  };
}

function parseNeighEvent(rest: string, deleted: boolean, devices: readonly string[]): ModelEvent | undefined {
  const ws = rest.trim().split(/\s+/);
  const ip = parseIP(ws[0] ?? '');
  // `router` and `proxy` are flags (`fe80::1 dev eth0 lladdr … router STALE`), not pairs.
  const { kv, flags } = fields(ws.slice(1), NEIGH_VALUED);
  const dev = kv.get('dev') ?? '';
  if (!ip || !devices.includes(dev)) return undefined;
  const mac = normalizeEthernetMAC(kv.get('lladdr') ?? '');
  const gone = deleted || !flags.has('PERMANENT') || !mac;
  return { kind: 'neigh', gone, neigh: { ip, mac: mac ?? '', dev } };
}

function parseFdbEvent(rest: string, devices: readonly string[]): ModelEvent | undefined {
  const deleted = rest.startsWith('Deleted ');
  const ws = (deleted ? rest.slice('Deleted '.length) : rest).trim().split(/\s+/);
  const mac = normalizeEthernetMAC(ws[0] ?? '');
  const { kv, flags } = fields(ws.slice(1), FDB_VALUED);
  const dev = kv.get('dev') ?? '';
  const dst: IP | undefined = kv.has('dst') ? parseIP(kv.get('dst') ?? '') : undefined;
  if (!mac || !dst || !devices.includes(dev)) return undefined;
  return { kind: 'fdb', gone: deleted || !flags.has('permanent'), fdb: { mac, dst, dev } };
}

/** The modelled meaning of one monitor line (see ModelEvent); `devices` are weft's. */
export function parseModelEvent(line: string, devices: readonly string[]): ModelEvent | undefined {
  const m = /^\[(ROUTE|NEIGH|FDB)\](Deleted )?(.*)$/.exec(line);
  if (!m) return undefined;
  const [, kind, del, rest = ''] = m;
  if (kind === 'ROUTE') return parseRouteEvent(rest, del !== undefined);
  if (kind === 'NEIGH') return parseNeighEvent(rest, del !== undefined, devices);
  return parseFdbEvent(`${del ?? ''}${rest}`, devices);
}
