/** /proc/sys: reading a value, and IP forwarding for the host's network namespace (weft forwards overlay traffic), per family. */
import { readFile, writeFile } from 'node:fs/promises';

const FORWARD = { 4: '/proc/sys/net/ipv4/ip_forward', 6: '/proc/sys/net/ipv6/conf/all/forwarding' } as const;

/** A /proc/sys file (`path` below /proc/sys), trimmed; undefined when it cannot be read (no such interface). */
export async function readSysctl(path: string): Promise<string | undefined> {
  try {
    return (await readFile(`/proc/sys/${path}`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** An interface name that is safe in a /proc/sys path: at most 15 characters (IFNAMSIZ), no `/`, not `.` or `..`. */
export function isSafeIfName(name: string): boolean {
  return /^[\w.@-]{1,15}$/.test(name) && name !== '.' && name !== '..';
}

/** Turn IPv4 forwarding on if it is off; returns true when it had to. */
async function ensureIPv4Forwarding(): Promise<boolean> {
  if ((await readFile(FORWARD[4], 'utf8')).trim() === '1') return false;
  await writeFile(FORWARD[4], '1\n');
  return true;
}

/**
 * Turn IPv6 forwarding on (`net.ipv6.conf.all.forwarding=1`) if it is off; returns true when it
 * had to. A forwarding host ignores router advertisements on interfaces with `accept_ra=1`,
 * so a host that learns its IPv6 default route by SLAAC would lose it when the route expires:
 * the fabric interface's `accept_ra` goes from 1 to 2 first (accept them while forwarding; best
 * effort). Any other value (0: static configuration, 2: already) is left alone.
 */
async function ensureIPv6Forwarding(iface?: string): Promise<boolean> {
  if ((await readFile(FORWARD[6], 'utf8')).trim() === '1') return false;
  if (iface !== undefined && isSafeIfName(iface)) {
    const ra = `net/ipv6/conf/${iface}/accept_ra`;
    // Best effort: a read-only /proc/sys (a unit that only lets weft write all/forwarding) must not keep forwarding off.
    if ((await readSysctl(ra)) === '1') await writeFile(`/proc/sys/${ra}`, '2\n').catch(() => undefined);
  }
  await writeFile(FORWARD[6], '1\n');
  return true;
}

/** Forwarding for `family` on (`iface`: the fabric interface, whose router advertisements IPv6 keeps). */
export function ensureForwarding(family: 4 | 6, iface?: string): Promise<boolean> {
  return family === 4 ? ensureIPv4Forwarding() : ensureIPv6Forwarding(iface);
}
