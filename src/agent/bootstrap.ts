/**
 * The steps before the loops start: the fleet's network config (create-if-absent from the
 * spec, never overwritten), this host's interface facts, the VTEP MAC, and the kernel port the
 * reconciler drives. Each step retries what can heal (etcd down) and fails fast on what cannot.
 */
import { createHash } from 'node:crypto';
import { type NetworkConfig, checkNetworkConfig, diffConfigs } from '../core/flannel/config-check.js';
import { WeftError } from '../core/base/errors.js';
import { type HostFacts, chooseInterface } from '../core/host/host-facts.js';
import { localUnicastMAC } from '../core/net/mac.js';
import { ConfigError, decodeNetworkConfig } from '../core/flannel/network-config.js';
import { configKey } from '../core/fleet/owner.js';
import type { Spec } from '../core/spec/spec.js';
import type { KvStore } from '../core/fleet/store.js';
import { formatIP } from '../core/net/cidr.js';
import type { ObservedDatapath } from '../core/datapath/datapath.js';
import { vtepMACOf, wireguardImplementationOf, withWireguard } from '../core/datapath/devices.js';
import { applyWireguard, observeWireguard } from '../adapters/wireguard.js';
import { applyBatch, listLinks, listRoutes, observeDatapath, routeDevTo } from '../adapters/iproute2.js';
import { restoreNoflush, saveTables } from '../adapters/iptables.js';
import type { Logger } from '../adapters/log.js';
import { ensureForwarding } from '../adapters/sysctl.js';
import { readTextIfExists, writeFileAtomic } from '../adapters/files.js';
import { ETCD_BACKOFF } from '../core/base/backoff.js';
import type { HostPort } from './reconciler.js';
import { Backoff, sleep } from './retry.js';
import { configText } from '../core/fleet/store-limits.js';
import { BACKENDS } from '../backends/index.js';
import type { PublishedMAC } from '../backends/types.js';

/** How start-up judges the stored config against this host, and hears why it waits. */
export interface ConfigJudge {
  /** Why this host cannot use the config (agent/host-fit.ts), or undefined. */
  readonly refusal: (config: NetworkConfig) => Promise<string | undefined>;
  /** The config stored in etcd cannot be used: why ('' would never be passed). */
  readonly onProblem: (problem: string) => void;
}

/**
 * The network config the fleet runs with. Absent: store the spec's (create-if-absent, so two
 * hosts starting together cannot both write). Present and different: log it and use the
 * stored one (changing the fleet is `weft apply`'s job). Waits while etcd is unreachable, the
 * stored config is invalid, or this host cannot use it (`judge`: a network over its LAN, say).
 */
export async function fleetConfig(
  store: KvStore,
  spec: Spec,
  log: Logger,
  signal: AbortSignal,
  judge?: ConfigJudge,
): Promise<{ config: NetworkConfig; text: string }> {
  const key = configKey(spec.etcd.prefix);
  const backoff = new Backoff(ETCD_BACKOFF);
  let refusedText: string | undefined;
  while (!signal.aborted) {
    try {
      const { kv } = await store.get(key);
      if (!kv) {
        if (spec.network) {
          const res = await store.txn(
            [{ key, target: 'version', equals: 0 }],
            [{ op: 'put', key, value: spec.network.configJson }],
          );
          if (res.succeeded) {
            log.info('stored the network config from the spec', { key });
            return { config: spec.network.config, text: spec.network.configJson };
          }
          continue; // someone stored one first: read theirs
        }
        const retryInMs = backoff.next();
        log.warn('no network config in etcd and none in the spec; waiting', { key, retryInMs });
        await sleep(retryInMs, signal);
      } else {
        const stored = checkNetworkConfig(decodeNetworkConfig(configText(kv), BACKENDS));
        const refused = await judge?.refusal(stored);
        if (refused !== undefined) {
          const retryInMs = backoff.next();
          // Once per stored text at error level: the wait may be long, the reason does not change.
          if (kv.value !== refusedText)
            log.error('the stored network config cannot be used on this host; waiting for one it can use', {
              key,
              reason: refused,
            });
          refusedText = kv.value;
          judge?.onProblem(`the stored network config cannot be used on this host: ${refused}`);
          await sleep(retryInMs, signal);
          continue;
        }
        const diff = spec.network ? diffConfigs(stored, spec.network.config) : [];
        if (diff.length > 0)
          log.warn(
            'the stored network config differs from the spec; running with the stored one (use weft apply to change it)',
            { key, diff },
          );
        return { config: stored, text: kv.value };
      }
    } catch (e) {
      const retryInMs = backoff.next();
      if (e instanceof ConfigError)
        log.error('the stored network config is invalid; waiting for a valid one', {
          key,
          error: e.message,
          retryInMs,
        });
      else if (e instanceof WeftError && e.retryable)
        log.warn('etcd unreachable; retrying', { error: e.message, retryInMs });
      else throw e;
      await sleep(retryInMs, signal);
    }
  }
  throw new WeftError('E_ETCD_UNAVAILABLE', 'stopped before the network config could be read');
}

/** The fabric interface, its addresses (both families) and MTU, and the public IPs (logged with why). */
export async function discoverHost(spec: Spec, log: Logger): Promise<HostFacts> {
  const [links, routes] = await Promise.all([listLinks(), listRoutes()]);
  const canReachDev = spec.host.canReach ? await routeDevTo(formatIP(spec.host.canReach)) : undefined;
  const facts = chooseInterface({ host: spec.host, links, routes, ...(canReachDev ? { canReachDev } : {}) });
  const v6 = facts.publicIPv6
    ? { addressV6: facts.ifaceIPv6 ? formatIP(facts.ifaceIPv6) : null, publicIPv6: formatIP(facts.publicIPv6) }
    : { ipv6: facts.ipv6Missing };
  log.info('fabric interface chosen', {
    interface: facts.iface,
    address: formatIP(facts.ifaceIP),
    mtu: facts.ifaceMTU,
    publicIP: formatIP(facts.publicIP),
    ...v6,
    why: facts.why,
  });
  return facts;
}

/**
 * The VTEP MAC: the existing device's (a restart keeps it, also one flanneld created), else one
 * derived from the host identity and VNI, so a reboot or a recreated device keeps the MAC
 * peers already have and no stale fdb entry is left anywhere.
 */
export async function vtepMACFor(
  device: string | undefined,
  hostID: string,
  vni: number,
  family: 4 | 6 = 4,
): Promise<string> {
  if (device !== undefined) {
    const seen = (await observeDatapath([device])).devices.get(device);
    const kept = vtepMACOf(seen);
    if (kept) return kept;
  }
  // The IPv6 device gets a MAC of its own (flanneld's are two random ones): one MAC, one VTEP.
  const digest = createHash('sha256')
    .update(family === 4 ? `weft-vtep/${hostID}/${vni}` : `weft-vtep6/${hostID}/${vni}`)
    .digest();
  return localUnicastMAC([...digest.subarray(0, 6)]);
}

/** The MAC of each device a backend publishes (Backend.publishedMACs), per family. */
export async function publishedMACs(
  devices: readonly PublishedMAC[],
  hostID: string,
): Promise<{ v4?: string; v6?: string }> {
  const out: { v4?: string; v6?: string } = {};
  for (const d of devices) out[d.family === 4 ? 'v4' : 'v6'] = await vtepMACFor(d.device, hostID, d.macSeed, d.family);
  return out;
}

/** The datapath, and the WireGuard configuration of each WireGuard device in it (wg show dump). */
async function observeWithWireguard(devices: readonly string[]): Promise<ObservedDatapath> {
  const d = await observeDatapath(devices);
  const wg = [...d.devices.values()].filter((x) => wireguardImplementationOf(x) !== undefined);
  if (wg.length === 0) return d;
  const found = new Map(d.devices);
  for (const dev of wg) {
    const w = await observeWireguard(dev);
    if (w) found.set(dev.name, withWireguard(dev, w));
  }
  return { ...d, devices: found };
}

/** The real kernel, through the iproute2 / iptables / wireguard adapters. */
export const kernelHost: HostPort = {
  observeDatapath: observeWithWireguard,
  applyBatch: (tool, lines) => (tool === 'wireguard' ? applyWireguard(lines) : applyBatch(tool, lines)),
  saveTables,
  restoreRules: restoreNoflush,
  ensureForwarding,
  readFile: readTextIfExists,
  writeFile: (path, text) => writeFileAtomic(path, text),
};
