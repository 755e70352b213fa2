/**
 * The agent's state as one HealthSnapshot (core/health/health.ts judges it) and its counters (for
 * /metrics), read from the parts that are running; a part not started yet reads as zero.
 */
import type { HealthSnapshot, LeaseState, ListingState, Phase } from '../core/health/health.js';
import type { EtcdStore } from '../adapters/etcd.js';
import { weftVersion } from '../version.js';
import type { ConfigFollower } from './config-follower.js';
import type { FleetView } from './fleet-view.js';
import type { IdentityKeeper } from './identity-keeper.js';
import type { LeaseHolder } from './lease-holder.js';
import type { AgentCounters } from './metrics.js';
import type { OutputsHook } from './outputs-hook.js';
import type { Reconciler } from './reconciler.js';

/** The agent's parts, filled in as start-up reaches them. */
export interface Parts {
  store?: EtcdStore;
  ids?: IdentityKeeper;
  holder?: LeaseHolder;
  fleet?: FleetView;
  reconciler?: Reconciler;
  backend?: HealthSnapshot['backend'];
  publicIP?: string;
  publicIPv6?: string;
  /** Follows <prefix>/config (a problem with a new config shows as a warning). */
  follower?: ConfigFollower;
  hook?: OutputsHook;
  /** A live config change rewrote the bridge-relevant outputs: Docker must be restarted (cleared by a hook that succeeds). */
  restartNeeded?: { readonly sinceMs: number; readonly changes: readonly string[]; readonly hookRun: number };
  /** Before the config follower runs: why the config stored in etcd cannot be used on this host (start-up waits for one it can). */
  configProblem?: string | undefined;
  /** Set while running from the cached state (etcd unreachable at start): its lease and peers, since when. */
  cached?: { readonly lease: LeaseState; readonly peers: number; readonly sinceMs: number } | undefined;
}

export interface LifeState {
  readonly startedAtMs: number;
  readonly phase: Phase;
  readonly step: string;
  readonly renewMarginMs: number;
  readonly etcdGraceMs: number;
  readonly stuckAfterMs: number;
}

/** A config that could not be used, bridge outputs Docker has not picked up yet (a hook that succeeded since clears it), a stored config not in use yet. */
function configState(p: Parts): Pick<HealthSnapshot, 'config'> {
  const problem = p.follower?.problem || (p.configProblem ?? '');
  const r = p.restartNeeded;
  const restart = r && !(p.hook?.succeededSince(r.hookRun) ?? false) ? r : undefined;
  const pending = p.follower?.pending();
  if (!problem && !restart && !pending) return {};
  return {
    config: {
      problem,
      ...(restart ? { restartNeeded: { sinceMs: restart.sinceMs, changes: restart.changes } } : {}),
      ...(pending ? { pending } : {}),
    },
  };
}

/** The listings followed (subnets/, the config key), for readiness. */
function listings(p: Parts): ListingState[] {
  const out: ListingState[] = [];
  const add = (what: string, l: { readonly failingSinceMs: number; readonly lastError: string }): void => {
    out.push({ what, failingSinceMs: l.failingSinceMs, lastError: l.lastError });
  };
  if (p.fleet) add('subnets', p.fleet.listing);
  if (p.follower) add('config', p.follower.listing);
  return out;
}

export function healthSnapshot(p: Parts, l: LifeState): HealthSnapshot {
  const r = p.reconciler?.stats;
  const lease = p.holder?.state(p.publicIP ?? '', p.publicIPv6) ?? p.cached?.lease;
  return {
    nowMs: Date.now(),
    startedAtMs: l.startedAtMs,
    phase: l.phase,
    step: l.step,
    version: weftVersion(),
    ...(lease ? { lease } : {}),
    ...(p.backend ? { backend: p.backend } : {}),
    ...(p.cached ? { degraded: { sinceMs: p.cached.sinceMs } } : {}),
    ...configState(p),
    ...(r && r.routesRefused > 0 ? { refusedRoutes: { count: r.routesRefused, examples: r.refusedExamples } } : {}),
    ...(p.ids ? { identity: p.ids.snapshot() } : {}),
    peers: {
      known: p.cached?.peers ?? p.fleet?.peers.size ?? 0,
      programmed: r?.peersProgrammed ?? 0,
      rejected: r?.peersSkipped ?? 0,
      malformed: p.fleet?.malformed ?? 0,
      halvesIgnored: p.fleet?.halvesIgnored ?? 0,
      ...(p.fleet ? { caps: p.fleet.caps } : {}),
    },
    listings: listings(p),
    reconcile: {
      passes: r?.passes ?? 0,
      lastPassAtMs: r?.lastPassAtMs ?? 0,
      lastPassOk: r?.lastPassOk ?? false,
      lastPassDurationMs: r?.lastPassDurationMs ?? 0,
      lastError: r?.lastError ?? '',
      runningSinceMs: p.reconciler?.runningSinceMs ?? 0,
      driftRepairs: { ...(r?.driftRepairs ?? {}) },
    },
    outputs: { failing: { ...(r?.filesFailing ?? {}) } },
    etcd: {
      lastOkAtMs: p.store?.stats.lastOkAtMs ?? 0,
      lastError: p.store?.stats.lastError ?? '',
      requestErrors: p.store?.stats.errors ?? 0,
      watchRestarts: (p.fleet?.watchRestarts ?? 0) + (p.follower?.watchRestarts ?? 0),
    },
    etcdGraceMs: l.etcdGraceMs,
    stuckAfterMs: l.stuckAfterMs,
  };
}

export function agentCounters(p: Parts): AgentCounters {
  const r = p.reconciler?.stats;
  const h = p.holder?.stats;
  return {
    renewalsOk: h?.renewalsOk ?? 0,
    renewalsFailed: h?.renewalsFailed ?? 0,
    reacquisitions: h?.reacquisitions ?? 0,
    leaseRestores: p.holder?.restores ?? 0,
    malformedSeen: p.fleet?.stats.malformedSeen ?? 0,
    etcdRequests: p.store?.stats.calls ?? 0,
    etcdClientResets: p.store?.clientResets ?? 0,
    opsApplied: r?.opsApplied ?? 0,
    opsFailed: r?.opsFailed ?? 0,
    passFailures: r?.passFailures ?? 0,
    rulesRestores: r?.rulesRepairs ?? 0,
    configChanges: { ...(p.follower?.stats ?? { applied: 0, rejected: 0, notFollowed: 0 }) },
  };
}
