/**
 * What the spec reader needs of a backend: the keys it accepts under `network.backend`, how they
 * become flannel's stored Backend object, and the address families it programs. The registry
 * (src/backends/index.ts) is passed to parseSpec; every list of types and keys in the spec's
 * messages comes from it.
 */
import type { Family } from '../net/cidr.js';
import { type FlannelBackend, typeList } from '../flannel/backend-codec.js';
import type { Entry, YamlReader } from './yaml-reader.js';

/** A backend as the spec reader sees it. */
export interface SpecBackend extends FlannelBackend {
  /** The address families it programs: `network.ipv6` needs a backend with 6. */
  readonly families: readonly Family[];
  /** The keys it reads under `network.backend`, besides `type`. */
  readonly specKeys: readonly string[];
  /**
   * Its keys as flannel's Backend object, under flanneld's names (`{"Type":"vxlan","VNI":1,…}`),
   * a problem recorded on `r` for each bad value.
   */
  backendObject(r: YamlReader, keys: ReadonlyMap<string, Entry>): Record<string, unknown>;
}

/** The registry as the spec reader sees it. Its first entry is the default (`network.backend.type` absent). */
export type SpecBackends = ReadonlyMap<string, SpecBackend>;

/**
 * Every backend key the registry knows, each once: the keys only one backend reads, in registry
 * order, then the keys several share (`mtu`), so `allowed here` reads backend by backend.
 */
export function backendKeys(backends: SpecBackends): string[] {
  const all = [...backends.values()].flatMap((b) => b.specKeys);
  const shared = (k: string): boolean => all.filter((x) => x === k).length > 1;
  const unique = [...new Set(all)];
  return [...unique.filter((k) => !shared(k)), ...unique.filter(shared)];
}

/** Who reads `key`: `the vxlan backend`, `the vxlan and wireguard backends`. */
export function readersOf(backends: SpecBackends, key: string): string {
  const types = [...backends.values()].filter((b) => b.specKeys.includes(key)).map((b) => b.type);
  return `the ${typeList(types, 'and')} backend${types.length > 1 ? 's' : ''}`;
}

/** The types that program `family`: `vxlan or host-gw`. */
export const familyServers = (backends: SpecBackends, family: Family): string =>
  typeList([...backends.values()].filter((b) => b.families.includes(family)).map((b) => b.type));
