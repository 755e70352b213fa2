/**
 * One row of `weft leases`: what a lease says (both halves of a dual-stack key), when it
 * expires, who owns it, and whether weft programs it. Pure: the command fetches the entries and
 * TTLs and renders the rows.
 *
 * The entry as a whole must be trustworthy (a canonical, aligned flannel key; a value flanneld
 * reads; a printable BackendType), else it is `quarantined` and only what the key says is shown.
 * Then each half of a family the config serves is judged on its own, as the agents program it:
 * its public address and backend data (PublicIP and BackendData for IPv4, PublicIPv6 and
 * BackendV6Data for IPv6), then its fit to the config. A half of a family the config does not
 * serve is shown, not judged (a v4-only host ignores a dual-stack lease's IPv6 half). The row's
 * `status`:
 * - `ok`: weft hosts program at least one half. `malformed` is null, or says which half is not
 *   programmed and why (a dual-stack lease of which one half is bad or does not fit);
 * - `stranded`: nothing is programmed, and a half decodes but does not fit the stored config
 *   (outside the network, another subnet length, another backend or VNI, or only a family the
 *   config does not serve), typically after `weft apply --force`. Its fields are filled in like
 *   an ok row: these are the hosts an operator must fix;
 * - `quarantined`: nothing is programmed and nothing fits: it cannot be trusted (a bad key,
 *   value, MAC or public address).
 * A fleet-wide judgement comes last (leaseRows): of two ok halves with one VTEP MAC (per family:
 * the IPv4 and IPv6 vxlan devices are separate), the older lease (etcd create revision) is
 * programmed and the newer quarantined, as the agents decide.
 *
 * Every string that comes from etcd is capped here (capText); the table escapes it as well.
 */
import { type IP, type Prefix, formatIP, formatPrefix, isNetworkAddress, within } from './cidr.js';
import type { NetworkConfig } from './config-check.js';
import { capOrNull, capText, safeText } from './escape.js';
import { shortText } from './gojson.js';
import { badPublicIPv6 } from './ip-scope.js';
import { type LeaseAttrs, type VxlanData, decodeLeaseAttrs, decodeWireguardData, formatSubnetKey, parseSubnetKey } from './lease.js';
import type { OwnerRecord } from './owner.js';
import { badPublicIP, vxlanHalf } from './peer-lease.js';
import type { KeyValue } from './store.js';

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

/** Why a decoded lease does not fit the config, or undefined when weft programs it. */
export function strandedReason(subnet: Prefix, attrs: LeaseAttrs, vxlan: VxlanData | undefined, config: NetworkConfig): string | undefined {
  const v4 = config.ipv4;
  if (!v4) return 'stranded: the network config has no IPv4 network (EnableIPv4 is false)';
  if (!within(subnet, v4.network)) return `stranded: outside the network ${formatPrefix(v4.network)}`;
  if (subnet.len !== v4.subnetLen) return `stranded: a /${subnet.len}, but the network's SubnetLen is ${v4.subnetLen}`;
  return backendMismatch(attrs, vxlan, config);
}

/** The IPv6 twin of strandedReason, for a lease's IPv6 half (BackendV6Data's VNI). */
export function strandedReasonV6(subnet: Prefix, attrs: LeaseAttrs, vxlan: VxlanData | undefined, config: NetworkConfig): string | undefined {
  const v6 = config.ipv6;
  if (!v6) return 'stranded: the network config has no IPv6 network';
  if (!within(subnet, v6.network)) return `stranded: IPv6 subnet outside the network ${formatPrefix(v6.network)}`;
  if (subnet.len !== v6.subnetLen) return `stranded: an IPv6 /${subnet.len}, but the network's IPv6SubnetLen is ${v6.subnetLen}`;
  return backendMismatch(attrs, vxlan, config);
}

function backendMismatch(attrs: LeaseAttrs, vxlan: VxlanData | undefined, config: NetworkConfig): string | undefined {
  const want = config.backend.type;
  const type = attrs.backendType ?? '';
  if (type !== want) return `stranded: backend ${type || '(none)'}, but the network uses ${want || '(none)'}`;
  const vni = config.backend.vxlan?.vni;
  if (vxlan?.vni !== undefined && vni !== undefined && vxlan.vni !== vni) return `stranded: VNI ${vxlan.vni}, but the network uses VNI ${vni}`;
  return undefined;
}

/** Printable ASCII without spaces: every backend type flannel knows (as peer-lease.ts). */
const BACKEND_TYPE = /^[\x21-\x7e]{1,32}$/;

/** One half of a lease as judged: `trusted` when its data decoded (its fields are shown). */
interface Half {
  readonly family: 4 | 6;
  readonly subnet: Prefix;
  state: 'ok' | 'stranded' | 'quarantined';
  reason?: string;
  readonly trusted: boolean;
  readonly mac?: string;
}

/** A row before its status is settled (leaseRows may still quarantine a half). */
interface Judged {
  readonly fields: Omit<LeaseRow, 'status' | 'malformed'>;
  /** Set when the entry as a whole cannot be trusted. */
  readonly entryReason?: string;
  readonly halves: Half[];
  /** Why nothing is judged: the lease has no half of a family weft serves here. */
  readonly unserved?: string;
  readonly createRevision: bigint;
}


const isZero = (a: IP): boolean => a.value === 0n;

/** A served half: quarantined when its data is not `trusted`, else stranded when `reason` says why, else ok. */
function halfOf(family: 4 | 6, subnet: Prefix, reason: string | undefined, trusted: boolean, vx: VxlanData | undefined): Half {
  const state = !trusted ? 'quarantined' : reason !== undefined ? 'stranded' : 'ok';
  return { family, subnet, state, trusted, ...(reason !== undefined ? { reason } : {}), ...(vx ? { mac: vx.vtepMAC } : {}) };
}

function judge(subnetKey: string, kv: KeyValue, config: NetworkConfig, ttlSeconds: number, owner: OwnerRecord | undefined, nowMs: number): Judged {
  const live = ttlSeconds > 0;
  const key = parseSubnetKey(subnetKey);
  const createRevision = /^\d{1,19}$/.test(kv.createRevision) ? BigInt(kv.createRevision) : 0n;
  const base: Omit<LeaseRow, 'status' | 'malformed'> = {
    subnet: key?.v4 ? formatPrefix(key.v4) : null, ipv6Subnet: key?.v6 ? formatPrefix(key.v6) : null,
    publicIP: null, publicIPv6: null, backendType: null, vtepMAC: null, vtepMACv6: null, vni: null,
    expiresAt: live ? new Date(nowMs + ttlSeconds * 1000).toISOString() : null,
    ttlSeconds: live ? ttlSeconds : null,
    host: capOrNull(owner ? owner.hostname || owner.hostID : null),
    key: capText(kv.key),
  };
  const bad = (entryReason: string): Judged => ({ fields: base, entryReason, halves: [], createRevision });
  if (!key) return bad(`key "${shortText(subnetKey)}" is not a flannel subnet key`);
  const read = key.v4 ?? key.v6;
  if (!key.canonical) return bad(`key "${shortText(subnetKey)}" is not in canonical form (flanneld reads it as ${read ? formatPrefix(read) : '?'}; weft writes ${formatSubnetKey(key)})`);
  if (key.v4 && !isNetworkAddress(key.v4)) return bad(`subnet ${formatPrefix(key.v4)} is not aligned on its prefix length`);
  if (key.v6 && !isNetworkAddress(key.v6)) return bad(`IPv6 subnet ${formatPrefix(key.v6)} is not aligned on its prefix length`);
  const attrs = decodeLeaseAttrs(kv.value);
  if (!attrs.ok) return bad(attrs.reason);
  const a = attrs.value;
  const type = a.backendType;
  if (type !== undefined && !BACKEND_TYPE.test(type)) return bad(`BackendType "${shortText(type)}" is not a backend name (control characters, spaces or over 32 characters)`);
  const fields = { ...base, backendType: capOrNull(type) };
  const halves: Half[] = [];
  // IPv4 half: PublicIP and BackendData.
  if (key.v4) {
    const served = config.ipv4 !== undefined;
    const pub = badPublicIP(a.publicIP, config.ipv4?.network);
    let data: { ok: true; value?: VxlanData } | { ok: false; reason: string } = { ok: true };
    if (type === 'vxlan') data = vxlanHalf(a.backendData, 'BackendData');
    else if (type === 'wireguard') { const w = decodeWireguardData(a.backendData); data = w.ok ? { ok: true } : w; }
    const reason = pub ?? (data.ok ? undefined : data.reason);
    const vx = data.ok ? data.value : undefined;
    if (reason === undefined || !served) {
      fields.publicIP = pub === undefined ? formatIP(a.publicIP) : null;
      fields.vtepMAC = vx?.vtepMAC ?? null;
      fields.vni = vx?.vni ?? null;
    }
    if (served) {
      halves.push(halfOf(4, key.v4, reason ?? strandedReason(key.v4, a, vx, config), reason === undefined, vx));
    }
  } else if (!isZero(a.publicIP)) {
    fields.publicIP = formatIP(a.publicIP);
  }
  // IPv6 half: PublicIPv6 and BackendV6Data. weft programs IPv6 over vxlan and host-gw only.
  if (key.v6) {
    const served = config.ipv6 !== undefined && config.backend.type !== 'wireguard';
    const pub = a.publicIPv6 ? badPublicIPv6(a.publicIPv6, config.ipv6?.network) : 'no PublicIPv6 for its IPv6 subnet';
    const data = type === 'vxlan' ? vxlanHalf(a.backendV6Data, 'BackendV6Data') : undefined;
    const reason = pub ?? (data && !data.ok ? data.reason : undefined);
    const vx = data?.ok ? data.value : undefined;
    if (reason === undefined || !served) {
      fields.publicIPv6 = a.publicIPv6 && pub === undefined ? formatIP(a.publicIPv6) : null;
      fields.vtepMACv6 = vx?.vtepMAC ?? null;
      if (!key.v4) fields.vni = vx?.vni ?? null;
    }
    if (served) {
      halves.push(halfOf(6, key.v6, reason ?? strandedReasonV6(key.v6, a, vx, config), reason === undefined, vx));
    }
  } else if (a.publicIPv6 && !badPublicIPv6(a.publicIPv6)) {
    fields.publicIPv6 = formatIP(a.publicIPv6);
  }
  const unserved = halves.length > 0 ? undefined
    : key.v4 ? 'stranded: an IPv4-only lease, but the network config has no IPv4 network (EnableIPv4 is false)'
      : config.ipv6 ? 'stranded: an IPv6-only lease, but weft does not program IPv6 over wireguard'
        : 'stranded: an IPv6-only lease, but the network config has no IPv6 network';
  return { fields, halves, createRevision, ...(unserved ? { unserved } : {}) };
}

const labelOf = (h: Half): string => (h.family === 6 ? 'IPv6 half' : 'IPv4 half');

/** Settle a judged entry into its row. */
function finish(j: Judged): LeaseRow {
  if (j.entryReason !== undefined) return { ...j.fields, status: 'quarantined', malformed: capText(j.entryReason) };
  if (j.unserved !== undefined) return { ...j.fields, status: 'stranded', malformed: capText(j.unserved) };
  const both = j.halves.length > 1;
  const reasonOf = (h: Half): string => {
    const r = h.reason ?? '';
    return both ? `${labelOf(h)}: ${r.replace(/^stranded: /, '')}` : r;
  };
  const notOk = j.halves.filter((h) => h.state !== 'ok');
  if (j.halves.some((h) => h.state === 'ok')) {
    return { ...j.fields, status: 'ok', malformed: notOk.length === 0 ? null : capText(notOk.map((h) => `${labelOf(h)} not programmed: ${(h.reason ?? '').replace(/^stranded: /, '')}`).join('; ')) };
  }
  if (j.halves.some((h) => h.state === 'stranded')) {
    return { ...j.fields, status: 'stranded', malformed: capText(`${both ? 'stranded: ' : ''}${notOk.map(reasonOf).join('; ')}`) };
  }
  // Nothing programmed, nothing that merely does not fit: quarantined. Only what the key says
  // is shown unless a half's data was trusted (a VTEP MAC another lease holds).
  const fields = j.halves.some((h) => h.trusted) ? j.fields : { ...j.fields, backendType: null };
  return { ...fields, status: 'quarantined', malformed: capText(notOk.map(reasonOf).join('; ')) };
}

/** `ttlSeconds` is etcd's TimeToLive answer (-1 for a key without an etcd lease). */
export function leaseRow(subnetKey: string, kv: KeyValue, config: NetworkConfig, ttlSeconds: number, owner: OwnerRecord | undefined, nowMs: number): LeaseRow {
  return finish(judge(subnetKey, kv, config, ttlSeconds, owner, nowMs));
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
 * belongs to the oldest lease (smallest create revision) that claims it, per family; every newer
 * claim is quarantined. A copy of a host's MAC therefore never wins, whatever its key sorts as.
 */
export function leaseRows(entries: readonly LeaseEntry[], config: NetworkConfig, nowMs: number): LeaseRow[] {
  const judged = entries.map((e) => judge(e.subnetKey, e.kv, config, e.ttlSeconds, e.owner, nowMs));
  for (const family of [4, 6] as const) {
    const claims = judged.flatMap((j, i) => j.halves.filter((h) => h.family === family && h.state === 'ok' && h.mac !== undefined).map((h) => ({ i, h })));
    const first = new Map<string, number>();
    for (const { i, h } of claims) {
      const mac = h.mac ?? '';
      const j = first.get(mac);
      if (j === undefined || (judged[i]?.createRevision ?? 0n) < (judged[j]?.createRevision ?? 0n)) first.set(mac, i);
    }
    for (const { i, h } of claims) {
      const owner = first.get(h.mac ?? '');
      if (owner === undefined || owner === i) continue;
      const older = judged[owner];
      const name = family === 6 ? older?.fields.ipv6Subnet : older?.fields.subnet;
      h.state = 'quarantined';
      h.reason = `${family === 6 ? 'IPv6 ' : ''}VtepMAC ${h.mac ?? ''} is already used by the older lease ${name ?? '?'} (created at etcd revision ${String(older?.createRevision ?? 0n)}); a copy never wins`;
    }
  }
  return judged.map(finish);
}

/** Cells of the human table are short: a hostile value cannot push the columns off screen. */
const CELL_CAP = 64;

function table(head: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all.map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
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
    c(r.subnet, '-'), c(r.ipv6Subnet, '-'), c(r.publicIP, '-'), c(r.publicIPv6, '-'), c(r.backendType, '-'),
    c(r.vtepMAC, '-'), c(r.vtepMACv6, '-'), expires, host,
  ];
}

const HEAD = ['SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEP-MAC', 'EXPIRES-IN', 'HOST'];
const HEAD6 = ['SUBNET', 'IPV6-SUBNET', 'PUBLIC-IP', 'PUBLIC-IPV6', 'BACKEND', 'VTEP-MAC', 'VTEP-MAC-V6', 'EXPIRES-IN', 'HOST'];

/**
 * The human table: the leases weft programs (then, for dual-stack leases of which one half is
 * not programmed, which and why); then the STRANDED ones (with the fix), then the QUARANTINED
 * entries and why. Every etcd string is escaped, so no value can add a line.
 */
export function renderLeaseTable(rows: readonly LeaseRow[]): string {
  const v6 = rows.some((r) => r.ipv6Subnet !== null);
  const head = v6 ? HEAD6 : HEAD;
  const ok = rows.filter((r) => r.status === 'ok');
  const lines = table(head, ok.map((r) => cells(r, v6)));
  const partly = ok.filter((r) => r.malformed !== null);
  if (partly.length > 0) lines.push('', `PARTLY PROGRAMMED (${partly.length}: one half of the lease is not programmed):`, ...partly.map((r) => `  ${safeText(r.key)}: ${safeText(r.malformed ?? '')}`));
  const stranded = rows.filter((r) => r.status === 'stranded');
  if (stranded.length > 0) {
    lines.push('', `STRANDED (${stranded.length}: not programmed, the lease does not fit the network config):`);
    lines.push(...table([...head, 'WHY'], stranded.map((r) => [...cells(r, v6), safeText((r.malformed ?? '').replace(/^stranded: /, ''))])).map((l) => `  ${l}`));
    lines.push('  fix: restart weft (or flanneld) on each of these hosts: it leases a subnet that fits;',
      '       for a host that is gone, run weft release on it or delete its key.');
  }
  const bad = rows.filter((r) => r.status === 'quarantined');
  if (bad.length > 0) lines.push('', `QUARANTINED (${bad.length}, ignored by weft):`, ...bad.map((r) => `  ${safeText(r.key)}: ${safeText(r.malformed ?? '')}`));
  return `${lines.join('\n')}\n`;
}
