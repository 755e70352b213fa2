/**
 * Acquires, renews, verifies, updates and releases this host's subnet lease in etcd.
 * Decisions come from core/fleet/acquire.ts; this file only executes them with compare-and-swap
 * transactions, so a lost race is retried with another subnet (flanneld exits, §12 item 2) and
 * no write ever overwrites a key another host holds (§12 item 18): renewal is a keepalive of
 * our own etcd lease, and a put only to restore our value on our own key under our own etcd
 * lease (core/fleet/own-lease.ts), compared on the revision seen.
 */
import { type IP, type Prefix, formatPrefix } from '../core/net/cidr.js';
import type { Clock } from '../core/base/clock.js';
import type { FamilyRange } from '../core/flannel/config-check.js';
import { WeftError } from '../core/base/errors.js';
import {
  type AcquirePlan,
  type ListedLease,
  halvesOf,
  joinListing,
  planAcquire,
  replacedEtcdLease,
} from '../core/fleet/acquire.js';
import { type SubnetKey, formatSubnetKey } from '../core/flannel/lease.js';
import { primarySubnet } from '../core/flannel/subnet-key.js';
import { hostAddress } from '../core/net/ip-scope.js';
import { encodeOwner, ownersPrefix, subnetsPrefix } from '../core/fleet/owner.js';
import { judgeOwnKey, restoreFields } from '../core/fleet/own-lease.js';
import { DEFAULT_MAX_PEERS, fleetLimits } from '../core/fleet/store-limits.js';
import type { Compare, KvStore, Listing, Op } from '../core/fleet/store.js';
import type { Logger } from '../adapters/log.js';
import { LimitedLog } from './limited-log.js';

/** A restore that loses its compare-and-swap this many times in a row is retried on the next tick. */
const RESTORE_ATTEMPTS = 3;
const RESTORED = "another writer overwrote this host's lease value under its etcd lease; restored it";

/** The lease this host holds. */
export interface HeldLease {
  /** The IPv4 half, or on an IPv6-only network the IPv6 half: the subnet logs and status name first. */
  readonly subnet: Prefix;
  /** Every half of the key: `v4` and/or `v6`, as the network config has them. */
  readonly subnets: SubnetKey;
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
  /** host.maxPeers: the listings are bounded as the fleet view's (core/fleet/store-limits.ts fleetLimits), which starts from them. */
  readonly maxPeers?: number;
}

export interface AcquireRequest {
  /** The IPv4 range (absent: an IPv6-only network). */
  readonly range?: FamilyRange;
  /** The IPv6 range (absent: an IPv4-only network). */
  readonly rangeV6?: FamilyRange;
  /** 0.0.0.0 on an IPv6-only host (as flanneld publishes it). */
  readonly publicIP: IP;
  readonly publicIPv6?: IP;
  /** The lease value to publish (flannel LeaseAttrs JSON). */
  readonly value: string;
  readonly previous?: SubnetKey;
}

export class LeaseKeeper {
  /** etcd requests made and races lost, for benchmarks and metrics. */
  readonly stats = { roundTrips: 0, lostRaces: 0, restores: 0 };
  /** Restores of this host's value after another writer's (one key: at most a line per hour in full, then summaries). */
  private readonly restoreLog: LimitedLog;

  constructor(private readonly d: LeaseKeeperDeps) {
    this.restoreLog = new LimitedLog({
      log: d.log,
      clock: d.clock,
      msg: RESTORED,
      summaryMsg: `${RESTORED} (again: not logged one by one)`,
    });
  }

  /** Stop the restore log's summary timer (writes what it held back). */
  stop(): void {
    this.restoreLog.stop();
  }

  private get subnets(): string {
    return subnetsPrefix(this.d.prefix);
  }
  private get owners(): string {
    return ownersPrefix(this.d.prefix);
  }

  /** Until the first listing is taken (the start), the last one is kept for it. */
  private keepListing = true;
  private lastSubnets: Listing | undefined;

  /** The leases and the revision of the subnets read (a create is guarded by it). */
  private async listingAt(): Promise<{ leases: ListedLease[]; revision: string }> {
    this.stats.roundTrips += 2;
    const limits = fleetLimits(this.d.maxPeers ?? DEFAULT_MAX_PEERS);
    const [subs, owners] = await Promise.all([
      this.d.store.list(this.subnets, limits),
      this.d.store.list(this.owners, limits),
    ]);
    if (this.keepListing) this.lastSubnets = subs;
    return { leases: joinListing(subs.kvs, owners.kvs, this.subnets, this.owners), revision: subs.revision };
  }

  /**
   * The last listing of `<prefix>/subnets/` (with its revision), once: the fleet view starts
   * from it and watches from the revision after it, instead of listing the whole fleet again
   * right after the acquisition listed it. Cleared when taken, so it is not kept in memory.
   */
  takeSubnetsListing(): Listing | undefined {
    const l = this.lastSubnets;
    this.lastSubnets = undefined;
    this.keepListing = false;
    return l;
  }

  /** The owner record names the host by its IPv4 public address, or on an IPv6-only host its IPv6 one. */
  private ownerValue(req: AcquireRequest): string {
    const { hostID, hostname } = this.d.identity();
    return encodeOwner({ hostID, hostname, publicIP: hostAddress(req) });
  }

  /** Acquire a lease (see core/fleet/acquire.ts for the order of preference). */
  async acquire(req: AcquireRequest): Promise<HeldLease> {
    const exclude = new Set<string>();
    let lease: string | undefined;
    try {
      // With IPv6 any lease created meanwhile fails a create (the family guard): a whole fleet
      // re-keying at once (IPv6 turned on) needs more rounds, spread out a little.
      const maxAttempts = this.d.maxAttempts ?? (req.rangeV6 ? 100 : 25);
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        const { leases: listed, revision } = await this.listingAt();
        const id = this.d.identity();
        const { plan, stale } = planAcquire({
          ...(req.range ? { range: req.range } : {}),
          ...(req.rangeV6 ? { rangeV6: req.rangeV6 } : {}),
          leases: listed,
          hostID: id.hostID,
          formerHostIDs: id.formerIDs ?? [],
          publicIP: req.publicIP,
          ...(req.publicIPv6 ? { publicIPv6: req.publicIPv6 } : {}),
          ...(req.previous ? { previous: req.previous } : {}),
          exclude,
          rng: this.d.rng,
        });
        for (const s of stale) await this.deleteStale(s);
        if (plan.kind === 'full') throw new WeftError('E_OUT_OF_SUBNETS', plan.message);
        if (lease === undefined) {
          this.stats.roundTrips++;
          lease = await this.d.store.grant(this.d.ttlSeconds);
        }
        const held = await this.tryPlan(plan, lease, req, revision);
        if (held) {
          const granted = lease;
          lease = undefined;
          const old = replacedEtcdLease(plan);
          if (old !== '0' && old !== granted) await this.revokeQuietly(old, 'the lease this host held before');
          this.d.log.info('lease acquired', {
            subnet: formatPrefix(held.subnet),
            ...(held.subnets.v4 && held.subnets.v6 ? { ipv6Subnet: formatPrefix(held.subnets.v6) } : {}),
            how: held.how,
            attempts: attempt,
            ttlSeconds: held.ttlSeconds,
            ...(plan.kind === 'create' && plan.replaces ? { replaced: plan.replaces.subnetKey } : {}),
          });
          return held;
        }
        this.stats.lostRaces++;
        // A create guarded by family (IPv6 in the network) fails whenever any lease was created
        // meanwhile, taken or not: the next listing shows what is taken, nothing is excluded.
        // Otherwise only what was chosen at random is excluded (a kept half is this host's).
        const guarded = plan.kind === 'create' && (req.rangeV6 !== undefined || plan.subnets.v6 !== undefined);
        const lost = guarded
          ? []
          : plan.kind === 'create'
            ? plan.allocated
            : [plan.lease.subnet ?? plan.lease.subnetV6].filter((p): p is Prefix => p !== undefined);
        for (const p of lost) exclude.add(formatPrefix(p));
        this.d.log.debug('lost a lease race; retrying', { subnets: lost.map(formatPrefix), attempt });
        if (guarded) await new Promise((r) => setTimeout(r, Math.floor(this.d.rng() * 10 * Math.min(attempt, 20))));
      }
      throw new WeftError(
        'E_CONFLICT',
        `could not acquire a lease after ${maxAttempts} attempts: every chosen subnet was taken concurrently`,
        { retryable: true },
      );
    } finally {
      if (lease !== undefined) await this.revokeQuietly(lease, 'a lease granted for an attempt that failed');
    }
  }

  private async tryPlan(
    plan: Exclude<AcquirePlan, { kind: 'full' }>,
    lease: string,
    req: AcquireRequest,
    listedAt: string,
  ): Promise<HeldLease | undefined> {
    const subnets = plan.kind === 'create' ? plan.subnets : halvesOf(plan.lease);
    const subnet = primarySubnet(subnets);
    if (!subnet) return undefined;
    const subnetKey = plan.kind === 'create' ? formatSubnetKey(subnets) : plan.lease.subnetKey;
    const key = this.subnets + subnetKey;
    const ownerKey = this.owners + subnetKey;
    const compares: Compare[] = [];
    const ops: Op[] = [];
    const guard = (l: ListedLease): void => {
      const o = l.ownerKv;
      compares.push(
        { key: l.kv.key, target: 'mod', equals: l.kv.modRevision },
        o
          ? { key: this.owners + l.subnetKey, target: 'mod', equals: o.modRevision }
          : { key: this.owners + l.subnetKey, target: 'version', equals: 0 },
      );
    };
    if (plan.kind === 'create') {
      // The subnet key guards a create: an owner record without its subnet key is an orphan
      // (someone deleted the key alone) and is simply overwritten.
      compares.push({ key, target: 'version', equals: 0 });
      // With IPv6 one subnet can sit in keys that differ in the other half
      // (`198.18.5.0-24&fd18:0:0:5::-64` and `198.18.5.0-24&fd18:0:0:9::-64`), so the key alone no
      // longer proves each half free (flanneld's dual-stack race, §1.6): the create also requires
      // that no key under subnets/ was created since the listing it was planned from.
      if (req.rangeV6 || subnets.v6)
        compares.push({ prefix: this.subnets, target: 'create', less: String(BigInt(listedAt) + 1n) });
      // An IPv4-only key (a host still on an IPv4-only config while the network turns
      // dual-stack): no dual-stack key may hold the same IPv4 half (`<key>&…`).
      else compares.push({ prefix: `${key}&`, target: 'none' });
      if (plan.replaces) {
        // IPv6 turned on or off: the new key keeps the old one's fitting half; the old key goes in the same moment.
        guard(plan.replaces);
        ops.push(
          { op: 'delete', key: plan.replaces.kv.key },
          { op: 'delete', key: this.owners + plan.replaces.subnetKey },
        );
      }
    } else {
      guard(plan.lease);
    }
    ops.push(
      { op: 'put', key, value: req.value, lease },
      { op: 'put', key: ownerKey, value: this.ownerValue(req), lease },
    );
    this.stats.roundTrips++;
    const res = await this.d.store.txn(compares, ops);
    if (!res.succeeded) return undefined;
    const now = this.d.clock.now();
    return {
      subnet,
      subnets,
      subnetKey,
      key,
      ownerKey,
      lease,
      value: req.value,
      modRevision: res.revision,
      ttlSeconds: this.d.ttlSeconds,
      renewedAtMs: now,
      expiresAtMs: now + this.d.ttlSeconds * 1000,
      how: plan.why,
    };
  }

  /**
   * Revoke an etcd lease nothing of ours is attached to any more. A failure is harmless (the
   * lease runs out by its TTL) and must not fail what succeeded: log it, with why, and go on.
   */
  private async revokeQuietly(lease: string, what: string): Promise<void> {
    try {
      await this.d.store.revoke(lease);
    } catch (e) {
      this.d.log.warn(`could not revoke ${what}; it runs out by its TTL`, {
        lease,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }

  private async deleteStale(l: ListedLease): Promise<void> {
    const ownerKey = this.owners + l.subnetKey;
    this.stats.roundTrips++;
    const res = await this.d.store.txn(
      [{ key: l.kv.key, target: 'mod', equals: l.kv.modRevision }],
      [
        { op: 'delete', key: l.kv.key },
        { op: 'delete', key: ownerKey },
      ],
    );
    if (res.succeeded)
      this.d.log.warn("deleted this host's lease that no longer fits the network config", { key: l.kv.key });
  }

  /**
   * Refresh the etcd lease and confirm the key is still ours (see `check`; `wanted`: the value
   * this host wants published now). 'lost' when the lease expired or the key was deleted or
   * moved to another etcd lease: the caller re-acquires (preferring the same subnet).
   */
  async renew(held: HeldLease, wanted = held.value): Promise<HeldLease | 'lost'> {
    this.stats.roundTrips++;
    const ttl = await this.d.store.keepAliveOnce(held.lease);
    if (ttl <= 0) return 'lost';
    const checked = await this.check(held, wanted);
    if (checked === 'lost') return 'lost';
    const now = this.d.clock.now();
    return { ...checked, renewedAtMs: now, expiresAtMs: now + ttl * 1000 };
  }

  /**
   * Is the key still ours, with our value (core/fleet/own-lease.ts)? 'lost' when it is deleted or on
   * another etcd lease. Another writer's value under our etcd lease is replaced by `wanted`,
   * compare-and-swap on the revision seen (a later write wins that race and is judged again),
   * and logged once per key and period. Returns the held lease as etcd now has it.
   */
  async check(held: HeldLease, wanted = held.value): Promise<HeldLease | 'lost'> {
    for (let attempt = 1; attempt <= RESTORE_ATTEMPTS; attempt++) {
      this.stats.roundTrips++;
      const { kv } = await this.d.store.get(held.key);
      const v = judgeOwnKey({ value: held.value, wanted, lease: held.lease }, kv);
      if (v.kind === 'lost') return 'lost';
      if (v.kind === 'ours') return { ...held, value: v.value, modRevision: v.modRevision };
      this.stats.roundTrips++;
      const res = await this.d.store.txn(
        [
          { key: held.key, target: 'mod', equals: v.seenRevision },
          { key: held.key, target: 'lease', equals: held.lease },
        ],
        [{ op: 'put', key: held.key, value: wanted, lease: held.lease }],
      );
      if (!res.succeeded) continue;
      if (v.foreign) {
        this.stats.restores++;
        this.restoreLog.warn(held.key, restoreFields(held.key, v.seenRevision, v.seen, res.revision));
      } else {
        this.d.log.info('lease value republished for the new network config', { key: held.key, value: wanted });
      }
      return { ...held, value: wanted, modRevision: res.revision };
    }
    throw new WeftError(
      'E_CONFLICT',
      `this host's lease key ${held.key} was written again each of ${RESTORE_ATTEMPTS} times it was being restored; retrying`,
      { retryable: true },
    );
  }

  /** Publish new attrs (e.g. a new VTEP MAC) with a compare on our own revision and lease. */
  async updateValue(held: HeldLease, value: string): Promise<HeldLease | 'lost'> {
    if (value === held.value) return held;
    this.stats.roundTrips++;
    const res = await this.d.store.txn(
      [
        { key: held.key, target: 'mod', equals: held.modRevision },
        { key: held.key, target: 'lease', equals: held.lease },
      ],
      [{ op: 'put', key: held.key, value, lease: held.lease }],
    );
    return res.succeeded ? { ...held, value, modRevision: res.revision } : 'lost';
  }
}
