/**
 * The etcd secrets on disk (the password file and the client key) must be readable by their
 * owner only. weft does not refuse to start over it (an operator may be mid-rollout), but it
 * says so, naming the file and the fix, at `weft run` start and in every one-shot command.
 */
import { stat } from 'node:fs/promises';
import { safeText } from '../core/escape.js';
import type { EtcdSpec } from '../core/spec.js';

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
export async function credentialFileWarning(setting: CredentialWarning['setting'], file: string): Promise<CredentialWarning | undefined> {
  let mode: number;
  try {
    mode = (await stat(file)).mode & 0o777;
  } catch {
    return undefined; // missing or unreadable: connecting to etcd reports it
  }
  if ((mode & 0o044) === 0) return undefined;
  const who = (mode & 0o040 ? ['group'] : []).concat(mode & 0o004 ? ['others'] : []).join(' and ');
  const name = safeText(file);
  return { setting, file, mode, message: `${setting} ${name} is readable by ${who} (mode ${mode.toString(8).padStart(4, '0')}); fix: chmod 600 ${name}` };
}

/** The warnings for the spec's etcd password file and client key. */
export async function credentialWarnings(etcd: EtcdSpec): Promise<CredentialWarning[]> {
  const files: [CredentialWarning['setting'], string | undefined][] = [['etcd.passwordFile', etcd.passwordFile], ['etcd.keyFile', etcd.keyFile]];
  const found = await Promise.all(files.map(async ([setting, file]) => (file === undefined ? undefined : credentialFileWarning(setting, file))));
  return found.filter((w): w is CredentialWarning => w !== undefined);
}
