/**
 * flanneld's masquerade and forward rules (flannel-compat.md §5.2, §5.3; IPv6:
 * flannel-ipv6-wireguard.md §1.11), byte for byte in iptables-save's (ip6tables-save's)
 * canonical form, so weft and flanneld recognise and recycle each other's chains. Both families
 * use the same chains; IPv6 rules differ only in the multicast range (ff00::/8) and go to
 * ip6tables. The plan rewrites a weft chain only when its content differs, and keeps exactly one
 * jump to it; the payload goes to `iptables-restore --noflush`, which touches nothing else.
 */
import { type Prefix, formatPrefix } from '../net/cidr.js';

export interface ChainSpec {
  readonly table: 'nat' | 'filter';
  readonly chain: string;
  /** The built-in chain that jumps to it. */
  readonly from: string;
  /** `-A FROM ...` text of the jump rule (without the `-A FROM ` part). */
  readonly jump: string;
  /** Rule bodies (without `-A CHAIN `), in order. */
  readonly rules: readonly string[];
  /** The jump must be the first rule of `from` (it must run before others' rules there). */
  readonly first?: boolean;
}

export interface RulesInput {
  /** The overlay network; its family says which table set the rules are for: iptables (4) or ip6tables (6). */
  readonly network: Prefix;
  /** This host's subnet, of the network's family. */
  readonly ownSubnet: Prefix;
  readonly ipMasq: boolean;
  readonly randomFully: boolean;
  /**
   * Stop other NAT rules from rewriting fabric traffic: Podman's netavark masquerades everything
   * its bridge sends outside its own subnet, the other hosts' containers included, and has no
   * option to stop it. With this, overlay traffic from this host's subnet to the network leaves
   * nat POSTROUTING before netavark's rules (an ACCEPT in a chain jumped to first).
   */
  readonly keepFabricSource?: boolean;
}

const MASQ = '-m comment --comment "flanneld masq"';
const FWD = '-m comment --comment "flanneld forward"';

export const MASQ_CHAIN = 'FLANNEL-POSTRTG';
export const FWD_CHAIN = 'FLANNEL-FWD';
export const NO_MASQ_CHAIN = 'WEFT-NO-MASQ';
const NO_MASQ = '-m comment --comment "weft no-masq"';
/** The multicast range never masqueraded, per family (flanneld's). */
const MULTICAST = { 4: '224.0.0.0/4', 6: 'ff00::/8' } as const;

/** `iptables --version` output -> whether `--random-fully` is there (iptables >= 1.6.2, as flanneld checks). */
export function versionSupportsRandomFully(versionText: string): boolean {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(versionText);
  if (!m) return false;
  const [maj, min, pat] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return maj > 1 || (maj === 1 && (min > 6 || (min === 6 && pat >= 2)));
}

/** The chains weft wants, and the chains it wants gone (ipMasq off), for one family. */
export function desiredRules(i: RulesInput): { want: ChainSpec[]; remove: ChainSpec[] } {
  const n = formatPrefix(i.network);
  const l = formatPrefix(i.ownSubnet);
  const masq = `-j MASQUERADE${i.randomFully ? ' --random-fully' : ''}`;
  const nat: ChainSpec = {
    table: 'nat',
    chain: MASQ_CHAIN,
    from: 'POSTROUTING',
    jump: `${MASQ} -j ${MASQ_CHAIN}`,
    rules: [
      `-m mark --mark 0x4000/0x4000 ${MASQ} -j RETURN`,
      `-s ${l} -d ${n} ${MASQ} -j RETURN`,
      `-s ${n} -d ${l} ${MASQ} -j RETURN`,
      `! -s ${n} -d ${l} ${MASQ} -j RETURN`,
      `-s ${n} ! -d ${MULTICAST[i.network.ip.family]} ${MASQ} ${masq}`,
      `! -s ${n} -d ${n} ${MASQ} ${masq}`,
    ],
  };
  const fwd: ChainSpec = {
    table: 'filter',
    chain: FWD_CHAIN,
    from: 'FORWARD',
    jump: `${FWD} -j ${FWD_CHAIN}`,
    rules: [`-s ${n} ${FWD} -j ACCEPT`, `-d ${n} ${FWD} -j ACCEPT`],
  };
  const noMasq: ChainSpec = {
    table: 'nat',
    chain: NO_MASQ_CHAIN,
    from: 'POSTROUTING',
    jump: `${NO_MASQ} -j ${NO_MASQ_CHAIN}`,
    first: true,
    rules: [`-s ${l} -d ${n} ${NO_MASQ} -j ACCEPT`],
  };
  const want = [...(i.ipMasq ? [nat] : []), fwd, ...(i.keepFabricSource ? [noMasq] : [])];
  const remove = [...(i.ipMasq ? [] : [nat]), ...(i.keepFabricSource ? [] : [noMasq])];
  return { want, remove };
}

/** One table of `iptables-save` output: chain name -> its rule bodies, in order. */
export type SavedTable = ReadonlyMap<string, readonly string[]>;

/** Parse `iptables-save -t TABLE` output. */
export function parseIptablesSave(text: string): SavedTable {
  const chains = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const decl = /^:(\S+) /.exec(line);
    if (decl?.[1]) {
      if (!chains.has(decl[1])) chains.set(decl[1], []);
      continue;
    }
    const rule = /^-A (\S+) (.*)$/.exec(line);
    if (rule?.[1] && rule[2] !== undefined) {
      const list = chains.get(rule[1]) ?? [];
      list.push(rule[2]);
      chains.set(rule[1], list);
    }
  }
  return chains;
}

/**
 * The `iptables-restore --noflush` payload that converges `saved` (one SavedTable per table),
 * or '' when nothing differs. Declaring a chain (`:NAME - [0:0]`) with --noflush flushes it.
 */
export function planRules(
  d: { want: readonly ChainSpec[]; remove: readonly ChainSpec[] },
  saved: ReadonlyMap<string, SavedTable>,
): { payload: string; repaired: string[] } {
  const byTable = new Map<string, string[]>();
  const repaired: string[] = [];
  const add = (table: string, line: string) => {
    byTable.set(table, [...(byTable.get(table) ?? []), line]);
  };
  for (const c of d.want) {
    const t = saved.get(c.table);
    const have = t?.get(c.chain);
    if (!have || have.length !== c.rules.length || have.some((r, i) => r !== c.rules[i])) {
      add(c.table, `:${c.chain} - [0:0]`);
      for (const r of c.rules) add(c.table, `-A ${c.chain} ${r}`);
      repaired.push(`${c.table}/${c.chain}`);
    }
    const from = t?.get(c.from) ?? [];
    const jumps = from.filter((r) => r === c.jump).length;
    if (c.first && from[0] !== c.jump) {
      for (let k = 0; k < jumps; k++) add(c.table, `-D ${c.from} ${c.jump}`);
      add(c.table, `-I ${c.from} 1 ${c.jump}`);
      repaired.push(`${c.table}/${c.from} jump first`);
      continue;
    }
    if (jumps === 0) {
      add(c.table, `-A ${c.from} ${c.jump}`);
      repaired.push(`${c.table}/${c.from} jump`);
    }
    for (let k = 1; k < jumps; k++) add(c.table, `-D ${c.from} ${c.jump}`);
  }
  for (const c of d.remove) {
    const t = saved.get(c.table);
    if (!t?.has(c.chain)) continue;
    for (const r of t.get(c.from) ?? []) if (r === c.jump) add(c.table, `-D ${c.from} ${c.jump}`);
    add(c.table, `:${c.chain} - [0:0]`);
    add(c.table, `-X ${c.chain}`);
    repaired.push(`${c.table}/${c.chain} removed`);
  }
  const payload = [...byTable].map(([table, lines]) => `*${table}\n${lines.join('\n')}\nCOMMIT\n`).join('');
  return { payload, repaired };
}
