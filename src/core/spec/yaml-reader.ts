/**
 * A positioned reader over a parsed YAML document: typed accessors that record a problem
 * (with `file:line:col` and the dotted key path) instead of throwing, so a whole spec is
 * checked in one pass and every problem points at the text the user must fix.
 */
import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import type { SourcePosition, SpecProblem } from '../base/errors.js';

/** A key/value pair read from a map: the value node and where its key stands. */
export interface Entry {
  readonly path: string;
  readonly keyPos: SourcePosition;
  readonly node: Node | null;
}

export class YamlReader {
  readonly problems: SpecProblem[] = [];
  readonly root: Node | null;
  private readonly lc = new LineCounter();
  private readonly doc: Document.Parsed;

  constructor(
    readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lc, uniqueKeys: true, prettyErrors: true });
    for (const e of this.doc.errors) {
      const lp = e.linePos?.[0];
      const msg = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
      this.problems.push({
        path: '',
        message: `YAML syntax: ${msg}`,
        ...(lp ? { position: { file, line: lp.line, col: lp.col } } : {}),
      });
    }
    this.root = this.doc.errors.length > 0 ? null : this.resolve(this.doc.contents);
  }

  posOf(node: Node | null | undefined, fallback?: SourcePosition): SourcePosition | undefined {
    const start = node?.range?.[0];
    if (start === undefined) return fallback;
    const { line, col } = this.lc.linePos(start);
    return { file: this.file, line, col };
  }

  problem(path: string, message: string, position: SourcePosition | undefined): undefined {
    this.problems.push({ path, message, ...(position ? { position } : {}) });
    return undefined;
  }

  private resolve(node: Node | null | undefined): Node | null {
    if (node && isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return node ?? null;
  }

  /** The entries of a map node, checking keys against `allowed`. Null reads as an empty map. */
  map(
    node: Node | null,
    path: string,
    allowed: readonly string[],
    where?: SourcePosition,
  ): Map<string, Entry> | undefined {
    const out = new Map<string, Entry>();
    if (node === null || (isScalar(node) && node.value === null)) return out;
    if (!isMap(node))
      return this.problem(path, `${path || 'the spec'} must be a mapping of keys to values`, this.posOf(node, where));
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? keyNode.value : undefined;
      const keyPos = this.posOf(keyNode, where) ?? { file: this.file, line: 1, col: 1 };
      const full = path ? `${path}.${String(key)}` : String(key);
      if (typeof key !== 'string') {
        this.problem(path, `${path || 'the spec'}: keys must be strings`, keyPos);
      } else if (!allowed.includes(key)) {
        const hint = allowed.find((k) => k.toLowerCase() === key.toLowerCase());
        this.problem(
          full,
          `unknown key ${full}${hint ? ` (did you mean ${hint}?)` : ''}; allowed here: ${allowed.join(', ')}`,
          keyPos,
        );
      } else {
        out.set(key, { path: full, keyPos, node: this.resolve(pair.value as Node | null) });
      }
    }
    return out;
  }

  private scalar(e: Entry): unknown {
    if (e.node === null) return null;
    return isScalar(e.node) ? e.node.value : e.node;
  }

  private where(e: Entry): SourcePosition {
    return this.posOf(e.node, e.keyPos) ?? e.keyPos;
  }

  string(e: Entry | undefined, what = 'a string'): string | undefined {
    if (!e) return undefined;
    const v = this.scalar(e);
    if (typeof v !== 'string' || v === '')
      return this.problem(e.path, `${e.path} must be ${what}, got ${describe(v)}`, this.where(e));
    return v;
  }

  /** A string that may be empty (e.g. `listen: ""` to disable). */
  stringOrEmpty(e: Entry | undefined, what: string): string | undefined {
    if (!e) return undefined;
    const v = this.scalar(e);
    if (typeof v !== 'string')
      return this.problem(e.path, `${e.path} must be ${what}, got ${describe(v)}`, this.where(e));
    return v;
  }

  integer(e: Entry | undefined, min: number, max: number): number | undefined {
    if (!e) return undefined;
    const v = this.scalar(e);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      return this.problem(e.path, `${e.path} must be an integer ${min}..${max}, got ${describe(v)}`, this.where(e));
    }
    return v;
  }

  boolean(e: Entry | undefined): boolean | undefined {
    if (!e) return undefined;
    const v = this.scalar(e);
    if (typeof v !== 'boolean')
      return this.problem(e.path, `${e.path} must be true or false, got ${describe(v)}`, this.where(e));
    return v;
  }

  /** A list of non-empty strings; a single string is accepted as a one-item list. */
  stringList(e: Entry | undefined): { value: string; pos: SourcePosition }[] | undefined {
    if (!e) return undefined;
    if (e.node !== null && isSeq(e.node)) {
      const out: { value: string; pos: SourcePosition }[] = [];
      for (const [i, item] of e.node.items.entries()) {
        const node = this.resolve(item as Node | null);
        const v = isScalar(node) ? node.value : node;
        const pos = this.posOf(node, e.keyPos) ?? e.keyPos;
        if (typeof v !== 'string' || v === '')
          this.problem(`${e.path}[${i}]`, `${e.path}[${i}] must be a non-empty string, got ${describe(v)}`, pos);
        else out.push({ value: v, pos });
      }
      if (out.length === 0 && e.node.items.length === 0)
        return this.problem(e.path, `${e.path} must not be empty`, this.where(e));
      return out;
    }
    const s = this.string(e, 'a string or a list of strings');
    return s === undefined ? undefined : [{ value: s, pos: this.where(e) }];
  }

  /** Where an entry's value stands (for problems found after reading it). */
  at(e: Entry): SourcePosition {
    return this.where(e);
  }
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isMap(v)) return 'a mapping';
  if (isSeq(v)) return 'a list';
  return typeof v;
}
