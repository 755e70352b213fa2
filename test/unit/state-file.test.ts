// The cached state on disk: written 0600, only when its content changed, at most once per gap,
// and what is pending is written at stop.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CachedState, decodeCachedState } from '../../src/core/fleet/cached-state.js';
import { silentLogger } from '../../src/adapters/log.js';
import { StateSaver, readStateFile, stateFilePath } from '../../src/agent/state-file.js';

const state = (expiresAtMs: number): CachedState => ({
  version: 1,
  savedAtMs: Date.now(),
  config: '{"Network":"198.18.0.0/16"}',
  revision: '5',
  lease: { subnet: '198.18.5.0/24', value: '{}', expiresAtMs, hostID: 'h1' },
  peers: [],
});

test('written 0600 on change only, debounced, flushed at stop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-state-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  let expires = 1000;
  let builds = 0;
  const saver = new StateSaver({
    stateDir: join(dir, 'sub'),
    minGapMs: 50,
    log: silentLogger,
    build: () => {
      builds++;
      return state(expires);
    },
  });
  t.is(await readStateFile(join(dir, 'sub'), silentLogger), undefined);
  await saver.flush();
  const file = stateFilePath(join(dir, 'sub'));
  t.is(statSync(file).mode & 0o777, 0o600);
  const first = readFileSync(file, 'utf8');
  const d = decodeCachedState(first);
  t.true(d.ok && d.value.lease.expiresAtMs === 1000);
  await saver.flush();
  t.is(readFileSync(file, 'utf8'), first, 'unchanged content (only the time stamp would differ) is not rewritten');
  expires = 2000;
  saver.poke();
  saver.poke();
  saver.poke();
  t.is(builds, 2, 'pokes wait for the gap');
  await new Promise((r) => setTimeout(r, 120));
  t.is(builds, 3, 'many pokes, one write');
  t.regex(readFileSync(file, 'utf8'), /"expiresAtMs": 2000/);
  expires = 3000;
  saver.poke();
  await saver.stop();
  t.regex(readFileSync(file, 'utf8'), /"expiresAtMs": 3000/, 'a pending change is written at stop');
  saver.poke();
  await new Promise((r) => setTimeout(r, 80));
  t.is(builds, 4, 'nothing after stop');
});
