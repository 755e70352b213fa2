/**
 * /metrics in Prometheus text format (prom-client). Every value is read from the agent's own
 * state at scrape time (collect callbacks), so there is one source of truth and nothing to
 * keep in step; only pass durations are observed as they happen (a histogram).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { type HealthSnapshot, etcdReachable, readiness } from '../core/health.js';

/** Monotonic counts kept by the agent and its parts. */
export interface AgentCounters {
  readonly renewalsOk: number;
  readonly renewalsFailed: number;
  readonly reacquisitions: number;
  readonly malformedSeen: number;
  readonly etcdRequests: number;
  readonly etcdClientResets: number;
  readonly opsApplied: number;
  readonly opsFailed: number;
  readonly passFailures: number;
  readonly rulesRestores: number;
}

export interface MetricsSource {
  snapshot(): HealthSnapshot;
  counters(): AgentCounters;
}

export class Metrics {
  readonly registry = new Registry();
  private readonly passSeconds: Histogram;

  constructor(src: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const gauge = (name: string, help: string, labelNames: string[], set: (g: Gauge, s: HealthSnapshot) => void): void => {
      new Gauge({ name, help, labelNames, registers, collect() { this.reset(); set(this, src.snapshot()); } });
    };
    /** A counter mirrored from a monotonic count: reset then inc keeps it equal to the source. */
    const counter = (name: string, help: string, labelNames: string[], values: () => [Record<string, string>, number][]): void => {
      new Counter({ name, help, labelNames, registers, collect() { this.reset(); for (const [l, v] of values()) this.inc(l, v); } });
    };
    const c = (): AgentCounters => src.counters();

    gauge('weft_info', 'weft version, backend and leased subnets, IPv4 (or the IPv6 one on an IPv6-only network) and IPv6 (always 1)', ['version', 'backend', 'subnet', 'ipv6_subnet'], (g, s) => {
      g.set({ version: s.version, backend: s.backend?.type ?? '', subnet: s.lease?.subnet ?? '', ipv6_subnet: s.lease?.ipv6Subnet ?? '' }, 1);
    });
    gauge('weft_ready', '1 when /readyz answers 200', [], (g, s) => { g.set(readiness(s).ready ? 1 : 0); });
    gauge('weft_degraded', '1 while running from the cached state because etcd could not be reached at start', [], (g, s) => { g.set(s.degraded ? 1 : 0); });
    gauge('weft_lease_expiry_seconds', 'seconds until this host\'s subnet lease expires (negative: expired)', [], (g, s) => {
      if (s.lease) g.set((s.lease.expiresAtMs - s.nowMs) / 1000);
    });
    counter('weft_lease_renewals_total', 'lease renewals by result', ['result'], () => [[{ result: 'ok' }, c().renewalsOk], [{ result: 'failed' }, c().renewalsFailed]]);
    counter('weft_lease_reacquisitions_total', 'leases found lost (expired, deleted, taken) and acquired again', [], () => [[{}, c().reacquisitions]]);
    gauge('weft_peers', 'peer leases: known (valid), programmed, rejected (valid but not programmable here)', ['state'], (g, s) => {
      g.set({ state: 'known' }, s.peers.known);
      g.set({ state: 'programmed' }, s.peers.programmed);
      g.set({ state: 'rejected' }, s.peers.rejected);
    });
    gauge('weft_malformed_leases', 'entries under <prefix>/subnets ignored as malformed, now', [], (g, s) => { g.set(s.peers.malformed); });
    counter('weft_malformed_leases_seen_total', 'malformed entries seen (each new or changed entry counts once)', [], () => [[{}, c().malformedSeen]]);
    counter('weft_reconcile_passes_total', 'reconcile passes finished', [], () => [[{}, src.snapshot().reconcile.passes]]);
    counter('weft_reconcile_failed_passes_total', 'reconcile passes that left something unapplied', [], () => [[{}, c().passFailures]]);
    counter('weft_reconcile_operations_total', 'datapath operations by result', ['result'], () => [[{ result: 'applied' }, c().opsApplied], [{ result: 'failed' }, c().opsFailed]]);
    this.passSeconds = new Histogram({ name: 'weft_reconcile_duration_seconds', help: 'duration of reconcile passes', registers, buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
    counter('weft_drift_repairs_total', 'changes made by others that weft undid, by kind of object', ['kind'], () => Object.entries(src.snapshot().reconcile.driftRepairs).map(([kind, n]) => [{ kind }, n]));
    counter('weft_iptables_restores_total', 'iptables-restore runs that installed or repaired weft\'s rules', [], () => [[{}, c().rulesRestores]]);
    counter('weft_etcd_requests_total', 'etcd requests made', [], () => [[{}, c().etcdRequests]]);
    counter('weft_etcd_request_errors_total', 'etcd requests that failed', [], () => [[{}, src.snapshot().etcd.requestErrors]]);
    counter('weft_etcd_watch_restarts_total', 'times the fleet watch was re-created (etcd restart, compaction, disconnect)', [], () => [[{}, src.snapshot().etcd.watchRestarts]]);
    counter('weft_etcd_client_resets_total', 'times a wedged etcd client was replaced', [], () => [[{}, c().etcdClientResets]]);
    gauge('weft_etcd_reachable', '1 when etcd answered within the grace period', [], (g, s) => { g.set(etcdReachable(s) ? 1 : 0); });
  }

  observePass(durationMs: number): void {
    this.passSeconds.observe(durationMs / 1000);
  }

  async text(): Promise<{ type: string; body: string }> {
    return { type: this.registry.contentType, body: await this.registry.metrics() };
  }
}
