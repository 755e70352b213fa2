/**
 * The one reconciler (DESIGN.md): level-triggered. Anything that may matter (a peer changed,
 * the own lease changed, a netlink event on weft's objects, a timer) only pokes it; a pass then
 * looks at the host, asks the backend for the desired state, plans and applies. Everything
 * weft owns on the host goes through it: the datapath (every pass), and on the slower check
 * interval the iptables and ip6tables rules and forwarding of each family served, and the output files (subnet.env, docker
 * options, ...), each read back and rewritten when missing or different. Failures are logged
 * and retried by a later pass with backoff; they never block the rest of the pass. Scheduling
 * is agent/pass-loop.ts; keeping the work per change O(1) (the kernel state followed through
 * netlink events, the desired state per changed lease, only touched keys planned) is
 * agent/datapath-tracker.ts.
 */
import type { Family } from '../core/net/cidr.js';
import type { Clock } from '../core/base/clock.js';
import {
  type DesiredDatapath,
  type ObservedDatapath,
  type ObservedRoute,
  describeRoute,
} from '../core/datapath/datapath.js';
import type { FileWrite, ObservedFile } from '../core/outputs/host-files.js';
import {
  type DesiredHost,
  type FamilyRules,
  type HostPlan,
  type ObservedHost,
  payloadOf,
  planHost,
  tablesOf,
} from '../core/datapath/host-state.js';
import { type SavedTable, desiredRules } from '../core/datapath/masq.js';
import { type Batch, type Op, opObject, stages } from '../core/datapath/plan.js';
import type { Logger } from '../adapters/log.js';
import {
  type HostPort,
  type PassReport,
  type ReconcileInputs,
  familiesOf,
  networksOf,
  observedDevices,
  ownSubnetsOf,
} from './host-port.js';
import { CheckSchedule } from '../core/datapath/check-schedule.js';
import { DatapathTracker } from './datapath-tracker.js';
import { PassLoop } from './pass-loop.js';
import { message } from './retry.js';

export type { HostPort, PassReport, ReconcileInputs } from './host-port.js';

export interface ReconcilerOptions {
  readonly host: HostPort;
  readonly log: Logger;
  readonly clock: Clock;
  /** A fresh look at the kernel at least this often, even with no event (catches anything events missed). */
  readonly resyncMs?: number;
  /** Files and forwarding have no events: re-check them this often (the drift-check interval); the rules too when their changes are not followed. */
  readonly rulesEveryMs?: number;
  /**
   * While ruleset changes are followed (`rulesEvent`, from xtables-monitor), the rules are read
   * on each change and, as a safety net, at least this often (default 60 s).
   */
  readonly rulesWatchedEveryMs?: number;
  /** Coalesce bursts of pokes (e.g. netlink echoes of our own batch). */
  readonly debounceMs?: number;
  /** Called after every pass (metrics). */
  readonly onPass?: (durationMs: number, ok: boolean) => void;
}

/** The chains of every family served (IPv4 first): a family not served is never looked at (a v4-only host never runs ip6tables). */
const rulesOf = (inp: ReconcileInputs): FamilyRules[] =>
  familiesOf(inp).map((f) => {
    const family = f.network.ip.family;
    const randomFully = family === 6 ? (inp.randomFullyV6 ?? inp.randomFully) : inp.randomFully;
    return {
      family,
      rules: desiredRules({
        network: f.network,
        ownSubnet: f.subnet,
        ipMasq: inp.ipMasq,
        randomFully,
        keepFabricSource: inp.keepFabricSource ?? false,
      }),
    };
  });

/** How each family's tools are named in logs and errors. */
const FAMILY = {
  4: { ip: 'IPv4', restore: 'iptables-restore', save: 'iptables-save', installed: 'iptables rules installed' },
  6: { ip: 'IPv6', restore: 'ip6tables-restore', save: 'ip6tables-save', installed: 'ip6tables rules installed' },
} as const;

/** A look at the host; `tableErrors`: the families whose tables could not be read (their rules wait for the next check). */
type Look = ObservedHost & { readonly tableErrors?: ReadonlyMap<Family, string> };

const ownershipOf = (inp: ReconcileInputs) => ({
  networks: networksOf(inp),
  ownSubnets: familiesOf(inp).map((f) => f.subnet),
  iface: inp.facts.iface,
  formerSubnets: inp.formerSubnets ?? [],
});
const desiredHostOf = (inp: ReconcileInputs, datapath: DesiredDatapath): DesiredHost => ({
  datapath,
  rules: rulesOf(inp),
  files: inp.files ?? [],
  own: ownershipOf(inp),
});
/** Stands for the datapath in a rules-and-files look (the tracker plans the datapath). */
const EMPTY_DATAPATH: ObservedDatapath = { devices: new Map(), routes: [], neighs: [], fdb: [] };
const isObserved = (x: ObservedDatapath | readonly string[]): x is ObservedDatapath => !Array.isArray(x);

/** One failed line of a batch (HostPort.applyBatch). */
type BatchFailure = Awaited<ReturnType<HostPort['applyBatch']>>[number];

export class Reconciler {
  private inputs: ReconcileInputs | undefined;
  private inputsVersion = 0;
  /** Bumped only by setInputs: rules and files depend on the own lease and config, never on peers. */
  private checksInputsVersion = 0;
  private convergedVersion = -1;
  private readonly schedule: CheckSchedule;
  private reportedSkips = new Map<string, string>();
  private readonly loop: PassLoop;
  private readonly tracker: DatapathTracker;
  readonly stats = {
    passes: 0,
    passFailures: 0,
    opsApplied: 0,
    opsFailed: 0,
    lastPassAtMs: 0,
    lastPassDurationMs: 0,
    lastPassOk: false,
    /** Passes planned against the kernel state followed through netlink events (no fresh look). */
    cachedPasses: 0,
    peersProgrammed: 0,
    peersSkipped: 0,
    rulesRepairs: 0,
    filesWritten: 0,
    driftRepairs: {} as Record<string, number>,
    lastError: '',
    /** Output files that could not be written, with why (readiness is false while any is). */
    filesFailing: {} as Record<string, string>,
    /** Peers' route destinations a route weft does not own holds (left alone): how many, and the first few. */
    routesRefused: 0,
    refusedExamples: [] as string[],
  };

  constructor(private readonly o: ReconcilerOptions) {
    this.loop = new PassLoop(() => this.runPass(), o.clock);
    this.tracker = new DatapathTracker(o.resyncMs ?? 30_000);
    this.schedule = new CheckSchedule(o.rulesEveryMs ?? 5000, o.rulesWatchedEveryMs ?? 60_000);
  }

  /** When the pass in flight started (0: none); the watchdog's view of a stuck loop. */
  get runningSinceMs(): number {
    return this.loop.runningSinceMs;
  }

  /** Replace the inputs (a new lease, a new peer set source, ...) and converge. */
  setInputs(inputs: ReconcileInputs): void {
    this.inputs = inputs;
    this.inputsVersion++;
    this.checksInputsVersion++;
    this.poke('inputs');
  }

  /**
   * Something may have changed: converge soon. Inputs that changed bump the version. `peers`
   * may name the subnet keys that changed (then only those are recomputed and planned); a
   * netlink poke looks at the kernel afresh (`netlinkLine` follows one event instead).
   */
  poke(reason: 'inputs' | 'peers' | 'netlink' | 'timer', changedKeys?: Iterable<string>): void {
    if (reason === 'peers') {
      this.inputsVersion++;
      this.tracker.peersChanged(changedKeys);
    }
    // A timer tick alone does not force a fresh look: the full resync has its own period.
    else if (reason !== 'timer') this.tracker.invalidate();
    if (!this.inputs) return;
    // A peer change is acted on at once (etcd already batches a transaction into one event);
    // netlink events come in bursts (our own batch echoes back) and are coalesced.
    this.loop.poke(reason === 'peers' || reason === 'inputs' ? 0 : (this.o.debounceMs ?? 20));
  }

  /**
   * The ruleset monitor: `change` (someone committed a ruleset change: read the rules soon),
   * `up` (changes are followed from now on: read once, then on changes), `down` (not followed:
   * poll on the drift-check interval, as without a monitor).
   */
  rulesEvent(kind: 'change' | 'up' | 'down'): void {
    this.schedule.rulesEvent(kind);
    if (kind !== 'down' && this.inputs) this.loop.poke(this.o.debounceMs ?? 20);
  }

  /** One line of the netlink monitor: followed in the kept kernel state; a pass when it changed what weft owns. */
  netlinkLine(line: string): void {
    if (!this.tracker.netlinkLine(line, this.inputs) || !this.inputs) return;
    this.loop.poke(this.o.debounceMs ?? 20);
  }

  start(): void {
    const every = this.o.resyncMs ?? 30_000;
    this.loop.every(Math.min(every, this.o.rulesEveryMs ?? 5000), () => {
      this.poke('timer');
    });
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /** Resolves once converged or retrying nothing (or stopped). */
  async settle(): Promise<void> {
    await this.loop.settle();
  }

  /** What a pass with `inputs` would do, changing nothing (weft plan). */
  async preview(inputs: ReconcileInputs): Promise<PassReport> {
    const p = this.compute(inputs, await this.look(inputs, observedDevices(inputs), true));
    return {
      ops: p.ops,
      failed: 0,
      rulesPayload: payloadOf(p, 4),
      rulesPayloadV6: payloadOf(p, 6),
      writes: p.writes ?? [],
      desired: p.datapath,
      refused: p.refused ?? new Map(),
    };
  }

  /** One pass; never throws (a failure is logged and retried). True when converged. */
  private async runPass(): Promise<boolean> {
    const inp = this.inputs;
    if (!inp) return true;
    const started = this.o.clock.now();
    try {
      return await this.pass(inp, started);
    } catch (e) {
      this.tracker.invalidate();
      this.stats.lastError = message(e);
      this.stats.lastPassOk = false;
      this.stats.passFailures++;
      this.stats.lastPassAtMs = this.o.clock.now();
      this.o.onPass?.(this.stats.lastPassAtMs - started, false);
      this.o.log.warn('reconcile pass failed; retrying', { error: this.stats.lastError });
      return false;
    }
  }

  private async pass(inp: ReconcileInputs, started: number): Promise<boolean> {
    const version = this.inputsVersion;
    const checksVersion = this.checksInputsVersion;
    // iptables-save and ip6tables-save are most of an idle host's CPU: with the ruleset followed,
    // they run on a change (ours included, which confirms it) and on the slow safety period only.
    const due = this.schedule.due(checksVersion, started);
    const view = await this.tracker.plan(inp, ownershipOf(inp), started, (devices) =>
      this.o.host.observeDatapath(devices),
    );
    const planned = this.o.clock.now();
    if (!view.fresh) this.stats.cachedPasses++;
    // Rules and files on a check; the datapath's operations are the tracker's.
    const look = await this.look(inp, EMPTY_DATAPATH, due.checks, due.rules);
    const checks = planHost(desiredHostOf(inp, view.desired), look, true);
    const p = { ...checks, ops: view.ops, datapath: view.desired, refused: view.refused };
    const isDrift = version === this.convergedVersion;
    const forwardingFailed = due.checks ? await this.ensureAllForwarding(inp) : 0;
    const rulesFailed = await this.applyRules(inp, p, look, due.newRules);
    let failed = forwardingFailed + rulesFailed;
    failed += await this.applyOps(p.ops, isDrift);
    const filesFailed = await this.applyWrites(p.writes ?? [], isDrift);
    failed += filesFailed;
    this.schedule.done(due, checksVersion, started, failed === 0, rulesFailed === 0);
    this.o.log.debug('pass', {
      planMs: planned - started,
      ms: this.o.clock.now() - started,
      ops: p.ops.length,
      fresh: view.fresh,
      full: view.full,
      checks: due.checks,
    });
    // A pass that only created a device has not converged: the next (already poked) does the rest.
    this.finish(p, failed, view.deferred ? undefined : version, started);
    return failed === 0;
  }

  /** Observe: the datapath given (or a fresh one), on a check the files, and the rules when due (`rules`, default with the files). */
  private async look(
    inp: ReconcileInputs,
    given: ObservedDatapath | readonly string[],
    checks: boolean,
    rules = checks,
  ): Promise<Look> {
    const datapath = isObserved(given) ? given : await this.o.host.observeDatapath(given);
    if (!checks && !rules) return { datapath };
    const files = new Map<string, ObservedFile>();
    if (checks) {
      for (const f of inp.files ?? []) {
        try {
          files.set(f.path, { text: await this.o.host.readFile(f.path) });
        } catch (e) {
          files.set(f.path, { error: message(e) });
        }
      }
    }
    if (!rules) return { datapath, files };
    const tables = new Map<Family, Map<string, SavedTable>>();
    const tableErrors = new Map<Family, string>();
    for (const f of rulesOf(inp)) {
      try {
        tables.set(f.family, await this.o.host.saveTables(f.family, tablesOf(f.rules)));
      } catch (e) {
        tableErrors.set(f.family, message(e));
      }
    }
    return { datapath, tables, tableErrors, ...(checks ? { files } : {}) };
  }

  /** Desired host state (the backend's datapath, rules, files) and the full plan that reaches it (weft plan). */
  private compute(inp: ReconcileInputs, look: ObservedHost): HostPlan & { datapath: DesiredDatapath } {
    const datapath = inp.backend.desired({
      config: inp.config,
      own: ownSubnetsOf(inp),
      facts: inp.facts,
      routes: look.datapath.routes,
      peers: inp.peers(),
      mtu: inp.mtu,
      vtepMAC: inp.vtepMAC,
      ...(inp.vtepMACv6 ? { vtepMACv6: inp.vtepMACv6 } : {}),
      ...(inp.wireguard ? { wireguard: inp.wireguard } : {}),
    });
    return { ...planHost(desiredHostOf(inp, datapath), look), datapath };
  }

  /**
   * Forwarding and rules of every family served, each on its own: a family whose tables could
   * not be read or whose restore failed is retried on the next check and never stops the other.
   * `newInputs`: the rules follow new inputs (start-up, a new lease or network config), not drift.
   */
  private async applyRules(inp: ReconcileInputs, p: HostPlan, look: Look, newInputs: boolean): Promise<number> {
    if (!p.rules) return 0;
    let failed = 0;
    for (const { family } of rulesOf(inp)) {
      const names = FAMILY[family];
      const unread = look.tableErrors?.get(family);
      if (unread !== undefined) {
        this.stats.lastError = `${names.save}: ${unread}`;
        this.o.log.warn(`${names.save} failed; will retry`, { error: unread });
        failed++;
        continue;
      }
      const plan = p.rules.find((r) => r.family === family);
      if (!plan?.payload) continue;
      try {
        await this.o.host.restoreRules(family, plan.payload);
        this.stats.rulesRepairs++;
        this.o.log[newInputs ? 'info' : 'warn'](names.installed, { chains: plan.repaired });
      } catch (e) {
        this.stats.lastError = `${names.restore}: ${message(e)}`;
        this.o.log.warn(`${names.restore} failed; will retry`, { error: message(e) });
        failed++;
      }
    }
    return failed;
  }

  /** Forwarding of every family served, on each check (a sysctl read; no events tell of a change). */
  private async ensureAllForwarding(inp: ReconcileInputs): Promise<number> {
    let failed = 0;
    for (const { family } of rulesOf(inp)) failed += await this.ensureForwarding(family, inp.facts.iface);
    return failed;
  }

  /** 1 when forwarding for `family` could not be turned on (retried on the next check). */
  private async ensureForwarding(family: Family, iface: string): Promise<number> {
    const names = FAMILY[family];
    try {
      if (await this.o.host.ensureForwarding(family, iface))
        this.o.log.warn(`${names.ip} forwarding was off; turned it on`);
      return 0;
    } catch (e) {
      this.stats.lastError = `${names.ip} forwarding: ${message(e)}`;
      this.o.log.warn(`cannot turn ${names.ip} forwarding on; will retry`, { error: message(e) });
      return 1;
    }
  }

  private async applyOps(ops: readonly Op[], isDrift: boolean): Promise<number> {
    let failed = 0;
    const failedOps = new Set<Op>();
    for (const stage of stages(ops)) {
      // A stage's batches (one per tool) run at the same time; each one's failures are its own.
      const results = await Promise.allSettled(stage.map((b) => this.o.host.applyBatch(b.tool, b.lines)));
      const thrown = results.find((r) => r.status === 'rejected');
      if (thrown) {
        this.tracker.applied(ops, new Set(ops));
        throw thrown.reason;
      }
      stage.forEach((b, k) => {
        failed += this.batchDone(
          b,
          (results[k] as PromiseFulfilledResult<readonly BatchFailure[]>).value,
          failedOps,
          isDrift,
        );
      });
    }
    this.stats.opsFailed += failed;
    if (this.tracker.applied(ops, failedOps)) this.loop.poke(this.o.debounceMs ?? 20);
    return failed;
  }

  /** Count and log one batch's results; its failed operations go into `failedOps`. Returns how many failed. */
  private batchDone(b: Batch, failures: readonly BatchFailure[], failedOps: Set<Op>, isDrift: boolean): number {
    const bad = new Set(failures.map((f) => f.index));
    for (const i of bad) {
      const op = b.ops[i];
      if (op) failedOps.add(op);
    }
    for (const f of failures) {
      this.stats.lastError = `${b.tool} ${b.lines[f.index] ?? ''}: ${f.message}`;
      this.o.log.warn('datapath change failed; will retry', {
        command: `${b.tool} ${b.lines[f.index] ?? ''}`,
        error: f.message,
      });
    }
    b.ops.forEach((op, i) => {
      if (bad.has(i)) return;
      this.stats.opsApplied++;
      const change = `${b.tool} ${b.lines[i] ?? ''}`;
      if (isDrift) this.drift(opObject(op), change);
      else this.o.log.debug('applied', { change });
    });
    return failures.length;
  }

  /** Write the output files that are missing or differ; a failed write is retried and keeps the host not ready. */
  private async applyWrites(writes: readonly FileWrite[], isDrift: boolean): Promise<number> {
    let failed = 0;
    for (const w of writes) {
      try {
        await this.o.host.writeFile(w.path, w.text);
        this.stats.filesWritten++;
        this.stats.filesFailing = Object.fromEntries(
          Object.entries(this.stats.filesFailing).filter(([k]) => k !== w.path),
        );
        if (isDrift) this.drift('file', `write ${w.path} (was ${w.was})`);
        else this.o.log.info('wrote', { file: w.path });
      } catch (e) {
        failed++;
        this.stats.filesFailing[w.path] = message(e);
        this.stats.lastError = message(e);
        this.o.log.warn('cannot write an output file; will retry', { file: w.path, error: message(e) });
      }
    }
    return failed;
  }

  private drift(kind: string, change: string): void {
    this.stats.driftRepairs[kind] = (this.stats.driftRepairs[kind] ?? 0) + 1;
    this.o.log.warn('repaired drift', { change });
  }

  /** `version`: what the pass converged to (undefined: not converged yet, though nothing failed). */
  private finish(
    p: HostPlan & { datapath: DesiredDatapath; refused: ReadonlyMap<string, ObservedRoute> },
    failed: number,
    version: number | undefined,
    started: number,
  ): void {
    const { datapath: desired, ops } = p;
    const now = this.o.clock.now();
    if (failed > 0) this.stats.passFailures++;
    this.o.onPass?.(now - started, failed === 0);
    Object.assign(this.stats, {
      passes: this.stats.passes + 1,
      lastPassAtMs: now,
      lastPassDurationMs: now - started,
      lastPassOk: failed === 0,
      peersProgrammed: desired.peersProgrammed,
      peersSkipped: desired.skipped.length,
    });
    if (failed === 0) this.stats.lastError = '';
    if (failed === 0 && version !== undefined) this.convergedVersion = version;
    const skips = new Map(desired.skipped.map((s) => [s.subnetKey, s.reason]));
    for (const [k, reason] of skips)
      if (this.reportedSkips.get(k) !== reason) this.o.log.warn('peer not programmed', { subnet: k, reason });
    // Refusals share the report (keyed apart): each logged once, when it appears or changes.
    for (const [dst, r] of p.refused) {
      const held = describeRoute(r);
      if (this.reportedSkips.get(`route ${dst}`) !== held)
        this.o.log.warn('peer route not programmed: a route weft does not own holds its destination; left alone', {
          destination: dst,
          route: held,
        });
      skips.set(`route ${dst}`, held);
    }
    this.reportedSkips = skips;
    this.stats.routesRefused = p.refused.size;
    this.stats.refusedExamples = [...p.refused].slice(0, 3).map(([dst, r]) => `${dst}: held by ${describeRoute(r)}`);
    if (ops.length > 0)
      this.o.log.info('reconciled', {
        changes: ops.length,
        failed,
        peers: desired.peersProgrammed,
        skipped: desired.skipped.length,
        ms: now - started,
      });
  }
}
