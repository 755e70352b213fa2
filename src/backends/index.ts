/**
 * The only backend registry: flannel's Backend.Type (lower-cased) to its implementation. A Map,
 * so that a stored type such as `constructor` or `__proto__` is simply unknown.
 */
import { shortText } from '../core/flannel/gojson.js';
import { ConfigError } from '../core/flannel/network-config.js';
import { hostGw } from './host-gw.js';
import type { Backend } from './types.js';
import { vxlan } from './vxlan.js';
import { wireguard } from './wireguard.js';

export const BACKENDS: ReadonlyMap<string, Backend> = new Map([['vxlan', vxlan], ['host-gw', hostGw], ['wireguard', wireguard]]);

/** The backend for a config's type. Throws ConfigError (E_CONFIG) for any other type. */
export function backendFor(type: string): Backend {
  const b = BACKENDS.get(type);
  if (!b) throw new ConfigError(`backend type "${shortText(type)}" is not supported by weft (vxlan, host-gw, wireguard)`, 'Backend');
  return b;
}
