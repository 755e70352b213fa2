/**
 * `weft status [--spec F] [--json]`: this host at a glance, read from the running daemon's
 * /status on host.listen. Exit 0 when the daemon is ready, 1 when it is not ready or does not
 * answer (so scripts and Ansible can gate on it).
 */
import type { CommandModule } from 'yargs';
import { WeftError } from '../core/errors.js';
import { type StatusReport, renderStatus } from '../core/health.js';
import { dialAddress } from '../core/spec.js';
import { handle, loadSpec, printJson, withSpec } from './common.js';

interface Args { spec: string; json: boolean }

export const statusCommand: CommandModule<object, Args> = {
  command: 'status',
  describe: 'This host: lease, expiry, peers, last reconcile, drift repaired, etcd (from the running daemon)',
  builder: (y) => withSpec(y).option('json', { type: 'boolean', default: false, describe: 'print the daemon\'s status document' }),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const listen = spec.host.listen;
    if (!listen) throw new WeftError('E_USAGE', `${spec.file}: host.listen is "" (disabled), so the daemon has no status endpoint to read`);
    const url = `http://${dialAddress(listen)}/status`;
    let report: StatusReport;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      report = (await res.json()) as StatusReport;
    } catch (e) {
      const why = e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);
      throw new WeftError('E_DAEMON', `no weft daemon answering on ${url}: ${why} (is weft running? see systemctl status weft)`);
    }
    if (args.json) printJson(report);
    else process.stdout.write(renderStatus(report, Date.now()));
    if (!report.ready) process.exitCode = 1;
  }),
};
