/**
 * Shared wiring for commands: load the spec, turn errors into exit statuses. No logic here.
 */
import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { type NetworkConfig, checkNetworkConfig } from '../core/flannel/config-check.js';
import { SpecError, WeftError, formatProblem } from '../core/base/errors.js';
import { safeText, terminalSafeJson } from '../core/base/escape.js';
import { ConfigError, decodeNetworkConfig } from '../core/flannel/network-config.js';
import { type Spec, parseSpec } from '../core/spec/spec.js';
import { credentialWarnings } from '../adapters/credentials.js';
import { EtcdStore } from '../adapters/etcd.js';
import { configText } from '../core/fleet/store-limits.js';
import type { KeyValue } from '../core/fleet/store.js';
import { BACKENDS } from '../backends/index.js';

export const DEFAULT_SPEC = '/etc/weft/network.yaml';

export function withSpec<T>(y: Argv<T>): Argv<T & { spec: string }> {
  return y.option('spec', {
    type: 'string',
    default: DEFAULT_SPEC,
    describe: 'the network spec (YAML)',
    requiresArg: true,
  });
}

/** Read and parse the spec; a missing or invalid file is invalid input (exit 2). */
export async function loadSpec(file: string): Promise<Spec> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new SpecError([
      {
        path: '',
        message: `${file}: cannot read the spec: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      },
    ]);
  }
  return parseSpec(file, text, BACKENDS, process.env);
}

/** Print an error the way every weft command does and set the exit status. */
export function reportError(e: unknown): void {
  if (e instanceof SpecError) {
    for (const p of e.problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.exitCode = 2;
  } else if (e instanceof WeftError) {
    process.stderr.write(`weft: ${safeMessage(e.message)}\n`);
    process.exitCode = e.exitStatus;
  } else {
    process.stderr.write(
      `weft: unexpected error: ${safeMessage(e instanceof Error ? (e.stack ?? e.message) : String(e))}\n`,
    );
    process.exitCode = 1;
  }
}

/**
 * An error message for the terminal. Messages may quote etcd data (a stored config's bad value,
 * a lease's backend): each line is escaped on its own, keeping the line breaks weft itself puts
 * in a message (the stranded-lease list of `weft apply`). Sources that embed etcd text in a
 * message meant as one line escape it where they build it.
 */
export function safeMessage(message: string): string {
  return message
    .split('\n')
    .map((line) => safeText(line, 1024))
    .join('\n');
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

/** One JSON document on stdout. BigInts print as numbers; no string can steer the terminal (terminalSafeJson). */
export function printJson(doc: unknown): void {
  process.stdout.write(
    `${terminalSafeJson(JSON.stringify(doc, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v), 2))}\n`,
  );
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

/**
 * The stored config, decoded and checked; an invalid one is an E_CONFIG error whose message
 * (which quotes the stored text) is escaped onto one line.
 */
export function checkedStoredConfig(key: string, kv: KeyValue): NetworkConfig {
  try {
    return checkNetworkConfig(decodeNetworkConfig(configText(kv), BACKENDS));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    throw new WeftError('E_CONFIG', `the stored network config ${key} is invalid: ${safeText(e.message)}`, {
      cause: e,
    });
  }
}
