/**
 * `weft config show [--spec F] [--json]`: the stored <prefix>/config as weft reads it, with
 * flannel's defaults and weft's applied. Exit 0 when weft can run on it; 1 when etcd cannot be
 * reached, the config is absent, or it is invalid (the error is shown; `--json` still prints
 * `{"valid": false, "error": ..., "config": ...}` whenever etcd answered).
 */
import type { Argv, CommandModule } from 'yargs';
import {
  type StoredConfig,
  type StoredConfigReport,
  readStoredConfig,
  renderStoredConfig,
} from '../core/config/config-view.js';
import { safeText } from '../core/base/escape.js';
import { configKey } from '../core/fleet/owner.js';
import { oversizeReason } from '../core/fleet/store-limits.js';
import { BACKENDS } from '../backends/index.js';
import { handle, loadSpec, printJson, withSpec, withStore } from './common.js';

interface Args {
  spec: string;
  json: boolean;
}

const showCommand: CommandModule<object, Args> = {
  command: 'show',
  describe: 'Show the stored network config as weft reads it (defaults applied)',
  builder: (y) =>
    withSpec(y).option('json', { type: 'boolean', default: false, describe: 'print {"valid", "error", "config"}' }),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const key = configKey(spec.etcd.prefix);
    const { kv } = await withStore(spec, (store) => store.get(key));
    if (!kv) {
      const absent: StoredConfigReport = {
        valid: false,
        error: `${key} is absent: no network config is stored`,
        config: null,
      };
      if (args.json) printJson(absent);
      process.stderr.write(
        `weft: ${safeText(absent.error ?? '')} (weft apply, or the first weft run with a network section, stores one)\n`,
      );
      process.exitCode = 1;
      return;
    }
    // Too large to have been read (core/fleet/store-limits.ts): say its size, not a JSON error about nothing.
    const stored: StoredConfig = kv.oversize
      ? {
          report: {
            valid: false,
            error: `the network config is unreadable: ${oversizeReason(kv.oversize)}`,
            config: null,
          },
        }
      : readStoredConfig(kv.value, BACKENDS);
    if (args.json) printJson(stored.report);
    else
      process.stdout.write(
        renderStoredConfig(
          key,
          kv.modRevision,
          kv.value,
          stored,
          spec.network ? { file: spec.file, config: spec.network.config } : undefined,
        ),
      );
    if (!stored.report.valid) {
      process.stderr.write(
        `weft: the stored network config ${key} is invalid: ${safeText(stored.report.error ?? '')}\n`,
      );
      process.exitCode = 1;
    }
  }),
};

export const configCommand: CommandModule<object, object> = {
  command: 'config',
  describe: 'Inspect the network config stored in etcd (weft config show)',
  builder: (y: Argv) => y.command(showCommand).demandCommand(1, 'name a config subcommand: show'),
  handler: () => undefined,
};
