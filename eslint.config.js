// Lint: typescript-eslint's strict type-checked rules, plus the architectural rules weft lives
// by: src/core and src/backends are pure (no node:*, no etcd3, no adapters, no clocks, no
// randomness), and src/core's folders are layered (weft/core-layers, below). Breaking either
// fails `npm run lint`, and so the test command and CI.
import { dirname, relative, resolve, sep } from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * src/core's folders, lowest first (src/core/README.md says what each is for): a file may import
 * from its own folder and from the folders above it in this list, never from one below it, so
 * the folders' imports form no cycle. core imports no backend: where it needs one, it is passed in.
 */
export const CORE_LAYERS = [
  'base',
  'net',
  'flannel',
  'outputs',
  'fleet',
  'spec',
  'datapath',
  'host',
  'config',
  'health',
  'doctor',
];

const coreLayers = {
  meta: {
    type: 'problem',
    schema: [],
    messages: {
      below:
        'src/core/{{from}} may import only from its own folder and the ones above it ({{allowed}}); {{to}} is below it (eslint.config.js CORE_LAYERS)',
      unknown:
        'src/core/{{to}} is not a folder of CORE_LAYERS (eslint.config.js): every core file lives in one of them',
      backend: 'src/core must not import a backend: pass the registry in (src/backends/index.ts) where core needs it',
    },
  },
  create(context) {
    const root = resolve(import.meta.dirname, 'src');
    const folderOf = (abs) => {
      const rel = relative(resolve(root, 'core'), abs).split(sep);
      return rel[0] === '..' || rel.length < 2 ? (rel[0] === '..' ? undefined : '') : rel[0];
    };
    const from = folderOf(context.filename);
    if (from === undefined) return {};
    const check = (node, spec) => {
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = resolve(dirname(context.filename), spec);
      if (!relative(resolve(root, 'backends'), target).startsWith('..')) {
        context.report({ node, messageId: 'backend' });
        return;
      }
      const to = folderOf(target);
      if (to === undefined || to === from) return;
      const rank = CORE_LAYERS.indexOf(from);
      if (!CORE_LAYERS.includes(to)) context.report({ node, messageId: 'unknown', data: { to: to || '(top level)' } });
      else if (rank < 0 || CORE_LAYERS.indexOf(to) > rank)
        context.report({
          node,
          messageId: 'below',
          data: {
            from: from || '(top level)',
            to,
            allowed: CORE_LAYERS.slice(0, Math.max(rank, 0)).join(', ') || 'none',
          },
        });
    };
    const bySource = (node) => {
      if (node.source) check(node.source, node.source.value);
    };
    return {
      ImportDeclaration: bySource,
      ExportNamedDeclaration: bySource,
      ExportAllDeclaration: bySource,
      ImportExpression: bySource,
    };
  },
};

const nodeBuiltins = [
  'assert',
  'buffer',
  'child_process',
  'cluster',
  'crypto',
  'dgram',
  'dns',
  'events',
  'fs',
  'fs/promises',
  'http',
  'https',
  'net',
  'os',
  'path',
  'process',
  'readline',
  'stream',
  'timers',
  'tls',
  'url',
  'util',
  'worker_threads',
  'zlib',
];

export default tseslint.config(
  // scripts/*.mjs are build scripts in plain JavaScript, outside the TypeScript project.
  { ignores: ['dist/**', 'node_modules/**', 'eslint.config.js', 'scripts/**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/no-extraneous-class': 'off',
      // `return r.problem(...)` (record a problem, yield undefined) is a deliberate idiom of the spec reader.
      '@typescript-eslint/no-confusing-void-expression': 'off',
    },
  },
  {
    files: ['src/core/**/*.ts'],
    plugins: { weft: { rules: { 'core-layers': coreLayers } } },
    rules: { 'weft/core-layers': 'error' },
  },
  {
    files: ['src/core/**/*.ts', 'src/backends/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'core/ and backends/ are pure: no I/O modules.' })),
            { name: 'etcd3', message: 'core/ and backends/ are pure: etcd belongs to src/adapters/etcd.' },
          ],
          patterns: [
            { group: ['node:*'], message: 'core/ and backends/ are pure: no node:* imports.' },
            {
              group: ['**/adapters/**', '**/agent/**', '**/cli/**'],
              message: 'core/ and backends/ must not depend on adapters, agent or cli.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'core/ is pure: pass values in.' },
        { name: 'setTimeout', message: 'core/ is pure: time is a parameter.' },
        { name: 'setInterval', message: 'core/ is pure: time is a parameter.' },
        { name: 'fetch', message: 'core/ is pure: no I/O.' },
        { name: 'Buffer', message: 'core/ is pure: no node globals.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'core/ is pure: take a Clock.' },
        { object: 'Math', property: 'random', message: 'core/ is pure: take an rng.' },
      ],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'core/ is pure: take a Clock.' },
      ],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
);
