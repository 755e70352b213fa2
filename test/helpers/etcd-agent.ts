/**
 * Runs INSIDE a lab namespace (the lab's etcd is only reachable there) and speaks JSON lines:
 * stdin  {"id":1,"op":"put","key":K,"value":V}  | {"op":"del","key":K} | {"op":"putMany","kvs":[[K,V],...]}
 * stdout {"id":1,"t0":ms,"t1":ms}  (wall clock just before the request and after its answer)
 * and, for every watched event under --watch PREFIX, {"ev":"put"|"del","key":K,"t":ms}: the
 * plain etcd watch latency, a baseline for weft's convergence.
 */
import { createInterface } from 'node:readline';
import { EtcdStore } from '../../src/adapters/etcd.js';

const endpoint = process.argv[2] ?? 'http://192.0.2.100:2379';
const wi = process.argv.indexOf('--watch');
const watchPrefix = wi > 0 ? process.argv[wi + 1] : undefined;
const store = await EtcdStore.connect(
  { endpoints: [endpoint], prefix: '/coreos.com/network' },
  { callTimeoutMs: 10_000 },
);
const out = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

if (watchPrefix) {
  const rev = (await store.get('/')).revision;
  await store.watch(watchPrefix, rev, {
    onEvents: (evs) => {
      const t = Date.now();
      for (const e of evs) out({ ev: e.type === 'put' ? 'put' : 'del', key: e.type === 'put' ? e.kv.key : e.key, t });
    },
    onBroken: (reason) => {
      out({ error: reason });
    },
  });
}
out({ ready: true });

interface Req {
  id: number;
  op: 'put' | 'del' | 'putMany';
  key?: string;
  value?: string;
  kvs?: [string, string][];
}
for await (const line of createInterface({ input: process.stdin })) {
  const r = JSON.parse(line) as Req;
  const t0 = Date.now();
  if (r.op === 'put') await store.txn([], [{ op: 'put', key: r.key ?? '', value: r.value ?? '' }]);
  else if (r.op === 'del') await store.txn([], [{ op: 'delete', key: r.key ?? '' }]);
  else {
    const kvs = r.kvs ?? [];
    for (let i = 0; i < kvs.length; i += 100) {
      await store.txn(
        [],
        kvs.slice(i, i + 100).map(([key, value]) => ({ op: 'put' as const, key, value })),
      );
    }
  }
  out({ id: r.id, t0, t1: Date.now() });
}
await store.close();
