/**
 * The files a host's container runtime reads: subnet.env (flannel's), the mk-docker-opts
 * options file, a daemon.json fragment and a Podman network. Each is written atomically and
 * only when its content changes, and every write is logged.
 */
import { createHash } from 'node:crypto';
import type { Prefix } from '../core/cidr.js';
import type { NetworkConfig } from '../core/config-check.js';
import { dockerOptsFor, podmanNetworkFor, renderDaemonJson, renderSubnetEnv } from '../core/outputs.js';
import type { Spec } from '../core/spec.js';
import { readTextIfExists, writeIfChanged } from '../adapters/files.js';
import type { Logger } from '../adapters/log.js';

export async function writeOutputs(spec: Spec, config: NetworkConfig, subnet: Prefix, mtu: number, log: Logger): Promise<void> {
  const env = { ...(config.ipv4 ? { network: config.ipv4.network } : {}), subnet, mtu, ipMasq: spec.host.ipMasq };
  const files: [string, string][] = [[spec.host.subnetFile, renderSubnetEnv(env)]];
  if (spec.outputs.docker) files.push([spec.outputs.docker.file, dockerOptsFor(env, spec.outputs.docker.key)]);
  if (spec.outputs.dockerDaemonJson) files.push([spec.outputs.dockerDaemonJson, renderDaemonJson(subnet, mtu)]);
  if (spec.outputs.podman) {
    const file = spec.outputs.podman;
    const id = createHash('sha256').update(`weft podman network ${file}`).digest('hex');
    files.push([file, podmanNetworkFor({ file, id, subnet, mtu, previous: await readTextIfExists(file), nowISO: new Date().toISOString() })]);
  }
  for (const [path, text] of files) {
    if (await writeIfChanged(path, text)) log.info('wrote', { file: path });
  }
}
