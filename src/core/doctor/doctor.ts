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
import type { DoctorObservations, Finding, Verdict } from './doctor-observations.js';
import { hostFindings } from './doctor-host.js';
import { fleetFindings } from './doctor-fleet.js';
import { peerFindings } from './doctor-peers.js';
import { safeText } from '../base/escape.js';

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
  lines.push(
    '',
    doctorOk(findings)
      ? `all good: ${count('ok')} ok, ${count('warn')} warning(s), ${count('skip')} skipped`
      : `something is wrong: ${count('fail')} failed, ${count('warn')} warning(s), ${count('ok')} ok, ${count('skip')} skipped`,
  );
  return `${lines.join('\n')}\n`;
}

/** The `--json` document. */
export function doctorJson(findings: readonly Finding[]): { ok: boolean; findings: readonly Finding[] } {
  return { ok: doctorOk(findings), findings };
}
