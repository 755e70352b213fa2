/**
 * Deciding which subnet this host takes (flannel-compat.md §1.5, minus its sharp edges).
 * Pure: the agent lists etcd, calls `planAcquire`, and executes the plan with
 * compare-and-swap transactions; a lost race simply plans again with the loser excluded.
 *
 * Order of preference:
 *  1. a lease this host owns (owner record with our host ID) that is still compatible;
 *  2. the subnet of the previous subnet file, when its key is free, or unowned with our IP;
 *  3. an unowned lease with our public IP (a flanneld lease or a reservation being adopted);
 *  4. a free subnet chosen at random.
 * A lease owned by another host is never taken, whatever its public IP says.
 */
import { type IP, type Prefix, formatPrefix, sameIP, samePrefix } from './cidr.js';
import { type FamilyRange, capacityOf } from './config-check.js';
import { TakenSet, chooseFreeSubnet, isCompatible } from './allocate.js';
import { type LeaseAttrs, decodeLeaseAttrs, parseSubnetKey } from './lease.js';
import { type OwnerRecord, decodeOwner } from './owner.js';
import type { KeyValue } from './store.js';

/** A key under `<prefix>/subnets/` as listed, with what could be decoded of it. */
export interface ListedLease {
  readonly subnetKey: string;
  /** The subnet flanneld reads from the key: it counts as taken even when the key is odd. */
  readonly subnet?: Prefix;
  /** Set when the key is not in weft's canonical form: never adopted, reused or kept. */
  readonly nonCanonicalKey?: true;
  readonly kv: KeyValue;
  readonly attrs?: LeaseAttrs;
  readonly owner?: OwnerRecord;
  readonly ownerKv?: KeyValue;
}

/** Join the subnet keys and the owner records of one listing. */
export function joinListing(subnetKvs: readonly KeyValue[], ownerKvs: readonly KeyValue[], subnetsPrefix: string, ownersPrefix: string): ListedLease[] {
  const owners = new Map<string, KeyValue>();
  for (const kv of ownerKvs) owners.set(kv.key.slice(ownersPrefix.length), kv);
  return subnetKvs.map((kv) => {
    const subnetKey = kv.key.slice(subnetsPrefix.length);
    const key = parseSubnetKey(subnetKey);
    const subnet = key?.v4;
    const attrs = decodeLeaseAttrs(kv.value);
    const ownerKv = owners.get(subnetKey);
    const owner = ownerKv ? decodeOwner(ownerKv.value) : undefined;
    return {
      subnetKey, kv, ...(subnet ? { subnet } : {}), ...(key && !key.canonical ? { nonCanonicalKey: true as const } : {}),
      ...(attrs.ok ? { attrs: attrs.value } : {}), ...(owner && ownerKv ? { owner, ownerKv } : {}),
    };
  });
}

export interface AcquireInput {
  readonly range: FamilyRange;
  readonly leases: readonly ListedLease[];
  readonly hostID: string;
  /** IDs this host published before (the raw machine-id of older versions): their leases are its own. */
  readonly formerHostIDs?: readonly string[];
  readonly publicIP: IP;
  readonly previous?: Prefix;
  /** Subnets (formatted) this host just lost a race for: do not plan them again. */
  readonly exclude?: ReadonlySet<string>;
  readonly rng: () => number;
}

export type AcquirePlan =
  | { readonly kind: 'reuse'; readonly lease: ListedLease; readonly why: 'owned' | 'previous' | 'public-ip' }
  | { readonly kind: 'create'; readonly subnet: Prefix; readonly why: 'previous' | 'allocated' }
  | { readonly kind: 'full'; readonly message: string };

export interface AcquireDecision {
  readonly plan: AcquirePlan;
  /** Leases this host owns that no longer fit the config: delete them (flanneld does too). */
  readonly stale: readonly ListedLease[];
}

export function planAcquire(input: AcquireInput): AcquireDecision {
  const { range, leases, hostID, publicIP } = input;
  const excluded = (p: Prefix): boolean => input.exclude?.has(formatPrefix(p)) ?? false;
  const fits = (l: ListedLease): l is ListedLease & { subnet: Prefix } => l.subnet !== undefined && !l.nonCanonicalKey && isCompatible(l.subnet, range) && !excluded(l.subnet);
  const ours = new Set([hostID, ...(input.formerHostIDs ?? [])]);
  const mine = leases.filter((l) => l.owner !== undefined && ours.has(l.owner.hostID));
  const stale = mine.filter((l) => !fits(l));
  const owned = mine.find(fits);
  if (owned) return { plan: { kind: 'reuse', lease: owned, why: 'owned' }, stale };

  const taken = new TakenSet(range.subnetLen, leases.flatMap((l) => (l.subnet ? [l.subnet] : [])));
  const adoptable = (l: ListedLease): boolean => !l.owner && l.attrs !== undefined && sameIP(l.attrs.publicIP, publicIP) && fits(l);
  const prev = input.previous;
  if (prev && isCompatible(prev, range) && !excluded(prev)) {
    const atPrev = leases.find((l) => l.subnet && samePrefix(l.subnet, prev));
    if (atPrev && adoptable(atPrev)) return { plan: { kind: 'reuse', lease: atPrev, why: 'previous' }, stale };
    if (!atPrev && !taken.has(prev)) return { plan: { kind: 'create', subnet: prev, why: 'previous' }, stale };
  }
  const byIP = leases.find(adoptable);
  if (byIP) return { plan: { kind: 'reuse', lease: byIP, why: 'public-ip' }, stale };

  const chosen = chooseFreeSubnet(range, (p) => taken.has(p) || excluded(p), input.rng);
  if (chosen) return { plan: { kind: 'create', subnet: chosen, why: 'allocated' }, stale };
  const live = leases.filter((l) => l.subnet && isCompatible(l.subnet, range)).length;
  return {
    plan: { kind: 'full', message: `out of subnets: network ${formatPrefix(range.network)} holds ${capacityOf(range)} /${range.subnetLen} subnets and ${live} are leased` },
    stale,
  };
}
