// May a host start from its cached state while etcd is unreachable? Only from its own, intact,
// unexpired state of the same network and backend; anything else waits for etcd, as before.
import test from 'ava';
import {
  type CachedState,
  cacheStart,
  decodeCachedState,
  encodeCachedState,
} from '../../src/core/fleet/cached-state.js';
import { checkNetworkConfig } from '../../src/core/flannel/config-check.js';
import { decodeNetworkConfig } from '../../src/core/flannel/network-config.js';
import { formatPrefix } from '../../src/core/net/cidr.js';
import { Fleet } from '../../src/core/fleet/fleet.js';
import { BACKENDS } from '../helpers/backends.js';

const NOW = 1_800_000_000_000;
const CONFIG = '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}';
const PEER =
  '{"PublicIP":"192.0.2.2","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"}}';
const state: CachedState = {
  version: 1,
  savedAtMs: NOW - 60_000,
  config: CONFIG,
  revision: '42',
  lease: { subnet: '198.18.5.0/24', value: '{}', expiresAtMs: NOW + 3_600_000, hostID: 'h1' },
  peers: [{ key: '/coreos.com/network/subnets/198.18.7.0-24', value: PEER, createRevision: '7', modRevision: '9' }],
};
const text = encodeCachedState(state);
const ctx = { nowMs: NOW, hostID: 'h1', backends: BACKENDS };
const reason = (t: string | undefined, c = ctx): string => {
  const r = cacheStart(t, c);
  return r.ok ? 'ok' : r.reason;
};

test('encode and decode round-trip', (t) => {
  t.deepEqual(decodeCachedState(text), { ok: true, value: state });
});

test('a present, own, unexpired state starts the host: config, subnet, peers as etcd entries', (t) => {
  const r = cacheStart(text, ctx);
  if (!r.ok) return t.fail(r.reason);
  t.is(formatPrefix(r.value.subnet), '198.18.5.0/24');
  t.is(r.value.expiresAtMs, NOW + 3_600_000);
  t.is(r.value.config.backend.type, 'vxlan');
  t.deepEqual(r.value.peers, [{ ...state.peers[0], lease: '0' }]);
  // The peers go through the same judge as etcd's entries.
  const fleet = new Fleet('/coreos.com/network/subnets/', r.value.config, BACKENDS, r.value.subnets);
  for (const kv of r.value.peers) fleet.update(kv.key, kv);
  t.deepEqual([...fleet.peers.keys()], ['198.18.7.0-24']);
});

test('no cache, an unreadable one, or another version: wait for etcd', (t) => {
  t.is(reason(undefined), 'no cached state');
  t.regex(reason('{"version":1,'), /unreadable: not JSON/);
  t.regex(reason('[]'), /not a JSON object/);
  t.regex(reason(text.replace('"version": 1', '"version": 2')), /version 2, expected 1/);
  t.regex(reason(JSON.stringify({ ...state, lease: { ...state.lease, expiresAtMs: 'soon' } })), /lease lacks/);
  t.regex(reason(JSON.stringify({ ...state, peers: [{ key: 'k' }] })), /peer entry lacks/);
  t.regex(reason(JSON.stringify({ ...state, peers: {} })), /peers is not a list/);
});

test('an expired lease (by the local clock) is never used', (t) => {
  t.regex(reason(text, { ...ctx, nowMs: NOW + 3_600_000 }), /cached lease on 198\.18\.5\.0\/24 expired at /);
  t.is(reason(text, { ...ctx, nowMs: NOW + 3_599_999 }), 'ok');
});

test("another host's state (a copied disk) is not this host's lease", (t) => {
  t.regex(reason(text, { ...ctx, hostID: 'h2' }), /belongs to host ID h1, this host is h2/);
});

test('an invalid config, or a subnet outside its network, is refused', (t) => {
  t.regex(reason(encodeCachedState({ ...state, config: '{"Network":"nonsense"}' })), /config invalid/);
  t.regex(
    reason(encodeCachedState({ ...state, lease: { ...state.lease, subnet: '203.0.113.0/24' } })),
    /outside the cached network/,
  );
  t.regex(reason(encodeCachedState({ ...state, lease: { ...state.lease, subnet: 'x' } })), /not a subnet key/);
});

test('the spec must name the same network and backend as the cache', (t) => {
  const spec = (c: string) => ({ ...ctx, specConfig: checkNetworkConfig(decodeNetworkConfig(c, BACKENDS)) });
  t.is(reason(text, spec(CONFIG)), 'ok');
  t.regex(reason(text, spec('{"Network":"198.19.0.0/16","Backend":{"Type":"vxlan"}}')), /not the spec's/);
  t.regex(
    reason(text, spec('{"Network":"198.18.0.0/16","Backend":{"Type":"host-gw"}}')),
    /cached backend vxlan is not the spec's host-gw/,
  );
});
