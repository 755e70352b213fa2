/**
 * `weft run`, the composition root: spec -> config -> host facts -> identity -> lease -> fleet
 * view -> reconciler (datapath, rules, output files) -> ready. Each part has one job and its
 * own state; this file only wires them: identity-keeper (host ID, presence, clones),
 * lease-holder (acquire, renew, re-acquire), fleet-view (etcd mirror -> peers), reconciler
 * (everything weft owns on the host), etcd-probe (readiness) and snapshot (health).
 * When etcd does not answer at start, a usable cached state (state-file, core/cached-state)
 * brings the host up degraded and the etcd path runs on in the background.
 */
import { randomInt } from 'node:crypto';
import { type CacheStart, cacheStart } from '../core/fleet/cached-state.js';
import { type Prefix, formatIP, formatPrefix } from '../core/net/cidr.js';
import type { FamilyRange, NetworkConfig } from '../core/flannel/config-check.js';
import { WeftError } from '../core/base/errors.js';
import { Fleet } from '../core/fleet/fleet.js';
import { type HealthSnapshot, type Phase, degradedMessage } from '../core/health/health.js';
import { type HostFacts } from '../core/host/host-facts.js';
import { hostAddress } from '../core/net/ip-scope.js';
import { configKey, subnetsPrefix } from '../core/fleet/owner.js';
import { encodeLeaseAttrs } from '../core/flannel/lease.js';
import { type SubnetKey, formatSubnetKey, sameSubnetKey } from '../core/flannel/subnet-key.js';
import { parseEnvFile, previousSubnets } from '../core/outputs/outputs.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import type { Spec } from '../core/spec/spec.js';
import { BACKENDS, backendFor } from '../backends/index.js';
import { fabricPrefixes } from '../core/config/config-fit.js';
import { hostRefusal } from './host-fit.js';
import { wireguardImplementation } from '../adapters/wireguard.js';
import { KeyWatcher, wireguardKeys } from './wireguard-keys.js';
import { EtcdStore } from '../adapters/etcd.js';
import { readTextIfExists } from '../adapters/files.js';
import { hostIdentity } from '../adapters/identity.js';
import { monitorNetlink } from '../adapters/iproute2.js';
import { monitorRules, supportsRandomFully } from '../adapters/iptables.js';
import type { Logger } from '../adapters/log.js';
import { discoverHost, fleetConfig, kernelHost, publishedMACs } from './bootstrap.js';
import { ConfigFollower } from './config-follower.js';
import { EtcdProbe } from './etcd-probe.js';
import { FleetView } from './fleet-view.js';
import { IdentityKeeper } from './identity-keeper.js';
import { LeaseHolder } from './lease-holder.js';
import { LeaseKeeper } from './lease-keeper.js';
import type { AgentCounters } from './metrics.js';
import { type Derived, type Live, LiveConfig, type LiveWiring } from './live-config.js';
import { outputFiles } from './outputs.js';
import { OutputsHook } from './outputs-hook.js';
import { type ReconcileInputs, Reconciler } from './reconciler.js';
import { retrying, within } from './retry.js';
import { type Parts, agentCounters, healthSnapshot } from './snapshot.js';
import { StateSaver, cachedStateOf, readStateFile } from './state-file.js';

const rng = (): number => randomInt(0, 2 ** 47) / 2 ** 47;

/** The lease ranges a derived config asks for. */
const ranges = (d: Derived): { range?: FamilyRange; rangeV6?: FamilyRange } => ({
  ...(d.range ? { range: d.range } : {}),
  ...(d.rangeV6 ? { rangeV6: d.rangeV6 } : {}),
});

export interface AgentTimings {
  /** How often the lease loop looks at the clock (and retries a failed renewal). */
  readonly leaseTickMs: number;
  readonly resyncMs: number;
  readonly rulesEveryMs: number;
  /** How often etcd is asked something when nothing else talked to it (readiness). */
  readonly etcdProbeMs: number;
  /** A reconcile pass running (or none finishing) this long means the loop is stuck. */
  readonly stuckAfterMs: number;
  /** etcd must answer (the config read) within this at start, else a usable cached state is used. */
  readonly cacheAfterMs?: number;
  /** The cached state is written at most this often. */
  readonly stateSaveGapMs?: number;
}

/**
 * 5 s: long enough for an etcd that is merely slow (a leader election takes ~1-2 s, and one
 * call's deadline is 5 s), short enough that Docker, waiting on weft after a power cut, starts
 * within seconds. A healthy etcd answers in milliseconds, so a normal start never waits for it.
 */
const CACHE_AFTER_MS = 5000;
const STATE_SAVE_GAP_MS = 3000;

/** What start-up knows before the network config: etcd client, identity, host facts, the one reconciler. */
interface Base {
  readonly store: EtcdStore;
  readonly ids: IdentityKeeper;
  readonly facts: HostFacts;
  readonly randomFully: boolean;
  /** ip6tables has --random-fully (false when it is missing: the IPv6 rules then say so on their own). */
  readonly randomFullyV6: boolean;
  readonly reconciler: Reconciler;
  /** subnet.env as an earlier run left it (its subnets are preferred). */
  readonly subnetEnv: ReadonlyMap<string, string>;
  /**
   * The overlay prefixes an earlier run left on this host (subnet.env's, the cached state's
   * network and subnets: a reboot empties /run, not /var/lib): what lies in them is the fabric's.
   */
  readonly ranBefore: readonly Prefix[];
  /** The subnets an earlier run held (subnet.env's, the cached state's). */
  readonly subnetsBefore: readonly Prefix[];
}

const DEFAULT_TIMINGS: AgentTimings = {
  leaseTickMs: 1000,
  resyncMs: 30_000,
  rulesEveryMs: 5000,
  etcdProbeMs: 5000,
  stuckAfterMs: 15_000,
};

export interface AgentOptions {
  readonly timings?: AgentTimings;
  readonly onPass?: (durationMs: number, ok: boolean) => void;
  readonly onStep?: (step: string) => void;
  /**
   * The rejoin after a start from the cached state failed for good (no free subnet, refused
   * credentials, ...): the host must not go on, ready, on a subnet another host may hold. The
   * caller stops the agent and exits non-zero, so systemd restarts it on the etcd path.
   */
  readonly onFatal?: (error: unknown) => void;
}

export class Agent {
  private readonly abort = new AbortController();
  private readonly startedAtMs = Date.now();
  private phase: Phase = 'starting';
  private step = 'reading the host identity';
  /** The parts started so far (snapshot reads them; stop stops them, newest first). */
  private readonly parts: Parts = {};
  private readonly stops: (() => Promise<void> | void)[] = [];
  /** Joining etcd after a start from the cached state (stop waits for it). */
  private background: Promise<void> | undefined;
  private saver: StateSaver | undefined;
  /** The WireGuard device of the backend running, if it asks for keys: /status shows its implementation. */
  private wireguardDevice: string | undefined;

  constructor(
    private readonly spec: Spec,
    private readonly log: Logger,
    private readonly opts: AgentOptions = {},
  ) {}

  private get timings(): AgentTimings {
    return this.opts.timings ?? DEFAULT_TIMINGS;
  }

  private setStep(step: string): void {
    this.step = step;
    this.opts.onStep?.(step);
  }

  /**
   * Bring the host into the fabric; resolves once ready (lease, datapath, rules, files). When
   * etcd does not answer within `cacheAfterMs` and a usable cached state is on disk
   * (core/fleet/cached-state.ts), the host comes up from it, degraded, and joins etcd in the background.
   */
  async start(): Promise<void> {
    const { spec, log, parts } = this;
    const signal = this.abort.signal;
    const identity = await hostIdentity({ stateDir: spec.host.stateDir });
    this.setStep('connecting to etcd');
    const store = await EtcdStore.connect(spec.etcd, { callTimeoutMs: 5000 });
    parts.store = store;
    this.stops.push(() => store.close());
    const ids = new IdentityKeeper(identity, { store, prefix: spec.etcd.prefix, stateDir: spec.host.stateDir, log });
    parts.ids = ids;
    this.setStep('inspecting the host');
    const cachedText = await readStateFile(spec.host.stateDir, log);
    const subnetEnv = parseEnvFile((await readTextIfExists(spec.host.subnetFile)) ?? '');
    const ranCache = cacheStart(cachedText, { nowMs: Date.now(), hostID: ids.current.hostID, backends: BACKENDS });
    const base: Base = {
      store,
      ids,
      facts: await discoverHost(spec, log),
      randomFully: await supportsRandomFully(),
      randomFullyV6: await supportsRandomFully(6),
      reconciler: this.newReconciler(),
      subnetEnv,
      ranBefore: fabricPrefixes(
        subnetEnv,
        ranCache.ok ? ranCache.value.config : undefined,
        ranCache.ok ? ranCache.value.subnets : undefined,
      ),
      subnetsBefore: [previousSubnets(subnetEnv), ranCache.ok ? ranCache.value.subnets : undefined]
        .flatMap((k) => (k ? [k.v4, k.v6] : []))
        .filter((p): p is Prefix => p !== undefined),
    };
    this.setStep('reading the network config from etcd');
    // A stored config this host cannot use is waited out like an invalid one (with a cached state, the host runs on it meanwhile).
    const fleetConfigP = fleetConfig(store, spec, log, signal, {
      refusal: (c) => this.refusal(c, base),
      onProblem: (problem) => {
        this.parts.configProblem = problem;
        if (this.phase === 'starting') this.setStep(`waiting for a network config this host can use: ${problem}`);
      },
    });
    fleetConfigP.catch(() => undefined); // awaited below; an early rejection must not be "unhandled"
    const first =
      cachedText === undefined
        ? await fleetConfigP
        : await within(fleetConfigP, this.timings.cacheAfterMs ?? CACHE_AFTER_MS);
    if (first) return this.online(first, base, undefined);
    const cache = cacheStart(cachedText, {
      nowMs: Date.now(),
      hostID: ids.current.hostID,
      backends: BACKENDS,
      ...(spec.network ? { specConfig: spec.network.config } : {}),
    });
    if (!cache.ok) {
      log.warn('etcd unreachable at start and the cached state cannot be used; waiting for etcd', {
        reason: cache.reason,
      });
      return this.online(await fleetConfigP, base, undefined);
    }
    await this.startFromCache(cache.value, base);
    this.background = fleetConfigP
      .then((fc) => this.online(fc, base, cache.value))
      .catch((e: unknown) => {
        if (signal.aborted) return;
        log.error(
          "could not rejoin etcd after starting from the cached state; exiting so that weft starts again on the etcd path (its cached subnet may be another host's by now)",
          { error: String(e) },
        );
        this.opts.onFatal?.(e);
      });
  }

  /** Degraded start: the datapath, rules and files from the cached config, lease and peers (judged as etcd's). */
  private async startFromCache(c: CacheStart, b: Base): Promise<void> {
    const { spec, log } = this;
    const sinceMs = this.startedAtMs;
    const d = await this.derive(c.config, b, c.config);
    const fleet = new Fleet(subnetsPrefix(spec.etcd.prefix), c.config, BACKENDS, c.subnets, spec.host.maxPeers);
    let rejected = 0;
    for (const kv of c.peers) {
      const change = kv.key.startsWith(subnetsPrefix(spec.etcd.prefix)) ? fleet.update(kv.key, kv) : undefined;
      if (change?.kind !== 'peer') rejected++;
    }
    if (rejected > 0) log.warn('cached peer entries ignored (malformed or not peers)', { count: rejected });
    const subnet = formatPrefix(c.subnet);
    this.parts.cached = {
      sinceMs,
      peers: fleet.peers.size,
      lease: {
        subnet,
        publicIP: hostAddress(b.facts),
        expiresAtMs: c.expiresAtMs,
        renewDueAtMs: c.expiresAtMs - spec.host.leaseRenewMarginSeconds * 1000,
        lastRenewedAtMs: 0,
        reacquiring: false,
      },
    };
    log.warn('etcd unreachable at start; running from the cached state until it answers', {
      subnet,
      peers: fleet.peers.size,
      leaseExpiresAt: new Date(c.expiresAtMs).toISOString(),
      waitedMs: Date.now() - sinceMs,
    });
    this.setStep(`from the cached state ${subnet}; programming the datapath and writing ${spec.host.subnetFile}`);
    await this.converge(b.reconciler, this.inputsFor(d, c.config, b, c.subnets, fleet.peers));
    this.phase = 'running';
    log.info('ready', {
      subnet,
      backend: d.backend.type,
      peers: b.reconciler.stats.peersProgrammed,
      mtu: d.mtu,
      degraded: degradedMessage(sinceMs),
    });
  }

  /** The etcd path: identity claim, lease, fleet view; the first convergence, or (after a cached start) new inputs. */
  private async online(
    fc: { config: NetworkConfig; text: string },
    b: Base,
    cached: CacheStart | undefined,
  ): Promise<void> {
    const { spec, log, parts } = this;
    const signal = this.abort.signal;
    const { config } = fc;
    const { store, ids, facts, reconciler } = b;
    // The identity first: a clash moves this host to a new one, and the VTEP MAC derives from it.
    this.setStep('claiming the host identity');
    await retrying('claim the host identity', () => ids.claim(hostAddress(facts), signal), { signal, log });
    const d = await this.derive(config, b, cached?.config);
    const previous = cached?.subnets ?? previousSubnets(b.subnetEnv);
    parts.configProblem = undefined;
    const keeper = new LeaseKeeper({
      store,
      prefix: spec.etcd.prefix,
      identity: () => ids.current,
      ttlSeconds: spec.host.leaseTTLSeconds,
      clock: Date,
      rng,
      log,
      maxPeers: spec.host.maxPeers,
    });
    // What the host runs now: replaced as a whole by a live network config change.
    const cur: Live = { d, config, text: fc.text, retired: [] };
    // Every subnet this host held, in this run or before (a bridge not restarted since a move holds one).
    const former = new Map(b.subnetsBefore.map((p) => [formatPrefix(p), p]));
    const inputsFor = (own: SubnetKey): ReconcileInputs => {
      for (const p of [own.v4, own.v6]) if (p) former.set(formatPrefix(p), p);
      return {
        ...this.inputsFor(cur.d, cur.config, b, own, fleet.peers),
        retiredDevices: cur.retired,
        formerSubnets: [...former.values()],
      };
    };
    const holder = new LeaseHolder({
      keeper,
      ids,
      store,
      log,
      signal,
      request: {
        ...ranges(d),
        publicIP: facts.publicIP,
        ...(facts.publicIPv6 ? { publicIPv6: facts.publicIPv6 } : {}),
        value: d.leaseValue,
        ...(previous ? { previous } : {}),
      },
      renewMarginMs: spec.host.leaseRenewMarginSeconds * 1000,
      tickMs: this.timings.leaseTickMs,
      onSubnet: (s) => {
        fleet.setOwnSubnet(s);
        reconciler.setInputs(inputsFor(s));
      },
    });
    parts.holder = holder;
    this.setStep('acquiring a subnet lease');
    const held = await holder.acquire();
    const leased = `leased ${held.subnetKey}`;

    // The fleet must be known before the first pass: a pass with no peers would delete the
    // routes a previous run left for them (a restart must be hitless).
    const fleet = new FleetView({
      store,
      prefix: spec.etcd.prefix,
      config,
      own: held.subnets,
      log,
      maxPeers: spec.host.maxPeers,
      ownLease: () => holder.lease,
      onOwnKeyChanged: () => {
        holder.markSuspect();
      },
      onPeersChanged: (keys) => {
        reconciler.poke('peers', keys);
      },
    });
    parts.fleet = fleet;
    this.stops.push(() =>
      fleet.stop().catch((e: unknown) => {
        log.debug('fleet watch stop failed; closing the client anyway', { error: String(e) });
      }),
    );
    this.setStep(`${leased}; listing the fleet`);
    // The fleet view starts from the acquisition's listing. When the acquisition wrote this
    // host's key after it, the watch brings that write; the older entry is left out, or it would
    // look like someone else's change to this host's key.
    const listed = keeper.takeSubnetsListing();
    const seed =
      listed && BigInt(held.modRevision) > BigInt(listed.revision)
        ? { ...listed, kvs: listed.kvs.filter((kv) => kv.key !== held.key) }
        : listed;
    await fleet.start(signal, seed);
    // Renewals never wait for the datapath or the files: an output that cannot be written (a
    // full disk) keeps the host not ready, but must not let its lease run out meanwhile.
    holder.start();
    this.stops.push(() => holder.stop());

    if (cached) {
      // Same inputs as the cached ones when nothing changed: the pass plans nothing (no churn).
      reconciler.setInputs(inputsFor(held.subnets));
      parts.cached = undefined;
      if (sameSubnetKey(held.subnets, cached.subnets))
        log.info('etcd answers again; left the cached state', {
          subnet: held.subnetKey,
          how: held.how,
          peers: fleet.peers.size,
        });
      else
        log.error(
          'the cached subnet is held by another host; MOVED to a different subnet; containers on this host must be restarted with the new bridge options',
          { was: formatSubnetKey(cached.subnets), now: held.subnetKey },
        );
      // Not awaited: the reconciler converges on its own, and a stop (SIGTERM) during this
      // rejoin must not wait on a pass that keeps failing.
    } else {
      this.setStep(`${leased}; programming the datapath and writing ${spec.host.subnetFile}`);
      await this.converge(reconciler, inputsFor(holder.lease?.subnets ?? held.subnets));
      this.phase = 'running';
      log.info('ready', {
        subnet: formatPrefix(held.subnet),
        ...(held.subnets.v4 && held.subnets.v6 ? { ipv6Subnet: formatPrefix(held.subnets.v6) } : {}),
        backend: d.backend.type,
        peers: reconciler.stats.peersProgrammed,
        mtu: d.mtu,
      });
    }
    if (d.wireguard) {
      // `weft wireguard rotate-key` (or an operator) replaced the key file: publish the new
      // public key and switch the device to it; peers converge on the lease change.
      const watched = [
        d.wireguard.privateKeyFile,
        ...(d.wireguard.presharedKeyFile !== undefined ? [d.wireguard.presharedKeyFile] : []),
      ];
      const watcher = new KeyWatcher(watched, log, async () => {
        const publicKeyBefore = cur.d.wireguard?.publicKey;
        cur.d = await this.derive(cur.config, b, cur.config);
        // The device takes the new key first, then peers learn it: a peer that switched first
        // would send handshakes this host cannot answer yet, and WireGuard retries only after 5 s.
        reconciler.setInputs(inputsFor(holder.lease?.subnets ?? held.subnets));
        await reconciler.settle();
        await holder.updateValue(cur.d.leaseValue);
        // The preshared key file changes too (weft writes the stored PSK there): the public key stays.
        if (cur.d.wireguard?.publicKey === publicKeyBefore)
          log.info('WireGuard preshared key changed; every peer has the new one');
        else log.info('WireGuard key rotated; published the new public key', { publicKey: cur.d.wireguard?.publicKey });
      });
      await watcher.start();
      this.stops.push(() => watcher.stop());
    }
    const probe = new EtcdProbe({
      store,
      key: `${spec.etcd.prefix}/config`,
      everyMs: Math.min(this.timings.etcdProbeMs, (spec.host.etcdGraceSeconds * 1000) / 3),
      log,
    });
    probe.start();
    this.stops.push(() => {
      probe.stop();
    });
    const saver = new StateSaver({
      stateDir: spec.host.stateDir,
      minGapMs: this.timings.stateSaveGapMs ?? STATE_SAVE_GAP_MS,
      log,
      build: () => cachedStateOf(cur.text, holder.lease, ids.current.hostID, fleet.peerEntries()),
    });
    this.saver = saver;
    this.stops.push(() => saver.stop());
    await saver.flush();
    await this.follow(cur, {
      store,
      reconciler,
      holder,
      fleet,
      inputsFor,
      derive: (c) => this.derive(c, b, cur.config),
    });
  }

  /** Watch `<prefix>/config` and apply its changes live (agent/live-config.ts). */
  private async follow(cur: Live, w: Omit<LiveWiring, 'spec' | 'log' | 'parts' | 'hook'>): Promise<void> {
    const { spec, log, parts } = this;
    const hook = new OutputsHook({ program: spec.host.onOutputsChanged, subnetFile: spec.host.subnetFile, log });
    const live = new LiveConfig(cur, { ...w, spec, log, parts, hook });
    const follower = new ConfigFollower({
      store: w.store,
      key: configKey(spec.etcd.prefix),
      log,
      signal: this.abort.signal,
      backends: BACKENDS,
      current: () => cur,
      ownSubnet: () => w.holder.lease?.subnets,
      apply: (next, change) => live.apply(next, change),
      pace: {
        follow: spec.host.followConfig,
        holdDownMs: spec.host.configHoldDownSeconds * 1000,
        minIntervalMs: spec.host.configMinIntervalSeconds * 1000,
      },
    });
    parts.follower = follower;
    parts.hook = hook;
    this.stops.push(async () => {
      await follower.stop();
      await hook.stop();
    });
    await follower.start();
  }

  /** Why this host cannot use `config` (agent/host-fit.ts), or undefined; `running`: the config it runs now, if any. */
  private refusal(config: NetworkConfig, b: Base, running?: NetworkConfig): Promise<string | undefined> {
    return hostRefusal(config, {
      spec: this.spec,
      facts: b.facts,
      fabric: [...b.ranBefore, ...fabricPrefixes(new Map(), running, this.parts.holder?.lease?.subnets)],
    });
  }

  /**
   * What the config decides on this host: backend, MTU, devices, VTEP MAC, the lease value.
   * Throws (E_HOST, not retryable) when the host cannot use it; `running`: the config it runs now.
   */
  private async derive(config: NetworkConfig, b: Base, running?: NetworkConfig): Promise<Derived> {
    const { spec, parts } = this;
    const range = config.ipv4;
    const rangeV6 = config.ipv6;
    const refused = await this.refusal(config, b, running);
    if (refused) throw new WeftError('E_HOST', refused);
    const backend = backendFor(config.backend.type);
    const mtu = backend.mtu(config, b.facts, spec.host.mtu);
    const devices = backend.deviceNames(config);
    parts.backend = { type: backend.type, ...(devices.length > 0 ? { device: devices.join(', ') } : {}), mtu };
    parts.publicIP = hostAddress(b.facts);
    if (b.facts.publicIPv6) parts.publicIPv6 = formatIP(b.facts.publicIPv6);
    // What the backend asks for, by capability (types.ts): the MACs it publishes, WireGuard keys.
    const macs = await publishedMACs(backend.publishedMACs?.(config) ?? [], b.ids.current.macSeed);
    const vtepMAC = macs.v4 ?? '';
    const vtepMACv6 = rangeV6 ? macs.v6 : undefined;
    const need = backend.wireguard?.(config);
    const wireguard = need ? await wireguardKeys(spec, need, this.log) : undefined;
    this.wireguardDevice = need?.device;
    const leaseValue = encodeLeaseAttrs(backend.leaseAttrs(config, b.facts, vtepMAC, wireguard, vtepMACv6));
    return {
      ...(range ? { range } : {}),
      ...(rangeV6 ? { rangeV6 } : {}),
      backend,
      mtu,
      devices,
      vtepMAC,
      ...(vtepMACv6 ? { vtepMACv6 } : {}),
      leaseValue,
      ...(wireguard ? { wireguard } : {}),
    };
  }

  private inputsFor(
    d: Derived,
    config: NetworkConfig,
    b: Base,
    own: SubnetKey,
    peers: ReadonlyMap<string, PeerLease>,
  ): ReconcileInputs {
    const { spec } = this;
    return {
      backend: d.backend,
      config,
      facts: b.facts,
      mtu: d.mtu,
      vtepMAC: d.vtepMAC,
      ipMasq: spec.host.ipMasq,
      ...(d.range && own.v4 ? { v4: { network: d.range.network, subnet: own.v4 } } : {}),
      ...(d.rangeV6 && own.v6 ? { v6: { network: d.rangeV6.network, subnet: own.v6 } } : {}),
      ...(d.vtepMACv6 ? { vtepMACv6: d.vtepMACv6 } : {}),
      keepFabricSource: spec.outputs.podman !== undefined,
      randomFully: b.randomFully,
      randomFullyV6: b.randomFullyV6,
      files: outputFiles(spec, config, own, d.mtu),
      peers: () => peers.values(),
      peer: (k) => peers.get(k),
      formerSubnets: b.subnetsBefore,
      ...(d.wireguard ? { wireguard: d.wireguard } : {}),
    };
  }

  private newReconciler(): Reconciler {
    const onPass = this.opts.onPass;
    return new Reconciler({
      host: kernelHost,
      log: this.log,
      clock: Date,
      resyncMs: this.timings.resyncMs,
      rulesEveryMs: this.timings.rulesEveryMs,
      onPass: (ms, ok) => {
        onPass?.(ms, ok);
        if (ok) this.saver?.poke();
        // A backend over WireGuard: whether the kernel or wireguard-go serves its device (/status).
        const impl = this.wireguardDevice !== undefined ? wireguardImplementation(this.wireguardDevice) : undefined;
        if (impl && this.parts.backend) this.parts.backend = { ...this.parts.backend, implementation: impl };
      },
    });
  }

  /** Start the reconciler and the netlink monitor; resolves once converged (datapath, rules, files). */
  private async converge(reconciler: Reconciler, inputs: ReconcileInputs): Promise<void> {
    this.parts.reconciler = reconciler;
    this.stops.push(() => reconciler.stop());
    reconciler.setInputs(inputs);
    reconciler.start();
    const monitor = monitorNetlink(
      (line) => {
        reconciler.netlinkLine(line);
      },
      () => {
        reconciler.poke('netlink');
      },
    );
    this.stops.push(() => {
      monitor.stop();
    });
    // Ruleset changes followed (xtables-monitor) instead of two iptables-save runs per family every 5 s.
    const rules = monitorRules({
      onChange: () => {
        reconciler.rulesEvent('change');
      },
      onUp: () => {
        reconciler.rulesEvent('up');
      },
      onDown: () => {
        reconciler.rulesEvent('down');
      },
    });
    this.stops.push(() => {
      rules.stop();
    });
    await reconciler.settle();
  }

  /** The agent's state for readiness, STATUS=, /status and /metrics. */
  snapshot(): HealthSnapshot {
    return healthSnapshot(this.parts, {
      startedAtMs: this.startedAtMs,
      phase: this.phase,
      step: this.step,
      renewMarginMs: this.spec.host.leaseRenewMarginSeconds * 1000,
      etcdGraceMs: this.spec.host.etcdGraceSeconds * 1000,
      stuckAfterMs: this.timings.stuckAfterMs,
    });
  }

  counters(): AgentCounters {
    return agentCounters(this.parts);
  }

  /** Stop every loop; leave the datapath, rules, files and lease in place (hitless restart). */
  async stop(): Promise<void> {
    this.abort.abort();
    this.phase = 'stopping';
    await this.background;
    // Presence first (its revoke needs the client), then the rest, newest first.
    await this.parts.ids?.release();
    for (const stop of this.stops.splice(0).reverse()) await stop();
  }
}
