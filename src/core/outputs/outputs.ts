/**
 * What weft writes for other tools: flannel's subnet.env (flannel-compat.md §6; the IPv6
 * variables of flannel-ipv6-wireguard.md §1.8), the mk-docker-opts.sh output (§7; IPv6 options
 * only on request, §1.12), a Docker daemon.json fragment and a Podman (netavark) network, each
 * with the IPv6 subnet when this host has one. Renderers return text; writing it (atomically)
 * is an adapter's job.
 */
import { type Prefix, addToIP, formatIP, formatPrefix, maskPrefix, parsePrefix, prefix } from '../net/cidr.js';
import type { SubnetKey } from '../flannel/subnet-key.js';

export interface SubnetEnv {
  readonly network?: Prefix;
  readonly subnet?: Prefix;
  readonly ipv6Network?: Prefix;
  readonly ipv6Subnet?: Prefix;
  readonly mtu: number;
  readonly ipMasq: boolean;
}

/** The gateway form flannel writes: subnet network address + 1, with the subnet's length. */
export function gatewayOf(subnet: Prefix): Prefix {
  const gw = addToIP(maskPrefix(subnet).ip, 1n);
  if (!gw) throw new RangeError('subnet has no room for a gateway');
  return prefix(gw, subnet.len);
}

/** subnet.env text, variables in flannel's order, one per line, no quotes. */
export function renderSubnetEnv(e: SubnetEnv): string {
  const lines: string[] = [];
  if (e.network && e.subnet) {
    lines.push(`FLANNEL_NETWORK=${formatPrefix(e.network)}`, `FLANNEL_SUBNET=${formatPrefix(gatewayOf(e.subnet))}`);
  }
  if (e.ipv6Network && e.ipv6Subnet) {
    lines.push(
      `FLANNEL_IPV6_NETWORK=${formatPrefix(e.ipv6Network)}`,
      `FLANNEL_IPV6_SUBNET=${formatPrefix(gatewayOf(e.ipv6Subnet))}`,
    );
  }
  lines.push(`FLANNEL_MTU=${e.mtu}`, `FLANNEL_IPMASQ=${String(e.ipMasq)}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Parse a dotenv-style file (KEY=VALUE lines, optional `export `, quotes, # comments), the way
 * a shell `.` of flannel's plain file would set variables. Later assignments win.
 */
export function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2] ?? '';
    const q = value[0];
    if ((q === '"' || q === "'") && value.length >= 2 && value.endsWith(q)) value = value.slice(1, -1);
    vars.set(m[1] ?? '', value);
  }
  return vars;
}

/**
 * The previous subnet recorded in a subnet.env, masked to its network address. A comma list
 * with more than one valid entry, or an invalid value, counts as absent (flannel's reader).
 */
export function previousSubnet(vars: ReadonlyMap<string, string>, name = 'FLANNEL_SUBNET'): Prefix | undefined {
  const raw = vars.get(name);
  if (!raw) return undefined;
  const valid = raw
    .split(',')
    .map((s) => parsePrefix(s.trim()))
    .filter((p): p is Prefix => p !== undefined);
  return valid.length === 1 && valid[0] ? maskPrefix(valid[0]) : undefined;
}

/** The previous subnets of both families (FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET), when any. */
export function previousSubnets(vars: ReadonlyMap<string, string>): SubnetKey | undefined {
  const v4 = previousSubnet(vars);
  const v6 = previousSubnet(vars, 'FLANNEL_IPV6_SUBNET');
  const k: SubnetKey = { ...(v4?.ip.family === 4 ? { v4 } : {}), ...(v6?.ip.family === 6 ? { v6 } : {}) };
  return k.v4 || k.v6 ? k : undefined;
}

/** mk-docker-opts.sh flags, and weft's opt-in `ipv6`. */
export interface DockerOptsFlags {
  readonly individual: boolean;
  readonly combined: boolean;
  readonly key: string;
  readonly omitIpMasq: boolean;
  /**
   * Not mk-docker-opts.sh's (which ignores every FLANNEL_IPV6_* variable): with
   * FLANNEL_IPV6_SUBNET set, also `DOCKER_OPT_IPV6="--ipv6"` and
   * `DOCKER_OPT_FIXED_CIDR_V6="--fixed-cidr-v6=<the subnet, network form>"`, in the same
   * variable-per-option format (byte order puts them between BIP, IPMASQ and MTU).
   */
  readonly ipv6?: boolean;
}

export type DockerOptsResult =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly message: string };

/**
 * mk-docker-opts.sh's output, byte for byte (unless `flags.ipv6`). `env` is the environment
 * merged with the sourced subnet.env (sourced values win), as the script's shell sees it: every
 * variable whose name holds `DOCKER_OPT_` becomes an option, in byte order, and the current
 * value of the combined key is prepended.
 */
export function renderDockerOpts(flags: DockerOptsFlags, env: ReadonlyMap<string, string>): DockerOptsResult {
  const vars = new Map(env);
  const individual = !flags.individual && !flags.combined ? true : flags.individual;
  const combined = !flags.individual && !flags.combined ? true : flags.combined;
  const subnet = vars.get('FLANNEL_SUBNET');
  const mtu = vars.get('FLANNEL_MTU');
  const masq = vars.get('FLANNEL_IPMASQ');
  if (subnet) vars.set('DOCKER_OPT_BIP', `--bip=${subnet}`);
  if (mtu) vars.set('DOCKER_OPT_MTU', `--mtu=${mtu}`);
  if (masq && !flags.omitIpMasq) {
    if (masq === 'true') vars.set('DOCKER_OPT_IPMASQ', '--ip-masq=false');
    else if (masq === 'false') vars.set('DOCKER_OPT_IPMASQ', '--ip-masq=true');
    else return { ok: false, message: `Invalid value of FLANNEL_IPMASQ: ${masq}` };
  }
  const subnet6 = flags.ipv6 ? vars.get('FLANNEL_IPV6_SUBNET') : undefined;
  if (subnet6) {
    const p = parsePrefix(subnet6);
    if (!p || p.ip.family !== 6) return { ok: false, message: `Invalid value of FLANNEL_IPV6_SUBNET: ${subnet6}` };
    vars.set('DOCKER_OPT_IPV6', '--ipv6');
    vars.set('DOCKER_OPT_FIXED_CIDR_V6', `--fixed-cidr-v6=${formatPrefix(maskPrefix(p))}`);
  }
  const prefixValue = vars.get(flags.key) ?? '';
  let opts = prefixValue ? `${prefixValue} ` : '';
  let out = '';
  const names = [...vars.keys()].filter((n) => n.includes('DOCKER_OPT_')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const name of names) {
    const value = vars.get(name) ?? '';
    if (individual) out += `${name}="${value}"\n`;
    opts += ` ${value}`;
  }
  if (combined) out += `${flags.key}="${opts}"\n`;
  return { ok: true, text: out };
}

/** The docker options weft emits for its own lease (mk-docker-opts with default flags; `ipv6`: the opt-in IPv6 options). */
export function dockerOptsFor(env: SubnetEnv, key: string, ipv6 = false): string {
  const r = renderDockerOpts(
    { individual: false, combined: false, key, omitIpMasq: false, ipv6 },
    parseEnvFile(renderSubnetEnv(env)),
  );
  if (!r.ok) throw new Error(r.message);
  return r.text;
}

/**
 * A Docker daemon.json fragment: `{"bip": "198.18.5.1/24", "mtu": 1450}`; with an IPv6 subnet
 * also `"ipv6": true, "fixed-cidr-v6": "fd18:0:0:5::/64"`; IPv6-only: no `bip`.
 */
export function renderDaemonJson(subnet: Prefix | undefined, mtu: number, ipv6Subnet?: Prefix): string {
  const doc = {
    ...(subnet ? { bip: formatPrefix(gatewayOf(subnet)) } : {}),
    ...(ipv6Subnet ? { ipv6: true, 'fixed-cidr-v6': formatPrefix(maskPrefix(ipv6Subnet)) } : {}),
    mtu,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

const podmanSubnet = (s: Prefix) => ({ subnet: formatPrefix(maskPrefix(s)), gateway: formatIP(gatewayOf(s).ip) });

/** A netavark network definition for Podman, bridged on the leased subnet(s): IPv4, IPv6 or both. */
export function renderPodmanNetwork(p: {
  name: string;
  id: string;
  subnet?: Prefix;
  ipv6Subnet?: Prefix;
  mtu: number;
  created: string;
}): string {
  const doc = {
    name: p.name,
    id: p.id,
    driver: 'bridge',
    network_interface: `${p.name}0`,
    created: p.created,
    subnets: [...(p.subnet ? [podmanSubnet(p.subnet)] : []), ...(p.ipv6Subnet ? [podmanSubnet(p.ipv6Subnet)] : [])],
    ipv6_enabled: p.ipv6Subnet !== undefined,
    internal: false,
    dns_enabled: false,
    options: { mtu: String(p.mtu) },
    ipam_options: { driver: 'host-local' },
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

/**
 * The Podman network for `outputs.podman`: named after the file (`weft.json` -> `weft`, as
 * Podman expects), with a stable `id` supplied by the caller and the `created` time of the file
 * already there, so an unchanged lease rewrites nothing.
 */
export function podmanNetworkFor(p: {
  file: string;
  id: string;
  subnet?: Prefix;
  ipv6Subnet?: Prefix;
  mtu: number;
  previous: string | undefined;
  nowISO: string;
}): string {
  const base = p.file.slice(p.file.lastIndexOf('/') + 1);
  const name = base.endsWith('.json') ? base.slice(0, -'.json'.length) : base;
  let created = p.nowISO;
  try {
    const prev = p.previous ? (JSON.parse(p.previous) as { created?: unknown }) : undefined;
    if (typeof prev?.created === 'string' && prev.created !== '') created = prev.created;
  } catch {
    /* an unreadable previous file is replaced */
  }
  return renderPodmanNetwork({
    name,
    id: p.id,
    ...(p.subnet ? { subnet: p.subnet } : {}),
    ...(p.ipv6Subnet ? { ipv6Subnet: p.ipv6Subnet } : {}),
    mtu: p.mtu,
    created,
  });
}
