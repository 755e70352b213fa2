/**
 * `weft run`, the composition root: spec -> config -> host facts -> identity -> lease -> fleet
 * view -> reconciler (datapath, rules, output files) -> ready. Each part has one job and its
 * own state; this file only wires them: identity-keeper (host ID, presence, clones),
 * lease-holder (acquire, renew, re-acquire), fleet-view (etcd mirror -> peers), reconciler
 * (everything weft owns on the host), etcd-probe (readiness) and snapshot (health).
 */
import { randomInt } from 'node:crypto';
import { type Prefix, formatIP, formatPrefix } from '../core/cidr.js';
import { WeftError } from '../core/errors.js';
import type { HealthSnapshot, Phase } from '../core/health.js';
import { encodeLeaseAttrs } from '../core/lease.js';
import { type EventScope, isRelevantEvent } from '../core/netlink-events.js';
import { parseEnvFile, previousSubnet } from '../core/outputs.js';
import type { Spec } from '../core/spec.js';
import { backendFor } from '../backends/index.js';
import { EtcdStore } from '../adapters/etcd.js';
import { readTextIfExists } from '../adapters/files.js';
import { hostIdentity } from '../adapters/identity.js';
import { monitorNetlink } from '../adapters/iproute2.js';
import { supportsRandomFully } from '../adapters/iptables.js';
import type { Logger } from '../adapters/log.js';
import { discoverHost, fleetConfig, kernelHost, vtepMACFor } from './bootstrap.js';
import { EtcdProbe } from './etcd-probe.js';
import { FleetView } from './fleet-view.js';
import { IdentityKeeper } from './identity-keeper.js';
import { LeaseHolder } from './lease-holder.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { AgentCounters } from './metrics.js';
import { outputFiles } from './outputs.js';
import { type ReconcileInputs, Reconciler } from './reconciler.js';
import { retrying } from './retry.js';
import { type Parts, agentCounters, healthSnapshot } from './snapshot.js';

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

export interface AgentOptions {
  readonly timings?: AgentTimings;
  readonly onPass?: (durationMs: number, ok: boolean) => void;
  readonly onStep?: (step: string) => void;
}

export class Agent {
  private readonly abort = new AbortController();
  private readonly startedAtMs = Date.now();
  private phase: Phase = 'starting';
  private step = 'reading the host identity';
  /** The parts started so far (snapshot reads them; stop stops them, newest first). */
  private readonly parts: Parts = {};
  private readonly stops: (() => Promise<void> | void)[] = [];

  constructor(private readonly spec: Spec, private readonly log: Logger, private readonly opts: AgentOptions = {}) {}

  private get timings(): AgentTimings { return this.opts.timings ?? DEFAULT_TIMINGS; }

  private setStep(step: string): void {
    this.step = step;
    this.opts.onStep?.(step);
  }

  /** Bring the host into the fabric; resolves once ready (lease, datapath, rules, files). */
  async start(): Promise<void> {
    const { spec, log, parts } = this;
    const signal = this.abort.signal;
    const h = await this.prepare(signal);
    const { store, ids, config, range, backend, facts, mtu } = h;
    const keeper = new LeaseKeeper({ store, prefix: spec.etcd.prefix, identity: () => ids.current, ttlSeconds: spec.host.leaseTTLSeconds, clock: Date, rng, log });
    const reconciler = new Reconciler({ host: kernelHost, log, clock: Date, resyncMs: this.timings.resyncMs, rulesEveryMs: this.timings.rulesEveryMs, ...(this.opts.onPass ? { onPass: this.opts.onPass } : {}) });
    const inputsFor = (own: Prefix): ReconcileInputs => ({
      backend, config, network: range.network, ownSubnet: own, facts, mtu, vtepMAC: h.vtepMAC, ipMasq: spec.host.ipMasq, keepFabricSource: spec.outputs.podman !== undefined,
      randomFully: h.randomFully, files: outputFiles(spec, config, own, mtu), peers: () => fleet.peers.values(),
    });
    const holder = new LeaseHolder({
      keeper, ids, store, log, signal, request: { range, publicIP: facts.publicIP, value: h.leaseValue, ...(h.previous ? { previous: h.previous } : {}) },
      renewMarginMs: spec.host.leaseRenewMarginSeconds * 1000, tickMs: this.timings.leaseTickMs,
      onSubnet: (s) => { fleet.setOwnSubnet(s); reconciler.setInputs(inputsFor(s)); },
    });
    parts.holder = holder;
    this.setStep('acquiring a subnet lease');
    const held = await holder.acquire();
    const leased = `leased ${formatPrefix(held.subnet)}`;

    // The fleet must be known before the first pass: a pass with no peers would delete the
    // routes a previous run left for them (a restart must be hitless).
    const fleet = new FleetView({
      store, prefix: spec.etcd.prefix, config, ownSubnet: held.subnet, log,
      own: () => holder.lease, onOwnKeyChanged: () => { holder.markSuspect(); }, onPeersChanged: () => { reconciler.poke('peers'); },
    });
    parts.fleet = fleet;
    this.stops.push(() => fleet.stop().catch((e: unknown) => { log.debug('fleet watch stop failed; closing the client anyway', { error: String(e) }); }));
    this.setStep(`${leased}; listing the fleet`);
    await fleet.start(signal);

    this.setStep(`${leased}; programming the datapath and writing ${spec.host.subnetFile}`);
    await this.converge(reconciler, inputsFor(held.subnet), { devices: h.devices, iface: facts.iface, network: range.network });
    this.phase = 'running';
    log.info('ready', { subnet: formatPrefix(held.subnet), backend: backend.type, peers: reconciler.stats.peersProgrammed, mtu });
    holder.start();
    this.stops.push(() => holder.stop());
    const probe = new EtcdProbe({ store, key: `${spec.etcd.prefix}/config`, everyMs: Math.min(this.timings.etcdProbeMs, (spec.host.etcdGraceSeconds * 1000) / 3), log });
    probe.start();
    this.stops.push(() => { probe.stop(); });
  }

  /** Everything decided before the lease: etcd, the fleet's config, the backend, host facts, the identity claim. */
  private async prepare(signal: AbortSignal) {
    const { spec, log, parts } = this;
    const identity = await hostIdentity({ stateDir: spec.host.stateDir });
    this.setStep('connecting to etcd');
    const store = await EtcdStore.connect(spec.etcd, { callTimeoutMs: 5000 });
    parts.store = store;
    this.stops.push(() => store.close());
    const ids = new IdentityKeeper(identity, { store, prefix: spec.etcd.prefix, stateDir: spec.host.stateDir, log });
    parts.ids = ids;
    this.setStep('reading the network config from etcd');
    const config = await fleetConfig(store, spec, log, signal);
    const range = config.ipv4;
    if (!range) throw new WeftError('E_CONFIG', 'the network config has no IPv4 Network; weft programs IPv4 fabrics');
    const backend = backendFor(config.backend.type);
    this.setStep('inspecting the host');
    const facts = await discoverHost(spec, log);
    const refusal = backend.refusal(facts);
    if (refusal) throw new WeftError('E_HOST', refusal);
    this.setStep('claiming the host identity');
    await retrying('claim the host identity', () => ids.claim(formatIP(facts.publicIP), signal), { signal, log });
    const mtu = backend.mtu(config, facts, spec.host.mtu);
    const devices = backend.deviceNames(config);
    parts.backend = { type: backend.type, ...(devices.length > 0 ? { device: devices.join(', ') } : {}), mtu };
    parts.publicIP = formatIP(facts.publicIP);
    const vtepMAC = await vtepMACFor(devices[0], ids.current.macSeed, config.backend.vxlan?.vni ?? 1);
    const leaseValue = encodeLeaseAttrs(backend.leaseAttrs(config, facts, vtepMAC));
    const randomFully = await supportsRandomFully();
    const previous = previousSubnet(parseEnvFile((await readTextIfExists(spec.host.subnetFile)) ?? ''));
    return { store, ids, config, range, backend, facts, mtu, devices, vtepMAC, leaseValue, randomFully, previous };
  }

  /** Start the reconciler and the netlink monitor; resolves once converged (datapath, rules, files). */
  private async converge(reconciler: Reconciler, inputs: ReconcileInputs, scope: EventScope): Promise<void> {
    this.parts.reconciler = reconciler;
    this.stops.push(() => reconciler.stop());
    reconciler.setInputs(inputs);
    reconciler.start();
    const monitor = monitorNetlink((line) => { if (isRelevantEvent(line, scope)) reconciler.poke('netlink'); });
    this.stops.push(() => { monitor.stop(); });
    await reconciler.settle();
  }

  /** The agent's state for readiness, STATUS=, /status and /metrics. */
  snapshot(): HealthSnapshot {
    return healthSnapshot(this.parts, {
      startedAtMs: this.startedAtMs, phase: this.phase, step: this.step, renewMarginMs: this.spec.host.leaseRenewMarginSeconds * 1000,
      etcdGraceMs: this.spec.host.etcdGraceSeconds * 1000, stuckAfterMs: this.timings.stuckAfterMs,
    });
  }

  counters(): AgentCounters { return agentCounters(this.parts); }

  /** Stop every loop; leave the datapath, rules, files and lease in place (hitless restart). */
  async stop(): Promise<void> {
    this.abort.abort();
    this.phase = 'stopping';
    // Presence first (its revoke needs the client), then the rest, newest first.
    await this.parts.ids?.release();
    for (const stop of this.stops.splice(0).reverse()) await stop();
  }
}
