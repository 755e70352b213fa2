/**
 * The reconciler's two edges: what it converges to (ReconcileInputs, replaced as a whole by
 * the agent) and the host it observes and changes (HostPort: adapters in production, the
 * honest fake in test/helpers/fake-host.ts in unit tests).
 */
import type { Family, Prefix } from '../core/net/cidr.js';
import type { NetworkConfig } from '../core/flannel/config-check.js';
import type { DesiredDatapath, ObservedDatapath, ObservedRoute } from '../core/datapath/datapath.js';
import type { Tool } from '../core/datapath/devices.js';
import type { HostFacts } from '../core/host/host-facts.js';
import type { DesiredFile, FileWrite } from '../core/outputs/host-files.js';
import type { SavedTable } from '../core/datapath/masq.js';
import type { PeerLease } from '../core/flannel/peer-lease.js';
import type { SubnetKey } from '../core/flannel/subnet-key.js';
import type { Op } from '../core/datapath/plan.js';
import type { Backend, WireguardKeys } from '../backends/types.js';

/** One address family this host serves: the fleet's network and this host's subnet in it. */
export interface FamilyLease {
  readonly network: Prefix;
  readonly subnet: Prefix;
}

/** What the reconciler converges to; replaced as a whole by the agent. */
export interface ReconcileInputs {
  readonly backend: Backend;
  readonly config: NetworkConfig;
  /** IPv4, when the network and this host's lease have it. */
  readonly v4?: FamilyLease;
  /** IPv6, when the network and this host's lease have it. */
  readonly v6?: FamilyLease;
  readonly facts: HostFacts;
  readonly mtu: number;
  readonly vtepMAC: string;
  /** vxlan over IPv6: the MAC of flannel-v6.<VNI>. */
  readonly vtepMACv6?: string;
  readonly ipMasq: boolean;
  readonly randomFully: boolean;
  /** ip6tables supports `--random-fully` (absent: as `randomFully`). */
  readonly randomFullyV6?: boolean;
  /** Podman is fed (outputs.podman): keep its NAT off fabric traffic (core/datapath/masq.ts). */
  readonly keepFabricSource?: boolean;
  /** The output files this host must have (core/outputs/host-files.ts); none when absent. */
  readonly files?: readonly DesiredFile[];
  readonly peers: () => Iterable<PeerLease>;
  /**
   * Devices weft owned and no longer wants (a VNI or backend change: core/config/config-change.ts
   * retiredDevices). Observed with the backend's devices, so the planner deletes them.
   */
  readonly retiredDevices?: readonly string[];
  /** A peer by subnet key (undefined: none now); lets a pass recompute only the leases that changed. */
  readonly peer?: (subnetKey: string) => PeerLease | undefined;
  /** wireguard: this host's keys (paths and public key); absent for other backends. */
  readonly wireguard?: WireguardKeys;
  /** Subnets this host held before (core/datapath/plan.ts Ownership.formerSubnets). */
  readonly formerSubnets?: readonly Prefix[];
}

/** The families served, IPv4 first. */
export const familiesOf = (inp: Pick<ReconcileInputs, 'v4' | 'v6'>): FamilyLease[] => [
  ...(inp.v4 ? [inp.v4] : []),
  ...(inp.v6 ? [inp.v6] : []),
];

/** The networks served (IPv4 first): what weft may own routes in. */
export const networksOf = (inp: Pick<ReconcileInputs, 'v4' | 'v6'>): Prefix[] => familiesOf(inp).map((f) => f.network);

/** This host's subnets as a lease key's halves. */
export const ownSubnetsOf = (inp: Pick<ReconcileInputs, 'v4' | 'v6'>): SubnetKey => ({
  ...(inp.v4 ? { v4: inp.v4.subnet } : {}),
  ...(inp.v6 ? { v6: inp.v6.subnet } : {}),
});

/** The backend's devices, and the retired ones (observed so that the planner deletes them). */
export const observedDevices = (inp: ReconcileInputs): readonly string[] => {
  const wanted = inp.backend.deviceNames(inp.config);
  const retired = (inp.retiredDevices ?? []).filter((n) => !wanted.includes(n));
  return retired.length > 0 ? [...wanted, ...retired] : wanted;
};

/** The host, as the reconciler sees and changes it (adapters in production, fakes in tests). */
export interface HostPort {
  /** The named devices (those that exist), every main-table route, the devices' neighbours and fdb. */
  observeDatapath(devices: readonly string[]): Promise<ObservedDatapath>;
  applyBatch(tool: Tool, lines: readonly string[]): Promise<{ index: number; message: string }[]>;
  /** `iptables-save -t T` (family 4) or `ip6tables-save -t T` (6) of each table. */
  saveTables(family: Family, tables: readonly string[]): Promise<Map<string, SavedTable>>;
  /** `iptables-restore --noflush` (4) or `ip6tables-restore --noflush` (6). */
  restoreRules(family: Family, payload: string): Promise<void>;
  /** Forwarding on for `family` (`iface`: the fabric interface); true when it was off. */
  ensureForwarding(family: Family, iface?: string): Promise<boolean>;
  /** A file's text; undefined when it does not exist. */
  readFile(path: string): Promise<string | undefined>;
  /** Replace a file atomically (a reader never sees a partial file). */
  writeFile(path: string, text: string): Promise<void>;
}

export interface PassReport {
  readonly ops: readonly Op[];
  readonly failed: number;
  /** The iptables-restore --noflush payload (IPv4; '' when converged or not served). */
  readonly rulesPayload: string;
  /** The ip6tables-restore --noflush payload (IPv6; '' when converged or not served). */
  readonly rulesPayloadV6: string;
  readonly writes: readonly FileWrite[];
  readonly desired: DesiredDatapath;
  /** Wanted route destinations left alone: a route weft does not own holds them. */
  readonly refused: ReadonlyMap<string, ObservedRoute>;
}
