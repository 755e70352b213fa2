/**
 * This host's identity in the fleet: the host ID it leases under and the presence record that
 * proves no other live machine uses it (core/fleet/presence.ts). A clash (a cloned VM holding the
 * record) moves this host to a new identity of its own, kept in host.stateDir/host-id; losing
 * the record (its etcd lease ran out while etcd was out of reach) is remembered here, and the
 * lease holder claims it again before it next touches the subnet lease.
 */
import { clashMessage } from '../core/fleet/presence.js';
import type { KvStore } from '../core/fleet/store.js';
import { type HostIdentity, replaceIdentity } from '../adapters/identity.js';
import type { Logger } from '../adapters/log.js';
import { Presence } from './presence.js';

export class IdentityKeeper {
  private identity: HostIdentity;
  /** The last clash with a cloned host found, for /status and /readyz ('' when none). */
  private clash = '';
  /** The presence record was lost: claim it again before renewing the lease. */
  private lost = false;
  private readonly presence: Presence;

  constructor(
    initial: HostIdentity,
    private readonly d: { store: KvStore; prefix: string; stateDir: string; log: Logger },
  ) {
    this.identity = initial;
    this.presence = new Presence({
      store: d.store,
      prefix: d.prefix,
      log: d.log,
      onLost: () => {
        this.lost = true;
      },
    });
  }

  get current(): HostIdentity {
    return this.identity;
  }
  /** The presence record must be claimed again (see class comment). */
  get needsClaim(): boolean {
    return this.lost;
  }

  /**
   * Hold this identity's presence record. When a live process of another boot holds it (a
   * cloned VM), take a new identity of our own and claim that: this host never uses the subnet
   * the other holds. Returns true when the identity changed.
   */
  async claim(publicIP: string, signal: AbortSignal): Promise<boolean> {
    let changed = false;
    for (;;) {
      const id = this.identity;
      const r = await this.presence.claim(id, publicIP, signal);
      if (r.ok) {
        this.lost = false;
        return changed;
      }
      const next = await replaceIdentity(this.d.stateDir, id);
      this.clash = clashMessage(id.hostID, r.holder, next.hostID);
      this.d.log.error(this.clash, {
        hostID: id.hostID,
        newHostID: next.hostID,
        holderBoot: r.holder?.bootID ?? '',
        stateFile: `${this.d.stateDir}/host-id`,
      });
      this.identity = next;
      changed = true;
    }
  }

  snapshot(): { hostID: string; source: string; clash: string } {
    return { hostID: this.identity.hostID, source: this.identity.source, clash: this.clash };
  }

  /** Revoke the presence record (a clean stop: the next start claims it at once). */
  async release(): Promise<void> {
    await this.presence.release();
  }
}
