/**
 * One etcd watch on a gRPC stream of its own, with weft's liveness check instead of gRPC
 * keepalive. A stream that has said nothing for `probeEveryMs` is sent a progress request
 * (etcd ≥ 3.4 answers it at once with a header); no answer within `probeTimeoutMs` means the
 * member is cut off (or hung) and the watch is reported broken, so the caller re-lists through
 * a member that answers. gRPC keepalive did this before, but grpc-js also pings connections it
 * is closing gracefully: after etcd3 replaced its channels (on any call error) the ping failed
 * and killed every watch still draining there, which broke the next, and so on (issue 28).
 *
 * Events arrive bounded (adapters/etcd-range.ts boundedKV): a value over the limit is a
 * quarantine marker. The watch asks etcd to fragment large responses, so no response is much
 * over etcd's request limit; fragments are delivered together, as one response.
 */
import { WeftError } from '../core/base/errors.js';
import type { ReadLimits, WatchCallbacks, WatchEvent } from '../core/fleet/store.js';
import { VALUE_LIMIT_BYTES } from '../core/fleet/store-limits.js';
import { type Decode, type RawKV, boundedKV, rangeEnd } from './etcd-range.js';

/** What the watch needs of etcd3's duplex stream. */
export interface WatchStream {
  on(event: 'data', fn: (res: WatchResponse) => void): unknown;
  on(event: 'error', fn: (e: Error) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  write(req: object): unknown;
  end(): unknown;
  cancel(): unknown;
}

/** The parts of a WatchResponse weft reads. */
export interface WatchResponse {
  readonly header: { readonly revision: string };
  readonly created: boolean;
  readonly canceled: boolean;
  readonly compact_revision: string;
  readonly cancel_reason: string;
  readonly fragment: boolean;
  readonly events: readonly { readonly type: string; readonly kv: RawKV }[];
}

/** The liveness check's timings. */
export interface WatchTimings {
  /** A stream silent this long is sent a progress request. */
  readonly probeEveryMs: number;
  /** No answer to it within this long: the watch is broken. */
  readonly probeTimeoutMs: number;
}

/** 5 s of silence, then 3 s for the answer: a cut-off member is noticed within 8 s, as gRPC keepalive (6 s + 3 s) did. */
export const WATCH_TIMINGS: WatchTimings = { probeEveryMs: 5000, probeTimeoutMs: 3000 };

/** A watch running on `stream`: `ready` settles on creation; `close` ends it without it counting as a failure of the member. */
export class EtcdWatch {
  readonly ready: Promise<void>;
  private created = false;
  private broken = false;
  private lastHeardMs = Date.now();
  private probeSentAtMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private pending: WatchEvent[] = [];

  /** `silent`: called once when the member stops answering (the store marks it failed). */
  constructor(
    private readonly stream: WatchStream,
    private readonly o: {
      prefix: string;
      fromRevision: string;
      limits: ReadLimits;
      decode: Decode;
      timings: WatchTimings;
      cb: WatchCallbacks;
      silent: () => void;
    },
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      stream.on('data', (res) => {
        this.onData(res, resolve, reject);
      });
      stream.on('error', (e) => {
        if (!this.created) reject(e);
        this.breakOnce(`watch error: ${e.message}`, false);
      });
      stream.on('end', () => {
        if (!this.created) reject(new Error('watch stream ended'));
        this.breakOnce('watch stream ended', false);
      });
    });
    const { prefix } = o;
    stream.write({
      create_request: {
        key: Buffer.from(prefix, 'utf8'),
        ...(o.limits.exact ? {} : { range_end: rangeEnd(prefix) }),
        start_revision: o.fromRevision,
        fragment: true,
      },
    });
  }

  /** Stop the watch (no callback). Half-closing first keeps etcd3 from counting the cancel as a failure of the member. */
  close(): void {
    this.broken = true;
    clearTimeout(this.timer);
    try {
      this.stream.end();
      this.stream.cancel();
    } catch {
      /* already closed */
    }
  }

  private onData(res: WatchResponse, resolve: () => void, reject: (e: Error) => void): void {
    if (this.broken) return;
    this.lastHeardMs = Date.now();
    if (res.created && !this.created) {
      this.created = true;
      resolve();
      this.arm();
    }
    if (res.canceled || (res.compact_revision !== '0' && res.compact_revision !== '')) {
      const why = res.cancel_reason || `compacted at ${res.compact_revision}`;
      if (!this.created)
        reject(new WeftError('E_ETCD', `etcd watch: cancelled at creation (${why})`, { retryable: true }));
      this.breakOnce(`watch cancelled: ${why}`, false);
      return;
    }
    const { prefix, limits, decode } = this.o;
    const maxValueBytes = limits.maxValueBytes ?? VALUE_LIMIT_BYTES;
    for (const ev of res.events) {
      const kv = boundedKV(ev.kv, prefix, maxValueBytes, decode);
      this.pending.push(
        ev.type === 'Delete' ? { type: 'delete', key: kv.key, modRevision: kv.modRevision } : { type: 'put', kv },
      );
    }
    // A fragmented response is one revision's events split over several messages: deliver them
    // once complete, so the revision reported is never ahead of the events delivered.
    if (res.fragment) return;
    const events = this.pending;
    this.pending = [];
    if (events.length > 0) this.o.cb.onEvents(events, res.header.revision);
  }

  /** The liveness check: one timer, re-armed from the last answer heard; no timer work per message. */
  private arm(): void {
    clearTimeout(this.timer);
    if (this.broken) return;
    const { probeEveryMs, probeTimeoutMs } = this.o.timings;
    const now = Date.now();
    if (this.probeSentAtMs > 0 && this.lastHeardMs < this.probeSentAtMs) {
      const leftMs = this.probeSentAtMs + probeTimeoutMs - now;
      if (leftMs <= 0) {
        this.breakOnce(
          `watch not answering: no reply from etcd within ${probeTimeoutMs} ms of a progress request`,
          true,
        );
        return;
      }
      this.timer = setTimeout(() => {
        this.arm();
      }, leftMs);
      return;
    }
    this.probeSentAtMs = 0;
    const idleMs = now - this.lastHeardMs;
    if (idleMs < probeEveryMs) {
      this.timer = setTimeout(() => {
        this.arm();
      }, probeEveryMs - idleMs);
      return;
    }
    try {
      this.stream.write({ progress_request: {} });
    } catch (e) {
      this.breakOnce(`watch error: ${e instanceof Error ? e.message : String(e)}`, true);
      return;
    }
    this.probeSentAtMs = now;
    this.timer = setTimeout(() => {
      this.arm();
    }, probeTimeoutMs);
  }

  /** Report the watch broken, once. `silent`: the member stopped answering (the store marks it failed). */
  private breakOnce(reason: string, silent: boolean): void {
    if (this.broken) return;
    this.broken = true;
    clearTimeout(this.timer);
    if (silent) this.o.silent();
    try {
      this.stream.end();
      this.stream.cancel();
    } catch {
      /* already closed */
    }
    if (this.created) this.o.cb.onBroken(reason);
  }
}
