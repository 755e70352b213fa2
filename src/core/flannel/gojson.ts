/**
 * Untrusted JSON read exactly as Go's encoding/json reads it into a struct (flanneld's reading
 * of etcd values). Pure and total: nothing here throws, whatever the input.
 *
 * Two steps, as in Go (`checkValid` over the whole text, then `decodeState.object`):
 *  1. `parseJson` enforces the caller's size and depth limits, then builds a tree that keeps what
 *     Go's decoder looks at: numbers as written (Go parses integer fields from the token with
 *     strconv, so `26.0`, `2.6e1` and `-0` are not a uint), strings both as written between the
 *     quotes (what a Go `UnmarshalJSON` method receives: escapes not decoded) and decoded (what a
 *     `string` field receives), object members in order with their duplicates.
 *  2. `decodeStruct` assigns members to fields by Go's rules (see there).
 * Deliberate differences from Go: the limits (Go has none but a depth of 10000), and positions
 * in messages count UTF-16 units, not bytes. Text from etcd comes through go-text.ts storedText:
 * a byte of invalid UTF-8 arrives as a lone surrogate, and a string's decoded value has U+FFFD
 * for each such byte, as Go's has.
 */
import { storedByteLength } from './go-text.js';

export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string; readonly field?: string };

export interface JsonMember {
  readonly key: string;
  readonly rawKey: string;
  readonly value: JsonNode;
}

/** A parsed JSON value. `raw` is the source text: a number's token, a string's text between its quotes. */
export type JsonNode =
  | { readonly kind: 'null' }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'number'; readonly raw: string }
  | { readonly kind: 'string'; readonly raw: string; readonly value: string }
  | { readonly kind: 'array'; readonly items: readonly JsonNode[] }
  | { readonly kind: 'object'; readonly members: readonly JsonMember[] };

/**
 * `maxBytes` counts the bytes as stored in etcd (go-text.ts storedByteLength: a byte of invalid
 * UTF-8 the adapter kept counts one); `maxDepth` nested objects and arrays (at most 1000).
 */
export interface JsonLimits {
  readonly maxBytes: number;
  readonly maxDepth: number;
}

const fail = (reason: string, field?: string): { ok: false; reason: string; field?: string } =>
  field === undefined ? { ok: false, reason } : { ok: false, reason, field };
const done = <T>(value: T): { ok: true; value: T } => ({ ok: true, value });

/** `12345` as `12,345`. */
export const grouped = (n: number): string => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

/** Text for a message: at most 40 characters, control and lone surrogate characters escaped. */
export function shortText(s: string): string {
  let out = '';
  for (let i = 0; i < Math.min(s.length, 40); i++) {
    const c = s.charCodeAt(i);
    out +=
      c < 0x20 || c === 0x7f || (c >= 0xd800 && c < 0xe000) ? `\\u${c.toString(16).padStart(4, '0')}` : s.charAt(i);
  }
  return s.length > 40 ? `${out}…` : out;
}

/** Parse `text`, or say why not (too big, too deep, or where the syntax breaks). */
export function parseJson(text: string, limits: JsonLimits): Decoded<JsonNode> {
  const size = storedByteLength(text);
  if (size > limits.maxBytes)
    return fail(`value is ${grouped(size)} bytes, over the ${grouped(limits.maxBytes)}-byte limit`);
  try {
    return done(new Parser(text, Math.min(limits.maxDepth, 1000)).document());
  } catch (e) {
    if (e instanceof Stop) return fail(e.message);
    throw e;
  }
}

class Stop extends Error {}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Recursive descent; the depth limit bounds the recursion. Grammar as Go's scanner (RFC 8259). */
class Parser {
  private pos = 0;
  constructor(
    private readonly s: string,
    private readonly maxDepth: number,
  ) {}

  document(): JsonNode {
    this.ws();
    const v = this.value(0);
    this.ws();
    if (this.pos < this.s.length) this.stop('text after the value');
    return v;
  }

  private stop(what: string): never {
    throw new Stop(`invalid JSON at offset ${this.pos}: ${what}`);
  }

  private ws(): void {
    for (let c = this.s[this.pos]; c === ' ' || c === '\t' || c === '\n' || c === '\r'; c = this.s[this.pos])
      this.pos++;
  }

  private value(depth: number): JsonNode {
    const c = this.s[this.pos];
    if (c === '{') return this.object(depth + 1);
    if (c === '[') return this.array(depth + 1);
    if (c === '"') {
      const [raw, value] = this.string();
      return { kind: 'string', raw, value };
    }
    if (c === '-' || isDigit(c)) return this.number();
    for (const [word, node] of LITERALS)
      if (this.s.startsWith(word, this.pos)) {
        this.pos += word.length;
        return node;
      }
    return this.stop(c === undefined ? 'unexpected end of input' : `unexpected character ${shortText(c)}`);
  }

  private object(depth: number): JsonNode {
    if (depth > this.maxDepth) this.stop(`nested deeper than ${this.maxDepth} levels`);
    const members: JsonMember[] = [];
    this.pos++;
    this.ws();
    if (this.s[this.pos] === '}') {
      this.pos++;
      return { kind: 'object', members };
    }
    for (;;) {
      if (this.s[this.pos] !== '"') this.stop('expected a string key');
      const [rawKey, key] = this.string();
      this.ws();
      if (this.s[this.pos] !== ':') this.stop("expected ':'");
      this.pos++;
      this.ws();
      members.push({ key, rawKey, value: this.value(depth) });
      this.ws();
      const c = this.s[this.pos++];
      if (c === '}') return { kind: 'object', members };
      if (c !== ',') {
        this.pos--;
        this.stop("expected ',' or '}'");
      }
      this.ws();
    }
  }

  private array(depth: number): JsonNode {
    if (depth > this.maxDepth) this.stop(`nested deeper than ${this.maxDepth} levels`);
    const items: JsonNode[] = [];
    this.pos++;
    this.ws();
    if (this.s[this.pos] === ']') {
      this.pos++;
      return { kind: 'array', items };
    }
    for (;;) {
      items.push(this.value(depth));
      this.ws();
      const c = this.s[this.pos++];
      if (c === ']') return { kind: 'array', items };
      if (c !== ',') {
        this.pos--;
        this.stop("expected ',' or ']'");
      }
      this.ws();
    }
  }

  private number(): JsonNode {
    const start = this.pos;
    const digits = (): void => {
      if (!isDigit(this.s[this.pos])) this.stop('invalid number');
      while (isDigit(this.s[this.pos])) this.pos++;
    };
    if (this.s[this.pos] === '-') this.pos++;
    if (this.s[this.pos] === '0') this.pos++;
    else digits();
    if (this.s[this.pos] === '.') {
      this.pos++;
      digits();
    }
    if (this.s[this.pos] === 'e' || this.s[this.pos] === 'E') {
      this.pos++;
      if (this.s[this.pos] === '+' || this.s[this.pos] === '-') this.pos++;
      digits();
    }
    return { kind: 'number', raw: this.s.slice(start, this.pos) };
  }

  /** [text between the quotes, decoded value]; the decoding is Go's `unquote` (bad UTF-16 becomes U+FFFD). */
  private string(): [string, string] {
    const start = ++this.pos;
    let out = '';
    let from = start;
    for (;;) {
      const c = this.s.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.stop('unterminated string');
      if (c === 0x22) break;
      if (c < 0x20) this.stop('control character in a string');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += this.s.slice(from, this.pos).replace(LONE_SURROGATE, '\ufffd') + this.escape();
      from = this.pos;
    }
    out += this.s.slice(from, this.pos).replace(LONE_SURROGATE, '\ufffd');
    return [this.s.slice(start, this.pos++), out];
  }

  private hex4(at: number): number {
    const h = this.s.slice(at, at + 4);
    return /^[0-9a-fA-F]{4}$/.test(h) ? parseInt(h, 16) : -1;
  }

  private escape(): string {
    const e = this.s[this.pos + 1] ?? '';
    const simple = Object.hasOwn(ESCAPES, e) ? ESCAPES[e] : undefined;
    if (simple !== undefined) {
      this.pos += 2;
      return simple;
    }
    if (e !== 'u') {
      this.pos++;
      return this.stop('invalid escape in a string');
    }
    const r = this.hex4(this.pos + 2);
    if (r < 0) {
      this.pos++;
      return this.stop('invalid \\u escape');
    }
    this.pos += 6;
    if (r < 0xd800 || r >= 0xe000) return String.fromCharCode(r);
    // A surrogate survives only as the first half of a pair written as two escapes.
    const r2 = r < 0xdc00 && this.s.startsWith('\\u', this.pos) ? this.hex4(this.pos + 2) : -1;
    if (r2 >= 0xdc00 && r2 < 0xe000) {
      this.pos += 6;
      return String.fromCharCode(r, r2);
    }
    return '\ufffd';
  }
}

const LITERALS: readonly (readonly [string, JsonNode])[] = [
  ['true', { kind: 'bool', value: true }],
  ['false', { kind: 'bool', value: false }],
  ['null', { kind: 'null' }],
];

/** A node as compact JSON text, every token as written (Go's json.Compact). */
export function compactJson(n: JsonNode): string {
  switch (n.kind) {
    case 'null':
      return 'null';
    case 'bool':
      return n.value ? 'true' : 'false';
    case 'number':
      return n.raw;
    case 'string':
      return `"${n.raw}"`;
    case 'array':
      return `[${n.items.map(compactJson).join(',')}]`;
    case 'object':
      return `{${n.members.map((m) => `"${m.rawKey}":${compactJson(m.value)}`).join(',')}}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Struct decoding.

/** Go field kinds: `int`/`uint` are 64-bit (Linux amd64/arm64); `raw` is json.RawMessage. */
export type GoKind = 'bool' | 'string' | 'int' | 'uint' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'raw';

/** Like a Go `UnmarshalJSON` method: gets the value's JSON text as written (`null` included). */
export type Unmarshaler<T> = (token: string) => Decoded<T>;

/** One struct field. `pointer`: a Go pointer, which JSON `null` sets to nil (null here). */
export interface GoField {
  readonly kind: GoKind | Unmarshaler<unknown>;
  readonly pointer?: boolean;
}

/** Fields by their Go JSON name (the field name or its tag). Names must be ASCII. */
export type GoFields = Readonly<Record<string, GoField>>;

type ValueOf<F extends GoField> =
  F['kind'] extends Unmarshaler<infer T>
    ? T
    : F['kind'] extends 'bool'
      ? boolean
      : F['kind'] extends 'string'
        ? string
        : F['kind'] extends 'raw'
          ? JsonNode
          : bigint;

/** A decoded struct: a field is absent when no member set it (Go leaves the zero value). */
export type GoStruct<F extends GoFields> = {
  readonly [K in keyof F]?: ValueOf<F[K]> | (F[K]['pointer'] extends true ? null : never);
};

const RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int: [-(1n << 63n), (1n << 63n) - 1n],
  uint: [0n, (1n << 64n) - 1n],
  uint64: [0n, (1n << 64n) - 1n],
  uint32: [0n, 0xffffffffn],
  uint16: [0n, 0xffffn],
  uint8: [0n, 0xffn],
};

/**
 * Go's key folding for matching members to fields: ASCII letters fold to upper case; of all
 * other runes only U+017F (ſ, folds to S) and U+212A (Kelvin sign, folds to K) fold into ASCII
 * (unicode.SimpleFold orbits), so against ASCII field names the rest may stay as they are.
 */
function foldName(s: string): string {
  return s.replace(/[a-z\u017f\u212a]/g, (c) => (c === '\u017f' ? 'S' : c === '\u212a' ? 'K' : c.toUpperCase()));
}

/** A struct's fields by name and by folded name (the first field wins a fold), built once per field table. */
const FIELD_INDEX = new WeakMap<GoFields, { byName: Map<string, GoField>; byFold: Map<string, string> }>();
function fieldIndex(fields: GoFields): { byName: Map<string, GoField>; byFold: Map<string, string> } {
  let ix = FIELD_INDEX.get(fields);
  if (!ix) {
    const byName = new Map<string, GoField>(Object.entries(fields));
    const byFold = new Map<string, string>();
    for (const name of byName.keys()) if (!byFold.has(foldName(name))) byFold.set(foldName(name), name);
    ix = { byName, byFold };
    FIELD_INDEX.set(fields, ix);
  }
  return ix;
}

/**
 * Decode a node into a Go struct with encoding/json's rules: a member goes to the field whose
 * name equals its (unescaped) key, else to the first field equal under folding; unknown keys are
 * ignored; members apply in order, so the last duplicate wins; `null` is a no-op for a non-pointer
 * field, sets a pointer to nil, and is handed to an Unmarshaler (RawMessage keeps it as `null`);
 * an integer field takes only a token strconv accepts, within the kind's range; a value of the
 * wrong type is an error. Go saves the first error and keeps going, but any error fails the
 * decode, so this stops at the first. `goType` (e.g. `subnet.Config`) is for messages.
 */
export function decodeStruct<F extends GoFields>(node: JsonNode, goType: string, fields: F): Decoded<GoStruct<F>> {
  if (node.kind === 'null') return done({}); // null into a struct is a no-op
  if (node.kind !== 'object') return fail(`json: cannot unmarshal ${node.kind} into Go value of type ${goType}`);
  const { byName, byFold } = fieldIndex(fields);
  const struct = goType.slice(goType.lastIndexOf('.') + 1);
  const out = new Map<string, unknown>();
  for (const m of node.members) {
    const name = byName.has(m.key) ? m.key : byFold.get(foldName(m.key));
    const field = name === undefined ? undefined : byName.get(name);
    if (name === undefined || field === undefined) continue;
    const r = store(m.value, field, `${struct}.${name}`);
    if (!r.ok) return fail(r.reason, name);
    if (r.value !== NO_OP) out.set(name, r.value);
  }
  return done(Object.fromEntries(out) as GoStruct<F>);
}

/** Parse then decode: `unmarshal(text, limits, 'lease.LeaseAttrs', FIELDS)`. */
export function unmarshal<F extends GoFields>(
  text: string,
  limits: JsonLimits,
  goType: string,
  fields: F,
): Decoded<GoStruct<F>> {
  const doc = parseJson(text, limits);
  return doc.ok ? decodeStruct(doc.value, goType, fields) : doc;
}

const NO_OP = Symbol('no-op');

/** Go's literalStore / object / array for one field. */
function store(node: JsonNode, f: GoField, where: string): Decoded<unknown> {
  if (node.kind === 'null' && f.pointer === true) return done(null);
  if (typeof f.kind === 'function') {
    const token = compactJson(node);
    const r = f.kind(token);
    return r.ok ? r : fail(`${where} ${shortText(token)}: ${r.reason}`);
  }
  if (f.kind === 'raw') return done(node);
  if (node.kind === 'null') return done(NO_OP);
  const typeError = (what: string): Decoded<never> =>
    fail(`json: cannot unmarshal ${what} into Go struct field ${where} of type ${f.kind as string}`);
  if (f.kind === 'bool') return node.kind === 'bool' ? done(node.value) : typeError(node.kind);
  if (f.kind === 'string') return node.kind === 'string' ? done(node.value) : typeError(node.kind);
  if (node.kind !== 'number') return typeError(node.kind);
  // strconv.ParseInt / ParseUint(token, 10, 64): digits, a sign only for int (so uint refuses -0),
  // no fraction or exponent; then the kind's range. JSON has no leading zeros, so >20 digits overflow.
  const [lo, hi] = RANGES[f.kind] ?? [0n, -1n];
  const digits = f.kind === 'int' ? /^-?[0-9]{1,20}$/ : /^[0-9]{1,20}$/;
  const n = digits.test(node.raw) ? BigInt(node.raw) : undefined;
  return n !== undefined && n >= lo && n <= hi ? done(n) : typeError(`number ${shortText(node.raw)}`);
}
