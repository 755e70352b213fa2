// The agent is a composition of parts with one job each: no class in src/agent keeps more than
// 8 mutable fields (state that several methods change is where interacting flags hide).
import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import ts from 'typescript';
import { REPO } from '../helpers/cli.js';

const MAX_MUTABLE_FIELDS = 8;

function mutableFields(file: string): Map<string, string[]> {
  const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out = new Map<string, string[]>();
  const isReadonly = (n: ts.Node): boolean =>
    (ts.canHaveModifiers(n) ? (ts.getModifiers(n) ?? []) : []).some((m) => m.kind === ts.SyntaxKind.ReadonlyKeyword);
  const visit = (n: ts.Node): void => {
    if (ts.isClassDeclaration(n)) {
      const fields: string[] = [];
      for (const m of n.members) {
        if (ts.isPropertyDeclaration(m) && !isReadonly(m)) fields.push(m.name.getText(src));
        if (ts.isConstructorDeclaration(m)) {
          for (const p of m.parameters)
            if (ts.isParameterPropertyDeclaration(p, m) && !isReadonly(p)) fields.push(p.name.getText(src));
        }
      }
      out.set(n.name?.text ?? '(anonymous)', fields);
    }
    ts.forEachChild(n, visit);
  };
  visit(src);
  return out;
}

test(`no class in src/agent has more than ${MAX_MUTABLE_FIELDS} mutable fields`, (t) => {
  const dir = `${REPO}/src/agent`;
  const counts: string[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
    for (const [cls, fields] of mutableFields(`${dir}/${f}`)) {
      counts.push(`${cls} ${fields.length}`);
      t.true(
        fields.length <= MAX_MUTABLE_FIELDS,
        `${f}: ${cls} has ${fields.length} mutable fields: ${fields.join(', ')}`,
      );
    }
  }
  t.log(counts.join(', '));
  t.true(counts.length >= 8, "the agent's classes were found");
});
