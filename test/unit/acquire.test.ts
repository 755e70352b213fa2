// The pure lease decision and fleet view, with no etcd: every rule of the order of preference.
import test from 'ava';
import { formatPrefix, parsePrefix } from '../../src/core/net/cidr.js';
import { type ListedLease, joinListing, planAcquire } from '../../src/core/fleet/acquire.js';
import { Fleet, QUARANTINE_CAP, REASON_CAP } from '../../src/core/fleet/fleet.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { config, ip4, vxlanValue } from '../helpers/fleet.js';
import { BACKENDS } from '../helpers/backends.js';

const S = '/p/subnets/';
const O = '/p/weft/owners/';
const range = config('{"Network":"198.18.0.0/16"}').ipv4!;
let rev = 1;
const kv = (key: string, value: string): KeyValue => ({
  key,
  value,
  lease: '7',
  modRevision: String(rev++),
  createRevision: '1',
});
function listing(entries: { subnet: string; ip: string; owner?: string }[]): ListedLease[] {
  const subs = entries.map((e) => kv(S + e.subnet, vxlanValue(e.ip)));
  const owners = entries.flatMap((e) =>
    e.owner ? [kv(O + e.subnet, JSON.stringify({ hostID: e.owner, hostname: e.owner, publicIP: e.ip }))] : [],
  );
  return joinListing(subs, owners, S, O);
}
const plan = (
  leases: ListedLease[],
  extra: { previous?: string; exclude?: string[]; hostID?: string; ip?: string } = {},
) =>
  planAcquire({
    range,
    leases,
    hostID: extra.hostID ?? 'me',
    publicIP: ip4(extra.ip ?? '192.0.2.1'),
    rng: () => 0,
    ...(extra.previous ? { previous: { v4: parsePrefix(extra.previous)! } } : {}),
    exclude: new Set(extra.exclude ?? []),
  });
const subnetOf = (d: ReturnType<typeof plan>) =>
  d.plan.kind === 'create'
    ? formatPrefix(d.plan.subnets.v4!)
    : d.plan.kind === 'reuse'
      ? d.plan.lease.subnetKey
      : d.plan.kind;

test('an owned lease wins over the previous subnet and a public-IP match', (t) => {
  const l = listing([
    { subnet: '198.18.9.0-24', ip: '192.0.2.1' },
    { subnet: '198.18.5.0-24', ip: '192.0.2.1', owner: 'me' },
  ]);
  const d = plan(l, { previous: '198.18.7.0/24' });
  t.is(subnetOf(d), '198.18.5.0-24');
  t.like(d.plan, { kind: 'reuse', why: 'owned' });
});

test('the previous subnet is reused when free, and never when another host holds it', (t) => {
  t.like(plan(listing([]), { previous: '198.18.7.0/24' }).plan, { kind: 'create', why: 'previous' });
  const other = plan(listing([{ subnet: '198.18.7.0-24', ip: '192.0.2.1', owner: 'them' }]), {
    previous: '198.18.7.0/24',
  });
  t.not(subnetOf(other), '198.18.7.0-24', 'owned by another host, even with our public IP');
  t.like(plan(listing([{ subnet: '198.18.7.0-24', ip: '192.0.2.1' }]), { previous: '198.18.7.0/24' }).plan, {
    kind: 'reuse',
    why: 'previous',
  });
  t.not(
    subnetOf(plan(listing([]), { previous: '10.4.1.0/24' })),
    '10.4.1.0/24',
    'a previous subnet outside the network is not reused',
  );
});

test('an unowned lease with our public IP is adopted (first in key order); an owned one never', (t) => {
  const d = plan(
    listing([
      { subnet: '198.18.10.0-24', ip: '192.0.2.1' },
      { subnet: '198.18.2.0-24', ip: '192.0.2.1' },
    ]),
  );
  t.like(d.plan, { kind: 'reuse', why: 'public-ip' });
  t.is(subnetOf(d), '198.18.10.0-24');
  t.like(plan(listing([{ subnet: '198.18.10.0-24', ip: '192.0.2.1', owner: 'twin' }])).plan, {
    kind: 'create',
    why: 'allocated',
  });
});

test('allocation skips taken and excluded subnets; incompatible owned leases are stale', (t) => {
  const d = plan(
    listing([
      { subnet: '198.18.1.0-24', ip: '192.0.2.5' },
      { subnet: '10.9.0.0-24', ip: '192.0.2.1', owner: 'me' },
    ]),
    { exclude: ['198.18.2.0/24'] },
  );
  t.is(subnetOf(d), '198.18.3.0/24', 'rng 0 picks the first free, after the taken .1 and the excluded .2');
  t.deepEqual(
    d.stale.map((l) => l.subnetKey),
    ['10.9.0.0-24'],
  );
});

test('a key flanneld reads but weft would not write counts as taken and is never adopted', (t) => {
  const l = listing([
    { subnet: 'x198.18.1.0-24', ip: '192.0.2.1' },
    { subnet: '198.18.2.0-024', ip: '192.0.2.1', owner: 'me' },
  ]);
  t.like(l[0], { nonCanonicalKey: true });
  const d = plan(l, { previous: '198.18.1.0/24' });
  t.is(
    subnetOf(d),
    '198.18.3.0/24',
    'neither odd key is reused, adopted or kept, and neither subnet is allocated again',
  );
  t.deepEqual(
    d.stale.map((x) => x.subnetKey),
    ['198.18.2.0-024'],
  );
});

test('a full network says so, with capacity and leases', (t) => {
  const small = config('{"Network":"198.18.0.0/22"}').ipv4!;
  const leases = listing(['1', '2', '3'].map((n) => ({ subnet: `198.18.${n}.0-24`, ip: `192.0.2.${n}0` })));
  const d = planAcquire({ range: small, leases, hostID: 'me', publicIP: ip4('192.0.2.1'), rng: () => 0.5 });
  t.deepEqual(d.plan, {
    kind: 'full',
    message: 'out of subnets: network 198.18.0.0/22 holds 3 /24 subnets and 3 are leased',
  });
});

test('fleet: peers, quarantine, last good lease kept, own lease ignored', (t) => {
  const cfg = config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}');
  const f = new Fleet(S, cfg, BACKENDS, { v4: parsePrefix('198.18.1.0/24')! });
  t.is(f.update(`${S}198.18.1.0-24`, kv(`${S}198.18.1.0-24`, vxlanValue('192.0.2.1'))), undefined, 'our own lease');
  t.like(f.update(`${S}198.18.2.0-24`, kv(`${S}198.18.2.0-24`, vxlanValue('192.0.2.2'))), { kind: 'peer' });
  t.like(f.update(`${S}198.18.3.0-24`, kv(`${S}198.18.3.0-24`, 'junk')), { kind: 'quarantined', isNew: true });
  t.like(f.update(`${S}198.18.2.0-24`, kv(`${S}198.18.2.0-24`, 'junk')), { kind: 'quarantined' });
  t.true(f.peers.has('198.18.2.0-24'), 'a peer whose value turns bad keeps its last good lease');
  t.like(f.update(`${S}198.18.1.0-24&fd00::-64`, kv(`${S}198.18.1.0-24&fd00::-64`, vxlanValue('192.0.2.66'))), {
    kind: 'quarantined',
    entry: { reason: "lease claims this host's own subnet" },
  });
  t.like(f.update(`${S}198.18.2.0-24`, undefined), { kind: 'gone' });
  t.deepEqual([...f.peers.keys()], []);
  t.is(f.quarantined.size, 2);
});

test('fleet: one entry can never throw past itself, and quarantine keeps at most QUARANTINE_CAP reasons, each capped', (t) => {
  const fleet = new Fleet('/p/subnets/', config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}'), BACKENDS);
  const deep = `{"PublicIP":"192.0.2.60","PublicIPv6":null,"BackendType":"vxlan","BackendData":${'['.repeat(5000)}${']'.repeat(5000)}}`;
  const c = fleet.update('/p/subnets/198.18.150.0-24', {
    key: '/p/subnets/198.18.150.0-24',
    value: deep,
    lease: '0',
    modRevision: '5',
    createRevision: '5',
  });
  t.is(c?.kind, 'quarantined');
  for (let i = 0; i < QUARANTINE_CAP + 50; i++) {
    const key = `/p/subnets/x${i}-${'k'.repeat(500)}`;
    fleet.update(key, { key, value: '{', lease: '0', modRevision: String(10 + i), createRevision: String(10 + i) });
  }
  t.is(fleet.quarantined.size, QUARANTINE_CAP);
  t.is(fleet.quarantinedCount, QUARANTINE_CAP + 51);
  t.true([...fleet.quarantined.values()].every((q) => q.reason.length <= REASON_CAP + 40));
  fleet.update(`/p/subnets/x1049-${'k'.repeat(500)}`, undefined);
  t.is(fleet.quarantinedCount, QUARANTINE_CAP + 50, 'a deleted entry past the cap is forgotten too');
});

// Forged owner records (issue 28): any etcd writer can write an owner record naming any host.
// `listing` writes weft's own shape (publicIP = the value's); these write other shapes.
const forged = (subnet: string, ip: string, owner: { hostID: string; publicIP: string }): ListedLease[] =>
  joinListing(
    [kv(S + subnet, vxlanValue(ip))],
    [kv(O + subnet, JSON.stringify({ hostID: owner.hostID, hostname: 'x', publicIP: owner.publicIP }))],
    S,
    O,
  );

test("a forged owner record naming this host never makes it reuse or delete another host's lease", (t) => {
  // Another host's lease (its value has its address); the record names us, with its address or ours.
  for (const publicIP of ['192.0.2.5', '192.0.2.1']) {
    const d = plan(forged('198.18.5.0-24', '192.0.2.5', { hostID: 'me', publicIP }));
    t.like(d.plan, { kind: 'create', why: 'allocated' }, `owner publicIP ${publicIP}: not reused`);
    t.not(subnetOf(d), '198.18.5.0/24');
  }
  // One outside the network would be deleted as this host's stale lease.
  t.deepEqual(
    plan(forged('10.9.0.0-24', '192.0.2.5', { hostID: 'me', publicIP: '192.0.2.5' })).stale,
    [],
    'not deleted',
  );
});

test("a forged owner record naming another host on this host's lease does not renumber it: a record that disagrees with the value counts as none", (t) => {
  const mine = forged('198.18.5.0-24', '192.0.2.1', { hostID: 'writer', publicIP: '192.0.2.201' });
  t.like(plan(mine).plan, { kind: 'reuse', why: 'public-ip', lease: { subnetKey: '198.18.5.0-24' } });
  t.like(plan(mine, { previous: '198.18.5.0/24' }).plan, { kind: 'reuse', why: 'previous' });
  // A record that agrees (another host with this host's public IP, behind one NAT) is believed: not taken.
  t.like(plan(forged('198.18.5.0-24', '192.0.2.1', { hostID: 'twin', publicIP: '192.0.2.1' })).plan, {
    kind: 'create',
  });
});

test("this host's own key whose value another writer replaced is taken back when the subnet is the one it held; an owner record with another address alone is not enough", (t) => {
  // Our owner record, a writer's value (the record no longer agrees with it).
  const taken = forged('198.18.5.0-24', '192.0.2.201', { hostID: 'me', publicIP: '192.0.2.1' });
  t.like(
    plan(taken, { previous: '198.18.5.0/24' }).plan,
    { kind: 'reuse', why: 'owned' },
    'the subnet file names it: ours',
  );
  t.like(plan(taken).plan, { kind: 'create' }, 'nothing here bears the record out: left alone');
  // An agreeing record naming this host at an address it no longer has, and no file naming it.
  t.like(plan(forged('198.18.5.0-24', '192.0.2.99', { hostID: 'me', publicIP: '192.0.2.99' })).plan, {
    kind: 'create',
  });
});
