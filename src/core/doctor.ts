/**
 * `weft doctor`: "host A's containers can't reach host B's", checked and explained. Checks are
 * data: the adapters gather observations (the daemon's /status, etcd's leases, the kernel's
 * datapath and route lookups, iptables, sysctls, bounded pings); the pure functions here turn
 * them into findings, each with a verdict and the fix. Nothing here does I/O.
 *
 * Verdicts: `fail` (something is wrong: exit 1), `warn` (a risk or a thing to look at; does
 * not fail the run), `ok`, `skip` (could not be checked, and why). Every string that came from
 * etcd or the kernel is escaped with safeText where a finding is built.
 */
import type { Prefix } from './cidr.js';
import type { DesiredDatapath, ObservedDatapath } from './datapath.js';
import type { LeaseRow } from './lease-report.js';
import type { StatusObservation } from './status-report.js';
import { hostFindings } from './doctor-host.js';
import { fleetFindings } from './doctor-fleet.js';
import { type PeerObservation, peerFindings } from './doctor-peers.js';
import { safeText } from './escape.js';

export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

/** One check's verdict, in plain words, and what to do about it ('' when nothing). */
export interface Finding {
  readonly check: string;
  readonly verdict: Verdict;
  /** The peer subnet a per-peer finding is about; null for host-wide findings. */
  readonly peer: string | null;
  readonly what: string;
  readonly fix: string;
}

/** The answer of the daemon's /status endpoint, or why there is none (core/status-report.ts). */
export type { StatusObservation };

/** This host's lease as etcd holds it. */
export interface OwnLease {
  readonly subnet: Prefix;
  readonly publicIP: string;
  /** etcd's TimeToLive answer; -1 for a key without an etcd lease. */
  readonly ttlSeconds: number;
  /** How the lease was recognised as this host's ("owner record", "the daemon's status", ...). */
  readonly how: string;
}

/** What etcd said, or why it could not be asked. */
export type EtcdObservation =
  | { readonly ok: false; readonly error: string }
  | {
    readonly ok: true;
    readonly backendType: string;
    /** The vxlan UDP port (0 for other backends). */
    readonly vxlanPort: number;
    readonly network: Prefix;
    readonly rows: readonly LeaseRow[];
    readonly own: OwnLease | undefined;
  };

/** The offload state of the vxlan device (`ethtool -k`), or why it is unknown. */
export type OffloadObservation =
  | { readonly kind: 'not-vxlan' }
  | { readonly kind: 'no-ethtool' }
  | { readonly kind: 'error'; readonly error: string }
  | { readonly kind: 'read'; readonly device: string; readonly txChecksumIPGeneric: 'on' | 'off' | 'absent' };

/** The local clock against etcd's (the HTTP Date header of its /health answer). */
export type ClockObservation =
  | { readonly ok: true; readonly skewMs: number; readonly source: string }
  | { readonly ok: false; readonly error: string };

/** Everything `diagnose` judges. Absent parts are reported as skipped, never guessed. */
export interface DoctorObservations {
  readonly status: StatusObservation;
  readonly etcd: EtcdObservation;
  /** The kernel's datapath (weft's device, main routes, neighbours, fdb); undefined when unreadable. */
  readonly observed?: ObservedDatapath;
  /** What the backend wants for this host and its peers; undefined without a lease or config. */
  readonly desired?: DesiredDatapath;
  /** The vxlan device name, when the backend has one. */
  readonly device?: string;
  /** The fabric interface (underlay) and the overlay MTU in use. */
  readonly iface?: string;
  readonly mtu?: number;
  /** Per-peer observations (route lookup and probes), at most the cap. */
  readonly peers: readonly PeerObservation[];
  /** Peers left out by the cap (0 when none), and the cap. */
  readonly peersOmitted: number;
  readonly peerCap: number;
  /** A --peer filter that matched nothing: the text given. */
  readonly peerFilterUnmatched?: string;
  /** `iptables-save -t filter` text, or the error. */
  readonly filterTable: { readonly ok: true; readonly text: string } | { readonly ok: false; readonly error: string };
  /** `/proc/sys/net/ipv4/ip_forward` (trimmed), undefined when unreadable. */
  readonly ipForward?: string;
  /** rp_filter per interface name ('all' included); a missing file is absent. */
  readonly rpFilter: Readonly<Record<string, number>>;
  readonly offload: OffloadObservation;
  readonly clock: ClockObservation;
}

/** Every finding for the observations, host-wide first, then per peer. */
export function diagnose(o: DoctorObservations): Finding[] {
  return [...hostFindings(o), ...fleetFindings(o), ...peerFindings(o)];
}

/** The run is good unless a finding failed (warnings are shown but do not fail it). */
export function doctorOk(findings: readonly Finding[]): boolean {
  return findings.every((f) => f.verdict !== 'fail');
}

const MARK: Readonly<Record<Verdict, string>> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

/** The human report: one block per finding, the fix indented under it, a summary last. */
export function renderDoctor(findings: readonly Finding[]): string {
  const lines: string[] = [];
  for (const f of findings) {
    const who = f.peer === null ? '' : ` [peer ${safeText(f.peer)}]`;
    lines.push(`${MARK[f.verdict]}  ${f.check}${who}: ${f.what}`);
    if (f.fix && f.verdict !== 'ok') lines.push(`      fix: ${f.fix}`);
  }
  const count = (v: Verdict): number => findings.filter((f) => f.verdict === v).length;
  lines.push('', doctorOk(findings)
    ? `all good: ${count('ok')} ok, ${count('warn')} warning(s), ${count('skip')} skipped`
    : `something is wrong: ${count('fail')} failed, ${count('warn')} warning(s), ${count('ok')} ok, ${count('skip')} skipped`);
  return `${lines.join('\n')}\n`;
}

/** The `--json` document. */
export function doctorJson(findings: readonly Finding[]): { ok: boolean; findings: readonly Finding[] } {
  return { ok: doctorOk(findings), findings };
}
