/**
 * Shared wiring for commands: load the spec, turn errors into exit statuses. No logic here.
 */
import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { SpecError, WeftError, formatProblem } from '../core/errors.js';
import { type Spec, parseSpec } from '../core/spec.js';
import { credentialWarnings } from '../adapters/credentials.js';
import { EtcdStore } from '../adapters/etcd.js';

export const DEFAULT_SPEC = '/etc/weft/network.yaml';

export function withSpec<T>(y: Argv<T>): Argv<T & { spec: string }> {
  return y.option('spec', { type: 'string', default: DEFAULT_SPEC, describe: 'the network spec (YAML)', requiresArg: true });
}

/** Read and parse the spec; a missing or invalid file is invalid input (exit 2). */
export async function loadSpec(file: string): Promise<Spec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SpecError([{ path: '', message: `${file}: cannot read the spec: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` }]);
  }
  return parseSpec(file, text, process.env);
}

/** Print an error the way every weft command does and set the exit status. */
export function reportError(e: unknown): void {
  if (e instanceof SpecError) {
    for (const p of e.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.exitCode = 2;
  } else if (e instanceof WeftError) {
    process.stderr.write(`weft: ${e.message}\n`);
    process.exitCode = e.exitStatus;
  } else {
    process.stderr.write(`weft: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  }
}

/** Warn on stderr (one line each) about etcd credential files others can read. */
export async function warnAboutCredentials(spec: Spec): Promise<void> {
  for (const w of await credentialWarnings(spec.etcd)) process.stderr.write(`weft: warning: ${w.message}\n`);
}

/** Wrap a command handler so every failure ends in reportError. */
export function handle<A>(fn: (args: A) => Promise<void>): (args: A) => Promise<void> {
  return async (args: A) => {
    try {
      await fn(args);
    } catch (e) {
      reportError(e);
    }
  };
}

/** One JSON document on stdout. BigInts print as numbers. */
export function printJson(doc: unknown): void {
  process.stdout.write(`${JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v), 2)}\n`);
}

/** Open the etcd store for a one-shot command, run `fn`, always close. Calls time out in 4 s. */
export async function withStore<T>(spec: Spec, fn: (store: EtcdStore) => Promise<T>): Promise<T> {
  await warnAboutCredentials(spec);
  const store = await EtcdStore.connect(spec.etcd, { callTimeoutMs: 4000 });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
