/**
 * One live weft per host identity. Two VMs cloned from one image without a new
 * /etc/machine-id share a host identity; started together, both would "reuse" the same owned
 * lease and fight over one subnet (flanneld shares it silently). So each running weft holds a
 * presence record `<prefix>/weft/hosts/<hostID>` on a short etcd lease that it keeps alive.
 * A process that finds the record held by another boot watches the holder's etcd lease for a
 * few seconds: a lease whose time-to-live goes back up is being kept alive by a live process
 * (a clone: this process must not use the identity), one that runs out was left by a dead one
 * (this host before a reboot: take it). A record kept alive is believed only when a lease of the
 * identity bears it out (`presenceBorneOut`): a forged one must not move a host to a new
 * identity and subnet.
 *
 * Pure: the record codec and the decisions. The agent does the etcd calls.
 */
import type { ListedLease } from './acquire.js';
import { parseIP, sameIP } from '../net/cidr.js';
import type { Json } from '../flannel/network-config.js';

export const presencePrefix = (prefix: string): string => `${prefix}/weft/hosts/`;

/** What a running weft publishes about itself. */
export interface PresenceRecord {
  /** The kernel's boot ID (/proc/sys/kernel/random/boot_id) of the holder. */
  readonly bootID: string;
  /** Random per process: tells two processes of one boot apart. */
  readonly instance: string;
  readonly hostname: string;
  readonly publicIP: string;
  /** When the holder claimed the record (ISO 8601). */
  readonly since: string;
}

export function encodePresence(r: PresenceRecord): string {
  return JSON.stringify({
    bootID: r.bootID,
    instance: r.instance,
    hostname: r.hostname,
    publicIP: r.publicIP,
    since: r.since,
  });
}

/** A record's fields, or undefined for anything else (a value over 1 KiB is not read). */
export function decodePresence(text: string): PresenceRecord | undefined {
  if (text.length > 1024) return undefined;
  let v: Json;
  try {
    v = JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const s = (k: string): string => {
    const x = v[k];
    return typeof x === 'string' ? x : '';
  };
  if (s('bootID') === '' || s('instance') === '') return undefined;
  return {
    bootID: s('bootID'),
    instance: s('instance'),
    hostname: s('hostname'),
    publicIP: s('publicIP'),
    since: s('since'),
  };
}

/**
 * What to do about a record someone else holds, given the time-to-live of its etcd lease
 * sampled over time (oldest first, -1 once the lease is gone):
 *  - `take`: the holder is gone or is an earlier weft of this very boot (a restart, kill -9);
 *  - `clash`: a live process of another boot keeps it alive;
 *  - `wait`: not known yet; sample again in a second.
 * An unreadable record is taken over only once its lease runs out, like any other.
 */
export function judgeHolder(
  holder: PresenceRecord | undefined,
  ourBootID: string,
  ttlSamples: readonly number[],
): 'take' | 'clash' | 'wait' {
  if (holder && holder.bootID === ourBootID) return 'take';
  const last = ttlSamples.at(-1);
  if (last !== undefined && last <= 0) return 'take';
  for (let i = 1; i < ttlSamples.length; i++) {
    if ((ttlSamples[i] ?? 0) > (ttlSamples[i - 1] ?? 0)) return 'clash';
  }
  return 'wait';
}

/**
 * Does the fleet bear out a presence record's claim that a live weft holds this identity? Any
 * etcd writer can write a record under any host ID and keep its etcd lease alive; a real weft
 * holding the identity also holds the identity's lease, with an owner record that names the
 * record's public IP and agrees with the lease's value. `owned`: the leases whose owner record
 * names the identity. A record no lease bears out is forged, or its holder has not leased yet
 * (it claims the record just before): the caller waits a while before it disbelieves it.
 */
export function presenceBorneOut(
  holder: PresenceRecord | undefined,
  owned: readonly Pick<ListedLease, 'owner' | 'ownerAgrees'>[],
): boolean {
  const claimed = holder ? parseIP(holder.publicIP) : undefined;
  if (!claimed) return false;
  return owned.some((l) => {
    const ownerIP = l.ownerAgrees === true && l.owner ? parseIP(l.owner.publicIP) : undefined;
    return ownerIP !== undefined && sameIP(ownerIP, claimed);
  });
}

/** The operator-facing sentence for a clash: what happened and the fix. */
export function clashMessage(hostID: string, holder: PresenceRecord | undefined, newHostID: string): string {
  const who = holder
    ? `${holder.hostname || '?'} (public IP ${holder.publicIP || '?'}, running since ${holder.since || '?'})`
    : 'another live host';
  return (
    `host identity clash: ${who} already runs weft with host ID ${hostID} (cloned VMs share /etc/machine-id). ` +
    `This host took a new identity ${newHostID} and a subnet of its own. Fix: give each VM its own machine-id ` +
    '(rm /etc/machine-id /var/lib/dbus/machine-id; systemd-machine-id-setup; reboot) or set WEFT_HOST_ID, then restart weft'
  );
}
