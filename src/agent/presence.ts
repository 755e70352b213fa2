/**
 * The presence record of this weft process (core/presence.ts explains why): claimed before the
 * lease, on its own short etcd lease kept alive every ttl/3, revoked on a clean stop so a
 * restart claims it at once. Losing it (the lease ran out while etcd was unreachable) is
 * reported through `onLost`; the agent claims it again before touching its subnet lease.
 */
import { randomBytes } from 'node:crypto';
import { WeftError } from '../core/errors.js';
import { type PresenceRecord, decodePresence, encodePresence, judgeHolder, presencePrefix } from '../core/presence.js';
import type { KvStore } from '../core/store.js';
import type { Logger } from '../adapters/log.js';
import { sleep } from './retry.js';

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

  private get ttl(): number { return this.d.ttlSeconds ?? 15; }

  /**
   * Claim `<prefix>/weft/hosts/<hostID>` for this process. Waits at most about ttl + 3 s to
   * tell a dead holder from a live one. `ok: false` is a clash: a live process of another boot
   * holds the identity. etcd errors propagate (the caller retries).
   */
  async claim(who: { hostID: string; hostname: string; bootID: string }, publicIP: string, signal: AbortSignal): Promise<ClaimResult> {
    const { store } = this.d;
    const key = presencePrefix(this.d.prefix) + who.hostID;
    if (this.key !== undefined && this.key !== key) await this.release();
    this.lease ??= await store.grant(this.ttl);
    const lease = this.lease;
    const value = encodePresence({ bootID: who.bootID, instance: this.instance, hostname: who.hostname, publicIP, since: new Date().toISOString() });
    const samples: number[] = [];
    const deadline = Date.now() + (this.ttl + 3) * 1000;
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
      // Past the deadline the holder neither kept its lease alive nor let it run out: a record
      // someone wrote with a long lease by hand. Take it rather than wait for ever.
      const verdict = Date.now() > deadline ? 'take' : judgeHolder(holder, who.bootID, samples);
      if (verdict === 'clash') return { ok: false, holder };
      if (verdict === 'take') {
        const r = await store.txn([{ key, target: 'mod', equals: kv.modRevision }], [{ op: 'put', key, value, lease }]);
        if (r.succeeded) {
          this.d.log.info('took over this host\'s presence record', { key, from: holder ? `${holder.hostname} boot ${holder.bootID}` : 'an unreadable record' });
          return this.held(key);
        }
        continue;
      }
      await sleep(1000, signal);
    }
    throw new WeftError('E_ABORTED', 'stopped while claiming the host identity');
  }

  private held(key: string): ClaimResult {
    this.key = key;
    if (!this.timer) this.timer = setInterval(() => { void this.keepAlive(); }, Math.max(1000, (this.ttl * 1000) / 3));
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
      this.d.log.debug('presence keepalive failed; retrying on the next tick', { error: e instanceof Error ? e.message : String(e) });
      return;
    }
    if (ttl > 0 || lease !== this.lease) return;
    this.d.log.warn('lost this host\'s presence record (its etcd lease ran out); claiming it again', { key: this.key });
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
    if (lease !== undefined) await this.d.store.revoke(lease).catch((e: unknown) => { this.d.log.debug('could not revoke the presence lease; it runs out by itself', { error: String(e) }); });
  }
}
