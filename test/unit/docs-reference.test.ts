// The operator docs against the code: every spec key the parser accepts, every metric weft
// exports, every command and flag the CLI takes has its line in docs/reference.md; every
// relative link and #anchor in README.md, CHANGELOG.md and docs/*.md resolves; the README leads
// with the two commands. Adding a key, a metric or a flag without documenting it fails here.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import test from 'ava';
import { Metrics } from '../../src/agent/metrics.js';
import { REPO, runWeft } from '../helpers/cli.js';
import { backendKeys } from '../../src/core/spec/spec-backend.js';
import { BACKENDS } from '../helpers/backends.js';

const read = (p: string): string => readFileSync(join(REPO, p), 'utf8');
const REFERENCE = read('docs/reference.md');

/** The text of the `## title` section of a Markdown document, up to the next `## `. */
function section(md: string, title: string): string {
  const start = md.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`docs/reference.md has no "## ${title}" section`);
  const next = md.indexOf('\n## ', start + 1);
  return md.slice(start, next < 0 ? undefined : next);
}

/** The first cells of a section's table rows, as written between backticks. */
function rowKeys(md: string): Set<string> {
  return new Set([...md.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] ?? ''));
}

/**
 * Every key the spec parser accepts, read from its source: each `r.map(node, 'path', [keys])`
 * (or a `const NAME = [keys]` passed by name) declares the keys allowed under `path`.
 */
function specKeys(source: string): string[] {
  const lists = new Map<string, string>();
  for (const m of source.matchAll(/const (\w+) = (\[[^\]]*\]);/g)) lists.set(m[1] ?? '', m[2] ?? '');
  const keys: string[] = [];
  for (const m of source.matchAll(/r\.map\([^,]+,\s*'([^']*)',\s*(\[[^\]]*\]|\w+)/g)) {
    const path = m[1] ?? '';
    const list = m[2]?.startsWith('[') ? m[2] : lists.get(m[2] ?? '');
    if (list === undefined) throw new Error(`spec.ts: cannot resolve the key list ${m[2] ?? ''} for ${path}`);
    for (const k of [...list.matchAll(/'([^']+)'/g)].map((x) => x[1] ?? '')) if (path !== '') keys.push(`${path}.${k}`);
  }
  return keys;
}

test("every spec key the parser accepts has a row in the reference's spec table", (t) => {
  // network.backend's keys are each backend's own (its specKeys), from the registry.
  const keys = [
    ...specKeys(read('src/core/spec/spec.ts')),
    ...backendKeys(BACKENDS).map((k) => `network.backend.${k}`),
  ];
  // The parser is read from its source: make sure the reading found the keys at all.
  for (const k of ['etcd.endpoints', 'network.backend.vni', 'host.stateDir', 'outputs.docker.key'])
    t.true(keys.includes(k), `parsed spec keys include ${k}`);
  t.true(keys.length >= 30, `${keys.length} spec keys parsed`);
  const documented = rowKeys(section(REFERENCE, 'The network spec'));
  const missing = keys.filter((k) => !documented.has(k));
  t.deepEqual(missing, [], `spec keys without a row in docs/reference.md "## The network spec": ${missing.join(', ')}`);
});

test("every metric weft exports has a row in the reference's metrics table, with its labels", (t) => {
  const never = (): never => {
    throw new Error('not scraped in this test');
  };
  const metrics = new Metrics({ snapshot: never, counters: never });
  const exported = metrics.families().filter((m) => m.name.startsWith('weft_'));
  t.true(exported.length >= 15, `${exported.length} weft_ metrics registered`);
  const table = section(REFERENCE, 'Metrics');
  const problems: string[] = [];
  for (const m of exported) {
    const row = table.split('\n').find((l) => l.startsWith(`| \`${m.name}\` |`));
    if (!row) {
      problems.push(`${m.name}: no row`);
      continue;
    }
    if (!row.includes(`| ${m.type} |`)) problems.push(`${m.name}: type ${m.type} not in its row`);
    for (const l of m.labelNames) if (!row.includes(`\`${l}\``)) problems.push(`${m.name}: label ${l} not in its row`);
  }
  t.deepEqual(problems, [], `docs/reference.md "## Metrics": ${problems.join('; ')}`);
});

test('the reference\'s "Also exported" names exactly the process and Node.js metrics weft exports', (t) => {
  const never = (): never => {
    throw new Error('not scraped in this test');
  };
  const others = new Metrics({ snapshot: never, counters: never })
    .families()
    .map((m) => m.name)
    .filter((n) => !n.startsWith('weft_'));
  t.true(
    others.includes('process_resident_memory_bytes') && others.includes('nodejs_heap_size_used_bytes'),
    `process metrics exported: ${others.join(', ')}`,
  );
  const table = section(REFERENCE, 'Metrics');
  const start = table.indexOf('\nAlso exported');
  t.true(start >= 0, 'the Metrics section has its "Also exported" paragraph');
  const paragraph = table.slice(start + 1).split('\n\n')[0] ?? '';
  const named = [...paragraph.matchAll(/`((?:process|nodejs)_[a-z_]+)`/g)].map((m) => m[1] ?? '');
  t.deepEqual([...named].sort(), [...others].sort());
});

/** The `weft ...` commands listed under "Commands:" in a --help text. */
function subcommands(help: string): string[] {
  const block = help.split(/\n\s*\n/).find((b) => b.startsWith('Commands:')) ?? '';
  return [...block.matchAll(/^ {2}weft ((?:[\w-]+ ?)+?) {2,}/gm)].map((m) => (m[1] ?? '').trim());
}

/** The flags listed under "Options:" in a --help text (`-f`, `--spec`, ...). */
function flags(help: string): string[] {
  const block = help.split(/\n\s*\n/).find((b) => b.startsWith('Options:')) ?? '';
  const out: string[] = [];
  for (const line of block.split('\n').slice(1)) {
    const lead = /^\s+((?:-{1,2}[\w-]+(?:, )?)+)/.exec(line)?.[1] ?? '';
    out.push(...lead.split(', ').filter((f) => f.startsWith('-')));
  }
  return out;
}

test('every command and every flag in --help has a line in the reference', async (t) => {
  const top = await runWeft(['--help']);
  t.is(top.code, 0, top.stderr);
  const queue = subcommands(top.stdout);
  t.true(queue.length >= 10, `commands in weft --help: ${queue.join(', ')}`);
  const commands = new Map<string, string[]>();
  while (queue.length > 0) {
    const cmd = queue.shift() ?? '';
    const r = await runWeft([...cmd.split(' '), '--help']);
    t.is(r.code, 0, `weft ${cmd} --help: ${r.stderr}`);
    const subs = subcommands(r.stdout).filter((s) => s !== cmd && s.startsWith(`${cmd} `));
    if (subs.length > 0) queue.push(...subs);
    else commands.set(cmd, flags(r.stdout));
  }
  t.true(commands.has('config show'), 'subcommands are followed');
  const table = section(REFERENCE, 'Commands');
  const flagRows = section(REFERENCE, 'Flags');
  const missing: string[] = [];
  for (const [cmd, fl] of commands) {
    if (!new RegExp(`^\\| \`weft ${cmd}[ \`]`, 'm').test(table)) missing.push(`weft ${cmd}: no row in "## Commands"`);
    for (const f of fl) {
      if (f === '--help' || f === '-h' || f === '--version') continue;
      if (!flagRows.includes(`| \`weft ${cmd}\` | \`${f}\` |`)) missing.push(`weft ${cmd} ${f}: no row in "## Flags"`);
    }
  }
  for (const f of ['--help', '--version']) if (!flagRows.includes(`\`${f}\``)) missing.push(`${f}: not in "## Flags"`);
  t.deepEqual(missing, [], missing.join('\n'));
});

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of stripCode(md, false).matchAll(/^#{1,6} +(.+?) *#* *$/gm)) {
    const text = (m[1] ?? '').replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The document without fenced code blocks (and, when asked, without inline code spans). */
function stripCode(md: string, inline: boolean): string {
  const noFences = md.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  return inline ? noFences.replace(/`[^`\n]*`/g, '') : noFences;
}

const DOCS = [
  'README.md',
  'CHANGELOG.md',
  ...readdirSync(join(REPO, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

test('every relative link and #anchor in README.md, CHANGELOG.md and docs/*.md resolves', (t) => {
  const broken: string[] = [];
  for (const doc of DOCS) {
    const text = stripCode(read(doc), true);
    for (const m of text.matchAll(/\]\(([^)\s]+)(?: "[^"]*")?\)/g)) {
      const target = m[1] ?? '';
      if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? join(REPO, doc) : resolve(dirname(join(REPO, doc)), path);
      const rel = relative(REPO, file);
      if (rel.startsWith('..')) {
        broken.push(`${doc}: ${target} leaves the project`);
        continue;
      }
      if (!existsSync(file)) {
        broken.push(`${doc}: ${target} does not exist`);
        continue;
      }
      if (anchor !== undefined && !anchors(readFileSync(file, 'utf8')).has(anchor))
        broken.push(`${doc}: ${target}: no heading #${anchor} in ${rel}`);
    }
    if (read(doc).includes('../shared')) broken.push(`${doc}: refers to ../shared, which is not part of the project`);
  }
  t.deepEqual(broken, [], broken.join('\n'));
});

test("the anchor rule is GitHub's", (t) => {
  const a = anchors(
    '# weft\n## Under systemd: the unit, Docker, health and metrics\n## `weft run`\n### `weft docker-opts` versus `mk-docker-opts.sh`\n## 4. Docker (both VMs)\n## FAQ\n## FAQ\n```\n# not a heading\n```\n',
  );
  t.deepEqual(
    [...a],
    [
      'weft',
      'under-systemd-the-unit-docker-health-and-metrics',
      'weft-run',
      'weft-docker-opts-versus-mk-docker-optssh',
      '4-docker-both-vms',
      'faq',
      'faq-1',
    ],
  );
});

test('README: the two commands within the first 40 lines; LICENSE shipped', (t) => {
  const lines = read('README.md').split('\n');
  for (const cmd of ['bash scripts/demo', 'bash scripts/test-all']) {
    const at = lines.findIndex((l) => l.startsWith(cmd));
    t.true(at >= 0 && at < 40, `"${cmd}" on README line ${at + 1}`);
  }
  t.regex(read('LICENSE'), /Apache License\s+Version 2\.0, January 2004/);
  const pkg = JSON.parse(read('package.json')) as { license: string; files: string[] };
  t.is(pkg.license, 'Apache-2.0');
  for (const f of ['docs', 'LICENSE', 'README.md', 'CHANGELOG.md'])
    t.true(pkg.files.includes(f), `package.json files has ${f}`);
});
