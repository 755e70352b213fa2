/**
 * IPv4 and IPv6 addresses and prefixes as BigInt values. Pure: no I/O.
 *
 * Parsing is strict where Go's `net.ParseIP` is strict (no leading zeros in IPv4 octets, no
 * zones), and formatting matches Go's `net.IP.String()`: dotted decimal for IPv4, and for IPv6
 * lowercase hex with the longest run (at least two) of zero groups shortened to `::`, the
 * leftmost run on a tie. flanneld writes lease keys that way, so weft must too.
 */

export type Family = 4 | 6;

/** An IP address of one family; `value` is the address as an unsigned integer. */
export interface IP {
  readonly family: Family;
  readonly value: bigint;
}

/** A prefix: an address and a length. The address may carry host bits unless a caller masks it. */
export interface Prefix {
  readonly ip: IP;
  readonly len: number;
}

export const bitsOf = (family: Family): number => (family === 4 ? 32 : 128);
const maxOf = (family: Family): bigint => (1n << BigInt(bitsOf(family))) - 1n;

export function ip(family: Family, value: bigint): IP {
  if (value < 0n || value > maxOf(family)) throw new RangeError(`address out of range for IPv${family}`);
  return Object.freeze({ family, value });
}

export function prefix(addr: IP, len: number): Prefix {
  if (!Number.isInteger(len) || len < 0 || len > bitsOf(addr.family)) throw new RangeError(`bad prefix length ${len}`);
  return Object.freeze({ ip: addr, len });
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Strict dotted-decimal IPv4 (`1.2.3.4`; `01.2.3.4` and `1.2.3` are rejected). */
export function parseIPv4(text: string): IP | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return ip(4, value);
}

const GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseGroups(text: string): number[] | undefined {
  if (text === '') return [];
  const out: number[] = [];
  const parts = text.split(':');
  for (const [i, part] of parts.entries()) {
    if (i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIPv4(part);
      if (!v4) return undefined;
      out.push(Number(v4.value >> 16n), Number(v4.value & 0xffffn));
    } else if (GROUP.test(part)) {
      out.push(parseInt(part, 16));
    } else {
      return undefined;
    }
  }
  return out;
}

/** IPv6 text form (`fd00::1`, `::`, `::ffff:1.2.3.4`); no zones. Hex digits of either case. */
export function parseIPv6(text: string): IP | undefined {
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = parseGroups(halves[0] ?? '');
  const tail = halves.length === 2 ? parseGroups(halves[1] ?? '') : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return ip(6, value);
}

/** Either family: IPv6 when the text holds a colon. */
export function parseIP(text: string): IP | undefined {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

function formatIPv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}

function formatIPv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(':');
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Go's `net.IP.String()` form. */
export function formatIP(addr: IP): string {
  return addr.family === 4 ? formatIPv4(addr.value) : formatIPv6(addr.value);
}

const PREFIX_LEN = /^(0|[1-9][0-9]{0,2})$/;

/** `ip/len`. The address is kept as written; use `maskPrefix` for the network address. */
export function parsePrefix(text: string): Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = parseIP(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (!addr || !PREFIX_LEN.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > bitsOf(addr.family)) return undefined;
  return prefix(addr, len);
}

export function formatPrefix(p: Prefix): string {
  return `${formatIP(p.ip)}/${p.len}`;
}

/** The mask of a prefix length, as an integer of the family's width. */
export function maskOf(family: Family, len: number): bigint {
  const bits = BigInt(bitsOf(family));
  return (maxOf(family) >> (bits - BigInt(len))) << (bits - BigInt(len));
}

/** The prefix with host bits cleared (`10.3.5.7/16` -> `10.3.0.0/16`). */
export function maskPrefix(p: Prefix): Prefix {
  return prefix(ip(p.ip.family, p.ip.value & maskOf(p.ip.family, p.len)), p.len);
}

export function isNetworkAddress(p: Prefix): boolean {
  return (p.ip.value & ~maskOf(p.ip.family, p.len)) === 0n;
}

/** Number of addresses in a prefix of this length. */
export function sizeOf(family: Family, len: number): bigint {
  return 1n << BigInt(bitsOf(family) - len);
}

export function sameIP(a: IP, b: IP): boolean {
  return a.family === b.family && a.value === b.value;
}

export function samePrefix(a: Prefix, b: Prefix): boolean {
  return a.len === b.len && sameIP(a.ip, b.ip);
}

export function contains(p: Prefix, addr: IP): boolean {
  if (p.ip.family !== addr.family) return false;
  const m = maskOf(p.ip.family, p.len);
  return (p.ip.value & m) === (addr.value & m);
}

/** True when one prefix holds (part of) the other: equal under the shorter mask, as flannel. */
export function overlaps(a: Prefix, b: Prefix): boolean {
  if (a.ip.family !== b.ip.family) return false;
  const m = maskOf(a.ip.family, Math.min(a.len, b.len));
  return (a.ip.value & m) === (b.ip.value & m);
}

/** True when `inner` lies wholly within `outer`. */
export function within(inner: Prefix, outer: Prefix): boolean {
  return inner.len >= outer.len && contains(outer, inner.ip);
}

/** The next prefix of the same length, or undefined past the end of the address space. */
export function nextPrefix(p: Prefix): Prefix | undefined {
  const v = (p.ip.value & maskOf(p.ip.family, p.len)) + sizeOf(p.ip.family, p.len);
  return v > maxOf(p.ip.family) ? undefined : prefix(ip(p.ip.family, v), p.len);
}

/** The address plus n (undefined when it leaves the address space). */
export function addToIP(addr: IP, n: bigint): IP | undefined {
  const v = addr.value + n;
  return v < 0n || v > maxOf(addr.family) ? undefined : ip(addr.family, v);
}

/** True when the address sits on a boundary of prefixes of this length. */
export function isAligned(addr: IP, len: number): boolean {
  return (addr.value & ~maskOf(addr.family, len)) === 0n;
}
