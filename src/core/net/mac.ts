/**
 * MAC addresses as Go's `net.ParseMAC` reads them (colon, dash or dotted forms; 6, 8 or 20
 * bytes) and as Go's `net.HardwareAddr.String()` writes them (lowercase, colons).
 */

/** Parse a MAC in any form Go accepts; returns its bytes, or undefined. */
const COLON_MAC6 = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;

export function parseMAC(text: string): number[] | undefined {
  // The common form first: six colon-separated pairs (what flanneld and iproute2 write).
  if (text.length === 17 && COLON_MAC6.test(text))
    return [0, 3, 6, 9, 12, 15].map((i) => parseInt(text.slice(i, i + 2), 16));
  const sizes = [6, 8, 20];
  let bytes: number[] = [];
  if (text.length >= 14 && text[4] === '.') {
    const groups = text.split('.');
    if (!groups.every((g) => /^[0-9a-fA-F]{4}$/.test(g))) return undefined;
    for (const g of groups) bytes.push(parseInt(g.slice(0, 2), 16), parseInt(g.slice(2), 16));
  } else {
    const sep = text[2];
    if (sep !== ':' && sep !== '-') return undefined;
    const groups = text.split(sep);
    if (!groups.every((g) => /^[0-9a-fA-F]{2}$/.test(g))) return undefined;
    bytes = groups.map((g) => parseInt(g, 16));
  }
  return sizes.includes(bytes.length) ? bytes : undefined;
}

export function formatMAC(bytes: readonly number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Canonical 6-byte Ethernet MAC text, or undefined when the text is not one. */
export function normalizeEthernetMAC(text: string): string | undefined {
  const b = parseMAC(text);
  return b && b.length === 6 ? formatMAC(b) : undefined;
}

/**
 * A random locally administered unicast MAC from 6 random bytes (flannel's NewHardwareAddr):
 * bit 0 of the first octet cleared, bit 1 set.
 */
export function localUnicastMAC(random6: readonly number[]): string {
  const b = random6.slice(0, 6).map((x) => x & 0xff);
  if (b.length !== 6) throw new RangeError('need 6 random bytes');
  b[0] = ((b[0] ?? 0) & 0xfe) | 0x02;
  return formatMAC(b);
}

/** True for a unicast, non-zero Ethernet MAC (what a VTEP must have). */
export function isUsableVtepMAC(mac: string): boolean {
  const b = parseMAC(mac);
  if (!b || b.length !== 6) return false;
  return ((b[0] ?? 0) & 1) === 0 && b.some((x) => x !== 0);
}
