// A backend is one module that owns everything about itself (issue 29): outside src/backends/,
// no source in src/core, src/agent or src/cli names a backend type in a string literal, so a
// new backend needs no edit there and none is forgotten. Read from the sources with the
// TypeScript parser; the backend types are the registry's keys.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import ts from 'typescript';
import { REPO } from '../helpers/cli.js';
import { BACKENDS } from '../helpers/backends.js';

/** The folders that must not name a backend type. */
const SCANNED = ['src/core', 'src/agent', 'src/cli'];

/**
 * The device-kind modules: a device kind may be named like the backend that asks for it (a
 * `vxlan` device, a `wireguard` link), and these modules are where kinds are defined.
 */
const DEVICE_KIND_MODULES = new Set([
  'src/core/datapath/datapath.ts',
  'src/core/datapath/devices.ts',
  'src/core/datapath/device-kind.ts',
  'src/core/datapath/device-vxlan.ts',
  'src/core/datapath/device-wireguard.ts',
]);

/** Names under which a literal is a device kind or a tool (core/datapath/devices.ts `Tool`), not a backend type. */
const KIND_NAMES = new Set(['kind', 'tool']);

const sourcesUnder = (dir: string): string[] =>
  readdirSync(join(REPO, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = `${dir}/${e.name}`;
    return e.isDirectory() ? sourcesUnder(rel) : e.name.endsWith('.ts') ? [rel] : [];
  });

/** `x.kind`, `kind`, `x.tool`, `tool`: an expression that holds a device kind or a tool. */
function namesKind(n: ts.Node): boolean {
  if (ts.isPropertyAccessExpression(n)) return KIND_NAMES.has(n.name.text);
  if (ts.isIdentifier(n)) return KIND_NAMES.has(n.text);
  return false;
}

/** Is this literal a device kind or a tool: compared with one, given as one, or typed as one? */
function isKindLiteral(lit: ts.Node): boolean {
  let n: ts.Node = lit;
  // A literal type (`kind: 'vxlan'`) sits in a LiteralTypeNode.
  if (ts.isLiteralTypeNode(n.parent)) n = n.parent;
  const p = n.parent;
  if (
    ts.isBinaryExpression(p) &&
    [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken].includes(p.operatorToken.kind)
  ) {
    return namesKind(p.left === n ? p.right : p.left);
  }
  if ((ts.isPropertyAssignment(p) || ts.isPropertySignature(p)) && ts.isIdentifier(p.name))
    return KIND_NAMES.has(p.name.text);
  if (ts.isCaseClause(p)) return namesKind(p.parent.parent.expression);
  return false;
}

/** Every string literal in `file` that equals one of `types` (import paths aside), as `file:line: 'text'`. */
function backendLiterals(file: string, text: string, types: ReadonlySet<string>): string[] {
  const src = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) return;
    const isText = ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n);
    if (isText && types.has(n.text) && !isKindLiteral(n))
      found.push(`${file}:${String(src.getLineAndCharacterOfPosition(n.getStart(src)).line + 1)}: '${n.text}'`);
    ts.forEachChild(n, visit);
  };
  visit(src);
  return found;
}

test('no source in src/core (device-kind modules aside), src/agent or src/cli names a backend type in a string literal', (t) => {
  const types = new Set(BACKENDS.keys());
  t.true(types.size >= 3, 'the registry names the backends');
  const files = SCANNED.flatMap(sourcesUnder).filter((f) => !DEVICE_KIND_MODULES.has(f));
  t.true(files.length > 80, `${files.length} sources scanned`);
  const found = files.flatMap((f) => backendLiterals(f, readFileSync(join(REPO, f), 'utf8'), types));
  t.deepEqual(
    found,
    [],
    `backend types named outside src/backends/ (ask the backend instead, src/backends/types.ts):\n${found.join('\n')}`,
  );
});

test('the scan finds a backend type compared, returned or typed, and leaves device kinds, tools and import paths alone', (t) => {
  const types = new Set(['vxlan', 'wireguard']);
  const probe = [
    "import { x } from './vxlan';",
    "if (backend.type === 'vxlan') f();",
    "const t: 'vxlan' | 'host-gw' = `wireguard`;",
    "const msg = 'wireguard';",
    "if (d.kind === 'vxlan' || 'wireguard' !== dev.kind) g();",
    "const dev = { kind: 'wireguard', name: 'flannel-wg' };",
    "const run = (tool: string) => (tool === 'wireguard' ? 1 : 2);",
    "type K = { readonly kind: 'vxlan' };",
    "switch (o.kind) { case 'vxlan': break; }",
  ].join('\n');
  t.deepEqual(backendLiterals('probe.ts', probe, types), [
    "probe.ts:2: 'vxlan'",
    "probe.ts:3: 'vxlan'",
    "probe.ts:3: 'wireguard'",
    "probe.ts:4: 'wireguard'",
  ]);
});
