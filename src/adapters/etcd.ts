/**
 * The etcd v3 adapter: the only module that imports `etcd3`. It adds what etcd3 lacks: a
 * deadline on every unary call (a hung member otherwise blocks forever), one retry policy we
 * control, and foreign errors mapped once into weft's typed errors. Watches are reported as
 * broken on any cancellation so the caller re-lists (etcd3 silently drops some watchers).
 */
import { readFile } from 'node:fs/promises';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } from 'cockatiel';
import { Etcd3, type ICallable, type IOptions, WatchClient, isRecoverableError } from 'etcd3';
import { mapEtcdError } from './etcd-errors.js';
import { WeftError } from '../core/errors.js';
import { storedText } from '../core/go-text.js';
export { mapEtcdError } from './etcd-errors.js';
import type { EtcdSpec } from '../core/spec.js';
import type { Compare, KeyValue, KvStore, Op, WatchCallbacks, WatchEvent, WatchHandle } from '../core/store.js';

export interface EtcdOptions {
  /** Deadline of each unary call. */
  readonly callTimeoutMs?: number;
}

/**
 * etcd3's connection pool, with gRPC metadata `hasleader: true` on every stream it opens (etcd's
 * WithRequireLeader). A member cut off from the cluster keeps a plain watch open and silent
 * forever; with this, it cancels the watch ("no leader") within a few election timeouts, so weft
 * re-lists through a member that still has quorum instead of waiting for the periodic re-list.
 * (etcd3 1.1.2 offers no option for it; `pool` is its protected connection pool.)
 */
function requireLeader(client: Etcd3): ICallable<unknown> {
  const pool = (client as unknown as { pool: ICallable<unknown> }).pool;
  return new Proxy(pool, {
    get(target, prop, receiver) {
      if (prop === 'withConnection') {
        const withLeader: ICallable<unknown>['withConnection'] = (service, fn) => target.withConnection(service, (args) => {
          const metadata = args.metadata.clone();
          metadata.set('hasleader', 'true');
          return fn({ ...args, metadata });
        });
        return withLeader;
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const B = (s: string): Buffer => Buffer.from(s, 'utf8');

/** The key just past every key starting with `prefix`. */
export function rangeEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if ((b[i] ?? 0) < 0xff) { const end = b.subarray(0, i + 1); end[i] = (end[i] ?? 0) + 1; return end; }
  }
  return Buffer.from([0]);
}

interface RawKV { key: Buffer; value: Buffer; lease: string; mod_revision: string; create_revision: string }
const toKV = (kv: RawKV): KeyValue => ({
  key: kv.key.toString('utf8'), value: storedText(kv.value), lease: kv.lease || '0',
  modRevision: kv.mod_revision, createRevision: kv.create_revision,
});

const TARGET = { version: 'Version', mod: 'Mod', value: 'Value', lease: 'Lease' } as const;

function compareOf(c: Compare): Record<string, unknown> {
  // Over a prefix, etcd compares every key in the range (and a zero key when there is none).
  if (c.target === 'create') return { key: B(c.prefix), range_end: rangeEnd(c.prefix), target: 'Create', result: 'Less', create_revision: c.less };
  if (c.target === 'none') return { key: B(c.prefix), range_end: rangeEnd(c.prefix), target: 'Version', result: 'Equal', version: 0 };
  const base = { key: B(c.key), result: 'Equal', target: TARGET[c.target] };
  switch (c.target) {
    case 'version': return { ...base, version: c.equals };
    case 'mod': return { ...base, mod_revision: c.equals };
    case 'value': return { ...base, value: B(c.equals) };
    case 'lease': return { ...base, lease: c.equals };
  }
}

const opOf = (o: Op): Record<string, unknown> => (o.op === 'put'
  ? { request_put: { key: B(o.key), value: B(o.value), lease: o.lease ?? '0' } }
  : { request_delete_range: { key: B(o.key) } });

/** Build etcd3 options from the spec: endpoints, TLS (a CA alone works), auth from a file. */
export async function etcdClientOptions(spec: EtcdSpec, opts: EtcdOptions = {}): Promise<IOptions> {
  const timeout = opts.callTimeoutMs ?? 5000;
  const read = async (f: string | undefined, what: string): Promise<Buffer | undefined> => {
    if (f === undefined) return undefined;
    try { return await readFile(f); } catch (e) {
      throw new WeftError('E_IO', `cannot read etcd ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
  };
  const [ca, cert, key, password] = await Promise.all([read(spec.caFile, 'caFile'), read(spec.certFile, 'certFile'), read(spec.keyFile, 'keyFile'), read(spec.passwordFile, 'passwordFile')]);
  const tls = spec.endpoints.some((e) => e.startsWith('https://'));
  // A factory, evaluated per call: a deadline computed once would already have passed when the
  // client re-authenticates after an etcd restart, and it could then never log in again.
  const callOptions = (ctx: { isStream: boolean }): Record<string, unknown> => (ctx.isStream ? {} : { deadline: Date.now() + timeout });
  return {
    hosts: [...spec.endpoints],
    ...(tls && ca ? { credentials: { rootCertificate: ca, ...(key ? { privateKey: key } : {}), ...(cert ? { certChain: cert } : {}) } } : {}),
    ...(spec.username && password ? { auth: { username: spec.username, password: password.toString('utf8').replace(/\r?\n$/, ''), callOptions } } : {}),
    defaultCallOptions: callOptions,
    dialTimeout: timeout,
    // A member that is cut off the network answers nothing, not even "no leader": the watch on
    // it would stay open and silent. gRPC keepalive pings on channels with active streams find
    // the dead connection within about 8 s and fail the stream, so weft re-lists elsewhere.
    // (etcd answers pings more often than every 5 s with GOAWAY: --grpc-keepalive-min-time; 6 s keeps clear of it.)
    grpcOptions: { 'grpc.keepalive_time_ms': 6000, 'grpc.keepalive_timeout_ms': 3000, 'grpc.keepalive_permit_without_calls': 0 },
    faultHandling: {
      // Fail over: a call refused by one member (down, restarting) is tried on the next one at
      // once. Slower retries happen at weft's own level, with backoff, never blocking other
      // work; the outer deadline in EtcdStore.call bounds the whole chain.
      global: retry(handleWhen((e) => isRecoverableError(e)), { maxAttempts: spec.endpoints.length }),
      host: () => circuitBreaker(handleWhen(() => true), { halfOpenAfter: 2000, breaker: new ConsecutiveBreaker(2) }),
    },
  };
}

export class EtcdStore implements KvStore {
  private client: Etcd3;
  /** How often a wedged etcd3 client was replaced (for metrics and tests). */
  clientResets = 0;
  /** Calls, failed calls and the last answer, for readiness and metrics. */
  readonly stats = { calls: 0, errors: 0, lastOkAtMs: 0, lastError: '' };

  private constructor(private readonly options: IOptions, private readonly timeoutMs: number) {
    this.client = new Etcd3(options);
  }

  /**
   * Replace a wedged etcd3 client. etcd3 parks every call behind one cached authentication
   * promise; seen here after an etcd restart with auth on, that promise can stay pending while
   * grpc's own deadlines do not fire, and every later call waits on it forever. Our outer
   * deadline firing is the sign: start over with a fresh pool and authenticator.
   */
  private resetClient(): void {
    const old = this.client;
    this.client = new Etcd3(this.options);
    this.clientResets++;
    old.close();
  }

  static async connect(spec: EtcdSpec, opts: EtcdOptions = {}): Promise<EtcdStore> {
    return new EtcdStore(await etcdClientOptions(spec, opts), opts.callTimeoutMs ?? 5000);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A second, outer deadline: auth and connection setup in etcd3 are not covered by call options.
      this.stats.calls++;
      const out = await Promise.race([fn(), new Promise<never>((_r, reject) => {
        timer = setTimeout(() => {
          this.resetClient();
          reject(new WeftError('E_ETCD_UNAVAILABLE', `etcd ${what}: no answer within ${this.timeoutMs} ms`, { retryable: true }));
        }, this.timeoutMs + 500);
      })]);
      this.stats.lastOkAtMs = Date.now();
      return out;
    } catch (e) {
      const err = mapEtcdError(e, what);
      this.stats.errors++;
      this.stats.lastError = err.message;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async get(key: string): Promise<{ kv?: KeyValue; revision: string }> {
    const res = await this.call('get', () => this.client.kv.range({ key: B(key) }));
    const first = res.kvs[0] as RawKV | undefined;
    return { ...(first ? { kv: toKV(first) } : {}), revision: res.header.revision };
  }

  async list(prefix: string): Promise<{ kvs: KeyValue[]; revision: string }> {
    const res = await this.call('list', () => this.client.kv.range({ key: B(prefix), range_end: rangeEnd(prefix) }));
    return { kvs: (res.kvs as RawKV[]).map(toKV), revision: res.header.revision };
  }

  async txn(compares: readonly Compare[], ops: readonly Op[]): Promise<{ succeeded: boolean; revision: string }> {
    const res = await this.call('transaction', () => this.client.kv.txn({ compare: compares.map(compareOf), success: ops.map(opOf), failure: [] }));
    return { succeeded: res.succeeded, revision: res.header.revision };
  }

  async grant(ttlSeconds: number): Promise<string> {
    const res = await this.call('lease grant', () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 }));
    return res.ID;
  }

  async keepAliveOnce(lease: string): Promise<number> {
    return this.call('lease keepalive', async () => {
      const stream = await this.client.leaseClient.leaseKeepAlive();
      try {
        const res = await new Promise<{ TTL: string }>((resolve, reject) => {
          stream.on('data', resolve);
          stream.on('error', reject);
          stream.write({ ID: lease });
        });
        return Number(res.TTL);
      } finally {
        stream.end();
      }
    });
  }

  async timeToLive(lease: string): Promise<number> {
    if (lease === '0') return -1;
    const res = await this.call('lease ttl', () => this.client.leaseClient.leaseTimeToLive({ ID: lease, keys: false }));
    return Number(res.TTL);
  }

  async revoke(lease: string): Promise<void> {
    try {
      await this.call('lease revoke', () => this.client.leaseClient.leaseRevoke({ ID: lease }));
    } catch (e) {
      // Already expired or revoked: what a revoke wants.
      if (e instanceof WeftError && e.code === 'E_NOT_FOUND') return;
      throw e;
    }
  }

  /**
   * One dedicated gRPC watch stream per call, not etcd3's shared WatchManager: that manager
   * reconnects forever on its own timers, keeps cancelled watchers attached while a cancel is
   * pending, and after an etcd restart with auth on could stop answering watch creations. weft
   * re-lists on any broken watch anyway, so here a watch simply ends (once) and is closed.
   */
  async watch(prefix: string, fromRevision: string, cb: WatchCallbacks): Promise<WatchHandle> {
    const stream = await this.call('watch', () => new WatchClient(requireLeader(this.client)).watch());
    let broken = false;
    let created = false;
    const close = (): void => { try { stream.cancel(); } catch { /* already closed */ } };
    const breakOnce = (reason: string): void => {
      if (broken) return;
      broken = true;
      close();
      if (created) cb.onBroken(reason);
    };
    const ready = new Promise<void>((resolve, reject) => {
      stream.on('data', (res) => {
        if (broken) return;
        if (res.created && !created) { created = true; resolve(); }
        if (res.canceled || (res.compact_revision !== '0' && res.compact_revision !== '')) {
          if (!created) reject(new WeftError('E_ETCD', `etcd watch: cancelled at creation (${res.cancel_reason || `compacted at ${res.compact_revision}`})`, { retryable: true }));
          breakOnce(`watch cancelled: ${res.cancel_reason || `compacted at ${res.compact_revision}`}`);
          return;
        }
        const events: WatchEvent[] = res.events.map((ev) => (ev.type === 'Delete'
          ? { type: 'delete', key: ev.kv.key.toString('utf8'), modRevision: ev.kv.mod_revision }
          : { type: 'put', kv: toKV(ev.kv as unknown as RawKV) }));
        if (events.length > 0) cb.onEvents(events, res.header.revision);
      });
      stream.on('error', (e) => { if (!created) reject(e); breakOnce(`watch error: ${e.message}`); });
      stream.on('end', () => { if (!created) reject(new Error('watch stream ended')); breakOnce('watch stream ended'); });
    });
    stream.write({ create_request: { key: B(prefix), range_end: rangeEnd(prefix), start_revision: fromRevision } });
    try {
      await this.call('watch', () => ready);
    } catch (e) {
      broken = true;
      close();
      throw e;
    }
    return { cancel: () => { broken = true; close(); return Promise.resolve(); } };
  }

  async close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}
