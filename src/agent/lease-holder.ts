/**
 * Keeps this host's subnet lease: acquires it, renews it before it runs out, and re-acquires
 * it (preferring the same subnet) when it is lost. Renewals never overlap; a failed one is
 * retried on the next tick, with backoff, and leaves the datapath as it is. A different subnet
 * after a re-acquisition is handed to `onSubnet` (the agent gives it to the reconciler).
 */
import { formatPrefix, samePrefix } from '../core/net/cidr.js';
import { fitsRanges } from '../core/fleet/allocate.js';
import { hostAddress } from '../core/net/ip-scope.js';
import { type SubnetKey, sameSubnetKey } from '../core/flannel/subnet-key.js';
import { ETCD_BACKOFF } from '../core/base/backoff.js';
import type { LeaseState } from '../core/health/health.js';
import type { KvStore } from '../core/fleet/store.js';
import type { Logger } from '../adapters/log.js';
import type { IdentityKeeper } from './identity-keeper.js';
import type { AcquireRequest, HeldLease, LeaseKeeper } from './lease-keeper.js';
import { Backoff, message, retrying } from './retry.js';

export interface LeaseHolderDeps {
  readonly keeper: LeaseKeeper;
  readonly ids: IdentityKeeper;
  readonly store: KvStore;
  readonly request: AcquireRequest;
  readonly renewMarginMs: number;
  readonly tickMs: number;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly onSubnet: (subnets: SubnetKey) => void;
}

const MOVE =
  "the network config changed and this host's lease no longer fits it (a subnet outside the range, or an address family turned on or off); acquiring a new one that keeps every half that still fits";

export class LeaseHolder {
  private held: HeldLease | undefined;
  private lastRenewedAtMs = 0;
  /** Our key changed in etcd under us (seen by the fleet watch): check it now, not at the due time. */
  private suspect = false;
  private reacquiring = false;
  /** A failed renewal is retried no sooner than this. */
  private retryAtMs = 0;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly backoff = new Backoff(ETCD_BACKOFF);
  /** What is acquired and published: the range and the lease value change with the network config. */
  private request: AcquireRequest;
  readonly stats = { renewalsOk: 0, renewalsFailed: 0, reacquisitions: 0, valueUpdates: 0 };

  constructor(private readonly d: LeaseHolderDeps) {
    this.request = d.request;
  }

  get lease(): HeldLease | undefined {
    return this.held;
  }
  /** Times this host put its lease value back after another writer's (for /metrics). */
  get restores(): number {
    return this.d.keeper.stats.restores;
  }

  /** Acquire the first lease (waiting out an etcd outage), then keep it. */
  async acquire(): Promise<HeldLease> {
    const held = await retrying('acquire a lease', () => this.d.keeper.acquire(this.request), {
      signal: this.d.signal,
      log: this.d.log,
    });
    this.held = held;
    this.lastRenewedAtMs = Date.now();
    return held;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.tickNow();
    }, this.d.tickMs);
  }

  /**
   * Run a tick unless one (or a republish) is in flight; once started only. A write to our key
   * seen during a tick that went well is looked at right after it (a failed one waits a tick).
   */
  private tickNow(): void {
    if (!this.timer || this.inFlight) return;
    this.inFlight = this.tick().then(
      (ok) => {
        this.inFlight = undefined;
        if (ok && this.suspect) this.tickNow();
      },
      () => {
        this.inFlight = undefined;
      },
    );
  }

  /**
   * The network config changed: acquire in `range` and publish `value` from now on. A subnet
   * that still fits keeps its key: the new value is a guarded put under the same etcd lease,
   * only while the key is still ours (else the next tick re-acquires, with the new value). A
   * subnet that no longer fits is given up for a new one (core/fleet/acquire.ts: never one another
   * host holds), handed to `onSubnet`. Runs after any renewal in flight, never beside one.
   */
  async reconfigure(ranges: Pick<AcquireRequest, 'range' | 'rangeV6'>, value: string): Promise<void> {
    const { publicIP, publicIPv6, previous } = this.request;
    this.request = {
      publicIP,
      ...(publicIPv6 ? { publicIPv6 } : {}),
      ...(previous ? { previous } : {}),
      ...(ranges.range ? { range: ranges.range } : {}),
      ...(ranges.rangeV6 ? { rangeV6: ranges.rangeV6 } : {}),
      value,
    };
    while (this.inFlight) await this.inFlight;
    const work = this.republish();
    this.inFlight = work.finally(() => {
      this.inFlight = undefined;
    });
    await this.inFlight;
  }

  private async republish(): Promise<void> {
    const held = this.held;
    if (!held || this.d.signal.aborted) return;
    try {
      if (!fitsRanges(held.subnets, this.request)) {
        await this.reacquire(held, MOVE);
        return;
      }
      const updated = await this.d.keeper.updateValue(held, this.request.value);
      if (updated === 'lost') {
        this.suspect = true;
        return;
      }
      if (updated !== held) {
        this.held = updated;
        this.stats.valueUpdates++;
        this.d.log.info('lease value republished for the new network config', {
          subnet: formatPrefix(held.subnet),
          value: updated.value,
        });
      }
    } catch (e) {
      // The next tick verifies the key (and re-acquires with the new value if it must).
      this.suspect = true;
      this.reacquiring = false;
      this.d.log.warn('could not republish the lease value; retrying on the next lease tick', { error: message(e) });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    this.d.keeper.stop();
  }

  /**
   * Publish a new lease value (a rotated WireGuard key) on the held lease; a later
   * re-acquisition uses it too. A lost lease is re-acquired at the next tick with it.
   */
  async updateValue(value: string): Promise<void> {
    await this.reconfigure(this.request, value);
  }

  /**
   * Our key in etcd changed (value, revision, lease or gone): verify it now, not at the next
   * tick (peers follow a foreign value until this host puts its own back); an event during a
   * tick is verified right after it, one during a republish by the next tick.
   */
  markSuspect(): void {
    this.suspect = true;
    this.tickNow();
  }

  /** For readiness and /status. */
  state(publicIP: string, publicIPv6?: string): LeaseState | undefined {
    const h = this.held;
    return (
      h && {
        subnet: formatPrefix(h.subnet),
        publicIP,
        ...(h.subnets.v6
          ? { ipv6Subnet: formatPrefix(h.subnets.v6), ...(publicIPv6 !== undefined ? { publicIPv6 } : {}) }
          : {}),
        expiresAtMs: h.expiresAtMs,
        renewDueAtMs: h.expiresAtMs - this.d.renewMarginMs,
        lastRenewedAtMs: this.lastRenewedAtMs,
        reacquiring: this.reacquiring,
      }
    );
  }

  /** One look at the lease; false when it failed (retried on a later tick, with backoff). */
  private async tick(): Promise<boolean> {
    const held = this.held;
    if (!held) return true;
    const now = Date.now();
    // A subnet the network config no longer allows (a move that failed before) is given up now.
    const misfit = !fitsRanges(held.subnets, this.request);
    const urgent = this.suspect || this.d.ids.needsClaim || misfit;
    if (!urgent && (now < held.expiresAtMs - this.d.renewMarginMs || now < this.retryAtMs)) return true;
    // Cleared before the look, not after: a write to our key while it runs must be looked at again.
    const wasSuspect = this.suspect;
    this.suspect = false;
    try {
      // Our presence record ran out (etcd was out of reach): claim it again before renewing. A
      // clone that took it meanwhile keeps it, and this host moves to an identity of its own.
      const moved = this.d.ids.needsClaim ? await this.d.ids.claim(hostAddress(this.request), this.d.signal) : false;
      const renewed = moved || misfit ? 'lost' : await this.d.keeper.renew(held, this.request.value);
      this.backoff.reset();
      this.retryAtMs = 0;
      if (renewed !== 'lost') {
        this.held = renewed;
        this.lastRenewedAtMs = Date.now();
        this.stats.renewalsOk++;
        this.d.log.debug('lease renewed', {
          subnet: formatPrefix(held.subnet),
          expiresAt: new Date(renewed.expiresAtMs).toISOString(),
        });
        return true;
      }
      await this.reacquire(held, misfit ? MOVE : undefined);
      return true;
    } catch (e) {
      this.suspect ||= wasSuspect;
      this.stats.renewalsFailed++;
      this.reacquiring = false;
      const retryInMs = this.backoff.next();
      this.retryAtMs = now + retryInMs;
      this.d.log.warn('lease renewal failed; the datapath is left as it is; retrying', {
        error: message(e),
        expiresAt: new Date(held.expiresAtMs).toISOString(),
        retryInMs,
      });
      return false;
    }
  }

  private async reacquire(
    held: HeldLease,
    why = 'lease lost (expired, revoked, deleted or taken); re-acquiring, preferring the same subnet',
  ): Promise<void> {
    this.d.log.warn(why, { subnet: formatPrefix(held.subnet) });
    this.reacquiring = true;
    const again = await this.d.keeper.acquire({ ...this.request, previous: held.subnets });
    this.held = again;
    this.reacquiring = false;
    this.lastRenewedAtMs = Date.now();
    this.stats.reacquisitions++;
    // The old etcd lease may still be alive with nothing we want on it: do not leave it for 24 h.
    if (again.lease !== held.lease) {
      await this.d.store.revoke(held.lease).catch((e: unknown) => {
        this.d.log.warn('could not revoke the old etcd lease; it runs out by itself', {
          lease: held.lease,
          error: message(e),
        });
      });
    }
    if (sameSubnetKey(again.subnets, held.subnets)) {
      this.d.log.info('lease re-acquired with the same subnet', { subnet: again.subnetKey, how: again.how });
      return;
    }
    const kept =
      again.subnets.v4 !== undefined && held.subnets.v4 !== undefined && samePrefix(again.subnets.v4, held.subnets.v4);
    if (kept)
      this.d.log.warn(
        're-acquired with the same IPv4 subnet and a changed IPv6 half; containers need the new IPv6 bridge options',
        { was: held.subnetKey, now: again.subnetKey },
      );
    else
      this.d.log.error(
        're-acquired a DIFFERENT subnet; containers on this host must be restarted with the new bridge options',
        { was: held.subnetKey, now: again.subnetKey },
      );
    this.d.onSubnet(again.subnets);
  }
}
