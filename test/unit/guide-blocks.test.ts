// The guide extractor test/e2e/guides.test.ts relies on: which blocks run where, how a block
// splits into commands, and what each command's comment promises.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { REPO } from '../helpers/cli.js';
import { GuideError, guideBlocks, splitCommands, trailingComment } from '../helpers/guide.js';

const md = [
  '# A guide',
  '',
  '<!-- run: vm1 -->',
  '```sh',
  'echo one   # "one"',
  'false      # fails (exit 1)',
  '```',
  '',
  'Some text.',
  '',
  '- a list item:',
  '',
  '  <!-- run: vm1, vm2; the note -->',
  '  ```sh',
  "  cat > /tmp/x <<'X'",
  '  a # not a comment',
  '  X',
  '  ls \\',
  '    -l',
  '  ```',
  '',
  '<!-- file: /etc/weft/network.yaml on vm2 -->',
  '```yaml',
  'etcd: {}',
  '```',
  '',
  '```yaml',
  'not: marked',
  '```',
  '',
  '<!-- skip: needs the internet -->',
  '```',
  'curl https://example.org',
  '```',
].join('\n');

test('blocks come out in order, with their marker, position and indentation removed', (t) => {
  const b = guideBlocks(md, 'g.md');
  t.deepEqual(
    b.map((x) => [x.where, x.marker.kind, x.lang]),
    [
      ['g.md:4', 'run', 'sh'],
      ['g.md:14', 'run', 'sh'],
      ['g.md:23', 'file', 'yaml'],
      ['g.md:32', 'skip', ''],
    ],
  );
  t.deepEqual(b[1]?.marker, { kind: 'run', hosts: ['vm1', 'vm2'], note: 'the note' });
  t.deepEqual(b[2]?.marker, { kind: 'file', path: '/etc/weft/network.yaml', hosts: ['vm2'] });
  t.is(b[2]?.text, 'etcd: {}');
  t.deepEqual(b[3]?.marker, { kind: 'skip', why: 'needs the internet' });
  t.deepEqual(b[3]?.commands, [], 'a skipped block has no commands to run');
});

test('commands: one per line, here-documents and continuations kept whole, with the exit and output the comment promises', (t) => {
  const [first, second] = guideBlocks(md, 'g.md');
  t.deepEqual(first?.commands, [
    { text: 'echo one   # "one"', line: 5, exit: 0, expect: 'one' },
    { text: 'false      # fails (exit 1)', line: 6, exit: 1 },
  ]);
  t.deepEqual(
    second?.commands.map((c) => [c.line, c.text]),
    [
      [15, "cat > /tmp/x <<'X'\na # not a comment\nX"],
      [18, 'ls \\\n  -l'],
    ],
  );
});

test('an unmarked shell block, a skip without a reason and a run without a host are errors at their line', (t) => {
  t.throws(() => guideBlocks('x\n\n```sh\nls\n```\n', 'g.md'), {
    instanceOf: GuideError,
    message: /^g\.md:3: a shell block without/,
  });
  t.throws(() => guideBlocks('<!-- skip: -->\n```sh\nls\n```\n', 'g.md'), {
    instanceOf: GuideError,
    message: /^g\.md:1: a skip marker must say why/,
  });
  t.throws(() => guideBlocks('<!-- run: -->\n```sh\nls\n```\n', 'g.md'), {
    instanceOf: GuideError,
    message: /^g\.md:1: a run marker must name a host/,
  });
  t.throws(() => guideBlocks('<!-- run: vm1 -->\n```sh\nls\n', 'g.md'), { message: /never closed/ });
});

test('a comment starts only at a word outside quotes', (t) => {
  t.is(trailingComment('sed -i "s#^a#b#" f   # edit'), 'edit');
  t.is(trailingComment("echo 'a # b' x#y"), '');
  t.is(trailingComment('# whole line'), 'whole line');
  t.deepEqual(
    splitCommands('# only a comment\n\nid\n', 10).map((c) => c.line),
    [12],
  );
  t.deepEqual(splitCommands('pgrep -a x   # prints nothing (exit 1)', 1), [
    { text: 'pgrep -a x   # prints nothing (exit 1)', line: 1, exit: 1, silent: true },
  ]);
});

test('the guides the e2e test runs parse: every shell block is marked', (t) => {
  for (const f of ['docs/quickstart.md', 'docs/migration.md']) {
    const blocks = guideBlocks(readFileSync(join(REPO, f), 'utf8'), f);
    t.true(
      blocks.some((b) => b.marker.kind === 'run'),
      `${f} has blocks to run`,
    );
  }
});
