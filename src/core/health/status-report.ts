/**
 * Reading a /status answer back (`weft status`, `weft doctor`). Whatever listens on
 * host.listen answers: weft, or another local user's process that took the port first. So the
 * text is judged like anything from etcd: it must be weft's status document, field by field,
 * or it is refused with the first field that is wrong (its path and its JSON type, never its
 * content). What passes is rebuilt from the known fields only, every string cut, every number
 * finite, every time parseable; the renderer still escapes each string it prints.
 */
import { WeftError } from '../base/errors.js';
import { TEXT_CAP, capText } from '../base/escape.js';
import type { Phase, StatusReport } from './health.js';

/** The largest /status answer read, in bytes; weft's own is about 2 KB. */
export const STATUS_MAX_BYTES = 65_536;
/** At most this many reasons, warnings or drift kinds are kept (weft's own has a handful). */
export const STATUS_MAX_ITEMS = 32;
/** Reasons, warnings and the status line are cut here (each is shown on one line). */
const LINE_CAP = 1024;

export type DecodedStatus =
  | { readonly ok: true; readonly report: StatusReport }
  | { readonly ok: false; readonly reason: string };

/**
 * What `weft status` and `weft doctor` learnt from host.listen: weft's status (`answered`),
 * nothing (`silent`: refused, timed out), or an answer that is not weft's (`foreign`: another
 * process holds the port, or something is broken), with why.
 */
export type StatusObservation =
  | { readonly kind: 'disabled' }
  | { readonly kind: 'answered'; readonly url: string; readonly report: StatusReport }
  | { readonly kind: 'silent'; readonly url: string; readonly error: string }
  | { readonly kind: 'foreign'; readonly url: string; readonly reason: string };

type Obj = Readonly<Record<string, unknown>>;

const jsonType = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
const wrong = (path: string, expected: string, v: unknown): WeftError =>
  new WeftError('E_DAEMON', `${path} is ${v === undefined ? 'missing' : jsonType(v)}, expected ${expected}`);

function obj(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw wrong(path, 'an object', v);
  return v as Obj;
}

/** Readers of one object's fields; each throws (caught in decodeStatusReport) on a wrong type. */
interface Fields {
  readonly o: Obj;
  str(k: string, cap?: number): string;
  num(k: string): number;
  bool(k: string): boolean;
  strOrNull(k: string): string | null;
  timeOrNull(k: string): string | null;
  lines(k: string): string[];
  sub(k: string): Fields;
  subOrNull(k: string): Fields | null;
  has(k: string): boolean;
}

function fields(o: Obj, at: string): Fields {
  const p = (k: string): string => (at ? `${at}.${k}` : k);
  const str = (k: string, cap = TEXT_CAP): string => {
    const v = o[k];
    if (typeof v !== 'string') throw wrong(p(k), 'a string', v);
    return capText(v, cap);
  };
  const num = (k: string): number => {
    const v = o[k];
    if (typeof v !== 'number') throw wrong(p(k), 'a number', v);
    if (!Number.isFinite(v)) throw new WeftError('E_DAEMON', `${p(k)} is not a finite number`);
    return v;
  };
  const bool = (k: string): boolean => {
    const v = o[k];
    if (typeof v !== 'boolean') throw wrong(p(k), 'true or false', v);
    return v;
  };
  /** A string or null; absent reads as null (an older daemon may not have the field). */
  const strOrNull = (k: string): string | null => (o[k] === null || o[k] === undefined ? null : str(k));
  /** An ISO time or null: `weft status` computes "... ago" from it. */
  const timeOrNull = (k: string): string | null => {
    const v = strOrNull(k);
    if (v !== null && !Number.isFinite(Date.parse(v))) throw new WeftError('E_DAEMON', `${p(k)} is not a time`);
    return v;
  };
  const lines = (k: string): string[] => {
    const v = o[k];
    if (!Array.isArray(v)) throw wrong(p(k), 'a list', v);
    const out = v.slice(0, STATUS_MAX_ITEMS).map((x: unknown, i) => {
      if (typeof x !== 'string') throw wrong(`${p(k)}[${i}]`, 'a string', x);
      return capText(x, LINE_CAP);
    });
    return v.length > STATUS_MAX_ITEMS ? [...out, `...[${v.length - STATUS_MAX_ITEMS} more]`] : out;
  };
  const sub = (k: string): Fields => fields(obj(o[k], p(k)), p(k));
  const subOrNull = (k: string): Fields | null => (o[k] === null || o[k] === undefined ? null : sub(k));
  const has = (k: string): boolean => o[k] !== undefined;
  return { o, str, num, bool, strOrNull, timeOrNull, lines, sub, subOrNull, has };
}

const PHASES: readonly Phase[] = ['starting', 'running', 'stopping'];

function lease(f: Fields | null): StatusReport['lease'] {
  if (!f) return null;
  return {
    subnet: f.str('subnet'),
    publicIP: f.str('publicIP'),
    ipv6Subnet: f.strOrNull('ipv6Subnet'),
    publicIPv6: f.strOrNull('publicIPv6'),
    expiresAt: f.str('expiresAt'),
    secondsToExpiry: f.num('secondsToExpiry'),
    lastRenewedAt: f.timeOrNull('lastRenewedAt'),
    reacquiring: f.bool('reacquiring'),
  };
}

function backend(f: Fields | null): StatusReport['backend'] {
  if (!f) return null;
  return {
    type: f.str('type'),
    mtu: f.num('mtu'),
    ...(f.has('device') ? { device: f.str('device') } : {}),
    ...(f.has('implementation') ? { implementation: f.str('implementation') } : {}),
  };
}

function driftRepairs(f: Fields): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(f.o).slice(0, STATUS_MAX_ITEMS)) out[capText(k, 64)] = f.num(k);
  return out;
}

function reconcile(f: Fields): StatusReport['reconcile'] {
  return {
    passes: f.num('passes'),
    lastAt: f.timeOrNull('lastAt'),
    lastOk: f.bool('lastOk'),
    lastDurationMs: f.num('lastDurationMs'),
    lastError: f.str('lastError'),
    healthy: f.bool('healthy'),
    driftRepairs: driftRepairs(f.sub('driftRepairs')),
  };
}

const PENDING_REASONS: readonly NonNullable<StatusReport['configPending']>['reason'][] = [
  'hold-down',
  'rate-limit',
  'not-followed',
];

/** A stored config not in use yet; absent reads as null (an older daemon has no such field). */
function configPending(f: Fields | null): StatusReport['configPending'] {
  if (!f) return null;
  const reason = PENDING_REASONS.find((x) => x === f.str('reason'));
  if (!reason) throw new WeftError('E_DAEMON', 'configPending.reason is not hold-down, rate-limit or not-followed');
  const since = f.timeOrNull('since');
  if (since === null) throw wrong('configPending.since', 'a time', f.o.since);
  return { reason, since, applyAt: f.timeOrNull('applyAt') };
}

function report(raw: unknown): StatusReport {
  const f = fields(obj(raw, 'the document'), '');
  const phase = f.str('phase');
  const known = PHASES.find((x) => x === phase);
  if (!known) throw new WeftError('E_DAEMON', 'phase is not starting, running or stopping');
  const id = f.subOrNull('identity');
  const p = f.sub('peers');
  const e = f.sub('etcd');
  return {
    ready: f.bool('ready'),
    reasons: f.lines('reasons'),
    warnings: f.lines('warnings'),
    identity: id ? { hostID: id.str('hostID'), source: id.str('source'), clash: id.str('clash', LINE_CAP) } : null,
    degradedSince: f.timeOrNull('degradedSince'),
    phase: known,
    status: f.str('status', LINE_CAP),
    version: f.str('version', 64),
    uptimeSeconds: f.num('uptimeSeconds'),
    lease: lease(f.subOrNull('lease')),
    backend: backend(f.subOrNull('backend')),
    peers: {
      known: p.num('known'),
      programmed: p.num('programmed'),
      rejected: p.num('rejected'),
      malformed: p.num('malformed'),
      ...(p.has('halvesIgnored') ? { halvesIgnored: p.num('halvesIgnored') } : {}),
    },
    reconcile: reconcile(f.sub('reconcile')),
    etcd: {
      reachable: e.bool('reachable'),
      lastOkAt: e.timeOrNull('lastOkAt'),
      lastError: e.str('lastError'),
      requestErrors: e.num('requestErrors'),
      watchRestarts: e.num('watchRestarts'),
    },
    configPending: configPending(f.subOrNull('configPending')),
  };
}

/**
 * The /status body as weft's status document, or why it is not one ("not JSON", "peers.known
 * is a string, expected a number"). Never throws.
 */
export function decodeStatusReport(body: string): DecodedStatus {
  if (body.length > STATUS_MAX_BYTES) return { ok: false, reason: `larger than ${STATUS_MAX_BYTES} bytes` };
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  try {
    return { ok: true, report: report(raw) };
  } catch (e) {
    if (e instanceof WeftError) return { ok: false, reason: e.message };
    throw e;
  }
}

/** An HTTP answer as adapters/http.ts getBounded reads it. */
export interface StatusAnswer {
  readonly status: number;
  readonly body: string;
  readonly truncated: boolean;
}

/** Judge what answered on `url`/status: weft's document, or (`foreign`) why it is not. */
export function judgeStatusAnswer(url: string, a: StatusAnswer): StatusObservation {
  if (a.truncated) return { kind: 'foreign', url, reason: `the answer is larger than ${STATUS_MAX_BYTES} bytes` };
  if (a.status !== 200) return { kind: 'foreign', url, reason: `HTTP ${a.status}` };
  const d = decodeStatusReport(a.body);
  return d.ok ? { kind: 'answered', url, report: d.report } : { kind: 'foreign', url, reason: d.reason };
}
