/**
 * Real Podman (netavark) on a lab host: every path (storage, run root, network definitions,
 * events) under the host's lab directory, run inside the host's namespace with nsenter.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxTar } from './docker.js';
import type { Lab, LabHost } from './lab.js';
import { run } from './procs.js';

export interface Podman {
  /** Network definitions directory: point outputs.podman at `<dir>/weft.json`. */
  readonly networkDir: string;
  podman(args: string[]): Promise<string>;
}

export function podmanOn(lab: Lab, h: LabHost): Podman {
  const base = join(h.dir, 'podman');
  const networkDir = join(base, 'networks');
  mkdirSync(networkDir, { recursive: true });
  const conf = join(base, 'containers.conf');
  writeFileSync(
    conf,
    `[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nevents_logfile_path = "${join(base, 'events.log')}"\ntmp_dir = "${join(base, 'tmp')}"\n[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "${networkDir}"\n`,
  );
  const env = { ...process.env, CONTAINERS_CONF: conf, TMPDIR: base, XDG_RUNTIME_DIR: join(base, 'xdg') };
  const podman = async (args: string[]): Promise<string> => {
    const r = await run(
      'nsenter',
      [
        `--net=/var/run/netns/${h.ns}`,
        'podman',
        '--root',
        join(base, 'storage'),
        '--runroot',
        join(base, 'run'),
        '--storage-driver',
        'vfs',
        ...args,
      ],
      { env },
    );
    if (r.code !== 0) throw new Error(`[${h.name}] podman ${args.join(' ')}: ${r.out}`);
    return r.stdout;
  };
  // Containers live in namespaces and mounts of Podman's own: remove them with the lab, pass or fail.
  lab.onDestroy(async () => {
    await podman(['rm', '-af', '-t', '0']).catch(() => undefined);
  });
  return { networkDir, podman };
}

/** The busybox image, imported into this host's Podman storage. */
export async function importBusyboxPodman(lab: Lab, p: Podman): Promise<void> {
  await p.podman(['import', await busyboxTar(lab), 'weft-busybox']);
}

/** `podman run` flags every container needs here (the sandbox's rlimits are lower than Podman's defaults). */
export const RUN = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--network', 'weft'];
