/** Building blocks for control-plane tests: stores, keepers and configs over a test etcd. */
import { EtcdStore } from '../../src/adapters/etcd.js';
import { silentLogger } from '../../src/adapters/log.js';
import { LeaseKeeper } from '../../src/agent/lease-keeper.js';
import { parseIPv4 } from '../../src/core/net/cidr.js';
import { type NetworkConfig, checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { encodeLeaseAttrs } from '../../src/core/flannel/lease.js';
import { vxlanLeaseAttrs } from '../../src/backends/vxlan-lease.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import type { EtcdSpec } from '../../src/core/spec/spec.js';
import { BACKENDS } from './backends.js';

export const PREFIX = '/coreos.com/network';

export function config(json: string): NetworkConfig {
  return checkNetworkConfig(decodeNetworkConfig(json, BACKENDS));
}

export const ip4 = (s: string) => {
  const a = parseIPv4(s);
  if (!a) throw new Error(s);
  return a;
};

export function vxlanValue(publicIP: string, mac = '02:00:00:00:00:01', vni = 1): string {
  return encodeLeaseAttrs(vxlanLeaseAttrs(ip4(publicIP), { vni, vtepMAC: mac }));
}

export async function keeperFor(
  spec: EtcdSpec,
  hostID: string,
  ttlSeconds = 60,
): Promise<{ keeper: LeaseKeeper; store: EtcdStore }> {
  const store = await EtcdStore.connect(spec);
  const keeper = new LeaseKeeper({
    store,
    prefix: spec.prefix,
    identity: () => ({ hostID, hostname: hostID }),
    ttlSeconds,
    clock: Date,
    rng: Math.random,
    log: silentLogger,
  });
  return { keeper, store };
}
