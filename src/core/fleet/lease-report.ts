/**
 * One row of `weft leases`: what a lease says (both halves of a dual-stack key), when it
 * expires, who owns it, and whether weft programs it. Pure: the command fetches the entries and
 * TTLs and renders the rows.
 *
 * The judgement is the agents' (peer-lease.ts decodePeerEntry and validatePeerLease, plus the
 * backend checks the backends make), half by half:
 * - the entry must be trustworthy as data: a canonical, aligned flannel key, a value flanneld
 *   reads, a printable BackendType, and a usable IPv4 half when the key has one (PublicIP, the
 *   VTEP MAC in BackendData), else it is `quarantined` and only what the key says is shown;
 * - the IPv4 half, when the network has IPv4, decides: programmed when it fits, else the lease is
 *   `stranded` (outside the network, another subnet length, another backend or VNI);
 * - the IPv6 half, when the network has IPv6, is programmed when its data is usable (PublicIPv6,
 *   the VTEP MAC in BackendV6Data) and it fits; when it is not, next to a programmed IPv4 half,
 *   the row stays `ok` and `malformed` says why the IPv6 half is not programmed; for a lease
 *   with no IPv4 half to program it decides like the IPv4 half does;
 * - a half of a family the network does not serve is shown, not judged (a v4-only host ignores
 *   a dual-stack lease's IPv6 half without error); a lease with no half the network serves is
 *   `stranded`.
 * A fleet-wide judgement comes last (leaseRows): one VTEP MAC belongs to the oldest lease (etcd
 * create revision) claiming it, across both halves (backends/vxlan.ts: one MAC, one VTEP); a
 * newer claim's half is not programmed.
 *
 * Every string that comes from etcd is capped here (capText); the table escapes it as well.
 */
import { type Prefix, formatIP, formatPrefix, within } from '../net/cidr.js';
import type { NetworkConfig } from '../flannel/config-check.js';
import { capOrNull, capText, safeText } from '../base/escape.js';
import { isNoIPv4 } from '../net/ip-scope.js';
import type { LeaseAttrs } from '../flannel/lease.js';
import { parseSubnetKey } from '../flannel/lease.js';
import {
  type FlannelBackend,
  type FlannelBackends,
  type LeaseData,
  type LeaseDataView,
  isOwnLease,
  leaseCodecOf,
} from '../flannel/backend-codec.js';
import type { OwnerRecord } from './owner.js';
import { badPublicIP, decodePeerEntry } from '../flannel/peer-lease.js';
import type { KeyValue } from './store.js';
import { oversizeReason } from './store-limits.js';

/** What weft makes of a lease entry; see the module comment. */
export type LeaseStatus = 'ok' | 'stranded' | 'quarantined';

export interface LeaseRow {
  /** The IPv4 subnet; null for an IPv6-only lease (or a key flanneld reads no subnet from). */
  subnet: string | null;
  /** The IPv6 subnet of a dual-stack or IPv6-only lease; null otherwise. */
  ipv6Subnet: string | null;
  /** PublicIP; null for an IPv6-only lease (flanneld writes 0.0.0.0 there). */
  publicIP: string | null;
  publicIPv6: string | null;
  backendType: string | null;
  vtepMAC: string | null;
  /** The VtepMAC of a vxlan lease's BackendV6Data (the peer's flannel-v6.<VNI>). */
  vtepMACv6: string | null;
  /** The VNI of a vxlan lease's BackendData (BackendV6Data for an IPv6-only lease); null for other backends. */
  vni: number | null;
  expiresAt: string | null;
  ttlSeconds: number | null;
  host: string | null;
  key: string;
  status: LeaseStatus;
  /** null when every half weft serves is programmed; why not otherwise (`stranded: ...` for stranded). */
  malformed: string | null;
}

/** The network's backend and the registry every lease's data is read with. */
interface Judging {
  readonly config: NetworkConfig;
  readonly backends: FlannelBackends;
  /** The backend the network uses (undefined: weft has none of that type). */
  readonly backend: FlannelBackend | undefined;
}

const judging = (config: NetworkConfig, backends: FlannelBackends): Judging => ({
  config,
  backends,
  backend: backends.get(config.backend.type),
});

/** Why a decoded lease's IPv4 half (`data`: its backend's reading of BackendData) does not fit the config, or undefined when weft programs it. */
function strandedReason(
  subnet: Prefix,
  attrs: LeaseAttrs,
  data: LeaseData | undefined,
  j: Judging,
): string | undefined {
  const v4 = j.config.ipv4;
  if (!v4) return 'stranded: the network config has no IPv4 network (EnableIPv4 is false)';
  if (!within(subnet, v4.network)) return `stranded: outside the network ${formatPrefix(v4.network)}`;
  if (subnet.len !== v4.subnetLen) return `stranded: a /${subnet.len}, but the network's SubnetLen is ${v4.subnetLen}`;
  return backendMismatch(attrs, data, j);
}

/** The IPv6 twin of strandedReason, for a lease's IPv6 half (`data`: BackendV6Data as read). */
function strandedReasonV6(
  subnet: Prefix,
  attrs: LeaseAttrs,
  data: LeaseData | undefined,
  j: Judging,
): string | undefined {
  const v6 = j.config.ipv6;
  if (!v6) return 'stranded: the network config has no IPv6 network';
  if (!within(subnet, v6.network)) return `stranded: IPv6 subnet outside the network ${formatPrefix(v6.network)}`;
  if (subnet.len !== v6.subnetLen)
    return `stranded: an IPv6 /${subnet.len}, but the network's IPv6SubnetLen is ${v6.subnetLen}`;
  return backendMismatch(attrs, data, j);
}

/** Is the lease one the network's backend writes, and does its data fit the network's options (its backend says: a VNI)? */
function backendMismatch(attrs: LeaseAttrs, data: LeaseData | undefined, j: Judging): string | undefined {
  const want = j.config.backend.type;
  const type = attrs.backendType ?? '';
  // A network weft has no backend for (a flanneld udp fleet) is compared by type alone.
  const own = j.backend ? isOwnLease(j.backend, attrs) : type === want;
  if (!own) return `stranded: backend ${type || '(none)'}, but the network uses ${want || '(none)'}`;
  // A lease without a VNI fits any: flanneld never reads a peer's VNI, and weft programs it.
  const m = data === undefined ? undefined : j.backend?.lease.mismatch?.(data, j.config.backend.options);
  if (m) return `stranded: ${m.setting} ${m.lease}, but the network uses ${m.setting} ${m.network}`;
  return undefined;
}

/** One served half of a lease: programmed (`ok`), not fitting (`stranded`) or unusable as data (`quarantined`). */
interface Half {
  readonly family: 4 | 6;
  state: 'ok' | 'stranded' | 'quarantined';
  reason?: string;
  readonly mac?: string;
}

/** A row before its status is settled (leaseRows may still take a half's MAC away). */
interface Judged {
  readonly fields: Omit<LeaseRow, 'status' | 'malformed'>;
  /** Set when the entry as a whole cannot be trusted. */
  readonly entryReason?: string;
  readonly v4?: Half;
  readonly v6?: Half;
  /** Why nothing is judged: the lease has no half of a family the network serves. */
  readonly unserved?: string;
  readonly createRevision: bigint;
}

function halfOf(family: 4 | 6, reason: string | undefined, view: LeaseDataView | undefined): Half {
  return {
    family,
    state: reason === undefined ? 'ok' : 'stranded',
    ...(reason !== undefined ? { reason } : {}),
    ...(view?.vtepMAC !== undefined ? { mac: view.vtepMAC } : {}),
  };
}

function judge(
  subnetKey: string,
  kv: KeyValue,
  j: Judging,
  ttlSeconds: number,
  owner: OwnerRecord | undefined,
  nowMs: number,
): Judged {
  const { config } = j;
  const live = ttlSeconds > 0;
  const key = parseSubnetKey(subnetKey);
  const createRevision = /^\d{1,19}$/.test(kv.createRevision) ? BigInt(kv.createRevision) : 0n;
  const fields: Omit<LeaseRow, 'status' | 'malformed'> = {
    subnet: key?.v4 ? formatPrefix(key.v4) : null,
    ipv6Subnet: key?.v6 ? formatPrefix(key.v6) : null,
    publicIP: null,
    publicIPv6: null,
    backendType: null,
    vtepMAC: null,
    vtepMACv6: null,
    vni: null,
    expiresAt: live ? new Date(nowMs + ttlSeconds * 1000).toISOString() : null,
    ttlSeconds: live ? ttlSeconds : null,
    host: capOrNull(owner ? owner.hostname || owner.hostID : null),
    key: capText(kv.key),
  };
  if (kv.oversize) return { fields, entryReason: oversizeReason(kv.oversize), createRevision };
  const d = decodePeerEntry(subnetKey, kv.value, j.backends, config.ipv4?.network, config.ipv6?.network);
  if (!d.ok) return { fields, entryReason: d.reason, createRevision };
  const a = d.attrs;
  // What the lease's own backend reads from its data (another backend's lease shows its MAC too).
  const codec = leaseCodecOf(j.backends, a.backendType);
  const view = (x: LeaseData | undefined): LeaseDataView | undefined =>
    x === undefined ? undefined : codec?.viewData?.(x);
  const view4 = view(d.data);
  const view6 = view(d.dataV6);
  // What the data says, as far as it can be trusted: an IPv6 half decodePeerEntry refused shows nothing.
  fields.backendType = capOrNull(a.backendType);
  if (key?.v4 || !isNoIPv4(a.publicIP)) fields.publicIP = formatIP(a.publicIP);
  if (a.publicIPv6 && (d.subnetV6 || (!key?.v6 && !badPublicIP(a.publicIPv6))))
    fields.publicIPv6 = formatIP(a.publicIPv6);
  fields.vtepMAC = view4?.vtepMAC ?? null;
  fields.vtepMACv6 = view6?.vtepMAC ?? null;
  fields.vni = view4?.vni ?? view6?.vni ?? null;
  const v4 = d.subnet && config.ipv4 ? halfOf(4, strandedReason(d.subnet, a, d.data, j), view4) : undefined;
  let v6: Half | undefined;
  if (key?.v6 && config.ipv6) {
    v6 = d.subnetV6
      ? halfOf(6, strandedReasonV6(d.subnetV6, a, d.dataV6, j), view6)
      : { family: 6, state: 'quarantined', reason: (d.badHalf ?? 'unusable').replace(/^IPv6 half: /, '') };
  }
  const unserved =
    v4 || v6
      ? undefined
      : key?.v4
        ? 'stranded: an IPv4-only lease, but the network config has no IPv4 network (EnableIPv4 is false)'
        : 'stranded: an IPv6-only lease, but the network config has no IPv6 network';
  return { fields, createRevision, ...(v4 ? { v4 } : {}), ...(v6 ? { v6 } : {}), ...(unserved ? { unserved } : {}) };
}

/** Settle a judged entry into its row. */
function finish(j: Judged): LeaseRow {
  if (j.entryReason !== undefined) return { ...j.fields, status: 'quarantined', malformed: capText(j.entryReason) };
  if (j.unserved !== undefined) return { ...j.fields, status: 'stranded', malformed: capText(j.unserved) };
  // The half that decides: the IPv4 one when the network has IPv4 and the key has one.
  const lead = j.v4 ?? j.v6;
  const other = j.v4 ? j.v6 : undefined;
  if (!lead) return { ...j.fields, status: 'stranded', malformed: 'stranded: no half to program' };
  const note = (h: Half): string =>
    `${h.family === 6 ? 'IPv6' : 'IPv4'} half not programmed: ${(h.reason ?? '').replace(/^stranded: /, '')}`;
  if (lead.state === 'ok')
    return { ...j.fields, status: 'ok', malformed: other && other.state !== 'ok' ? capText(note(other)) : null };
  // An IPv4 half that fits but lost its VTEP MAC to an older lease: the backend still programs
  // the IPv6 half (a half that does not fit, instead, makes the agents drop the whole lease).
  if (lead.state === 'quarantined' && other?.state === 'ok')
    return { ...j.fields, status: 'ok', malformed: capText(note(lead)) };
  const also = other && other.state !== 'ok' ? `; ${note(other)}` : '';
  return { ...j.fields, status: lead.state, malformed: capText(`${lead.reason ?? ''}${also}`) };
}

/** `ttlSeconds` is etcd's TimeToLive answer (-1 for a key without an etcd lease); `backends` the registry (src/backends/index.ts). */
export function leaseRow(
  subnetKey: string,
  kv: KeyValue,
  config: NetworkConfig,
  ttlSeconds: number,
  owner: OwnerRecord | undefined,
  nowMs: number,
  backends: FlannelBackends,
): LeaseRow {
  return finish(judge(subnetKey, kv, judging(config, backends), ttlSeconds, owner, nowMs));
}

/** One entry of `<prefix>/subnets/` with what the command fetched about it. */
export interface LeaseEntry {
  readonly subnetKey: string;
  readonly kv: KeyValue;
  readonly ttlSeconds: number;
  readonly owner: OwnerRecord | undefined;
}

/**
 * Every row, then the fleet-wide check the agents make too (backends/vxlan.ts): one VTEP MAC
 * belongs to the oldest lease (smallest create revision) that claims it, whichever half claims
 * it; every newer claim's half is not programmed. A copy of a host's MAC therefore never wins,
 * whatever its key sorts as.
 */
export function leaseRows(
  entries: readonly LeaseEntry[],
  config: NetworkConfig,
  nowMs: number,
  backends: FlannelBackends,
): LeaseRow[] {
  const j = judging(config, backends);
  const judged = entries.map((e) => judge(e.subnetKey, e.kv, j, e.ttlSeconds, e.owner, nowMs));
  const claims = judged.flatMap((j, i) =>
    [j.v4, j.v6].flatMap((h) => (h?.state === 'ok' && h.mac !== undefined ? [{ i, h, mac: h.mac }] : [])),
  );
  const first = new Map<string, number>();
  for (const { i, mac } of claims) {
    const j = first.get(mac);
    if (j === undefined || (judged[i]?.createRevision ?? 0n) < (judged[j]?.createRevision ?? 0n)) first.set(mac, i);
  }
  for (const { i, h, mac } of claims) {
    const owner = first.get(mac);
    if (owner === undefined || owner === i) continue;
    const older = judged[owner];
    h.state = 'quarantined';
    h.reason = `VtepMAC ${mac} is already used by the older lease ${older?.fields.subnet ?? older?.fields.ipv6Subnet ?? '?'} (created at etcd revision ${String(older?.createRevision ?? 0n)}); a copy never wins`;
  }
  return judged.map(finish);
}

/** Cells of the human table are short: a hostile value cannot push the columns off screen. */
const CELL_CAP = 64;

function table(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all.map((row) =>
    row
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

/**
 * A row's cells. With `v6` (some lease has an IPv6 half) the table gains IPV6-SUBNET,
 * PUBLIC-IPV6 and VTEP-MAC-V6; without, it is the IPv4 table it always was.
 */
function cells(r: LeaseRow, v6: boolean): string[] {
  const c = (s: string | null, dflt: string): string => (s === null ? dflt : safeText(s, CELL_CAP));
  const expires = r.ttlSeconds === null ? 'never (no etcd lease)' : `${r.ttlSeconds}s`;
  const host = c(r.host, '(flanneld or unowned)');
  if (!v6) return [c(r.subnet, '-'), c(r.publicIP, '-'), c(r.backendType, '-'), c(r.vtepMAC, '-'), expires, host];
  return [
    c(r.subnet, '-'),
    c(r.ipv6Subnet, '-'),
    c(r.publicIP, '-'),
    c(r.publicIPv6, '-'),
    c(r.backendType, '-'),
    c(r.vtepMAC, '-'),
    c(r.vtepMACv6, '-'),
    expires,
    host,
  ];
}

const HEAD = ['SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEP-MAC', 'EXPIRES-IN', 'HOST'];
const HEAD6 = [
  'SUBNET',
  'IPV6-SUBNET',
  'PUBLIC-IP',
  'PUBLIC-IPV6',
  'BACKEND',
  'VTEP-MAC',
  'VTEP-MAC-V6',
  'EXPIRES-IN',
  'HOST',
];

/**
 * The human table: the leases weft programs (then, for dual-stack leases of which one half is
 * not programmed, which and why); then the STRANDED ones (with the fix), then the QUARANTINED
 * entries and why. Every etcd string is escaped, so no value can add a line.
 */
export function renderLeaseTable(rows: readonly LeaseRow[]): string {
  const v6 = rows.some((r) => r.ipv6Subnet !== null);
  const head = v6 ? HEAD6 : HEAD;
  const ok = rows.filter((r) => r.status === 'ok');
  const lines = table(
    head,
    ok.map((r) => cells(r, v6)),
  );
  const partly = ok.filter((r) => r.malformed !== null);
  if (partly.length > 0)
    lines.push(
      '',
      `PARTLY PROGRAMMED (${partly.length}: one half of the lease is not programmed):`,
      ...partly.map((r) => `  ${safeText(r.key)}: ${safeText(r.malformed ?? '')}`),
    );
  const stranded = rows.filter((r) => r.status === 'stranded');
  if (stranded.length > 0) {
    lines.push('', `STRANDED (${stranded.length}: not programmed, the lease does not fit the network config):`);
    lines.push(
      ...table(
        [...head, 'WHY'],
        stranded.map((r) => [...cells(r, v6), safeText((r.malformed ?? '').replace(/^stranded: /, ''))]),
      ).map((l) => `  ${l}`),
    );
    lines.push(
      '  fix: restart weft (or flanneld) on each of these hosts: it leases a subnet that fits;',
      '       for a host that is gone, run weft release on it or delete its key.',
    );
  }
  const bad = rows.filter((r) => r.status === 'quarantined');
  if (bad.length > 0)
    lines.push(
      '',
      `QUARANTINED (${bad.length}, ignored by weft):`,
      ...bad.map((r) => `  ${safeText(r.key)}: ${safeText(r.malformed ?? '')}`),
    );
  return `${lines.join('\n')}\n`;
}
