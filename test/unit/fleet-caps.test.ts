// host.maxPeers in the core (core/fleet/fleet.ts): the oldest valid leases are programmed, a writer
// adding leases cannot push them out, a freed slot goes to the oldest waiting lease; an entry
// the adapter did not read (over its size limit) is quarantined with its size.
import test from 'ava';
import { Fleet } from '../../src/core/fleet/fleet.js';
import type { KeyValue } from '../../src/core/fleet/store.js';
import { config, vxlanValue } from '../helpers/fleet.js';
import { BACKENDS } from '../helpers/backends.js';

const S = '/p/subnets/';
const CFG = config('{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}');
const mac = (i: number): string => `0e:00:00:00:00:${i.toString(16).padStart(2, '0')}`;
const entry = (i: number, createRevision: number): KeyValue => ({
  key: `${S}198.18.${String(i)}.0-24`,
  value: vxlanValue(`192.0.2.${String(i)}`, mac(i)),
  lease: '0',
  modRevision: String(createRevision),
  createRevision: String(createRevision),
});
const programmed = (f: Fleet): string[] => [...f.peers.keys()].sort();

test('at most maxPeers are programmed, the oldest; a younger lease waits, counted', (t) => {
  const f = new Fleet(S, CFG, BACKENDS, undefined, 2);
  t.is(f.update(entry(1, 10).key, entry(1, 10))?.kind, 'peer');
  t.is(f.update(entry(2, 11).key, entry(2, 11))?.kind, 'peer');
  t.deepEqual(f.update(entry(3, 12).key, entry(3, 12)), { kind: 'waiting', subnetKey: '198.18.3.0-24' });
  t.deepEqual(programmed(f), ['198.18.1.0-24', '198.18.2.0-24']);
  t.is(f.peersLeftOut, 1);
});

test("an older lease seen later (a re-list in another order) takes the youngest peer's place; the change names both", (t) => {
  const f = new Fleet(S, CFG, BACKENDS, undefined, 2);
  f.update(entry(2, 11).key, entry(2, 11));
  f.update(entry(3, 12).key, entry(3, 12));
  const c = f.update(entry(1, 10).key, entry(1, 10));
  t.like(c, { kind: 'peer', subnetKey: '198.18.1.0-24', moved: '198.18.3.0-24' });
  t.deepEqual(programmed(f), ['198.18.1.0-24', '198.18.2.0-24']);
});

test('a writer flooding valid-looking leases never displaces the fleet; a peer leaving frees its slot for the oldest waiting lease', (t) => {
  const f = new Fleet(S, CFG, BACKENDS, undefined, 3);
  for (const i of [1, 2, 3]) f.update(entry(i, i).key, entry(i, i));
  for (let i = 10; i < 60; i++) t.is(f.update(entry(i, 100 + i).key, entry(i, 100 + i))?.kind, 'waiting');
  t.deepEqual(programmed(f), ['198.18.1.0-24', '198.18.2.0-24', '198.18.3.0-24']);
  t.is(f.peersLeftOut, 50);
  t.like(f.update(entry(2, 2).key, undefined), { kind: 'gone', subnetKey: '198.18.2.0-24', moved: '198.18.10.0-24' });
  t.deepEqual(programmed(f), ['198.18.1.0-24', '198.18.10.0-24', '198.18.3.0-24']);
  t.is(f.peersLeftOut, 49);
});

test('an entry not read for its size is quarantined with a reason that names the size, and a peer keeps its last good lease', (t) => {
  const f = new Fleet(S, CFG, BACKENDS);
  const good = entry(1, 10);
  f.update(good.key, good);
  const big: KeyValue = {
    ...good,
    value: '',
    modRevision: '20',
    oversize: { part: 'value', bytes: 1_400_000, limitBytes: 4096 },
  };
  const c = f.update(big.key, big);
  t.like(c, {
    kind: 'quarantined',
    entry: { reason: 'value of 1,400,000 bytes, over the 4,096-byte limit; not read' },
  });
  t.deepEqual(programmed(f), ['198.18.1.0-24'], 'the last good lease stays programmed');
  const junk: KeyValue = {
    key: `${S}junk`,
    value: '',
    lease: '0',
    modRevision: '21',
    createRevision: '21',
    oversize: { part: 'value', limitBytes: 4096 },
  };
  t.like(f.update(junk.key, junk), {
    kind: 'quarantined',
    entry: { reason: 'value larger than the 4,194,304-byte receive limit, over the 4,096-byte limit; not read' },
  });
});
