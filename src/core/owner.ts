/**
 * Which host owns a lease. flanneld's lease value has no room for it and flanneld lists and
 * watches the plain prefix `<prefix>/subnets`, so weft keeps a separate record at
 * `<prefix>/weft/owners/<subnetkey>`, attached to the same etcd lease (they expire together).
 * The record lets two hosts with one public IP (NAT, cloned VMs) hold different subnets,
 * where flanneld would silently share one (§12 item 6).
 */
import type { Json } from './network-config.js';

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

export function decodeOwner(text: string): OwnerRecord | undefined {
  try {
    const v = JSON.parse(text) as Json;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    const { hostID, hostname, publicIP } = v;
    if (typeof hostID !== 'string' || hostID === '') return undefined;
    return { hostID, hostname: typeof hostname === 'string' ? hostname : '', publicIP: typeof publicIP === 'string' ? publicIP : '' };
  } catch {
    return undefined;
  }
}
