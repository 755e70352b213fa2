/**
 * Files, written atomically: a temp file in the same directory, fsync, chmod to the exact mode
 * (umask does not apply), rename over the target, fsync the directory. A reader sees the old
 * content or the new, never a partial file; a failed write leaves the old file untouched.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { WeftError } from '../core/base/errors.js';

/** Read a text file; `undefined` when it does not exist. Other failures are E_IO. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WeftError('E_IO', `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Write `content` to `path` atomically with `mode` (default 0644), creating parent dirs (0755). */
export async function writeFileAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  const dir = dirname(path);
  const tmp = `${dir}/.${path.slice(dir.length + 1)}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(content, 'utf8');
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new WeftError('E_IO', `cannot write ${path}: ${(e as Error).message}`, { cause: e, retryable: true });
  }
}

/** Write only when the content differs. Returns true when the file was (re)written. */
export async function writeIfChanged(path: string, content: string, mode = 0o644): Promise<boolean> {
  if ((await readTextIfExists(path)) === content) return false;
  await writeFileAtomic(path, content, mode);
  return true;
}
