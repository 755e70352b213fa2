/**
 * The files weft owns on a host (subnet.env, the docker options file, a daemon.json fragment,
 * a Podman network), as part of the desired host state: the reconciler reads each one, and
 * writes it when it is missing or differs, on every check, not only when the lease changes.
 * Pure: contents are rendered here (core/outputs/outputs.ts); reading and writing are adapters' jobs.
 */
import { type SubnetEnv, dockerOptsFor, podmanNetworkFor, renderDaemonJson, renderSubnetEnv } from './outputs.js';

/** A file weft wants on the host. `render` sees the file's current text (Podman keeps `created`). */
export interface DesiredFile {
  readonly path: string;
  readonly render: (current: string | undefined) => string;
}

/** Which files the spec asks for (spec.host.subnetFile and spec.outputs). */
export interface OutputTargets {
  readonly subnetFile: string;
  /** `ipv6`: the opt-in `--ipv6 --fixed-cidr-v6=…` options (the default is mk-docker-opts.sh's bytes). */
  readonly docker?: { readonly file: string; readonly key: string; readonly ipv6?: boolean };
  readonly dockerDaemonJson?: string;
  /** Podman network file and its stable id (a hash of the path, computed by the caller). */
  readonly podman?: { readonly file: string; readonly id: string };
}

/**
 * The output files for this host's lease: `env.subnet` (IPv4) and/or `env.ipv6Subnet` (IPv6),
 * each family's network beside it. `nowISO` is Podman's `created` for a new file.
 */
export function desiredFiles(t: OutputTargets, env: SubnetEnv, nowISO: string): DesiredFile[] {
  const files: DesiredFile[] = [{ path: t.subnetFile, render: () => renderSubnetEnv(env) }];
  const docker = t.docker;
  const v6 = env.ipv6Network && env.ipv6Subnet ? env.ipv6Subnet : undefined;
  if (docker) files.push({ path: docker.file, render: () => dockerOptsFor(env, docker.key, docker.ipv6 ?? false) });
  if (t.dockerDaemonJson)
    files.push({ path: t.dockerDaemonJson, render: () => renderDaemonJson(env.subnet, env.mtu, v6) });
  const podman = t.podman;
  if (podman) {
    files.push({
      path: podman.file,
      render: (previous) =>
        podmanNetworkFor({
          file: podman.file,
          id: podman.id,
          ...(env.subnet ? { subnet: env.subnet } : {}),
          ...(v6 ? { ipv6Subnet: v6 } : {}),
          mtu: env.mtu,
          previous,
          nowISO,
        }),
    });
  }
  return files;
}

/** A file as observed: its text, absent, or unreadable (with why). */
export type ObservedFile = { readonly text: string | undefined } | { readonly error: string };

/** A write the plan asks for; `drift` when the file existed with other content or was deleted. */
export interface FileWrite {
  readonly path: string;
  readonly text: string;
  readonly was: 'missing' | 'different' | 'unreadable';
}

/** The writes that make the observed files match the desired ones. */
export function planFiles(desired: readonly DesiredFile[], observed: ReadonlyMap<string, ObservedFile>): FileWrite[] {
  const writes: FileWrite[] = [];
  for (const f of desired) {
    const o = observed.get(f.path) ?? { text: undefined };
    const current = 'text' in o ? o.text : undefined;
    const text = f.render(current);
    if (current === text) continue;
    writes.push({
      path: f.path,
      text,
      was: 'error' in o ? 'unreadable' : current === undefined ? 'missing' : 'different',
    });
  }
  return writes;
}
