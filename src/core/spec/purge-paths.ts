/**
 * The files on this host that `dpkg --purge weft` removes beyond the package's own defaults,
 * from the spec (`weft validate --paths`, recorded by packaging/debian/prerm while the spec and
 * the executable still exist; postrm acts on it after dpkg removed both). One line per path:
 *   remove PATH  a file weft writes whole (outputs, its state, its own key): deleted
 *   rmdir PATH   a directory weft may have made: removed only if empty
 *   keep PATH    a file the operator put there (credentials, a key file they named): never touched
 * A directory is never removed with what it holds: a spec may name `/srv` as its state dir.
 * A path with a character a shell `read` would split or mangle is left out (it stays).
 */
import type { Spec } from './spec.js';

/** The files weft keeps in host.stateDir (agent/state-file.ts, adapters/identity.ts, agent/wireguard-keys.ts). */
export const STATE_FILES = ['state.json', 'host-id', 'wireguard/preshared.key'] as const;

const SAFE_PATH = /^\/[A-Za-z0-9._+@%=:,/-]+$/;

/** The purge lines for `spec` (see the module comment), removals first, then directories, then what stays. */
export function purgePaths(spec: Spec): string[] {
  const { host, outputs, etcd } = spec;
  const state = host.stateDir;
  const ownKey = `${state}/wireguard/private.key`;
  const remove = [
    host.subnetFile,
    outputs.docker?.file,
    outputs.dockerDaemonJson,
    outputs.podman,
    ...STATE_FILES.map((f) => `${state}/${f}`),
    // The key weft generates in its state dir is this host's alone; one the operator named is theirs.
    ...(host.wireguardKeyFile === undefined || host.wireguardKeyFile === ownKey ? [ownKey] : []),
  ];
  const keep = [
    host.wireguardKeyFile !== ownKey ? host.wireguardKeyFile : undefined,
    host.wireguardPSKFile,
    etcd.caFile,
    etcd.certFile,
    etcd.keyFile,
    etcd.passwordFile,
  ];
  const lines = [
    ...remove.map((p) => ['remove', p] as const),
    ['rmdir', `${state}/wireguard`] as const,
    ['rmdir', state] as const,
    ...keep.map((p) => ['keep', p] as const),
  ];
  return lines.flatMap(([kind, p]) =>
    p !== undefined && SAFE_PATH.test(p) && !p.split('/').includes('..') ? [`${kind} ${p}`] : [],
  );
}
