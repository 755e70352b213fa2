/**
 * Listings that no amount of stored data can stall: a prefix is read in pages of PAGE_ENTRIES
 * keys, every page at the revision of the first (one consistent snapshot, which the watch then
 * resumes after), and a page whose answer is over the gRPC receive limit is halved until it
 * fits; an entry over the limit alone is read without its value. Each entry passes through
 * `boundedKV`: a value (or key) over its limit becomes a quarantine marker with its size, so
 * what is kept is bounded whatever a writer stored. Entries beyond `maxEntries` are counted,
 * the oldest kept (core/base/oldest-first.ts).
 */
import { createHash } from 'node:crypto';
import { WeftError } from '../core/base/errors.js';
import { OldestKept } from '../core/base/oldest-first.js';
import { KEY_LIMIT_BYTES, PAGE_ENTRIES, VALUE_LIMIT_BYTES } from '../core/fleet/store-limits.js';
import type { KeyValue, Listing, ReadLimits } from '../core/fleet/store.js';

/** A KeyValue as etcd3 returns it. */
export interface RawKV {
  key: Buffer;
  value: Buffer;
  lease: string;
  mod_revision: string;
  create_revision: string;
}

/** One Range request, as etcd3's KV client takes it. */
export interface PageRequest {
  readonly key: Buffer;
  readonly range_end?: Buffer;
  readonly limit: number;
  /** '0': the newest revision (the first page). */
  readonly revision: string;
  readonly keys_only?: boolean;
}

/** One Range answer; throws a WeftError E_ETCD_TOO_LARGE when it is over the receive limit, E_ETCD_COMPACTED when `revision` is gone. */
export type RangePage = (req: PageRequest) => Promise<{ kvs: RawKV[]; more: boolean; revision: string }>;

/** How raw entries become KeyValues (adapters/etcd.ts toKV). */
export type Decode = (raw: RawKV) => KeyValue;

/** The key just past every key starting with `prefix`. */
export function rangeEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if ((b[i] ?? 0) < 0xff) {
      const end = b.subarray(0, i + 1);
      end[i] = (end[i] ?? 0) + 1;
      return end;
    }
  }
  return Buffer.from([0]);
}

const EMPTY = Buffer.alloc(0);

/**
 * The entry as weft keeps it: decoded, or a quarantine marker (core/fleet/store.ts Oversize) that keeps
 * the key, revisions, lease and stored size but never the bytes. A key longer than
 * KEY_LIMIT_BYTES past `prefix` is replaced by a stand-in under `prefix` naming its size and
 * hash (the same for its delete event, so a mirror can match them).
 */
export function boundedKV(
  raw: RawKV,
  prefix: string,
  maxValueBytes: number,
  decode: Decode,
  sizeUnknown = false,
): KeyValue {
  const prefixBytes = Buffer.byteLength(prefix, 'utf8');
  if (raw.key.length - prefixBytes > KEY_LIMIT_BYTES) {
    const hash = createHash('sha256').update(raw.key).digest('hex').slice(0, 32);
    const kv = decode({
      ...raw,
      key: Buffer.from(`${prefix}<${raw.key.length}-byte key sha256:${hash}>`, 'utf8'),
      value: EMPTY,
    });
    return { ...kv, oversize: { part: 'key', bytes: raw.key.length, limitBytes: prefixBytes + KEY_LIMIT_BYTES } };
  }
  if (!sizeUnknown && raw.value.length <= maxValueBytes) return decode(raw);
  const kv = decode({ ...raw, value: EMPTY });
  return {
    ...kv,
    oversize: sizeUnknown
      ? { part: 'value', limitBytes: maxValueBytes }
      : { part: 'value', bytes: raw.value.length, limitBytes: maxValueBytes },
  };
}

const isCode = (e: unknown, code: string): boolean => e instanceof WeftError && e.code === code;

/**
 * One page, halved while its answer is over the receive limit. An entry over the limit alone
 * is read without its value (`alone`: its size cannot be known); a key that alone is over it
 * (etcd configured for requests larger than the limit) cannot be skipped and fails the listing.
 */
async function fittingPage(
  send: RangePage,
  req: PageRequest,
): Promise<{ kvs: RawKV[]; more: boolean; revision: string; alone: boolean; limit: number }> {
  for (let limit = req.limit; ; limit = Math.max(1, Math.floor(limit / 2))) {
    try {
      return { ...(await send({ ...req, limit })), alone: false, limit };
    } catch (e) {
      if (!isCode(e, 'E_ETCD_TOO_LARGE')) throw e;
      if (limit > 1) continue;
    }
    try {
      return { ...(await send({ ...req, limit: 1, keys_only: true })), alone: true, limit: 1 };
    } catch (e) {
      if (!isCode(e, 'E_ETCD_TOO_LARGE')) throw e;
      throw new WeftError(
        'E_ETCD',
        `etcd list: an entry after ${JSON.stringify(req.key.toString('utf8').slice(0, 200))} has a key over the receive limit; etcd accepts requests larger than weft reads (--max-request-bytes): delete it`,
        { cause: e },
      );
    }
  }
}

/** Every entry under `prefix` (or the exact key), paged at one revision, bounded by `limits`. */
export async function listPaged(send: RangePage, prefix: string, limits: ReadLimits, decode: Decode): Promise<Listing> {
  // A compaction between two pages removes the revision the first was read at: start over (rarely more than once).
  for (let attempt = 1; ; attempt++) {
    try {
      return await listOnce(send, prefix, limits, decode);
    } catch (e) {
      if (!isCode(e, 'E_ETCD_COMPACTED') || attempt >= 3) throw e;
    }
  }
}

async function listOnce(send: RangePage, prefix: string, limits: ReadLimits, decode: Decode): Promise<Listing> {
  const maxValueBytes = limits.maxValueBytes ?? VALUE_LIMIT_BYTES;
  const keep = new OldestKept<KeyValue>(limits.maxEntries ?? Number.POSITIVE_INFINITY);
  const end = limits.exact ? undefined : rangeEnd(prefix);
  let from = Buffer.from(prefix, 'utf8');
  let revision = '0';
  let limit = PAGE_ENTRIES;
  for (;;) {
    const page = await fittingPage(send, { key: from, ...(end ? { range_end: end } : {}), limit, revision });
    if (revision === '0') revision = page.revision;
    for (const raw of page.kvs) keep.add(boundedKV(raw, prefix, maxValueBytes, decode, page.alone));
    const last = page.kvs[page.kvs.length - 1];
    if (!page.more || last === undefined) break;
    from = Buffer.concat([last.key, Buffer.from([0])]);
    // After a split, grow back: a few big values must not make every later page small.
    limit = Math.min(PAGE_ENTRIES, page.limit * 2);
  }
  // Pages arrive in key byte order: the order they were added in is the listing's.
  return { kvs: keep.inArrivalOrder(), revision, leftOut: keep.leftOut };
}
