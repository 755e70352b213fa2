/**
 * Everything weft owns on a host, as one desired state, and the one plan that converges it:
 * the datapath a backend wants (devices of any kind, addresses, routes, neighbours and fdb
 * entries of any family; core/datapath/datapath.ts), the iptables and ip6tables chains (core/datapath/masq.ts,
 * one rule set per family served) and the output files (core/outputs/host-files.ts). The reconciler observes the host, calls `planHost`, and applies
 * the result through adapters; it knows no backend, family or file by name.
 */
import type { Family } from '../net/cidr.js';
import type { DesiredDatapath, ObservedDatapath, ObservedRoute } from './datapath.js';
import { type DesiredFile, type FileWrite, type ObservedFile, planFiles } from '../outputs/host-files.js';
import { type ChainSpec, type SavedTable, planRules } from './masq.js';
import { type Op, type Ownership, type RefusedRoutes, plan } from './plan.js';

/** The iptables chains weft wants, and the ones it wants gone (core/datapath/masq.ts desiredRules). */
export interface RuleSet {
  readonly want: readonly ChainSpec[];
  readonly remove: readonly ChainSpec[];
}

/** One family's rule set: iptables (4) or ip6tables (6). */
export interface FamilyRules {
  readonly family: Family;
  readonly rules: RuleSet;
}

/** One family's plan: the `iptables-restore --noflush` (`ip6tables-restore`) payload ('' when converged). */
export interface FamilyRulesPlan {
  readonly family: Family;
  readonly payload: string;
  readonly repaired: readonly string[];
}

export interface DesiredHost {
  readonly datapath: DesiredDatapath;
  /** Per family served (IPv4 first); a family not served has no entry and its tables are not looked at. */
  readonly rules: readonly FamilyRules[];
  readonly files: readonly DesiredFile[];
  /** What weft may touch besides its devices (per family). */
  readonly own: Ownership;
}

/** What was observed. Rules and files are looked at on the slower check interval only. */
export interface ObservedHost {
  readonly datapath: ObservedDatapath;
  /** Per family, its tables (`iptables-save` / `ip6tables-save`); a family that could not be read is absent. */
  readonly tables?: ReadonlyMap<Family, ReadonlyMap<string, SavedTable>>;
  readonly files?: ReadonlyMap<string, ObservedFile>;
}

export interface HostPlan {
  readonly ops: readonly Op[];
  /** Wanted route destinations left alone: a route weft does not own holds them (core/datapath/plan.ts RefusedRoutes). */
  readonly refused?: ReadonlyMap<string, ObservedRoute>;
  /** Present when rules were observed: one plan per family whose tables were read. */
  readonly rules?: readonly FamilyRulesPlan[];
  /** Present when files were observed. */
  readonly writes?: readonly FileWrite[];
}

/** The iptables tables a rule set lives in (what to observe). */
export const tablesOf = (r: RuleSet): string[] => [...new Set([...r.want, ...r.remove].map((c) => c.table))];

/** The rule plan of each family whose tables were observed. */
function planFamilies(
  rules: readonly FamilyRules[],
  tables: ReadonlyMap<Family, ReadonlyMap<string, SavedTable>>,
): FamilyRulesPlan[] {
  return rules.flatMap((f) => {
    const saved = tables.get(f.family);
    return saved ? [{ family: f.family, ...planRules(f.rules, saved) }] : [];
  });
}

/** The payload of `family` in a plan ('' when none). */
export const payloadOf = (p: Pick<HostPlan, 'rules'>, family: Family): string =>
  p.rules?.find((r) => r.family === family)?.payload ?? '';

/**
 * The operations that converge the observed host. `datapathUnchanged`: the desired datapath is
 * the one last converged and the observation is a clean cached one, so it plans nothing.
 */
export function planHost(d: DesiredHost, o: ObservedHost, datapathUnchanged = false): HostPlan {
  const refused: RefusedRoutes = new Map();
  const ops = datapathUnchanged ? [] : plan(d.datapath, o.datapath, d.own, refused);
  return {
    ops,
    ...(datapathUnchanged ? {} : { refused }),
    ...(o.tables ? { rules: planFamilies(d.rules, o.tables) } : {}),
    ...(o.files ? { writes: planFiles(d.files, o.files) } : {}),
  };
}
