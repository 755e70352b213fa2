/**
 * The only backend registry: flannel's Backend.Type (lower-cased) to its implementation. A Map,
 * so that a stored type such as `constructor` or `__proto__` is simply unknown. The first entry
 * is the spec's default (`network.backend.type` absent). Every list of backend types weft prints
 * (spec errors, `weft config show`, an unsupported stored config) is this map's keys.
 */
import { shortText } from '../core/flannel/gojson.js';
import { ConfigError } from '../core/flannel/network-config.js';
import { typeList } from '../core/flannel/backend-codec.js';
import { hostGw } from './host-gw.js';
import type { Backend } from './types.js';
import { vxlan } from './vxlan.js';
import { wireguard } from './wireguard.js';

export const BACKENDS: ReadonlyMap<string, Backend> = new Map([vxlan, hostGw, wireguard].map((b) => [b.type, b]));

/** The backend types weft has, in registry order. */
export const BACKEND_TYPES: readonly string[] = [...BACKENDS.keys()];

/** The backend for a config's type. Throws ConfigError (E_CONFIG) for any other type. */
export function backendFor(type: string): Backend {
  const b = BACKENDS.get(type);
  if (!b)
    throw new ConfigError(
      `backend type "${shortText(type)}" is not supported by weft (${BACKEND_TYPES.join(', ')})`,
      'Backend',
    );
  return b;
}

/** The registry's types as a sentence (`vxlan, host-gw and wireguard`). */
export const backendTypesText = (conjunction: 'or' | 'and' = 'or'): string => typeList(BACKEND_TYPES, conjunction);
