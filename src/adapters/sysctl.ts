/** IPv4 forwarding for the host's network namespace (weft forwards overlay traffic). */
import { readFile, writeFile } from 'node:fs/promises';

const FORWARD = '/proc/sys/net/ipv4/ip_forward';

/** Turn forwarding on if it is off; returns true when it had to. */
export async function ensureIPv4Forwarding(): Promise<boolean> {
  if ((await readFile(FORWARD, 'utf8')).trim() === '1') return false;
  await writeFile(FORWARD, '1\n');
  return true;
}
