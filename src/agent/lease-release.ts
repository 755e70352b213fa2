/**
 * `weft release`'s work: delete this host's leases (compare on ownership) and revoke them. A
 * lease is this host's only when core/fleet/own-lease.ts isOwnLease says so: an owner record naming
 * this host is borne out by the lease's value and this host's address, or by the host's own
 * subnet file or cached state. A forged owner record naming this host must not make it delete
 * another host's lease: such leases are left alone and returned as `refused`.
 */
import type { Prefix } from '../core/net/cidr.js';
import { WeftError } from '../core/base/errors.js';
import { type ListedLease, joinListing } from '../core/fleet/acquire.js';
import { type SelfEvidence, isOwnLease } from '../core/fleet/own-lease.js';
import { ownersPrefix, subnetsPrefix } from '../core/fleet/owner.js';
import type { KvStore } from '../core/fleet/store.js';
import type { Logger } from '../adapters/log.js';
import type { Identity } from './lease-keeper.js';
import { DEFAULT_MAX_PEERS, fleetLimits } from '../core/fleet/store-limits.js';

export interface ReleaseDeps {
  readonly store: KvStore;
  readonly prefix: string;
  readonly identity: Identity;
  readonly log: Logger;
}

/** What `releaseOwnLeases` did: the subnet released (the first, when several), and the leases left alone. */
export interface Released {
  readonly released: Prefix | undefined;
  readonly refused: readonly ListedLease[];
}

export async function releaseOwnLeases(d: ReleaseDeps, self: Omit<SelfEvidence, 'hostIDs'>): Promise<Released> {
  const { store, prefix, identity, log } = d;
  const evidence: SelfEvidence = { ...self, hostIDs: [identity.hostID, ...(identity.formerIDs ?? [])] };
  // Bounded as the agents' listings (a lease or an owner record is at most 4 KiB).
  const limits = fleetLimits(DEFAULT_MAX_PEERS);
  const [subs, owners] = await Promise.all([
    store.list(subnetsPrefix(prefix), limits),
    store.list(ownersPrefix(prefix), limits),
  ]);
  const named = joinListing(subs.kvs, owners.kvs, subnetsPrefix(prefix), ownersPrefix(prefix)).filter(
    (l) => l.owner !== undefined && evidence.hostIDs.includes(l.owner.hostID),
  );
  const mine = named.filter((l) => isOwnLease(l, evidence));
  for (const l of mine) {
    const ownerKv = l.ownerKv;
    if (!ownerKv) continue;
    const res = await store.txn(
      [
        { key: l.kv.key, target: 'mod', equals: l.kv.modRevision },
        { key: ownerKv.key, target: 'value', equals: ownerKv.value },
      ],
      [
        { op: 'delete', key: l.kv.key },
        { op: 'delete', key: ownerKv.key },
      ],
    );
    if (!res.succeeded)
      throw new WeftError('E_CONFLICT', `lease ${l.kv.key} changed while releasing it; run weft release again`, {
        retryable: true,
      });
    // The owner record's etcd lease is this host's; the key's may be a writer's (core/fleet/acquire.ts replacedEtcdLease).
    if (ownerKv.lease !== '0') {
      await store.revoke(ownerKv.lease).catch((e: unknown) => {
        log.warn('could not revoke the released lease; it runs out by its TTL', {
          lease: ownerKv.lease,
          error: e instanceof Error ? e.message : String(e),
        });
      });
    }
    log.info('lease released', { key: l.kv.key });
  }
  return { released: mine[0]?.subnet ?? mine[0]?.subnetV6, refused: named.filter((l) => !mine.includes(l)) };
}
