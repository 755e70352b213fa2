/**
 * A real multi-host fabric on one machine (../shared/LAB.md): network namespaces for a switch,
 * hosts, an etcd and optionally a router to a second underlay segment; `weft run` on hosts;
 * "containers" as namespaces behind a bridge holding the leased gateway (what Docker builds).
 *
 * Safety: nothing here changes the machine's own namespace. Links are created inside the lab's
 * namespaces (`ip -n`); every namespace carries a per-run prefix and is deleted by destroy(),
 * and by an exit hook if the test process dies first. Every process is tracked (procs.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type IP, addToIP, contains, formatIP, parseIP, parsePrefix } from '../../src/core/net/cidr.js';
import { WEFT } from './cli.js';
import { type Started, run, start, until } from './procs.js';

const liveNamespaces = new Set<string>();
const liveDirs = new Set<string>();
function deleteNamespaces(): void {
  for (const ns of liveNamespaces) {
    killNamespacePids(ns);
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
  }
  liveNamespaces.clear();
  for (const d of liveDirs) {
    unmountUnder(d);
    rmSync(d, { recursive: true, force: true });
  }
  liveDirs.clear();
}
process.once('exit', deleteNamespaces);

let labCounter = 0;

/** Unmount anything still mounted below `dir` (a container runtime's shm, overlays), deepest first. */
function unmountUnder(dir: string): void {
  let mounts: string[] = [];
  try {
    mounts = readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${dir}/`));
  } catch {
    /* no /proc */
  }
  for (const m of mounts.sort().reverse()) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
  }
}

/**
 * Kill whatever still runs inside a namespace (processes a test did not start itself, e.g.
 * weft started over SSH by Ansible): deleting a namespace does not end its processes.
 */
function killNamespacePids(ns: string): void {
  let pids: string[] = [];
  try {
    pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
      .split('\n')
      .filter((x) => /^\d+$/.test(x));
  } catch {
    /* gone */
  }
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/**
 * argv that runs `cmd` inside network namespace `ns` and a private mount namespace in which
 * each [file, target] is bind-mounted over target (what a separate machine would have there).
 */
function withBinds(
  binds: readonly (readonly [string, string])[],
  ns: string,
  cmd: string,
  args: readonly string[],
): [string, string[]] {
  const script = `${binds.map((_, i) => `mount --bind "$${2 * i + 1}" "$${2 * i + 2}"`).join(' && ')} && shift ${2 * binds.length} && exec "$@"`;
  return [
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      script,
      'sh',
      ...binds.flat(),
      'nsenter',
      `--net=/var/run/netns/${ns}`,
      cmd,
      ...args,
    ],
  ];
}

export interface LabHost {
  readonly name: string;
  readonly ns: string;
  /**
   * Underlay IPv4 address; `0.0.0.0` on an IPv6-only host (eth0 has no IPv4 address), which is
   * what such a host advertises as its lease's PublicIP, as flanneld does.
   */
  readonly ip: string;
  /** Underlay IPv6 address (labs with `ipv6`): `fd00:2::N` (`fd00:3::N` behind the router), on eth0 as /64. */
  readonly ip6?: string;
  readonly dir: string;
  readonly subnetFile: string;
  weft?: Started;
}

export interface LabOptions {
  readonly hosts: number;
  /** etcd members (default 1; 3 makes a cluster at 192.0.2.100-102). */
  readonly etcdMembers?: 1 | 3;
  /** 1-based host numbers placed on a second segment (198.51.100.0/24) behind a router. */
  readonly behindRouter?: readonly number[];
  /**
   * Every host also gets an IPv6 underlay address `fd00:2::N/64` (`fd00:3::N/64` behind the
   * router) on eth0, added with nodad, and an IPv6 default route via the router (`fd00:2::fe`).
   * etcd answers on `[fd00:2::100]:2379` too (members `fd00:2::100..102`).
   */
  readonly ipv6?: boolean;
  /**
   * `false`: IPv6-only hosts (implies `ipv6`). eth0 carries no IPv4 address and the hosts have
   * no IPv4 route; they reach etcd over IPv6 (`etcdURLs` are `http://[fd00:2::100]:2379`).
   * etcd and the router keep their IPv4 addresses too (etcd's peer traffic stays on IPv4).
   */
  readonly ipv4?: boolean;
}

/** A URL as a YAML flow-sequence item: quoted when it holds brackets (`http://[fd00:2::100]:2379`), as is otherwise. */
export function yamlURL(url: string): string {
  return url.includes('[') ? JSON.stringify(url) : url;
}

/** An IPv6 address of the core's (src/core/net/cidr.ts); throws on any other text. */
function mustIPv6(text: string): IP {
  const a = parseIP(text);
  if (a?.family !== 6) throw new Error(`not an IPv6 address: ${text}`);
  return a;
}

/** Whether IPv6 address `addr` lies in `prefix` (`fd18:0:0:5::/64`). */
export function inIPv6Prefix(addr: string, prefix: string): boolean {
  const p = parsePrefix(prefix);
  if (p?.ip.family !== 6) throw new Error(`not an IPv6 prefix: ${prefix}`);
  return contains(p, mustIPv6(addr));
}

/** An IPv6 address plus `n` (`fd18:0:0:5::` + 1 = `fd18:0:0:5::1`), in Go's text form. */
export function addIPv6(text: string, n: number): string {
  const a = addToIP(mustIPv6(text), BigInt(n));
  if (!a) throw new Error(`${text} + ${n} leaves the IPv6 address space`);
  return formatIP(a);
}

export class Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly hosts: LabHost[] = [];
  /**
   * One URL per etcd member (192.0.2.100, .101, .102 for a 3-member cluster), as the hosts
   * reach them: `http://[fd00:2::100]:2379`, ... in an IPv6-only lab.
   */
  etcdURLs: string[] = ['http://192.0.2.100:2379'];
  /** The first member's URL (what the hosts reach). */
  get etcdURL(): string {
    return this.etcdURLs[0] ?? '';
  }
  /** Whether the hosts have IPv4 / IPv6 underlay addresses (LabOptions.ipv4, .ipv6). */
  private v4 = true;
  private v6 = false;
  private etcdProcs: (Started | undefined)[] = [];
  private readonly procs: Started[] = [];

  private constructor() {
    this.prefix = `wt${process.pid}x${labCounter++}`;
    this.dir = mkdtempSync(join(tmpdir(), 'weft-lab-'));
    liveDirs.add(this.dir);
  }

  /** `ip` inside a lab namespace; throws with the command's output on failure. */
  async ip(ns: string, args: string[]): Promise<string> {
    return this.exec(ns, 'ip', args);
  }

  /** Any command inside a namespace (nsenter keeps /sys, see LAB.md). */
  async exec(ns: string, cmd: string, args: string[]): Promise<string> {
    const r = await run('nsenter', [`--net=/var/run/netns/${ns}`, cmd, ...args]);
    if (r.code !== 0) throw new Error(`[${ns}] ${cmd} ${args.join(' ')}: ${r.out}`);
    return r.stdout;
  }

  /** Like exec, but returns the exit code and output instead of throwing. */
  async tryExec(ns: string, cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
    const r = await run('nsenter', [`--net=/var/run/netns/${ns}`, cmd, ...args]);
    return { code: r.code, out: r.out };
  }

  /** A new namespace with lo up, removed by destroy() (and on exit). */
  async addNamespace(name: string): Promise<string> {
    const ns = `${this.prefix}-${name}`;
    execFileSync('ip', ['netns', 'add', ns]);
    liveNamespaces.add(ns);
    await this.ip(ns, ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** One more machine on the main underlay segment (e.g. an Ansible controller); returns its namespace. */
  async addNode(name: string, ip: string): Promise<string> {
    const ns = await this.addNamespace(name);
    await this.plug(ns, `${this.prefix}-sw`, 'br0', `p${name}`.slice(0, 15), [`${ip}/24`]);
    return ns;
  }

  /**
   * A long-running process inside a namespace, stopped by destroy(). With `asLabAccount`, it
   * runs in a private mount namespace where root's account is the lab's (see labAccount()).
   */
  spawnIn(
    ns: string,
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
    opts: { stdin?: boolean; asLabAccount?: boolean } = {},
  ): Started {
    const [c, a] = opts.asLabAccount
      ? this.asLabAccount(ns, cmd, args)
      : ['nsenter', [`--net=/var/run/netns/${ns}`, cmd, ...args]];
    const p = start(c, a, { env, ...(opts.stdin ? { stdio: ['pipe', 'pipe', 'pipe'] } : {}) });
    this.procs.push(p);
    return p;
  }

  /**
   * The lab's own root account, so nothing a lab host or controller runs reads this machine's
   * home (~/.bashrc, ~/.ssh/config, ~/.pyenv: a CI machine or a workstation can have anything
   * there, LAB.md). Copies of /etc/passwd and /etc/shadow in which root's home is
   * `<lab>/account/home` and root's shell is /bin/sh (dash reads no start-up file when it runs
   * a command), bind-mounted over the real ones inside a private mount namespace only.
   */
  labAccount(): { home: string; passwd: string; shadow: string; env: NodeJS.ProcessEnv } {
    const dir = join(this.dir, 'account');
    const home = join(dir, 'home');
    const passwd = join(dir, 'passwd');
    const shadow = join(dir, 'shadow');
    const env: NodeJS.ProcessEnv = {
      HOME: home,
      USER: 'root',
      LOGNAME: 'root',
      SHELL: '/bin/sh',
      LANG: 'C.UTF-8',
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    };
    if (existsSync(passwd)) return { home, passwd, shadow, env };
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const others = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('root:'));
    writeFileSync(passwd, [`root:x:0:0:weft lab root:${home}:/bin/sh`, ...others, ''].join('\n'), { mode: 0o644 });
    // '*': no password login, but not locked (sshd refuses locked accounts without PAM).
    writeFileSync(shadow, 'root:*:19000:0:99999:7:::\n', { mode: 0o600 });
    return { home, passwd, shadow, env };
  }

  private asLabAccount(ns: string, cmd: string, args: string[]): [string, string[]] {
    const { passwd, shadow } = this.labAccount();
    return withBinds(
      [
        [passwd, '/etc/passwd'],
        [shadow, '/etc/shadow'],
      ],
      ns,
      cmd,
      args,
    );
  }

  /** Run a command to completion as the lab account inside a namespace (bounded, see procs.run). */
  async runAsLabAccount(
    ns: string,
    cmd: string,
    args: string[],
    opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
  ): Promise<{ code: number | null; out: string; stdout: string; timedOut: boolean }> {
    const [c, a] = this.asLabAccount(ns, cmd, args);
    return run(c, a, {
      env: { ...this.labAccount().env, ...opts.env },
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    });
  }

  /**
   * Attach a new namespace to a switch bridge with `addrs` on its eth0 (or `dev`); IPv6
   * addresses are added with nodad (usable at once).
   */
  private async plug(
    ns: string,
    sw: string,
    bridge: string,
    port: string,
    addrs: readonly string[],
    dev = 'eth0',
  ): Promise<void> {
    await this.ip(sw, ['link', 'add', port, 'type', 'veth', 'peer', 'name', dev, 'netns', ns]);
    await this.ip(sw, ['link', 'set', port, 'master', bridge]);
    await this.ip(sw, ['link', 'set', port, 'up']);
    for (const addr of addrs)
      await this.ip(ns, ['addr', 'add', addr, 'dev', dev, ...(addr.includes(':') ? ['nodad'] : [])]);
    await this.ip(ns, ['link', 'set', dev, 'up']);
  }

  static async create(opts: LabOptions): Promise<Lab> {
    const lab = new Lab();
    try {
      await lab.build(opts);
      return lab;
    } catch (e) {
      await lab.destroy();
      throw e;
    }
  }

  private async build(opts: LabOptions): Promise<void> {
    this.v4 = opts.ipv4 ?? true;
    this.v6 = (opts.ipv6 ?? false) || !this.v4;
    const v6 = this.v6;
    const sw = await this.addNamespace('sw');
    const routed = new Set(opts.behindRouter ?? []);
    for (const br of ['br0', 'br1']) {
      await this.ip(sw, ['link', 'add', br, 'type', 'bridge']);
      await this.ip(sw, ['link', 'set', br, 'up']);
    }
    const router = await this.addNamespace('r');
    // The router forwards IPv6 only once its link-local addresses have passed duplicate address
    // detection (neighbour solicitations for forwarded packets come from them): none here, so
    // that it forwards from the start. The hosts keep the kernel's default.
    if (v6)
      await this.exec(router, 'sysctl', [
        '-qw',
        'net.ipv6.conf.default.accept_dad=0',
        'net.ipv6.conf.all.accept_dad=0',
      ]);
    await this.plug(router, sw, 'br0', 'pr0', ['192.0.2.254/24', ...(v6 ? ['fd00:2::fe/64'] : [])], 'eth0');
    await this.plug(router, sw, 'br1', 'pr1', ['198.51.100.254/24', ...(v6 ? ['fd00:3::fe/64'] : [])], 'eth1');
    await this.exec(router, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    if (v6) await this.exec(router, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    const members = opts.etcdMembers ?? 1;
    this.etcdURLs = Array.from({ length: members }, (_, i) =>
      this.v4 ? `http://192.0.2.${100 + i}:2379` : `http://[fd00:2::${100 + i}]:2379`,
    );
    for (let i = 0; i < members; i++) {
      const etcdNs = await this.addNamespace(this.etcdNs(i).slice(this.prefix.length + 1));
      await this.plug(etcdNs, sw, 'br0', this.etcdPort(i), [
        `192.0.2.${100 + i}/24`,
        ...(v6 ? [`fd00:2::${100 + i}/64`] : []),
      ]);
      await this.ip(etcdNs, ['route', 'add', 'default', 'via', '192.0.2.254']);
      if (v6) await this.ip(etcdNs, ['-6', 'route', 'add', 'default', 'via', 'fd00:2::fe']);
    }
    for (let i = 1; i <= opts.hosts; i++) {
      const ns = await this.addNamespace(`h${i}`);
      const far = routed.has(i);
      const ip = !this.v4 ? '0.0.0.0' : far ? `198.51.100.${i}` : `192.0.2.${i}`;
      const ip6 = v6 ? `fd00:${far ? 3 : 2}::${i}` : undefined;
      await this.plug(ns, sw, far ? 'br1' : 'br0', `p${i}`, [
        ...(this.v4 ? [`${ip}/24`] : []),
        ...(ip6 ? [`${ip6}/64`] : []),
      ]);
      if (this.v4) await this.ip(ns, ['route', 'add', 'default', 'via', far ? '198.51.100.254' : '192.0.2.254']);
      if (ip6) await this.ip(ns, ['-6', 'route', 'add', 'default', 'via', far ? 'fd00:3::fe' : 'fd00:2::fe']);
      const dir = join(this.dir, `h${i}`);
      execFileSync('mkdir', ['-p', dir]);
      this.hosts.push({ name: `h${i}`, ns, ip, ...(ip6 ? { ip6 } : {}), dir, subnetFile: join(dir, 'subnet.env') });
    }
    await this.startEtcd();
  }

  private etcdNs(i: number): string {
    return `${this.prefix}-etcd${i === 0 ? '' : String(i + 1)}`;
  }
  private etcdPort(i: number): string {
    return i === 0 ? 'pe' : `pe${String(i + 1)}`;
  }

  /** Start every etcd member (one, or a 3-member cluster) and wait until the cluster answers. */
  async startEtcd(): Promise<void> {
    for (let i = 0; i < this.etcdURLs.length; i++) this.startEtcdMember(i);
    await until(
      async () => {
        await this.etcdctl(['endpoint', 'health']);
        return true;
      },
      20_000,
      100,
    );
  }

  /** Start member i (its data dir is kept across restarts). */
  startEtcdMember(i: number): void {
    const n = this.etcdURLs.length;
    const ip = `192.0.2.${100 + i}`;
    const peer = (k: number) => (n === 1 ? 'http://127.0.0.1:2380' : `http://192.0.2.${100 + k}:2380`);
    const cluster = Array.from({ length: n }, (_, k) => `m${String(k + 1)}=${peer(k)}`).join(',');
    // An IPv6 lab's etcd answers on both families; it advertises what the hosts use.
    const clientURLs = [`http://${ip}:2379`, ...(this.v6 ? [`http://[fd00:2::${100 + i}]:2379`] : [])].join(',');
    this.etcdProcs[i] = start('nsenter', [
      `--net=/var/run/netns/${this.etcdNs(i)}`,
      'etcd',
      '--name',
      `m${String(i + 1)}`,
      '--data-dir',
      join(this.dir, `etcd${String(i + 1)}`),
      '--listen-client-urls',
      clientURLs,
      '--advertise-client-urls',
      this.etcdURLs[i] ?? `http://${ip}:2379`,
      '--listen-peer-urls',
      peer(i),
      '--initial-advertise-peer-urls',
      peer(i),
      '--initial-cluster',
      cluster,
      '--initial-cluster-token',
      this.prefix,
      '--heartbeat-interval',
      '50',
      '--election-timeout',
      '500',
      '--log-level',
      'error',
      '--logger',
      'zap',
    ]);
  }

  async stopEtcd(): Promise<void> {
    for (const p of this.etcdProcs) await p?.stop();
  }

  async stopEtcdMember(i: number): Promise<void> {
    await this.etcdProcs[i]?.stop();
  }

  /** Cut member i off the underlay (its switch port down) or reconnect it. */
  async isolateEtcdMember(i: number, isolated: boolean): Promise<void> {
    await this.ip(`${this.prefix}-sw`, ['link', 'set', this.etcdPort(i), isolated ? 'down' : 'up']);
  }

  /** The index of the current leader (asked of every member that answers). */
  async etcdLeader(): Promise<number> {
    const out = await this.etcdctl(['endpoint', 'status', '-w', 'json']);
    const st = JSON.parse(out) as {
      Endpoint: string;
      Status: { header: { member_id: number | string }; leader: number | string };
    }[];
    const lead = st.find((x) => String(x.Status.header.member_id) === String(x.Status.leader));
    return lead ? this.etcdURLs.indexOf(lead.Endpoint) : -1;
  }

  /** SIGSTOP/SIGCONT etcd: it keeps its sockets but answers nothing (a hung member). */
  freezeEtcd(frozen: boolean): void {
    for (const p of this.etcdProcs) {
      const pid = p?.child.pid;
      if (pid) process.kill(pid, frozen ? 'SIGSTOP' : 'SIGCONT');
    }
  }

  /**
   * etcdctl run from the router (on the underlay whatever happens to an etcd member); `except`
   * leaves one member out (a member cut off from its peers accepts the call and then times out).
   */
  async etcdctl(args: string[], opts: { except?: number } = {}): Promise<string> {
    const urls = this.etcdURLs.filter((_, i) => i !== opts.except);
    return this.exec(`${this.prefix}-r`, 'env', [
      'ETCDCTL_API=3',
      'etcdctl',
      '--endpoints',
      urls.join(','),
      '--command-timeout=3s',
      ...args,
    ]);
  }

  /** A spec file for a host. */
  writeSpec(h: LabHost, network: string, extra: { host?: string; etcd?: string; outputs?: string } = {}): string {
    const file = join(h.dir, 'network.yaml');
    // No health listener unless the test asks for one (host: "listen: ...").
    const listen = /^listen:/m.test(extra.host ?? '') ? '' : '  listen: ""\n';
    writeFileSync(
      file,
      `etcd:\n  endpoints: [${this.etcdURLs.map(yamlURL).join(', ')}]\n${extra.etcd ?? ''}network:\n${network.replace(/^/gm, '  ')}\nhost:\n  interface: eth0\n  subnetFile: ${h.subnetFile}\n  stateDir: ${join(h.dir, 'state')}\n${listen}${(extra.host ?? '').replace(/^(?=.)/gm, '  ')}${extra.outputs ?? ''}`,
    );
    return file;
  }

  /**
   * Start `weft run` on a host; resolves once it logs "ready". By default the host's identity
   * is WEFT_HOST_ID=<prefix>-<name>. With `machineIdentity`, WEFT_HOST_ID is unset and weft
   * reads this machine's /etc/machine-id, as every lab host then does: cloned VMs. `bootID`
   * gives the host a kernel boot ID of its own (a file bind-mounted over
   * /proc/sys/kernel/random/boot_id in a private mount namespace), as a separate VM has.
   */
  async startWeft(
    h: LabHost,
    spec: string,
    opts: {
      waitReady?: boolean;
      env?: Record<string, string>;
      machineIdentity?: boolean;
      bootID?: string;
      nodeArgs?: readonly string[];
      ownRun?: boolean;
      entry?: string;
    } = {},
  ): Promise<Started> {
    const env: NodeJS.ProcessEnv = { ...process.env, WEFT_HOST_ID: `${this.prefix}-${h.name}`, ...opts.env };
    if (opts.machineIdentity) delete env.WEFT_HOST_ID;
    const argv = [process.execPath, ...(opts.nodeArgs ?? []), opts.entry ?? WEFT, 'run', '--spec', spec];
    let cmd: [string, string[]] = ['nsenter', [`--net=/var/run/netns/${h.ns}`, ...argv]];
    const binds: [string, string][] = [];
    if (opts.bootID !== undefined) {
      const file = join(h.dir, 'boot_id');
      writeFileSync(file, `${opts.bootID}\n`);
      binds.push([file, '/proc/sys/kernel/random/boot_id']);
    }
    // The host's own /run/wireguard (userspace WireGuard's control sockets), as a separate VM has.
    if (opts.ownRun) {
      mkdirSync(this.wireguardRun(h), { recursive: true });
      mkdirSync('/run/wireguard', { recursive: true });
      binds.push([this.wireguardRun(h), '/run/wireguard']);
    }
    if (binds.length > 0) {
      cmd = withBinds(binds, h.ns, argv[0] ?? '', argv.slice(1));
    }
    const p = start(cmd[0], cmd[1], { env });
    this.procs.push(p);
    h.weft = p;
    if (opts.waitReady ?? true) {
      // An exit ends the wait at once (until() would retry a thrown error until its deadline).
      await until(() => p.child.exitCode !== null || p.output().includes('"msg":"ready"'), 30_000, 50).catch(
        (e: unknown) => {
          throw new Error(`${h.name}: ${(e as Error).message}\n${p.output()}`);
        },
      );
      if (p.child.exitCode !== null)
        throw new Error(`${h.name}: weft exited ${p.child.exitCode} before it was ready:\n${p.output()}`);
    }
    return p;
  }

  /** The directory bound over /run/wireguard for host h (startWeft's `ownRun`). */
  wireguardRun(h: LabHost): string {
    return join(h.dir, 'wgrun');
  }

  /** A command on host h as it sees itself: its network namespace and its own /run/wireguard. */
  async execOnHost(h: LabHost, cmd: string, args: string[]): Promise<string> {
    const [c, a] = withBinds([[this.wireguardRun(h), '/run/wireguard']], h.ns, cmd, args);
    const r = await run(c, a);
    if (r.code !== 0) throw new Error(`[${h.name}] ${cmd} ${args.join(' ')}: ${r.out}`);
    return r.stdout;
  }

  subnetText(h: LabHost): string {
    return readFileSync(h.subnetFile, 'utf8');
  }

  subnetEnv(h: LabHost): Map<string, string> {
    return new Map(
      readFileSync(h.subnetFile, 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split('=') as [string, string]),
    );
  }

  /**
   * A "container" behind a bridge on host h holding the leased gateway, as Docker does with
   * --bip: bridge `cbr0` = FLANNEL_SUBNET, the container gets .2 and a default route. When
   * subnet.env has FLANNEL_IPV6_SUBNET, the container gets an IPv6 address too (addContainerIPv6).
   * Returns the container's namespace and addresses (`ip` is '' when the host has no IPv4 subnet).
   */
  async addContainer(h: LabHost): Promise<{ ns: string; ip: string; ip6?: string }> {
    const env = this.subnetEnv(h);
    const gw = env.get('FLANNEL_SUBNET');
    const gw6 = env.get('FLANNEL_IPV6_SUBNET');
    if (gw === undefined && gw6 === undefined)
      throw new Error(
        `${h.name}'s subnet.env has neither FLANNEL_SUBNET nor FLANNEL_IPV6_SUBNET:\n${this.subnetText(h)}`,
      );
    const mtu = env.get('FLANNEL_MTU') ?? '1500';
    const ns = await this.addNamespace(`c${h.name}`);
    await this.ip(h.ns, ['link', 'add', 'cbr0', 'mtu', mtu, 'type', 'bridge']);
    await this.ip(h.ns, ['link', 'set', 'cbr0', 'up']);
    await this.ip(h.ns, ['link', 'add', 'veth-c', 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.ip(h.ns, ['link', 'set', 'veth-c', 'master', 'cbr0']);
    await this.ip(h.ns, ['link', 'set', 'veth-c', 'up']);
    await this.ip(ns, ['link', 'set', 'eth0', 'up']);
    let ip = '';
    if (gw !== undefined) {
      const [gwIP = '', len = '24'] = gw.split('/');
      const parts = gwIP.split('.');
      ip = `${parts.slice(0, 3).join('.')}.${Number(parts[3]) + 1}`;
      await this.ip(h.ns, ['addr', 'add', gw, 'dev', 'cbr0']);
      await this.ip(ns, ['addr', 'add', `${ip}/${len}`, 'dev', 'eth0']);
      await this.ip(ns, ['route', 'add', 'default', 'via', gwIP]);
    }
    const ip6 = gw6 === undefined ? undefined : await this.addContainerIPv6(h, ns);
    return { ns, ip, ...(ip6 ? { ip6 } : {}) };
  }

  /**
   * IPv6 for a container made by addContainer (e.g. once IPv6 was turned on): bridge `cbr0`
   * gets FLANNEL_IPV6_SUBNET (the subnet's ::1), the container the next address (::2) and an
   * IPv6 default route via the bridge. Both with nodad. Returns the container's IPv6 address.
   */
  async addContainerIPv6(h: LabHost, ns: string): Promise<string> {
    const gw6 = this.subnetEnv(h).get('FLANNEL_IPV6_SUBNET');
    if (gw6 === undefined) throw new Error(`${h.name}'s subnet.env has no FLANNEL_IPV6_SUBNET:\n${this.subnetText(h)}`);
    const [gwIP = '', len = '64'] = gw6.split('/');
    const ip6 = addIPv6(gwIP, 1);
    await this.ip(h.ns, ['addr', 'add', gw6, 'dev', 'cbr0', 'nodad']);
    await this.ip(ns, ['addr', 'add', `${ip6}/${len}`, 'dev', 'eth0', 'nodad']);
    await this.ip(ns, ['-6', 'route', 'add', 'default', 'via', gwIP]);
    return ip6;
  }

  /** GET a URL from inside a namespace (Node's fetch, run there); status 0 when it fails. */
  async httpGet(ns: string, url: string): Promise<{ status: number; body: string }> {
    const js = `fetch(${JSON.stringify(url)}).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })), (e) => { console.log(JSON.stringify({ status: 0, body: String(e.cause ?? e) })); })`;
    const r = await run('nsenter', [`--net=/var/run/netns/${ns}`, process.execPath, '-e', js]);
    return JSON.parse(r.stdout.trim() || '{"status":0,"body":""}') as { status: number; body: string };
  }

  /** One bounded ping (IPv4 or IPv6, by the address); true when a reply came back. */
  async ping(ns: string, to: string, opts: { count?: number; waitS?: number } = {}): Promise<boolean> {
    if (to === '') throw new Error('ping: no address (a container without an address of this family?)');
    const r = await this.tryExec(ns, 'ping', [
      to.includes(':') ? '-6' : '-4',
      '-n',
      '-q',
      '-c',
      String(opts.count ?? 1),
      '-W',
      String(opts.waitS ?? 1),
      to,
    ]);
    return r.code === 0;
  }

  private readonly destroyHooks: (() => Promise<void>)[] = [];

  /** Run `fn` first when the lab is destroyed (e.g. remove Podman's containers). */
  onDestroy(fn: () => Promise<void>): void {
    this.destroyHooks.push(fn);
  }

  async destroy(): Promise<void> {
    for (const fn of this.destroyHooks.reverse()) await fn().catch(() => undefined);
    await Promise.all(this.procs.map((p) => p.stop(2000)));
    for (const p of this.etcdProcs) await p?.stop();
    for (const ns of [...liveNamespaces].filter((n) => n.startsWith(`${this.prefix}-`))) {
      killNamespacePids(ns);
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* gone */
      }
      liveNamespaces.delete(ns);
    }
    unmountUnder(this.dir);
    rmSync(this.dir, { recursive: true, force: true });
    liveDirs.delete(this.dir);
  }
}
