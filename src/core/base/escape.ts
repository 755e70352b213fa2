/**
 * Untrusted text (anything read from etcd: lease values and keys, owner records, the stored
 * config, and the reasons and errors that quote them) made safe to show. Any host that can
 * write to etcd controls that text: a newline or an ANSI escape in a lease's BackendType would
 * otherwise forge a row of `weft leases`, recolour or clear the operator's terminal, add an
 * assignment to a systemd `STATUS=` message, or split a log line; a bidi override would show
 * the text in another order than it is.
 *
 * `safeText` is for terminals and single-line fields: every such character becomes a visible
 * escape and the result is capped. `capText` is for JSON, which JSON.stringify already escapes:
 * only the cap. Both are display transforms, not codecs: backslashes are left as they are, so
 * the output is unambiguous to read but not meant to be parsed back.
 */

/** The default cap, in characters, of one untrusted value. */
export const TEXT_CAP = 256;

// C0, then what JSON.stringify leaves raw: DEL, C1; the Arabic letter mark, LRM/RLM; the line
// and paragraph separators; the bidi embeddings and overrides (LRE..RLO); the bidi isolates (LRI..PDI).
const BEYOND_C0 = '\\u007f-\\u009f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069';
const UNSAFE = new RegExp(`[\\u0000-\\u001f${BEYOND_C0}]`, 'u');

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** The visible form of one code point (itself when it is safe). */
function escapeChar(ch: string): string {
  if (!UNSAFE.test(ch)) return ch;
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const code = ch.codePointAt(0) ?? 0;
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

const JSON_RAW = new RegExp(`[${BEYOND_C0}]`, 'gu');

/**
 * JSON text (JSON.stringify's output) with every character `safeText` escapes written as a
 * `\uXXXX` escape: the same JSON value, but nothing in it can steer a terminal. JSON.stringify
 * itself escapes C0 inside strings (a raw newline or tab is indentation), not a C1 CSI or a
 * bidi override, which would otherwise reach the terminal of whoever runs a `--json` command.
 * Outside strings JSON text is ASCII, so only strings change.
 */
export function terminalSafeJson(json: string): string {
  return json.replace(JSON_RAW, (ch) => `\\u${(ch.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);
}

/** The marker that replaces a cut tail: how many characters of the original are not shown. */
export function cutMarker(cutChars: number): string {
  return `...[${cutChars} more chars]`;
}

/**
 * `text` with control characters (C0, DEL, C1), the Unicode line and paragraph separators and
 * the bidi controls escaped (`\n`, `\x1b`, `\u202e`), and cut to at most `maxChars` characters
 * of output plus a marker saying how many characters of the original were cut.
 */
export function safeText(text: string, maxChars = TEXT_CAP): string {
  if (text.length <= maxChars && !UNSAFE.test(text)) return text;
  const chars = Array.from(text);
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const piece = escapeChar(chars[i] ?? '');
    if (out.length + piece.length > maxChars) return `${out}${cutMarker(chars.length - i)}`;
    out += piece;
  }
  return out;
}

/** `text` cut to at most `maxChars` characters plus the marker; nothing escaped (for JSON). */
export function capText(text: string, maxChars = TEXT_CAP): string {
  if (text.length <= maxChars) return text;
  const chars = Array.from(text);
  if (chars.length <= maxChars) return text;
  return `${chars.slice(0, maxChars).join('')}${cutMarker(chars.length - maxChars)}`;
}

/** `capText` for a value that may be null. */
export function capOrNull(text: string | null | undefined, maxChars = TEXT_CAP): string | null {
  return text === null || text === undefined ? null : capText(text, maxChars);
}

/**
 * Text that is meant to span lines (a stored config pretty-printed by hand): each line made safe
 * on its own, at most `maxLines` of them, so an injected newline can only ever add a line the
 * caller indents under its own heading.
 */
export function safeLines(text: string, maxLines: number, maxChars = TEXT_CAP): string[] {
  const lines = text.split('\n').map((l) => safeText(l.endsWith('\r') ? l.slice(0, -1) : l, maxChars));
  if (lines.length <= maxLines) return lines;
  return [...lines.slice(0, maxLines), `...[${lines.length - maxLines} more lines]`];
}
