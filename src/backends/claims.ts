/**
 * Clashes between peer leases over one key (a subnet's route, a VTEP MAC, a WireGuard public
 * key): the oldest lease that claims it wins (etcd create revision), whatever order keys sort or
 * arrive in, so a copy written later never takes the original's traffic. Pure.
 */
import type { PeerLease } from '../core/flannel/peer-lease.js';

/** A create revision as a number, or undefined when absent or not decimal (a hand-edited cache). */
const revisionOf = (p: PeerLease): bigint | undefined =>
  p.createRevision !== undefined && /^\d{1,19}$/.test(p.createRevision) ? BigInt(p.createRevision) : undefined;

/** Is `a` older than `b` (smaller etcd create revision; without one, the smaller key)? Total. */
function older(a: PeerLease, b: PeerLease): boolean {
  const ra = revisionOf(a);
  const rb = revisionOf(b);
  if (ra !== undefined && rb !== undefined && ra !== rb) return ra < rb;
  if (ra !== undefined && rb === undefined) return true;
  if (ra === undefined && rb !== undefined) return false;
  return a.subnetKey < b.subnetKey;
}

/** For each key some lease claims (`keysOf`: the keys a lease claims, often none or one), the oldest lease claiming it. */
export function oldestBy(
  peers: readonly PeerLease[],
  keysOf: (p: PeerLease) => readonly string[],
): Map<string, PeerLease> {
  const owner = new Map<string, PeerLease>();
  for (const p of peers) {
    for (const k of keysOf(p)) {
      const had = owner.get(k);
      if (!had || older(p, had)) owner.set(k, p);
    }
  }
  return owner;
}
