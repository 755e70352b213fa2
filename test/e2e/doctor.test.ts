// `weft doctor` on a lab host: all good on a healthy fabric, and each injected fault found,
// named, with its fix: UDP 8472 dropped, an MTU black hole on the underlay, a foreign route
// shadowing a peer's, the peer's route deleted with weft stopped, FORWARD DROP without weft's
// chain, strict rp_filter (a risk: warned, exit 0). Every fault is undone before the next.
import test from 'ava';
import { WEFT } from '../helpers/cli.js';
import { fabric, mustLease } from '../helpers/fabric.js';
import type { Lab, LabHost } from '../helpers/lab.js';
import { run, until } from '../helpers/procs.js';
import { bounded } from '../helpers/bound.js';

const VXLAN = 'cidr: 198.18.0.0/16\nsubnetMax: 198.18.199.0\nbackend:\n  type: vxlan';

interface Finding {
  check: string;
  verdict: string;
  peer: string | null;
  what: string;
  fix: string;
}
interface Doc {
  ok: boolean;
  findings: Finding[];
}

async function doctor(
  lab: Lab,
  h: LabHost,
  spec: string,
): Promise<{ code: number | null; doc: Doc; ms: number; text: string }> {
  const t0 = Date.now();
  const env = { ...process.env, WEFT_HOST_ID: `${lab.prefix}-${h.name}` };
  const r = await run(
    'nsenter',
    [`--net=/var/run/netns/${h.ns}`, process.execPath, WEFT, 'doctor', '--spec', spec, '--json'],
    { env, timeoutMs: 30_000 },
  );
  const ms = Date.now() - t0;
  let doc: Doc;
  try {
    doc = JSON.parse(r.stdout) as Doc;
  } catch {
    throw new Error(`weft doctor printed no JSON (exit ${String(r.code)}): ${r.out}`);
  }
  return { code: r.code, doc, ms, text: r.out };
}

const failing = (d: Doc): Finding[] => d.findings.filter((f) => f.verdict === 'fail');
const show = (fs: readonly Finding[]): string =>
  fs.map((f) => `${f.verdict} ${f.check}${f.peer ? ` [${f.peer}]` : ''}: ${f.what}\n    fix: ${f.fix}`).join('\n');

test.serial('weft doctor: all good on a healthy fabric; finds each injected fault and names the fix', async (t) => {
  const step = bounded(t, 150_000);
  const f = await fabric(t, { hosts: 2, network: VXLAN, host: 'listen: 127.0.0.1:9473\n' });
  const { lab } = f;
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const spec1 = f.specs[0] ?? '';
  const s2 = (await mustLease(lab, h2)).subnet;
  const g2 = s2.replace('/24', '');
  const check = async (name: string, want: 0 | 1): Promise<Doc> => {
    step(name);
    const r = await doctor(lab, h1, spec1);
    const shown = want === 0 ? r.doc.findings.filter((x) => x.verdict === 'warn') : failing(r.doc);
    t.log(`${name}: exit ${String(r.code)} in ${String(r.ms)} ms\n${show(shown)}`);
    t.is(r.code, want, `${name}: exit ${String(want)}\n${r.text}`);
    t.is(r.doc.ok, want === 0);
    return r.doc;
  };

  const healthy = await check('healthy fabric', 0);
  t.true(
    healthy.findings.some((x) => x.check === 'overlay' && x.verdict === 'ok' && x.peer === s2),
    'the peer was probed through the overlay',
  );
  t.true(healthy.findings.some((x) => x.check === 'mtu' && x.verdict === 'ok'));

  // UDP 8472 dropped on the way in at the peer (its INPUT sees the encapsulated packets).
  await lab.exec(h2.ns, 'iptables', ['-I', 'INPUT', '-p', 'udp', '--dport', '8472', '-j', 'DROP']);
  const udp = await check('UDP 8472 dropped at the peer', 1);
  t.true(
    failing(udp).some(
      (x) => x.check === 'underlay' && x.peer === s2 && x.what.includes('UDP 8472') && x.fix.includes('UDP 8472'),
    ),
  );
  await lab.exec(h2.ns, 'iptables', ['-D', 'INPUT', '-p', 'udp', '--dport', '8472', '-j', 'DROP']);

  // An MTU black hole: the switch port to h2 carries 1400 bytes; a full-size vxlan frame (1500)
  // is dropped by the bridge without an ICMP error, small ones pass.
  await lab.ip(`${lab.prefix}-sw`, ['link', 'set', 'p2', 'mtu', '1400']);
  t.true(await lab.ping(h1.ns, h2.ip), 'small packets still pass the underlay');
  t.not(
    (await lab.tryExec(h1.ns, 'ping', ['-n', '-q', '-c', '1', '-W', '1', '-M', 'do', '-s', '1472', h2.ip])).code,
    0,
    'the underlay really black-holes DF packets of 1500 bytes',
  );
  const mtu = await check('MTU black hole on the underlay', 1);
  t.true(
    failing(mtu).some(
      (x) => x.check === 'mtu' && x.peer === s2 && x.what.includes('MTU black hole') && x.fix.includes('host.mtu'),
    ),
  );
  await lab.ip(`${lab.prefix}-sw`, ['link', 'set', 'p2', 'mtu', '1500']);

  // A foreign, more specific route shadows weft's route to the peer (weft leaves it alone: not its own).
  const half = `${g2}/25`;
  await lab.ip(h1.ns, ['route', 'add', 'blackhole', half]);
  const shadow = await check("a foreign route shadowing the peer's", 1);
  t.true(
    failing(shadow).some(
      (x) =>
        x.check === 'route-lookup' &&
        x.what.includes(`blackhole ${half}`) &&
        x.fix.includes(`ip route del blackhole ${half}`),
    ),
  );
  await lab.ip(h1.ns, ['route', 'del', 'blackhole', half]);

  // weft stopped (SIGTERM leaves the datapath), then the peer's route deleted: nothing repairs it.
  step('stopping weft on h1');
  await h1.weft?.stop(5000);
  await lab.ip(h1.ns, ['route', 'del', s2]);
  const deleted = await check("the peer's route deleted, weft stopped", 1);
  t.true(
    failing(deleted).some(
      (x) =>
        x.check === 'datapath' &&
        x.peer === s2 &&
        x.what.includes(`the route ${s2} via ${g2} dev flannel.1 onlink is missing`) &&
        x.fix.includes('restart weft'),
    ),
  );
  t.true(
    failing(deleted).some(
      (x) => x.check === 'agent' && x.what.startsWith('agent not running') && x.fix.includes('systemctl start weft'),
    ),
  );
  await lab.ip(h1.ns, ['route', 'add', s2, 'via', g2, 'dev', 'flannel.1', 'onlink', 'proto', '175']);

  // FORWARD DROP and weft's jump gone (weft stopped, or it would put the jump back within 5 s).
  await lab.exec(h1.ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
  await lab.exec(h1.ns, 'iptables', [
    '-D',
    'FORWARD',
    '-m',
    'comment',
    '--comment',
    'flanneld forward',
    '-j',
    'FLANNEL-FWD',
  ]);
  const fwd = await check("FORWARD DROP without weft's chain", 1);
  t.true(
    failing(fwd).some(
      (x) =>
        x.check === 'forward' &&
        x.what.includes('forwarded container traffic is dropped') &&
        x.fix.includes('FLANNEL-FWD'),
    ),
  );
  await lab.exec(h1.ns, 'iptables', ['-P', 'FORWARD', 'ACCEPT']);
  step('restarting weft on h1');
  await lab.startWeft(h1, spec1);
  await until(
    async () => (await lab.exec(h1.ns, 'iptables-save', ['-t', 'filter'])).includes('-j FLANNEL-FWD'),
    10_000,
  );

  // Strict rp_filter: a risk, warned with the fix, not a failure.
  const before = (await lab.exec(h1.ns, 'sysctl', ['-n', 'net.ipv4.conf.all.rp_filter'])).trim();
  await lab.exec(h1.ns, 'sysctl', ['-qw', 'net.ipv4.conf.all.rp_filter=1']);
  const rp = await check('strict rp_filter', 0);
  t.true(
    rp.findings.some(
      (x) =>
        x.check === 'rp_filter' &&
        x.verdict === 'warn' &&
        x.what.includes('is a risk') &&
        x.fix.includes('rp_filter=2'),
    ),
  );
  await lab.exec(h1.ns, 'sysctl', ['-qw', `net.ipv4.conf.all.rp_filter=${before}`]);

  const again = await check('healthy again', 0);
  t.false(again.findings.some((x) => x.verdict === 'fail'));
});
