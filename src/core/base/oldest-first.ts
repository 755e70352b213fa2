/**
 * Caps that a writer cannot steer: when more entries exist than may be kept, the oldest are
 * kept — lowest create revision, then key — and the others are only counted. A writer adding
 * keys creates them at new revisions, so it can never push out an entry that was there before
 * it; every host reading the same etcd keeps the same entries.
 */

/** What the order needs of an entry. */
export interface Aged {
  readonly key: string;
  /** A decimal etcd revision (no leading zeros). */
  readonly createRevision: string;
}

/** Is `a` older than `b` (created at a lower revision, or at the same one with a smaller key)? */
export function olderThan(a: Aged, b: Aged): boolean {
  const x = a.createRevision;
  const y = b.createRevision;
  if (x.length !== y.length) return x.length < y.length;
  if (x !== y) return x < y;
  return a.key < b.key;
}

/**
 * The `cap` oldest of a stream of entries (a paged listing), in O(log cap) per entry and
 * O(cap) memory: a heap with the youngest kept entry on top.
 */
export class OldestKept<T extends Aged> {
  private readonly heap: { readonly e: T; readonly seq: number }[] = [];
  private seen = 0;
  /** Entries seen but not kept. */
  leftOut = 0;

  constructor(private readonly cap: number) {}

  add(e: T): void {
    const h = this.heap;
    const item = { e, seq: this.seen++ };
    if (h.length < this.cap) {
      h.push(item);
      this.up(h.length - 1);
      return;
    }
    this.leftOut++;
    const top = h[0];
    if (top === undefined || !olderThan(e, top.e)) return;
    h[0] = item;
    this.down(0);
  }

  /** The kept entries in the order they were added. */
  inArrivalOrder(): T[] {
    return [...this.heap].sort((a, b) => a.seq - b.seq).map((x) => x.e);
  }

  private up(i: number): void {
    const h = this.heap;
    for (let c = i; c > 0; ) {
      const p = (c - 1) >> 1;
      const child = h[c];
      const parent = h[p];
      if (child === undefined || parent === undefined || !olderThan(parent.e, child.e)) return;
      h[c] = parent;
      h[p] = child;
      c = p;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (let p = i; ; ) {
      let y = p;
      for (const c of [2 * p + 1, 2 * p + 2]) {
        const ec = h[c];
        const ey = h[y];
        if (ec !== undefined && ey !== undefined && olderThan(ey.e, ec.e)) y = c;
      }
      if (y === p) return;
      const a = h[p];
      const b = h[y];
      if (a === undefined || b === undefined) return;
      h[p] = b;
      h[y] = a;
      p = y;
    }
  }
}

/** An entry as a watch delivers it: `modRevision` equal to `createRevision` means it was just created. */
export interface Versioned extends Aged {
  readonly modRevision: string;
}

/**
 * A map of at most `cap` entries kept up to date from watch events, with `leftOut` counting the
 * entries under the prefix that are not in it. It starts from a listing of the oldest `cap`
 * (OldestKept) and stays exact on its own: every key under the prefix is either kept or counted,
 * so a created key adds one to `leftOut` when there is no room, an update of a key not kept was
 * already counted, and deleting a key not kept takes one away. A slot freed by a delete is
 * filled from the left-out entries at the next listing (the periodic re-list).
 */
export class CappedEntries<T extends Versioned> {
  private readonly map = new Map<string, T>();
  /** The youngest kept entry, when known (undefined: scan on demand). */
  private youngestKnown: T | undefined;
  private left = 0;

  constructor(private readonly cap: number) {}

  get entries(): ReadonlyMap<string, T> {
    return this.map;
  }
  get leftOut(): number {
    return this.left;
  }
  get limit(): number {
    return this.cap;
  }

  /** Start over from a listing (the oldest `cap` entries) and how many it left out. */
  reset(kvs: Iterable<T>, leftOut: number): void {
    this.map.clear();
    for (const kv of kvs) this.map.set(kv.key, kv);
    this.left = leftOut;
    this.youngestKnown = undefined;
  }

  /** A put. `kept`: the entry is in the map now; `evicted`: the key it pushed out (now left out). */
  put(kv: T): { kept: boolean; evicted?: string } {
    if (this.map.has(kv.key)) {
      this.set(kv);
      return { kept: true };
    }
    const created = kv.createRevision === kv.modRevision;
    if (this.map.size < this.cap) {
      if (!created) this.left = Math.max(0, this.left - 1);
      this.set(kv);
      return { kept: true };
    }
    const y = this.youngest();
    if (y === undefined || !olderThan(kv, y)) {
      if (created) this.left++;
      return { kept: false };
    }
    this.map.delete(y.key);
    this.youngestKnown = undefined;
    if (created) this.left++;
    this.set(kv);
    return { kept: true, evicted: y.key };
  }

  /** A delete: `removed` when the key was kept. */
  delete(key: string): boolean {
    const had = this.map.delete(key);
    if (!had) this.left = Math.max(0, this.left - 1);
    else if (this.youngestKnown?.key === key) this.youngestKnown = undefined;
    return had;
  }

  private set(kv: T): void {
    this.map.set(kv.key, kv);
    const y = this.youngestKnown;
    if (y === undefined) return;
    // The youngest itself rewritten (a key re-created behind a missed delete may have moved): look again.
    if (y.key === kv.key) this.youngestKnown = undefined;
    else if (olderThan(y, kv)) this.youngestKnown = kv;
  }

  /** O(1) while known; a scan after the youngest went away (at most once per eviction). */
  private youngest(): T | undefined {
    if (this.youngestKnown !== undefined) return this.youngestKnown;
    let y: T | undefined;
    for (const kv of this.map.values()) if (y === undefined || olderThan(y, kv)) y = kv;
    this.youngestKnown = y;
    return y;
  }
}
