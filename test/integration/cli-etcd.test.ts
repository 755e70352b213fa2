// weft apply / leases / release as a user runs them, against a real etcd (plain, mTLS+auth, hung).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { EtcdStore } from '../../src/adapters/etcd.js';
import { EtcdCluster } from '../helpers/etcd.js';
import { runWeft } from '../helpers/cli.js';
import { vxlanValue } from '../helpers/fleet.js';

const made: string[] = [];
const scratchDir = (prefix: string): string => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};
test.after.always(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

function specFile(etcdYaml: string, network = 'network:\n  cidr: 198.18.0.0/16\n  backend: {type: vxlan}\n'): string {
  const d = scratchDir('weft-spec-');
  writeFileSync(join(d, 'network.yaml'), `${etcdYaml}${network}`);
  return join(d, 'network.yaml');
}
const plainEtcd = (etcd: EtcdCluster, prefix: string) =>
  `etcd:\n  endpoints: [${etcd.endpoints.join(', ')}]\n  prefix: ${prefix}\n`;

let etcd: EtcdCluster;
test.before(async () => {
  etcd = await EtcdCluster.start();
});
test.after.always(async () => {
  await etcd.stop();
});

test('apply creates the config, is idempotent (no new revision), and prints the difference', async (t) => {
  const spec = specFile(plainEtcd(etcd, '/apply1'));
  const first = await runWeft(['apply', '--spec', spec]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /^changed: \/apply1\/config/);
  t.regex(first.stdout, /\+ Network: 198.18.0.0\/16/);
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  const kv = (await store.get('/apply1/config')).kv;
  t.is(kv?.value, '{"Network":"198.18.0.0/16","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}');
  const second = await runWeft(['apply', '--spec', spec]);
  t.is(second.code, 0);
  t.regex(second.stdout, /^unchanged/);
  t.is((await store.get('/apply1/config')).kv?.modRevision, kv?.modRevision, 'no write when equal');
  // An equivalent config written by hand in flannel's minimal form also counts as equal.
  await store.txn(
    [],
    [{ op: 'put', key: '/apply1/config', value: '{"network":"198.18.0.0/16","Backend":{"Type":"vxlan"}}' }],
  );
  t.regex((await runWeft(['apply', '--spec', spec])).stdout, /^unchanged/);
});

test('apply refuses to strand live leases unless --force; --dry-run writes nothing', async (t) => {
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  await runWeft(['apply', '--spec', specFile(plainEtcd(etcd, '/apply2'))]);
  await store.txn([], [{ op: 'put', key: '/apply2/subnets/198.18.200.0-24', value: vxlanValue('192.0.2.1') }]);
  const narrower = specFile(plainEtcd(etcd, '/apply2'), 'network:\n  cidr: 198.18.0.0/16\n  subnetMax: 198.18.100.0\n');
  const refused = await runWeft(['apply', '--spec', narrower]);
  t.is(refused.code, 2);
  t.regex(
    refused.stderr,
    /1 live lease\(s\) would be stranded:\n {2}198.18.200.0\/24 \(host 192.0.2.1\) lies outside 198.18.1.0..198.18.100.0/,
  );
  const before = (await store.get('/apply2/config')).kv?.modRevision;
  const dry = await runWeft(['apply', '--spec', narrower, '--dry-run', '--force']);
  t.is(dry.code, 0);
  t.regex(dry.stdout, /^would change/);
  t.is((await store.get('/apply2/config')).kv?.modRevision, before);
  const hostgw = await runWeft([
    'apply',
    '--spec',
    specFile(plainEtcd(etcd, '/apply2'), 'network:\n  cidr: 198.18.0.0/16\n  backend: {type: host-gw}\n'),
  ]);
  t.is(hostgw.code, 2);
  t.regex(hostgw.stderr, /uses backend vxlan, not host-gw/);
  const forced = await runWeft(['apply', '--spec', narrower, '--force']);
  t.is(forced.code, 0);
  t.not((await store.get('/apply2/config')).kv?.modRevision, before);
});

test('leases lists valid and malformed entries; --json has the documented fields', async (t) => {
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  const spec = specFile(plainEtcd(etcd, '/ls'));
  const lease = await store.grant(600);
  await store.txn(
    [],
    [
      { op: 'put', key: '/ls/subnets/198.18.3.0-24', value: vxlanValue('192.0.2.3', '02:00:00:00:00:03'), lease },
      {
        op: 'put',
        key: '/ls/subnets/198.18.4.0-24',
        value: '{"PublicIP":"192.0.2.4","PublicIPv6":null,"BackendType":"host-gw"}',
      },
      { op: 'put', key: '/ls/subnets/bogus', value: 'x' },
    ],
  );
  const r = await runWeft(['leases', '--spec', spec, '--json']);
  t.is(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
  t.is(rows.length, 3);
  t.deepEqual(Object.keys(rows[0] ?? {}), [
    'subnet',
    'ipv6Subnet',
    'publicIP',
    'publicIPv6',
    'backendType',
    'vtepMAC',
    'vtepMACv6',
    'vni',
    'expiresAt',
    'ttlSeconds',
    'host',
    'key',
    'status',
    'malformed',
  ]);
  t.like(rows[0], {
    subnet: '198.18.3.0/24',
    publicIP: '192.0.2.3',
    backendType: 'vxlan',
    vtepMAC: '02:00:00:00:00:03',
    vni: 1,
    key: '/ls/subnets/198.18.3.0-24',
    status: 'ok',
    malformed: null,
  });
  t.true((rows[0]?.ttlSeconds as number) > 590);
  t.true(typeof rows[0]?.expiresAt === 'string');
  // A host-gw lease in this vxlan network is not programmed: stranded, but shown in full.
  t.like(rows[1], {
    subnet: '198.18.4.0/24',
    publicIP: '192.0.2.4',
    backendType: 'host-gw',
    vni: null,
    ttlSeconds: null,
    expiresAt: null,
    status: 'stranded',
    malformed: 'stranded: backend host-gw, but the network uses vxlan',
  });
  t.like(rows[2], { status: 'quarantined', subnet: null });
  t.regex(String(rows[2]?.malformed), /not a flannel subnet key/);
  const human = await runWeft(['leases', '--spec', spec]);
  t.regex(human.stdout, /^SUBNET .*\n198\.18\.3\.0\/24 +192\.0\.2\.3 +vxlan/);
  t.regex(human.stdout, /STRANDED \(1: .*\n.*\n {2}198\.18\.4\.0\/24 +192\.0\.2\.4 +host-gw/);
  t.regex(human.stdout, /QUARANTINED \(1, ignored by weft\)/);
});

test("IPv6: apply stores EnableIPv6 and keeps weft's IPv4 leases, refuses to turn IPv6 off under IPv6 halves; leases shows a flanneld dual-stack lease in full", async (t) => {
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  const v4 = specFile(plainEtcd(etcd, '/v6'));
  const dual = specFile(
    plainEtcd(etcd, '/v6'),
    'network:\n  cidr: 198.18.0.0/16\n  ipv6:\n    cidr: fd18::/48\n  backend: {type: vxlan}\n',
  );
  t.is((await runWeft(['apply', '--spec', v4])).code, 0);
  // A weft host's v4-only lease (it has an owner record): turning IPv6 on does not strand it.
  await store.txn(
    [],
    [
      { op: 'put', key: '/v6/subnets/198.18.3.0-24', value: vxlanValue('192.0.2.3', '02:00:00:00:00:03') },
      {
        op: 'put',
        key: '/v6/weft/owners/198.18.3.0-24',
        value: '{"hostID":"h3","hostname":"web-3","publicIP":"192.0.2.3"}',
      },
    ],
  );
  const on = await runWeft(['apply', '--spec', dual]);
  t.is(on.code, 0, on.stderr);
  t.regex(on.stdout, /^changed: \/v6\/config/);
  t.is(
    (await store.get('/v6/config')).kv?.value,
    '{"Network":"198.18.0.0/16","EnableIPv6":true,"IPv6Network":"fd18::/48","Backend":{"Type":"vxlan","VNI":1,"Port":8472}}',
  );
  // A dual-stack lease in flanneld's exact format (flannel-ipv6-wireguard.md §1.5).
  await store.txn(
    [],
    [
      {
        op: 'put',
        key: '/v6/subnets/198.18.4.0-24&fd18:0:0:4::-64',
        value:
          '{"PublicIP":"192.0.2.4","PublicIPv6":"fd00:2::4","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:00:00:00:00:04"},"BackendV6Data":{"VNI":1,"VtepMAC":"02:00:00:00:66:04"}}',
      },
    ],
  );
  const ls = await runWeft(['leases', '--spec', dual, '--json']);
  t.is(ls.code, 0, ls.stderr);
  const rows = JSON.parse(ls.stdout) as Record<string, unknown>[];
  t.like(
    rows.find((r) => r.ipv6Subnet !== null),
    {
      subnet: '198.18.4.0/24',
      ipv6Subnet: 'fd18:0:0:4::/64',
      publicIP: '192.0.2.4',
      publicIPv6: 'fd00:2::4',
      vtepMAC: '02:00:00:00:00:04',
      vtepMACv6: '02:00:00:00:66:04',
      vni: 1,
      status: 'ok',
      malformed: null,
    },
  );
  t.like(
    rows.find((r) => r.ipv6Subnet === null),
    { subnet: '198.18.3.0/24', publicIPv6: null, vtepMACv6: null, status: 'ok', host: 'web-3' },
  );
  t.regex(
    (await runWeft(['leases', '--spec', dual])).stdout,
    /^SUBNET +IPV6-SUBNET +PUBLIC-IP +PUBLIC-IPV6 +BACKEND +VTEP-MAC +VTEP-MAC-V6 /,
  );
  const off = await runWeft(['apply', '--spec', v4]);
  t.is(off.code, 2);
  t.regex(
    off.stderr,
    /1 live lease\(s\) would be stranded:\n {2}198\.18\.4\.0\/24 & fd18:0:0:4::\/64 \(host 192\.0\.2\.4\) holds an IPv6 subnet, but the new config turns IPv6 off/,
  );
  const show = await runWeft(['config', 'show', '--spec', dual, '--json']);
  t.like(JSON.parse(show.stdout), {
    valid: true,
    config: { EnableIPv6: true, IPv6Network: 'fd18::/48', IPv6SubnetLen: 64 },
  });
});

test("release deletes only this host's lease: its owner record borne out by its subnet file; a forged owner record naming this host is reported and left alone", async (t) => {
  const store = await EtcdStore.connect(etcd.spec());
  t.teardown(() => store.close());
  const lease = await store.grant(600);
  const other = await store.grant(600);
  await store.txn(
    [],
    [
      { op: 'put', key: '/rel/subnets/198.18.5.0-24', value: vxlanValue('192.0.2.5'), lease },
      {
        op: 'put',
        key: '/rel/weft/owners/198.18.5.0-24',
        value: '{"hostID":"me","hostname":"me","publicIP":"192.0.2.5"}',
        lease,
      },
      { op: 'put', key: '/rel/subnets/198.18.6.0-24', value: vxlanValue('192.0.2.6') },
      // Another host's lease, and a writer's owner record that names this host.
      { op: 'put', key: '/rel/subnets/198.18.7.0-24', value: vxlanValue('192.0.2.7'), lease: other },
      {
        op: 'put',
        key: '/rel/weft/owners/198.18.7.0-24',
        value: '{"hostID":"me","hostname":"me","publicIP":"192.0.2.7"}',
        lease: other,
      },
    ],
  );
  const dir = scratchDir('weft-rel-');
  writeFileSync(
    join(dir, 'subnet.env'),
    'FLANNEL_NETWORK=198.18.0.0/16\nFLANNEL_SUBNET=198.18.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n',
  );
  const spec = specFile(
    plainEtcd(etcd, '/rel'),
    `network:\n  cidr: 198.18.0.0/16\n  backend: {type: vxlan}\nhost:\n  subnetFile: ${join(dir, 'subnet.env')}\n  stateDir: ${join(dir, 'state')}\n`,
  );
  const r = await runWeft(['release', '--spec', spec], { env: { ...process.env, WEFT_HOST_ID: 'me' } });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'released 198.18.5.0/24\n');
  t.regex(
    r.stderr,
    /^not released: \/rel\/subnets\/198\.18\.7\.0-24: its owner record names this host, but the lease publishes 192\.0\.2\.7, this host's address is .*, and neither its subnet file nor its cached state names this lease/m,
  );
  t.deepEqual(
    (await store.list('/rel/subnets/')).kvs.map((k) => k.key),
    ['/rel/subnets/198.18.6.0-24', '/rel/subnets/198.18.7.0-24'],
    "the other host's lease is still there",
  );
  t.true((await store.timeToLive(other)) > 0, 'and its etcd lease');
  t.is(await store.timeToLive(lease), -1, "this host's etcd lease is revoked");
  const again = await runWeft(['release', '--spec', spec], { env: { ...process.env, WEFT_HOST_ID: 'me' } });
  t.regex(again.stdout, /nothing to release/);
});

test('mTLS with auth works; a wrong password exits 1 without echoing it', async (t) => {
  const tls = await EtcdCluster.start({ tls: true });
  t.teardown(() => tls.stop());
  const auth = await tls.enableAuth('right-horse-battery');
  const files = tls.tls!;
  const etcdYaml = (pwFile: string) =>
    `etcd:\n  endpoints: [${tls.endpoints.join(', ')}]\n  caFile: ${files.ca}\n  certFile: ${files.clientCert}\n  keyFile: ${files.clientKey}\n  username: root\n  passwordFile: ${pwFile}\n`;
  const ok = await runWeft(['apply', '--spec', specFile(etcdYaml(auth.passwordFile))]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^changed/);
  const d = scratchDir('weft-pw-');
  writeFileSync(join(d, 'pw'), 'wrong-zebra-staple\n');
  const bad = await runWeft(['apply', '--spec', specFile(etcdYaml(join(d, 'pw')))]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /authentication failed/);
  t.false(bad.stderr.includes('wrong-zebra-staple') || bad.stdout.includes('wrong-zebra-staple'));
});

test('a hung etcd makes one-shot commands fail in at most 10 s', async (t) => {
  const hung = await EtcdCluster.start();
  t.teardown(() => hung.stop());
  const spec = specFile(plainEtcd(hung, '/hung'));
  await hung.freeze();
  for (const cmd of [['apply'], ['leases'], ['release']]) {
    const started = Date.now();
    const r = await runWeft([...cmd, '--spec', spec], {
      env: { ...process.env, WEFT_HOST_ID: 'x' },
      timeoutMs: 30_000,
    });
    const took = Date.now() - started;
    t.is(r.code, 1, `${cmd[0] ?? ''}: ${r.stderr}`);
    t.regex(r.stderr, /unreachable or not answering|no answer within/);
    t.true(took <= 10_000, `${cmd[0] ?? ''} took ${took} ms`);
  }
  hung.thaw();
});
