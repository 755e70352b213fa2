/**
 * Subnet keys (flannel-compat.md §1.2): weft writes `198.18.5.0-24` (dual stack
 * `198.18.5.0-24&fd00:5::-64`, IPv6 only `0.0.0.0-0&fd00:5::-64`) and reads every key exactly as
 * flanneld does (pkg/subnet/subnet.go ParseSubnetKey), so that a key weft will not program still
 * counts as taken when it chooses a free subnet.
 *
 * flanneld matches `(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$` (Go regexp: leftmost-first,
 * not anchored at the start, `.` any rune but `\n`, `$` end of text), then parses group 1 with
 * net.ParseIP + To4, group 2 with strconv.ParseUint(…, 10, 5) (0..31, leading zeros allowed),
 * group 3 with net.ParseIP, group 4 with ParseUint(…, 10, 7). A failure gives no subnet at all:
 * Go takes only the leftmost match. `matchFlannelKey` finds that match in linear time (a
 * backtracking regexp would take cubic time on long runs of digits).
 */
import { type Prefix, formatIP, parseIP, prefix } from '../net/cidr.js';
import { to16, to4 } from './flannel-types.js';

/** The subnets a lease key names. `v4` is absent only for an IPv6-only key. */
export interface SubnetKey {
  readonly v4?: Prefix;
  readonly v6?: Prefix;
}

/** What flanneld reads from a key; `canonical` when the key is exactly what weft would write for it. */
export interface ParsedSubnetKey extends SubnetKey {
  readonly canonical: boolean;
}

/** The subnet named first (logs, status): IPv4, else IPv6. */
export const primarySubnet = (k: SubnetKey): Prefix | undefined => k.v4 ?? k.v6;

/** Do two keys name the same halves? */
export const sameSubnetKey = (a: SubnetKey, b: SubnetKey): boolean => formatSubnetKey(a) === formatSubnetKey(b);

/** The key for a lease: `a.b.c.d-len[&v6-len]`. */
export function formatSubnetKey(k: SubnetKey): string {
  const v4 = k.v4 ? `${formatIP(k.v4.ip)}-${k.v4.len}` : '0.0.0.0-0';
  return k.v6 ? `${v4}&${formatIP(k.v6.ip)}-${k.v6.len}` : v4;
}

/** The four groups of flannel's subnetRegex; `v6`/`len6` absent when the optional group did not match. */
export interface KeyMatch {
  readonly v4: string;
  readonly len4: string;
  readonly v6?: string;
  readonly len6?: string;
}

/**
 * flannel's subnetRegex.FindStringSubmatch. The pattern is D1 `.` D2 W D3 W D4 `-` D5
 * (`&` H `-` D6)? `$` with D = `\d+`, W = any rune but `\n`, H = `[a-f\d:]+`. A match starts
 * where a run of digits starts (a later start in the run has the same remainder). The tail after
 * the `-` that ends D4 is forced (each greedy run must stop at the next literal), so only two
 * positions of that `-` can work, both found from the end; D2 and D3 are tried longest first, as
 * a backtracking matcher would, each try O(1) given where every run of digits ends.
 */
export function matchFlannelKey(text: string): KeyMatch | undefined {
  const s = Array.from(text); // code points: Go's `.` matches one rune
  const n = s.length;
  const isDigit = (i: number): boolean => {
    const c = s[i];
    return c !== undefined && c >= '0' && c <= '9' && c.length === 1;
  };
  const isH = (i: number): boolean => {
    const c = s[i];
    return c !== undefined && c.length === 1 && (isDigit(i) || (c >= 'a' && c <= 'f') || c === ':');
  };
  const runEnd = new Int32Array(n + 1).fill(n);
  for (let i = n - 1; i >= 0; i--) runEnd[i] = isDigit(i) ? (runEnd[i + 1] ?? n) : i;
  const end = (i: number): number => runEnd[i] ?? n;

  // The tail: `-` D5 `$`, or `-` D5 `&` H `-` D6 `$` (tried first, but the two never both fit one `-`).
  let z = n;
  while (z > 0 && isDigit(z - 1)) z--;
  if (z === n || s[z - 1] !== '-') return undefined;
  const plain = z - 1;
  let grouped = -1;
  let h = z - 1;
  while (h > 0 && isH(h - 1)) h--;
  if (h < z - 1 && s[h - 1] === '&') {
    let d = h - 1;
    while (d > 0 && isDigit(d - 1)) d--;
    if (d < h - 1 && s[d - 1] === '-') grouped = d - 1;
  }
  const dashTail = (m: number): boolean => m === plain || m === grouped;
  const wild = (i: number): boolean => i < n && s[i] !== '\n';
  // D4 from q: the whole run, then the `-` (a shorter D4 would leave a digit where `-` must be).
  const d4 = (q: number): number => (isDigit(q) && dashTail(end(q)) ? end(q) : -1);
  // D3 from p, longest first: the whole run with W after it; else W and D4 are its last two digits.
  const d3 = (p: number): number => {
    const e = end(p);
    if (e - p < 1) return -1;
    const m = wild(e) ? d4(e + 1) : -1;
    return m >= 0 ? m : e - p >= 3 && dashTail(e) ? e : -1;
  };
  // D2 from p, longest first: the whole run with W after it; else W is a digit and D3 starts inside the run.
  const d2 = (p: number): number => {
    const e = end(p);
    if (e - p < 1) return -1;
    const m = wild(e) ? d3(e + 1) : -1;
    if (m >= 0) return m;
    for (let q = e; q >= p + 2; q--) {
      const k = d3(q);
      if (k >= 0) return k;
    }
    return -1;
  };
  for (let i = 0; i < n; i++) {
    if (!isDigit(i) || isDigit(i - 1) || s[end(i)] !== '.') continue;
    const m = d2(end(i) + 1);
    if (m < 0) continue;
    const join = (a: number, b: number): string => s.slice(a, b).join('');
    return m === grouped
      ? { v4: join(i, m), len4: join(m + 1, h - 1), v6: join(h, z - 1), len6: join(z, n) }
      : { v4: join(i, m), len4: join(m + 1, n) };
  }
  return undefined;
}

/** strconv.ParseUint(digits, 10, bits). */
function parseUintBits(digits: string, bits: number): number | undefined {
  const t = digits.replace(/^0+/, '');
  const v = t.length > 4 ? Infinity : Number(t || '0');
  return v < 2 ** bits ? v : undefined;
}

/**
 * The subnets flanneld reads from a key (the part below `<prefix>/subnets/`; for the default
 * layout this is what matching the whole etcd key gives, as no match can start in `…/subnets/`),
 * or undefined when flanneld reads none. `0.0.0.0-0&<v6>` is an IPv6-only key (no `v4`).
 */
export function parseSubnetKey(text: string): ParsedSubnetKey | undefined {
  const m = matchFlannelKey(text);
  const a4 = m && parseIP(m.v4);
  const v4 = a4 && to4(a4);
  const len4 = m && parseUintBits(m.len4, 5);
  if (!m || !v4 || len4 === undefined) return undefined;
  let v6: Prefix | undefined;
  if (m.v6 !== undefined) {
    const a6 = parseIP(m.v6);
    const len6 = parseUintBits(m.len6 ?? '', 7);
    if (!a6 || len6 === undefined) return undefined;
    v6 = prefix(to16(a6), len6);
  }
  const isV6Only = v4.value === 0n && len4 === 0 && v6 !== undefined;
  const key: SubnetKey = { ...(isV6Only ? {} : { v4: prefix(v4, len4) }), ...(v6 ? { v6 } : {}) };
  return Object.freeze({ ...key, canonical: formatSubnetKey(key) === text });
}
