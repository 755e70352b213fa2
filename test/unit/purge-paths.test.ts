// What `dpkg --purge` removes and keeps for a spec (weft validate --paths, read by the package's
// maintainer scripts): weft's own files wherever the spec puts them, never the operator's.
import test from 'ava';
import { join } from 'node:path';
import { STATE_FILES, purgePaths } from '../../src/core/spec/purge-paths.js';
import { parseSpec } from '../../src/core/spec/spec.js';
import { stateFilePath } from '../../src/agent/state-file.js';
import { wireguardKeyFile } from '../../src/agent/wireguard-keys.js';
import { BACKENDS } from '../helpers/backends.js';

test("the spec's own paths: outputs and state removed, credentials and named keys kept, directories only if empty", (t) => {
  const spec = parseSpec(
    's.yaml',
    [
      'etcd:\n  endpoints: [https://192.0.2.100:2379]\n  caFile: /etc/weft/ca.pem\n  certFile: /etc/weft/c.pem\n  keyFile: /etc/weft/c.key\n  username: weft\n  passwordFile: /etc/weft/etcd-password',
      'host:\n  stateDir: /srv/weft\n  subnetFile: /srv/run/subnet.env\n  wireguardKeyFile: /etc/wireguard/weft.key\n  wireguardPSKFile: /etc/weft/psk',
      'outputs:\n  podman: /etc/containers/networks/weft.json\n  dockerDaemonJson: /etc/docker/daemon.json\n  docker: {file: /srv/run/docker}',
    ].join('\n'),
    BACKENDS,
    {},
  );
  t.deepEqual(purgePaths(spec), [
    'remove /srv/run/subnet.env',
    'remove /srv/run/docker',
    'remove /etc/docker/daemon.json',
    'remove /etc/containers/networks/weft.json',
    'remove /srv/weft/state.json',
    'remove /srv/weft/host-id',
    'remove /srv/weft/wireguard/preshared.key',
    'rmdir /srv/weft/wireguard',
    'rmdir /srv/weft',
    'keep /etc/wireguard/weft.key',
    'keep /etc/weft/psk',
    'keep /etc/weft/ca.pem',
    'keep /etc/weft/c.pem',
    'keep /etc/weft/c.key',
    'keep /etc/weft/etcd-password',
  ]);
});

test('defaults: the key weft generated in its state dir goes; a path a shell read would mangle is left out', (t) => {
  const lines = purgePaths(parseSpec('s.yaml', 'host:\n  subnetFile: "/run/flannel/sub net.env"\n', BACKENDS, {}));
  t.deepEqual(lines, [
    'remove /var/lib/weft/state.json',
    'remove /var/lib/weft/host-id',
    'remove /var/lib/weft/wireguard/preshared.key',
    'remove /var/lib/weft/wireguard/private.key',
    'rmdir /var/lib/weft/wireguard',
    'rmdir /var/lib/weft',
  ]);
});

test('the state file names are the ones weft writes', (t) => {
  const spec = parseSpec('s.yaml', 'host:\n  stateDir: /srv/weft\n', BACKENDS, {});
  t.true(STATE_FILES.includes(stateFilePath('/srv/weft').slice('/srv/weft/'.length) as (typeof STATE_FILES)[number]));
  t.is(wireguardKeyFile(spec), join('/srv/weft', 'wireguard', 'private.key'));
});
