/**
 * Text as flanneld holds it. Go keeps an etcd value as bytes: json.Unmarshal replaces each byte
 * of invalid UTF-8 inside a string by U+FFFD on its own (utf8.DecodeRune returns RuneError, 1
 * for it), and strings.ToLower maps rune by rune with Unicode's simple case mapping. JavaScript
 * differs on both: TextDecoder and Buffer.toString replace a whole invalid sequence by one
 * U+FFFD (WHATWG's "maximal subpart"), and toLowerCase applies the full, context-sensitive
 * mapping (İ becomes i + U+0307, a final Σ becomes ς).
 *
 * So the etcd adapter decodes a value with `storedText`, which loses nothing: a byte Go's
 * decoder refuses is kept as the lone surrogate U+DC00 + byte (U+DC80..U+DCFF; never produced
 * by valid UTF-8). The JSON reader (gojson.ts) turns each lone surrogate into U+FFFD, so a bad
 * byte becomes one U+FFFD as in Go, and size limits count `storedByteLength`: the bytes as
 * stored, one per kept byte, not the three of a U+FFFD.
 */

/** The first byte of a multi-byte sequence → [sequence length, lowest and highest second byte] (Go's utf8 first/acceptRanges tables). */
function leadOf(b: number): readonly [number, number, number] | undefined {
  if (b >= 0xc2 && b <= 0xdf) return [2, 0x80, 0xbf];
  if (b === 0xe0) return [3, 0xa0, 0xbf];
  if (b === 0xed) return [3, 0x80, 0x9f]; // not the surrogates
  if (b >= 0xe1 && b <= 0xef) return [3, 0x80, 0xbf];
  if (b === 0xf0) return [4, 0x90, 0xbf];
  if (b >= 0xf1 && b <= 0xf3) return [4, 0x80, 0xbf];
  if (b === 0xf4) return [4, 0x80, 0x8f]; // not above U+10FFFF
  return undefined;
}

/** The rune that starts at `i` and its length, or undefined where Go's DecodeRune returns (RuneError, 1). */
function runeAt(bytes: Uint8Array, i: number): readonly [number, number] | undefined {
  const b0 = bytes[i] ?? 0;
  const lead = leadOf(b0);
  if (!lead) return undefined;
  const [n, lo, hi] = lead;
  if (i + n > bytes.length) return undefined;
  const b1 = bytes[i + 1] ?? 0;
  if (b1 < lo || b1 > hi) return undefined;
  let cp = (b0 & (0xff >> (n + 1))) * 64 + (b1 & 0x3f);
  for (let k = 2; k < n; k++) {
    const b = bytes[i + k] ?? 0;
    if (b < 0x80 || b > 0xbf) return undefined;
    cp = cp * 64 + (b & 0x3f);
  }
  return [cp, n];
}

const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Stored bytes as text, each byte of invalid UTF-8 kept as U+DC00 + byte (see the module comment). */
export function storedText(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes); // valid UTF-8 (nearly always): both readings agree
  } catch {
    const out: string[] = [];
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i] ?? 0;
      const r = b < 0x80 ? ([b, 1] as const) : runeAt(bytes, i);
      out.push(r ? String.fromCodePoint(r[0]) : String.fromCharCode(0xdc00 + b));
      i += r ? r[1] : 1;
    }
    return out.join('');
  }
}

/** How many bytes `text` was stored as: UTF-8 length, a kept byte (a lone U+DC80..U+DCFF) counting one. */
export function storedByteLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else if (c >= 0xdc80 && c <= 0xdcff) n += 1;
    else n += 3;
  }
  return n;
}

/** One UTF-16 unit, or one surrogate pair. */
const isOneCodePoint = (s: string): boolean => s.length === 1 || (s.length === 2 && (s.codePointAt(0) ?? 0) > 0xffff);

/**
 * Go's strings.ToLower: each code point on its own through unicode.ToLower, the simple mapping.
 * A code point alone has no context (so Σ is σ), and the one whose full lower-case mapping is
 * longer than one code point, U+0130 (İ), maps to i as in UnicodeData.txt.
 */
export function goToLower(s: string): string {
  let out = '';
  for (const ch of s) {
    const lower = ch === '\u0130' ? 'i' : ch.toLowerCase();
    // No other code point's full mapping is longer (SpecialCasing.txt); kept as is if one ever is.
    out += isOneCodePoint(lower) ? lower : ch;
  }
  return out;
}
