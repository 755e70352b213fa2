// Untrusted etcd data as a user sees it, against a real etcd. The tests run serially: each runs
// several CLI processes, and they share the machine with cli-etcd.test.ts's timed hung-etcd test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { EtcdStore } from '../../src/adapters/etcd.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { runWeft } from '../helpers/cli.js';

const made: string[] = [];
test.after.always(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

let etcd: EtcdCluster;
let store: EtcdStore;
test.before(async () => { etcd = await EtcdCluster.start(); store = await EtcdStore.connect(etcd.spec()); });
test.after.always(async () => { await store.close(); await etcd.stop(); });

function specFile(prefix: string, network = 'network:\n  cidr: 198.18.0.0/16\n  backend: {type: vxlan}\n'): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-untrusted-'));
  made.push(d);
  writeFileSync(join(d, 'network.yaml'), `etcd:\n  endpoints: [${etcd.endpoints.join(', ')}]\n  prefix: ${prefix}\n${network}`);
  return join(d, 'network.yaml');
}
const put = (key: string, value: string, lease?: string) => store.txn([], [{ op: 'put', key, value, ...(lease ? { lease } : {}) }]);

test.serial('weft apply shows a hostile stored config and stranded lease escaped, one line each', async (t) => {
  const spec = specFile('/apply-hostile');
  await put('/apply-hostile/config', '{"Network":"198.18.0.0/16","Backend":{"Type":"vx\\u001b[2J\\nlan"}}');
  await put('/apply-hostile/subnets/198.18.3.0-24', JSON.stringify({ PublicIP: '192.0.2.3', PublicIPv6: null, BackendType: 'evil\n\x1b[31m' }));
  const r = await runWeft(['apply', '--spec', spec]);
  t.is(r.code, 2);
  t.regex(r.stdout, /^- Backend\.Type: vx\\x1b\[2j\\nlan\n\+ Backend\.Type: vxlan$/m);
  t.regex(r.stderr, /would be stranded:\n {2}198\.18\.3\.0\/24 \(host 192\.0\.2\.3\) uses backend evil\\n\\x1b\[31m, not vxlan\n\(hosts would keep/);
  // eslint-disable-next-line no-control-regex
  t.false(/\x1b/.test(r.stdout + r.stderr));
});
