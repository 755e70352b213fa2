// The Environment= of units/weft.service as systemd reads it: what the benchmarks and the
// Debian package test give weft (a value with spaces must be quoted in the unit, or systemd
// drops its words after the first).
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { unitEnvironment } from '../helpers/unit-env.js';
import { REPO } from '../helpers/cli.js';

test('Environment= lines: words, quoted words, a later assignment wins', (t) => {
  t.deepEqual(unitEnvironment('[Service]\nEnvironment=A=1 "B=two words"\n# Environment=C=3\nEnvironment=A=4\n'), {
    A: '4',
    B: 'two words',
  });
});

test('weft.service gives Node both of its options', (t) => {
  const env = unitEnvironment(readFileSync(join(REPO, 'units/weft.service'), 'utf8'));
  t.is(env.NODE_OPTIONS, '--max-semi-space-size=4 --v8-pool-size=1');
});
