/**
 * This host's identity for lease ownership. In order:
 *  1. `WEFT_HOST_ID` when set (test hosts sharing a filesystem, or an operator's choice);
 *  2. else a hash of /etc/machine-id: the raw machine-id is a secret of sorts (systemd says not
 *     to expose it), so only `sha256("weft-host/" + id)` is ever published;
 * and then, when this host once found another live host using that identity (cloned VMs,
 * core/fleet/presence.ts), the identity it took instead, kept in `<stateDir>/host-id` together with
 * the hash of the identity it replaces: fixing the clone (a new machine-id) makes it moot.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { WeftError } from '../core/base/errors.js';
import { writeFileAtomic } from './files.js';

export interface HostIdentity {
  /** What weft publishes in owner and presence records. */
  readonly hostID: string;
  readonly hostname: string;
  /** IDs this host published in earlier versions (the raw machine-id): leases under them are its own. */
  readonly formerIDs: readonly string[];
  readonly source: 'WEFT_HOST_ID' | 'machine-id' | 'replaced after a clash';
  /** Seed of the VTEP MAC weft derives when no device exists (unchanged across versions). */
  readonly macSeed: string;
  /** The kernel's boot ID: tells a restart on this boot from another machine. */
  readonly bootID: string;
  /** The identity from WEFT_HOST_ID or the machine-id, before any replacement. */
  readonly baseHostID: string;
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 32);

async function readTrimmed(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    return '';
  }
}

/** `{"replaces": <hash of the base identity>, "hostID": ...}` in `<stateDir>/host-id`. */
async function replacement(stateDir: string, baseID: string): Promise<string | undefined> {
  const text = await readTrimmed(join(stateDir, 'host-id'));
  try {
    const v = JSON.parse(text) as { replaces?: unknown; hostID?: unknown };
    return v.replaces === sha(baseID) && typeof v.hostID === 'string' && /^[0-9a-z-]{8,80}$/.test(v.hostID)
      ? v.hostID
      : undefined;
  } catch {
    return undefined;
  }
}

export async function hostIdentity(opts: { stateDir: string; env?: NodeJS.ProcessEnv }): Promise<HostIdentity> {
  const env = opts.env ?? process.env;
  const name = hostname();
  const bootID = (await readTrimmed('/proc/sys/kernel/random/boot_id')) || `unknown-${randomBytes(8).toString('hex')}`;
  let base: Omit<HostIdentity, 'bootID' | 'hostname' | 'baseHostID'>;
  if (env.WEFT_HOST_ID)
    base = { hostID: env.WEFT_HOST_ID, formerIDs: [], source: 'WEFT_HOST_ID', macSeed: env.WEFT_HOST_ID };
  else {
    const id = await readTrimmed('/etc/machine-id');
    if (!id)
      throw new WeftError(
        'E_HOST',
        'no host identity: /etc/machine-id is missing or empty (run systemd-machine-id-setup) and WEFT_HOST_ID is not set',
      );
    base = { hostID: sha(`weft-host/${id}`), formerIDs: [id], source: 'machine-id', macSeed: id };
  }
  const replaced = await replacement(opts.stateDir, base.hostID);
  if (replaced)
    return {
      hostID: replaced,
      hostname: name,
      formerIDs: [],
      source: 'replaced after a clash',
      macSeed: replaced,
      bootID,
      baseHostID: base.hostID,
    };
  return { ...base, hostname: name, bootID, baseHostID: base.hostID };
}

/**
 * A new identity for a host that found its own in use by another live host: random, derived
 * from nothing the clone shares, and kept in `<stateDir>/host-id` so it survives restarts.
 */
export async function replaceIdentity(stateDir: string, current: HostIdentity): Promise<HostIdentity> {
  const hostID = `${sha(current.baseHostID).slice(0, 16)}-${randomBytes(8).toString('hex')}`;
  await writeFileAtomic(
    join(stateDir, 'host-id'),
    `${JSON.stringify({ replaces: sha(current.baseHostID), hostID })}\n`,
    0o644,
  );
  return { ...current, hostID, formerIDs: [], source: 'replaced after a clash', macSeed: hostID };
}
