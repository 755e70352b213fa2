/**
 * iproute2, thinly: observe with `ip -json` / `bridge -json`, change with `ip -force -batch -`
 * and `bridge -force -batch -` (one process per batch, per-line failures reported back), and
 * netlink events from `ip monitor`. The JSON parsers are exported and tested on captured output.
 */
import {
  type Family,
  type IP,
  type Prefix,
  bitsOf,
  parseIP,
  parseIPv4,
  parsePrefix,
  prefix,
} from '../core/net/cidr.js';
import {
  type FdbEntry,
  type Neighbour,
  type ObservedDatapath,
  type ObservedDevice,
  type ObservedRoute,
  modelledRouteDst,
} from '../core/datapath/datapath.js';
import { type Tool, observedDevice } from '../core/datapath/devices.js';

/** The tools iproute2 batches serve (wireguard lines go to adapters/wireguard.ts). */
type IpTool = Exclude<Tool, 'wireguard'>;
import type { LinkAddr6, ObservedLink } from '../core/host/host-facts.js';
import { normalizeEthernetMAC } from '../core/net/mac.js';
import { type Coprocess, type LineStream, exec, execOk, startCoprocess, streamLines } from './exec.js';
import { WeftError } from '../core/base/errors.js';

/** One address of `ip -json addr`, with the IPv6 flags that decide whether it may be advertised. */
interface AddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
  deprecated?: boolean;
  tentative?: boolean;
  dadfailed?: boolean;
  temporary?: boolean;
  dynamic?: boolean;
}
interface LinkJson {
  ifindex?: number;
  ifname?: string;
  flags?: string[];
  mtu?: number;
  address?: string;
  addr_info?: AddrInfo[];
  /** The kind's parameters, read by the kind's parser (core/datapath/devices.ts observedDevice). */
  linkinfo?: { info_kind?: string; info_data?: Readonly<Record<string, unknown>> };
}
interface RouteJson {
  dst?: string;
  gateway?: string;
  via?: { family?: string; host?: string };
  dev?: string;
  protocol?: string;
  scope?: string;
  flags?: string[];
  type?: string;
  metric?: number;
}
interface NeighJson {
  dst?: string;
  lladdr?: string;
  state?: string[];
  dev?: string;
}
interface FdbJson {
  mac?: string;
  dst?: string;
  flags?: string[];
  state?: string;
  ifname?: string;
}

const asArray = <T>(text: string): T[] => {
  const v: unknown = JSON.parse(text.trim() || '[]');
  return Array.isArray(v) ? (v as T[]) : [];
};

const v4addrs = (l: LinkJson): Prefix[] =>
  (l.addr_info ?? []).flatMap((a) => {
    const ip = a.family === 'inet' && a.local ? parseIPv4(a.local) : undefined;
    return ip && a.scope !== 'host' ? [prefix(ip, a.prefixlen ?? 32)] : [];
  });

/**
 * A weft device's addresses: IPv4 (but scope host) and global IPv6. The kernel gives every
 * device a link-local fe80:: address of its own; that is never weft's, so it is not reported
 * (and can never be planned for deletion).
 */
const deviceAddrs = (l: LinkJson): Prefix[] => [
  ...v4addrs(l),
  ...(l.addr_info ?? []).flatMap((a) => {
    const ip = a.family === 'inet6' && a.local && a.scope === 'global' ? parseIP(a.local) : undefined;
    return ip?.family === 6 ? [prefix(ip, a.prefixlen ?? 128)] : [];
  }),
];

/** Every IPv6 address of a link with its scope and flags (the interface choice judges them: core/host/host-facts.ts). */
const v6addrs = (l: LinkJson): LinkAddr6[] =>
  (l.addr_info ?? []).flatMap((a) => {
    const ip = a.family === 'inet6' && a.local ? parseIP(a.local) : undefined;
    if (ip?.family !== 6) return [];
    return [
      {
        ip,
        len: a.prefixlen ?? 128,
        scope: a.scope ?? 'global',
        deprecated: a.deprecated === true,
        tentative: a.tentative === true,
        ...(a.dadfailed ? { dadfailed: true } : {}),
        ...(a.temporary ? { temporary: true } : {}),
        ...(a.dynamic ? { dynamic: true } : {}),
      },
    ];
  });

/** `ip -json addr show` -> links with their IPv4 addresses (not scope host) and every IPv6 address with its flags. */
export function parseLinks(text: string): ObservedLink[] {
  return asArray<LinkJson>(text).map((l) => ({
    name: l.ifname ?? '',
    index: l.ifindex ?? 0,
    mtu: l.mtu ?? 0,
    up: (l.flags ?? []).includes('UP'),
    addrs: v4addrs(l),
    addrs6: v6addrs(l),
  }));
}

/** `ip -d -json addr show dev X` -> the device (or undefined), its kind's fields read by its kind's parser. */
export function parseDevice(text: string): ObservedDevice | undefined {
  const l = asArray<LinkJson>(text)[0];
  if (!l?.ifname) return undefined;
  return observedDevice({
    name: l.ifname,
    linkKind: l.linkinfo?.info_kind ?? '',
    mtu: l.mtu ?? 0,
    mac: normalizeEthernetMAC(l.address ?? '') ?? '',
    up: (l.flags ?? []).includes('UP'),
    addrs: deviceAddrs(l),
    data: l.linkinfo?.info_data ?? {},
  });
}

/**
 * `ip -json -4 route show table main` (or `-6`, with `family` 6) -> routes (unicast only). The
 * JSON names neither the family of `default` nor the length of a host route: both come from
 * the family listed.
 */
export function parseRoutes(text: string, family: Family = 4): ObservedRoute[] {
  return asArray<RouteJson>(text).flatMap((r) => {
    if (r.type !== undefined && r.type !== 'unicast') return [];
    const dst =
      r.dst === 'default'
        ? parsePrefix(family === 4 ? '0.0.0.0/0' : '::/0')
        : parsePrefix(r.dst?.includes('/') ? r.dst : `${r.dst ?? ''}/${bitsOf(family)}`);
    if (!dst || dst.ip.family !== family || !modelledRouteDst(dst) || !r.dev) return [];
    // `via` (RTA_VIA) is a gateway of the other family: an IPv4 route via an IPv6 next hop
    // (RFC 5549, `default via inet6 fe80::1`); `gateway` is always the route's own family.
    const via = r.gateway ? parseIP(r.gateway) : r.via?.host ? parseIP(r.via.host) : undefined;
    if ((r.gateway ?? r.via?.host) !== undefined && (!via || (r.gateway !== undefined && via.family !== family)))
      return [];
    return [
      {
        dst,
        dev: r.dev,
        proto: r.protocol ?? 'boot',
        onlink: (r.flags ?? []).includes('onlink'),
        scopeLink: r.scope === 'link',
        ...(via ? { via } : {}),
        ...(r.metric ? { metric: r.metric } : {}),
      },
    ];
  });
}

/** `ip -json neigh show dev X` -> its permanent neighbours (both families). */
export function parseNeighs(text: string, dev: string): Neighbour[] {
  return asArray<NeighJson>(text).flatMap((n) => {
    const ip = n.dst ? parseIP(n.dst) : undefined;
    const mac = normalizeEthernetMAC(n.lladdr ?? '');
    return ip && mac && (n.state ?? []).includes('PERMANENT') ? [{ ip, mac, dev }] : [];
  });
}

/** `bridge -json fdb show dev X` -> permanent entries with a remote destination (IPv4 or IPv6). */
export function parseFdb(text: string, dev: string): FdbEntry[] {
  return asArray<FdbJson>(text).flatMap((f) => {
    const dst: IP | undefined = f.dst ? parseIP(f.dst) : undefined;
    const mac = normalizeEthernetMAC(f.mac ?? '');
    return dst && mac && f.state === 'permanent' ? [{ mac, dst, dev }] : [];
  });
}

export async function listLinks(): Promise<ObservedLink[]> {
  return parseLinks(await execOk('ip', ['-json', 'addr', 'show']));
}

/**
 * `ip -6 -json route show table main`: no batch line lists IPv6 routes without `-6` (a batch's
 * family is the process's), so it is a process of its own. A kernel without IPv6 (booted with
 * ipv6.disable=1) has none; any other failure is the kernel's and retried.
 */
async function listRoutes6(): Promise<ObservedRoute[]> {
  const r = await exec('ip', ['-6', '-json', 'route', 'show', 'table', 'main']);
  if (r.code === 0) return parseRoutes(r.stdout, 6);
  if (/not supported/i.test(r.stderr)) return [];
  throw new WeftError('E_KERNEL', `ip -6 route show failed: ${r.stderr.trim()}`, { retryable: true });
}

/** Main-table routes of both families, IPv4 first (the first default route found is IPv4's). */
export async function listRoutes(): Promise<ObservedRoute[]> {
  const [v4, v6] = await Promise.all([execOk('ip', ['-json', '-4', 'route', 'show', 'table', 'main']), listRoutes6()]);
  return [...parseRoutes(v4), ...v6];
}

/** The device `ip route get` picks for `to`, or undefined when unreachable. */
export async function routeDevTo(to: string): Promise<string | undefined> {
  const r = await exec('ip', ['-json', 'route', 'get', to]);
  return r.code === 0 ? asArray<RouteJson>(r.stdout)[0]?.dev : undefined;
}

/**
 * Everything the planner needs, both families: the named devices, main routes, their
 * neighbours and fdb. One `ip -batch` for the IPv4 routes and each device and its neighbours
 * (one JSON array per line of output, in order, none for a failed line; `addr` and `neigh`
 * list both families), `ip -6 route` (a batch lists one family's routes), and `bridge fdb`
 * per device (no `ip` command shows the fdb), all run together: three programs per pass for a
 * one-device backend.
 */
export async function observeDatapath(devices: readonly string[]): Promise<ObservedDatapath> {
  if (devices.length === 0) return { devices: new Map(), routes: await listRoutes(), neighs: [], fdb: [] };
  const lines = ['route show table main', ...devices.flatMap((d) => [`addr show dev ${d}`, `neigh show dev ${d}`])];
  const [ip, routes6, ...fdbs] = await Promise.all([
    exec('ip', ['-d', '-json', '-force', '-batch', '-'], { input: `${lines.join('\n')}\n` }),
    listRoutes6(),
    ...devices.map((d) => exec('bridge', ['-json', 'fdb', 'show', 'dev', d])),
  ]);
  const byLine = splitBatchOutput(ip.stdout, ip.stderr, lines.length);
  if (!byLine.has(0)) throw new WeftError('E_KERNEL', `ip route show failed: ${ip.stderr.trim()}`, { retryable: true });
  const found = new Map<string, ObservedDevice>();
  const neighs: Neighbour[] = [];
  const fdb: FdbEntry[] = [];
  devices.forEach((name, i) => {
    const observed = byLine.has(1 + 2 * i) ? parseDevice(byLine.get(1 + 2 * i) ?? '[]') : undefined;
    if (!observed) return;
    found.set(name, observed);
    neighs.push(...parseNeighs(byLine.get(2 + 2 * i) ?? '[]', name));
    const f = fdbs[i];
    if (f?.code === 0) fdb.push(...parseFdb(f.stdout, name));
  });
  return { devices: found, routes: [...parseRoutes(byLine.get(0) ?? '[]'), ...routes6], neighs, fdb };
}

/**
 * `ip -json -force -batch` output: one JSON line per command that succeeded, in order, none for
 * a failed one (named on stderr). Returns each successful command's output by its index.
 */
export function splitBatchOutput(stdout: string, stderr: string, commands: number): Map<number, string> {
  const failed = new Set(parseBatchErrors(stderr).map((f) => f.index));
  const outputs = stdout.split('\n').filter((l) => l.trim() !== '');
  const byLine = new Map<number, string>();
  let next = 0;
  for (let i = 0; i < commands; i++) if (!failed.has(i)) byLine.set(i, outputs[next++] ?? '[]');
  return byLine;
}

/** A line of a batch that failed, with iproute2's message. */
export interface BatchFailure {
  readonly index: number;
  readonly message: string;
}

/** Parse `-force -batch` stderr: messages followed by `Command failed -:N` (1-based). */
export function parseBatchErrors(stderr: string): BatchFailure[] {
  const out: BatchFailure[] = [];
  let pending: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(line.trim());
    if (m?.[1]) {
      out.push({ index: Number(m[1]) - 1, message: pending.join(' ').trim() || 'failed' });
      pending = [];
    } else if (line.trim()) pending.push(line.trim());
  }
  return out;
}

/**
 * One long-lived `ip -force -batch -` (or `bridge`) per tool instead of a process per batch.
 * After each batch a marker line is sent: a command that always fails (a device name longer
 * than the kernel allows), so its `Command failed -:N` on stderr says the batch is done, and
 * every failure reported before it (numbered by line since the process started) maps back to
 * the batch's line. One batch at a time; a process that dies or overruns the deadline fails its
 * batch (the reconciler retries and looks afresh) and is started again for the next one.
 * iproute2 caches device name -> index for its lifetime, so after a batch that creates or
 * deletes a link, or any failure (a device recreated behind weft's back looks like one), every
 * session is ended and the next batch starts afresh (never a stale index).
 */
class BatchSession {
  private proc: Coprocess | undefined;
  private linesSent = 0;
  private stderr = '';
  private waiting:
    | { readonly first: number; readonly marker: number; readonly resolve: (f: BatchFailure[] | undefined) => void }
    | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly tool: IpTool) {}

  /** End the process (the next batch starts a new one). */
  restart(): void {
    const p = this.proc;
    this.proc = undefined;
    p?.kill();
  }

  run(lines: readonly string[]): Promise<BatchFailure[] | undefined> {
    const next = this.queue.then(() => this.runOne(lines));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private start(): Coprocess {
    const p = startCoprocess(this.tool, ['-force', '-batch', '-'], (text) => {
      this.stderr += text;
      this.check();
    });
    this.linesSent = 0;
    this.stderr = '';
    void p.exited.then(() => {
      if (this.proc === p) {
        this.proc = undefined;
        this.waiting?.resolve(undefined);
        this.waiting = undefined;
      }
    });
    return p;
  }

  private async runOne(lines: readonly string[]): Promise<BatchFailure[] | undefined> {
    const p = this.proc ?? (this.proc = this.start());
    const first = this.linesSent + 1;
    const marker = first + lines.length;
    this.linesSent = marker;
    const done = new Promise<BatchFailure[] | undefined>((resolve) => {
      this.waiting = { first, marker, resolve };
    });
    const timer = setTimeout(() => {
      p.kill();
    }, 60_000);
    p.write(`${lines.join('\n')}\n${MARKER[this.tool]}\n`);
    try {
      return await done;
    } finally {
      clearTimeout(timer);
    }
  }

  private check(): void {
    const w = this.waiting;
    if (!w || !this.stderr.includes(`Command failed -:${w.marker}\n`)) return;
    const failures = parseBatchErrors(this.stderr)
      .filter((f) => f.index + 1 >= w.first && f.index + 1 < w.marker)
      .map((f) => ({ index: f.index + 1 - w.first, message: f.message }));
    this.stderr = '';
    this.waiting = undefined;
    w.resolve(failures);
  }
}

/** Always fails: no device name can be this long (IFNAMSIZ is 16). */
const MARKER: Record<IpTool, string> = {
  ip: 'link show dev weft-batch-marker-line',
  bridge: 'fdb show dev weft-batch-marker-line',
};
const sessions = new Map<IpTool, BatchSession>();

/** Apply one batch; returns the lines that failed (empty when all succeeded). */
export async function applyBatch(tool: IpTool, lines: readonly string[]): Promise<BatchFailure[]> {
  if (lines.length === 0) return [];
  const session = sessions.get(tool) ?? new BatchSession(tool);
  sessions.set(tool, session);
  const links = lines.some((l) => /^link (add|del) /.test(l));
  // A device created or deleted (by weft or, before this, by anyone): no cached index survives it.
  if (links) for (const x of sessions.values()) x.restart();
  const r = await session.run(lines);
  if (!r || r.length > 0 || links) for (const x of sessions.values()) x.restart();
  if (r) return r;
  // The process died under this batch (or could not start): say so for every line; the caller retries.
  return lines.map((_, index) => ({ index, message: `${tool} -batch exited` }));
}

/**
 * Netlink events, one line each: `ip -4 monitor label link address route neigh`, the same for
 * IPv6 from `ip -6 monitor label address route neigh` (links are family-less: the first
 * monitor reports them), and the fdb from `bridge monitor fdb` as `[FDB]` lines. A monitor
 * without a family would print vxlan fdb entries as neighbour lines that cannot be told from
 * real ones (`192.0.2.2 dev flannel.1 lladdr … PERMANENT`); one per family never does.
 * `families` leaves out the IPv6 monitor on a host that serves only IPv4 (default: both).
 * Each monitor is restarted if it dies, and `onRestart` told (events were lost).
 */
export function monitorNetlink(
  onLine: (line: string) => void,
  onRestart?: () => void,
  families: readonly Family[] = [4, 6],
): { stop(): void } {
  let stopped = false;
  interface Monitor {
    readonly cmd: string;
    readonly args: readonly string[];
    readonly prefix: string;
  }
  const monitors: Monitor[] = [
    { cmd: 'ip', args: ['-4', 'monitor', 'label', 'link', 'address', 'route', 'neigh'], prefix: '' },
    ...(families.includes(6)
      ? [{ cmd: 'ip', args: ['-6', 'monitor', 'label', 'address', 'route', 'neigh'], prefix: '' }]
      : []),
    { cmd: 'bridge', args: ['monitor', 'fdb'], prefix: '[FDB]' },
  ];
  const current: LineStream[] = [];
  const startOne = (i: number, m: Monitor, first: boolean): void => {
    if (stopped) return;
    const s = streamLines(m.cmd, m.args, (l) => {
      onLine(m.prefix + l);
    });
    current[i] = s;
    // A restart: events were lost while it was down, look at the kernel afresh.
    if (!first) onRestart?.();
    void s.exited.then(() => {
      if (!stopped)
        setTimeout(() => {
          startOne(i, m, false);
        }, 1000);
    });
  };
  monitors.forEach((m, i) => {
    startOne(i, m, true);
  });
  return {
    stop: () => {
      stopped = true;
      for (const s of current) s.stop();
    },
  };
}
