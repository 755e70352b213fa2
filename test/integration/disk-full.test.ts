// The subnet file's disk is full: a write fails cleanly (E_IO, retryable), the previous file is
// left whole, no temp file is left behind, and the next write succeeds once there is room.
// A real full filesystem: a 64 KiB tmpfs mounted on a scratch directory (root only).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WeftError } from '../../src/core/base/errors.js';
import { writeFileAtomic, writeIfChanged } from '../../src/adapters/files.js';

// Mounting the tmpfs needs root: without it the test is reported as skipped, never as passed.
const asRoot = process.getuid?.() === 0 ? test : test.skip;

asRoot('a full disk never leaves a partial subnet file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-full-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', dir]);
  t.teardown(() => {
    try {
      execFileSync('umount', [dir]);
    } catch {
      /* gone */
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const file = join(dir, 'subnet.env');
  const old = 'FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';
  await writeFileAtomic(file, old);
  // Fill the filesystem to the last byte.
  try {
    writeFileSync(join(dir, 'filler'), Buffer.alloc(1024 * 1024));
  } catch {
    /* ENOSPC: full now */
  }
  const next = old.replace('198.18.5.1', '198.18.6.1').repeat(200); // needs more than the few bytes left
  const e = await t.throwsAsync(writeIfChanged(file, next));
  t.true(e instanceof WeftError && e.code === 'E_IO' && e.retryable, String(e));
  t.regex(e.message, /ENOSPC|no space/i);
  t.is(readFileSync(file, 'utf8'), old, 'the old file is whole');
  t.deepEqual(readdirSync(dir).sort(), ['filler', 'subnet.env'], 'no temp file left behind');
  rmSync(join(dir, 'filler'));
  t.true(await writeIfChanged(file, next));
  t.is(readFileSync(file, 'utf8'), next);
});
