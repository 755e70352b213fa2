/**
 * `weft run`, the composition root: spec -> config -> host facts -> lease -> fleet mirror ->
 * reconciler -> output files -> ready; then keep the lease renewed and the datapath converged.
 * Only wiring lives here; decisions are in core/ and backends/, effects in adapters/.
 */
import { randomInt } from 'node:crypto';
import { type Prefix, formatIP, formatPrefix, samePrefix } from '../core/cidr.js';
import type { NetworkConfig } from '../core/config-check.js';
import { WeftError } from '../core/errors.js';
import { Fleet } from '../core/fleet.js';
import { encodeLeaseAttrs } from '../core/lease.js';
import { isRelevantEvent } from '../core/netlink-events.js';
import type { HealthSnapshot, Phase } from '../core/health.js';
import { parseEnvFile, previousSubnet } from '../core/outputs.js';
import { subnetsPrefix } from '../core/owner.js';
import type { Spec } from '../core/spec.js';
import type { KeyValue } from '../core/store.js';
import { backendFor } from '../backends/index.js';
import { EtcdStore } from '../adapters/etcd.js';
import { readTextIfExists } from '../adapters/files.js';
import { type HostIdentity, hostIdentity, replaceIdentity } from '../adapters/identity.js';
import { monitorNetlink } from '../adapters/iproute2.js';
import { supportsRandomFully } from '../adapters/iptables.js';
import type { Logger } from '../adapters/log.js';
import { discoverHost, fleetConfig, kernelHost, message, sleep, vtepMACFor } from './bootstrap.js';
import { type HeldLease, LeaseKeeper } from './lease-keeper.js';
import type { AgentCounters } from './metrics.js';
import { writeOutputs } from './outputs.js';
import { PrefixMirror } from './prefix-mirror.js';
import { Presence } from './presence.js';
import { clashMessage } from '../core/presence.js';
import { Reconciler } from './reconciler.js';
import { weftVersion } from '../version.js';

const rng = (): number => randomInt(0, 2 ** 47) / 2 ** 47;

export interface AgentTimings {
  /** How often the lease loop looks at the clock (and retries a failed renewal). */
  readonly leaseTickMs: number;
  readonly resyncMs: number;
  readonly rulesEveryMs: number;
  /** How often etcd is asked something when nothing else talked to it (readiness). */
  readonly etcdProbeMs: number;
  /** A reconcile pass running (or none finishing) this long means the loop is stuck. */
  readonly stuckAfterMs: number;
}

const DEFAULT_TIMINGS: AgentTimings = { leaseTickMs: 1000, resyncMs: 30_000, rulesEveryMs: 5000, etcdProbeMs: 5000, stuckAfterMs: 15_000 };

export class Agent {
  private readonly abort = new AbortController();
  private store: EtcdStore | undefined;
  private mirror: PrefixMirror | undefined;
  private reconciler: Reconciler | undefined;
  private monitor: { stop(): void } | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private held: HeldLease | undefined;
  private leaseSuspect = false;
  private renewFailingSince = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private fleet: Fleet | undefined;
  /** A renewal or re-acquisition is in flight (ticks must not overlap). */
  private busy = false;
  private phase: Phase = 'starting';
  private step = 'reading the host identity';
  private readonly startedAtMs = Date.now();
  private lastRenewedAtMs = 0;
  private reacquiring = false;
  private backendInfo: HealthSnapshot['backend'];
  private publicIP = '';
  private identity: HostIdentity | undefined;
  private presence: Presence | undefined;
  /** The presence record was lost: claim it again before renewing (core/presence.ts). */
  private presenceLost = false;
  /** The last identity clash found, for /status and /readyz (empty: none). */
  private identityClash = '';
  private readonly count = { renewalsOk: 0, renewalsFailed: 0, reacquisitions: 0, malformedSeen: 0 };

  constructor(private readonly spec: Spec, private readonly log: Logger,
    private readonly opts: { timings?: AgentTimings; onPass?: (durationMs: number, ok: boolean) => void; onStep?: (step: string) => void } = {}) {}

  private get timings(): AgentTimings { return this.opts.timings ?? DEFAULT_TIMINGS; }

  private setStep(step: string): void {
    this.step = step;
    this.opts.onStep?.(step);
  }

  /** Bring the host into the fabric; resolves once ready (lease, datapath, rules, files). */
  async start(): Promise<void> {
    const { spec, log } = this;
    const signal = this.abort.signal;
    this.identity = await hostIdentity({ stateDir: spec.host.stateDir });
    this.setStep('connecting to etcd');
    const store = await EtcdStore.connect(spec.etcd, { callTimeoutMs: 5000 });
    this.store = store;
    this.setStep('reading the network config from etcd');
    const config = await fleetConfig(store, spec, log, signal);
    const range = config.ipv4;
    if (!range) throw new WeftError('E_CONFIG', 'the network config has no IPv4 Network; weft programs IPv4 fabrics');
    const backend = backendFor(config.backend.type);
    this.setStep('inspecting the host');
    const facts = await discoverHost(spec, log);
    this.publicIP = formatIP(facts.publicIP);
    const refusal = backend.refusal(facts);
    if (refusal) throw new WeftError('E_HOST', refusal);
    this.setStep('claiming the host identity');
    const presence = new Presence({ store, prefix: spec.etcd.prefix, log, onLost: () => { this.presenceLost = true; } });
    this.presence = presence;
    await this.retrying('claim the host identity', () => this.claimIdentity(presence, signal), signal);
    const identity = this.identity;
    const mtu = backend.mtu(config, facts, spec.host.mtu);
    const device = backend.deviceName(config);
    this.backendInfo = { type: backend.type, ...(device ? { device } : {}), mtu };
    const vtepMAC = await vtepMACFor(device, identity.macSeed, config.backend.vxlan?.vni ?? 1);
    const value = encodeLeaseAttrs(backend.leaseAttrs(config, facts, vtepMAC));
    const previous = previousSubnet(parseEnvFile((await readTextIfExists(spec.host.subnetFile)) ?? ''));

    const keeper = new LeaseKeeper({ store, prefix: spec.etcd.prefix, identity: () => this.identity ?? identity, ttlSeconds: spec.host.leaseTTLSeconds, clock: Date, rng, log });
    const req = { range, publicIP: facts.publicIP, value, ...(previous ? { previous } : {}) };
    this.setStep('acquiring a subnet lease');
    this.held = await this.retrying('acquire a lease', () => keeper.acquire(req), signal);
    this.lastRenewedAtMs = Date.now();
    const fleet = new Fleet(subnetsPrefix(spec.etcd.prefix), config, this.held.subnet);
    this.fleet = fleet;
    const reconciler = new Reconciler({
      host: kernelHost, log, clock: Date, resyncMs: this.timings.resyncMs, rulesEveryMs: this.timings.rulesEveryMs, ...(this.opts.onPass ? { onPass: this.opts.onPass } : {}),
    });
    this.reconciler = reconciler;
    const randomFully = await supportsRandomFully();
    const inputsFor = (own: Prefix) => ({
      backend, config, network: range.network, ownSubnet: own, facts, mtu, vtepMAC, ipMasq: spec.host.ipMasq, keepFabricSource: spec.outputs.podman !== undefined,
      randomFully, peers: () => fleet.peers.values(),
    });

    // The fleet must be known before the first pass: a pass with no peers would delete the
    // routes a previous run left for them (a restart must be hitless).
    const mirror = new PrefixMirror({
      store, prefix: subnetsPrefix(spec.etcd.prefix), log, clock: Date,
      onChange: (keys) => { this.onFleetChange(fleet, mirror, keys); },
    });
    this.mirror = mirror;
    this.setStep(`leased ${formatPrefix(this.held.subnet)}; listing the fleet`);
    await this.retrying('list the fleet', () => mirror.start(), signal);
    for (const [k, kv] of mirror.snapshot) this.judge(fleet, k, kv);

    this.setStep(`leased ${formatPrefix(this.held.subnet)}; programming the datapath`);
    reconciler.setInputs(inputsFor(this.held.subnet));
    reconciler.start();
    this.monitor = monitorNetlink((line) => {
      if (isRelevantEvent(line, { ...(device ? { device } : {}), iface: facts.iface, network: range.network })) reconciler.poke('netlink');
    });
    await reconciler.settle();
    this.setStep(`leased ${formatPrefix(this.held.subnet)}; writing ${spec.host.subnetFile}`);
    await writeOutputs(spec, config, this.held.subnet, mtu, log);
    this.phase = 'running';
    log.info('ready', { subnet: formatPrefix(this.held.subnet), backend: backend.type, peers: reconciler.stats.peersProgrammed, mtu });

    this.leaseTimer = setInterval(() => {
      void this.leaseTick(keeper, fleet, reconciler, inputsFor, { range, publicIP: facts.publicIP, value }, config, mtu);
    }, this.timings.leaseTickMs);
    this.probeTimer = setInterval(() => { void this.probeEtcd(store); }, this.probeEveryMs);
  }

  /**
   * Hold this host identity's presence record. When a live process of another boot holds it
   * (a cloned VM), take a new identity of our own and claim that: this host never uses the
   * subnet the other holds. Returns true when the identity changed.
   */
  private async claimIdentity(presence: Presence, signal: AbortSignal): Promise<boolean> {
    let changed = false;
    for (;;) {
      const id = this.identity;
      if (!id) throw new WeftError('E_HOST', 'no host identity');
      const r = await presence.claim(id, this.publicIP, signal);
      if (r.ok) return changed;
      const next = await replaceIdentity(this.spec.host.stateDir, id);
      this.identityClash = clashMessage(id.hostID, r.holder, next.hostID);
      this.log.error(this.identityClash, { hostID: id.hostID, newHostID: next.hostID, holderBoot: r.holder?.bootID ?? '', stateFile: `${this.spec.host.stateDir}/host-id` });
      this.identity = next;
      changed = true;
    }
  }

  /** Often enough that a healthy etcd is never judged gone within the grace period. */
  private get probeEveryMs(): number { return Math.min(this.timings.etcdProbeMs, (this.spec.host.etcdGraceSeconds * 1000) / 3); }

  /** Ask etcd something cheap when nothing else did lately: readiness needs to know it answers. */
  private probing = false;
  private async probeEtcd(store: EtcdStore): Promise<void> {
    if (this.probing || Date.now() - store.stats.lastOkAtMs < this.probeEveryMs) return;
    this.probing = true;
    try { await store.get(`${this.spec.etcd.prefix}/config`); } catch { /* counted by the store */ } finally { this.probing = false; }
  }

  /** The agent's state for readiness, STATUS=, /status and /metrics. */
  snapshot(): HealthSnapshot {
    const held = this.held;
    const r = this.reconciler?.stats;
    const fleet = this.fleet;
    return {
      nowMs: Date.now(), startedAtMs: this.startedAtMs, phase: this.phase, step: this.step, version: weftVersion(),
      ...(held ? {
        lease: {
          subnet: formatPrefix(held.subnet), publicIP: this.publicIP, expiresAtMs: held.expiresAtMs,
          renewDueAtMs: held.expiresAtMs - this.spec.host.leaseRenewMarginSeconds * 1000, lastRenewedAtMs: this.lastRenewedAtMs, reacquiring: this.reacquiring,
        },
      } : {}),
      ...(this.backendInfo ? { backend: this.backendInfo } : {}),
      ...(this.identity ? { identity: { hostID: this.identity.hostID, source: this.identity.source, clash: this.identityClash } } : {}),
      peers: { known: fleet?.peers.size ?? 0, programmed: r?.peersProgrammed ?? 0, rejected: r?.peersSkipped ?? 0, malformed: fleet?.quarantinedCount ?? 0 },
      reconcile: {
        passes: r?.passes ?? 0, lastPassAtMs: r?.lastPassAtMs ?? 0, lastPassOk: r?.lastPassOk ?? false, lastPassDurationMs: r?.lastPassDurationMs ?? 0,
        lastError: r?.lastError ?? '', runningSinceMs: r?.runningSinceMs ?? 0, driftRepairs: { ...(r?.driftRepairs ?? {}) },
      },
      etcd: {
        lastOkAtMs: this.store?.stats.lastOkAtMs ?? 0, lastError: this.store?.stats.lastError ?? '',
        requestErrors: this.store?.stats.errors ?? 0, watchRestarts: this.mirror?.stats.watchRestarts ?? 0,
      },
      etcdGraceMs: this.spec.host.etcdGraceSeconds * 1000,
      stuckAfterMs: this.timings.stuckAfterMs,
    };
  }

  counters(): AgentCounters {
    const r = this.reconciler?.stats;
    return {
      ...this.count, etcdRequests: this.store?.stats.calls ?? 0, etcdClientResets: this.store?.clientResets ?? 0,
      opsApplied: r?.opsApplied ?? 0, opsFailed: r?.opsFailed ?? 0, passFailures: r?.passFailures ?? 0, rulesRestores: r?.rulesRepairs ?? 0,
    };
  }

  private judge(fleet: Fleet, key: string, kv: KeyValue | undefined): void {
    const change = fleet.update(key, kv);
    if (change?.kind === 'quarantined' && change.isNew) this.count.malformedSeen++;
    if (change?.kind === 'quarantined' && change.isNew) this.log.warn('ignoring a malformed lease', { key, reason: change.entry.reason });
  }

  private onFleetChange(fleet: Fleet, mirror: PrefixMirror, keys: ReadonlySet<string>): void {
    for (const k of keys) {
      if (this.held && k === this.held.key) {
        const kv = mirror.snapshot.get(k);
        if (kv?.lease !== this.held.lease) this.leaseSuspect = true;
        continue;
      }
      this.judge(fleet, k, mirror.snapshot.get(k));
    }
    this.reconciler?.poke('peers');
  }

  private async leaseTick(keeper: LeaseKeeper, fleet: Fleet, reconciler: Reconciler, inputsFor: (own: Prefix) => Parameters<Reconciler['setInputs']>[0],
    req: Parameters<LeaseKeeper['acquire']>[0], config: NetworkConfig, mtu: number): Promise<void> {
    const held = this.held;
    if (!held || this.busy) return;
    const now = Date.now();
    const due = now >= held.expiresAtMs - this.spec.host.leaseRenewMarginSeconds * 1000;
    if (!due && !this.leaseSuspect && !this.presenceLost) return;
    if (this.renewFailingSince && now - this.renewFailingSince < 5000 && !this.leaseSuspect && !this.presenceLost) return;
    this.busy = true;
    try {
      // Our presence record ran out (etcd was out of reach): claim it again before renewing. A
      // clone that took it meanwhile keeps it, and this host moves to an identity of its own.
      let moved = false;
      if (this.presenceLost && this.presence) {
        moved = await this.claimIdentity(this.presence, this.abort.signal);
        this.presenceLost = false;
      }
      const renewed = moved ? 'lost' : await keeper.renew(held);
      this.leaseSuspect = false;
      this.renewFailingSince = 0;
      if (renewed !== 'lost') { this.held = renewed; this.lastRenewedAtMs = Date.now(); this.count.renewalsOk++; this.log.debug('lease renewed', { subnet: formatPrefix(held.subnet), expiresAt: new Date(renewed.expiresAtMs).toISOString() }); return; }
      this.log.warn('lease lost (expired, revoked, deleted or taken); re-acquiring, preferring the same subnet', { subnet: formatPrefix(held.subnet) });
      this.reacquiring = true;
      const again = await keeper.acquire({ ...req, previous: held.subnet });
      this.held = again;
      this.reacquiring = false;
      this.lastRenewedAtMs = Date.now();
      this.count.reacquisitions++;
      // The old etcd lease may still be alive with nothing we want on it: do not leave it for 24 h.
      if (again.lease !== held.lease) await this.store?.revoke(held.lease).catch(() => undefined);
      if (!samePrefix(again.subnet, held.subnet)) {
        this.log.error('re-acquired a DIFFERENT subnet; containers on this host must be restarted with the new bridge options', { was: formatPrefix(held.subnet), now: formatPrefix(again.subnet) });
        fleet.setOwnSubnet(again.subnet);
        reconciler.setInputs(inputsFor(again.subnet));
        await reconciler.settle();
        await writeOutputs(this.spec, config, again.subnet, mtu, this.log);
      } else this.log.info('lease re-acquired with the same subnet', { subnet: formatPrefix(again.subnet), how: again.how });
    } catch (e) {
      this.count.renewalsFailed++;
      if (!this.renewFailingSince) this.renewFailingSince = now;
      this.log.warn('lease renewal failed; the datapath is left as it is; retrying', { error: message(e), expiresAt: new Date(held.expiresAtMs).toISOString() });
    } finally {
      this.busy = false;
    }
  }

  /** Retry `fn` while its failure is retryable (etcd down), with backoff; rethrow otherwise. */
  private async retrying<T>(what: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    let backoffMs = 500;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (signal.aborted || !(e instanceof WeftError && e.retryable)) throw e;
        this.log.warn(`cannot ${what} yet; retrying`, { error: e.message, retryInMs: backoffMs });
        await sleep(backoffMs, signal);
        backoffMs = Math.min(backoffMs * 2, 5000);
      }
    }
  }

  /** Stop every loop; leave the datapath, rules, files and lease in place (hitless restart). */
  async stop(): Promise<void> {
    this.abort.abort();
    this.phase = 'stopping';
    await this.presence?.release();
    clearInterval(this.leaseTimer);
    clearInterval(this.probeTimer);
    this.monitor?.stop();
    await this.reconciler?.stop();
    await this.mirror?.stop().catch(() => undefined);
    await this.store?.close().catch(() => undefined);
  }
}
