/**
 * The presence record of this weft process (core/fleet/presence.ts explains why): claimed before the
 * lease, on its own short etcd lease kept alive every ttl/3, revoked on a clean stop so a
 * restart claims it at once. Losing it (the lease ran out while etcd was unreachable) is
 * reported through `onLost`; the agent claims it again before touching its subnet lease. A
 * live-looking record that no lease of the identity bears out is forged and taken over.
 */
import { randomBytes } from 'node:crypto';
import { WeftError } from '../core/base/errors.js';
import { type ListedLease, joinListing } from '../core/fleet/acquire.js';
import { decodeOwner, ownersPrefix, subnetsPrefix } from '../core/fleet/owner.js';
import {
  type PresenceRecord,
  decodePresence,
  encodePresence,
  judgeHolder,
  presenceBorneOut,
  presencePrefix,
} from '../core/fleet/presence.js';
import type { KvStore } from '../core/fleet/store.js';
import type { Logger } from '../adapters/log.js';
import { sleep } from './retry.js';
import { DEFAULT_MAX_PEERS, fleetLimits } from '../core/fleet/store-limits.js';

/** A writer can forge many owner records naming one host: at most this many of their leases are read. */
const MAX_OWNED = 8;
const NOT_BORNE_OUT =
  "a presence record claims this host's identity and is kept alive, but no lease of this identity bears it out (an owner record with its public IP); not believed: took it over";

export interface PresenceDeps {
  readonly store: KvStore;
  readonly prefix: string;
  readonly log: Logger;
  /** TTL of the presence lease; a live holder is recognised within about ttl/3 + 1 s. */
  readonly ttlSeconds?: number;
  readonly onLost: () => void;
}

export type ClaimResult = { readonly ok: true } | { readonly ok: false; readonly holder: PresenceRecord | undefined };

export class Presence {
  /** Random per process: two processes of one boot are told apart by it. */
  readonly instance = randomBytes(8).toString('hex');
  private lease: string | undefined;
  private key: string | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly d: PresenceDeps) {}

  private get ttl(): number {
    return this.d.ttlSeconds ?? 15;
  }

  /**
   * Claim `<prefix>/weft/hosts/<hostID>` for this process. Waits at most about ttl + 3 s to
   * tell a dead holder from a live one. `ok: false` is a clash: a live process of another boot
   * holds the identity. etcd errors propagate (the caller retries).
   */
  async claim(
    who: { hostID: string; hostname: string; bootID: string },
    publicIP: string,
    signal: AbortSignal,
  ): Promise<ClaimResult> {
    const { store } = this.d;
    const key = presencePrefix(this.d.prefix) + who.hostID;
    if (this.key !== undefined && this.key !== key) await this.release();
    this.lease ??= await store.grant(this.ttl);
    const lease = this.lease;
    const value = encodePresence({
      bootID: who.bootID,
      instance: this.instance,
      hostname: who.hostname,
      publicIP,
      since: new Date().toISOString(),
    });
    const samples: number[] = [];
    const deadline = Date.now() + (this.ttl + 3) * 1000;
    /** The record was kept alive, but no lease of this identity bore it out (yet). */
    let doubted = false;
    while (!signal.aborted) {
      const { kv } = await store.get(key);
      if (kv?.lease === lease) return this.held(key);
      if (!kv) {
        const r = await store.txn([{ key, target: 'version', equals: 0 }], [{ op: 'put', key, value, lease }]);
        if (r.succeeded) return this.held(key);
        continue;
      }
      const holder = decodePresence(kv.value);
      samples.push(kv.lease === '0' ? -1 : await store.timeToLive(kv.lease));
      // Past the deadline the holder neither kept its lease alive nor let it run out (a record
      // someone wrote with a long lease by hand), or it is kept alive but no lease bears it out
      // (a forged one). Take it rather than wait for ever.
      const verdict = Date.now() > deadline ? 'take' : judgeHolder(holder, who.bootID, samples);
      if (verdict === 'clash') {
        if (presenceBorneOut(holder, await this.leasesOf(who.hostID))) return { ok: false, holder };
        doubted = true;
      }
      if (verdict === 'take') {
        const r = await store.txn([{ key, target: 'mod', equals: kv.modRevision }], [{ op: 'put', key, value, lease }]);
        if (r.succeeded) {
          const from = holder ? `${holder.hostname} boot ${holder.bootID}` : 'an unreadable record';
          if (doubted) this.d.log.warn(NOT_BORNE_OUT, { key, from, claimedPublicIP: holder?.publicIP ?? '' });
          else this.d.log.info("took over this host's presence record", { key, from });
          return this.held(key);
        }
        continue;
      }
      await sleep(1000, signal);
      // Waiting can outlast our own lease's TTL (the deadline is ttl + 3 s): keep it alive for the put.
      await store.keepAliveOnce(lease);
    }
    throw new WeftError('E_ABORTED', 'stopped while claiming the host identity');
  }

  /** The leases whose owner record names `hostID` (the owner records first: they are small; at most MAX_OWNED). */
  private async leasesOf(hostID: string): Promise<ListedLease[]> {
    const owners = ownersPrefix(this.d.prefix);
    const subnets = subnetsPrefix(this.d.prefix);
    const named = (await this.d.store.list(owners, fleetLimits(DEFAULT_MAX_PEERS))).kvs
      .filter((kv) => decodeOwner(kv.value)?.hostID === hostID)
      .slice(0, MAX_OWNED);
    const subs = await Promise.all(named.map((o) => this.d.store.get(subnets + o.key.slice(owners.length))));
    return joinListing(
      subs.flatMap((r) => (r.kv ? [r.kv] : [])),
      named,
      subnets,
      owners,
    );
  }

  private held(key: string): ClaimResult {
    this.key = key;
    if (!this.timer)
      this.timer = setInterval(
        () => {
          void this.keepAlive();
        },
        Math.max(1000, (this.ttl * 1000) / 3),
      );
    return { ok: true };
  }

  private async keepAlive(): Promise<void> {
    const lease = this.lease;
    if (lease === undefined) return;
    let ttl: number;
    try {
      ttl = await this.d.store.keepAliveOnce(lease);
    } catch (e) {
      // etcd unreachable: the next tick retries; running out is what onLost reports.
      this.d.log.debug('presence keepalive failed; retrying on the next tick', {
        error: e instanceof Error ? e.message : String(e),
      });
      return;
    }
    if (ttl > 0 || lease !== this.lease) return;
    this.d.log.warn("lost this host's presence record (its etcd lease ran out); claiming it again", { key: this.key });
    this.stopTimer();
    this.lease = undefined;
    this.key = undefined;
    this.d.onLost();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stop keeping the record alive and revoke it, so the next start claims it at once. */
  async release(): Promise<void> {
    this.stopTimer();
    const lease = this.lease;
    this.lease = undefined;
    this.key = undefined;
    if (lease !== undefined)
      await this.d.store.revoke(lease).catch((e: unknown) => {
        this.d.log.debug('could not revoke the presence lease; it runs out by itself', { error: String(e) });
      });
  }
}
