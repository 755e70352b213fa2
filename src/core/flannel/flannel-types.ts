/**
 * flannel's own JSON types, read as their Go `UnmarshalJSON` methods read them. Each gets the
 * value's JSON text as written (Go hands UnmarshalJSON the raw token, `null` included), so an
 * escape such as `"10.1.2.\u0030"` is never decoded and never parses.
 *
 *  - pkg/ip/ipnet.go  IP4.UnmarshalJSON, IP4Net.UnmarshalJSON: bytes.Trim(j, `"`), then
 *    ParseIP4 (net.ParseIP + To4, so `::ffff:10.1.5.0` is 10.1.5.0) or net.ParseCIDR + To4.
 *  - pkg/ip/ip6net.go IP6.UnmarshalJSON, IP6Net.UnmarshalJSON: bytes.Trim, then net.ParseIP /
 *    net.ParseCIDR of either family (an IPv4 address becomes its IPv4-mapped IPv6 form).
 *  - pkg/backend/vxlan/vxlan.go hardwareAddr.UnmarshalJSON: the text must start and end with a
 *    quote; what is between goes to net.ParseMAC.
 * None of them treats `null` specially: `null` is parsed as an address and fails.
 */
import { type IP, type Prefix, ip, maskOf, parseIP, prefix } from '../net/cidr.js';
import { type Decoded, shortText } from './gojson.js';
import { parseMAC } from '../net/mac.js';

const err = (reason: string): Decoded<never> => ({ ok: false, reason });
const ok = <T>(value: T): Decoded<T> => ({ ok: true, value });

/** Go's bytes.Trim(s, `"`): every leading and trailing double quote. */
export const trimQuotes = (s: string): string => s.replace(/^"+|"+$/g, '');

const V4_MAPPED = 0xffffn << 32n;

/** Go's net.IP.To4: an IPv4 address, or the IPv4 inside `::ffff:a.b.c.d`. */
export function to4(a: IP): IP | undefined {
  if (a.family === 4) return a;
  return a.value >> 32n === 0xffffn ? ip(4, a.value & 0xffffffffn) : undefined;
}

/** Go's net.IP.To16: IPv4 as `::ffff:a.b.c.d`. */
export const to16 = (a: IP): IP => (a.family === 6 ? a : ip(6, V4_MAPPED | a.value));

/** ip.IP4.UnmarshalJSON (ParseIP4). */
export function unmarshalIP4(token: string): Decoded<IP> {
  const a = parseIP(trimQuotes(token));
  if (!a) return err('invalid IP address format');
  const v4 = to4(a);
  return v4 ? ok(v4) : err('invalid IPv4 address format');
}

/** ip.IP6.UnmarshalJSON (ParseIP6): any address, as IPv6. */
export function unmarshalIP6(token: string): Decoded<IP> {
  const a = parseIP(trimQuotes(token));
  return a ? ok(to16(a)) : err('invalid IP address format');
}

/** Go's net.ParseCIDR: the address and the prefix length (decimal digits, leading zeros allowed). */
function parseCIDR(s: string): Decoded<{ addr: IP; len: number }> {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? undefined : parseIP(s.slice(0, slash));
  const mask = s.slice(slash + 1);
  const digits = /^[0-9]+$/.test(mask) ? mask.replace(/^0+/, '') : 'x';
  const len = digits.length > 8 ? NaN : Number(digits || '0');
  if (!addr || !(len <= (addr.family === 4 ? 32 : 128))) return err(`invalid CIDR address: ${shortText(s)}`);
  return ok({ addr, len });
}

/**
 * ip.IP4Net.UnmarshalJSON: the network address (host bits cleared) and the mask's length. An
 * IPv4-mapped IPv6 CIDR such as `::ffff:10.1.0.0/112` is accepted by flannel with its 128-bit
 * mask length (96..128), which no IPv4 prefix can have: the result then carries that length, and
 * flannel's CheckNetworkConfig always refuses it (too small / too few subnets).
 */
export function unmarshalIP4Net(token: string): Decoded<Prefix> {
  const c = parseCIDR(trimQuotes(token));
  if (!c.ok) return c;
  const { addr, len } = c.value;
  if (addr.family === 4) return ok(prefix(ip(4, addr.value & maskOf(4, len)), len));
  const v4 = to4(ip(6, addr.value & maskOf(6, len)));
  return v4 ? ok(Object.freeze({ ip: v4, len })) : err('invalid IPv4 CIDR format');
}

/**
 * ip.IP6Net.UnmarshalJSON: the network and its length. flannel stores an IPv4 CIDR as its
 * IPv4-mapped form with the IPv4 length (`10.0.0.0/8` as `::ffff:10.0.0.0/8`); weft keeps it as
 * an IPv4 prefix instead, so that its config check can refuse it (flannel-compat.md §12 item 20).
 */
export function unmarshalIP6Net(token: string): Decoded<Prefix> {
  const c = parseCIDR(trimQuotes(token));
  if (!c.ok) return c;
  const { addr, len } = c.value;
  return ok(prefix(ip(addr.family, addr.value & maskOf(addr.family, len)), len));
}

/** vxlan's hardwareAddr.UnmarshalJSON: the bytes of the MAC (6, 8 or 20 of them). */
export function unmarshalHardwareAddr(token: string): Decoded<readonly number[]> {
  if (token.length < 2 || !token.startsWith('"') || !token.endsWith('"')) return err('error parsing hardware addr');
  const text = token.slice(1, -1);
  const bytes = parseMAC(text);
  return bytes ? ok(bytes) : err(`address ${shortText(text)}: invalid MAC address`);
}
