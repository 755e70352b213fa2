/**
 * `weft run`, the composition root: spec -> config -> host facts -> lease -> fleet mirror ->
 * reconciler -> output files -> ready; then keep the lease renewed and the datapath converged.
 * Only wiring lives here; decisions are in core/ and backends/, effects in adapters/.
 */
import { randomInt } from 'node:crypto';
import { type Prefix, formatPrefix, samePrefix } from '../core/cidr.js';
import type { NetworkConfig } from '../core/config-check.js';
import { WeftError } from '../core/errors.js';
import { Fleet } from '../core/fleet.js';
import { encodeLeaseAttrs } from '../core/lease.js';
import { isRelevantEvent } from '../core/netlink-events.js';
import { dockerOptsFor, parseEnvFile, previousSubnet, renderDaemonJson, renderSubnetEnv } from '../core/outputs.js';
import { subnetsPrefix } from '../core/owner.js';
import type { Spec } from '../core/spec.js';
import type { KeyValue } from '../core/store.js';
import { backendFor } from '../backends/index.js';
import { EtcdStore } from '../adapters/etcd.js';
import { readTextIfExists, writeIfChanged } from '../adapters/files.js';
import { hostIdentity } from '../adapters/identity.js';
import { monitorNetlink } from '../adapters/iproute2.js';
import { supportsRandomFully } from '../adapters/iptables.js';
import type { Logger } from '../adapters/log.js';
import { discoverHost, fleetConfig, kernelHost, message, sleep, vtepMACFor } from './bootstrap.js';
import { type HeldLease, LeaseKeeper } from './lease-keeper.js';
import { PrefixMirror } from './prefix-mirror.js';
import { Reconciler } from './reconciler.js';

const rng = (): number => randomInt(0, 2 ** 47) / 2 ** 47;

export interface AgentTimings {
  /** How often the lease loop looks at the clock (and retries a failed renewal). */
  readonly leaseTickMs: number;
  readonly resyncMs: number;
  readonly rulesEveryMs: number;
}

const DEFAULT_TIMINGS: AgentTimings = { leaseTickMs: 1000, resyncMs: 10_000, rulesEveryMs: 5000 };

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
  private readyAtMs = 0;
  /** A renewal or re-acquisition is in flight (ticks must not overlap). */
  private busy = false;

  constructor(private readonly spec: Spec, private readonly log: Logger, private readonly timings: AgentTimings = DEFAULT_TIMINGS) {}

  /** Bring the host into the fabric; resolves once ready (lease, datapath, rules, files). */
  async start(): Promise<void> {
    const { spec, log } = this;
    const signal = this.abort.signal;
    const identity = await hostIdentity();
    const store = await EtcdStore.connect(spec.etcd, { callTimeoutMs: 5000 });
    this.store = store;
    const config = await fleetConfig(store, spec, log, signal);
    const range = config.ipv4;
    if (!range) throw new WeftError('E_CONFIG', 'the network config has no IPv4 Network; weft programs IPv4 fabrics');
    const backend = backendFor(config.backend.type);
    const facts = await discoverHost(spec, log);
    const refusal = backend.refusal(facts);
    if (refusal) throw new WeftError('E_HOST', refusal);
    const mtu = backend.mtu(config, facts, spec.host.mtu);
    const device = backend.deviceName(config);
    const vtepMAC = await vtepMACFor(device, identity.hostID, config.backend.vxlan?.vni ?? 1);
    const value = encodeLeaseAttrs(backend.leaseAttrs(config, facts, vtepMAC));
    const previous = previousSubnet(parseEnvFile((await readTextIfExists(spec.host.subnetFile)) ?? ''));

    const keeper = new LeaseKeeper({ store, prefix: spec.etcd.prefix, identity, ttlSeconds: spec.host.leaseTTLSeconds, clock: Date, rng, log });
    const req = { range, publicIP: facts.publicIP, value, ...(previous ? { previous } : {}) };
    this.held = await this.retrying('acquire a lease', () => keeper.acquire(req), signal);
    const fleet = new Fleet(subnetsPrefix(spec.etcd.prefix), config, this.held.subnet);
    const reconciler = new Reconciler({ host: kernelHost, log, clock: Date, resyncMs: this.timings.resyncMs, rulesEveryMs: this.timings.rulesEveryMs });
    this.reconciler = reconciler;
    const randomFully = await supportsRandomFully();
    const inputsFor = (own: Prefix) => ({
      backend, config, network: range.network, ownSubnet: own, facts, mtu, vtepMAC, ipMasq: spec.host.ipMasq,
      randomFully, peers: () => fleet.peers.values(),
    });

    // The fleet must be known before the first pass: a pass with no peers would delete the
    // routes a previous run left for them (a restart must be hitless).
    const mirror = new PrefixMirror({
      store, prefix: subnetsPrefix(spec.etcd.prefix), log, clock: Date,
      onChange: (keys) => { this.onFleetChange(fleet, mirror, keys); },
    });
    this.mirror = mirror;
    await this.retrying('list the fleet', () => mirror.start(), signal);
    for (const [k, kv] of mirror.snapshot) this.judge(fleet, k, kv);

    reconciler.setInputs(inputsFor(this.held.subnet));
    reconciler.start();
    this.monitor = monitorNetlink((line) => {
      if (isRelevantEvent(line, { ...(device ? { device } : {}), iface: facts.iface, network: range.network })) reconciler.poke('netlink');
    });
    await reconciler.settle();
    await this.writeOutputs(config, this.held.subnet, mtu);
    this.readyAtMs = Date.now();
    log.info('ready', { subnet: formatPrefix(this.held.subnet), backend: backend.type, peers: reconciler.stats.peersProgrammed, mtu });

    this.leaseTimer = setInterval(() => {
      void this.leaseTick(keeper, fleet, reconciler, inputsFor, { range, publicIP: facts.publicIP, value }, config, mtu);
    }, this.timings.leaseTickMs);
  }

  private judge(fleet: Fleet, key: string, kv: KeyValue | undefined): void {
    const change = fleet.update(key, kv);
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
    if (!due && !this.leaseSuspect) return;
    if (this.renewFailingSince && now - this.renewFailingSince < 5000 && !this.leaseSuspect) return;
    this.busy = true;
    try {
      const renewed = await keeper.renew(held);
      this.leaseSuspect = false;
      this.renewFailingSince = 0;
      if (renewed !== 'lost') { this.held = renewed; this.log.debug('lease renewed', { subnet: formatPrefix(held.subnet), expiresAt: new Date(renewed.expiresAtMs).toISOString() }); return; }
      this.log.warn('lease lost (expired, revoked, deleted or taken); re-acquiring, preferring the same subnet', { subnet: formatPrefix(held.subnet) });
      const again = await keeper.acquire({ ...req, previous: held.subnet });
      this.held = again;
      // The old etcd lease may still be alive with nothing we want on it: do not leave it for 24 h.
      if (again.lease !== held.lease) await this.store?.revoke(held.lease).catch(() => undefined);
      if (!samePrefix(again.subnet, held.subnet)) {
        this.log.error('re-acquired a DIFFERENT subnet; containers on this host must be restarted with the new bridge options', { was: formatPrefix(held.subnet), now: formatPrefix(again.subnet) });
        fleet.setOwnSubnet(again.subnet);
        reconciler.setInputs(inputsFor(again.subnet));
        await reconciler.settle();
        await this.writeOutputs(config, again.subnet, mtu);
      } else this.log.info('lease re-acquired with the same subnet', { subnet: formatPrefix(again.subnet), how: again.how });
    } catch (e) {
      if (!this.renewFailingSince) this.renewFailingSince = now;
      this.log.warn('lease renewal failed; the datapath is left as it is; retrying', { error: message(e), expiresAt: new Date(held.expiresAtMs).toISOString() });
    } finally {
      this.busy = false;
    }
  }

  private async writeOutputs(config: NetworkConfig, subnet: Prefix, mtu: number): Promise<void> {
    const { spec, log } = this;
    const env = { ...(config.ipv4 ? { network: config.ipv4.network } : {}), subnet, mtu, ipMasq: spec.host.ipMasq };
    const files: [string, string][] = [[spec.host.subnetFile, renderSubnetEnv(env)]];
    if (spec.outputs.docker) files.push([spec.outputs.docker.file, dockerOptsFor(env, spec.outputs.docker.key)]);
    if (spec.outputs.dockerDaemonJson) files.push([spec.outputs.dockerDaemonJson, renderDaemonJson(subnet, mtu)]);
    for (const [path, text] of files) {
      if (await writeIfChanged(path, text)) log.info('wrote', { file: path });
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
    clearInterval(this.leaseTimer);
    this.monitor?.stop();
    await this.reconciler?.stop();
    await this.mirror?.stop().catch(() => undefined);
    await this.store?.close().catch(() => undefined);
  }
}
