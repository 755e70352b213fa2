/**
 * The standalone executable (dist/weft: Node.js inside, scripts/build-exe.mjs) on a host with
 * no Node.js: h1 runs it inside its network namespace and a private mount namespace in which
 * every node binary of this machine is covered by an empty, non-executable file, so `node` is
 * neither on the PATH nor readable there. h2 runs the one-file bundle (node dist/weft.mjs) and
 * h3 the compiled CLI; all three form one vxlan fabric and every pair of containers must reach
 * each other. Start-to-ready of the executable and of the bundle are measured side by side
 * (docs/benchmarks.md).
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readlinkSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bounded } from '../helpers/bound.js';
import { REPO } from '../helpers/cli.js';
import { ensureExe } from '../helpers/exe.js';
import { pingAll } from '../helpers/fabric.js';
import { Lab, type LabHost } from '../helpers/lab.js';
import { type Started, run, start, until } from '../helpers/procs.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Every node binary this machine has (each name on the PATH, and what they point to). */
function nodeBinaries(): string[] {
  const found = new Set<string>([process.execPath, realpathSync(process.execPath)]);
  for (const dir of PATH.split(':')) {
    for (const name of ['node', 'nodejs']) {
      const p = join(dir, name);
      if (existsSync(p)) {
        found.add(p);
        found.add(realpathSync(p));
      }
    }
  }
  return [...found].filter((p) => statSync(p).isFile());
}

/**
 * argv running `cmd` on host h with no Node.js: in h's network namespace and a private mount
 * namespace where `blank` (empty, mode 000) is bind-mounted over every node binary. It refuses
 * to run (exit 97) if node can still be found or read there.
 */
function withoutNode(h: LabHost, blank: string, hidden: string[], cmd: string, args: string[]): [string, string[]] {
  const script = [
    'b=$1; shift',
    'while [ "$1" != -- ]; do mount --bind "$b" "$1" || exit 96; h="$h $1"; shift; done; shift',
    'if command -v node >/dev/null 2>&1 || command -v nodejs >/dev/null 2>&1; then echo "node is on the PATH" >&2; exit 97; fi',
    'for f in $h; do if [ -s "$f" ]; then echo "$f is readable" >&2; exit 97; fi; done',
    'exec "$@"',
  ].join('\n');
  return [
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      '--',
      '/bin/sh',
      '-c',
      script,
      'sh',
      blank,
      ...hidden,
      '--',
      'nsenter',
      `--net=/var/run/netns/${h.ns}`,
      cmd,
      ...args,
    ],
  ];
}

async function ready(p: Started, what: string): Promise<number> {
  const t0 = Date.now();
  await until(
    () => {
      if (p.child.exitCode !== null) throw new Error(`${what} exited ${p.child.exitCode}: ${p.output()}`);
      return p.output().includes('"msg":"ready"');
    },
    30_000,
    10,
    `${what} ready`,
  );
  return Date.now() - t0;
}

test('the standalone executable, on a host with no Node.js, is one host of a three-host fabric', async (t) => {
  const step = bounded(t, 150_000);
  step('building the executable and the bundle');
  const exe = await ensureExe();
  const lab = await Lab.create({ hosts: 3 });
  t.teardown(() => lab.destroy());
  const bundle = join(lab.dir, 'weft.mjs');
  const b = await run(process.execPath, [join(REPO, 'scripts/bundle.mjs'), bundle], { cwd: REPO });
  t.is(b.code, 0, b.out);
  const [h1, h2, h3] = lab.hosts;
  if (!h1 || !h2 || !h3) throw new Error('no hosts');
  const blank = join(lab.dir, 'no-node');
  writeFileSync(blank, '');
  chmodSync(blank, 0);
  const hidden = nodeBinaries();
  t.log(
    `node binaries hidden on h1: ${hidden.join(', ')}; executable ${(statSync(exe).size / 2 ** 20).toFixed(1)} MiB`,
  );

  step('--version with no node');
  const [vc, va] = withoutNode(h1, blank, hidden, exe, ['--version']);
  const v = await run(vc, va, { env: { PATH } });
  t.is(v.code, 0, v.out);
  t.regex(
    v.stdout.trim(),
    new RegExp(
      `^\\d+\\.\\d+\\.\\d+\\S* \\(standalone executable, embedded Node\\.js ${process.version.replace(/\./g, '\\.')}\\)$`,
    ),
  );
  // The guard really guards: asking for node there fails.
  const [nc, na] = withoutNode(h1, blank, hidden, '/bin/sh', ['-c', 'exec node -e 0']);
  t.not((await run(nc, na, { env: { PATH } })).code, 0, 'node does not run inside the no-node namespace');

  step('h3 (compiled CLI), h2 (bundle), h1 (executable, no node) start');
  const specs = lab.hosts.map((h) => lab.writeSpec(h, 'cidr: 198.18.0.0/16\nbackend: {type: vxlan}'));
  await lab.startWeft(h3, specs[2] ?? '');
  const env = (h: LabHost) => ({ PATH, WEFT_HOST_ID: `${lab.prefix}-${h.name}` });
  const pBundle = start(
    'nsenter',
    [`--net=/var/run/netns/${h2.ns}`, process.execPath, bundle, 'run', '--spec', specs[1] ?? ''],
    { env: env(h2) },
  );
  lab.onDestroy(() => pBundle.stop());
  h2.weft = pBundle;
  const bundleMs = await ready(pBundle, 'the bundle on h2');
  const [ec, ea] = withoutNode(h1, blank, hidden, exe, ['run', '--spec', specs[0] ?? '']);
  const pExe = start(ec, ea, { env: env(h1) });
  lab.onDestroy(() => pExe.stop());
  h1.weft = pExe;
  const exeMs = await ready(pExe, 'the executable on h1');
  t.log(`start to ready (a lease acquired, the datapath programmed): executable ${exeMs} ms, bundle ${bundleMs} ms`);
  t.regex(pExe.output(), /"msg":"ready"/);

  step('every pair reaches each other');
  const containers = [];
  for (const h of lab.hosts) containers.push({ ...(await lab.addContainer(h)), host: h });
  t.deepEqual(
    await pingAll({ lab, specs, containers, addContainers: () => Promise.resolve() }),
    [],
    'every pair of hosts reaches each other over the overlay',
  );
  t.is(pExe.child.exitCode, null, 'the executable still runs');
  const rss = (pid: number | undefined) =>
    /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${String(pid)}/status`, 'utf8'))?.[1] ?? '?';
  t.is(readlinkSync(`/proc/${String(pExe.child.pid)}/exe`), exe, "h1's weft is the executable itself");
  t.log(`resident memory once converged: executable ${rss(pExe.child.pid)} kB, bundle ${rss(pBundle.child.pid)} kB`);

  step('--version start-up time');
  const median = (xs: number[]) => xs.sort((a, c) => a - c)[Math.floor(xs.length / 2)] ?? 0;
  const time = (cmd: string, args: string[]) =>
    median(
      Array.from({ length: 5 }, () => {
        const s = process.hrtime.bigint();
        execFileSync(cmd, args, { stdio: 'ignore' });
        return Number(process.hrtime.bigint() - s) / 1e6;
      }),
    );
  t.log(
    `weft --version, median of 5: executable ${time(exe, ['--version']).toFixed(0)} ms, bundle ${time(process.execPath, [bundle, '--version']).toFixed(0)} ms`,
  );
});
