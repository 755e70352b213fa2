/**
 * The command blocks of an operator guide (docs/quickstart.md, docs/migration.md), in order,
 * as test/e2e/guides.test.ts executes them on lab hosts. Pure: text in, blocks out.
 *
 * A block is a fenced code block. Where it runs is said by an HTML comment on the last
 * non-blank line before its fence (invisible when the Markdown is rendered):
 *
 *   <!-- run: vm1 -->              run on the guide's host vm1
 *   <!-- run: vm1, vm2; why -->   run on each, in that order (text after ";" is a note)
 *   <!-- file: /etc/x.yaml on vm1, vm2 -->   the block is that file's content
 *   <!-- skip: why -->             cannot run in the lab (the reason is required)
 *
 * Every shell block (sh, bash, shell, console, or no language) must carry one of them, so a
 * block added to a guide without a decision fails the test instead of being silently skipped;
 * blocks in other languages (yaml, ...) are only taken when marked.
 */

export type Marker =
  | { readonly kind: 'run'; readonly hosts: readonly string[]; readonly note: string }
  | { readonly kind: 'file'; readonly path: string; readonly hosts: readonly string[] }
  | { readonly kind: 'skip'; readonly why: string };

/** One command of a block: its text (continuation lines and here-documents included). */
export interface GuideCommand {
  readonly text: string;
  /** 1-based line in the guide. */
  readonly line: number;
  /** The exit status the guide's comment promises (`(exit 3)`), 0 when it says none. */
  readonly exit: number;
  /** Text the guide's comment quotes (`# "is healthy"`): the output must contain it. */
  readonly expect?: string;
  /** The comment says `prints nothing`: the output must be empty. */
  readonly silent?: boolean;
}

export interface GuideBlock {
  /** `file:line` of the opening fence. */
  readonly where: string;
  readonly lang: string;
  /** The block's text with the fence's indentation removed. */
  readonly text: string;
  readonly marker: Marker;
  /** The commands, for shell blocks (empty for file blocks). */
  readonly commands: readonly GuideCommand[];
}

const SHELL = new Set(['', 'sh', 'bash', 'shell', 'console']);
const MARKER = /^\s*<!--\s*(run|file|skip):\s*(.*?)\s*-->\s*$/;

/** A positioned problem in a guide (an unmarked shell block, a malformed marker). */
export class GuideError extends Error {}

function parseMarker(kind: string, body: string, where: string): Marker {
  const list = (s: string): string[] =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  if (kind === 'skip') {
    if (body === '') throw new GuideError(`${where}: a skip marker must say why`);
    return { kind: 'skip', why: body };
  }
  if (kind === 'file') {
    const m = /^(\/\S+) on (.+)$/.exec(body);
    if (!m?.[1] || !m[2]) throw new GuideError(`${where}: expected <!-- file: /path on host, host -->`);
    return { kind: 'file', path: m[1], hosts: list(m[2]) };
  }
  const [hosts = '', ...note] = body.split(';');
  if (list(hosts).length === 0) throw new GuideError(`${where}: a run marker must name a host`);
  return { kind: 'run', hosts: list(hosts), note: note.join(';').trim() };
}

/** The `#` comment of a shell line (outside quotes, at the start of a word), or ''. */
export function trailingComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
      else if (c === '\\' && quote === '"') i++;
      continue;
    }
    if (c === '\\') {
      i++;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      continue;
    }
    if (c === '#' && (i === 0 || /\s/.test(line[i - 1] ?? ''))) return line.slice(i + 1).trim();
  }
  return '';
}

/**
 * Split a shell block into commands: one per line, with `\` continuations and here-documents
 * (`<<'X'` ... `X`) kept with the line that opens them; blank and comment-only lines dropped.
 */
export function splitCommands(text: string, firstLine: number): GuideCommand[] {
  const lines = text.split('\n');
  const out: GuideCommand[] = [];
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    const first = lines[i] ?? '';
    if (first.trim() === '' || first.trim().startsWith('#')) continue;
    const parts = [first];
    const comments = [trailingComment(first)];
    while ((lines[i] ?? '').endsWith('\\') && i + 1 < lines.length) {
      i++;
      parts.push(lines[i] ?? '');
      comments.push(trailingComment(lines[i] ?? ''));
    }
    const heredoc = /<<-?\s*(['"]?)(\w+)\1/.exec(parts.join('\n'));
    if (heredoc?.[2]) {
      const end = heredoc[2];
      while (i + 1 < lines.length) {
        i++;
        parts.push(lines[i] ?? '');
        if ((lines[i] ?? '').trim() === end) break;
      }
    }
    const comment = comments.filter(Boolean).join(' ');
    const exit = /\(exit (\d+)\)/.exec(comment);
    const quoted = /^"([^"]+)"/.exec(comment);
    out.push({
      text: parts.join('\n'),
      line: firstLine + start,
      exit: exit?.[1] ? Number(exit[1]) : 0,
      ...(quoted?.[1] ? { expect: quoted[1] } : {}),
      ...(/^prints nothing\b/.test(comment) ? { silent: true } : {}),
    });
  }
  return out;
}

/** Every marked block of a guide, in order; throws GuideError on an unmarked shell block. */
export function guideBlocks(markdown: string, file: string): GuideBlock[] {
  const lines = markdown.split('\n');
  const blocks: GuideBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)\s*$/.exec(lines[i] ?? '');
    if (!open) continue;
    const [, indent = '', fence = '', lang = ''] = open;
    const where = `${file}:${i + 1}`;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !new RegExp(`^\\s*${fence}\\s*$`).test(lines[j] ?? ''); j++)
      body.push(
        (lines[j] ?? '').startsWith(indent) ? (lines[j] ?? '').slice(indent.length) : (lines[j] ?? '').trimStart(),
      );
    if (j >= lines.length) throw new GuideError(`${where}: the code block is never closed`);
    let k = i - 1;
    while (k >= 0 && (lines[k] ?? '').trim() === '') k--;
    const m = MARKER.exec(lines[k] ?? '');
    const shell = SHELL.has(lang);
    i = j;
    if (!m) {
      if (shell)
        throw new GuideError(`${where}: a shell block without a <!-- run: host --> or <!-- skip: why --> marker`);
      continue;
    }
    const marker = parseMarker(m[1] ?? '', m[2] ?? '', `${file}:${k + 1}`);
    const text = body.join('\n');
    blocks.push({
      where,
      lang,
      text,
      marker,
      commands: shell && marker.kind === 'run' ? splitCommands(text, Number(where.split(':').pop()) + 1) : [],
    });
  }
  return blocks;
}
