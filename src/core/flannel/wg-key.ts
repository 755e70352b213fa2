/**
 * WireGuard keys as flanneld reads them: wgtypes.ParseKey is Go's base64.StdEncoding, which
 * ignores CR and LF anywhere and, not being strict, ignores the two padding bits of the last
 * character. So `…YWF=` and `…YWE=` are the same 32 bytes to flanneld, while `wg` refuses the
 * first (its key_from_base64 wants those bits zero). Reading a stored key through
 * `canonicalKey` makes weft take what flanneld takes, and hand `wg` the spelling it prints.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
/** 32 bytes in padded base64: 43 characters, then one `=`. */
const KEY_TEXT = /^[A-Za-z0-9+/]{43}=$/;

/**
 * The canonical text (as `wg genkey`/`wg show` print it) of the 32-byte key Go's
 * base64.StdEncoding reads from `text`; undefined when it reads anything else.
 */
export function canonicalKey(text: string): string | undefined {
  const s = text.replace(/[\r\n]/g, '');
  if (!KEY_TEXT.test(s)) return undefined;
  // The 43rd character carries the last 4 bits of byte 32 and 2 padding bits: clear those.
  const last = ALPHABET.indexOf(s.charAt(42));
  return `${s.slice(0, 42)}${ALPHABET.charAt(last & 0b111100)}=`;
}

/** A WireGuard key as `wg` prints it: canonical base64 of 32 bytes (44 characters, the last padding bits zero). */
export const WG_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
