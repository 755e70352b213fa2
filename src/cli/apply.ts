/**
 * `weft apply [--spec F] [--dry-run] [--force]`: store the spec's network in <prefix>/config
 * with a compare-and-swap. First line of stdout is `unchanged: ...` or `changed: ...` (or
 * `would change: ...` with --dry-run), so an Ansible task can report `changed` honestly.
 */
import type { CommandModule } from 'yargs';
import { joinListing } from '../core/fleet/acquire.js';
import { planApply } from '../core/config/apply.js';
import type { FleetEffects } from '../core/config/config-change.js';
import { WeftError } from '../core/base/errors.js';
import { safeText } from '../core/base/escape.js';
import { configKey, ownersPrefix, subnetsPrefix } from '../core/fleet/owner.js';
import { handle, loadSpec, withSpec, withStore } from './common.js';
import { fleetLimits } from '../core/fleet/store-limits.js';
import { BACKENDS } from '../backends/index.js';

interface Args {
  spec: string;
  'dry-run': boolean;
  force: boolean;
}

/**
 * What the change does to running hosts, as `# ` lines after the difference: each kind of
 * change (applied live by every weft agent, no restart, at its pace), the outputs that change on every host,
 * whether Docker must be restarted, and the hosts (lease keys) that move.
 */
function effectLines(e: FleetEffects, force: boolean): string[] {
  const lines = [
    '# effect on running hosts: applied live by every weft agent (no weft restart), once stored unchanged for its host.configHoldDown (default 5s); not on hosts with host.followConfig: false (at their next start)',
  ];
  for (const x of e.effects) lines.push(`#   ${x}`);
  lines.push(`# outputs that change on every host: ${e.outputs.length > 0 ? e.outputs.join('; ') : 'none'}`);
  lines.push(
    e.dockerRestart
      ? '# Docker (or Podman) must be restarted on each host for its bridge to use them (host.onOutputsChanged can do it)'
      : '# no Docker restart needed',
  );
  if (e.moves.length === 0) lines.push('# hosts that move: none');
  else {
    lines.push(`# hosts that move to a new subnet${force ? '' : ' (needs --force)'}: ${e.moves.length}`);
    for (const m of e.moves) lines.push(`#   ${safeText(m)}`);
  }
  return lines;
}

export const applyCommand: CommandModule<object, Args> = {
  command: 'apply',
  describe: "Store the spec's network in <prefix>/config (compare-and-swap)",
  builder: (y) =>
    withSpec(y)
      .option('dry-run', { type: 'boolean', default: false, describe: 'show the difference, write nothing' })
      .option('force', { type: 'boolean', default: false, describe: 'write even if live leases would be stranded' }),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const net = spec.network;
    if (!net) throw new WeftError('E_USAGE', `${spec.file}: has no network section; nothing to apply`);
    const key = configKey(spec.etcd.prefix);
    await withStore(spec, async (store) => {
      const { kv } = await store.get(key);
      const [subs, owners] = await Promise.all([
        store.list(subnetsPrefix(spec.etcd.prefix), fleetLimits(spec.host.maxPeers)),
        store.list(ownersPrefix(spec.etcd.prefix), fleetLimits(spec.host.maxPeers)),
      ]);
      const plan = planApply(
        kv?.value,
        net.config,
        joinListing(subs.kvs, owners.kvs, subnetsPrefix(spec.etcd.prefix), ownersPrefix(spec.etcd.prefix)),
        BACKENDS,
      );
      if (plan.kind === 'unchanged') {
        process.stdout.write(`unchanged: ${key} already matches ${spec.file}\n`);
        return;
      }
      // The stored side of the difference, the stranded leases and the stored config's error
      // quote etcd data: each line is escaped.
      const out: string[] = [];
      if (plan.storedInvalid !== undefined) out.push(`# the stored config is invalid: ${safeText(plan.storedInvalid)}`);
      out.push(...plan.diff.map((l) => safeText(l)));
      if (plan.effects) out.push(...effectLines(plan.effects, args.force));
      const stranded = plan.stranded.map((l) => safeText(l));
      if (plan.stranded.length > 0 && !args.force) {
        process.stdout.write(`${out.join('\n')}\n`);
        throw new WeftError(
          'E_REFUSED',
          `refusing to change ${key}: ${stranded.length} live lease(s) would be stranded:\n  ${stranded.join('\n  ')}\n(hosts would keep subnets the new config does not allow; use --force to write anyway)`,
        );
      }
      if (args['dry-run']) {
        process.stdout.write(
          `would change: ${key}${plan.stranded.length ? ` (stranding ${plan.stranded.length} lease(s))` : ''}\n${out.join('\n')}\n`,
        );
        return;
      }
      const compare = kv
        ? { key, target: 'mod' as const, equals: kv.modRevision }
        : { key, target: 'version' as const, equals: 0 };
      const res = await store.txn([compare], [{ op: 'put', key, value: net.configJson }]);
      if (!res.succeeded)
        throw new WeftError('E_CONFLICT', `${key} changed while applying; nothing written, run weft apply again`);
      process.stdout.write(`changed: ${key} (revision ${res.revision})\n${out.join('\n')}\n`);
    });
  }),
};
