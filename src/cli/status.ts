/**
 * `weft status [--spec F] [--json]`: this host at a glance, read from the running daemon's
 * /status on host.listen. Exit 0 when the daemon is ready, 1 when it is not ready, does not
 * answer, or what answers is not weft (so scripts and Ansible can gate on it). The answer is
 * bounded and checked field by field before anything of it is shown (core/health/status-report.ts).
 */
import type { CommandModule } from 'yargs';
import { FOREIGN_FIX } from '../core/doctor/doctor-host.js';
import { WeftError } from '../core/base/errors.js';
import { safeText } from '../core/base/escape.js';
import { renderStatus } from '../core/health/health.js';
import { dialAddress } from '../core/spec/spec.js';
import { daemonStatus } from '../adapters/probe.js';
import { handle, loadSpec, printJson, withSpec } from './common.js';

interface Args {
  spec: string;
  json: boolean;
}

export const statusCommand: CommandModule<object, Args> = {
  command: 'status',
  describe: 'This host: lease, expiry, peers, last reconcile, drift repaired, etcd (from the running daemon)',
  builder: (y) =>
    withSpec(y).option('json', { type: 'boolean', default: false, describe: "print the daemon's status document" }),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const listen = spec.host.listen;
    if (!listen)
      throw new WeftError(
        'E_USAGE',
        `${spec.file}: host.listen is "" (disabled), so the daemon has no status endpoint to read`,
      );
    const url = `http://${dialAddress(listen)}/status`;
    const s = await daemonStatus(url, 5000);
    if (s.kind === 'silent')
      throw new WeftError(
        'E_DAEMON',
        `no weft daemon answering on ${url}: ${safeText(s.error)} (is weft running? see systemctl status weft)`,
      );
    if (s.kind !== 'answered')
      throw new WeftError(
        'E_DAEMON',
        `what answers on ${url} is not weft's status: ${s.kind === 'foreign' ? safeText(s.reason) : s.kind}; ${FOREIGN_FIX}`,
      );
    if (args.json) printJson(s.report);
    else process.stdout.write(renderStatus(s.report, Date.now()));
    if (!s.report.ready) process.exitCode = 1;
  }),
};
