// Untrusted etcd data as a user sees it, against a real etcd: a hostile lease cannot forge a
// row of `weft leases`; stranded leases after `weft apply --force`; `weft config show` on a
// valid, a null-holding, an invalid and an absent config. The tests run serially: each runs
// several CLI processes, and they share the machine with cli-etcd.test.ts's timed hung-etcd
// test.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { EtcdStore } from '../../src/adapters/etcd.js';
import { readStoredConfig } from '../../src/core/config/config-view.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { runWeft } from '../helpers/cli.js';
import { vxlanValue } from '../helpers/fleet.js';
import { BACKENDS } from '../helpers/backends.js';

const made: string[] = [];
test.after.always(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

let etcd: EtcdCluster;
let store: EtcdStore;
test.before(async () => {
  etcd = await EtcdCluster.start();
  store = await EtcdStore.connect(etcd.spec());
});
test.after.always(async () => {
  await store.close();
  await etcd.stop();
});

function specFile(prefix: string, network = 'network:\n  cidr: 198.18.0.0/16\n  backend: {type: vxlan}\n'): string {
  const d = mkdtempSync(join(tmpdir(), 'weft-untrusted-'));
  made.push(d);
  writeFileSync(
    join(d, 'network.yaml'),
    `etcd:\n  endpoints: [${etcd.endpoints.join(', ')}]\n  prefix: ${prefix}\n${network}`,
  );
  return join(d, 'network.yaml');
}
const put = (key: string, value: string, lease?: string) =>
  store.txn([], [{ op: 'put', key, value, ...(lease ? { lease } : {}) }]);

test.serial('weft apply shows a hostile stored config and stranded lease escaped, one line each', async (t) => {
  const spec = specFile('/apply-hostile');
  await put('/apply-hostile/config', '{"Network":"198.18.0.0/16","Backend":{"Type":"vx\\u001b[2J\\nlan"}}');
  await put(
    '/apply-hostile/subnets/198.18.3.0-24',
    JSON.stringify({ PublicIP: '192.0.2.3', PublicIPv6: null, BackendType: 'evil\n\x1b[31m' }),
  );
  const r = await runWeft(['apply', '--spec', spec]);
  t.is(r.code, 2);
  t.regex(r.stdout, /^- Backend\.Type: vx\\x1b\[2j\\nlan\n\+ Backend\.Type: vxlan$/m);
  t.regex(
    r.stderr,
    /would be stranded:\n {2}198\.18\.3\.0\/24 \(host 192\.0\.2\.3\) uses backend evil\\n\\x1b\[31m, not vxlan\n\(hosts would keep/,
  );
  // eslint-disable-next-line no-control-regex
  t.false(/\x1b/.test(r.stdout + r.stderr));
});

test.serial('a BackendType holding a newline, a fake row and ANSI escapes adds no row to weft leases', async (t) => {
  const spec = specFile('/hostile');
  t.is((await runWeft(['apply', '--spec', spec])).code, 0);
  const fake =
    '\n198.18.9.0/24  6.6.6.6  vxlan  02:66:66:66:66:66  86399s  trusted-host\x1b[1A\x1b[2K\x1b]0;owned\x07\u202e';
  await put('/hostile/subnets/198.18.3.0-24', vxlanValue('192.0.2.3', '02:00:00:00:00:03'));
  await put(
    '/hostile/subnets/198.18.5.0-24',
    JSON.stringify({
      PublicIP: '192.0.2.5',
      PublicIPv6: null,
      BackendType: fake,
      BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:05' },
    }),
  );
  await put(
    '/hostile/weft/owners/198.18.5.0-24',
    JSON.stringify({ hostID: 'h5', hostname: 'web\r\x1b[31m-5', publicIP: '192.0.2.5' }),
  );
  await put('/hostile/subnets/bad\nkey\x1b[0m', '{"PublicIP":"x\\u001b[2J"}');

  const human = await runWeft(['leases', '--spec', spec]);
  t.is(human.code, 0, human.stderr);
  t.log(human.stdout);
  // eslint-disable-next-line no-control-regex
  t.false(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/.test(human.stdout), 'no terminal control reaches the terminal');
  t.false(
    human.stdout.split('\n').some((l) => /^\s*198\.18\.9\.0\/24/.test(l)),
    'no forged row',
  );
  t.deepEqual(
    human.stdout
      .split('\n')
      .filter((l) => /^\s*198\.18\.\d+\.0\/24/.test(l))
      .map((l) => l.trim().split(' ')[0]),
    ['198.18.3.0/24'],
    'one row: the lease weft programs',
  );
  t.regex(human.stdout, /QUARANTINED \(2, ignored by weft\):\n/);
  t.regex(
    human.stdout,
    /\/hostile\/subnets\/198\.18\.5\.0-24: BackendType "\\u000a198\.18\.9\.0\/24 {2}6\.6\.6\.6/,
    'the hostile value is quarantined and shown escaped',
  );
  t.regex(human.stdout, /\/hostile\/subnets\/bad\\nkey\\x1b\[0m: /);

  const json = await runWeft(['leases', '--spec', spec, '--json']);
  t.is(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as {
    key: string;
    status: string;
    backendType: string | null;
    host: string | null;
  }[];
  t.deepEqual(
    rows.map((r) => r.status),
    ['ok', 'quarantined', 'quarantined'],
  );
  t.is(rows[1]?.host, 'web\r\x1b[31m-5', 'JSON carries the owner text itself (JSON.stringify escapes it)');
});

test.serial(
  'after weft apply --force moves the network, the old leases are STRANDED with their hosts and the fix',
  async (t) => {
    const before = specFile('/moved');
    t.is((await runWeft(['apply', '--spec', before])).code, 0);
    const lease = await store.grant(600);
    await put('/moved/subnets/198.18.7.0-24', vxlanValue('192.0.2.7', '02:00:00:00:00:07'), lease);
    await put(
      '/moved/weft/owners/198.18.7.0-24',
      JSON.stringify({ hostID: 'h7', hostname: 'db-7', publicIP: '192.0.2.7' }),
      lease,
    );
    const after = specFile('/moved', 'network:\n  cidr: 198.19.0.0/16\n  backend: {type: vxlan}\n');
    const forced = await runWeft(['apply', '--spec', after, '--force']);
    t.is(forced.code, 0, forced.stderr);
    await put('/moved/subnets/198.19.4.0-24', vxlanValue('192.0.2.4', '02:00:00:00:00:04'));

    const rows = JSON.parse((await runWeft(['leases', '--spec', after, '--json'])).stdout) as Record<string, unknown>[];
    t.like(rows[0], {
      subnet: '198.18.7.0/24',
      publicIP: '192.0.2.7',
      backendType: 'vxlan',
      vtepMAC: '02:00:00:00:00:07',
      vni: 1,
      host: 'db-7',
      status: 'stranded',
      malformed: 'stranded: outside the network 198.19.0.0/16',
    });
    t.true((rows[0]?.ttlSeconds as number) > 590);
    t.like(rows[1], { subnet: '198.19.4.0/24', status: 'ok', malformed: null, vni: 1 });
    const human = await runWeft(['leases', '--spec', after]);
    t.regex(
      human.stdout,
      /STRANDED \(1: not programmed, the lease does not fit the network config\):\n {2}SUBNET .*WHY\n {2}198\.18\.7\.0\/24 +192\.0\.2\.7 +vxlan +02:00:00:00:00:07 +\d+s +db-7 +outside the network 198\.19\.0\.0\/16\n {2}fix: restart weft/,
    );
  },
);

interface Shown {
  valid: boolean;
  error: string | null;
  config: Record<string, unknown> | null;
}
const show = async (spec: string, json = true) => {
  const r = await runWeft(['config', 'show', '--spec', spec, ...(json ? ['--json'] : [])]);
  return { ...r, doc: json && r.stdout ? (JSON.parse(r.stdout) as Shown) : undefined };
};

test.serial('config show: a valid config as weft reads it, defaults applied; exit 0', async (t) => {
  const spec = specFile('/show-ok');
  await put('/show-ok/config', '{"network":"198.18.0.0/16","Backend":{"Type":"VXLAN","DirectRouting":true}}');
  const r = await show(spec);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  t.deepEqual(r.doc, {
    valid: true,
    error: null,
    config: {
      Network: '198.18.0.0/16',
      SubnetLen: 24,
      SubnetMin: '198.18.1.0',
      SubnetMax: '198.18.255.0',
      EnableIPv4: true,
      EnableIPv6: false,
      IPv6Network: null,
      IPv6SubnetLen: null,
      IPv6SubnetMin: null,
      IPv6SubnetMax: null,
      Backend: { Type: 'vxlan', VNI: 1, Port: 8472, MTU: null, GBP: false, Learning: false, DirectRouting: true },
    },
  });
  const human = await show(spec, false);
  t.is(human.code, 0);
  t.regex(
    human.stdout,
    /^\/show-ok\/config: valid \(revision \d+\)\n {2}network {3}198\.18\.0\.0\/16: \/24 subnets from 198\.18\.1\.0 to 198\.18\.255\.0 \(255 host subnets\)\n/,
  );
  t.regex(
    human.stdout,
    /backend {3}vxlan: VNI 1, port 8472, MTU from each host's interface, GBP off, learning off, directRouting on/,
  );
  t.regex(human.stdout, /spec {6}differs from .*network\.yaml/);
  t.regex(
    human.stdout,
    /stored text:\n {2}\{"network":"198\.18\.0\.0\/16","Backend":\{"Type":"VXLAN","DirectRouting":true\}\}\n$/,
  );
});

test.serial(
  'config show: unset fields print as null; explicit JSON nulls are judged by the decoder, and shown as weft reads them',
  async (t) => {
    const spec = specFile('/show-nulls');
    await put('/show-nulls/config', '{"Network":"198.18.0.0/16","Backend":{"Type":"host-gw"}}');
    const plain = await show(spec);
    t.is(plain.code, 0, plain.stderr);
    t.like(plain.doc, {
      valid: true,
      config: {
        IPv6Network: null,
        IPv6SubnetLen: null,
        IPv6SubnetMin: null,
        IPv6SubnetMax: null,
        Backend: { Type: 'host-gw' },
      },
    });
    t.deepEqual(Object.keys(plain.doc?.config ?? {}), [
      'Network',
      'SubnetLen',
      'SubnetMin',
      'SubnetMax',
      'EnableIPv4',
      'EnableIPv6',
      'IPv6Network',
      'IPv6SubnetLen',
      'IPv6SubnetMin',
      'IPv6SubnetMax',
      'Backend',
    ]);
    // Whether a JSON null in a number or bool field is "unset" (Go's json) or an error is the
    // decoder's call (network-config.ts); the command must print exactly that judgement.
    const text =
      '{"Network":"198.18.0.0/16","SubnetLen":null,"EnableIPv6":null,"Backend":{"Type":"vxlan","VNI":null,"MTU":null}}';
    await put('/show-nulls/config', text);
    const nulls = await show(spec);
    const want = readStoredConfig(text, BACKENDS).report;
    t.deepEqual(nulls.doc, JSON.parse(JSON.stringify(want)) as Shown);
    t.is(nulls.code, want.valid ? 0 : 1);
    t.log(`nulls: ${nulls.stdout.trim()}`);
  },
);

test.serial('config show: an invalid config exits 1 with the error on stderr; --json says valid false', async (t) => {
  const spec = specFile('/show-bad');
  await put('/show-bad/config', '{"Network":"198.18.0.0/16","SubnetLen":31,"Backend":{"Type":"vxlan"}}');
  const r = await show(spec);
  t.is(r.code, 1);
  t.deepEqual(r.doc, { valid: false, error: 'SubnetLen must be less than /31', config: null });
  t.is(r.stderr, 'weft: the stored network config /show-bad/config is invalid: SubnetLen must be less than /31\n');
  await put('/show-bad/config', '{"Network":"198.18.0.0/16"}');
  const udp = await show(spec);
  t.is(udp.code, 1);
  t.like(udp.doc, {
    valid: false,
    error: 'backend type "udp" is not supported by weft (vxlan, host-gw, wireguard)',
    config: { Network: '198.18.0.0/16', Backend: { Type: 'udp' } },
  });
  await put('/show-bad/config', '{"Network":\n\x1b[2J');
  const broken = await show(spec, false);
  t.is(broken.code, 1);
  t.regex(
    broken.stdout,
    /^\/show-bad\/config: INVALID \(revision \d+\)\n {2}error {5}the network config is unreadable: invalid JSON/,
  );
  t.regex(broken.stdout, /stored text:\n {2}\{"Network":\n {2}\\x1b\[2J\n$/);
  // eslint-disable-next-line no-control-regex
  t.false(/\x1b/.test(broken.stdout + broken.stderr));
});

test.serial('config show: an absent config exits 1 and says so; an unreachable etcd exits 1', async (t) => {
  const r = await show(specFile('/show-none'));
  t.is(r.code, 1);
  t.deepEqual(r.doc, { valid: false, error: '/show-none/config is absent: no network config is stored', config: null });
  t.regex(r.stderr, /^weft: \/show-none\/config is absent: no network config is stored \(weft apply/);
  const d = mkdtempSync(join(tmpdir(), 'weft-untrusted-'));
  made.push(d);
  writeFileSync(join(d, 'n.yaml'), 'etcd:\n  endpoints: [http://127.0.0.1:9]\n');
  const down = await runWeft(['config', 'show', '--spec', join(d, 'n.yaml'), '--json'], { timeoutMs: 30_000 });
  t.is(down.code, 1);
  t.is(down.stdout, '');
  t.regex(down.stderr, /unreachable or not answering/);
});

test.serial(
  'config show: a 1.4 MB config is not kept (a marker at the adapter) and is reported with its stored size',
  async (t) => {
    const spec = specFile('/show-big');
    await put('/show-big/config', `{"Network":"198.18.0.0/16","x":"${'x'.repeat(1_400_000)}"}`);
    const r = await show(spec);
    t.is(r.code, 1);
    t.deepEqual(r.doc, {
      valid: false,
      error: 'the network config is unreadable: value of 1,400,034 bytes, over the 65,536-byte limit; not read',
      config: null,
    });
  },
);
