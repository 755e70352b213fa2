/**
 * One row of `weft leases`: what a lease says, when it expires, who owns it, or why weft
 * ignores it. Pure: the command fetches the entries and TTLs and renders the rows.
 */
import { formatIP, formatPrefix } from './cidr.js';
import type { NetworkConfig } from './config-check.js';
import type { OwnerRecord } from './owner.js';
import { validatePeerLease } from './peer-lease.js';
import type { KeyValue } from './store.js';

export interface LeaseRow {
  subnet: string | null;
  publicIP: string | null;
  backendType: string | null;
  vtepMAC: string | null;
  expiresAt: string | null;
  ttlSeconds: number | null;
  host: string | null;
  key: string;
  malformed: string | null;
}

/** `ttlSeconds` is etcd's TimeToLive answer (-1 for a key without an etcd lease). */
export function leaseRow(subnetKey: string, kv: KeyValue, config: NetworkConfig, ttlSeconds: number, owner: OwnerRecord | undefined, nowMs: number): LeaseRow {
  const v = validatePeerLease(subnetKey, kv.value, config);
  const live = ttlSeconds > 0;
  return {
    subnet: v.ok ? formatPrefix(v.lease.subnet) : v.subnet ? formatPrefix(v.subnet) : null,
    publicIP: v.ok ? formatIP(v.lease.attrs.publicIP) : null,
    backendType: v.ok ? v.lease.attrs.backendType ?? null : null,
    vtepMAC: v.ok ? v.lease.vxlan?.vtepMAC ?? null : null,
    expiresAt: live ? new Date(nowMs + ttlSeconds * 1000).toISOString() : null,
    ttlSeconds: live ? ttlSeconds : null,
    host: owner ? owner.hostname || owner.hostID : null,
    key: kv.key,
    malformed: v.ok ? null : v.reason,
  };
}

/** The human table: valid leases, then the malformed entries with their reasons. */
export function renderLeaseTable(rows: readonly LeaseRow[]): string {
  const table = [['SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEP-MAC', 'EXPIRES-IN', 'HOST']];
  for (const r of rows.filter((x) => !x.malformed)) {
    table.push([r.subnet ?? '', r.publicIP ?? '', r.backendType ?? '-', r.vtepMAC ?? '-', r.ttlSeconds === null ? 'never (no etcd lease)' : `${r.ttlSeconds}s`, r.host ?? '(flanneld or unowned)']);
  }
  const widths = (table[0] ?? []).map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  const lines = table.map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
  const bad = rows.filter((x) => x.malformed);
  if (bad.length > 0) lines.push('', `MALFORMED (${bad.length}, ignored by weft):`, ...bad.map((r) => `  ${r.key}: ${r.malformed ?? ''}`));
  return `${lines.join('\n')}\n`;
}
