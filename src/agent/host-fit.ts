/**
 * Judges a network config against this host before anything is derived from it, at start and on
 * every live change: everything that makes a config unusable here, with the reason. The host's
 * links and routes are looked at afresh (they change: DHCP, a VPN coming up), the etcd endpoints
 * by address; core/config/config-fit.ts and core/host/host-facts.ts decide.
 */
import { type Family, type IP, type Prefix, parseIP } from '../core/net/cidr.js';
import type { NetworkConfig } from '../core/flannel/config-check.js';
import { configMisfit, endpointHosts, linkAddresses } from '../core/config/config-fit.js';
import { type HostFacts, familyRefusal } from '../core/host/host-facts.js';
import { ConfigError } from '../core/flannel/network-config.js';
import type { Spec } from '../core/spec/spec.js';
import { backendFor } from '../backends/index.js';
import type { Backend } from '../backends/types.js';
import { listLinks, listRoutes } from '../adapters/iproute2.js';
import { resolveNames } from '../adapters/resolve.js';

/** What a config is judged against: the spec, the host's facts, and the fabric it runs or ran (core/config/config-fit.ts fabricPrefixes). */
export interface FitContext {
  readonly spec: Spec;
  readonly facts: HostFacts;
  readonly fabric: readonly Prefix[];
}

/** The etcd endpoints by address: literals as they are, names resolved (one that does not resolve is left out). */
async function etcdAddresses(endpoints: readonly string[]): Promise<{ endpoint: string; ip: IP }[]> {
  const hosts = endpointHosts(endpoints);
  const names = hosts.filter((h) => parseIP(h.host) === undefined).map((h) => h.host);
  const resolved = names.length > 0 ? await resolveNames(names) : new Map<string, string[]>();
  return hosts.flatMap(({ endpoint, host }) =>
    (resolved.get(host) ?? [host]).flatMap((a) => {
      const ip = parseIP(a);
      return ip ? [{ endpoint, ip }] : [];
    }),
  );
}

/** The families a config turns on, IPv4 first. */
const familiesOf = (config: NetworkConfig): Family[] => [
  ...(config.ipv4 ? [4 as const] : []),
  ...(config.ipv6 ? [6 as const] : []),
];

/** The backend a config names, or why weft cannot run it. */
function backendOf(config: NetworkConfig): Backend | string {
  try {
    return backendFor(config.backend.type);
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
}

/**
 * Why this host cannot use `config` (a sentence for the log and status), or undefined when it
 * can: a backend weft lacks, one that does not program a family of the config or refuses this
 * host, an address family the host cannot serve, a network that would take over the host's own
 * addresses, LANs, gateway or etcd endpoints or touches a reserved block, an overlay MTU the
 * underlay cannot carry.
 */
export async function hostRefusal(config: NetworkConfig, c: FitContext): Promise<string | undefined> {
  const backend = backendOf(config);
  if (typeof backend === 'string') return backend;
  // A family the backend does not program: its own words, before the host's families are judged.
  const unserved = familiesOf(config).find((f) => !backend.families.includes(f));
  const refused =
    unserved === undefined
      ? (familyRefusal(config, c.facts) ?? backend.refusal(config, c.facts))
      : (backend.refusal(config, c.facts) ?? `the ${backend.type} backend does not program IPv${String(unserved)}`);
  if (refused) return refused;
  const [links, routes, etcd] = await Promise.all([listLinks(), listRoutes(), etcdAddresses(c.spec.etcd.endpoints)]);
  const overlay = backend.mtu(config, c.facts, c.spec.host.mtu);
  return configMisfit({
    config,
    facts: c.facts,
    around: { addresses: linkAddresses(links), routes, etcd },
    fabric: c.fabric,
    mtu: {
      overlay,
      carried: c.facts.ifaceMTU - backend.overheadBytes,
      overheadBytes: backend.overheadBytes,
      fixedByHost: c.spec.host.mtu !== undefined,
    },
  });
}
