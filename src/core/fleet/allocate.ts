/**
 * Choosing a subnet. Pure: randomness is a parameter. Compatibility is flannel's rule
 * (§1.5): inside [SubnetMin, SubnetMax], of length SubnetLen.
 */
import { type Prefix, addToIP, ip, isAligned, maskOf, overlaps, prefix, sizeOf } from '../net/cidr.js';
import type { FamilyRange } from '../flannel/config-check.js';

/** True when a host may keep (or be given) this subnet under the config. */
export function isCompatible(subnet: Prefix, r: FamilyRange): boolean {
  return (
    subnet.ip.family === r.network.ip.family &&
    subnet.len === r.subnetLen &&
    isAligned(subnet.ip, subnet.len) &&
    subnet.ip.value >= r.subnetMin.value &&
    subnet.ip.value <= r.subnetMax.value
  );
}

/** One half: compatible with its family's range when the network has the family, absent when it does not. */
export const halfFits = (p: Prefix | undefined, r: FamilyRange | undefined): boolean =>
  r ? p !== undefined && isCompatible(p, r) : p === undefined;

/** Does a lease's every half fit the network's ranges (`range` IPv4, `rangeV6` IPv6), and no half of a family it lacks? */
export const fitsRanges = (
  s: { readonly v4?: Prefix; readonly v6?: Prefix },
  r: { readonly range?: FamilyRange; readonly rangeV6?: FamilyRange },
): boolean => halfFits(s.v4, r.range) && halfFits(s.v6, r.rangeV6);

/** Taken subnets, indexed so a candidate is checked in O(1) (plus the rare odd-sized ones). */
export class TakenSet {
  private readonly exact = new Set<bigint>();
  private readonly odd: Prefix[] = [];
  constructor(
    private readonly len: number,
    taken: Iterable<Prefix>,
  ) {
    for (const p of taken) this.add(p);
  }
  add(p: Prefix): void {
    if (p.len === this.len && isAligned(p.ip, p.len)) this.exact.add(p.ip.value);
    else this.odd.push(p);
  }
  has(candidate: Prefix): boolean {
    return this.exact.has(candidate.ip.value) || this.odd.some((o) => overlaps(o, candidate));
  }
  /**
   * The first address after every odd prefix wider than `candidate` that covers it (so a walk
   * skips the whole prefix in one step), or undefined when none does. A key such as
   * `0.0.0.0-0&::-0` (an IPv6 half of ::/0) covers every subnet: without this a walk would step
   * through 2^64 of them.
   */
  skipPast(candidate: Prefix): bigint | undefined {
    let end: bigint | undefined;
    for (const o of this.odd) {
      if (o.len >= candidate.len || !overlaps(o, candidate)) continue;
      const after = (o.ip.value & maskOf(o.ip.family, o.len)) + sizeOf(o.ip.family, o.len);
      if (end === undefined || after > end) end = after;
    }
    return end;
  }
  get size(): number {
    return this.exact.size + this.odd.length;
  }
}

/**
 * Free subnets in [SubnetMin, SubnetMax], in order, at most `limit` of them. Walks the range
 * once; O(range) only when the network is nearly full.
 */
export function freeSubnets(
  r: FamilyRange,
  isTaken: (p: Prefix) => boolean,
  limit: number,
  skipPast?: (p: Prefix) => bigint | undefined,
): Prefix[] {
  const out: Prefix[] = [];
  const step = sizeOf(r.network.ip.family, r.subnetLen);
  for (let a = r.subnetMin; a.value <= r.subnetMax.value && out.length < limit; ) {
    const p = prefix(a, r.subnetLen);
    if (!isTaken(p)) out.push(p);
    const past = skipPast?.(p);
    if (past !== undefined && past > a.value + step) {
      // Every subnet up to `past` lies in a wider taken prefix: jump over it.
      if (past > r.subnetMax.value) break;
      a = ip(a.family, past);
      continue;
    }
    const next = addToIP(a, step);
    if (!next) break;
    a = next;
  }
  return out;
}

/**
 * A random free subnet (uniform over the first `spread` free ones, as flanneld picks among
 * its first 100; a wider spread means fewer collisions between concurrent hosts).
 */
export function chooseFreeSubnet(
  r: FamilyRange,
  isTaken: (p: Prefix) => boolean,
  rng: () => number,
  spread = 1024,
  skipPast?: (p: Prefix) => bigint | undefined,
): Prefix | undefined {
  const free = freeSubnets(r, isTaken, spread, skipPast);
  return free[Math.min(free.length - 1, Math.floor(rng() * free.length))];
}
