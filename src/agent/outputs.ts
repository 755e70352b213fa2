/**
 * The output files the spec asks for (subnet.env, the mk-docker-opts options file, a
 * daemon.json fragment, a Podman network), as desired state for the reconciler, which writes
 * them atomically when missing or different and keeps checking them (core/host-files.ts).
 */
import { createHash } from 'node:crypto';
import type { SubnetKey } from '../core/subnet-key.js';
import type { NetworkConfig } from '../core/config-check.js';
import { type DesiredFile, desiredFiles } from '../core/host-files.js';
import type { Spec } from '../core/spec.js';

export function outputFiles(spec: Spec, config: NetworkConfig, own: SubnetKey, mtu: number, nowISO = new Date().toISOString()): DesiredFile[] {
  const subnet = own.v4 ?? own.v6;
  if (!subnet) return [];
  const env = {
    ...(config.ipv4 && own.v4 ? { network: config.ipv4.network } : {}), subnet, mtu, ipMasq: spec.host.ipMasq,
    ...(config.ipv6 && own.v6 ? { ipv6Network: config.ipv6.network, ipv6Subnet: own.v6 } : {}),
  };
  const podman = spec.outputs.podman;
  return desiredFiles({
    subnetFile: spec.host.subnetFile,
    ...(spec.outputs.docker ? { docker: spec.outputs.docker } : {}),
    ...(spec.outputs.dockerDaemonJson ? { dockerDaemonJson: spec.outputs.dockerDaemonJson } : {}),
    ...(podman ? { podman: { file: podman, id: createHash('sha256').update(`weft podman network ${podman}`).digest('hex') } } : {}),
  }, env, nowISO);
}
