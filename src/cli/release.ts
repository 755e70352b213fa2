/**
 * `weft release [--spec F]`: decommission this host: delete its lease (compare on ownership)
 * so the subnet returns to the pool and peers remove their routes now, not in 24 hours. A
 * lease is this host's only when its owner record is borne out by the lease's value and this
 * host's address, or by this host's own subnet file or cached state (core/fleet/own-lease.ts): a
 * forged owner record naming this host is reported and left alone.
 */
import { rm } from 'node:fs/promises';
import type { CommandModule } from 'yargs';
import { formatPrefix } from '../core/net/cidr.js';
import { safeText } from '../core/base/escape.js';
import { heldKeysFromFiles, notOwnReason } from '../core/fleet/own-lease.js';
import { readTextIfExists } from '../adapters/files.js';
import { hostIdentity } from '../adapters/identity.js';
import { silentLogger } from '../adapters/log.js';
import { discoverHost } from '../agent/bootstrap.js';
import { releaseOwnLeases } from '../agent/lease-release.js';
import { stateFilePath } from '../agent/state-file.js';
import { handle, loadSpec, withSpec, withStore } from './common.js';

interface Args {
  spec: string;
}

export const releaseCommand: CommandModule<object, Args> = {
  command: 'release',
  describe: "Delete this host's lease (decommissioning)",
  builder: (y) => withSpec(y),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const identity = await hostIdentity({ stateDir: spec.host.stateDir });
    const heldKeys = heldKeysFromFiles(
      await readTextIfExists(spec.host.subnetFile),
      await readTextIfExists(stateFilePath(spec.host.stateDir)),
    );
    // The address is one piece of evidence among others: a host being taken apart may have lost its interface already.
    const facts = await discoverHost(spec, silentLogger).catch(() => undefined);
    const self = {
      heldKeys,
      ...(facts ? { publicIP: facts.publicIP, ...(facts.publicIPv6 ? { publicIPv6: facts.publicIPv6 } : {}) } : {}),
    };
    await withStore(spec, async (store) => {
      const { released, refused } = await releaseOwnLeases(
        { store, prefix: spec.etcd.prefix, identity, log: silentLogger },
        self,
      );
      // The cached state names the released lease: a reboot with etcd down must not bring the
      // host back up on a subnet that may now be another host's. (Kept when all it could have
      // named was refused: it is evidence for the next try.)
      if (released || refused.length === 0) await rm(stateFilePath(spec.host.stateDir), { force: true });
      for (const l of refused) process.stderr.write(`not released: ${safeText(l.kv.key)}: ${notOwnReason(l, self)}\n`);
      process.stdout.write(
        released
          ? `released ${formatPrefix(released)}\n`
          : `nothing to release: no lease in etcd is owned by this host (${identity.hostID})\n`,
      );
    });
  }),
};
