/**
 * A real dockerd on a lab host (LAB.md): started with nsenter (ip netns exec would hide the
 * cgroup mounts), its own data root, exec root, pidfile and socket, vfs storage, and the
 * options weft emitted. The image is built from the static busybox binary (no registry).
 */
import { cpSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabHost } from './lab.js';
import { type Started, run, start, until } from './procs.js';

export interface Dockerd {
  readonly sock: string;
  readonly proc: Started;
  docker(args: string[]): Promise<string>;
}

/** The value of KEY="..." in a docker options file written by weft. */
export function dockerOptions(file: string, key: string): string[] {
  const m = new RegExp(`^${key}="(.*)"$`, 'm').exec(readFileSync(file, 'utf8'));
  if (!m?.[1]) throw new Error(`${key} not found in ${file}`);
  return m[1].trim().split(/\s+/);
}

export async function startDockerd(lab: Lab, h: LabHost, options: string[]): Promise<Dockerd> {
  const d = join(h.dir, 'docker');
  mkdirSync(d, { recursive: true });
  const sock = join(d, 'docker.sock');
  const proc = start('nsenter', [
    `--net=/var/run/netns/${h.ns}`,
    'dockerd',
    '--data-root',
    join(d, 'root'),
    '--exec-root',
    join(d, 'exec'),
    '--pidfile',
    join(d, 'docker.pid'),
    '-H',
    `unix://${sock}`,
    '--storage-driver=vfs',
    '--iptables=false',
    ...options,
  ]);
  const docker = async (args: string[]): Promise<string> => {
    const r = await run('docker', ['-H', `unix://${sock}`, ...args]);
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')}: ${r.out}`);
    return r.stdout;
  };
  await until(
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`dockerd on ${h.name} exited: ${proc.output()}`);
      await docker(['info', '--format', '{{.ID}}']);
      return true;
    },
    60_000,
    250,
  ).catch((e: unknown) => {
    throw new Error(`${(e as Error).message}\n${proc.output().slice(-3000)}`);
  });
  return { sock, proc, docker };
}

/** A tarball of a root filesystem holding only the static busybox (an image without a registry). */
export async function busyboxTar(lab: Lab): Promise<string> {
  const root = join(lab.dir, 'busybox-root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  try {
    cpSync('/bin/busybox', join(root, 'bin', 'busybox'));
  } catch {
    /* already there */
  }
  for (const c of ['sh', 'ping', 'ip', 'nc', 'sleep', 'cat']) {
    try {
      symlinkSync('busybox', join(root, 'bin', c));
    } catch {
      /* exists */
    }
  }
  const tar = join(lab.dir, 'busybox.tar');
  const r = await run('tar', ['-C', root, '-cf', tar, '.']);
  if (r.code !== 0) throw new Error(r.out);
  return tar;
}

/** Import a busybox image into a dockerd from the static busybox binary. */
export async function importBusybox(lab: Lab, dockerd: Dockerd): Promise<void> {
  await dockerd.docker(['import', await busyboxTar(lab), 'weft-busybox']);
}
