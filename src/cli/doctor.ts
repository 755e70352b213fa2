/**
 * `weft doctor [--spec F] [--peer SUBNET|IP] [--json]`: run on a host, checks why its
 * containers might not reach another host's, and says so in plain words with the fix for
 * each finding. Exit 0 when nothing failed (warnings allowed), 1 when something is wrong.
 * Changes nothing; every probe is bounded (a few seconds per peer, peers probed in parallel).
 */
import type { CommandModule } from 'yargs';
import { diagnose, doctorJson, doctorOk, renderDoctor } from '../core/doctor/doctor.js';
import { handle, loadSpec, printJson, withSpec } from './common.js';
import { observeForDoctor } from './doctor-observe.js';

interface Args {
  spec: string;
  json: boolean;
  peer: string | undefined;
}

export const doctorCommand: CommandModule<object, Args> = {
  command: 'doctor',
  describe:
    "Check why containers on this host might not reach another host's, with the fix for each finding (changes nothing)",
  builder: (y) =>
    withSpec(y)
      .option('peer', {
        type: 'string',
        requiresArg: true,
        describe: 'check only this peer: its subnet, an address in it, or its public IP',
      })
      .option('json', { type: 'boolean', default: false, describe: 'print {"ok": bool, "findings": [...]}' }),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const findings = diagnose(await observeForDoctor(spec, args.peer));
    if (args.json) printJson(doctorJson(findings));
    else process.stdout.write(renderDoctor(findings));
    process.exitCode = doctorOk(findings) ? 0 : 1;
  }),
};
