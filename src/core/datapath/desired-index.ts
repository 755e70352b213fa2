/**
 * The desired datapath kept up to date per changed lease, instead of recomputed from every peer.
 * Peers are split into groups a backend names (Backend.peerGroup): peers in different groups
 * never affect each other's entries, so one changed lease recomputes only its old and new
 * group (the backend's own `desired` over that group's peers) and the keys those groups
 * touched are what the planner looks at. vxlan groups by VTEP MAC, the only rule that crosses
 * leases (one MAC, one VTEP, the oldest create revision wins): a change to one lease can move
 * that MAC to another lease of the group, and the whole group is recomputed. A backend without
 * groups, or two groups claiming one key, leaves the index unusable and the caller computes in
 * full, as before. The result equals a full `desired` (test/unit/desired-index.test.ts).
 */
import type { DesiredDatapath, DesiredDevice, FdbEntry, Neighbour, Route, Skipped } from './datapath.js';
import type { PeerLease } from '../flannel/peer-lease.js';
import type { TouchedKeys } from './plan.js';

/** What a backend computes for a set of peers (its `desired`, with the peers given). */
export type DesiredOf = (peers: readonly PeerLease[]) => DesiredDatapath;

/** What a group last contributed: its keys (the entries live in the merged maps), kept compact for 5,000+ peers. */
interface Contribution {
  readonly routes: readonly string[];
  readonly neighs: readonly string[];
  readonly fdb: readonly string[];
  readonly skipped: readonly Skipped[];
  readonly programmed: number;
}

interface Group {
  readonly peers: Map<string, PeerLease>;
  out?: Contribution | undefined;
}

export class DesiredIndex {
  readonly routes = new Map<string, Route>();
  readonly neighs = new Map<string, Neighbour>();
  readonly fdb = new Map<string, FdbEntry>();
  private readonly groups = new Map<string, Group>();
  private readonly groupOf = new Map<string, string>();
  private readonly skippedGroups = new Set<string>();
  private programmed = 0;
  private readonly devices: readonly DesiredDevice[];
  /** False once two groups claimed one key: the caller must compute in full. */
  usable = true;

  constructor(
    private readonly desiredOf: DesiredOf,
    private readonly groupKey: (p: PeerLease) => string,
    peers: Iterable<PeerLease>,
  ) {
    this.devices = desiredOf([]).devices;
    const touched = { routes: new Set<string>(), neighs: new Set<string>(), fdb: new Set<string>() };
    for (const p of peers) this.place(p.subnetKey, p);
    this.recompute(this.groups.keys(), touched);
  }

  /** The desired datapath now (live maps: valid until the next update). */
  datapath(): DesiredDatapath {
    const skipped: Skipped[] = [];
    for (const g of this.skippedGroups) skipped.push(...(this.groups.get(g)?.out?.skipped ?? []));
    return {
      devices: this.devices,
      routes: this.routes,
      neighs: this.neighs,
      fdb: this.fdb,
      skipped,
      peersProgrammed: this.programmed,
    };
  }

  /**
   * Peers changed (`lease` undefined: gone); adds the keys whose desired entry may differ to
   * `touched`. False when the index became unusable (compute in full).
   */
  update(changes: Iterable<readonly [string, PeerLease | undefined]>, touched: TouchedKeys): boolean {
    const dirty = new Set<string>();
    for (const [key, lease] of changes) {
      const was = this.groupOf.get(key);
      if (was !== undefined) {
        dirty.add(was);
        this.groups.get(was)?.peers.delete(key);
        this.groupOf.delete(key);
      }
      if (lease) dirty.add(this.place(key, lease));
    }
    this.recompute(dirty, touched);
    return this.usable;
  }

  private place(key: string, p: PeerLease): string {
    const g = this.groupKey(p);
    let group = this.groups.get(g);
    if (!group) {
      group = { peers: new Map() };
      this.groups.set(g, group);
    }
    group.peers.set(key, p);
    this.groupOf.set(key, g);
    return g;
  }

  /** Recompute groups: every old contribution is withdrawn before any new one is claimed. */
  private recompute(gs: Iterable<string>, touched: TouchedKeys): void {
    const list = [...gs];
    for (const g of list) this.retract(g, touched);
    for (const g of list) this.contribute(g, touched);
  }

  private retract(g: string, touched: TouchedKeys): void {
    const group = this.groups.get(g);
    const old = group?.out;
    if (!group || !old) return;
    group.out = undefined;
    this.programmed -= old.programmed;
    this.skippedGroups.delete(g);
    for (const k of old.routes) {
      this.routes.delete(k);
      touched.routes.add(k);
    }
    for (const k of old.neighs) {
      this.neighs.delete(k);
      touched.neighs.add(k);
    }
    for (const k of old.fdb) {
      this.fdb.delete(k);
      touched.fdb.add(k);
    }
  }

  private contribute(g: string, touched: TouchedKeys): void {
    const group = this.groups.get(g);
    if (!group) return;
    if (group.peers.size === 0) {
      this.groups.delete(g);
      return;
    }
    const out = this.desiredOf([...group.peers.values()]);
    group.out = {
      routes: [...out.routes.keys()],
      neighs: [...out.neighs.keys()],
      fdb: [...out.fdb.keys()],
      skipped: out.skipped,
      programmed: out.peersProgrammed,
    };
    this.programmed += out.peersProgrammed;
    if (out.skipped.length > 0) this.skippedGroups.add(g);
    const claim = <V>(into: Map<string, V>, from: ReadonlyMap<string, V>, keys: Set<string>): void => {
      for (const [k, v] of from) {
        if (into.has(k)) this.usable = false;
        into.set(k, v);
        keys.add(k);
      }
    };
    claim(this.routes, out.routes, touched.routes);
    claim(this.neighs, out.neighs, touched.neighs);
    claim(this.fdb, out.fdb, touched.fdb);
  }
}
