/**
 * /metrics in the Prometheus text format (core/health/prom-text.ts). Every value is read at scrape
 * time: weft's own from the agent's state, so there is one source of truth and nothing to keep
 * in step, and the process's from Node and /proc/self. Only pass durations are observed as
 * they happen (a histogram). Nothing runs between scrapes: no timer, no event-loop monitor
 * (prom-client's default metrics kept one firing 100 times a second, half of weft's idle CPU).
 */
import { type HealthSnapshot, etcdReachable, readiness } from '../core/health/health.js';
import type { ProcFacts } from '../core/health/proc-status.js';
import {
  type Family,
  type MetricType,
  PROM_TEXT_TYPE,
  type Sample,
  formatExposition,
} from '../core/health/prom-text.js';
import { readProcSelf } from '../adapters/proc-self.js';

/** Monotonic counts kept by the agent and its parts. */
export interface AgentCounters {
  readonly renewalsOk: number;
  readonly renewalsFailed: number;
  readonly reacquisitions: number;
  /** This host's lease value put back after another writer's (core/fleet/own-lease.ts). */
  readonly leaseRestores: number;
  readonly malformedSeen: number;
  readonly etcdRequests: number;
  readonly etcdClientResets: number;
  readonly opsApplied: number;
  readonly opsFailed: number;
  readonly passFailures: number;
  readonly rulesRestores: number;
  /** Stored network configs taken up: applied live, refused as unusable, reported but not followed. */
  readonly configChanges: { readonly applied: number; readonly rejected: number; readonly notFollowed: number };
}

export interface MetricsSource {
  snapshot(): HealthSnapshot;
  counters(): AgentCounters;
}

/** What a family is, without its values (the docs and the monitoring examples are checked against it). */
export interface FamilyInfo {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labelNames: readonly string[];
}

/** How long a setImmediate scheduled now waits to run, in seconds (prom-client's measure). */
function eventLoopLagSeconds(): Promise<number> {
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    setImmediate(() => {
      resolve(Number(process.hrtime.bigint() - start) / 1e9);
    });
  });
}

/** Everything one scrape reads, read once. */
interface Scrape {
  readonly s: HealthSnapshot;
  readonly c: AgentCounters;
  readonly proc: ProcFacts;
  readonly cpu: NodeJS.CpuUsage;
  readonly mem: NodeJS.MemoryUsage;
  readonly lagSeconds: number;
}

interface Def {
  readonly info: FamilyInfo;
  readonly collect: (x: Scrape) => Family;
}

const PASS_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Start of the process, whole seconds since the epoch (as prom-client computed it). */
const START_TIME_SECONDS = Math.round(Date.now() / 1000 - process.uptime());
const NODE_VERSION = process.version.slice(1).split('.');

export class Metrics {
  private readonly defs: Def[] = [];
  /** Pass durations per bucket (not cumulative; the last slot is above 10 s). */
  private readonly passCounts = new Array<number>(PASS_BUCKETS.length + 1).fill(0);
  private passSum = 0;
  private passCount = 0;

  constructor(private readonly src: MetricsSource) {
    const one = (value: number | undefined): Sample[] => (value === undefined ? [] : [{ value }]);
    const plain = (
      type: 'gauge' | 'counter',
      name: string,
      help: string,
      labelNames: string[],
      samples: (x: Scrape) => Sample[],
    ): void => {
      this.defs.push({
        info: { name, type, help, labelNames },
        collect: (x) => ({ name, help, type, samples: samples(x) }),
      });
    };
    const gauge = (name: string, help: string, labelNames: string[], samples: (x: Scrape) => Sample[]): void => {
      plain('gauge', name, help, labelNames, samples);
    };
    const counter = (name: string, help: string, labelNames: string[], samples: (x: Scrape) => Sample[]): void => {
      plain('counter', name, help, labelNames, samples);
    };

    // The process (prom-client's names, types and help texts).
    counter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', [], ({ cpu }) =>
      one(cpu.user / 1e6),
    );
    counter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', [], ({ cpu }) =>
      one(cpu.system / 1e6),
    );
    counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', [], ({ cpu }) =>
      one((cpu.user + cpu.system) / 1e6),
    );
    gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', [], () =>
      one(START_TIME_SECONDS),
    );
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', [], ({ proc }) => one(proc.residentBytes));
    gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.', [], ({ proc }) => one(proc.virtualBytes));
    gauge('process_open_fds', 'Number of open file descriptors.', [], ({ proc }) => one(proc.openFds));
    gauge('process_max_fds', 'Maximum number of open file descriptors.', [], ({ proc }) => one(proc.maxFds));
    gauge('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds.', [], ({ lagSeconds }) => one(lagSeconds));
    gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', [], ({ mem }) =>
      one(mem.heapTotal),
    );
    gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', [], ({ mem }) =>
      one(mem.heapUsed),
    );
    gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', [], ({ mem }) => one(mem.external));
    gauge('nodejs_version_info', 'Node.js version info.', ['version', 'major', 'minor', 'patch'], () => [
      {
        labels: {
          version: process.version,
          major: NODE_VERSION[0] ?? '',
          minor: NODE_VERSION[1] ?? '',
          patch: NODE_VERSION[2] ?? '',
        },
        value: 1,
      },
    ]);

    // weft.
    gauge(
      'weft_info',
      'weft version, backend and leased subnets, IPv4 (or the IPv6 one on an IPv6-only network) and IPv6 (always 1)',
      ['version', 'backend', 'subnet', 'ipv6_subnet'],
      ({ s }) => [
        {
          labels: {
            version: s.version,
            backend: s.backend?.type ?? '',
            subnet: s.lease?.subnet ?? '',
            ipv6_subnet: s.lease?.ipv6Subnet ?? '',
          },
          value: 1,
        },
      ],
    );
    gauge('weft_ready', '1 when /readyz answers 200', [], ({ s }) => one(readiness(s).ready ? 1 : 0));
    gauge(
      'weft_degraded',
      '1 while running from the cached state because etcd could not be reached at start',
      [],
      ({ s }) => one(s.degraded ? 1 : 0),
    );
    gauge(
      'weft_lease_expiry_seconds',
      "seconds until this host's subnet lease expires (negative: expired)",
      [],
      ({ s }) => one(s.lease ? (s.lease.expiresAtMs - s.nowMs) / 1000 : undefined),
    );
    counter('weft_lease_renewals_total', 'lease renewals by result', ['result'], ({ c }) => [
      { labels: { result: 'ok' }, value: c.renewalsOk },
      { labels: { result: 'failed' }, value: c.renewalsFailed },
    ]);
    counter(
      'weft_lease_reacquisitions_total',
      'leases found lost (expired, deleted, taken) and acquired again',
      [],
      ({ c }) => one(c.reacquisitions),
    );
    counter(
      'weft_lease_restores_total',
      "this host's lease value put back after another writer changed it under its etcd lease",
      [],
      ({ c }) => one(c.leaseRestores),
    );
    gauge(
      'weft_peers',
      'peer leases: known (valid), programmed, rejected (valid but not programmable here)',
      ['state'],
      ({ s }) => [
        { labels: { state: 'known' }, value: s.peers.known },
        { labels: { state: 'programmed' }, value: s.peers.programmed },
        { labels: { state: 'rejected' }, value: s.peers.rejected },
      ],
    );
    gauge(
      'weft_routes_refused',
      "peer route destinations left alone because a route weft does not own holds them (the kernel's, an operator's, a VPN's)",
      [],
      ({ s }) => one(s.refusedRoutes?.count ?? 0),
    );
    gauge('weft_malformed_leases', 'entries under <prefix>/subnets ignored as malformed, now', [], ({ s }) =>
      one(s.peers.malformed),
    );
    gauge(
      'weft_fleet_left_out',
      'what host.maxPeers leaves out now (the youngest): entries of <prefix>/subnets not read, valid leases not programmed',
      ['what'],
      ({ s }) =>
        s.peers.caps
          ? [
              { labels: { what: 'entries' }, value: s.peers.caps.entriesLeftOut },
              { labels: { what: 'peers' }, value: s.peers.caps.peersLeftOut },
            ]
          : [],
    );
    gauge(
      'weft_etcd_listing_failing_seconds',
      'how long a listing weft follows has been failing (0: it is not), by what it lists',
      ['listing'],
      ({ s }) =>
        (s.listings ?? []).map((l) => ({
          labels: { listing: l.what },
          value: l.failingSinceMs > 0 ? Math.max(0, (s.nowMs - l.failingSinceMs) / 1000) : 0,
        })),
    );
    counter(
      'weft_malformed_leases_seen_total',
      'malformed entries seen (each new or changed entry counts once)',
      [],
      ({ c }) => one(c.malformedSeen),
    );
    counter('weft_reconcile_passes_total', 'reconcile passes finished', [], ({ s }) => one(s.reconcile.passes));
    counter('weft_reconcile_failed_passes_total', 'reconcile passes that left something unapplied', [], ({ c }) =>
      one(c.passFailures),
    );
    counter('weft_reconcile_operations_total', 'datapath operations by result', ['result'], ({ c }) => [
      { labels: { result: 'applied' }, value: c.opsApplied },
      { labels: { result: 'failed' }, value: c.opsFailed },
    ]);
    const passName = 'weft_reconcile_duration_seconds';
    const passHelp = 'duration of reconcile passes';
    this.defs.push({
      info: { name: passName, type: 'histogram', help: passHelp, labelNames: [] },
      collect: () => ({
        name: passName,
        help: passHelp,
        type: 'histogram',
        samples: [{ bounds: PASS_BUCKETS, counts: [...this.passCounts], sum: this.passSum, count: this.passCount }],
      }),
    });
    counter(
      'weft_drift_repairs_total',
      'changes made by others that weft undid, by kind of object',
      ['kind'],
      ({ s }) => Object.entries(s.reconcile.driftRepairs).map(([kind, value]) => ({ labels: { kind }, value })),
    );
    counter(
      'weft_iptables_restores_total',
      "iptables-restore runs that installed or repaired weft's rules",
      [],
      ({ c }) => one(c.rulesRestores),
    );
    counter('weft_etcd_requests_total', 'etcd requests made', [], ({ c }) => one(c.etcdRequests));
    counter('weft_etcd_request_errors_total', 'etcd requests that failed', [], ({ s }) => one(s.etcd.requestErrors));
    counter(
      'weft_etcd_watch_restarts_total',
      "times an etcd watch (the fleet's or the network config's) broke and was re-created (etcd restart, compaction, disconnect, a member not answering)",
      [],
      ({ s }) => one(s.etcd.watchRestarts),
    );
    counter('weft_etcd_client_resets_total', 'times a wedged etcd client was replaced', [], ({ c }) =>
      one(c.etcdClientResets),
    );
    counter(
      'weft_health_listen_failures_total',
      'failed attempts to listen on host.listen (another process holds the address; weft retries)',
      [],
      ({ s }) => one(s.listener?.failures ?? 0),
    );
    gauge(
      'weft_config_pending',
      'a stored network config differs from the one running and is not in use yet, by why (1 for the reason that holds, else 0)',
      ['reason'],
      ({ s }) =>
        (['hold-down', 'rate-limit', 'not-followed'] as const).map((reason) => ({
          labels: { reason },
          value: s.config?.pending?.reason === reason ? 1 : 0,
        })),
    );
    counter('weft_config_changes_total', 'stored network configs taken up, by result', ['result'], ({ c }) => [
      { labels: { result: 'applied' }, value: c.configChanges.applied },
      { labels: { result: 'rejected' }, value: c.configChanges.rejected },
      { labels: { result: 'not-followed' }, value: c.configChanges.notFollowed },
    ]);
    gauge('weft_etcd_reachable', '1 when etcd answered within the grace period', [], ({ s }) =>
      one(etcdReachable(s) ? 1 : 0),
    );
  }

  /** Every family exported, in the order /metrics writes them (reads no state). */
  families(): FamilyInfo[] {
    return this.defs.map((d) => d.info);
  }

  observePass(durationMs: number): void {
    const seconds = durationMs / 1000;
    const found = PASS_BUCKETS.findIndex((b) => seconds <= b);
    const i = found < 0 ? PASS_BUCKETS.length : found;
    this.passCounts[i] = (this.passCounts[i] ?? 0) + 1;
    this.passSum += seconds;
    this.passCount += 1;
  }

  async text(): Promise<{ type: string; body: string }> {
    const lagSeconds = await eventLoopLagSeconds();
    const x: Scrape = {
      s: this.src.snapshot(),
      c: this.src.counters(),
      proc: readProcSelf(),
      cpu: process.cpuUsage(),
      mem: process.memoryUsage(),
      lagSeconds,
    };
    return { type: PROM_TEXT_TYPE, body: formatExposition(this.defs.map((d) => d.collect(x))) };
  }
}
