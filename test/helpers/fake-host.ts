/**
 * An honest fake of the host the reconciler drives (HostPort): a small in-memory kernel of
 * links, addresses, main-table routes, permanent neighbours and fdb entries that **applies the
 * `ip -batch` / `bridge -batch` lines it is given** (and rejects what the kernel would reject),
 * an iptables and an ip6tables that apply `iptables-restore --noflush` payloads (each its own
 * tables, as the kernel keeps them), per-family forwarding, and a file system. So a
 * planner that emits a wrong, missing or unparseable operation leaves the fake in a wrong state
 * and a unit test fails, as it would on a real host.
 */
import {
  type Family,
  type IP,
  type Prefix,
  formatIP,
  formatPrefix,
  parseIP,
  parsePrefix,
} from '../../src/core/net/cidr.js';
import type {
  FdbEntry,
  Neighbour,
  ObservedDatapath,
  ObservedDevice,
  ObservedRoute,
  ObservedWireguardPeer,
} from '../../src/core/datapath/datapath.js';
import { publicKeyOf } from '../../src/adapters/wireguard-keys.js';
import { type Tool, withWireguard } from '../../src/core/datapath/devices.js';
import type { SavedTable } from '../../src/core/datapath/masq.js';
import type { HostPort } from '../../src/agent/reconciler.js';

const mustIP = (s: string | undefined): IP => {
  const a = parseIP(s ?? '');
  if (!a) throw new Error(`bad address ${s ?? ''}`);
  return a;
};
const mustPrefix = (s: string | undefined): Prefix => {
  const p = parsePrefix(s?.includes('/') ? s : `${s ?? ''}/32`);
  if (!p) throw new Error(`bad prefix ${s ?? ''}`);
  return p;
};

/** `word value` pairs after a fixed head, e.g. `via 1.2.3.4 dev x onlink` -> {via, dev, onlink: ''}. */
function words(ws: readonly string[], flags: readonly string[] = []): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < ws.length; i++) {
    const w = ws[i] ?? '';
    if (flags.includes(w)) m.set(w, '');
    else {
      m.set(w, ws[i + 1] ?? '');
      i++;
    }
  }
  return m;
}

export class FakeHost implements HostPort {
  readonly links = new Map<string, ObservedDevice>();
  routes: ObservedRoute[] = [];
  readonly neighs = new Map<string, Neighbour>();
  readonly fdb = new Map<string, FdbEntry>();
  /** iptables' tables (IPv4). */
  readonly tables = emptyTables();
  /** ip6tables' tables (IPv6): separate from iptables', as in the kernel. */
  readonly tables6 = emptyTables();
  /** Families whose `*tables-save` fails (ip6tables not installed, say). */
  readonly saveFails = new Set<Family>();
  /** Families whose `*tables-restore` fails (a kernel without IPv6 NAT, say). */
  readonly restoreFails = new Set<Family>();
  /** Every `*tables-save` and `*tables-restore` run, as `iptables-save nat` / `ip6tables-restore`. */
  readonly iptablesRuns: string[] = [];
  readonly files = new Map<string, string>();
  /** Paths whose writes fail (as a full disk or a missing directory would). */
  readonly unwritable = new Set<string>();
  forwarding = true;
  /** net.ipv6.conf.all.forwarding. */
  forwarding6 = true;
  /** Every line applied (including failed ones), in order. */
  readonly applied: string[] = [];
  observed = 0;
  /** The kernel's WireGuard state per device (`wg show` of it): the private key file's public key, port, peers. */
  readonly wg = new Map<string, { publicKey: string; listenPort: number; peers: Map<string, ObservedWireguardPeer> }>();
  duringObserve: (() => void) | undefined;

  /** `underlay`: the routes of the host's own network (eth0, up, 1500). */
  constructor(underlay: readonly ObservedRoute[] = []) {
    this.routes = [...underlay];
    this.links.set('eth0', { name: 'eth0', kind: 'other', linkKind: 'veth', mtu: 1500, up: true, addrs: [] });
  }

  observeDatapath(devices: readonly string[]): Promise<ObservedDatapath> {
    this.observed++;
    this.duringObserve?.();
    const names = new Set(devices.filter((d) => this.links.has(d)));
    return Promise.resolve({
      devices: new Map(
        [...names].map((n): [string, ObservedDevice] => {
          const l = this.links.get(n) as ObservedDevice;
          const w = this.wg.get(n);
          const seen = { ...l, addrs: [...l.addrs] };
          return [
            n,
            w
              ? withWireguard(seen, {
                  publicKey: w.publicKey,
                  listenPort: w.listenPort,
                  peers: new Map(w.peers),
                  implementation: 'kernel',
                })
              : seen,
          ];
        }),
      ),
      routes: this.routes.map((r) => ({ ...r })),
      neighs: [...this.neighs.values()].filter((n) => names.has(n.dev)),
      fdb: [...this.fdb.values()].filter((f) => names.has(f.dev)),
    });
  }

  applyBatch(tool: Tool, lines: readonly string[]): Promise<{ index: number; message: string }[]> {
    const failures: { index: number; message: string }[] = [];
    lines.forEach((line, index) => {
      this.applied.push(`${tool} ${line}`);
      try {
        if (tool === 'ip') this.ip(line.split(' '));
        else if (tool === 'wireguard') this.wireguard(line.split(' '));
        else this.bridge(line.split(' '));
      } catch (e) {
        failures.push({ index, message: (e as Error).message });
      }
    });
    return Promise.resolve(failures);
  }

  private needLink(name: string | undefined): ObservedDevice {
    const l = this.links.get(name ?? '');
    if (!l) throw new Error(`Cannot find device "${name ?? ''}"`);
    return l;
  }

  private ip(w: readonly string[]): void {
    const [obj, verb, ...rest] = w;
    const key = `${obj ?? ''} ${verb ?? ''}`;
    switch (key) {
      case 'link add':
        return this.linkAdd(rest);
      case 'link del': {
        this.needLink(rest[0]);
        this.dropLink(rest[0] ?? '');
        return;
      }
      case 'link set':
        return this.linkSet(rest);
      case 'addr add':
      case 'addr del': {
        const a = mustPrefix(rest[0]);
        const l = this.needLink(words(rest.slice(1)).get('dev'));
        const has = l.addrs.some((x) => formatPrefix(x) === formatPrefix(a));
        if (verb === 'add' && has) throw new Error('RTNETLINK answers: File exists');
        if (verb === 'del' && !has) throw new Error('RTNETLINK answers: Cannot assign requested address');
        this.links.set(l.name, {
          ...l,
          addrs: verb === 'add' ? [...l.addrs, a] : l.addrs.filter((x) => formatPrefix(x) !== formatPrefix(a)),
        });
        return;
      }
      case 'route replace':
        return this.routeReplace(rest);
      case 'route del': {
        const dst = formatPrefix(mustPrefix(rest[0]));
        const m = words(rest.slice(1));
        const i = this.routes.findIndex(
          (r) =>
            formatPrefix(r.dst) === dst &&
            (!m.has('dev') || r.dev === m.get('dev')) &&
            (!m.has('via') || (r.via && formatIP(r.via) === m.get('via'))),
        );
        if (i < 0) throw new Error('RTNETLINK answers: No such process');
        this.routes.splice(i, 1);
        return;
      }
      case 'neigh replace': {
        const m = words(rest.slice(1));
        const dev = this.needLink(m.get('dev')).name;
        if (m.get('nud') !== 'permanent' || !m.get('lladdr'))
          throw new Error(`fake: unsupported neigh line ${w.join(' ')}`);
        this.neighs.set(`${rest[0] ?? ''} ${dev}`, { ip: mustIP(rest[0]), mac: m.get('lladdr') ?? '', dev });
        return;
      }
      case 'neigh del': {
        const k = `${rest[0] ?? ''} ${words(rest.slice(1)).get('dev') ?? ''}`;
        if (!this.neighs.delete(k)) throw new Error('RTNETLINK answers: No such file or directory');
        return;
      }
      default:
        throw new Error(`fake ip: unknown command "${w.join(' ')}"`);
    }
  }

  private linkAdd(rest: readonly string[]): void {
    const name = rest[0] ?? '';
    if (this.links.has(name)) throw new Error('RTNETLINK answers: File exists');
    const m = words(rest.slice(1), ['learning', 'nolearning', 'gbp']);
    if (m.get('type') !== 'vxlan') throw new Error(`fake: unsupported link type ${m.get('type') ?? ''}`);
    this.needLink(m.get('dev'));
    this.links.set(name, {
      name,
      kind: 'vxlan',
      vni: Number(m.get('id')),
      local: m.get('local') ?? '',
      underlay: m.get('dev') ?? '',
      port: Number(m.get('dstport') ?? 8472),
      learning: m.has('learning'),
      gbp: m.has('gbp'),
      mtu: Number(m.get('mtu') ?? 1500),
      mac: m.get('address') ?? '0e:00:00:00:00:01',
      up: false,
      addrs: [],
    });
  }

  private linkSet(rest: readonly string[]): void {
    if (rest[0] !== 'dev') throw new Error('fake: link set needs dev');
    const l = this.needLink(rest[1]);
    const [what, value] = [rest[2], rest[3]];
    if (what === 'up' || what === 'down') this.links.set(l.name, { ...l, up: what === 'up' });
    else if (what === 'mtu') this.links.set(l.name, { ...l, mtu: Number(value) });
    else if (what === 'address') {
      if (l.kind !== 'vxlan') throw new Error(`fake: no link-layer address to set on a ${l.kind} device`);
      if (l.up) throw new Error('RTNETLINK answers: Device or resource busy');
      this.links.set(l.name, { ...l, mac: value ?? '' });
    } else throw new Error(`fake: unsupported link set ${what ?? ''}`);
  }

  private routeReplace(rest: readonly string[]): void {
    const dst = mustPrefix(rest[0]);
    const m = words(rest.slice(1), ['onlink']);
    const dev = m.get('dev') ?? '';
    if (!this.needLink(dev).up) throw new Error('RTNETLINK answers: Network is down');
    const via = m.has('via') ? mustIP(m.get('via')) : undefined;
    const onlink = m.has('onlink');
    if (
      via &&
      !onlink &&
      !this.routes.some((r) => r.scopeLink && r.dev === dev && r.dst.ip.family === via.family && contains(r.dst, via))
    )
      throw new Error('RTNETLINK answers: Nexthop has invalid gateway');
    this.routes = this.routes.filter((r) => formatPrefix(r.dst) !== formatPrefix(dst));
    this.routes.push({
      dst,
      dev,
      proto: m.get('proto') ?? 'boot',
      onlink,
      scopeLink: m.get('scope') === 'link',
      ...(via ? { via } : {}),
    });
  }

  /**
   * The `wireguard` tool as adapters/wireguard.ts applies it on a kernel with WireGuard: `add
   * DEV mtu N` is a `type wireguard` link; `set ...` is `wg set` (an allowed IP moves from any
   * other peer, as the kernel's cryptokey routing table does; a key file must hold a key).
   */
  private wireguard(w: readonly string[]): void {
    const [verb, dev = ''] = w;
    if (verb === 'add' && w[2] === 'mtu') {
      if (this.links.has(dev)) throw new Error('RTNETLINK answers: File exists');
      this.links.set(dev, { name: dev, kind: 'wireguard', mtu: Number(w[3]), up: false, addrs: [] });
      this.wg.set(dev, { publicKey: '', listenPort: 0, peers: new Map() });
      return;
    }
    const state = this.wg.get(dev);
    if (verb !== 'set' || !state) throw new Error(`Unable to access interface: No such device (${w.join(' ')})`);
    let i = 2;
    while (i < w.length) {
      const k = w[i++];
      if (k === 'listen-port') state.listenPort = Number(w[i++]);
      else if (k === 'private-key') {
        const f = this.files.get(w[i++] ?? '');
        if (f === undefined) throw new Error('No such file or directory');
        state.publicKey = publicKeyOf(f.trim());
      } else if (k === 'peer') {
        i = this.wgPeer(state.peers, w, i);
      } else throw new Error(`Invalid argument: ${k ?? ''}`);
    }
  }

  private wgPeer(peers: Map<string, ObservedWireguardPeer>, w: readonly string[], from: number): number {
    const key = w[from] ?? '';
    let i = from + 1;
    if (w[i] === 'remove') {
      peers.delete(key);
      return i + 1;
    }
    const p = {
      ...(peers.get(key) ?? {
        publicKey: key,
        allowedIPs: [],
        keepaliveSeconds: 0,
        presharedKey: false,
        latestHandshake: 0,
      }),
    } as { -readonly [K in keyof ObservedWireguardPeer]: ObservedWireguardPeer[K] };
    while (i < w.length && w[i] !== 'peer') {
      const k = w[i++];
      const v = w[i++] ?? '';
      if (k === 'endpoint') p.endpoint = v;
      else if (k === 'allowed-ips') {
        p.allowedIPs = v.split(',').map((x) => formatPrefix(mustPrefix(x)));
        for (const [other, q] of peers)
          if (other !== key)
            peers.set(other, { ...q, allowedIPs: q.allowedIPs.filter((a) => !p.allowedIPs.includes(a)) });
      } else if (k === 'persistent-keepalive') p.keepaliveSeconds = v === 'off' ? 0 : Number(v);
      else if (k === 'preshared-key') {
        if (v !== '/dev/null' && this.files.get(v) === undefined) throw new Error('No such file or directory');
        p.presharedKey = v !== '/dev/null';
      } else throw new Error(`Invalid argument: ${k ?? ''}`);
    }
    peers.set(key, p);
    return i;
  }

  private dropLink(name: string): void {
    this.wg.delete(name);
    this.links.delete(name);
    this.routes = this.routes.filter((r) => r.dev !== name);
    for (const [k, n] of this.neighs) if (n.dev === name) this.neighs.delete(k);
    for (const [k, f] of this.fdb) if (f.dev === name) this.fdb.delete(k);
  }

  private bridge(w: readonly string[]): void {
    const [obj, verb, mac, ...rest] = w;
    const m = words(rest, ['self', 'permanent']);
    if (obj !== 'fdb' || !mac) throw new Error(`fake bridge: unknown command "${w.join(' ')}"`);
    const dev = this.needLink(m.get('dev')).name;
    const k = `${mac} ${m.get('dst') ?? ''} ${dev}`;
    if (verb === 'replace') {
      this.fdb.set(k, { mac, dst: mustIP(m.get('dst')), dev });
      return;
    }
    if (verb === 'del') {
      if (!this.fdb.delete(k)) throw new Error('RTNETLINK answers: No such file or directory');
      return;
    }
    throw new Error(`fake bridge: unknown command "${w.join(' ')}"`);
  }

  /** The tables of `family`'s iptables program. */
  tablesOf(family: Family): Map<string, Map<string, string[]>> {
    return family === 4 ? this.tables : this.tables6;
  }

  saveTables(family: Family, tables: readonly string[]): Promise<Map<string, SavedTable>> {
    const tool = family === 4 ? 'iptables' : 'ip6tables';
    for (const t of tables) this.iptablesRuns.push(`${tool}-save ${t}`);
    if (this.saveFails.has(family)) return Promise.reject(new Error(`${tool}-save is not installed (needed by weft)`));
    const own = this.tablesOf(family);
    return Promise.resolve(
      new Map(tables.map((t) => [t, new Map([...(own.get(t) ?? [])].map(([c, r]) => [c, [...r]]))])),
    );
  }

  /** `iptables-restore --noflush` (`ip6tables-restore` for 6): `*table`, `:CHAIN` (create or flush), -A, -I CHAIN N, -D, -X, COMMIT. */
  restoreRules(family: Family, payload: string): Promise<void> {
    const tool = family === 4 ? 'iptables' : 'ip6tables';
    this.iptablesRuns.push(`${tool}-restore`);
    if (this.restoreFails.has(family)) return Promise.reject(new Error(`${tool}-restore: line 2 failed`));
    try {
      this.restore(this.tablesOf(family), family, payload);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private restore(tables: Map<string, Map<string, string[]>>, family: Family, payload: string): void {
    let table = new Map<string, string[]>();
    for (const line of payload.split('\n')) {
      let m: RegExpExecArray | null;
      // An address of the other family is refused, as iptables-restore refuses `-s fd18::/48` (and ip6tables an IPv4 one).
      const wrong = family === 4 ? /\s-[sd] [0-9a-f]*:/.exec(line) : /\s-[sd] \d+\.\d+\.\d+\.\d+/.exec(line);
      if (wrong)
        throw new Error(`${family === 4 ? 'iptables' : 'ip6tables'}-restore: host/network not found in ${line}`);
      if ((m = /^\*(\S+)$/.exec(line))) {
        table = tables.get(m[1] ?? '') ?? new Map<string, string[]>();
        tables.set(m[1] ?? '', table);
      } else if ((m = /^:(\S+) /.exec(line))) table.set(m[1] ?? '', []);
      else if ((m = /^-A (\S+) (.*)$/.exec(line))) chain(table, m[1]).push(m[2] ?? '');
      else if ((m = /^-I (\S+) (\d+) (.*)$/.exec(line))) chain(table, m[1]).splice(Number(m[2]) - 1, 0, m[3] ?? '');
      else if ((m = /^-D (\S+) (.*)$/.exec(line))) {
        const c = chain(table, m[1]);
        const i = c.indexOf(m[2] ?? '');
        if (i < 0) throw new Error(`iptables-restore: bad rule ${line}`);
        c.splice(i, 1);
      } else if ((m = /^-X (\S+)$/.exec(line))) table.delete(m[1] ?? '');
      else if (line !== 'COMMIT' && line !== '') throw new Error(`iptables-restore: cannot parse ${line}`);
    }
  }

  ensureForwarding(family: Family): Promise<boolean> {
    const was = family === 4 ? this.forwarding : this.forwarding6;
    if (family === 4) this.forwarding = true;
    else this.forwarding6 = true;
    return Promise.resolve(!was);
  }

  readFile(path: string): Promise<string | undefined> {
    return Promise.resolve(this.files.get(path));
  }

  writeFile(path: string, text: string): Promise<void> {
    if (this.unwritable.has(path)) return Promise.reject(new Error(`cannot write ${path}: ENOTDIR: not a directory`));
    this.files.set(path, text);
    return Promise.resolve();
  }

  /** Routes as `ip route` would list the ones weft cares about, sorted (for assertions). */
  routeLines(): string[] {
    return this.routes
      .filter((r) => r.via)
      .map(
        (r) =>
          `${formatPrefix(r.dst)} via ${r.via ? formatIP(r.via) : ''} dev ${r.dev}${r.onlink ? ' onlink' : ''} proto ${r.proto}`,
      )
      .sort();
  }
}

function emptyTables(): Map<string, Map<string, string[]>> {
  return new Map([
    ['nat', new Map([['POSTROUTING', []]])],
    ['filter', new Map([['FORWARD', []]])],
  ]);
}

function chain(table: Map<string, string[]>, name: string | undefined): string[] {
  const c = table.get(name ?? '');
  if (!c) throw new Error(`iptables: no chain ${name ?? ''}`);
  return c;
}

function contains(net: Prefix, a: IP): boolean {
  const bits = a.family === 4 ? 32 : 128;
  const shift = BigInt(bits - net.len);
  return net.ip.value >> shift === a.value >> shift;
}
