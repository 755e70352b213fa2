// The fleet mirror with a fake store (no etcd): a change seen by a list is never lost when
// creating the watch after it fails (found by the leader-loss reliability test: the list went
// to a live member, the watch to the dead one, and the retry's list then looked unchanged).
import test from 'ava';
import type { KeyValue, KvStore, Listing, WatchCallbacks, WatchHandle } from '../../src/core/store.js';
import { jsonLogger } from '../../src/adapters/log.js';
import { PrefixMirror } from '../../src/agent/prefix-mirror.js';
import { sleep, until } from '../helpers/procs.js';

const kv = (key: string, rev: number): KeyValue => ({ key, value: 'v', lease: '0', modRevision: String(rev), createRevision: String(rev) });

class FakeStore implements Pick<KvStore, 'list' | 'watch'> {
  data = new Map<string, KeyValue>([['/s/a', kv('/s/a', 2)]]);
  rev = 2;
  failWatches = 0;
  watchers: WatchCallbacks[] = [];
  list(): Promise<Listing> { return Promise.resolve({ kvs: [...this.data.values()], revision: String(this.rev), leftOut: 0 }); }
  watch(_prefix: string, _from: string, cb: WatchCallbacks): Promise<WatchHandle> {
    if (this.failWatches > 0) { this.failWatches--; return Promise.reject(new Error('etcd watch: unreachable (the member just died)')); }
    this.watchers.push(cb);
    return Promise.resolve({ cancel: () => Promise.resolve() });
  }
}

test('a key seen by a re-list reaches subscribers even when the watch after that list fails', async (t) => {
  const store = new FakeStore();
  const seen: string[] = [];
  const mirror = new PrefixMirror({
    store: store as unknown as KvStore, prefix: '/s/', log: jsonLogger({ write: () => undefined }), clock: Date,
    onChange: (keys) => { seen.push(...keys); }, verifyAfterReconnectMs: 60_000,
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
