/**
 * This host's own lease: which listed lease is it (an owner record alone proves nothing), and
 * is its key as etcd holds it still what this host published?
 *
 * Any etcd writer can write an owner record naming any host, so a record must be borne out by
 * what no writer controls (`isOwnLease`): the lease value and this host's address, or this
 * host's own files and memory.
 *
 * This host's own lease key as etcd holds it is judged against what this host published. Any
 * host can write any key under `<prefix>/subnets/`, also with this host's etcd lease ID (lease
 * IDs are not secret: `weft leases` shows them). Comparing the lease ID alone missed a writer
 * that put its own PublicIP or VtepMAC on this host's key and kept the etcd lease: the host
 * renewed happily while its peers sent its traffic to the writer. So the value is compared too.
 *
 * Pure: the lease keeper reads the key, asks `judgeOwnKey`, and executes the verdict with a
 * compare-and-swap on the revision it saw.
 */
import type { ListedLease } from './acquire.js';
import { decodeCachedState } from './cached-state.js';
import { type IP, formatIP, parsePrefix, sameIP } from '../net/cidr.js';
import { safeText } from '../base/escape.js';
import { isNoIPv4 } from '../net/ip-scope.js';
import type { LeaseAttrs } from '../flannel/lease.js';
import { parseEnvFile, previousSubnets } from '../outputs/outputs.js';
import type { KeyValue } from './store.js';
import { formatSubnetKey } from '../flannel/subnet-key.js';

/** What a host knows of itself, to tell its own leases from forged owner records. */
export interface SelfEvidence {
  /** This host's ID and the IDs it published before. */
  readonly hostIDs: readonly string[];
  /** This host's IPv4 public address (`0.0.0.0` on an IPv6-only host); absent when not known. */
  readonly publicIP?: IP;
  readonly publicIPv6?: IP;
  /** Subnet keys this host's own files or memory say it held (subnet file, cached state, the lease it just lost). */
  readonly heldKeys: readonly string[];
}

/**
 * The subnet keys a host's own files say it held: its subnet file (`FLANNEL_SUBNET`,
 * `FLANNEL_IPV6_SUBNET`) and its cached state's lease. Either may be absent or unreadable.
 */
export function heldKeysFromFiles(subnetEnv: string | undefined, cachedState: string | undefined): string[] {
  const keys = new Set<string>();
  const prev = subnetEnv === undefined ? undefined : previousSubnets(parseEnvFile(subnetEnv));
  if (prev) keys.add(formatSubnetKey(prev));
  const cached = cachedState === undefined ? undefined : decodeCachedState(cachedState);
  if (cached?.ok) {
    const l = cached.value.lease;
    const key = l.subnetKey ?? (parsePrefix(l.subnet)?.ip.family === 4 ? l.subnet.replace('/', '-') : undefined);
    if (key !== undefined) keys.add(key);
  }
  return [...keys];
}

/** Is a lease value published with this host's address (IPv4 PublicIP, or on an IPv6-only host its PublicIPv6; never 0.0.0.0)? */
export function publishedBy(a: LeaseAttrs, self: Pick<SelfEvidence, 'publicIP' | 'publicIPv6'>): boolean {
  const { publicIP, publicIPv6 } = self;
  if (!publicIP) return false;
  if (!isNoIPv4(publicIP)) return sameIP(a.publicIP, publicIP);
  return publicIPv6 !== undefined && a.publicIPv6 !== undefined && sameIP(a.publicIPv6, publicIPv6);
}

/**
 * Is a listed lease this host's own? Any etcd writer can write an owner record naming any host,
 * so the record alone decides nothing: it must name this host AND be borne out by what no
 * writer controls, either the record agrees with the lease value and that value carries this
 * host's address, or this host's own files or memory say it held that key (which also takes a
 * key back whose value another writer replaced).
 */
export function isOwnLease(l: ListedLease, self: SelfEvidence): boolean {
  if (!l.owner || !self.hostIDs.includes(l.owner.hostID)) return false;
  if (self.heldKeys.includes(l.subnetKey)) return true;
  return l.ownerAgrees === true && l.attrs !== undefined && publishedBy(l.attrs, self);
}

/** Why a lease whose owner record names this host is not taken as its own (for `weft release`). */
export function notOwnReason(l: ListedLease, self: Pick<SelfEvidence, 'publicIP' | 'publicIPv6'>): string {
  const published = l.attrs
    ? isNoIPv4(l.attrs.publicIP) && l.attrs.publicIPv6
      ? formatIP(l.attrs.publicIPv6)
      : formatIP(l.attrs.publicIP)
    : 'no readable value';
  const mine = self.publicIP
    ? isNoIPv4(self.publicIP) && self.publicIPv6
      ? formatIP(self.publicIPv6)
      : formatIP(self.publicIP)
    : 'not known';
  return `its owner record names this host, but the lease publishes ${published}${l.ownerAgrees ? '' : " (not the owner record's address)"}, this host's address is ${mine}, and neither its subnet file nor its cached state names this lease: a forged or stale owner record, left alone`;
}

/** What this host last wrote on its key, and what it wants there now. */
export interface Published {
  /** The value of this host's last successful write. */
  readonly value: string;
  /** The value it wants published now (differs from `value` while a republish is pending). */
  readonly wanted: string;
  /** The etcd lease ID both are attached to. */
  readonly lease: string;
}

export type OwnKeyVerdict =
  /** The key holds a value of ours on our etcd lease: `modRevision` is the one to compare on from now on. */
  | { readonly kind: 'ours'; readonly modRevision: string; readonly value: string }
  /** Deleted, or moved to another etcd lease: the key is not ours any more (re-acquire). */
  | { readonly kind: 'lost' }
  /**
   * Our etcd lease, but not our value: put `wanted` back by CAS on `seenRevision`. `foreign`
   * tells a value another writer put there (warn) from our own earlier value (a republish
   * that did not reach etcd: just publish it, quietly).
   */
  | { readonly kind: 'restore'; readonly seenRevision: string; readonly foreign: boolean; readonly seen: string };

export function judgeOwnKey(p: Published, kv: KeyValue | undefined): OwnKeyVerdict {
  if (!kv || kv.lease !== p.lease) return { kind: 'lost' };
  // Our own write whose answer we never saw (a timed-out republish) is still ours.
  if (kv.value === p.wanted) return { kind: 'ours', modRevision: kv.modRevision, value: kv.value };
  return { kind: 'restore', seenRevision: kv.modRevision, foreign: kv.value !== p.value, seen: kv.value };
}

/** At most this many characters of a foreign value are logged (escaped: it is untrusted). */
export const FOREIGN_VALUE_CAP = 256;

/** The fields of the warning a restore logs: the key, the foreign write (its revision, its value escaped and cut) and the revision of ours that replaced it. */
export function restoreFields(
  key: string,
  seenRevision: string,
  seen: string,
  restoredRevision: string,
): Record<string, string> {
  return { key, foreignRevision: seenRevision, foreignValue: safeText(seen, FOREIGN_VALUE_CAP), restoredRevision };
}
