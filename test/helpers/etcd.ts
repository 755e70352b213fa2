/**
 * Real etcd servers for tests (Debian's etcd-server), on 127.0.0.1 with random ports and a
 * temporary data dir: one member or a 3-member cluster, optionally with TLS (mTLS) and auth.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EtcdSpec } from '../../src/core/spec/spec.js';
import { freePort } from './ports.js';
import { type Started, run, start, until } from './procs.js';

export interface Member {
  readonly name: string;
  readonly clientURL: string;
  readonly peerURL: string;
  proc?: Started;
}

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
}

export class EtcdCluster {
  private constructor(
    readonly dir: string,
    readonly members: Member[],
    readonly tls?: TlsFiles,
    private readonly serverOnly = false,
  ) {}

  /** Start `size` members and wait until the cluster answers. */
  /** `tls: 'server-only'` serves TLS without requiring client certificates (a CA file alone must do). */
  static async start(opts: { size?: number; tls?: boolean | 'server-only' } = {}): Promise<EtcdCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'weft-etcd-'));
    const tls = opts.tls ? await makeCerts(dir) : undefined;
    const scheme = tls ? 'https' : 'http';
    const members: Member[] = [];
    for (let i = 0; i < (opts.size ?? 1); i++) {
      members.push({
        name: `m${i}`,
        clientURL: `${scheme}://127.0.0.1:${await freePort()}`,
        peerURL: `http://127.0.0.1:${await freePort()}`,
      });
    }
    const c = new EtcdCluster(dir, members, tls, opts.tls === 'server-only');
    for (const m of members) c.startMember(m, 'new');
    await c.waitHealthy();
    return c;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.clientURL);
  }

  spec(extra: Partial<EtcdSpec> = {}): EtcdSpec {
    return {
      endpoints: this.endpoints,
      prefix: '/coreos.com/network',
      ...(this.tls ? { caFile: this.tls.ca, certFile: this.tls.clientCert, keyFile: this.tls.clientKey } : {}),
      ...extra,
    };
  }

  private startMember(m: Member, state: 'new' | 'existing'): void {
    const cluster = this.members.map((x) => `${x.name}=${x.peerURL}`).join(',');
    const tlsArgs = this.tls
      ? [
          '--cert-file',
          this.tls.cert,
          '--key-file',
          this.tls.key,
          ...(this.serverOnly ? [] : ['--trusted-ca-file', this.tls.ca, '--client-cert-auth']),
        ]
      : [];
    m.proc = start('etcd', [
      '--name',
      m.name,
      '--data-dir',
      join(this.dir, m.name),
      '--listen-client-urls',
      m.clientURL,
      '--advertise-client-urls',
      m.clientURL,
      '--listen-peer-urls',
      m.peerURL,
      '--initial-advertise-peer-urls',
      m.peerURL,
      '--initial-cluster',
      cluster,
      '--initial-cluster-state',
      state,
      '--initial-cluster-token',
      `t-${this.dir}`,
      '--heartbeat-interval',
      '50',
      '--election-timeout',
      '500',
      '--logger',
      'zap',
      '--log-level',
      'error',
      ...tlsArgs,
    ]);
  }

  /** etcdctl against this cluster (as root when auth is on). */
  async ctl(args: string[], opts: { user?: string; endpoints?: string[] } = {}): Promise<string> {
    const tlsArgs = this.tls
      ? ['--cacert', this.tls.ca, '--cert', this.tls.clientCert, '--key', this.tls.clientKey]
      : [];
    const r = await run(
      'etcdctl',
      [
        '--endpoints',
        (opts.endpoints ?? this.endpoints).join(','),
        '--command-timeout=3s',
        ...tlsArgs,
        ...(opts.user ? ['--user', opts.user] : []),
        ...args,
      ],
      { env: { ...process.env, ETCDCTL_API: '3' } },
    );
    if (r.code !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.out}`);
    return r.stdout;
  }

  async waitHealthy(timeoutMs = 20_000, user?: string): Promise<void> {
    await until(
      async () => {
        await this.ctl(['endpoint', 'health', '--cluster=false'], user ? { user } : {});
        return true;
      },
      timeoutMs,
      100,
    );
  }

  /** Turn on auth with a root user; returns the password file for the spec. */
  async enableAuth(password = 's3cret-pw'): Promise<{ username: string; passwordFile: string }> {
    await this.ctl(['user', 'add', 'root', '--new-user-password', password]);
    await this.ctl(['auth', 'enable']);
    const passwordFile = join(this.dir, 'password');
    writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
    return { username: 'root', passwordFile };
  }

  async stopMember(i: number): Promise<void> {
    await this.members[i]?.proc?.stop();
  }
  async restartMember(i: number): Promise<void> {
    const m = this.members[i];
    if (!m) return;
    await m.proc?.stop();
    this.startMember(m, 'existing');
  }
  async restartAll(user?: string): Promise<void> {
    for (let i = 0; i < this.members.length; i++) await this.stopMember(i);
    for (const m of this.members) this.startMember(m, 'existing');
    await this.waitHealthy(20_000, user);
  }
  /** SIGSTOP every member: connections open, nothing answers (a hung etcd). */
  async freeze(): Promise<void> {
    this.signal('SIGSTOP');
    // Signals are delivered asynchronously: wait until the kernel reports every member stopped.
    await until(
      () =>
        this.members.every((m) => {
          const pid = m.proc?.child.pid;
          if (!pid) return true;
          try {
            return /^\d+ \(.*\) T /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
          } catch {
            return true;
          }
        }),
      5000,
      20,
    );
  }
  thaw(): void {
    this.signal('SIGCONT');
  }
  private signal(sig: NodeJS.Signals): void {
    for (const m of this.members) {
      const c = m.proc?.child;
      if (c?.pid && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, sig);
        } catch {
          /* exited */
        }
      }
    }
  }

  /** Index of the current leader (retried: under load the cluster may be mid-election). */
  async leaderIndex(user?: string): Promise<number> {
    const oneBased = await until(
      async () => {
        const out = await this.ctl(['endpoint', 'status', '-w', 'json'], user ? { user } : {});
        const rows = JSON.parse(out) as {
          Endpoint: string;
          Status: { header: { member_id: number | string }; leader: number | string };
        }[];
        const leader = rows.find((r) => String(r.Status.header.member_id) === String(r.Status.leader));
        const i = this.endpoints.indexOf(leader?.Endpoint ?? '');
        return i >= 0 ? i + 1 : 0; // until() wants a truthy value
      },
      10_000,
      200,
    );
    return oneBased - 1;
  }

  async compact(user?: string): Promise<string> {
    const out = await this.ctl(['endpoint', 'status', '-w', 'json'], user ? { user } : {});
    const rev = String((JSON.parse(out) as { Status: { header: { revision: number } } }[])[0]?.Status.header.revision);
    await this.ctl(['compact', rev], user ? { user } : {});
    return rev;
  }

  async stop(): Promise<void> {
    this.thaw();
    await Promise.all(
      this.members.map(async (m) => {
        await m.proc?.stop();
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function makeCerts(dir: string): Promise<TlsFiles> {
  const f = (n: string) => join(dir, n);
  const ssl = async (args: string[]) => {
    const r = await run('openssl', args);
    if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.out}`);
  };
  await ssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=weft-test-ca',
    '-keyout',
    f('ca.key'),
    '-out',
    f('ca.pem'),
  ]);
  writeFileSync(f('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  for (const who of ['server', 'client']) {
    await ssl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${who === 'client' ? 'root' : 'etcd'}`,
      '-keyout',
      f(`${who}.key`),
      '-out',
      f(`${who}.csr`),
    ]);
    await ssl([
      'x509',
      '-req',
      '-in',
      f(`${who}.csr`),
      '-CA',
      f('ca.pem'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      f('san.cnf'),
      '-out',
      f(`${who}.pem`),
    ]);
  }
  return {
    ca: f('ca.pem'),
    cert: f('server.pem'),
    key: f('server.key'),
    clientCert: f('client.pem'),
    clientKey: f('client.key'),
  };
}
