/**
 * `weft leases [--spec F] [--json]`: every lease under <prefix>/subnets/, its expiry, and the
 * entries weft would quarantine (with why). Judged against the stored config, else the spec's.
 */
import type { CommandModule } from 'yargs';
import { formatIP, formatPrefix } from '../core/cidr.js';
import { type NetworkConfig, checkNetworkConfig } from '../core/config-check.js';
import { WeftError } from '../core/errors.js';
import { decodeNetworkConfig } from '../core/network-config.js';
import { configKey, decodeOwner, ownersPrefix, subnetsPrefix } from '../core/owner.js';
import { validatePeerLease } from '../core/peer-lease.js';
import type { KvStore } from '../core/store.js';
import { handle, loadSpec, printJson, withSpec, withStore } from './common.js';

interface Args { spec: string; json: boolean }

export interface LeaseRow {
  subnet: string | null;
  publicIP: string | null;
  backendType: string | null;
  vtepMAC: string | null;
  expiresAt: string | null;
  ttlSeconds: number | null;
  host: string | null;
  key: string;
  malformed: string | null;
}

async function ttls(store: KvStore, ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const queue = [...new Set(ids)].filter((id) => id !== '0');
  await Promise.all(Array.from({ length: Math.min(16, queue.length) }, async () => {
    for (let id = queue.pop(); id !== undefined; id = queue.pop()) out.set(id, await store.timeToLive(id));
  }));
  return out;
}

export const leasesCommand: CommandModule<object, Args> = {
  command: 'leases',
  describe: 'List every subnet lease in etcd (and malformed entries)',
  builder: (y) => withSpec(y).option('json', { type: 'boolean', default: false, describe: 'print a JSON array' }),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const P = spec.etcd.prefix;
    const rows = await withStore(spec, async (store) => {
      const [cfg, subs, owners] = await Promise.all([store.get(configKey(P)), store.list(subnetsPrefix(P)), store.list(ownersPrefix(P))]);
      let config: NetworkConfig | undefined = spec.network?.config;
      try { if (cfg.kv) config = checkNetworkConfig(decodeNetworkConfig(cfg.kv.value)); } catch { /* keep the spec's */ }
      if (!config) throw new WeftError('E_NOT_FOUND', `no network config: ${configKey(P)} is absent or invalid and ${spec.file} has no network section`);
      const ownerOf = new Map(owners.kvs.map((kv) => [kv.key.slice(ownersPrefix(P).length), decodeOwner(kv.value)]));
      const ttl = await ttls(store, subs.kvs.map((kv) => kv.lease));
      const now = Date.now();
      return subs.kvs.map((kv): LeaseRow => {
        const subnetKey = kv.key.slice(subnetsPrefix(P).length);
        const v = validatePeerLease(subnetKey, kv.value, config);
        const t = ttl.get(kv.lease) ?? -1;
        const owner = ownerOf.get(subnetKey);
        return {
          subnet: v.ok ? formatPrefix(v.lease.subnet) : v.subnet ? formatPrefix(v.subnet) : null,
          publicIP: v.ok ? formatIP(v.lease.attrs.publicIP) : null,
          backendType: v.ok ? v.lease.attrs.backendType ?? null : null,
          vtepMAC: v.ok ? v.lease.vxlan?.vtepMAC ?? null : null,
          expiresAt: t > 0 ? new Date(now + t * 1000).toISOString() : null,
          ttlSeconds: t > 0 ? t : null,
          host: owner ? owner.hostname || owner.hostID : null,
          key: kv.key,
          malformed: v.ok ? null : v.reason,
        };
      });
    });
    if (args.json) { printJson(rows); return; }
    const table = [['SUBNET', 'PUBLIC-IP', 'BACKEND', 'VTEP-MAC', 'EXPIRES-IN', 'HOST']];
    for (const r of rows.filter((x) => !x.malformed)) {
      table.push([r.subnet ?? '', r.publicIP ?? '', r.backendType ?? '-', r.vtepMAC ?? '-', r.ttlSeconds === null ? 'never (no etcd lease)' : `${r.ttlSeconds}s`, r.host ?? '(flanneld or unowned)']);
    }
    const widths = table[0]?.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length))) ?? [];
    const lines = table.map((row) => row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
    const bad = rows.filter((x) => x.malformed);
    if (bad.length > 0) lines.push('', `MALFORMED (${bad.length}, ignored by weft):`, ...bad.map((r) => `  ${r.key}: ${r.malformed ?? ''}`));
    process.stdout.write(`${lines.join('\n')}\n`);
  }),
};
