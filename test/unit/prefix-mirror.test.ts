// The fleet mirror with a fake store (no etcd): a change seen by a list is never lost when
// creating the watch after it fails (found by the leader-loss reliability test: the list went
// to a live member, the watch to the dead one, and the retry's list then looked unchanged).
import test from 'ava';
import type { KeyValue, KvStore, Listing, WatchCallbacks, WatchHandle } from '../../src/core/fleet/store.js';
import { jsonLogger } from '../../src/adapters/log.js';
import { PrefixMirror } from '../../src/agent/prefix-mirror.js';
import { sleep, until } from '../helpers/procs.js';

const kv = (key: string, rev: number): KeyValue => ({
  key,
  value: 'v',
  lease: '0',
  modRevision: String(rev),
  createRevision: String(rev),
});

class FakeStore implements Pick<KvStore, 'list' | 'watch'> {
  data = new Map<string, KeyValue>([['/s/a', kv('/s/a', 2)]]);
  rev = 2;
  failWatches = 0;
  watchers: WatchCallbacks[] = [];
  list(): Promise<Listing> {
    return Promise.resolve({ kvs: [...this.data.values()], revision: String(this.rev), leftOut: 0 });
  }
  watch(_prefix: string, _from: string, cb: WatchCallbacks): Promise<WatchHandle> {
    if (this.failWatches > 0) {
      this.failWatches--;
      return Promise.reject(new Error('etcd watch: unreachable (the member just died)'));
    }
    this.watchers.push(cb);
    return Promise.resolve({ cancel: () => Promise.resolve() });
  }
}

test('a key seen by a re-list reaches subscribers even when the watch after that list fails', async (t) => {
  const store = new FakeStore();
  const seen: string[] = [];
  const mirror = new PrefixMirror({
    store: store as unknown as KvStore,
    prefix: '/s/',
    log: jsonLogger({ write: () => undefined }),
    clock: Date,
    onChange: (keys) => {
      seen.push(...keys);
    },
    verifyAfterReconnectMs: 60_000,
  });
  t.teardown(() => mirror.stop());
  await mirror.start();
  t.deepEqual(seen, ['/s/a']);
  // The member the watch is on dies; meanwhile a peer joins. The next list succeeds (another
  // member) but creating the watch fails once; the retry lists the same data again.
  store.data.set('/s/b', kv('/s/b', 3));
  store.rev = 3;
  store.failWatches = 1;
  store.watchers[0]?.onBroken('watch error: 14 UNAVAILABLE: Connection dropped');
  await until(() => store.watchers.length === 2, 5000, 10);
  await sleep(20);
  t.true(seen.includes('/s/b'), `the new key was reported (reported: ${seen.join(', ')})`);
  t.is(mirror.snapshot.get('/s/b')?.modRevision, '3');
});

test('a re-list that keeps failing is remembered (since when, the error) for readiness, and forgotten once it succeeds', async (t) => {
  const store = new FakeStore();
  let fail = true;
  const list = store.list.bind(store);
  store.list = () =>
    fail ? Promise.reject(new Error('etcd list: answer too large or etcd too busy (8 RESOURCE_EXHAUSTED)')) : list();
  const mirror = new PrefixMirror({
    store: store as unknown as KvStore,
    prefix: '/s/',
    log: jsonLogger({ write: () => undefined }),
    clock: Date,
    onChange: () => undefined,
    maxBackoffMs: 50,
  });
  t.teardown(() => mirror.stop());
  const before = Date.now();
  await t.throwsAsync(mirror.start());
  t.true(mirror.stats.failingSinceMs >= before);
  t.regex(mirror.stats.lastError, /RESOURCE_EXHAUSTED/);
  fail = false;
  await mirror.start();
  t.is(mirror.stats.failingSinceMs, 0);
  t.is(mirror.stats.lastError, '');
});

test('the entry cap holds on watch events: a key created while full is left out and counted, a delete of a kept key is a change', async (t) => {
  const store = new FakeStore();
  store.data = new Map([
    ['/s/a', kv('/s/a', 2)],
    ['/s/b', kv('/s/b', 3)],
  ]);
  store.rev = 4;
  const list = store.list.bind(store);
  // As the adapter does with maxEntries 2: a third (younger) entry left out.
  store.list = async () => ({ ...(await list()), leftOut: 1 });
  const seen: string[][] = [];
  const mirror = new PrefixMirror({
    store: store as unknown as KvStore,
    prefix: '/s/',
    log: jsonLogger({ write: () => undefined }),
    clock: Date,
    limits: { maxEntries: 2 },
    onChange: (keys) => {
      seen.push([...keys]);
    },
  });
  t.teardown(() => mirror.stop());
  await mirror.start();
  t.is(mirror.leftOut, 1);
  store.watchers[0]?.onEvents([{ type: 'put', kv: kv('/s/junk', 9) }], '9');
  t.deepEqual([...mirror.snapshot.keys()], ['/s/a', '/s/b']);
  t.is(mirror.leftOut, 2);
  t.is(seen.length, 1, 'nothing changed for subscribers');
  store.watchers[0]?.onEvents([{ type: 'delete', key: '/s/a', modRevision: '10' }], '10');
  t.deepEqual(seen[1], ['/s/a']);
  t.is(mirror.leftOut, 2, 'the slot is filled at the next listing');
});
