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

/** Strict dotted-decimal IPv4 (`1.2.3.4`; `01.2.3.4` and `1.2.3` are rejected). One pass over the characters. */
export function parseIPv4(text: string): IP | undefined {
  let value = 0;
  let octets = 0;
  let n = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e; // the end closes the last octet like a dot
    if (c === 0x2e) {
      if (digits === 0 || octets === 4) return undefined;
      value = value * 256 + n;
      octets++;
      n = 0;
      digits = 0;
      continue;
    }
    if (c < 0x30 || c > 0x39 || (digits > 0 && n === 0)) return undefined; // a digit, and no leading zero
    n = n * 10 + (c - 0x30);
    digits++;
    if (n > 255) return undefined;
  }
  return octets === 4 ? ip(4, BigInt(value)) : undefined;
}

const hexDigit = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;

/**
 * IPv6 text exactly as Go's `net.ParseIP` (netip.ParseAddr) reads it: groups of 1-4 hex digits
 * of either case, at most one `::` standing for at least one zero group, a dotted IPv4 only as
 * the last 32 bits (`::ffff:1.2.3.4`), no zone.
 */
export function parseIPv6(text: string): IP | undefined {
  const b = new Array<number>(16).fill(0);
  let s = 0;
  let i = 0;
  let ellipsis = -1;
  if (text.startsWith('::')) {
    ellipsis = 0;
    s = 2;
    if (s === text.length) return ip(6, 0n);
  }
  while (i < 16) {
    let off = 0;
    let acc = 0;
    for (; s + off < text.length; off++) {
      const d = hexDigit(text.charCodeAt(s + off));
      if (d < 0) break;
      if (off > 3) return undefined; // more than 4 digits in a group
      acc = acc * 16 + d;
    }
    if (off === 0) return undefined;
    if (text[s + off] === '.') {
      // An embedded IPv4 must end the text and fill the last 4 bytes (or sit after the `::`).
      if ((ellipsis < 0 && i !== 12) || i + 4 > 16) return undefined;
      const v4 = parseIPv4(text.slice(s));
      if (!v4) return undefined;
      for (const shift of [24n, 16n, 8n, 0n]) b[i++] = Number((v4.value >> shift) & 0xffn);
      s = text.length;
      break;
    }
    b[i++] = acc >> 8;
    b[i++] = acc & 0xff;
    s += off;
    if (s === text.length) break;
    if (text[s] !== ':' || s + 1 === text.length) return undefined;
    s++;
    if (text[s] === ':') {
      if (ellipsis >= 0) return undefined; // a second `::`
      ellipsis = i;
      s++;
      if (s === text.length) break;
    }
  }
  if (s !== text.length) return undefined;
  if (i < 16) {
    if (ellipsis < 0) return undefined;
    const n = 16 - i;
    b.splice(ellipsis, 0, ...new Array<number>(n).fill(0));
    b.length = 16;
  } else if (ellipsis >= 0) {
    return undefined; // `::` must stand for at least one zero group
  }
  return ip(
    6,
    b.reduce((v, x) => (v << 8n) | BigInt(x), 0n),
  );
}

/**
 * Either family, as Go's `net.ParseIP`: IPv6 when the text holds a colon. (Go picks the family by
 * the first `.` or `:`; with parseIPv6 as strict as Go's, the two choices agree on every input.)
 */
export function parseIP(text: string): IP | undefined {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

function formatIPv4(value: bigint): string {
  const v = Number(value);
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

function formatIPv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
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
