/**
 * The bounds on what weft reads from etcd, where a writer under `<prefix>/` decides the sizes.
 * A value is kept only up to the largest weft ever parses there (the network config's 64 KiB;
 * 4 KiB for leases and owner records); anything larger becomes a quarantine marker at the
 * adapter, with its size and never its bytes. Listings are paged and each gRPC message is
 * bounded, so no amount of stored data makes a listing fail or hold more than one page.
 */
import { grouped } from '../flannel/gojson.js';
import { LEASE_VALUE_LIMITS } from '../flannel/lease.js';
import { CONFIG_LIMITS, ConfigError } from '../flannel/network-config.js';
import type { KeyValue, Oversize, ReadLimits } from './store.js';

/**
 * The largest gRPC message weft accepts from etcd (grpc.max_receive_message_length). A larger
 * message fails alone (RESOURCE_EXHAUSTED: a listing halves its page, a watch re-lists) and is
 * never buffered. It holds any single value etcd accepts by default (--max-request-bytes,
 * 1.5 MiB) with room for an etcd configured up to about 4 MiB.
 */
export const RECEIVE_LIMIT_BYTES = 4 * 1024 * 1024;

/** Keys per listing request (as etcd's own mirror); halved while a page is over the receive limit. */
export const PAGE_ENTRIES = 1000;

/** A key longer than this past the listed prefix is no key weft writes: it becomes a stand-in (core/fleet/store.ts Oversize). */
export const KEY_LIMIT_BYTES = 1024;

/** The largest value weft reads anywhere (the network config). */
export const VALUE_LIMIT_BYTES = CONFIG_LIMITS.maxBytes;

/** Default of host.maxPeers: above any real fleet (a /8 network of /24 subnets holds 65,536). */
export const DEFAULT_MAX_PEERS = 65_536;

/** Entries of `<prefix>/subnets/` (and of the owner records) kept in memory per allowed peer. */
export const ENTRIES_PER_PEER = 2;

/**
 * How the fleet's listings and watches are bounded (`<prefix>/subnets/`, `<prefix>/weft/owners/`):
 * values to the 4 KiB a lease or owner record may have, entries to ENTRIES_PER_PEER × host.maxPeers.
 */
export function fleetLimits(maxPeers: number): ReadLimits {
  return { maxValueBytes: LEASE_VALUE_LIMITS.maxBytes, maxEntries: ENTRIES_PER_PEER * maxPeers };
}

/** Why an oversize entry is quarantined, naming its size ("value of 1,400,000 bytes, over the 4,096-byte limit; not read"). */
export function oversizeReason(o: Oversize): string {
  const size =
    o.bytes === undefined
      ? `larger than the ${grouped(RECEIVE_LIMIT_BYTES)}-byte receive limit`
      : `of ${grouped(o.bytes)} bytes`;
  return `${o.part} ${size}, over the ${grouped(o.limitBytes)}-byte limit; not read${o.part === 'key' ? ' (nor its value)' : ''}`;
}

/** The reason an entry was not read, or undefined when it was. */
export function unreadReason(kv: KeyValue): string | undefined {
  return kv.oversize ? oversizeReason(kv.oversize) : undefined;
}

/** The text of a stored network config, or a ConfigError naming its size when it was too large to be read. */
export function configText(kv: KeyValue): string {
  if (kv.oversize) throw new ConfigError(`the network config is unreadable: ${oversizeReason(kv.oversize)}`);
  return kv.value;
}
