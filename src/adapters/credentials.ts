/**
 * The etcd secrets on disk (the password file and the client key) must be readable by their
 * owner only. weft does not refuse to start over it (an operator may be mid-rollout), but it
 * says so, naming the file and the fix, at `weft run` start and in every one-shot command.
 * The program weft runs as root (host.onOutputsChanged) and the WireGuard preshared key file
 * are stricter: a file others could change (or read, for the key) stops `weft run` at start.
 */
import { realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { safeText } from '../core/base/escape.js';
import type { EtcdSpec } from '../core/spec/spec.js';

/** One credential file readable by group or others. */
export interface CredentialWarning {
  readonly setting: 'etcd.passwordFile' | 'etcd.keyFile';
  readonly file: string;
  /** Permission bits, e.g. 0o644. */
  readonly mode: number;
  /** One line: the file, its mode and the fix. */
  readonly message: string;
}

/** A warning when `file` exists and group or others may read it; undefined otherwise. */
export async function credentialFileWarning(
  setting: CredentialWarning['setting'],
  file: string,
): Promise<CredentialWarning | undefined> {
  let mode: number;
  try {
    mode = (await stat(file)).mode & 0o777;
  } catch {
    return undefined; // missing or unreadable: connecting to etcd reports it
  }
  if ((mode & 0o044) === 0) return undefined;
  const who = (mode & 0o040 ? ['group'] : []).concat(mode & 0o004 ? ['others'] : []).join(' and ');
  const name = safeText(file);
  return {
    setting,
    file,
    mode,
    message: `${setting} ${name} is readable by ${who} (mode ${mode.toString(8).padStart(4, '0')}); fix: chmod 600 ${name}`,
  };
}

/** The warnings for the spec's etcd password file and client key. */
export async function credentialWarnings(etcd: EtcdSpec): Promise<CredentialWarning[]> {
  const files: [CredentialWarning['setting'], string | undefined][] = [
    ['etcd.passwordFile', etcd.passwordFile],
    ['etcd.keyFile', etcd.keyFile],
  ];
  const found = await Promise.all(
    files.map(async ([setting, file]) => (file === undefined ? undefined : credentialFileWarning(setting, file))),
  );
  return found.filter((w): w is CredentialWarning => w !== undefined);
}

/** The files weft runs as root or reads a secret from, checked at start (and the hook before each run). */
export type PrivilegedSetting = 'host.onOutputsChanged' | 'host.wireguardPSKFile';

/**
 * Owned by root (or by the user weft runs as) and not writable by group or others; a sticky
 * directory (/tmp) may be: there only a file's owner can rename or delete it.
 */
function unsafeOwner(what: string, st: { uid: number; mode: number }, sticky: 'sticky ok' | 'no'): string | undefined {
  const me = process.getuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== me) return `${what} is owned by uid ${st.uid}, not root`;
  const writable = (st.mode & 0o020 ? ['group'] : []).concat(st.mode & 0o002 ? ['others'] : []);
  if (writable.length === 0 || (sticky === 'sticky ok' && st.mode & 0o1000)) return undefined;
  return `${what} is writable by ${writable.join(' and ')} (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
}

/**
 * Why `file` is not safe for `setting`, or undefined when it is: it must exist, be a regular
 * file owned by root that group and others cannot write, in directories only root can change
 * (a sticky directory such as /tmp is fine), and for a secret not readable by others. Anyone
 * who could change the hook would run code as root; anyone who could read the PSK could
 * decrypt the fabric's traffic (with the keys).
 */
export async function privilegedFileProblem(
  setting: PrivilegedSetting,
  file: string,
  o: { readonly secret: boolean },
): Promise<string | undefined> {
  const name = safeText(file);
  let real: string;
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    real = await realpath(file);
    st = await stat(real);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return `${setting} ${name} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`}`;
  }
  if (!st.isFile()) return `${setting} ${name} is not a regular file`;
  const own = unsafeOwner(`${setting} ${name}`, st, 'no');
  if (own) return `${own}; fix: chown root:root ${name} && chmod go-w ${name}`;
  if (o.secret && st.mode & 0o004)
    return `${setting} ${name} is readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); fix: chmod o-rwx ${name}`;
  for (let dir = dirname(real); ; dir = dirname(dir)) {
    const d = await stat(dir);
    const bad = unsafeOwner(`its directory ${safeText(dir)}`, d, 'sticky ok');
    if (bad)
      return `${setting} ${name}: ${bad}; anyone who can write there can replace it; fix: chmod go-w ${safeText(dir)}`;
    if (dir === '/') return undefined;
  }
}

/** The spec's hook and preshared key file as a list of problems (empty: all safe). */
export async function privilegedFileProblems(host: {
  readonly onOutputsChanged?: string;
  readonly wireguardPSKFile?: string;
}): Promise<string[]> {
  const found = await Promise.all([
    host.onOutputsChanged === undefined
      ? undefined
      : privilegedFileProblem('host.onOutputsChanged', host.onOutputsChanged, { secret: false }),
    host.wireguardPSKFile === undefined
      ? undefined
      : privilegedFileProblem('host.wireguardPSKFile', host.wireguardPSKFile, { secret: true }),
  ]);
  return found.filter((p): p is string => p !== undefined);
}
