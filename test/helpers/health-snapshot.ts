/** A healthy running agent's snapshot at a fixed time and its counters, for the health, status and metrics tests. */
import type { AgentCounters } from '../../src/agent/metrics.js';
import type { HealthSnapshot } from '../../src/core/health/health.js';

export const NOW = 1_800_000_000_000;

/** Running, leased, converged, etcd answering; `patch` replaces whole fields. */
export function healthSnapshot(patch: Partial<HealthSnapshot> = {}): HealthSnapshot {
  return {
    nowMs: NOW,
    startedAtMs: NOW - 60_000,
    phase: 'running',
    step: 'done',
    version: '9.9.9',
    lease: {
      subnet: '10.5.3.0/24',
      publicIP: '192.0.2.3',
      expiresAtMs: NOW + 3_600_000,
      renewDueAtMs: NOW + 1_800_000,
      lastRenewedAtMs: NOW - 10_000,
      reacquiring: false,
    },
    backend: { type: 'vxlan', device: 'flannel.1', mtu: 1450 },
    peers: { known: 12, programmed: 12, rejected: 0, malformed: 0 },
    reconcile: {
      passes: 40,
      lastPassAtMs: NOW - 2000,
      lastPassOk: true,
      lastPassDurationMs: 4,
      lastError: '',
      runningSinceMs: 0,
      driftRepairs: { route: 2 },
    },
    etcd: { lastOkAtMs: NOW - 1000, lastError: '', requestErrors: 0, watchRestarts: 1 },
    etcdGraceMs: 60_000,
    stuckAfterMs: 15_000,
    ...patch,
  };
}

/** The agent's counters behind a scrape (/metrics). */
export const COUNTERS: AgentCounters = {
  renewalsOk: 4,
  renewalsFailed: 1,
  reacquisitions: 0,
  leaseRestores: 0,
  malformedSeen: 0,
  etcdRequests: 100,
  etcdClientResets: 0,
  opsApplied: 10,
  opsFailed: 0,
  passFailures: 0,
  rulesRestores: 1,
  configChanges: { applied: 2, rejected: 1, notFollowed: 0 },
};
