/**
 * `weft validate [--spec F] [--json | --paths]`: parse and check the spec, no network access.
 * `--paths` prints what `dpkg --purge` removes and keeps for this spec (core/spec/purge-paths.ts).
 */
import type { CommandModule } from 'yargs';
import { formatIP, formatPrefix } from '../core/net/cidr.js';
import { capacityOf } from '../core/flannel/config-check.js';
import { derivedView } from '../core/config/config-view.js';
import { formatDuration } from '../core/base/duration.js';
import { purgePaths } from '../core/spec/purge-paths.js';
import { handle, loadSpec, printJson, warnAboutCredentials, withSpec } from './common.js';
import { BACKENDS } from '../backends/index.js';

interface Args {
  spec: string;
  json: boolean;
  paths: boolean;
}

export const validateCommand: CommandModule<object, Args> = {
  command: 'validate',
  describe: 'Parse and check the spec (no network access)',
  builder: (y) =>
    withSpec(y)
      .option('json', {
        type: 'boolean',
        default: false,
        describe: 'print the flannel config and derived values as JSON',
      })
      .option('paths', {
        type: 'boolean',
        default: false,
        describe: 'print the files a package purge removes and keeps for this spec',
      }),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    if (args.paths) {
      process.stdout.write(
        purgePaths(spec)
          .map((l) => `${l}\n`)
          .join(''),
      );
      return;
    }
    await warnAboutCredentials(spec);
    const net = spec.network;
    if (args.json) {
      printJson({
        config: net ? (JSON.parse(net.configJson) as unknown) : null,
        derived: net ? derivedView(net.config) : null,
      });
      return;
    }
    const lines = [`${spec.file}: valid`];
    if (net) {
      const { ipv4: v4, ipv6: v6 } = net.config;
      const be = BACKENDS.get(net.backendType)?.describe?.(net.config.backend.options) ?? net.backendType;
      lines.push(`  network   ${v4 ? formatPrefix(v4.network) : 'IPv6 only (ipv4: false)'}, backend ${be}`);
      if (v4)
        lines.push(
          `  subnets   /${v4.subnetLen} from ${formatIP(v4.subnetMin)} to ${formatIP(v4.subnetMax)}: ${capacityOf(v4)} hosts`,
        );
      if (v6)
        lines.push(
          `  ipv6      ${formatPrefix(v6.network)}: /${v6.subnetLen} subnets from ${formatIP(v6.subnetMin)} to ${formatIP(v6.subnetMax)}, ${capacityOf(v6)} hosts`,
        );
    } else {
      lines.push('  network   (none: hosts use the config already in etcd)');
    }
    lines.push(`  etcd      ${spec.etcd.endpoints.join(', ')} prefix ${spec.etcd.prefix}`);
    lines.push(
      `  lease     ttl ${formatDuration(spec.host.leaseTTLSeconds * 1000)}, renewed ${formatDuration(spec.host.leaseRenewMarginSeconds * 1000)} before expiry`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  }),
};
