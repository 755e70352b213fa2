// Lint: typescript-eslint's strict type-checked rules, plus the one architectural rule weft
// lives by: src/core and src/backends are pure (no node:*, no etcd3, no adapters, no clocks,
// no randomness). Breaking it fails `npm run lint`, and so the test command and CI.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeBuiltins = [
  'assert', 'buffer', 'child_process', 'cluster', 'crypto', 'dgram', 'dns', 'events', 'fs',
  'fs/promises', 'http', 'https', 'net', 'os', 'path', 'process', 'readline', 'stream', 'timers',
  'tls', 'url', 'util', 'worker_threads', 'zlib',
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
    files: ['src/core/**/*.ts', 'src/backends/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [
          ...nodeBuiltins.map((name) => ({ name, message: 'core/ and backends/ are pure: no I/O modules.' })),
          { name: 'etcd3', message: 'core/ and backends/ are pure: etcd belongs to src/adapters/etcd.' },
        ],
        patterns: [
          { group: ['node:*'], message: 'core/ and backends/ are pure: no node:* imports.' },
          { group: ['**/adapters/**', '**/agent/**', '**/cli/**'], message: 'core/ and backends/ must not depend on adapters, agent or cli.' },
        ],
      }],
      'no-restricted-globals': ['error',
        { name: 'process', message: 'core/ is pure: pass values in.' },
        { name: 'setTimeout', message: 'core/ is pure: time is a parameter.' },
        { name: 'setInterval', message: 'core/ is pure: time is a parameter.' },
        { name: 'fetch', message: 'core/ is pure: no I/O.' },
        { name: 'Buffer', message: 'core/ is pure: no node globals.' },
      ],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'core/ is pure: take a Clock.' },
        { object: 'Math', property: 'random', message: 'core/ is pure: take an rng.' },
      ],
      'no-restricted-syntax': ['error',
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
