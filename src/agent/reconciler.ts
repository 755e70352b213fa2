/**
 * The one reconciler (DESIGN.md): level-triggered. Anything that may matter (a peer changed,
 * the own lease changed, a netlink event on weft's objects, a timer) only pokes it; a pass then
 * observes the kernel, asks the backend for the desired state, plans and applies in batches.
 * Failed operations are logged and retried by a later pass with backoff; they never block the
 * rest of the pass. Passes never overlap; pokes during a pass coalesce into one more pass.
 */
import type { Prefix } from '../core/cidr.js';
import type { Clock } from '../core/clock.js';
import type { NetworkConfig } from '../core/config-check.js';
import type { DesiredDatapath, ObservedDatapath } from '../core/datapath.js';
import type { HostFacts } from '../core/host-facts.js';
import { type ChainSpec, type SavedTable, desiredRules, planRules } from '../core/masq.js';
import type { PeerLease } from '../core/peer-lease.js';
import { type Op, batches, opObject, plan, renderOp } from '../core/plan.js';
import type { Backend } from '../backends/types.js';
import type { Logger } from '../adapters/log.js';

/** What the reconciler converges to; replaced as a whole by the agent. */
export interface ReconcileInputs {
  readonly backend: Backend;
  readonly config: NetworkConfig;
  readonly network: Prefix;
  readonly ownSubnet: Prefix;
  readonly facts: HostFacts;
  readonly mtu: number;
  readonly vtepMAC: string;
  readonly ipMasq: boolean;
  readonly randomFully: boolean;
  /** Podman is fed (outputs.podman): keep its NAT off fabric traffic (core/masq.ts). */
  readonly keepFabricSource?: boolean;
  readonly peers: () => Iterable<PeerLease>;
}

/** The host, as the reconciler sees and changes it (adapters in production, fakes in tests). */
export interface HostPort {
  observeDatapath(device: string | undefined): Promise<ObservedDatapath>;
  applyBatch(tool: 'ip' | 'bridge', lines: readonly string[]): Promise<{ index: number; message: string }[]>;
  saveTables(tables: readonly string[]): Promise<Map<string, SavedTable>>;
  restoreRules(payload: string): Promise<void>;
  ensureForwarding(): Promise<boolean>;
}

export interface PassReport {
  readonly ops: readonly Op[];
  readonly failed: number;
  readonly rulesPayload: string;
  readonly desired: DesiredDatapath;
}

export interface ReconcilerOptions {
  readonly host: HostPort;
  readonly log: Logger;
  readonly clock: Clock;
  /** A fresh look at the kernel at least this often, even with no event (catches anything events missed). */
  readonly resyncMs?: number;
  /** iptables has no events: re-check the chains this often. */
  readonly rulesEveryMs?: number;
  /** Coalesce bursts of pokes (e.g. netlink echoes of our own batch). */
  readonly debounceMs?: number;
  /** Called after every pass (metrics). */
  readonly onPass?: (durationMs: number, ok: boolean) => void;
}

export class Reconciler {
  private inputs: ReconcileInputs | undefined;
  private inputsVersion = 0;
  /** Bumped only by setInputs: the rules depend on the own lease and config, never on peers. */
  private rulesInputsVersion = 0;
  private convergedVersion = -1;
  private rulesCheckedAt = -Infinity;
  private rulesVersion = -1;
  private pending = false;
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private periodic: NodeJS.Timeout | undefined;
  private retryMs = 0;
  private stopped = false;
  private reportedSkips = new Map<string, string>();
  /**
   * The kernel as last observed, while nothing can have changed it: taken by a pass that
   * applied nothing and saw no netlink event meanwhile, dropped by any netlink event, timer,
   * retry, new inputs or change of our own. A pass poked only by peer changes plans against
   * it instead of dumping every route, neighbour and fdb entry again (at 5,000 peers that dump
   * is most of a pass). Every other pass observes afresh, so drift is still always seen.
   */
  private cache: { device: string | undefined; observed: ObservedDatapath } | undefined;
  private fullNeeded = true;
  private lastObservedAt = -Infinity;
  private lastDesired: DesiredDatapath | undefined;
  private netlinkSeq = 0;
  readonly stats = {
    passes: 0, passFailures: 0, opsApplied: 0, opsFailed: 0, lastPassAtMs: 0, lastPassDurationMs: 0, lastPassOk: false,
    /** When the pass in flight started (0: none); the watchdog's view of a stuck loop. */
    runningSinceMs: 0,
    /** Passes planned against the cached observation (peer changes only). */
    cachedPasses: 0,
    peersProgrammed: 0, peersSkipped: 0, rulesRepairs: 0, driftRepairs: {} as Record<string, number>, lastError: '',
  };

  constructor(private readonly o: ReconcilerOptions) {}

  /** Replace the inputs (a new lease, a new peer set source, ...) and converge. */
  setInputs(inputs: ReconcileInputs): void {
    this.inputs = inputs;
    this.inputsVersion++;
    this.rulesInputsVersion++;
    this.poke('inputs');
  }

  /** Something may have changed: converge soon. Inputs that changed bump the version. */
  poke(reason: 'inputs' | 'peers' | 'netlink' | 'timer' | 'retry'): void {
    if (reason === 'peers') this.inputsVersion++;
    // A timer tick alone does not force a fresh look: the full resync has its own period.
    else if (reason !== 'timer') this.fullNeeded = true;
    if (reason === 'netlink') this.netlinkSeq++;
    if (this.stopped || !this.inputs) return;
    this.pending = true;
    if (this.running || this.timer) return;
    // A peer change is acted on at once (etcd already batches a transaction into one event);
    // netlink events come in bursts (our own batch echoes back) and are coalesced.
    const delay = reason === 'retry' ? this.retryMs : reason === 'peers' || reason === 'inputs' ? 0 : this.o.debounceMs ?? 20;
    this.timer = setTimeout(() => { this.timer = undefined; this.loop(); }, delay);
  }

  start(): void {
    const every = this.o.resyncMs ?? 30_000;
    this.periodic = setInterval(() => { this.poke('timer'); }, Math.min(every, this.o.rulesEveryMs ?? 5000));
    this.periodic.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.periodic);
    await this.running;
  }

  /** Resolves after the next pass that started after this call has finished. */
  async settle(): Promise<void> {
    while (this.running || this.pending || this.timer) await (this.running ?? new Promise((r) => setTimeout(r, 5)));
  }

  private loop(): void {
    if (this.running || this.stopped) return;
    this.running = (async () => {
      while (this.pending && !this.stopped) {
        this.pending = false;
        this.stats.runningSinceMs = this.o.clock.now();
        try {
          if (!this.inputs) break;
          const r = await this.pass(this.inputs, false);
          if (r.failed > 0) {
            this.retryMs = Math.min(Math.max(this.retryMs * 2, 250), 5000);
          } else this.retryMs = 0;
        } catch (e) {
          this.stats.lastError = e instanceof Error ? e.message : String(e);
          this.stats.lastPassOk = false;
          this.stats.passFailures++;
          this.stats.lastPassAtMs = this.o.clock.now();
          this.o.onPass?.(this.stats.lastPassAtMs - this.stats.runningSinceMs, false);
          this.o.log.warn('reconcile pass failed; retrying', { error: this.stats.lastError });
          this.retryMs = Math.min(Math.max(this.retryMs * 2, 250), 5000);
        }
        this.stats.runningSinceMs = 0;
      }
    })().finally(() => {
      this.running = undefined;
      this.stats.runningSinceMs = 0;
      if (this.retryMs > 0 && !this.stopped) this.poke('retry');
    });
  }

  /** What a pass with `inputs` would do, changing nothing (weft plan). */
  async preview(inputs: ReconcileInputs): Promise<PassReport> {
    return this.pass(inputs, true);
  }

  private async pass(inp: ReconcileInputs, dryRun: boolean): Promise<PassReport> {
    const started = this.o.clock.now();
    const version = this.inputsVersion;
    const isDrift = !dryRun && version === this.convergedVersion;
    const device = inp.backend.deviceName(inp.config);
    const cache = this.cache;
    // 0.9: a timer tick arriving a hair early must not push the resync a whole period later.
    const resyncDue = started - this.lastObservedAt >= 0.9 * (this.o.resyncMs ?? 30_000);
    const cached = !dryRun && !this.fullNeeded && !resyncDue && cache && cache.device === device ? cache.observed : undefined;
    if (!dryRun) this.fullNeeded = false;
    const seq = this.netlinkSeq;
    const observed = cached ?? await this.o.host.observeDatapath(device);
    if (cached) this.stats.cachedPasses++;
    else if (!dryRun) this.lastObservedAt = started;
    // Converged, nothing changed since, and the kernel view still clean: nothing to plan (the
    // timer pass between resyncs only checks the iptables rules).
    const quiet = cached !== undefined && version === this.convergedVersion ? this.lastDesired : undefined;
    const desired = quiet ?? inp.backend.desired({ config: inp.config, ownSubnet: inp.ownSubnet, facts: inp.facts, routes: observed.routes, peers: inp.peers(), mtu: inp.mtu, vtepMAC: inp.vtepMAC });
    const ops = quiet ? [] : plan(desired, observed, { network: inp.network, ownSubnet: inp.ownSubnet, iface: inp.facts.iface });
    if (!dryRun) this.lastDesired = desired;
    let failed = 0;
    let rulesPayload = '';
    const rulesVersion = this.rulesInputsVersion;
    const rulesDue = dryRun || this.rulesVersion !== rulesVersion || started - this.rulesCheckedAt >= 0.9 * (this.o.rulesEveryMs ?? 5000);
    if (rulesDue) {
      const want = desiredRules({ network: inp.network, ownSubnet: inp.ownSubnet, ipMasq: inp.ipMasq, randomFully: inp.randomFully, keepFabricSource: inp.keepFabricSource ?? false });
      const tables = [...new Set([...want.want, ...want.remove].map((c: ChainSpec) => c.table))];
      const planned = planRules(want, await this.o.host.saveTables(tables));
      rulesPayload = planned.payload;
      if (!dryRun) {
        if (await this.o.host.ensureForwarding()) this.o.log.warn('IPv4 forwarding was off; turned it on');
        if (planned.payload) {
          try {
            await this.o.host.restoreRules(planned.payload);
            this.stats.rulesRepairs++;
            this.o.log[this.rulesVersion === -1 ? 'info' : 'warn']('iptables rules installed', { chains: planned.repaired });
          } catch (e) {
            failed++;
            this.o.log.warn('iptables-restore failed; will retry', { error: e instanceof Error ? e.message : String(e) });
          }
        }
        if (failed === 0) { this.rulesVersion = rulesVersion; this.rulesCheckedAt = started; }
      }
    }
    if (!dryRun) failed += await this.applyOps(ops, isDrift);
    if (!dryRun) {
      if (ops.length > 0 || failed > 0) this.cache = undefined;
      else if (!cached && seq === this.netlinkSeq) this.cache = { device, observed };
    }
    if (!dryRun) this.finish(desired, ops, failed, version, started);
    return { ops, failed, rulesPayload, desired };
  }

  private async applyOps(ops: readonly Op[], isDrift: boolean): Promise<number> {
    let failed = 0;
    for (const b of batches(ops)) {
      const failures = await this.o.host.applyBatch(b.tool, b.lines);
      const bad = new Set(failures.map((f) => f.index));
      for (const f of failures) this.o.log.warn('datapath change failed; will retry', { command: `${b.tool} ${b.lines[f.index] ?? ''}`, error: f.message });
      failed += failures.length;
      b.ops.forEach((op, i) => {
        if (bad.has(i)) return;
        this.stats.opsApplied++;
        if (isDrift) {
          const k = opObject(op);
          this.stats.driftRepairs[k] = (this.stats.driftRepairs[k] ?? 0) + 1;
          this.o.log.warn('repaired drift', { change: `${renderOp(op).tool} ${renderOp(op).line}` });
        } else this.o.log.debug('applied', { change: `${renderOp(op).tool} ${renderOp(op).line}` });
      });
    }
    this.stats.opsFailed += failed;
    return failed;
  }

  private finish(desired: DesiredDatapath, ops: readonly Op[], failed: number, version: number, started: number): void {
    const now = this.o.clock.now();
    if (failed > 0) this.stats.passFailures++;
    this.o.onPass?.(now - started, failed === 0);
    Object.assign(this.stats, { passes: this.stats.passes + 1, lastPassAtMs: now, lastPassDurationMs: now - started, lastPassOk: failed === 0, peersProgrammed: desired.peersProgrammed, peersSkipped: desired.skipped.length });
    if (failed === 0) { this.convergedVersion = version; this.stats.lastError = ''; }
    const skips = new Map(desired.skipped.map((s) => [s.subnetKey, s.reason]));
    for (const [k, reason] of skips) if (this.reportedSkips.get(k) !== reason) this.o.log.warn('peer not programmed', { subnet: k, reason });
    this.reportedSkips = skips;
    if (ops.length > 0) this.o.log.info('reconciled', { changes: ops.length, failed, peers: desired.peersProgrammed, skipped: desired.skipped.length, ms: now - started });
  }
}
