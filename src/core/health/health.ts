/**
 * What "healthy" and "ready" mean, decided from a snapshot of the agent's state and a time.
 * Pure: the agent builds the snapshot, the HTTP endpoints, sd_notify and `weft status` only
 * render what these functions decide. Unlike flanneld, readiness is re-judged on every call,
 * so it goes back to not-ready when the lease or etcd goes away (flannel-compat.md §12).
 */
import type { PendingConfig } from '../config/config-pace.js';
import { formatDuration } from '../base/duration.js';
import { capText, safeText } from '../base/escape.js';

export type Phase = 'starting' | 'running' | 'stopping';

export interface LeaseState {
  /** The subnet named first: IPv4, or on an IPv6-only network the IPv6 one. */
  readonly subnet: string;
  readonly publicIP: string;
  /** The IPv6 half of the lease, when it has one. */
  readonly ipv6Subnet?: string;
  readonly publicIPv6?: string;
  readonly expiresAtMs: number;
  /** When a renewal becomes due (expiry minus the renew margin). */
  readonly renewDueAtMs: number;
  readonly lastRenewedAtMs: number;
  /** The lease was found lost and a new one is being acquired. */
  readonly reacquiring: boolean;
}

/** host.maxPeers and what it leaves out now. */
export interface PeerCaps {
  readonly maxPeers: number;
  readonly maxEntries: number;
  readonly entriesLeftOut: number;
  readonly peersLeftOut: number;
}

/** One listing followed by list + watch (agent/prefix-mirror.ts). */
export interface ListingState {
  /** What is listed: `subnets` (<prefix>/subnets/) or `config` (<prefix>/config). */
  readonly what: string;
  /** When its re-list (or the watch after it) started failing; 0 while it follows etcd. */
  readonly failingSinceMs: number;
  readonly lastError: string;
}

export interface ReconcileState {
  readonly passes: number;
  readonly lastPassAtMs: number;
  readonly lastPassOk: boolean;
  readonly lastPassDurationMs: number;
  readonly lastError: string;
  /** When the pass in flight started; 0 when none is running. */
  readonly runningSinceMs: number;
  readonly driftRepairs: Readonly<Record<string, number>>;
}

export interface HealthSnapshot {
  readonly nowMs: number;
  readonly startedAtMs: number;
  readonly phase: Phase;
  /** What start-up is doing now ("connecting to etcd", "acquiring a lease", ...). */
  readonly step: string;
  readonly version: string;
  readonly lease?: LeaseState;
  readonly backend?: {
    readonly type: string;
    readonly device?: string;
    readonly mtu: number;
    /** wireguard: `kernel` or `userspace` (wireguard-go). */ readonly implementation?: string;
  };
  /** The host identity in use; `clash` is the last clash with a cloned host found ('' when none). */
  readonly identity?: { readonly hostID: string; readonly source: string; readonly clash: string };
  /**
   * `halvesIgnored`: peers with a half this host does not program (another address family, or a
   * bad IPv6 half). `caps`: host.maxPeers and what it leaves out now (the youngest entries of
   * subnets/ not kept, the youngest valid leases not programmed).
   */
  readonly peers: {
    readonly known: number;
    readonly programmed: number;
    readonly rejected: number;
    readonly malformed: number;
    readonly halvesIgnored?: number;
    readonly caps?: PeerCaps;
  };
  /** The etcd listings the agent follows (subnets/, the config key): since when each has been failing (0: it is not) and why. */
  readonly listings?: readonly ListingState[];
  readonly reconcile: ReconcileState;
  /** Output files the spec asks for that could not be written, with why (path -> error). */
  readonly outputs?: { readonly failing: Readonly<Record<string, string>> };
  readonly etcd: {
    readonly lastOkAtMs: number;
    readonly lastError: string;
    readonly requestErrors: number;
    readonly watchRestarts: number;
  };
  readonly etcdGraceMs: number;
  /**
   * Running from the cached state (core/fleet/cached-state.ts) because etcd could not be reached at
   * start: since when. Ready with a warning while the cached lease lasts; absent once etcd answered.
   */
  readonly degraded?: { readonly sinceMs: number };
  /** A reconcile pass running longer than this, or none finishing for this long, is stuck. */
  readonly stuckAfterMs: number;
  /**
   * Live network config changes (agent/config-follower.ts): why the stored config is not the
   * one running ('' when it is), and bridge outputs rewritten since when that Docker has not
   * picked up yet (it must be restarted); `pending`: a stored config not in use yet (the hold-down,
   * the rate limit, or live following off: core/config/config-pace.ts).
   */
  readonly config?: {
    readonly problem: string;
    readonly restartNeeded?: { readonly sinceMs: number; readonly changes: readonly string[] };
    readonly pending?: PendingConfig;
  };
  /**
   * Destinations of peers' routes that a route weft does not own holds, left alone (core/datapath/plan.ts
   * RefusedRoutes): how many, and the first few as `dst: held by <route>`.
   */
  readonly refusedRoutes?: { readonly count: number; readonly examples: readonly string[] };
  /**
   * The health and metrics listener (agent/health-listener.ts), when host.listen is set: why
   * it does not serve now ('' while it does) and how many attempts to listen failed so far.
   */
  readonly listener?: { readonly address: string; readonly problem: string; readonly failures: number };
}

const secs = (ms: number): string => formatDuration(Math.max(0, Math.round(ms / 1000)) * 1000);

/** The reconcile loop is alive: no pass stuck, and passes keep coming (the watchdog heartbeat). */
export function reconcilerHealthy(r: ReconcileState, nowMs: number, stuckAfterMs: number): boolean {
  return reconcilerProblem(r, nowMs, stuckAfterMs) === undefined;
}

function reconcilerProblem(r: ReconcileState, nowMs: number, stuckAfterMs: number): string | undefined {
  if (r.runningSinceMs > 0 && nowMs - r.runningSinceMs > stuckAfterMs)
    return `reconciler stuck: a pass has been running for ${secs(nowMs - r.runningSinceMs)}`;
  if (r.runningSinceMs === 0 && r.lastPassAtMs > 0 && nowMs - r.lastPassAtMs > stuckAfterMs)
    return `reconciler stalled: no pass for ${secs(nowMs - r.lastPassAtMs)}`;
  return undefined;
}

export function etcdReachable(s: HealthSnapshot): boolean {
  return s.etcd.lastOkAtMs > 0 && s.nowMs - s.etcd.lastOkAtMs <= s.etcdGraceMs;
}

/**
 * Ready: running, lease held and fresh, last pass ok and the loop alive, etcd seen within grace.
 * The reasons quote etcd and kernel errors, escaped onto one line and cut (they end up in
 * STATUS=, /readyz and on terminals). `warnings` are problems that do not stop this host from
 * working but need an operator (a host identity clash with a cloned VM, resolved by moving).
 */
export function readiness(s: HealthSnapshot): { ready: boolean; reasons: string[]; warnings: string[] } {
  const reasons: string[] = [];
  const warnings = s.identity?.clash ? [s.identity.clash] : [];
  const degraded = s.degraded;
  if (degraded) warnings.push(degradedMessage(degraded.sinceMs));
  if (s.config?.problem) warnings.push(safeText(s.config.problem));
  if (s.config?.restartNeeded) warnings.push(restartMessage(s.config.restartNeeded));
  const refused = s.refusedRoutes;
  if (refused && refused.count > 0) {
    warnings.push(
      `${refused.count} peer route(s) not programmed: a route weft does not own holds the destination (${refused.examples.map((e) => safeText(e)).join('; ')}${refused.count > refused.examples.length ? '; ...' : ''})`,
    );
  }
  if (s.listener?.problem) warnings.push(listenerMessage(s.listener.problem));
  if (s.config?.pending?.reason === 'not-followed') warnings.push(notFollowedMessage(s.config.pending.sinceMs));
  if (s.phase === 'starting') reasons.push(`starting: ${s.step}`);
  if (s.phase === 'stopping') reasons.push('stopping');
  // A file the spec asks for that cannot be written (at start too: it is why start-up waits):
  // Docker would start with a stale or no subnet.
  for (const [file, error] of Object.entries(s.outputs?.failing ?? {}))
    reasons.push(`output ${safeText(file)} not written: ${safeText(error)}`);
  const l = s.lease;
  if (s.phase === 'running') {
    if (!l) reasons.push('no lease');
    else if (l.reacquiring) reasons.push(`lease on ${l.subnet} lost; re-acquiring`);
    else if (s.nowMs >= l.expiresAtMs)
      reasons.push(`lease on ${l.subnet} expired ${secs(s.nowMs - l.expiresAtMs)} ago`);
    else if (!degraded && s.nowMs - l.renewDueAtMs > s.etcdGraceMs)
      reasons.push(`lease renewal overdue by ${secs(s.nowMs - l.renewDueAtMs)}`);
    if (s.reconcile.passes === 0) reasons.push('no reconcile pass yet');
    else if (!s.reconcile.lastPassOk && !Object.values(s.outputs?.failing ?? {}).includes(s.reconcile.lastError)) {
      reasons.push(`last reconcile failed${s.reconcile.lastError ? `: ${safeText(s.reconcile.lastError)}` : ''}`);
    }
    const stuck = reconcilerProblem(s.reconcile, s.nowMs, s.stuckAfterMs);
    if (stuck) reasons.push(stuck);
    // etcd may answer renewals and probes while a listing keeps failing (an answer too large,
    // a member that refuses one range): the fleet is then frozen, which must not look ready.
    for (const l of s.listings ?? []) {
      if (l.failingSinceMs > 0 && s.nowMs - l.failingSinceMs >= s.etcdGraceMs) {
        reasons.push(
          `etcd listing of <prefix>/${safeText(l.what)} failing for ${secs(s.nowMs - l.failingSinceMs)}${l.lastError ? `: ${safeText(l.lastError)}` : ''}`,
        );
      }
    }
    // Running from the cached state: etcd being out of reach is the warning above, not a reason.
    if (!degraded && !etcdReachable(s)) {
      const since = s.etcd.lastOkAtMs > 0 ? `for ${secs(s.nowMs - s.etcd.lastOkAtMs)} ` : '';
      reasons.push(
        `etcd unreachable ${since}(grace ${secs(s.etcdGraceMs)})${s.etcd.lastError ? `: ${safeText(s.etcd.lastError)}` : ''}`,
      );
    }
  }
  return { ready: reasons.length === 0, reasons, warnings };
}

/** The warning shown after a live config change rewrote the bridge outputs. */
export function restartMessage(r: { readonly sinceMs: number; readonly changes: readonly string[] }): string {
  return `restart Docker (or Podman): the network config changed at ${new Date(r.sinceMs).toISOString()} and its bridge does not use the new ${r.changes.map((c) => safeText(c)).join(', ')} until then`;
}

/**
 * The warning shown while host.listen cannot be served (another process holds the address):
 * a warning, not a reason, because the fabric works without it. STATUS= carries it in full,
 * as nothing on the port can be asked.
 */
export function listenerMessage(problem: string): string {
  return `not serving /healthz, /readyz, /status and /metrics: ${safeText(problem)}; retrying`;
}

/** The warning shown while a newer stored config is not applied because live following is off. */
export function notFollowedMessage(sinceMs: number): string {
  return `the stored network config changed at ${new Date(sinceMs).toISOString()} and is not in use: live following is off (host.followConfig: false); it is used at the next start of weft`;
}

/** The warning shown while running from the cached state. */
export function degradedMessage(sinceMs: number): string {
  return `running from cached state, etcd unreachable since ${new Date(sinceMs).toISOString()}`;
}

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;

/** One line for systemd's STATUS= ("leased 198.18.5.0/24, 12 peers"). */
export function statusLine(s: HealthSnapshot): string {
  const listening = s.listener?.problem ? `; WARNING: ${listenerMessage(s.listener.problem)}` : '';
  if (s.phase === 'starting') return `starting: ${s.step}${listening}`;
  if (s.phase === 'stopping') return 'stopping; the datapath and the lease stay in place';
  const l = s.lease;
  if (!l) return 'no lease';
  let line = `leased ${l.subnet}${l.ipv6Subnet !== undefined && l.ipv6Subnet !== l.subnet ? ` + ${l.ipv6Subnet}` : ''}, ${plural(s.peers.programmed, 'peer')}`;
  if (s.peers.rejected > 0) line += `, ${s.peers.rejected} not programmed`;
  if (s.peers.malformed > 0) line += `, ${plural(s.peers.malformed, 'malformed lease')} ignored`;
  const r = readiness(s);
  if (!r.ready) line += `; NOT READY: ${r.reasons.join('; ')}`;
  if (s.degraded) line += `; DEGRADED: ${degradedMessage(s.degraded.sinceMs)}`;
  if (s.identity?.clash) line += '; WARNING: host identity clash, see weft status';
  if (s.config?.problem) line += '; WARNING: the stored network config is not in use, see weft status';
  if (s.config?.restartNeeded) line += '; RESTART DOCKER: the bridge outputs changed';
  return line + listening;
}

/** The JSON document `/status` serves and `weft status --json` prints. */
export interface StatusReport {
  readonly ready: boolean;
  readonly reasons: readonly string[];
  readonly warnings: readonly string[];
  readonly identity: HealthSnapshot['identity'] | null;
  /** Running from the cached state since (ISO time); null when not. */
  readonly degradedSince: string | null;
  readonly phase: Phase;
  readonly status: string;
  readonly version: string;
  readonly uptimeSeconds: number;
  readonly lease: null | {
    readonly subnet: string;
    readonly publicIP: string;
    readonly ipv6Subnet: string | null;
    readonly publicIPv6: string | null;
    readonly expiresAt: string;
    readonly secondsToExpiry: number;
    readonly lastRenewedAt: string | null;
    readonly reacquiring: boolean;
  };
  readonly backend: HealthSnapshot['backend'] | null;
  readonly peers: HealthSnapshot['peers'];
  readonly reconcile: {
    readonly passes: number;
    readonly lastAt: string | null;
    readonly lastOk: boolean;
    readonly lastDurationMs: number;
    readonly lastError: string;
    readonly healthy: boolean;
    readonly driftRepairs: Readonly<Record<string, number>>;
  };
  readonly etcd: {
    readonly reachable: boolean;
    readonly lastOkAt: string | null;
    readonly lastError: string;
    readonly requestErrors: number;
    readonly watchRestarts: number;
  };
  /**
   * A stored network config not in use yet: why (`hold-down`, `rate-limit`, `not-followed`),
   * since when it is stored, and when it is applied (null with following off: at the next start).
   */
  readonly configPending: null | {
    readonly reason: PendingConfig['reason'];
    readonly since: string;
    readonly applyAt: string | null;
  };
}

const iso = (ms: number): string | null => (ms > 0 ? new Date(ms).toISOString() : null);

export function statusReport(s: HealthSnapshot): StatusReport {
  const r = readiness(s);
  const l = s.lease;
  return {
    ready: r.ready,
    reasons: r.reasons,
    warnings: r.warnings,
    identity: s.identity ?? null,
    degradedSince: s.degraded ? iso(s.degraded.sinceMs) : null,
    phase: s.phase,
    status: statusLine(s),
    version: s.version,
    uptimeSeconds: Math.round((s.nowMs - s.startedAtMs) / 1000),
    lease: l
      ? {
          subnet: l.subnet,
          publicIP: l.publicIP,
          ipv6Subnet: l.ipv6Subnet ?? null,
          publicIPv6: l.publicIPv6 ?? null,
          expiresAt: iso(l.expiresAtMs) ?? '',
          secondsToExpiry: Math.round((l.expiresAtMs - s.nowMs) / 1000),
          lastRenewedAt: iso(l.lastRenewedAtMs),
          reacquiring: l.reacquiring,
        }
      : null,
    backend: s.backend ?? null,
    peers: s.peers,
    reconcile: {
      passes: s.reconcile.passes,
      lastAt: iso(s.reconcile.lastPassAtMs),
      lastOk: s.reconcile.lastPassOk,
      lastDurationMs: s.reconcile.lastPassDurationMs,
      lastError: capText(s.reconcile.lastError),
      healthy: reconcilerHealthy(s.reconcile, s.nowMs, s.stuckAfterMs),
      driftRepairs: s.reconcile.driftRepairs,
    },
    etcd: {
      reachable: etcdReachable(s),
      lastOkAt: iso(s.etcd.lastOkAtMs),
      lastError: capText(s.etcd.lastError),
      requestErrors: s.etcd.requestErrors,
      watchRestarts: s.etcd.watchRestarts,
    },
    configPending: pendingReport(s.config?.pending),
  };
}

/** What host.maxPeers leaves out, when it leaves anything out. */
function capsText(c: PeerCaps | undefined): string {
  if (!c || (c.entriesLeftOut === 0 && c.peersLeftOut === 0)) return '';
  return `; CAPPED by host.maxPeers ${c.maxPeers}: ${c.peersLeftOut} valid leases not programmed, ${c.entriesLeftOut} entries not read (the youngest)`;
}

function pendingReport(p: PendingConfig | undefined): StatusReport['configPending'] {
  return p
    ? {
        reason: p.reason,
        since: new Date(p.sinceMs).toISOString(),
        applyAt: p.applyAtMs === undefined ? null : new Date(p.applyAtMs).toISOString(),
      }
    : null;
}

/** The `config` row of `weft status`: a stored config not in use yet, and when it will be. */
function pendingRow(p: NonNullable<StatusReport['configPending']>, nowMs: number): string {
  const since = `stored ${ago(p.since, nowMs)}`;
  if (p.applyAt === null)
    return `a newer stored config (${since}) is not applied: host.followConfig is false; it is used at the next start`;
  const wait =
    p.reason === 'rate-limit' ? 'at most one change per host.configMinInterval' : 'once stable for host.configHoldDown';
  return `change pending (${since}); applied at ${p.applyAt} (in ${secs(Date.parse(p.applyAt) - nowMs)}, ${wait})`;
}

const ago = (at: string | null, nowMs: number): string => (at ? `${secs(nowMs - Date.parse(at))} ago` : 'never');

/**
 * `weft status` for a human: the report as aligned lines, judged against the reader's clock.
 * The report's strings quote etcd and kernel errors: each is escaped (`t`) before it is shown.
 */
export function renderStatus(r: StatusReport, nowMs: number): string {
  const t = (s: string, max?: number): string => safeText(s, max);
  const rows: [string, string][] = [];
  rows.push(['ready', r.ready ? 'yes' : `NO: ${r.reasons.map((x) => t(x, 1024)).join('; ')}`]);
  for (const w of r.warnings) rows.push(['WARNING', t(w, 1024)]);
  if (r.identity) rows.push(['host id', `${t(r.identity.hostID)} (${t(r.identity.source)})`]);
  if (r.lease) {
    const exp = r.lease.secondsToExpiry > 0 ? `expires in ${secs(r.lease.secondsToExpiry * 1000)}` : 'EXPIRED';
    rows.push([
      'lease',
      `${t(r.lease.subnet)} for ${t(r.lease.publicIP)}, ${exp}, renewed ${ago(r.lease.lastRenewedAt, nowMs)}`,
    ]);
    if (r.lease.ipv6Subnet !== null && r.lease.ipv6Subnet !== r.lease.subnet)
      rows.push(['lease IPv6', `${t(r.lease.ipv6Subnet)} for ${t(r.lease.publicIPv6 ?? '?')}`]);
  } else rows.push(['lease', r.phase === 'starting' ? 'none yet' : 'none']);
  if (r.backend)
    rows.push([
      'backend',
      `${t(r.backend.type)}${r.backend.device ? ` (${t(r.backend.device)}${r.backend.implementation ? `, ${t(r.backend.implementation)}` : ''})` : ''}, mtu ${r.backend.mtu}`,
    ]);
  const p = r.peers;
  rows.push([
    'peers',
    `${p.programmed} programmed, ${p.known} known, ${p.rejected} not programmed, ${p.malformed} malformed${p.halvesIgnored ? `, ${p.halvesIgnored} with a half not programmed here (another address family)` : ''}${capsText(p.caps)}`,
  ]);
  const c = r.reconcile;
  const drift = Object.entries(c.driftRepairs)
    .map(([k, n]) => `${t(k)} ${n}`)
    .join(', ');
  rows.push([
    'reconcile',
    `${c.passes} passes, last ${ago(c.lastAt, nowMs)} ${c.lastOk ? 'ok' : `FAILED${c.lastError ? ` (${t(c.lastError)})` : ''}`} in ${c.lastDurationMs} ms${c.healthy ? '' : ', STUCK'}`,
  ]);
  rows.push(['drift', drift ? `repaired ${drift}` : 'none repaired']);
  const e = r.etcd;
  rows.push([
    'etcd',
    `${e.reachable ? 'reachable' : 'UNREACHABLE'}, last ok ${ago(e.lastOkAt, nowMs)}, ${e.requestErrors} request errors, ${e.watchRestarts} watch restarts${e.lastError ? `; last error: ${t(e.lastError)}` : ''}`,
  ]);
  if (r.configPending) rows.push(['config', t(pendingRow(r.configPending, nowMs))]);
  rows.push(['agent', `weft ${t(r.version)}, ${t(r.phase)}, up ${secs(r.uptimeSeconds * 1000)}`]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return `${t(r.status, 1024)}\n${rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`).join('\n')}\n`;
}
