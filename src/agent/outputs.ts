/**
 * The output files the spec asks for (subnet.env, the mk-docker-opts options file, a
 * daemon.json fragment, a Podman network), as desired state for the reconciler, which writes
 * them atomically when missing or different and keeps checking them (core/host-files.ts).
 */
import { createHash } from 'node:crypto';
import type { Prefix } from '../core/cidr.js';
import type { NetworkConfig } from '../core/config-check.js';
import { type DesiredFile, desiredFiles } from '../core/host-files.js';
import type { Spec } from '../core/spec.js';

export function outputFiles(spec: Spec, config: NetworkConfig, subnet: Prefix, mtu: number, nowISO = new Date().toISOString()): DesiredFile[] {
  const env = { ...(config.ipv4 ? { network: config.ipv4.network } : {}), subnet, mtu, ipMasq: spec.host.ipMasq };
  const podman = spec.outputs.podman;
  return desiredFiles({
    subnetFile: spec.host.subnetFile,
    ...(spec.outputs.docker ? { docker: spec.outputs.docker } : {}),
    ...(spec.outputs.dockerDaemonJson ? { dockerDaemonJson: spec.outputs.dockerDaemonJson } : {}),
    ...(podman ? { podman: { file: podman, id: createHash('sha256').update(`weft podman network ${podman}`).digest('hex') } } : {}),
  }, env, nowISO);
}
