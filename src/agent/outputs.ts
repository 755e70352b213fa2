/**
 * The output files the spec asks for (subnet.env, the mk-docker-opts options file, a
 * daemon.json fragment, a Podman network), as desired state for the reconciler, which writes
 * them atomically when missing or different and keeps checking them (core/outputs/host-files.ts).
 */
import { createHash } from 'node:crypto';
import type { NetworkConfig } from '../core/flannel/config-check.js';
import { type DesiredFile, desiredFiles } from '../core/outputs/host-files.js';
import type { Spec } from '../core/spec/spec.js';
import type { SubnetKey } from '../core/flannel/subnet-key.js';

/**
 * The files for this host's lease `own`: each family the lease and the config both have (an
 * IPv6 half the config does not have, or the reverse, is left out, never an error).
 */
export function outputFiles(
  spec: Spec,
  config: NetworkConfig,
  own: SubnetKey,
  mtu: number,
  nowISO = new Date().toISOString(),
): DesiredFile[] {
  const env = {
    ...(config.ipv4 && own.v4 ? { network: config.ipv4.network, subnet: own.v4 } : {}),
    ...(config.ipv6 && own.v6 ? { ipv6Network: config.ipv6.network, ipv6Subnet: own.v6 } : {}),
    mtu,
    ipMasq: spec.host.ipMasq,
  };
  if (!env.subnet && !env.ipv6Subnet) return [];
  const podman = spec.outputs.podman;
  return desiredFiles(
    {
      subnetFile: spec.host.subnetFile,
      ...(spec.outputs.docker ? { docker: spec.outputs.docker } : {}),
      ...(spec.outputs.dockerDaemonJson ? { dockerDaemonJson: spec.outputs.dockerDaemonJson } : {}),
      ...(podman
        ? { podman: { file: podman, id: createHash('sha256').update(`weft podman network ${podman}`).digest('hex') } }
        : {}),
    },
    env,
    nowISO,
  );
}
