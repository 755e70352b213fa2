/**
 * Which host owns a lease. flanneld's lease value has no room for it and flanneld lists and
 * watches the plain prefix `<prefix>/subnets`, so weft keeps a separate record at
 * `<prefix>/weft/owners/<subnetkey>`, attached to the same etcd lease (they expire together).
 * The record lets two hosts with one public IP (NAT, cloned VMs) hold different subnets,
 * where flanneld would silently share one (§12 item 6).
 */
import { parseIP, sameIP } from '../net/cidr.js';
import { parseJson } from '../flannel/gojson.js';
import { isNoIPv4 } from '../net/ip-scope.js';
import type { LeaseAttrs } from '../flannel/lease.js';

export interface OwnerRecord {
  readonly hostID: string;
  readonly hostname: string;
  readonly publicIP: string;
}

export const subnetsPrefix = (prefix: string): string => `${prefix}/subnets/`;
export const ownersPrefix = (prefix: string): string => `${prefix}/weft/owners/`;
export const configKey = (prefix: string): string => `${prefix}/config`;

export function encodeOwner(o: OwnerRecord): string {
  return JSON.stringify({ hostID: o.hostID, hostname: o.hostname, publicIP: o.publicIP });
}

/** An owner record, or undefined for anything else (read within the lease-value limits; last duplicate key wins). */
export function decodeOwner(text: string): OwnerRecord | undefined {
  const doc = parseJson(text, { maxBytes: 4096, maxDepth: 32 });
  if (!doc.ok || doc.value.kind !== 'object') return undefined;
  const { members } = doc.value;
  const str = (k: string): string | undefined => {
    let v: string | undefined;
    for (const m of members) if (m.key === k) v = m.value.kind === 'string' ? m.value.value : undefined;
    return v;
  };
  const hostID = str('hostID');
  if (hostID === undefined || hostID === '') return undefined;
  return { hostID, hostname: str('hostname') ?? '', publicIP: str('publicIP') ?? '' };
}

/**
 * Does an owner record agree with the lease value it sits beside: its publicIP is the address
 * the value publishes (PublicIP, or PublicIPv6 on an IPv6-only host, as weft writes both in one
 * transaction)? Any etcd writer can write an owner record; one that disagrees with its lease is
 * a forgery or a leftover (the value was overwritten), never proof of who holds the lease.
 */
export function ownerAgrees(o: OwnerRecord, attrs: LeaseAttrs | undefined): boolean {
  const claimed = parseIP(o.publicIP);
  if (!attrs || !claimed) return false;
  const published = isNoIPv4(attrs.publicIP) && attrs.publicIPv6 ? attrs.publicIPv6 : attrs.publicIP;
  return sameIP(claimed, published);
}
