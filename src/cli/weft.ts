#!/usr/bin/env node
/** The `weft` executable: wires the commands into yargs. Usage errors exit 2. */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { applyCommand } from './apply.js';
import { configCommand } from './config.js';
import { dockerOptsCommand } from './docker-opts.js';
import { doctorCommand } from './doctor.js';
import { leasesCommand } from './leases.js';
import { planCommand } from './plan.js';
import { releaseCommand } from './release.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { validateCommand } from './validate.js';
import { wireguardCommand } from './wireguard.js';
import { versionText } from '../version.js';
import { backendTypesText } from '../backends/index.js';

await yargs(hideBin(process.argv))
  .scriptName('weft')
  .usage(`$0 <command> [options]\n\nA flannel-compatible network fabric agent (etcd v3; ${backendTypesText('and')}).`)
  .command(validateCommand)
  .command(applyCommand)
  .command(configCommand)
  .command(runCommand)
  .command(planCommand)
  .command(leasesCommand)
  .command(statusCommand)
  .command(doctorCommand)
  .command(releaseCommand)
  .command(dockerOptsCommand)
  .command(wireguardCommand)
  .demandCommand(1, 'name a command (see weft --help)')
  .strict()
  .version(versionText())
  .help()
  .alias('help', 'h')
  .wrap(Math.min(100, process.stdout.columns || 100))
  .fail((msg, err) => {
    if ((err as Error | undefined) instanceof Error) throw err;
    process.stderr.write(`weft: ${msg}\nRun 'weft --help' for usage.\n`);
    process.exit(2);
  })
  .parseAsync();
