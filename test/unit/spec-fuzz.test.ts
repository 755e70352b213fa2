// A spec fuzzed from the shipped examples always parses or fails with positioned problems;
// nothing else ever escapes (in-process, thousands of cases), and `weft validate` on a sample
// always exits 0 or 2 with file:line:col messages.
import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpecError } from '../../src/core/base/errors.js';
import { parseSpec } from '../../src/core/spec/spec.js';
import { REPO, runWeft } from '../helpers/cli.js';
import { BACKENDS } from '../helpers/backends.js';

const examples = readdirSync(join(REPO, 'examples'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => readFileSync(join(REPO, 'examples', f), 'utf8'));
const JUNK = [
  '',
  ' ',
  ':',
  '- ',
  '{',
  '}',
  '[',
  ']',
  '"',
  "'",
  '#',
  '&a',
  '*a',
  '!!str',
  '~',
  'null',
  '-1',
  '0x10',
  '1e400',
  '999999999999',
  '10.244.0.0/33',
  '::',
  'http://',
  'vxlan',
  'host-gw',
  '24h',
  '-5s',
  '\t',
  '\u0000',
  '\u{1F600}',
  'yes',
  'true',
];

/** One random edit of a spec's text: characters, lines, scalars. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 8 }) }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    text: fc.oneof(fc.constantFrom(...JUNK), fc.string({ maxLength: 6 })),
  }),
  fc.record({ kind: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('dupLine' as const), a: fc.nat() }),
  fc.record({ kind: fc.constant('scalar' as const), a: fc.nat(), text: fc.constantFrom(...JUNK) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function apply(text: string, m: Mutation): string {
  const lines = text.split('\n');
  const n = (x: number, len: number) => (len === 0 ? 0 : x % len);
  switch (m.kind) {
    case 'delete': {
      const at = n(m.at, text.length);
      return text.slice(0, at) + text.slice(at + m.len);
    }
    case 'insert': {
      const at = n(m.at, text.length + 1);
      return text.slice(0, at) + m.text + text.slice(at);
    }
    case 'swapLines': {
      const a = n(m.a, lines.length);
      const b = n(m.b, lines.length);
      [lines[a], lines[b]] = [lines[b] ?? '', lines[a] ?? ''];
      return lines.join('\n');
    }
    case 'dupLine': {
      const a = n(m.a, lines.length);
      lines.splice(a, 0, lines[a] ?? '');
      return lines.join('\n');
    }
    case 'scalar': {
      const a = n(m.a, lines.length);
      lines[a] = (lines[a] ?? '').replace(/:\s*(\S.*)?$/, `: ${m.text}`);
      return lines.join('\n');
    }
    case 'truncate':
      return text.slice(0, n(m.at, text.length + 1));
  }
}

const fuzzed = fc
  .record({ base: fc.nat({ max: examples.length - 1 }), edits: fc.array(mutation, { minLength: 1, maxLength: 4 }) })
  .map(({ base, edits }) => edits.reduce(apply, examples[base] ?? ''));

test('in-process: 3,000 fuzzed specs either parse or fail with SpecError problems that name a position or a key', (t) => {
  let ok = 0;
  let rejected = 0;
  fc.assert(
    fc.property(fuzzed, (text) => {
      try {
        parseSpec('network.yaml', text, BACKENDS, {});
        ok++;
      } catch (e) {
        if (!(e instanceof SpecError)) throw e;
        if (e.problems.length === 0 || e.problems.some((p) => p.message.trim() === ''))
          throw new Error('a SpecError with no message');
        rejected++;
      }
    }),
    { numRuns: 3000, seed: 20261121 },
  );
  t.log(`3,000 fuzzed specs: ${ok} valid, ${rejected} rejected with problems, 0 other exceptions`);
  t.true(rejected > 1000 && ok > 10, 'the fuzzer makes both kinds');
});

test('weft validate on 40 fuzzed specs: exit 0, or exit 2 with a file:line:col (or file:) message; never a crash', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-fuzz-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const samples = fc.sample(fuzzed, { numRuns: 40, seed: 7 });
  const codes = new Map<number, number>();
  for (const [i, text] of samples.entries()) {
    const file = join(dir, `s${String(i)}.yaml`);
    writeFileSync(file, text);
    const r = await runWeft(['validate', '--spec', file]);
    codes.set(r.code ?? -1, (codes.get(r.code ?? -1) ?? 0) + 1);
    t.true(r.code === 0 || r.code === 2, `exit ${String(r.code)} for:\n${text}\n${r.stderr}`);
    if (r.code === 2)
      t.true(
        r.stderr
          .split('\n')
          .filter(Boolean)
          .every((l) => l.startsWith(`${file}:`)),
        r.stderr,
      );
    t.false(r.stderr.includes('unexpected error'), r.stderr);
  }
  t.log(`exit statuses: ${JSON.stringify(Object.fromEntries(codes))}`);
});
