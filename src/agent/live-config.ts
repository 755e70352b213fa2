/**
 * One live network config change on a running host (issue 19 part 2), once agent/config-follower
 * has judged it usable: derive what it means here (a refusal throws and leaves everything as it
 * was), judge every peer again, converge the datapath, rules and files to it (retiring a device
 * no longer wanted), republish the lease value or move the subnet, and say so: one log line, and
 * when the bridge-relevant outputs changed, a warning in the log and status and the operator's
 * hook (agent/outputs-hook.ts).
 */
import type { FamilyRange, NetworkConfig } from '../core/flannel/config-check.js';
import { type SubnetKey, formatSubnetKey } from '../core/flannel/subnet-key.js';
import { type BridgeState, bridgeChanges } from '../core/outputs/bridge-outputs.js';
import { retiredDevices } from '../core/config/config-change.js';
import type { Spec } from '../core/spec/spec.js';
import type { Backend } from '../backends/types.js';
import type { Logger } from '../adapters/log.js';
import type { ApplicableChange, RunningConfig } from './config-follower.js';
import type { FleetView } from './fleet-view.js';
import type { LeaseHolder } from './lease-holder.js';
import type { BridgeChange, OutputsHook } from './outputs-hook.js';
import type { ReconcileInputs, Reconciler } from './reconciler.js';
import { within } from './retry.js';
import type { Parts } from './snapshot.js';
import type { KvStore } from '../core/fleet/store.js';
import type { WireguardKeys } from '../backends/types.js';

/** What a network config decides on this host. */
export interface Derived {
  /** The IPv4 range (absent: an IPv6-only network). */
  readonly range?: FamilyRange;
  /** The IPv6 range (absent: an IPv4-only network). */
  readonly rangeV6?: FamilyRange;
  readonly backend: Backend;
  readonly mtu: number;
  readonly devices: readonly string[];
  readonly vtepMAC: string;
  /** vxlan over IPv6: the MAC of flannel-v6.<VNI>. */
  readonly vtepMACv6?: string;
  readonly leaseValue: string;
  /** wireguard: this host's keys (paths and the public key). */
  readonly wireguard?: WireguardKeys;
}

/** What the host runs now; replaced as a whole by a live network config change. */
export interface Live {
  d: Derived;
  config: NetworkConfig;
  text: string;
  /** Devices weft owned under an earlier config (deleted by the reconciler). */
  retired: readonly string[];
}

/** The running parts a live change touches. */
export interface LiveWiring {
  readonly spec: Spec;
  readonly log: Logger;
  readonly store: KvStore;
  readonly reconciler: Reconciler;
  readonly holder: LeaseHolder;
  readonly fleet: FleetView;
  readonly parts: Parts;
  readonly hook: OutputsHook;
  /** The reconciler's inputs for this host's subnet, built from the current `Live`. */
  readonly inputsFor: (own: SubnetKey) => ReconcileInputs;
  /** Throws (WeftError, not retryable) when this host cannot run the config. */
  readonly derive: (config: NetworkConfig) => Promise<Derived>;
}

/** What a host's bridge outputs carry under `d` with the lease halves `s`, per family (as the reconciler's inputs pair them). */
const bridgeState = (d: Derived, s: SubnetKey): BridgeState => ({
  mtu: d.mtu,
  ...(d.range && s.v4 ? { v4: { network: d.range.network, subnet: s.v4 } } : {}),
  ...(d.rangeV6 && s.v6 ? { v6: { network: d.rangeV6.network, subnet: s.v6 } } : {}),
});

/** How long a change waits for the datapath to converge before it is logged (and the next one may start). */
const SETTLE_WAIT_MS = 10_000;

export class LiveConfig {
  constructor(
    private readonly cur: Live,
    private readonly w: LiveWiring,
  ) {}

  async apply(next: RunningConfig, change: ApplicableChange): Promise<void> {
    const { cur, w } = this;
    const t0 = Date.now();
    const held = (): SubnetKey | undefined => w.holder.lease?.subnets;
    const own = held();
    // Nothing a host does changes (formatting, defaults spelled out): only the text is kept.
    if (change.parts.length === 0 || !own) {
      Object.assign(cur, { config: next.config, text: next.text });
      return;
    }
    // Throws when the config does not fit this host (agent/host-fit.ts): nothing has changed yet.
    const d = await w.derive(next.config);
    const before = bridgeState(cur.d, own);
    Object.assign(cur, {
      d,
      config: next.config,
      text: next.text,
      retired: retiredDevices(cur.retired, cur.d.devices, d.devices),
    });
    w.fleet.setConfig(next.config);
    // Same subnet: converge to the new config at once, the lease value follows in the same
    // moment. A move: the new subnet's inputs are set when it is acquired (LeaseHolder onSubnet).
    if (change.kind === 'live') w.reconciler.setInputs(w.inputsFor(own));
    await w.holder.reconfigure(
      { ...(d.range ? { range: d.range } : {}), ...(d.rangeV6 ? { rangeV6: d.rangeV6 } : {}) },
      d.leaseValue,
    );
    const subnets = held() ?? own;
    // A pass that keeps failing (retried with backoff) must not hold up the next config change,
    // which may be the fix: wait for convergence a bounded time only.
    const converged =
      (await within(
        w.reconciler.settle().then(() => true),
        SETTLE_WAIT_MS,
      )) ?? false;
    w.log.info('network config changed; applied live', {
      parts: change.parts.join(', '),
      changes: change.diff,
      backend: d.backend.type,
      mtu: d.mtu,
      subnet: formatSubnetKey(subnets),
      ...(change.kind === 'move' ? { moved: change.why } : {}),
      converged,
      ms: Date.now() - t0,
    });
    const after = bridgeState(d, subnets);
    // Per family: an IPv6 subnet added or moved changes Docker's --fixed-cidr-v6 and Podman's subnet too.
    const bridge = bridgeChanges(before, after);
    if (bridge.length > 0) this.restartNeeded(bridge, { before, after });
  }

  /** Docker must be restarted for its bridge to use the new MTU or subnet: log, status, hook. */
  private restartNeeded(bridge: string[], change: BridgeChange): void {
    const { w } = this;
    const program = w.spec.host.onOutputsChanged;
    w.log.warn(
      'the bridge outputs changed: restart Docker (or Podman) for its bridge to use them; running containers keep the old values until then',
      {
        changes: bridge,
        hook: program ?? '(none: host.onOutputsChanged is not set)',
      },
    );
    const hookRun = w.hook.trigger(change);
    w.parts.restartNeeded = { sinceMs: Date.now(), changes: bridge, hookRun };
  }
}
