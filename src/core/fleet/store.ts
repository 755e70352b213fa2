/**
 * The key-value store weft needs from etcd, as an interface: the etcd adapter implements it
 * over the real etcd, and unit tests of the agent can use an in-memory fake. Revisions and
 * lease IDs are decimal strings (etcd's int64s do not fit a JS number safely).
 */

export interface KeyValue {
  readonly key: string;
  /**
   * The value's bytes as text (go-text.ts storedText: a byte of invalid UTF-8 is kept as a lone
   * surrogate, as Go keeps the byte); `''` when `oversize` is set (its bytes were never kept).
   */
  readonly value: string;
  /** The etcd lease ID the key is attached to, `'0'` for none. */
  readonly lease: string;
  readonly modRevision: string;
  readonly createRevision: string;
  /**
   * A quarantine marker: the entry's value (or its key) was larger than the reader's limit, so
   * the store kept only this (core/fleet/store-limits.ts). `bytes` is the stored size; a key over its
   * limit is replaced by a stand-in that names its size and hash, and its value is dropped too.
   */
  readonly oversize?: Oversize;
}

/** What was too large, how large it is in stored bytes (unknown: larger than the receive limit), and the limit. */
export interface Oversize {
  readonly part: 'key' | 'value';
  /** The stored size; absent when not even the size could be read (the entry alone exceeds the receive limit). */
  readonly bytes?: number;
  readonly limitBytes: number;
}

/** How a listing (or a watch) bounds what it keeps. */
export interface ReadLimits {
  /** Values larger than this are replaced by a quarantine marker (default: the largest value weft reads, 64 KiB). */
  readonly maxValueBytes?: number;
  /**
   * Keep at most this many entries, the oldest (lowest create revision, then key) first; the
   * others are counted in `leftOut`. A writer adding keys cannot push out older ones.
   */
  readonly maxEntries?: number;
  /** Read `prefix` as one exact key instead of every key starting with it. */
  readonly exact?: boolean;
}

/** A listing: one consistent snapshot at `revision`, in key byte order. */
export interface Listing {
  readonly kvs: KeyValue[];
  readonly revision: string;
  /** Entries under the prefix not kept because of `maxEntries` (0 when none). */
  readonly leftOut: number;
}

/** A condition of a transaction. */
export type Compare =
  | { readonly key: string; readonly target: 'version'; readonly equals: number }
  /** No key starting with `prefix` exists. */
  | { readonly prefix: string; readonly target: 'none' }
  | { readonly key: string; readonly target: 'mod'; readonly equals: string }
  | { readonly key: string; readonly target: 'value'; readonly equals: string }
  | { readonly key: string; readonly target: 'lease'; readonly equals: string }
  /** Every key starting with `prefix` was created before revision `less` (true when there is none). */
  | { readonly prefix: string; readonly target: 'create'; readonly less: string };

/** One write of a transaction. */
export type Op =
  | { readonly op: 'put'; readonly key: string; readonly value: string; readonly lease?: string }
  | { readonly op: 'delete'; readonly key: string };

export type WatchEvent =
  | { readonly type: 'put'; readonly kv: KeyValue }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: string };

/** A running watch; `cancel` stops it. */
export interface WatchHandle {
  cancel(): Promise<void>;
}

export interface WatchCallbacks {
  /** One watch response: its events in order and the store revision it brings us to. */
  onEvents(events: readonly WatchEvent[], revision: string): void;
  /**
   * The watch is dead (compacted, cancelled, auth expired, stream ended, disconnected): the
   * caller must re-list. Called at most once per watch.
   */
  onBroken(reason: string): void;
}

export interface KvStore {
  /** One key (undefined when absent) and the store revision of the read. */
  get(key: string): Promise<{ kv?: KeyValue; revision: string }>;
  /**
   * Every key starting with `prefix`, in key byte order, and the revision of the read: one
   * consistent snapshot, however many requests it takes, within `limits`.
   */
  list(prefix: string, limits?: ReadLimits): Promise<Listing>;
  /** All-or-nothing: the ops run only when every compare holds. */
  txn(compares: readonly Compare[], ops: readonly Op[]): Promise<{ succeeded: boolean; revision: string }>;
  /** Grant a lease; returns its ID. */
  grant(ttlSeconds: number): Promise<string>;
  /** Refresh a lease; returns its new TTL in seconds, or 0 when the lease no longer exists. */
  keepAliveOnce(lease: string): Promise<number>;
  /** Remaining TTL of a lease: -1 when it does not exist (or for ID 0). */
  timeToLive(lease: string): Promise<number>;
  /** Revoke a lease (its keys are deleted). Revoking a missing lease is not an error. */
  revoke(lease: string): Promise<void>;
  /** Watch `prefix` from `fromRevision` (inclusive); values over `limits.maxValueBytes` arrive as quarantine markers. */
  watch(prefix: string, fromRevision: string, cb: WatchCallbacks, limits?: ReadLimits): Promise<WatchHandle>;
  close(): Promise<void>;
}
