// This host's own lease in the pure core: is the key as etcd holds it what this host published
// (a foreign value under its etcd lease is restored, another etcd lease means lost), which
// listed lease is this host's (an owner record alone proves nothing), and which etcd lease a
// re-acquisition may revoke.
import test from 'ava';
import { parseIP } from '../../src/core/net/cidr.js';
import { joinListing, planAcquire, replacedEtcdLease } from '../../src/core/fleet/acquire.js';
import { encodeCachedState } from '../../src/core/fleet/cached-state.js';
import {
  FOREIGN_VALUE_CAP,
  heldKeysFromFiles,
  isOwnLease,
  judgeOwnKey,
  restoreFields,
} from '../../src/core/fleet/own-lease.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { config, ip4, vxlanValue } from '../helpers/fleet.js';

const KEY = '/p/subnets/198.18.5.0-24';
const mine = vxlanValue('192.0.2.1');
const at = (value: string, lease = '7', modRevision = '20'): KeyValue => ({
  key: KEY,
  value,
  lease,
  modRevision,
  createRevision: '10',
});
const published = { value: mine, wanted: mine, lease: '7' };

test('the own key: our value (any revision) is ours; deleted or on another etcd lease is lost; another value under our etcd lease is restored', (t) => {
  t.deepEqual(
    judgeOwnKey(published, at(mine, '7', '21')),
    { kind: 'ours', modRevision: '21', value: mine },
    'an identical rewrite: ours, at its revision',
  );
  t.deepEqual(judgeOwnKey(published, undefined), { kind: 'lost' });
  t.deepEqual(judgeOwnKey(published, at(mine, '8')), { kind: 'lost' }, 'another etcd lease, even with our value');
  const foreign = vxlanValue('192.0.2.201', '0e:00:00:00:02:01');
  t.deepEqual(judgeOwnKey(published, at(foreign, '7', '22')), {
    kind: 'restore',
    seenRevision: '22',
    foreign: true,
    seen: foreign,
  });
});

test('the own key: a value of ours not yet published (a republish that failed) is published, not reported as foreign; one that did land is ours', (t) => {
  const next = vxlanValue('192.0.2.1', '02:00:00:00:00:02');
  const pending = { ...published, wanted: next };
  t.like(judgeOwnKey(pending, at(mine)), { kind: 'restore', foreign: false });
  t.like(judgeOwnKey(pending, at(next, '7', '30')), { kind: 'ours', modRevision: '30', value: next });
});

test('the restore warning quotes the foreign value escaped and cut', (t) => {
  const f = restoreFields(KEY, '22', `{"BackendType":"\u001b[31m\u202e${'x'.repeat(1000)}"}`, '23');
  t.like(f, { key: KEY, foreignRevision: '22', restoredRevision: '23' });
  t.false(
    (f.foreignValue ?? '').includes('\u001b') || (f.foreignValue ?? '').includes('\u202e'),
    'no raw escape or bidi override',
  );
  t.regex(f.foreignValue ?? '', /\\x1b\[31m\\u202e/);
  t.true((f.foreignValue ?? '').length <= FOREIGN_VALUE_CAP + 30, 'cut');
});

const S = '/p/subnets/';
const O = '/p/weft/owners/';
const entry = (subnet: string, value: string, owner?: Record<string, string>, lease = '7', ownerLease = lease) =>
  joinListing(
    [{ key: S + subnet, value, lease, modRevision: '5', createRevision: '5' }],
    owner
      ? [{ key: O + subnet, value: JSON.stringify(owner), lease: ownerLease, modRevision: '5', createRevision: '5' }]
      : [],
    S,
    O,
  )[0];

test("isOwnLease: the owner record must name this host and agree with a value that carries this host's address, or name a key this host held", (t) => {
  const self = { hostIDs: ['me', 'raw-machine-id'], publicIP: ip4('192.0.2.1'), heldKeys: ['198.18.9.0-24'] };
  const l = (subnet: string, ip: string, owner: Record<string, string> | undefined) =>
    entry(subnet, vxlanValue(ip), owner);
  const own = (e: ReturnType<typeof l>) => (e ? isOwnLease(e, self) : undefined);
  t.true(own(l('198.18.5.0-24', '192.0.2.1', { hostID: 'me', publicIP: '192.0.2.1' })));
  t.true(own(l('198.18.5.0-24', '192.0.2.1', { hostID: 'raw-machine-id', publicIP: '192.0.2.1' })), 'a former ID');
  t.false(
    own(l('198.18.5.0-24', '192.0.2.5', { hostID: 'me', publicIP: '192.0.2.5' })),
    "agrees, but another host's address",
  );
  t.false(
    own(l('198.18.5.0-24', '192.0.2.5', { hostID: 'me', publicIP: '192.0.2.1' })),
    "our address, but not the value's",
  );
  t.false(own(l('198.18.5.0-24', '192.0.2.1', { hostID: 'me', publicIP: '' })), 'no address in the record');
  t.false(own(l('198.18.5.0-24', '192.0.2.1', undefined)), 'no record: adoptable by address, not owned');
  t.true(
    own(l('198.18.9.0-24', '192.0.2.201', { hostID: 'me', publicIP: '192.0.2.1' })),
    'a key this host held, whatever its value now',
  );
  t.false(
    own(l('198.18.9.0-24', '192.0.2.1', { hostID: 'them', publicIP: '192.0.2.1' })),
    'a key this host held, owned by another host now',
  );
  // IPv6-only: the record names the PublicIPv6; 0.0.0.0 is never an identity.
  const v6 = entry(
    '0.0.0.0-0&fd18:0:0:5::-64',
    '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:2::1","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0e:00:00:00:06:01"}}',
    { hostID: 'me', publicIP: 'fd00:2::1' },
  );
  const ip6 = parseIP('fd00:2::1');
  t.true(
    v6 !== undefined &&
      ip6 !== undefined &&
      isOwnLease(v6, { hostIDs: ['me'], publicIP: ip4('0.0.0.0'), publicIPv6: ip6, heldKeys: [] }),
  );
});

test('heldKeysFromFiles: the subnet file and the cached state name the keys this host held; unreadable ones name none', (t) => {
  const env = 'FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.5.1/24\nFLANNEL_IPV6_SUBNET=fd18:0:0:5::1/64\n';
  const cached = encodeCachedState({
    version: 1,
    savedAtMs: 0,
    config: '{}',
    lease: { subnet: '198.18.6.0/24', value: mine, expiresAtMs: 0, hostID: 'me' },
    peers: [],
    revision: '1',
  });
  t.deepEqual(heldKeysFromFiles(env, cached), ['198.18.5.0-24&fd18:0:0:5::-64', '198.18.6.0-24']);
  t.deepEqual(heldKeysFromFiles(undefined, 'not json'), []);
  t.deepEqual(heldKeysFromFiles('garbage', undefined), []);
});

test("a re-acquisition revokes the etcd lease of this host's owner record, never the key's when a writer moved it; an adopted lease's own is revoked", (t) => {
  const range = config('{"Network":"198.18.0.0/16"}').ipv4;
  const moved = entry('198.18.5.0-24', vxlanValue('192.0.2.201'), { hostID: 'me', publicIP: '192.0.2.1' }, '99', '7');
  const adopted = entry('198.18.6.0-24', vxlanValue('192.0.2.1'), undefined, '42');
  const base = { ...(range ? { range } : {}), hostID: 'me', publicIP: ip4('192.0.2.1'), rng: () => 0 };
  const retaken = planAcquire({
    ...base,
    leases: moved ? [moved] : [],
    previous: { v4: { ip: ip4('198.18.5.0'), len: 24 } },
  });
  t.like(retaken.plan, { kind: 'reuse', why: 'owned' });
  t.is(replacedEtcdLease(retaken.plan), '7', "the owner record's (ours), not the writer's 99");
  const adopt = planAcquire({ ...base, leases: adopted ? [adopted] : [] });
  t.like(adopt.plan, { kind: 'reuse', why: 'public-ip' });
  t.is(replacedEtcdLease(adopt.plan), '42', "flanneld's lease, now unused");
  t.is(replacedEtcdLease(planAcquire({ ...base, leases: [] }).plan), '0', 'a new key replaces nothing');
});
