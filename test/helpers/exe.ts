/**
 * The standalone executable (dist/weft, scripts/build-exe.mjs) and the Debian package
 * (scripts/build-deb.mjs), built at most once per test run and shared by the test files that
 * use them: reused while newer than the compiled CLI, built under a lock otherwise (ava runs
 * test files in parallel processes).
 */
import { existsSync, mkdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, WEFT } from './cli.js';
import { run, until } from './procs.js';

export const EXE = join(REPO, 'dist/weft');

/** Run `fn` holding a lock directory (mkdir is atomic); stale locks older than 10 min are broken. */
export async function withLock<T>(lock: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  await until(
    () => {
      try {
        mkdirSync(lock);
        return true;
      } catch {
        try {
          if (Date.now() - statSync(lock).mtimeMs > 600_000) rmdirSync(lock);
        } catch {
          /* gone */
        }
        return false;
      }
    },
    timeoutMs,
    200,
    `the lock ${lock}`,
  );
  try {
    return await fn();
  } finally {
    rmdirSync(lock);
  }
}

const fresh = (file: string): boolean => existsSync(file) && statSync(file).mtimeMs >= statSync(WEFT).mtimeMs;

/** dist/weft, built now unless already newer than the compiled CLI. */
export async function ensureExe(): Promise<string> {
  if (fresh(EXE)) return EXE;
  mkdirSync(join(REPO, 'dist'), { recursive: true });
  return withLock(join(REPO, 'dist/.build-exe.lock'), 180_000, async () => {
    if (fresh(EXE)) return EXE;
    const r = await run(process.execPath, [join(REPO, 'scripts/build-exe.mjs'), EXE], {
      cwd: REPO,
      timeoutMs: 170_000,
    });
    if (r.code !== 0) throw new Error(`build-exe failed:\n${r.out}`);
    return EXE;
  });
}

/** Build a .deb of dist/weft with this version into `outDir`; returns its path. */
export async function buildDeb(version: string, outDir: string, opts: { fast?: boolean } = {}): Promise<string> {
  const exe = await ensureExe();
  const r = await run(
    process.execPath,
    [
      join(REPO, 'scripts/build-deb.mjs'),
      '--version',
      version,
      '--out',
      outDir,
      '--exe',
      exe,
      ...(opts.fast ? ['--fast'] : []),
    ],
    { cwd: REPO, timeoutMs: 170_000 },
  );
  if (r.code !== 0) throw new Error(`build-deb failed:\n${r.out}`);
  const m = /built (\S+\.deb)/.exec(r.stdout);
  if (!m?.[1]) throw new Error(`build-deb printed no package:\n${r.out}`);
  return m[1];
}
