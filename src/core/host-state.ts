/**
 * Everything weft owns on a host, as one desired state, and the one plan that converges it:
 * the datapath a backend wants (devices of any kind, addresses, routes, neighbours and fdb
 * entries of any family; core/datapath.ts), the iptables chains (core/masq.ts) and the output
 * files (core/host-files.ts). The reconciler observes the host, calls `planHost`, and applies
 * the result through adapters; it knows no backend, family or file by name.
 */
import type { DesiredDatapath, ObservedDatapath } from './datapath.js';
import { type DesiredFile, type FileWrite, type ObservedFile, planFiles } from './host-files.js';
import { type ChainSpec, type SavedTable, planRules } from './masq.js';
import { type Op, type Ownership, plan } from './plan.js';

/** The iptables chains weft wants, and the ones it wants gone (core/masq.ts desiredRules). */
export interface RuleSet {
  readonly want: readonly ChainSpec[];
  readonly remove: readonly ChainSpec[];
}

export interface DesiredHost {
  readonly datapath: DesiredDatapath;
  readonly rules: RuleSet;
  readonly files: readonly DesiredFile[];
  /** What weft may touch besides its devices (per family). */
  readonly own: Ownership;
}

/** What was observed. Rules and files are looked at on the slower check interval only. */
export interface ObservedHost {
  readonly datapath: ObservedDatapath;
  readonly tables?: ReadonlyMap<string, SavedTable>;
  readonly files?: ReadonlyMap<string, ObservedFile>;
}

export interface HostPlan {
  readonly ops: readonly Op[];
  /** Present when rules were observed: the iptables-restore --noflush payload ('' when converged). */
  readonly rules?: { readonly payload: string; readonly repaired: readonly string[] };
  /** Present when files were observed. */
  readonly writes?: readonly FileWrite[];
}

/** The iptables tables a rule set lives in (what to observe). */
export const tablesOf = (r: RuleSet): string[] => [...new Set([...r.want, ...r.remove].map((c) => c.table))];

/**
 * The operations that converge the observed host. `datapathUnchanged`: the desired datapath is
 * the one last converged and the observation is a clean cached one, so it plans nothing.
 */
export function planHost(d: DesiredHost, o: ObservedHost, datapathUnchanged = false): HostPlan {
  const ops = datapathUnchanged ? [] : plan(d.datapath, o.datapath, d.own);
  return {
    ops,
    ...(o.tables ? { rules: planRules(d.rules, o.tables) } : {}),
    ...(o.files ? { writes: planFiles(d.files, o.files) } : {}),
  };
}
