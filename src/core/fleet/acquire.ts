/**
 * Deciding which subnet this host takes (flannel-compat.md §1.5, minus its sharp edges).
 * Pure: the agent lists etcd, calls `planAcquire`, and executes the plan with
 * compare-and-swap transactions; a lost race simply plans again with the loser excluded.
 *
 * Order of preference:
 *  1. a lease this host owns (owner record with our host ID) that is still compatible;
 *  2. the subnet of the previous subnet file, when its key is free, or unowned with our IP;
 *  3. an unowned lease with our public IP (a flanneld lease or a reservation being adopted);
 *  4. a new key: the halves of a lease of this host's that still fit (IPv6 turned on or off
 *     keeps the IPv4 subnet), the previous subnet file's halves when free, else free subnets
 *     chosen at random, one per family the network has.
 * A lease owned by another host is never taken, whatever its public IP says. On an IPv6-only
 * host (PublicIP 0.0.0.0, as flanneld writes it) a lease is this host's by its owner record or
 * its PublicIPv6, never by 0.0.0.0 (flanneld's v6-only hosts take over each other's leases).
 */
import { type IP, type Prefix, formatPrefix, overlaps } from '../net/cidr.js';
import { type FamilyRange, capacityOf } from '../flannel/config-check.js';
import { TakenSet, chooseFreeSubnet, halfFits, isCompatible } from './allocate.js';
import {
  type LeaseAttrs,
  type SubnetKey,
  decodeLeaseAttrs,
  formatSubnetKey,
  parseSubnetKey,
} from '../flannel/lease.js';
import { type OwnerRecord, decodeOwner, ownerAgrees } from './owner.js';
import { type SelfEvidence, isOwnLease, publishedBy } from './own-lease.js';
import type { KeyValue } from './store.js';

/** A key under `<prefix>/subnets/` as listed, with what could be decoded of it. */
export interface ListedLease {
  readonly subnetKey: string;
  /** The IPv4 subnet flanneld reads from the key: it counts as taken even when the key is odd. */
  readonly subnet?: Prefix;
  /** The IPv6 subnet flanneld reads from the key (its `&<v6>-<len>` half), taken likewise. */
  readonly subnetV6?: Prefix;
  /** Set when the key is not in weft's canonical form: never adopted, reused or kept. */
  readonly nonCanonicalKey?: true;
  readonly kv: KeyValue;
  readonly attrs?: LeaseAttrs;
  /** The owner record as decoded (untrusted: see `ownerAgrees` and `isOwnLease`). */
  readonly owner?: OwnerRecord;
  /** Set when the owner record's publicIP is the address the lease value publishes (core/fleet/owner.ts ownerAgrees). */
  readonly ownerAgrees?: true;
  /** The owner record's entry, decodable or not: a write of the lease compares on it. */
  readonly ownerKv?: KeyValue;
}

/** The halves of a listed lease's key. */
export const halvesOf = (l: ListedLease): SubnetKey => ({
  ...(l.subnet ? { v4: l.subnet } : {}),
  ...(l.subnetV6 ? { v6: l.subnetV6 } : {}),
});

/** Join the subnet keys and the owner records of one listing. */
export function joinListing(
  subnetKvs: readonly KeyValue[],
  ownerKvs: readonly KeyValue[],
  subnetsPrefix: string,
  ownersPrefix: string,
): ListedLease[] {
  const owners = new Map<string, KeyValue>();
  for (const kv of ownerKvs) owners.set(kv.key.slice(ownersPrefix.length), kv);
  return subnetKvs.map((kv) => {
    const subnetKey = kv.key.slice(subnetsPrefix.length);
    const key = parseSubnetKey(subnetKey);
    const attrs = decodeLeaseAttrs(kv.value);
    const ownerKv = owners.get(subnetKey);
    const owner = ownerKv ? decodeOwner(ownerKv.value) : undefined;
    const agrees = owner !== undefined && ownerAgrees(owner, attrs.ok ? attrs.value : undefined);
    return {
      subnetKey,
      kv,
      ...(key?.v4 ? { subnet: key.v4 } : {}),
      ...(key?.v6 ? { subnetV6: key.v6 } : {}),
      ...(key && !key.canonical ? { nonCanonicalKey: true as const } : {}),
      ...(attrs.ok ? { attrs: attrs.value } : {}),
      ...(owner ? { owner } : {}),
      ...(agrees ? { ownerAgrees: true as const } : {}),
      ...(ownerKv ? { ownerKv } : {}),
    };
  });
}

/** Does a lease's owner record stand for another host (it agrees with the value)? A record that does not is treated as absent, as if a writer had deleted it. */
const ownedByRecord = (l: ListedLease): boolean => l.owner !== undefined && l.ownerAgrees === true;

export interface AcquireInput {
  /** The IPv4 range; absent for an IPv6-only network (the lease then has no IPv4 half). */
  readonly range?: FamilyRange;
  /** The IPv6 range; absent for an IPv4-only network (the lease then has no IPv6 half). */
  readonly rangeV6?: FamilyRange;
  readonly leases: readonly ListedLease[];
  readonly hostID: string;
  /** IDs this host published before (the raw machine-id of older versions): their leases are its own. */
  readonly formerHostIDs?: readonly string[];
  /** This host's IPv4 public address; `0.0.0.0` on an IPv6-only host (never matched). */
  readonly publicIP: IP;
  /** This host's IPv6 public address (matches an unowned lease's PublicIPv6 on an IPv6-only host). */
  readonly publicIPv6?: IP;
  readonly previous?: SubnetKey;
  /** Subnets (formatted, either family) this host just lost a race for: do not plan them again. */
  readonly exclude?: ReadonlySet<string>;
  readonly rng: () => number;
}

export type AcquirePlan =
  | { readonly kind: 'reuse'; readonly lease: ListedLease; readonly why: 'owned' | 'previous' | 'public-ip' }
  | {
      readonly kind: 'create';
      readonly subnets: SubnetKey;
      readonly why: 'previous' | 'allocated' | 'owned' | 'public-ip';
      /**
       * A lease of this host's whose halves that still fit are kept in the new key (IPv6 turned
       * on or off: the IPv4 subnet stays): deleted in the same transaction as the create.
       */
      readonly replaces?: ListedLease;
      /** The halves chosen at random (a lost race excludes only these). */
      readonly allocated: readonly Prefix[];
    }
  | { readonly kind: 'full'; readonly message: string };

export interface AcquireDecision {
  readonly plan: AcquirePlan;
  /** Leases this host owns that no longer fit the config: delete them (flanneld does too). */
  readonly stale: readonly ListedLease[];
}

export function planAcquire(input: AcquireInput): AcquireDecision {
  const { range, rangeV6, leases, hostID, publicIP } = input;
  const excluded = (p: Prefix): boolean => input.exclude?.has(formatPrefix(p)) ?? false;
  // A half fits when the network has that family and the half is compatible, or the network
  // lacks the family and the lease lacks the half.
  const fitsHere = (p: Prefix | undefined, r: FamilyRange | undefined): boolean =>
    halfFits(p, r) && !(p && excluded(p));
  const usable = (l: ListedLease): boolean =>
    (l.subnet !== undefined || l.subnetV6 !== undefined) && !l.nonCanonicalKey;
  const fits = (l: ListedLease): boolean => usable(l) && fitsHere(l.subnet, range) && fitsHere(l.subnetV6, rangeV6);
  const keepsV4 = (l: ListedLease): Prefix | undefined =>
    range && l.subnet && fitsHere(l.subnet, range) ? l.subnet : undefined;
  const keepsV6 = (l: ListedLease): Prefix | undefined =>
    rangeV6 && l.subnetV6 && fitsHere(l.subnetV6, rangeV6) ? l.subnetV6 : undefined;
  const partly = (l: ListedLease): boolean => usable(l) && (keepsV4(l) !== undefined || keepsV6(l) !== undefined);
  const self: SelfEvidence = {
    hostIDs: [hostID, ...(input.formerHostIDs ?? [])],
    publicIP,
    ...(input.publicIPv6 ? { publicIPv6: input.publicIPv6 } : {}),
    heldKeys: input.previous ? [formatSubnetKey(input.previous)] : [],
  };
  const mine = leases.filter((l) => isOwnLease(l, self));
  const owned = mine.find(fits);
  const ownedPart = owned ? undefined : mine.find(partly);
  const stale = mine.filter((l) => l !== owned && l !== ownedPart);
  if (owned) return { plan: { kind: 'reuse', lease: owned, why: 'owned' }, stale };

  // An unowned lease published with this host's address: IPv4 PublicIP, or on an IPv6-only
  // host its PublicIPv6 (flanneld's v6-only hosts all publish 0.0.0.0: never an identity).
  // An owner record that disagrees with its value counts as none (a writer could delete it).
  const adoptable = (l: ListedLease): boolean =>
    !ownedByRecord(l) && !mine.includes(l) && l.attrs !== undefined && publishedBy(l.attrs, self);
  const taken4 = new TakenSet(
    range?.subnetLen ?? 0,
    leases.flatMap((l) => (l.subnet ? [l.subnet] : [])),
  );
  const taken6 = new TakenSet(
    rangeV6?.subnetLen ?? 0,
    leases.flatMap((l) => (l.subnetV6 ? [l.subnetV6] : [])),
  );
  const prev = input.previous;
  const prevFits =
    prev !== undefined &&
    (prev.v4 !== undefined || prev.v6 !== undefined) &&
    fitsHere(prev.v4, range) &&
    fitsHere(prev.v6, rangeV6);
  if (prev && prevFits) {
    const prevKey = formatSubnetKey(prev);
    const atPrev = leases.find((l) => l.subnetKey === prevKey);
    if (atPrev && adoptable(atPrev) && fits(atPrev))
      return { plan: { kind: 'reuse', lease: atPrev, why: 'previous' }, stale };
    const clash = leases.some(
      (l) =>
        (prev.v4 && l.subnet && overlaps(l.subnet, prev.v4)) ||
        (prev.v6 && l.subnetV6 && overlaps(l.subnetV6, prev.v6)),
    );
    if (!atPrev && !clash) return { plan: { kind: 'create', subnets: prev, why: 'previous', allocated: [] }, stale };
  }
  const byIP = leases.find((l) => adoptable(l) && fits(l));
  if (byIP) return { plan: { kind: 'reuse', lease: byIP, why: 'public-ip' }, stale };

  // A new key. A lease of this host's that fits in part (IPv6 turned on or off) gives the half
  // that still fits, so the host keeps its IPv4 subnet (flanneld deletes the lease and
  // renumbers the host, flannel-ipv6-wireguard.md §1.6); it is replaced in the same transaction.
  const base = ownedPart ?? leases.find((l) => adoptable(l) && partly(l));
  const allocated: Prefix[] = [];
  const pick = (
    r: FamilyRange | undefined,
    kept: Prefix | undefined,
    prevHalf: Prefix | undefined,
    taken: TakenSet,
  ): Prefix | undefined | 'full' => {
    if (!r) return undefined;
    if (kept) return kept;
    if (prevHalf && isCompatible(prevHalf, r) && !excluded(prevHalf) && !taken.has(prevHalf)) return prevHalf;
    const chosen = chooseFreeSubnet(
      r,
      (p) => taken.has(p) || excluded(p),
      input.rng,
      1024,
      (p) => taken.skipPast(p),
    );
    if (!chosen) return 'full';
    allocated.push(chosen);
    return chosen;
  };
  const v4 = pick(range, base && keepsV4(base), prev?.v4, taken4);
  const v6 = pick(rangeV6, base && keepsV6(base), prev?.v6, taken6);
  const full = (r: FamilyRange): string => {
    const live = leases.filter((l) => {
      const p = r.network.ip.family === 4 ? l.subnet : l.subnetV6;
      return p !== undefined && isCompatible(p, r);
    }).length;
    return `out of subnets: network ${formatPrefix(r.network)} holds ${capacityOf(r)} /${r.subnetLen} subnets and ${live} are leased`;
  };
  if (v4 === 'full' && range) return { plan: { kind: 'full', message: full(range) }, stale };
  if (v6 === 'full' && rangeV6) return { plan: { kind: 'full', message: full(rangeV6) }, stale };
  const subnets: SubnetKey = { ...(v4 && v4 !== 'full' ? { v4 } : {}), ...(v6 && v6 !== 'full' ? { v6 } : {}) };
  const why = base ? (base === ownedPart ? 'owned' : 'public-ip') : allocated.length === 0 ? 'previous' : 'allocated';
  return { plan: { kind: 'create', subnets, why, allocated, ...(base ? { replaces: base } : {}) }, stale };
}

/**
 * The etcd lease a plan's write leaves unused, to revoke after it ('0' for none): an adopted
 * lease's own (flanneld's, now moved to ours), or for a lease of this host's the one its owner
 * record is on (only this host attaches its owner records). Never the key's etcd lease of an
 * owned lease: a writer may have moved the key to an etcd lease of another host's, whose keys
 * a revoke would delete.
 */
export function replacedEtcdLease(plan: AcquirePlan): string {
  if (plan.kind === 'full') return '0';
  const l = plan.kind === 'reuse' ? plan.lease : plan.replaces;
  if (!l) return '0';
  return plan.why === 'owned' ? (l.ownerKv?.lease ?? '0') : l.kv.lease;
}
