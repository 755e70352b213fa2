/**
 * What `weft doctor` reads from the host beyond the datapath: bounded pings, the kernel's
 * route lookup, sysctls, ethtool's offload state, the raw filter table, the daemon's /status
 * and etcd's clock. Every probe is bounded in count and time and returns data (a failure is an
 * observation, never a throw). Parsers are exported and tested on captured output.
 */
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { EtcdSpec } from '../core/spec/spec.js';
import type { ClockObservation, OffloadObservation, StatusObservation } from '../core/doctor/doctor-observations.js';
import type { MatchingRoute, PingResult, RouteLookup } from '../core/doctor/doctor-observations.js';
import { STATUS_MAX_BYTES, judgeStatusAnswer } from '../core/health/status-report.js';
import { WeftError } from '../core/base/errors.js';
import { exec } from './exec.js';
import { getBounded } from './http.js';
import { isSafeIfName, readSysctl } from './sysctl.js';

const firstLine = (s: string): string => s.trim().split('\n')[0] ?? '';
const why = (e: unknown): string =>
  e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);

/** ping's summary line ("2 packets transmitted, 1 received, ..."); an error line when it sent nothing. */
export function parsePing(stdout: string, stderr: string): PingResult {
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(stdout);
  const err = [stderr, stdout]
    .join('\n')
    .split('\n')
    .find((l) => /error|too long|cannot|unreachable|Frag needed/i.test(l))
    ?.trim();
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), ...(err ? { error: err } : {}) };
}

/**
 * Two pings 0.2 s apart, each waited for 1 s, the whole at most 3 s (`-w`): from `source`
 * (this host's overlay address) when given, with DF set and `size` bytes of payload when given.
 */
export async function ping(
  target: string,
  o: { source?: string; dfSize?: number; count?: number } = {},
): Promise<PingResult> {
  const args = ['-n', '-q', '-c', String(o.count ?? 2), '-i', '0.2', '-W', '1', '-w', '3'];
  if (o.source !== undefined) args.push('-I', o.source);
  if (o.dfSize !== undefined) args.push('-M', 'do', '-s', String(o.dfSize));
  try {
    const r = await exec('ping', [...args, target], { timeoutMs: 5000 });
    return parsePing(r.stdout, r.stderr);
  } catch (e) {
    return { sent: 0, received: 0, error: why(e) };
  }
}

interface RouteJson {
  dst?: string;
  gateway?: string;
  dev?: string;
  type?: string;
  protocol?: string;
}
const asArray = (text: string): RouteJson[] => {
  try {
    const v: unknown = JSON.parse(text.trim() || '[]');
    return Array.isArray(v) ? (v as RouteJson[]) : [];
  } catch {
    return [];
  }
};

/** `ip -json route get` output -> the device and gateway. */
export function parseRouteGet(stdout: string): RouteLookup {
  const r = asArray(stdout)[0];
  if (!r?.dev) return { ok: false, error: `no device in the answer${r?.type ? ` (type ${r.type})` : ''}` };
  return { ok: true, dev: r.dev, ...(r.gateway ? { gateway: r.gateway } : {}) };
}

/** The route the kernel picks for `target` (policy rules included), or its error (a blackhole says "Invalid argument"). */
export async function routeGet(target: string): Promise<RouteLookup> {
  const r = await exec('ip', ['-json', 'route', 'get', target], { timeoutMs: 3000 });
  return r.code === 0
    ? parseRouteGet(r.stdout)
    : { ok: false, error: firstLine(r.stderr) || `ip route get exit ${String(r.code)}` };
}

/** `ip -json -4 route show table main match T` output -> every route containing T, most specific first. */
export function parseMatching(stdout: string): MatchingRoute[] {
  return asArray(stdout).flatMap((r) =>
    r.dst
      ? [
          {
            dst: r.dst.includes('/') || r.dst === 'default' ? r.dst : `${r.dst}/32`,
            type: r.type ?? 'unicast',
            ...(r.dev ? { dev: r.dev } : {}),
            ...(r.gateway ? { gateway: r.gateway } : {}),
            ...(r.protocol ? { proto: r.protocol } : {}),
          },
        ]
      : [],
  );
}

export async function routesMatching(target: string): Promise<MatchingRoute[]> {
  const r = await exec('ip', ['-json', '-4', 'route', 'show', 'table', 'main', 'match', target], { timeoutMs: 3000 });
  return r.code === 0 ? parseMatching(r.stdout) : [];
}

/** rp_filter of `all` and each named interface (names are checked: no path tricks). */
export async function rpFilters(devs: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const d of ['all', ...devs]) {
    if (!isSafeIfName(d)) continue;
    const v = await readSysctl(`net/ipv4/conf/${d}/rp_filter`);
    if (v !== undefined && /^\d+$/.test(v)) out[d] = Number(v);
  }
  return out;
}

/** `ethtool -k DEV` output -> the tx-checksum-ip-generic state. */
export function parseOffload(stdout: string): 'on' | 'off' | 'absent' {
  const m = /^\s*tx-checksum-ip-generic:\s*(on|off)/m.exec(stdout);
  return m?.[1] === 'on' ? 'on' : m?.[1] === 'off' ? 'off' : 'absent';
}

export async function offloadOf(device: string): Promise<OffloadObservation> {
  try {
    const r = await exec('ethtool', ['-k', device], { timeoutMs: 3000 });
    if (r.code !== 0) return { kind: 'error', error: firstLine(r.stderr) || `exit ${String(r.code)}` };
    return { kind: 'read', device, txChecksumIPGeneric: parseOffload(r.stdout) };
  } catch (e) {
    if (e instanceof WeftError && e.code === 'E_HOST' && /not installed/.test(e.message)) return { kind: 'no-ethtool' };
    return { kind: 'error', error: why(e) };
  }
}

/** `iptables-save -t filter`, raw (the chain policies are in the `:CHAIN POLICY` lines). */
export async function filterTable(): Promise<{ ok: true; text: string } | { ok: false; error: string }> {
  try {
    const r = await exec('iptables-save', ['-t', 'filter'], { timeoutMs: 5000 });
    return r.code === 0
      ? { ok: true, text: r.stdout }
      : { ok: false, error: firstLine(r.stderr) || `exit ${String(r.code)}` };
  } catch (e) {
    return { ok: false, error: why(e) };
  }
}

/**
 * The daemon's /status within `timeoutMs` (2 s for doctor), judged by core/health/status-report.ts:
 * whatever holds host.listen answers, so at most STATUS_MAX_BYTES are read and the document
 * must be weft's.
 */
export async function daemonStatus(url: string, timeoutMs = 2000): Promise<StatusObservation> {
  try {
    return judgeStatusAnswer(url, await getBounded(url, { maxBytes: STATUS_MAX_BYTES, timeoutMs }));
  } catch (e) {
    // getBounded's message already names the socket error ("connect ECONNREFUSED ..."), not fetch's "fetch failed".
    return { kind: 'silent', url, error: e instanceof WeftError ? e.message : why(e) };
  }
}

/**
 * The local clock against etcd's: etcd's HTTP server stamps every answer with a `Date` header
 * (second resolution), so GET /health on the first endpoint that answers gives etcd's time. The
 * local time is taken at the middle of the exchange; etcd's at the middle of its second.
 */
export async function etcdClock(spec: EtcdSpec, nowMs: () => number): Promise<ClockObservation> {
  const read = async (f: string | undefined): Promise<Buffer | undefined> =>
    f === undefined ? undefined : readFile(f).catch(() => undefined);
  const [ca, cert, key] = await Promise.all([read(spec.caFile), read(spec.certFile), read(spec.keyFile)]);
  let last = 'no endpoint';
  for (const endpoint of spec.endpoints.slice(0, 3)) {
    try {
      const url = new URL('/health', endpoint);
      const sent = nowMs();
      const date = await new Promise<string>((resolve, reject) => {
        const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
          url,
          { method: 'GET', timeout: 2000, ...(url.protocol === 'https:' ? { ca, cert, key } : {}) },
          (res) => {
            res.resume();
            const d = res.headers.date;
            if (d) resolve(d);
            else reject(new Error('no Date header'));
          },
        );
        req.on('timeout', () => {
          req.destroy(new Error('timed out after 2 s'));
        });
        req.on('error', reject);
        req.end();
      });
      const local = (sent + nowMs()) / 2;
      const remote = Date.parse(date);
      if (Number.isNaN(remote)) {
        last = `${endpoint}: unreadable Date header`;
        continue;
      }
      return { ok: true, skewMs: Math.round(local - (remote + 500)), source: `Date header of ${url.origin}/health` };
    } catch (e) {
      last = `${endpoint}: ${why(e)}`;
    }
  }
  return { ok: false, error: last };
}
