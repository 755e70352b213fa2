/**
 * Work proportional to what changed (issue 22). Keeps, between passes, the kernel datapath as
 * last known (core/datapath/observed-model.ts: a full observation, then netlink events and weft's own
 * applied operations) and the desired datapath per lease group (core/datapath/desired-index.ts), and
 * collects what changed since the last pass: the keys netlink events touched and the leases
 * that changed. A pass then plans only those keys (core/datapath/plan.ts planTouched). A full look and
 * a full plan happen at start, on new inputs, on any event or operation the model cannot follow
 * (a device, an address, an ambiguous fdb change, a failed operation), on a peer change that
 * names no keys, and on the periodic resync: the safety net for a killed or lagging event stream.
 */
import type { DesiredDatapath, ObservedDatapath, ObservedRoute } from '../core/datapath/datapath.js';
import { formatPrefix, within } from '../core/net/cidr.js';
import { DesiredIndex } from '../core/datapath/desired-index.js';
import { type EventScope, type ModelEvent, isRelevantEvent, parseModelEvent } from '../core/datapath/netlink-events.js';
import { ObservedModel, sameRoutes } from '../core/datapath/observed-model.js';
import {
  type Op,
  type Ownership,
  type RefusedRoutes,
  type TouchedKeys,
  noTouchedKeys,
  plan,
  planTouched,
} from '../core/datapath/plan.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import { type ReconcileInputs, networksOf, observedDevices, ownSubnetsOf } from './host-port.js';

/** What one pass plans against, and how. */
export interface PassView {
  readonly fresh: boolean;
  readonly full: boolean;
  readonly desired: DesiredDatapath;
  readonly ops: readonly Op[];
  /** Only the device operations of a pass that creates a device: the rest is the next pass's. */
  readonly deferred: boolean;
  /** Wanted destinations a route weft does not own holds (left alone), as of this plan. */
  readonly refused: ReadonlyMap<string, ObservedRoute>;
}

const DEVICE_OPS: ReadonlySet<Op['kind']> = new Set(['link-del', 'link-add', 'link-set', 'addr-add', 'addr-del']);

const modelKeyOf = (inp: ReconcileInputs, devices: readonly string[]): string =>
  `${devices.join(' ')}|${networksOf(inp).map(formatPrefix).join(' ')}`;

export class DatapathTracker {
  private model: ObservedModel | undefined;
  private modelKey = '';
  private modelAtMs = -Infinity;
  private freshNeeded = true;
  /** Events seen while a full observation is in flight: replayed on it, in order. */
  private observing: ModelEvent[] | undefined;
  /**
   * The desired state per lease group, built for these inputs against `model`'s underlay
   * routes (`routes`) as they were at version `underlay`.
   */
  private index:
    | {
        readonly of: ReconcileInputs;
        model: ObservedModel;
        underlay: number;
        readonly idx: DesiredIndex | undefined;
        readonly routes: readonly ObservedRoute[];
      }
    | undefined;
  private touched: TouchedKeys = noTouchedKeys();
  /** The last full plan's refusals, kept up to date key by key by the touched plans after it. */
  private readonly refused: RefusedRoutes = new Map();
  private peersUnknown = true;
  private readonly peerChanges = new Set<string>();

  constructor(private readonly resyncMs: number) {}

  /** Look at the kernel afresh on the next pass (a netlink poke, new inputs, a failure). */
  invalidate(): void {
    this.freshNeeded = true;
  }

  /** Leases changed: these subnet keys, or (undefined) unknown ones. */
  peersChanged(keys: Iterable<string> | undefined): void {
    if (keys === undefined) {
      this.peersUnknown = true;
      return;
    }
    for (const k of keys) this.peerChanges.add(k);
  }

  /**
   * One monitor line. Returns whether a pass is needed: the line changed what weft owns (or it
   * cannot be followed, and the next pass looks afresh).
   */
  netlinkLine(line: string, inp: ReconcileInputs | undefined): boolean {
    if (!inp) return false;
    const scope = this.scopeOf(inp);
    const relevant = isRelevantEvent(line, scope);
    const e = parseModelEvent(line, scope.devices);
    if (!e) {
      if (relevant) this.freshNeeded = true;
      return relevant;
    }
    this.observing?.push(e);
    if (!this.model) return relevant;
    const c = this.model.applyEvent(e, this.touched);
    if (c === 'unknown') this.freshNeeded = true;
    return relevant && c !== 'unchanged';
  }

  /** What events concern, per inputs (computed once: a burst of echoes is thousands of lines). */
  private readonly scopes = new WeakMap<ReconcileInputs, EventScope>();
  private scopeOf(inp: ReconcileInputs): EventScope {
    let s = this.scopes.get(inp);
    if (!s) {
      s = { devices: observedDevices(inp), iface: inp.facts.iface, networks: networksOf(inp) };
      this.scopes.set(inp, s);
    }
    return s;
  }

  /** Observe (afresh when due), compute the desired datapath and plan: in full or only the touched keys. */
  async plan(
    inp: ReconcileInputs,
    own: Ownership,
    nowMs: number,
    observe: (devices: readonly string[]) => Promise<ObservedDatapath>,
  ): Promise<PassView> {
    const devices = observedDevices(inp);
    const key = modelKeyOf(inp, devices);
    const fresh =
      this.freshNeeded || !this.model || this.modelKey !== key || nowMs - this.modelAtMs >= 0.9 * this.resyncMs;
    this.freshNeeded = false;
    let model = this.model;
    if (fresh || !model) model = await this.observeAfresh(inp, devices, key, nowMs, observe);
    const touched = this.touched;
    this.touched = noTouchedKeys();
    const { desired, full } = this.desired(inp, model, touched);
    if (fresh || full) this.refused.clear();
    const ops =
      fresh || full
        ? plan(desired, model.view(), own, this.refused)
        : planTouched(desired, model, own, touched, this.refused);
    const refused = this.refused;
    // A device created (at start, or after someone deleted it) carries nothing yet; its echo
    // events make the next pass look afresh anyway. Create it alone, so that this look is of
    // an empty device, and program what hangs off it right after against that look (and not
    // dump thousands of entries just written).
    const device = ops.some((o) => o.kind === 'link-add') ? ops.filter((o) => DEVICE_OPS.has(o.kind)) : [];
    if (device.length > 0 && device.length < ops.length)
      return { fresh, full: true, desired, ops: device, deferred: true, refused };
    return { fresh, full: fresh || full, desired, ops, deferred: false, refused };
  }

  /**
   * After applying: record what the kernel accepted; anything else makes the next pass look
   * afresh. True when the kernel state could not be followed (a device was created, say): a
   * pass should look again soon.
   */
  applied(ops: readonly Op[], failed: ReadonlySet<Op>): boolean {
    let lost = false;
    for (const op of ops) if (!failed.has(op) && this.model?.applyOp(op) === 'unknown') lost = true;
    if (lost || failed.size > 0) this.freshNeeded = true;
    return lost;
  }

  private async observeAfresh(
    inp: ReconcileInputs,
    devices: readonly string[],
    key: string,
    nowMs: number,
    observe: (devices: readonly string[]) => Promise<ObservedDatapath>,
  ): Promise<ObservedModel> {
    this.observing = [];
    let observed: ObservedDatapath;
    try {
      observed = await observe(devices);
    } catch (e) {
      this.observing = undefined;
      this.model = undefined;
      throw e;
    }
    const replay = this.observing;
    this.observing = undefined;
    const model = new ObservedModel(observed, networksOf(inp));
    // Events are the kernel's later word on each object they name: the observation may predate them.
    for (const e of replay) if (model.applyEvent(e, this.touched) === 'unknown') this.freshNeeded = true;
    Object.assign(this, { model, modelKey: key, modelAtMs: nowMs });
    return model;
  }

  /** The desired datapath: per changed lease when the index can, else in full (and the index rebuilt). */
  private desired(
    inp: ReconcileInputs,
    model: ObservedModel,
    touched: TouchedKeys,
  ): { desired: DesiredDatapath; full: boolean } {
    const changes = [...this.peerChanges];
    this.peerChanges.clear();
    const unknown = this.peersUnknown || (changes.length > 0 && !inp.peer);
    this.peersUnknown = false;
    const ix = this.index;
    // Underlay routes only: overlay routes never decide how a peer's public IP is reached.
    const networks = networksOf(inp);
    const underlay = (): ObservedRoute[] => model.routeList().filter((r) => !networks.some((n) => within(r.dst, n)));
    let routes: ObservedRoute[] | undefined;
    // The index stays valid while the underlay is as it was built against: in the same model,
    // no underlay event since (its version); in a model observed afresh, the same routes.
    const sameUnderlay =
      ix !== undefined &&
      (ix.model === model ? ix.underlay === model.underlayVersion : sameRoutes(ix.routes, (routes = underlay())));
    if (ix?.idx?.usable && ix.of === inp && sameUnderlay && !unknown) {
      ix.model = model;
      ix.underlay = model.underlayVersion;
      if (
        ix.idx.update(
          changes.map((k) => [k, inp.peer?.(k)] as const),
          touched,
        )
      )
        return { desired: ix.idx.datapath(), full: false };
    }
    routes ??= underlay();
    const base = {
      config: inp.config,
      own: ownSubnetsOf(inp),
      facts: inp.facts,
      routes,
      mtu: inp.mtu,
      vtepMAC: inp.vtepMAC,
      ...(inp.vtepMACv6 ? { vtepMACv6: inp.vtepMACv6 } : {}),
      ...(inp.wireguard ? { wireguard: inp.wireguard } : {}),
    };
    const group = inp.backend.peerGroup?.bind(inp.backend);
    const idx = group
      ? new DesiredIndex((peers: readonly PeerLease[]) => inp.backend.desired({ ...base, peers }), group, inp.peers())
      : undefined;
    this.index = { of: inp, model, underlay: model.underlayVersion, idx, routes };
    return { desired: idx?.usable ? idx.datapath() : inp.backend.desired({ ...base, peers: inp.peers() }), full: true };
  }
}
