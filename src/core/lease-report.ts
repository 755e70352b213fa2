/**
 * One row of `weft leases`: what a lease says, when it expires, who owns it, and whether weft
 * programs it. Pure: the command fetches the entries and TTLs and renders the rows.
 *
 * Every entry gets a `status`:
 * - `ok`: weft hosts program it (the same judgement as peer-lease.ts, plus the backend checks
 *   the backends make);
 * - `stranded`: key and value decode, but the lease does not fit the stored config (outside the
 *   network, another subnet length, another backend or VNI), typically after `weft apply
 *   --force` changed the network. Its fields are filled in like an ok row: these are the hosts
 *   an operator must fix;
 * - `quarantined`: it cannot be trusted (a bad key, value, MAC or public IP); only what the key
 *   says is shown.
 * A fleet-wide judgement comes last (leaseRows): of two ok leases with one VTEP MAC, the older
 * (etcd create revision) is programmed and the newer quarantined, as the agents decide.
 *
 * Every string that comes from etcd is capped here (capText); the table escapes it as well.
 */
import { type Prefix, formatIP, formatPrefix, within } from './cidr.js';
import type { NetworkConfig } from './config-check.js';
import { capOrNull, capText, safeText } from './escape.js';
import type { LeaseAttrs, VxlanData } from './lease.js';
import type { OwnerRecord } from './owner.js';
import { decodePeerEntry } from './peer-lease.js';
import type { KeyValue } from './store.js';

/** What weft makes of a lease entry; see the module comment. */
export type LeaseStatus = 'ok' | 'stranded' | 'quarantined';

export interface LeaseRow {
  subnet: string | null;
  publicIP: string | null;
  backendType: string | null;
  vtepMAC: string | null;
  /** The VNI of a vxlan lease's BackendData; null for other backends. */
  vni: number | null;
  expiresAt: string | null;
  ttlSeconds: number | null;
  host: string | null;
  key: string;
  status: LeaseStatus;
  /** null for an ok row; why weft does not program it otherwise (`stranded: ...` for stranded). */
  malformed: string | null;
}

/** Why a decoded lease does not fit the config, or undefined when weft programs it. */
export function strandedReason(subnet: Prefix, attrs: LeaseAttrs, vxlan: VxlanData | undefined, config: NetworkConfig): string | undefined {
  const v4 = config.ipv4;
  if (!v4) return 'stranded: the network config has no IPv4 network (weft programs IPv4 fabrics only)';
  if (!within(subnet, v4.network)) return `stranded: outside the network ${formatPrefix(v4.network)}`;
  if (subnet.len !== v4.subnetLen) return `stranded: a /${subnet.len}, but the network's SubnetLen is ${v4.subnetLen}`;
  const want = config.backend.type;
  const type = attrs.backendType ?? '';
  if (type !== want) return `stranded: backend ${type || '(none)'}, but the network uses ${want || '(none)'}`;
  const vni = config.backend.vxlan?.vni;
  if (vxlan && vni !== undefined && vxlan.vni !== vni) return `stranded: VNI ${vxlan.vni}, but the network uses VNI ${vni}`;
  return undefined;
}

/** `ttlSeconds` is etcd's TimeToLive answer (-1 for a key without an etcd lease). */
export function leaseRow(subnetKey: string, kv: KeyValue, config: NetworkConfig, ttlSeconds: number, owner: OwnerRecord | undefined, nowMs: number): LeaseRow {
  const d = decodePeerEntry(subnetKey, kv.value, config.ipv4?.network);
  const live = ttlSeconds > 0;
  const common = {
    expiresAt: live ? new Date(nowMs + ttlSeconds * 1000).toISOString() : null,
    ttlSeconds: live ? ttlSeconds : null,
    host: capOrNull(owner ? owner.hostname || owner.hostID : null),
    key: capText(kv.key),
  };
  if (!d.ok) {
    return {
      subnet: d.subnet ? formatPrefix(d.subnet) : null, publicIP: null, backendType: null, vtepMAC: null, vni: null,
      ...common, status: 'quarantined', malformed: capText(d.reason),
    };
  }
  const stranded = d.subnet ? strandedReason(d.subnet, d.attrs, d.vxlan, config) : undefined;
  return {
    subnet: d.subnet ? formatPrefix(d.subnet) : null,
    publicIP: formatIP(d.attrs.publicIP),
    backendType: capOrNull(d.attrs.backendType),
    vtepMAC: d.vxlan?.vtepMAC ?? null,
    vni: d.vxlan?.vni ?? null,
    ...common,
    status: stranded === undefined ? 'ok' : 'stranded',
    malformed: stranded === undefined ? null : capText(stranded),
  };
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
 * belongs to the oldest lease (smallest create revision) that claims it; every newer claim is
 * quarantined. A copy of a host's MAC therefore never wins, whatever its key sorts as.
 */
export function leaseRows(entries: readonly LeaseEntry[], config: NetworkConfig, nowMs: number): LeaseRow[] {
  const rows = entries.map((e) => leaseRow(e.subnetKey, e.kv, config, e.ttlSeconds, e.owner, nowMs));
  const firstByMAC = new Map<string, number>();
  const revision = (i: number): bigint => { const r = entries[i]?.kv.createRevision ?? ''; return /^\d{1,19}$/.test(r) ? BigInt(r) : 0n; };
  rows.forEach((r, i) => {
    if (r.status !== 'ok' || r.vtepMAC === null) return;
    const j = firstByMAC.get(r.vtepMAC);
    if (j === undefined || revision(i) < revision(j)) firstByMAC.set(r.vtepMAC, i);
  });
  return rows.map((r, i) => {
    const owner = r.vtepMAC === null ? undefined : firstByMAC.get(r.vtepMAC);
    if (r.status !== 'ok' || owner === undefined || owner === i) return r;
    const older = rows[owner];
    return { ...r, status: 'quarantined', malformed: capText(`VtepMAC ${r.vtepMAC ?? ''} is already used by the older lease ${older?.subnet ?? '?'} (created at etcd revision ${String(revision(owner))}); a copy never wins`) };
  });
}

/** Cells of the human table are short: a hostile value cannot push the columns off screen. */
const CELL_CAP = 64;

function table(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all.map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
}

function cells(r: LeaseRow): string[] {
  const c = (s: string | null, dflt: string): string => (s === null ? dflt : safeText(s, CELL_CAP));
  return [
    c(r.subnet, ''), c(r.publicIP, ''), c(r.backendType, '-'), c(r.vtepMAC, '-'),
    r.ttlSeconds === null ? 'never (no etcd lease)' : `${r.ttlSeconds}s`, c(r.host, '(flanneld or unowned)'),
  ];
}

const HEAD = ['SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEP-MAC', 'EXPIRES-IN', 'HOST'];

/**
 * The human table: the leases weft programs; then the STRANDED ones (with the fix), then the
 * QUARANTINED entries and why. Every etcd string is escaped, so no value can add a line.
 */
export function renderLeaseTable(rows: readonly LeaseRow[]): string {
  const lines = table(HEAD, rows.filter((r) => r.status === 'ok').map(cells));
  const stranded = rows.filter((r) => r.status === 'stranded');
  if (stranded.length > 0) {
    lines.push('', `STRANDED (${stranded.length}: not programmed, the lease does not fit the network config):`);
    lines.push(...table([...HEAD, 'WHY'], stranded.map((r) => [...cells(r), safeText((r.malformed ?? '').replace(/^stranded: /, ''))])).map((l) => `  ${l}`));
    lines.push('  fix: restart weft (or flanneld) on each of these hosts: it leases a subnet that fits;',
      '       for a host that is gone, run weft release on it or delete its key.');
  }
  const bad = rows.filter((r) => r.status === 'quarantined');
  if (bad.length > 0) lines.push('', `QUARANTINED (${bad.length}, ignored by weft):`, ...bad.map((r) => `  ${safeText(r.key)}: ${safeText(r.malformed ?? '')}`));
  return `${lines.join('\n')}\n`;
}
