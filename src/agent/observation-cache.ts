/**
 * The kernel as last observed, while nothing can have changed it: taken by a pass that applied
 * nothing and saw no netlink event meanwhile, dropped by any netlink event, timer, retry, new
 * inputs or change of our own. A pass poked only by peer changes plans against it instead of
 * dumping every route, neighbour and fdb entry again (at 5,000 peers that dump is most of a
 * pass). Every other pass observes afresh, so drift is still always seen.
 */
import type { ObservedDatapath } from '../core/datapath.js';

export class ObservationCache {
  private kept: { devices: string; observed: ObservedDatapath } | undefined;
  private fullNeeded = true;
  private lastFullAtMs = -Infinity;
  /** Counts netlink events: an event during an observation makes that observation suspect. */
  private netlinkSeq = 0;

  constructor(private readonly resyncMs: number) {}

  /** Something other than a peer change happened: the next pass looks at the kernel afresh. */
  invalidate(netlink: boolean): void {
    this.fullNeeded = true;
    if (netlink) this.netlinkSeq++;
  }

  /**
   * The cached view a pass starting at `nowMs` may plan against, or undefined (observe afresh).
   * Consumes the "full look needed" flag: call once per pass. `seq` marks the observation.
   */
  take(devices: readonly string[], nowMs: number): { cached: ObservedDatapath | undefined; seq: number } {
    // 0.9: a timer tick arriving a hair early must not push the resync a whole period later.
    const resyncDue = nowMs - this.lastFullAtMs >= 0.9 * this.resyncMs;
    const kept = this.kept;
    const cached = !this.fullNeeded && !resyncDue && kept && kept.devices === devices.join(' ') ? kept.observed : undefined;
    this.fullNeeded = false;
    return { cached, seq: this.netlinkSeq };
  }

  /** A fresh observation was taken at `atMs`. */
  observed(atMs: number): void { this.lastFullAtMs = atMs; }

  /** After the pass: keep a clean fresh view (nothing applied, no event since `seq`), else drop it. */
  settle(r: { devices: readonly string[]; observed: ObservedDatapath; fresh: boolean; changed: boolean; seq: number }): void {
    if (r.changed) this.kept = undefined;
    else if (r.fresh && r.seq === this.netlinkSeq) this.kept = { devices: r.devices.join(' '), observed: r.observed };
  }
}
