// docs/architecture.md names every source file and folder with its purpose: its "Source files"
// section is what scripts/architecture-files.mjs makes from the tree (each file's header comment,
// src/core/README.md's folders). A file added without a header comment, or without the section
// regenerated, fails here.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { REPO } from '../helpers/cli.js';

test('docs/architecture.md lists every source file and core folder, as the tree gives them', (t) => {
  let out = '';
  try {
    execFileSync(process.execPath, [join(REPO, 'scripts', 'architecture-files.mjs'), '--check'], {
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (e) {
    out = String((e as { stderr?: string }).stderr ?? e);
  }
  t.is(out, '', 'run: node scripts/architecture-files.mjs');
});

test('every source file has a header comment saying what it is for, and every core folder a purpose', (t) => {
  const doc = execFileSync(
    process.execPath,
    [
      '-e',
      `import(${JSON.stringify(join(REPO, 'scripts', 'architecture-files.mjs'))}).then((m) => process.stdout.write(m.generated()))`,
    ],
    { encoding: 'utf8' },
  );
  t.false(
    doc.includes('**no header comment**'),
    doc
      .split('\n')
      .filter((l) => l.includes('**no header comment**'))
      .join('\n'),
  );
  t.false(doc.includes('**not in src/core/README.md**'));
  t.true(doc.includes('`config-fit.ts`'), 'the list is not empty');
});
