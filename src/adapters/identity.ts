/**
 * This host's stable identity for lease ownership: `WEFT_HOST_ID` when set (cloned VMs with
 * one machine-id, or test hosts sharing a filesystem), else /etc/machine-id.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { WeftError } from '../core/errors.js';

export async function hostIdentity(env: NodeJS.ProcessEnv = process.env): Promise<{ hostID: string; hostname: string }> {
  const name = hostname();
  if (env.WEFT_HOST_ID) return { hostID: env.WEFT_HOST_ID, hostname: name };
  try {
    const id = (await readFile('/etc/machine-id', 'utf8')).trim();
    if (id) return { hostID: id, hostname: name };
  } catch { /* fall through */ }
  throw new WeftError('E_HOST', 'no host identity: /etc/machine-id is missing or empty (run systemd-machine-id-setup) and WEFT_HOST_ID is not set');
}
