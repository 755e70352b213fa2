/**
 * `weft leases [--spec F] [--json]`: every lease under <prefix>/subnets/ (both halves of a
 * dual-stack key: IPv4 and IPv6 subnet, PublicIP and PublicIPv6, both VTEP MACs), its expiry,
 * and its status: ok, stranded (does not fit the network config) or quarantined (with why).
 * Judged against the stored config, else the spec's.
 */
import type { CommandModule } from 'yargs';
import type { NetworkConfig } from '../core/flannel/config-check.js';
import { WeftError } from '../core/base/errors.js';
import { configKey, decodeOwner, ownersPrefix, subnetsPrefix } from '../core/fleet/owner.js';
import { leaseRows, renderLeaseTable } from '../core/fleet/lease-report.js';
import type { KvStore } from '../core/fleet/store.js';
import { checkedStoredConfig, handle, loadSpec, printJson, withSpec, withStore } from './common.js';
import { fleetLimits } from '../core/fleet/store-limits.js';
import { BACKENDS } from '../backends/index.js';

interface Args {
  spec: string;
  json: boolean;
}

async function ttls(store: KvStore, ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const queue = [...new Set(ids)].filter((id) => id !== '0');
  await Promise.all(
    Array.from({ length: Math.min(16, queue.length) }, async () => {
      for (let id = queue.pop(); id !== undefined; id = queue.pop()) out.set(id, await store.timeToLive(id));
    }),
  );
  return out;
}

export const leasesCommand: CommandModule<object, Args> = {
  command: 'leases',
  describe: 'List every subnet lease in etcd: programmed, stranded or quarantined',
  builder: (y) => withSpec(y).option('json', { type: 'boolean', default: false, describe: 'print a JSON array' }),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const P = spec.etcd.prefix;
    const rows = await withStore(spec, async (store) => {
      const [cfg, subs, owners] = await Promise.all([
        store.get(configKey(P)),
        store.list(subnetsPrefix(P), fleetLimits(spec.host.maxPeers)),
        store.list(ownersPrefix(P), fleetLimits(spec.host.maxPeers)),
      ]);
      let config: NetworkConfig | undefined = spec.network?.config;
      try {
        if (cfg.kv) config = checkedStoredConfig(configKey(P), cfg.kv);
      } catch (e) {
        if (!(e instanceof WeftError)) throw e;
        if (config)
          process.stderr.write(`weft: warning: ${e.message}; judging the leases against ${spec.file}'s network\n`);
      }
      if (!config)
        throw new WeftError(
          'E_NOT_FOUND',
          `no network config: ${configKey(P)} is absent or invalid and ${spec.file} has no network section`,
        );
      const ownerOf = new Map(owners.kvs.map((kv) => [kv.key.slice(ownersPrefix(P).length), decodeOwner(kv.value)]));
      const ttl = await ttls(
        store,
        subs.kvs.map((kv) => kv.lease),
      );
      const now = Date.now();
      return leaseRows(
        subs.kvs.map((kv) => {
          const subnetKey = kv.key.slice(subnetsPrefix(P).length);
          return { subnetKey, kv, ttlSeconds: ttl.get(kv.lease) ?? -1, owner: ownerOf.get(subnetKey) };
        }),
        config,
        now,
        BACKENDS,
      );
    });
    if (args.json) {
      printJson(rows);
      return;
    }
    process.stdout.write(renderLeaseTable(rows));
  }),
};
