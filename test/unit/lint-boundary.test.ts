// The purity rule of src/core and src/backends, and the layering of src/core's folders, are
// enforced by lint; prove the rules bite.
import { readdirSync } from 'node:fs';
import test from 'ava';
import { ESLint } from 'eslint';
import { REPO } from '../helpers/cli.js';

const probes: [string, string, RegExp][] = [
  [
    'src/core/net/cidr.ts',
    "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
    /no node:\* imports|no I\/O/,
  ],
  [
    'src/core/net/cidr.ts',
    "import { Etcd3 } from 'etcd3';\nexport const x = Etcd3;\n",
    /etcd belongs to src\/adapters/,
  ],
  [
    'src/core/spec/spec.ts',
    "import { writeFileAtomic } from '../../adapters/files.js';\nexport const x = writeFileAtomic;\n",
    /must not depend on adapters/,
  ],
  ['src/core/net/cidr.ts', 'export const x = (): number => Date.now();\n', /take a Clock/],
  ['src/core/net/cidr.ts', 'export const x = (): number => Math.random();\n', /take an rng/],
  [
    'src/core/net/cidr.ts',
    "import { readiness } from '../health/health.js';\nexport const x = readiness;\n",
    /src\/core\/net may import only from its own folder and the ones above it \(base\); health is below it/,
  ],
  [
    'src/core/fleet/fleet.ts',
    "import { vxlan } from '../../backends/vxlan.js';\nexport const x = vxlan;\n",
    /src\/core must not import a backend/,
  ],
  [
    'src/backends/vxlan.ts',
    "import { execFile } from 'node:child_process';\nexport const x = execFile;\n",
    /no node:\* imports|no I\/O/,
  ],
  [
    'src/backends/host-gw.ts',
    "import { applyBatch } from '../adapters/iproute2.js';\nexport const x = applyBatch;\n",
    /must not depend on adapters/,
  ],
];

for (const [file, code, message] of probes) {
  test(`lint rejects impure code in ${file}: ${code.split('\n')[0] ?? ''}`, async (t) => {
    const eslint = new ESLint({ cwd: REPO });
    const [result] = await eslint.lintText(code, { filePath: `${REPO}/${file}` });
    const messages = (result?.messages ?? []).map((m) => m.message).join('\n');
    t.regex(messages, message);
  });
}

test('the same code is allowed in an adapter', async (t) => {
  const eslint = new ESLint({ cwd: REPO });
  const [result] = await eslint.lintText("import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", {
    filePath: `${REPO}/src/adapters/files.ts`,
  });
  t.deepEqual(
    (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports'),
    [],
  );
});

test('src/core is a house of rooms: only the layered folders (eslint.config.js CORE_LAYERS) and their README, at most 12 entries', async (t) => {
  const { CORE_LAYERS } = (await import(`${REPO}/eslint.config.js`)) as { CORE_LAYERS: readonly string[] };
  const entries = readdirSync(`${REPO}/src/core`).sort();
  t.deepEqual(entries, [...CORE_LAYERS, 'README.md'].sort());
  t.true(entries.length <= 12, `${entries.length} entries`);
});
