/**
 * A local mirror of every key under one etcd prefix, kept exact by list + watch: list at
 * revision R, watch from R+1, and on *any* broken watch (compaction, auth token expiry after
 * an etcd restart, disconnect, stream end) list again, diff, and watch again, with backoff.
 * A periodic re-list also catches a watch that died without a word. Subscribers hear only
 * which keys changed (level-triggered), never what to do.
 */
import type { Clock } from '../core/base/clock.js';
import { CappedEntries } from '../core/base/oldest-first.js';
import type { KeyValue, KvStore, ReadLimits, WatchCallbacks, WatchEvent, WatchHandle } from '../core/fleet/store.js';
import type { Logger } from '../adapters/log.js';
import { LIST_BACKOFF } from '../core/base/backoff.js';
import { Backoff } from './retry.js';

export interface MirrorOptions {
  readonly store: KvStore;
  readonly prefix: string;
  readonly log: Logger;
  readonly clock: Clock;
  /** Called with the keys whose value changed (or appeared, or went away). */
  readonly onChange: (keys: ReadonlySet<string>) => void;
  /** Re-list this often even when the watch looks healthy. */
  readonly resyncIntervalMs?: number;
  /**
   * After a broken watch is replaced, re-list once more this soon: a watch re-created while
   * etcd is still coming back (e.g. with an auth token it no longer knows) can die silently.
   */
  readonly verifyAfterReconnectMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * What the mirror keeps (core/fleet/store.ts ReadLimits): values over `maxValueBytes` as quarantine
   * markers, at most `maxEntries` entries (the oldest; the rest only counted, see `leftOut`).
   */
  readonly limits?: ReadLimits;
}

/** A listing made by someone else that a mirror may start from (PrefixMirror.start). */
export interface MirrorSeed {
  readonly kvs: readonly KeyValue[];
  readonly revision: string;
  /** Entries that listing left out (ReadLimits.maxEntries); it must have used the mirror's limits. */
  readonly leftOut?: number;
}

export class PrefixMirror {
  private readonly entries: CappedEntries<KeyValue>;
  private revision = '0';
  private watch: WatchHandle | undefined;
  private generation = 0;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private synced = false;
  /**
   * Counters for metrics; `failingSinceMs`: when the re-list (or the watch after it) started
   * failing, 0 while the mirror follows etcd; `lastError` its error (readiness shows both).
   */
  readonly stats = { lists: 0, watchRestarts: 0, missedByWatch: 0, lastSyncMs: 0, lastError: '', failingSinceMs: 0 };

  constructor(private readonly o: MirrorOptions) {
    this.backoff = new Backoff({ ...LIST_BACKOFF, maxMs: o.maxBackoffMs ?? LIST_BACKOFF.maxMs });
    this.entries = new CappedEntries(o.limits?.maxEntries ?? Number.POSITIVE_INFINITY);
  }

  get snapshot(): ReadonlyMap<string, KeyValue> {
    return this.entries.entries;
  }
  /** Entries under the prefix not kept because of `limits.maxEntries` (0 when the cap does not bind). */
  get leftOut(): number {
    return this.entries.leftOut;
  }
  /** The etcd revision the mirror is exact at. */
  get atRevision(): string {
    return this.revision;
  }
  /** True once a list has succeeded (the mirror holds real data). */
  get ready(): boolean {
    return this.synced;
  }

  /**
   * List once (throws if etcd cannot be listed) and keep the mirror up to date from then on.
   * `seed`: a listing of this prefix just made by someone else (with its revision): taken as
   * the first list, the watch resumes after it and delivers whatever changed since.
   */
  async start(seed?: MirrorSeed): Promise<void> {
    await this.resync('start', seed);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.generation++;
    await this.watch?.cancel();
  }

  /**
   * Drop the watch but keep the revision, then later resume from it: what a client does after
   * a disconnect. Used by tests to put the watch behind a compaction.
   */
  async suspend(): Promise<void> {
    clearTimeout(this.timer);
    this.generation++;
    await this.watch?.cancel();
    this.watch = undefined;
  }

  async resume(): Promise<void> {
    const gen = ++this.generation;
    this.watch = await this.o.store.watch(
      this.o.prefix,
      String(BigInt(this.revision) + 1n),
      this.callbacks(gen),
      this.o.limits,
    );
  }

  private callbacks(gen: number): WatchCallbacks {
    return {
      onEvents: (events, rev) => {
        if (gen === this.generation) this.apply(events, rev);
      },
      onBroken: (reason) => {
        if (gen !== this.generation || this.stopped) return;
        this.stats.watchRestarts++;
        this.o.log.warn('etcd watch broken; re-listing', { prefix: this.o.prefix, reason });
        this.schedule(Math.min(this.backoff.next(), 1000), 'broken');
      },
    };
  }

  private schedule(delayMs: number, why: string): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.resync(why).catch(() => {
        const retryInMs = this.backoff.next();
        this.o.log.warn('etcd list failed; retrying', {
          prefix: this.o.prefix,
          error: this.stats.lastError,
          retryInMs,
        });
        this.schedule(retryInMs, 'retry');
      });
    }, delayMs);
  }

  /** List and watch again; a failure is remembered (stats) for readiness, and thrown. */
  private async resync(why: string, seed?: MirrorSeed): Promise<void> {
    try {
      await this.relist(why, seed);
    } catch (e) {
      this.stats.lastError = e instanceof Error ? e.message : String(e);
      if (this.stats.failingSinceMs === 0) this.stats.failingSinceMs = this.o.clock.now();
      throw e;
    }
  }

  private async relist(why: string, seed?: MirrorSeed): Promise<void> {
    if (this.stopped) return;
    const gen = ++this.generation;
    await this.watch?.cancel();
    this.watch = undefined;
    const { kvs, revision, leftOut } = seed ?? (await this.o.store.list(this.o.prefix, this.o.limits));
    if (gen !== this.generation) return;
    this.stats.lists++;
    const changed = new Set<string>();
    const fresh = new Map(kvs.map((kv) => [kv.key, kv]));
    const old = this.entries.entries;
    for (const [k, kv] of fresh) if (old.get(k)?.modRevision !== kv.modRevision) changed.add(k);
    for (const k of old.keys()) if (!fresh.has(k)) changed.add(k);
    if (this.synced && (why === 'periodic' || why === 'verify') && changed.size > 0) {
      this.stats.missedByWatch += changed.size;
      this.o.log.warn('periodic re-list found changes the watch missed', { prefix: this.o.prefix, keys: changed.size });
    }
    this.entries.reset(fresh.values(), leftOut ?? 0);
    this.revision = revision;
    this.synced = true;
    this.stats.lastSyncMs = this.o.clock.now();
    // Tell subscribers now, not after the watch is set up: if creating the watch fails, the
    // next attempt diffs against what was just stored here and would find nothing changed.
    if (changed.size > 0) this.o.onChange(changed);
    this.watch = await this.o.store.watch(
      this.o.prefix,
      String(BigInt(revision) + 1n),
      this.callbacks(gen),
      this.o.limits,
    );
    if (gen !== this.generation) {
      await this.watch.cancel();
      return;
    }
    this.backoff.reset();
    this.stats.lastError = '';
    this.stats.failingSinceMs = 0;
    this.o.log.debug('etcd prefix re-listed and watched', {
      prefix: this.o.prefix,
      why,
      keys: fresh.size,
      changed: changed.size,
      revision,
    });
    const reconnected = why === 'broken' || why === 'retry';
    this.schedule(
      reconnected ? (this.o.verifyAfterReconnectMs ?? 2000) : (this.o.resyncIntervalMs ?? 60_000),
      reconnected ? 'verify' : 'periodic',
    );
  }

  /** Watch events, within the entry cap (core/base/oldest-first.ts CappedEntries): an entry pushed out is a change too. */
  private apply(events: readonly WatchEvent[], revision: string): void {
    const changed = new Set<string>();
    for (const ev of events) {
      if (ev.type === 'delete') {
        if (this.entries.delete(ev.key)) changed.add(ev.key);
        continue;
      }
      const r = this.entries.put(ev.kv);
      if (r.kept) changed.add(ev.kv.key);
      if (r.evicted !== undefined) changed.add(r.evicted);
    }
    if (BigInt(revision) > BigInt(this.revision)) this.revision = revision;
    if (changed.size > 0) this.o.onChange(changed);
  }
}
