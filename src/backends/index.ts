/** The only backend registry: a plain map from flannel's Backend.Type to its implementation. */
import { WeftError } from '../core/errors.js';
import { hostGw } from './host-gw.js';
import type { Backend } from './types.js';
import { vxlan } from './vxlan.js';

export const BACKENDS: Readonly<Record<string, Backend>> = Object.freeze({ vxlan, 'host-gw': hostGw });

export function backendFor(type: string): Backend {
  const b = BACKENDS[type];
  if (!b) throw new WeftError('E_CONFIG', `backend type ${JSON.stringify(type)} is not supported by weft (vxlan, host-gw)`);
  return b;
}
