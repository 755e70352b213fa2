/**
 * `weft release [--spec F]`: decommission this host: delete its lease (compare on ownership)
 * so the subnet returns to the pool and peers remove their routes now, not in 24 hours.
 */
import { rm } from 'node:fs/promises';
import type { CommandModule } from 'yargs';
import { formatPrefix } from '../core/cidr.js';
import { hostIdentity } from '../adapters/identity.js';
import { silentLogger } from '../adapters/log.js';
import { LeaseKeeper } from '../agent/lease-keeper.js';
import { stateFilePath } from '../agent/state-file.js';
import { handle, loadSpec, withSpec, withStore } from './common.js';

interface Args { spec: string }

export const releaseCommand: CommandModule<object, Args> = {
  command: 'release',
  describe: "Delete this host's lease (decommissioning)",
  builder: (y) => withSpec(y),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const identity = await hostIdentity({ stateDir: spec.host.stateDir });
    await withStore(spec, async (store) => {
      const keeper = new LeaseKeeper({ store, prefix: spec.etcd.prefix, identity: () => identity, ttlSeconds: spec.host.leaseTTLSeconds, clock: Date, rng: Math.random, log: silentLogger });
      const released = await keeper.release();
      // The cached state names the released lease: a reboot with etcd down must not bring the
      // host back up on a subnet that may now be another host's.
      await rm(stateFilePath(spec.host.stateDir), { force: true });
      process.stdout.write(released ? `released ${formatPrefix(released)}\n` : `nothing to release: no lease in etcd is owned by this host (${identity.hostID})\n`);
    });
  }),
};
