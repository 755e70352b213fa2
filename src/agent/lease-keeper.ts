/**
 * Acquires, renews, verifies, updates and releases this host's subnet lease in etcd.
 * Decisions come from core/acquire.ts; this file only executes them with compare-and-swap
 * transactions, so a lost race is retried with another subnet (flanneld exits, §12 item 2) and
 * no write ever overwrites a key another host holds (§12 item 18): renewal is a keepalive of
 * our own etcd lease, never a put.
 */
import { type IP, type Prefix, formatIP, formatPrefix } from '../core/cidr.js';
import type { Clock } from '../core/clock.js';
import type { FamilyRange } from '../core/config-check.js';
import { WeftError } from '../core/errors.js';
import { type AcquirePlan, type ListedLease, joinListing, planAcquire } from '../core/acquire.js';
import { formatSubnetKey } from '../core/lease.js';
import { encodeOwner, ownersPrefix, subnetsPrefix } from '../core/owner.js';
import type { Compare, KvStore, Op } from '../core/store.js';
import type { Logger } from '../adapters/log.js';

/** The lease this host holds. */
export interface HeldLease {
  readonly subnet: Prefix;
  readonly subnetKey: string;
  readonly key: string;
  readonly ownerKey: string;
  /** etcd lease ID the keys are attached to. */
  readonly lease: string;
  readonly value: string;
  readonly modRevision: string;
  readonly ttlSeconds: number;
  readonly renewedAtMs: number;
  readonly expiresAtMs: number;
  /** How it was obtained: owned, previous, public-ip, allocated. */
  readonly how: string;
}

export interface Identity {
  readonly hostID: string;
  readonly hostname: string;
  /** IDs this host published before (see adapters/identity.ts): leases under them are its own. */
  readonly formerIDs?: readonly string[];
}

export interface LeaseKeeperDeps {
  readonly store: KvStore;
  readonly prefix: string;
  /** This host's identity now (it changes when a clash with a cloned host is found). */
  readonly identity: () => Identity;
  readonly ttlSeconds: number;
  readonly clock: Clock;
  readonly rng: () => number;
  readonly log: Logger;
  readonly maxAttempts?: number;
}

export interface AcquireRequest {
  readonly range: FamilyRange;
  readonly publicIP: IP;
  /** The lease value to publish (flannel LeaseAttrs JSON). */
  readonly value: string;
  readonly previous?: Prefix;
}

export class LeaseKeeper {
  /** etcd requests made and races lost, for benchmarks and metrics. */
  readonly stats = { roundTrips: 0, lostRaces: 0 };

  constructor(private readonly d: LeaseKeeperDeps) {}

  private get subnets(): string { return subnetsPrefix(this.d.prefix); }
  private get owners(): string { return ownersPrefix(this.d.prefix); }

  private async listing(): Promise<ListedLease[]> {
    this.stats.roundTrips += 2;
    const [subs, owners] = await Promise.all([this.d.store.list(this.subnets), this.d.store.list(this.owners)]);
    return joinListing(subs.kvs, owners.kvs, this.subnets, this.owners);
  }

  private ownerValue(publicIP: IP): string {
    const { hostID, hostname } = this.d.identity();
    return encodeOwner({ hostID, hostname, publicIP: formatIP(publicIP) });
  }

  /** Acquire a lease (see core/acquire.ts for the order of preference). */
  async acquire(req: AcquireRequest): Promise<HeldLease> {
    const exclude = new Set<string>();
    let lease: string | undefined;
    try {
      for (let attempt = 1; attempt <= (this.d.maxAttempts ?? 25); attempt++) {
        const listed = await this.listing();
        const id = this.d.identity();
        const { plan, stale } = planAcquire({ range: req.range, leases: listed, hostID: id.hostID, formerHostIDs: id.formerIDs ?? [], publicIP: req.publicIP, ...(req.previous ? { previous: req.previous } : {}), exclude, rng: this.d.rng });
        for (const s of stale) await this.deleteStale(s);
        if (plan.kind === 'full') throw new WeftError('E_OUT_OF_SUBNETS', plan.message);
        if (lease === undefined) { this.stats.roundTrips++; lease = await this.d.store.grant(this.d.ttlSeconds); }
        const held = await this.tryPlan(plan, lease, req);
        if (held) {
          const granted = lease;
          lease = undefined;
          const old = plan.kind === 'reuse' ? plan.lease.kv.lease : '0';
          if (old !== '0' && old !== granted) await this.revokeQuietly(old, 'the lease this host held before');
          this.d.log.info('lease acquired', { subnet: formatPrefix(held.subnet), how: held.how, attempts: attempt, ttlSeconds: held.ttlSeconds });
          return held;
        }
        this.stats.lostRaces++;
        const lost = plan.kind === 'create' ? plan.subnet : plan.lease.subnet;
        if (lost) exclude.add(formatPrefix(lost));
        this.d.log.debug('lost a lease race; retrying with another subnet', { subnet: lost ? formatPrefix(lost) : undefined, attempt });
      }
      throw new WeftError('E_CONFLICT', `could not acquire a lease after ${this.d.maxAttempts ?? 25} attempts: every chosen subnet was taken concurrently`, { retryable: true });
    } finally {
      if (lease !== undefined) await this.revokeQuietly(lease, 'a lease granted for an attempt that failed');
    }
  }

  private async tryPlan(plan: Exclude<AcquirePlan, { kind: 'full' }>, lease: string, req: AcquireRequest): Promise<HeldLease | undefined> {
    const subnet = plan.kind === 'create' ? plan.subnet : plan.lease.subnet;
    if (!subnet) return undefined;
    const subnetKey = formatSubnetKey({ v4: subnet });
    const key = this.subnets + subnetKey;
    const ownerKey = this.owners + subnetKey;
    let compares: Compare[];
    if (plan.kind === 'create') {
      // Only the subnet key guards a create: an owner record without its subnet key is an orphan
      // (someone deleted the key alone) and is simply overwritten.
      compares = [{ key, target: 'version', equals: 0 }];
    } else {
      const o = plan.lease.ownerKv;
      compares = [{ key, target: 'mod', equals: plan.lease.kv.modRevision }, o ? { key: ownerKey, target: 'mod', equals: o.modRevision } : { key: ownerKey, target: 'version', equals: 0 }];
    }
    const ops: Op[] = [{ op: 'put', key, value: req.value, lease }, { op: 'put', key: ownerKey, value: this.ownerValue(req.publicIP), lease }];
    this.stats.roundTrips++;
    const res = await this.d.store.txn(compares, ops);
    if (!res.succeeded) return undefined;
    const now = this.d.clock.now();
    return { subnet, subnetKey, key, ownerKey, lease, value: req.value, modRevision: res.revision, ttlSeconds: this.d.ttlSeconds, renewedAtMs: now, expiresAtMs: now + this.d.ttlSeconds * 1000, how: plan.why };
  }

  /**
   * Revoke an etcd lease nothing of ours is attached to any more. A failure is harmless (the
   * lease runs out by its TTL) and must not fail what succeeded: log it, with why, and go on.
   */
  private async revokeQuietly(lease: string, what: string): Promise<void> {
    try {
      await this.d.store.revoke(lease);
    } catch (e) {
      this.d.log.warn(`could not revoke ${what}; it runs out by its TTL`, { lease, error: e instanceof Error ? e.message : String(e) });
    }
  }

  private async deleteStale(l: ListedLease): Promise<void> {
    const ownerKey = this.owners + l.subnetKey;
    this.stats.roundTrips++;
    const res = await this.d.store.txn([{ key: l.kv.key, target: 'mod', equals: l.kv.modRevision }], [{ op: 'delete', key: l.kv.key }, { op: 'delete', key: ownerKey }]);
    if (res.succeeded) this.d.log.warn('deleted this host\'s lease that no longer fits the network config', { key: l.kv.key });
  }

  /**
   * Refresh the etcd lease and confirm the key is still ours. 'lost' when the lease expired or
   * the key was deleted or taken: the caller re-acquires (preferring the same subnet).
   */
  async renew(held: HeldLease): Promise<HeldLease | 'lost'> {
    this.stats.roundTrips++;
    const ttl = await this.d.store.keepAliveOnce(held.lease);
    if (ttl <= 0) return 'lost';
    if ((await this.check(held)) === 'lost') return 'lost';
    const now = this.d.clock.now();
    return { ...held, renewedAtMs: now, expiresAtMs: now + ttl * 1000 };
  }

  /** Is the key still attached to our etcd lease (and so ours)? */
  async check(held: HeldLease): Promise<'ok' | 'lost'> {
    this.stats.roundTrips++;
    const { kv } = await this.d.store.get(held.key);
    return kv && kv.lease === held.lease ? 'ok' : 'lost';
  }

  /** Publish new attrs (e.g. a new VTEP MAC) with a compare on our own revision and lease. */
  async updateValue(held: HeldLease, value: string): Promise<HeldLease | 'lost'> {
    if (value === held.value) return held;
    this.stats.roundTrips++;
    const res = await this.d.store.txn(
      [{ key: held.key, target: 'mod', equals: held.modRevision }, { key: held.key, target: 'lease', equals: held.lease }],
      [{ op: 'put', key: held.key, value, lease: held.lease }],
    );
    return res.succeeded ? { ...held, value, modRevision: res.revision } : 'lost';
  }

  /** Delete this host's lease (compare on ownership) and revoke it. Returns the subnet released. */
  async release(): Promise<Prefix | undefined> {
    const id = this.d.identity();
    const ours = new Set([id.hostID, ...(id.formerIDs ?? [])]);
    const mine = (await this.listing()).filter((l) => l.owner !== undefined && ours.has(l.owner.hostID));
    for (const l of mine) {
      const ownerKv = l.ownerKv;
      if (!ownerKv) continue;
      const res = await this.d.store.txn(
        [{ key: l.kv.key, target: 'mod', equals: l.kv.modRevision }, { key: ownerKv.key, target: 'value', equals: ownerKv.value }],
        [{ op: 'delete', key: l.kv.key }, { op: 'delete', key: ownerKv.key }],
      );
      if (!res.succeeded) throw new WeftError('E_CONFLICT', `lease ${l.kv.key} changed while releasing it; run weft release again`, { retryable: true });
      if (l.kv.lease !== '0') await this.revokeQuietly(l.kv.lease, 'the released lease');
      this.d.log.info('lease released', { key: l.kv.key });
    }
    return mine[0]?.subnet;
  }
}
