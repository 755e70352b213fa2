/**
 * `weft plan [--spec F]`: what a reconcile pass would change on this host, as the iproute2 and
 * iptables-restore lines it would run, changing nothing. Reads etcd and the kernel only.
 */
import type { CommandModule } from 'yargs';
import { halvesOf, joinListing } from '../core/fleet/acquire.js';
import type { NetworkConfig } from '../core/flannel/config-check.js';
import { describeRoute } from '../core/datapath/datapath.js';
import { WeftError } from '../core/base/errors.js';
import { safeText } from '../core/base/escape.js';
import { Fleet } from '../core/fleet/fleet.js';
import { decodeLeaseAttrs } from '../core/flannel/lease.js';
import { publishedView } from '../core/flannel/backend-codec.js';
import { wireguardKeysOfLease } from '../agent/wireguard-keys.js';
import { configKey, ownersPrefix, subnetsPrefix } from '../core/fleet/owner.js';
import { renderOp } from '../core/datapath/plan.js';
import { BACKENDS, backendFor } from '../backends/index.js';
import { hostIdentity } from '../adapters/identity.js';
import { supportsRandomFully } from '../adapters/iptables.js';
import { silentLogger } from '../adapters/log.js';
import { discoverHost, kernelHost } from '../agent/bootstrap.js';
import { Reconciler } from '../agent/reconciler.js';
import { checkedStoredConfig, handle, loadSpec, withSpec, withStore } from './common.js';
import { fleetLimits } from '../core/fleet/store-limits.js';

interface Args {
  spec: string;
}

export const planCommand: CommandModule<object, Args> = {
  command: 'plan',
  describe: 'Show what a reconcile pass would change on this host (changes nothing)',
  builder: (y) => withSpec(y),
  handler: handle<Args>(async (args) => {
    const spec = await loadSpec(args.spec);
    const P = spec.etcd.prefix;
    const identity = await hostIdentity({ stateDir: spec.host.stateDir });
    const { config, listed, subs } = await withStore(spec, async (store) => {
      const [cfg, subs, owners] = await Promise.all([
        store.get(configKey(P)),
        store.list(subnetsPrefix(P), fleetLimits(spec.host.maxPeers)),
        store.list(ownersPrefix(P), fleetLimits(spec.host.maxPeers)),
      ]);
      const config: NetworkConfig | undefined = cfg.kv
        ? checkedStoredConfig(configKey(P), cfg.kv)
        : spec.network?.config;
      if (!config)
        throw new WeftError(
          'E_NOT_FOUND',
          `no network config: ${configKey(P)} is absent and ${spec.file} has no network section`,
        );
      return { config, listed: joinListing(subs.kvs, owners.kvs, subnetsPrefix(P), ownersPrefix(P)), subs: subs.kvs };
    });
    const own = listed.find(
      (l) =>
        l.owner !== undefined &&
        [identity.hostID, ...identity.formerIDs].includes(l.owner.hostID) &&
        (l.subnet ?? l.subnetV6),
    );
    if (!own) {
      process.stdout.write(
        `this host (${identity.hostID}) holds no lease under ${subnetsPrefix(P)}: weft run would acquire one first\n`,
      );
      return;
    }
    const backend = backendFor(config.backend.type);
    const facts = await discoverHost(spec, silentLogger);
    // What this host's lease publishes (its MACs, its WireGuard key), as its backend reads it.
    const attrs = decodeLeaseAttrs(own.kv.value);
    const published = attrs.ok ? publishedView(backend.lease, attrs.value) : {};
    const wireguard = wireguardKeysOfLease(spec, backend.wireguard?.(config), published.lease?.publicKey);
    const fleet = new Fleet(subnetsPrefix(P), config, BACKENDS, halvesOf(own), spec.host.maxPeers);
    for (const kv of subs) fleet.update(kv.key, kv);
    const r = new Reconciler({ host: kernelHost, log: silentLogger, clock: Date });
    const report = await r.preview({
      backend,
      config,
      facts,
      mtu: backend.mtu(config, facts, spec.host.mtu),
      ...(config.ipv4 && own.subnet ? { v4: { network: config.ipv4.network, subnet: own.subnet } } : {}),
      ...(config.ipv6 && own.subnetV6 ? { v6: { network: config.ipv6.network, subnet: own.subnetV6 } } : {}),
      vtepMAC: published.v4?.vtepMAC ?? '',
      ...(published.v6?.vtepMAC !== undefined ? { vtepMACv6: published.v6.vtepMAC } : {}),
      ipMasq: spec.host.ipMasq,
      keepFabricSource: spec.outputs.podman !== undefined,
      randomFully: await supportsRandomFully(),
      randomFullyV6: await supportsRandomFully(6),
      peers: () => fleet.peers.values(),
      ...(wireguard ? { wireguard } : {}),
    });
    const lines = report.ops.map((op) => {
      const x = renderOp(op);
      return `${x.tool} ${x.line}`;
    });
    if (report.rulesPayload)
      lines.push(
        ...report.rulesPayload
          .trimEnd()
          .split('\n')
          .map((l) => `iptables-restore --noflush: ${l}`),
      );
    if (report.rulesPayloadV6)
      lines.push(
        ...report.rulesPayloadV6
          .trimEnd()
          .split('\n')
          .map((l) => `ip6tables-restore --noflush: ${l}`),
      );
    process.stdout.write(
      `# ${own.subnetKey} on ${facts.iface}, ${report.desired.peersProgrammed} peer(s) programmed, ${report.desired.skipped.length} skipped\n`,
    );
    for (const s of report.desired.skipped)
      process.stdout.write(`# skipped ${safeText(s.subnetKey)}: ${safeText(s.reason)}\n`);
    for (const [dst, r] of report.refused)
      process.stdout.write(`# left alone ${dst}: held by ${safeText(describeRoute(r))}, a route weft does not own\n`);
    process.stdout.write(lines.length ? `${lines.join('\n')}\n` : 'no changes: the datapath and rules match\n');
  }),
};
