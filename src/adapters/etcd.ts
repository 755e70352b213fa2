/**
 * The etcd v3 adapter: the only module that imports `etcd3`. It adds what etcd3 lacks: a
 * deadline on every unary call (a hung member otherwise blocks forever), one retry policy we
 * control, foreign errors mapped once into weft's typed errors, listings bounded whatever is
 * stored (adapters/etcd-range.ts) and watches with a liveness check of their own
 * (adapters/etcd-watch.ts), reported as broken on any cancellation so the caller re-lists.
 */
import { readFile } from 'node:fs/promises';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, retry } from 'cockatiel';
import {
  Etcd3,
  GRPCResourceExhastedError,
  GRPCUnavailableError,
  type ICallable,
  type IOptions,
  isRecoverableError,
} from 'etcd3';
import { mapEtcdError } from './etcd-errors.js';
import { type PageRequest, type RawKV, listPaged, rangeEnd } from './etcd-range.js';
import { EtcdWatch, WATCH_TIMINGS, type WatchStream, type WatchTimings } from './etcd-watch.js';
import { WeftError } from '../core/base/errors.js';
import { storedText } from '../core/flannel/go-text.js';
export { mapEtcdError } from './etcd-errors.js';
export { rangeEnd } from './etcd-range.js';
import type { EtcdSpec } from '../core/spec/spec.js';
import { RECEIVE_LIMIT_BYTES } from '../core/fleet/store-limits.js';
import type {
  Compare,
  KeyValue,
  KvStore,
  Listing,
  Op,
  ReadLimits,
  WatchCallbacks,
  WatchHandle,
} from '../core/fleet/store.js';

export interface EtcdOptions {
  /** Deadline of each unary call. */
  readonly callTimeoutMs?: number;
  /** The watches' liveness check (default WATCH_TIMINGS). */
  readonly watchTimings?: WatchTimings;
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
        const withLeader: ICallable<unknown>['withConnection'] = (service, fn) =>
          target.withConnection(service, (args) => {
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

const toKV = (kv: RawKV): KeyValue => ({
  key: kv.key.toString('utf8'),
  value: storedText(kv.value),
  lease: kv.lease || '0',
  modRevision: kv.mod_revision,
  createRevision: kv.create_revision,
});

const TARGET = { version: 'Version', mod: 'Mod', value: 'Value', lease: 'Lease' } as const;

function compareOf(c: Compare): Record<string, unknown> {
  // Over a prefix, etcd compares every key in the range (and a zero key when there is none).
  if (c.target === 'create')
    return {
      key: B(c.prefix),
      range_end: rangeEnd(c.prefix),
      target: 'Create',
      result: 'Less',
      create_revision: c.less,
    };
  if (c.target === 'none')
    return { key: B(c.prefix), range_end: rangeEnd(c.prefix), target: 'Version', result: 'Equal', version: 0 };
  const base = { key: B(c.key), result: 'Equal', target: TARGET[c.target] };
  switch (c.target) {
    case 'version':
      return { ...base, version: c.equals };
    case 'mod':
      return { ...base, mod_revision: c.equals };
    case 'value':
      return { ...base, value: B(c.equals) };
    case 'lease':
      return { ...base, lease: c.equals };
  }
}

const opOf = (o: Op): Record<string, unknown> =>
  o.op === 'put'
    ? { request_put: { key: B(o.key), value: B(o.value), lease: o.lease ?? '0' } }
    : { request_delete_range: { key: B(o.key) } };

/**
 * An error that says the member is down or not answering (network, deadline, unavailable), as
 * etcd3 judges it, except an answer over the receive limit. Not a lease that expired, a
 * permission or a compaction: those must not open a member's circuit breaker.
 */
const memberFault = (e: Error): boolean => isRecoverableError(e) && !(e instanceof GRPCResourceExhastedError);

/** Build etcd3 options from the spec: endpoints, TLS (a CA alone works), auth from a file. */
export async function etcdClientOptions(spec: EtcdSpec, opts: EtcdOptions = {}): Promise<IOptions> {
  const timeout = opts.callTimeoutMs ?? 5000;
  const read = async (f: string | undefined, what: string): Promise<Buffer | undefined> => {
    if (f === undefined) return undefined;
    try {
      return await readFile(f);
    } catch (e) {
      throw new WeftError('E_IO', `cannot read etcd ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
        cause: e,
      });
    }
  };
  const [ca, cert, key, password] = await Promise.all([
    read(spec.caFile, 'caFile'),
    read(spec.certFile, 'certFile'),
    read(spec.keyFile, 'keyFile'),
    read(spec.passwordFile, 'passwordFile'),
  ]);
  const tls = spec.endpoints.some((e) => e.startsWith('https://'));
  // A factory, evaluated per call: a deadline computed once would already have passed when the
  // client re-authenticates after an etcd restart, and it could then never log in again.
  const callOptions = (ctx: { isStream: boolean }): Record<string, unknown> =>
    ctx.isStream ? {} : { deadline: Date.now() + timeout };
  return {
    hosts: [...spec.endpoints],
    ...(tls && ca
      ? {
          credentials: {
            rootCertificate: ca,
            ...(key ? { privateKey: key } : {}),
            ...(cert ? { certChain: cert } : {}),
          },
        }
      : {}),
    ...(spec.username && password
      ? { auth: { username: spec.username, password: password.toString('utf8').replace(/\r?\n$/, ''), callOptions } }
      : {}),
    defaultCallOptions: callOptions,
    dialTimeout: timeout,
    // No gRPC keepalive: grpc-js pings connections it is closing gracefully too, and a ping
    // there fails and kills the streams still draining on it (grpc/grpc-node#3068). etcd3
    // closes every channel of a member on any call error, so each error killed the watches six
    // seconds later, whose errors did it again: a watch restart every 8-10 s on idle hosts
    // (issue 28). A cut-off member is found by the watches' own liveness check instead
    // (adapters/etcd-watch.ts), unary calls by their deadline.
    // The receive limit is deliberate (core/fleet/store-limits.ts): a larger answer fails alone and unbuffered.
    grpcOptions: { 'grpc.max_receive_message_length': RECEIVE_LIMIT_BYTES },
    faultHandling: {
      // Fail over: a call refused by one member (down, restarting) is tried on the next one at
      // once. Slower retries happen at weft's own level, with backoff, never blocking other
      // work; the outer deadline in EtcdStore.call bounds the whole chain. An answer over the
      // receive limit is no fault of the member: the same request would be too large anywhere.
      global: retry(
        handleWhen((e) => memberFault(e)),
        { maxAttempts: spec.endpoints.length },
      ),
      host: () =>
        circuitBreaker(
          handleWhen((e) => memberFault(e)),
          { halfOpenAfter: 2000, breaker: new ConsecutiveBreaker(2) },
        ),
    },
  };
}

export class EtcdStore implements KvStore {
  private client: Etcd3;
  private readonly watchTimings: WatchTimings;
  /** How often a wedged etcd3 client was replaced (for metrics and tests). */
  clientResets = 0;
  /** Calls, failed calls and the last answer, for readiness and metrics. */
  readonly stats = { calls: 0, errors: 0, lastOkAtMs: 0, lastError: '' };

  private constructor(
    private readonly options: IOptions,
    private readonly timeoutMs: number,
    watchTimings?: WatchTimings,
  ) {
    this.client = new Etcd3(options);
    this.watchTimings = watchTimings ?? WATCH_TIMINGS;
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
    return new EtcdStore(await etcdClientOptions(spec, opts), opts.callTimeoutMs ?? 5000, opts.watchTimings);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A second, outer deadline: auth and connection setup in etcd3 are not covered by call options.
      this.stats.calls++;
      const out = await Promise.race([
        fn(),
        new Promise<never>((_r, reject) => {
          timer = setTimeout(() => {
            this.resetClient();
            reject(
              new WeftError('E_ETCD_UNAVAILABLE', `etcd ${what}: no answer within ${this.timeoutMs} ms`, {
                retryable: true,
              }),
            );
          }, this.timeoutMs + 500);
        }),
      ]);
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

  /** One key, read as a listing of it: a value over 64 KiB (or over the receive limit) is a quarantine marker. */
  async get(key: string): Promise<{ kv?: KeyValue; revision: string }> {
    const { kvs, revision } = await listPaged((req) => this.rangePage('get', req), key, { exact: true }, toKV);
    const first = kvs[0];
    return { ...(first ? { kv: first } : {}), revision };
  }

  async list(prefix: string, limits: ReadLimits = {}): Promise<Listing> {
    return listPaged((req) => this.rangePage('list', req), prefix, limits, toKV);
  }

  /** One Range request, under the call deadline. */
  private async rangePage(what: string, req: PageRequest): Promise<{ kvs: RawKV[]; more: boolean; revision: string }> {
    const res = await this.call(what, () => this.client.kv.range(req));
    return { kvs: res.kvs, more: res.more, revision: res.header.revision };
  }

  async txn(compares: readonly Compare[], ops: readonly Op[]): Promise<{ succeeded: boolean; revision: string }> {
    const res = await this.call('transaction', () =>
      this.client.kv.txn({ compare: compares.map(compareOf), success: ops.map(opOf), failure: [] }),
    );
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
  async watch(prefix: string, fromRevision: string, cb: WatchCallbacks, limits: ReadLimits = {}): Promise<WatchHandle> {
    const pool = requireLeader(this.client);
    // As etcd3's WatchClient, but keeping the member, and without its rule that a stream error
    // marks the member failed: one dropped connection breaks both watches at once, and two marks
    // opened the breaker, so the re-lists were refused for 2 s. Calls measure the member; a
    // watch marks it only when it stops answering.
    const { stream, member } = await this.call('watch', () =>
      pool.withConnection('Watch', ({ resource, client, metadata }) => ({
        stream: (client as unknown as { watch(m: unknown): WatchStream }).watch(metadata),
        member: resource,
      })),
    );
    // Silent: two failures open the member's circuit breaker (ConsecutiveBreaker(2) above), so for
    // 2 s calls go to the other members: the re-list that follows does not wait on this one.
    const silent = (): void => {
      const e = new GRPCUnavailableError('watch not answering');
      pool.markFailed(member, e);
      pool.markFailed(member, e);
    };
    const w = new EtcdWatch(stream, {
      prefix,
      fromRevision,
      limits,
      decode: toKV,
      timings: this.watchTimings,
      cb,
      silent,
    });
    try {
      await this.call('watch', () => w.ready);
    } catch (e) {
      w.close();
      throw e;
    }
    return {
      cancel: () => {
        w.close();
        return Promise.resolve();
      },
    };
  }

  async close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}
