// Paged, bounded listings (adapters/etcd-range.ts) against a fake Range that behaves as etcd
// and grpc-js do: pages at a revision, `more`, and RESOURCE_EXHAUSTED (E_ETCD_TOO_LARGE) for an
// answer over the receive limit. The real etcd is in test/integration/etcd-bounds.test.ts.
import test from 'ava';
import { type PageRequest, type RawKV, boundedKV, listPaged } from '../../src/adapters/etcd-range.js';
import { WeftError } from '../../src/core/base/errors.js';
import type { KeyValue } from '../../src/core/fleet/store.js';

const decode = (raw: RawKV): KeyValue => ({
  key: raw.key.toString('utf8'),
  value: raw.value.toString('utf8'),
  lease: raw.lease || '0',
  modRevision: raw.mod_revision,
  createRevision: raw.create_revision,
});

/** An etcd of `entries` (key -> [value bytes, create revision]) at `revision`, answering ranges as etcd does, refusing answers over `limitBytes`. */
function fakeEtcd(entries: [string, number, number][], o: { revision?: number; limitBytes?: number } = {}) {
  const kvs: RawKV[] = entries.map(([k, size, rev]) => ({
    key: Buffer.from(k),
    value: Buffer.alloc(size, 'x'),
    lease: '0',
    mod_revision: String(rev),
    create_revision: String(rev),
  }));
  kvs.sort((a, b) => Buffer.compare(a.key, b.key));
  const requests: PageRequest[] = [];
  let revision = o.revision ?? 100;
  const send = (req: PageRequest) => {
    requests.push(req);
    const inRange = kvs.filter(
      (kv) =>
        Buffer.compare(kv.key, req.key) >= 0 &&
        (req.range_end ? Buffer.compare(kv.key, req.range_end) < 0 : kv.key.equals(req.key)),
    );
    const page = inRange.slice(0, req.limit).map((kv) => (req.keys_only ? { ...kv, value: Buffer.alloc(0) } : kv));
    const bytes = page.reduce((n, kv) => n + kv.key.length + kv.value.length + 20, 0);
    if (bytes > (o.limitBytes ?? Infinity))
      return Promise.reject(new WeftError('E_ETCD_TOO_LARGE', 'etcd list: answer too large', { retryable: true }));
    return Promise.resolve({
      kvs: page,
      more: inRange.length > page.length,
      revision: req.revision === '0' ? String(revision) : req.revision,
    });
  };
  return {
    send,
    requests,
    bump: () => {
      revision++;
    },
  };
}

const keys = (n: number, prefix = '/p/'): [string, number, number][] =>
  Array.from({ length: n }, (_, i) => [`${prefix}${String(i).padStart(5, '0')}`, 10, 10 + i]);

test("a listing of 2,500 keys is three pages, every page after the first at the first one's revision, in key order", async (t) => {
  const etcd = fakeEtcd(keys(2500));
  const l = await listPaged(etcd.send, '/p/', {}, decode);
  t.is(l.kvs.length, 2500);
  t.is(l.revision, '100');
  t.is(l.leftOut, 0);
  t.deepEqual(
    etcd.requests.map((r) => [r.limit, r.revision]),
    [
      [1000, '0'],
      [1000, '100'],
      [1000, '100'],
    ],
  );
  t.deepEqual(
    l.kvs.map((kv) => kv.key),
    keys(2500).map(([k]) => k),
  );
});

test('a page over the receive limit is halved until it fits, then grows back; values over the limit are markers with their size', async (t) => {
  // Three 1.4 MB values among 40 small ones, a 4 MiB limit: no page may hold all three.
  const entries: [string, number, number][] = [
    ...keys(40),
    ['/p/junk-a', 1_400_000, 500],
    ['/p/junk-b', 1_400_000, 501],
    ['/p/junk-c', 1_400_000, 502],
  ];
  const etcd = fakeEtcd(entries, { limitBytes: 4 * 1024 * 1024 });
  const l = await listPaged(etcd.send, '/p/', { maxValueBytes: 4096 }, decode);
  t.is(l.kvs.length, 43);
  const junk = l.kvs.filter((kv) => kv.oversize);
  t.deepEqual(
    junk.map((kv) => [kv.key, kv.value, kv.oversize?.bytes, kv.oversize?.limitBytes, kv.createRevision]),
    [
      ['/p/junk-a', '', 1_400_000, 4096, '500'],
      ['/p/junk-b', '', 1_400_000, 4096, '501'],
      ['/p/junk-c', '', 1_400_000, 4096, '502'],
    ],
  );
  t.true(
    etcd.requests.some((r) => r.limit < 1000),
    'a page was split',
  );
  t.true(
    etcd.requests.every((r) => !r.keys_only),
    'every entry fitted on its own',
  );
});

test('an entry over the receive limit on its own is read without its value: a marker whose size is unknown', async (t) => {
  const etcd = fakeEtcd(
    [
      ['/p/a', 10, 5],
      ['/p/huge', 5_000_000, 6],
      ['/p/z', 10, 7],
    ],
    { limitBytes: 4 * 1024 * 1024 },
  );
  const l = await listPaged(etcd.send, '/p/', {}, decode);
  t.deepEqual(
    l.kvs.map((kv) => [kv.key, kv.value.length, kv.oversize]),
    [
      ['/p/a', 10, undefined],
      ['/p/huge', 0, { part: 'value', limitBytes: 65536 }],
      ['/p/z', 10, undefined],
    ],
  );
  t.true(etcd.requests.some((r) => r.keys_only === true && r.limit === 1));
});

test('maxEntries keeps the oldest entries (create revision), whatever their keys; the others are counted', async (t) => {
  // Keys in reverse age: the last keys are the oldest.
  const entries: [string, number, number][] = Array.from({ length: 2300 }, (_, i) => [
    `/p/${String(i).padStart(5, '0')}`,
    10,
    5000 - i,
  ]);
  const l = await listPaged(fakeEtcd(entries).send, '/p/', { maxEntries: 100 }, decode);
  t.is(l.kvs.length, 100);
  t.is(l.leftOut, 2200);
  t.deepEqual(
    l.kvs.map((kv) => kv.key),
    entries.slice(2200).map(([k]) => k),
    'the 100 oldest, in key order',
  );
});

test('a compaction between two pages starts the listing over at a new revision', async (t) => {
  const etcd = fakeEtcd(keys(1500));
  let compacted = false;
  const send = (req: PageRequest) => {
    if (req.revision === '100' && !compacted) {
      compacted = true;
      etcd.bump();
      return Promise.reject(new WeftError('E_ETCD_COMPACTED', 'etcd list: revision compacted', { retryable: true }));
    }
    return etcd.send(req);
  };
  const l = await listPaged(send, '/p/', {}, decode);
  t.is(l.kvs.length, 1500);
  t.is(l.revision, '101');
});

test('an exact listing reads one key, never the keys it prefixes', async (t) => {
  const etcd = fakeEtcd([
    ['/p/config', 10, 3],
    ['/p/config-junk', 10, 4],
    ['/p/configx', 10, 5],
  ]);
  const l = await listPaged(etcd.send, '/p/config', { exact: true }, decode);
  t.deepEqual(
    l.kvs.map((kv) => kv.key),
    ['/p/config'],
  );
});

test('a key longer than the key limit becomes a stand-in under the prefix naming its size, the same for its delete', (t) => {
  const long = Buffer.from(`/p/${'k'.repeat(5000)}`);
  const raw: RawKV = { key: long, value: Buffer.from('v'), lease: '0', mod_revision: '9', create_revision: '8' };
  const a = boundedKV(raw, '/p/', 4096, decode);
  const b = boundedKV({ ...raw, value: Buffer.alloc(0) }, '/p/', 4096, decode);
  t.true(a.key.startsWith('/p/<5003-byte key sha256:'));
  t.is(a.key, b.key);
  t.is(a.value, '');
  t.deepEqual(a.oversize, { part: 'key', bytes: 5003, limitBytes: 3 + 1024 });
  t.is(a.createRevision, '8');
});
