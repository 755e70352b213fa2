// Issue 28 finding 3 (part): any etcd writer can change <prefix>/config. On a running fabric
// (real etcd, namespaces, the kernel datapath), a value toggled every 2 s for 20 s:
// - with the default pace (5 s hold-down, one change per 30 s), every host applies at most one
//   change (the latest value, once stable) and runs host.onOutputsChanged at most once, and
//   status and /metrics say a change is pending and when it is applied;
// - a host paced fast (1 s / 1 s) applies the values, but its hook never runs back to back
//   (at most one run a minute);
// - a host with host.followConfig: false applies none, reports the newer config (status, one log
//   line, a metric), and uses it when it starts again; `weft apply` still works;
// - weft run refuses to start with a hook others can write.
import test from 'ava';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applySpec, fabric } from '../helpers/fabric.js';
import type { LabHost } from '../helpers/lab.js';
import type { Lab } from '../helpers/lab.js';
import { bounded } from '../helpers/bound.js';
import { parseMetrics, sample } from '../helpers/metrics.js';
import { until } from '../helpers/procs.js';

const NETWORK = 'cidr: 198.18.0.0/17\nbackend:\n  type: vxlan\n';
const KEY = '/coreos.com/network/config';
/** Two configs to toggle between, both different from the one the hosts start with (overlay MTU 1350 and 1250). */
const X = '{"Network":"198.18.0.0/17","Backend":{"Type":"vxlan","MTU":1400}}';
const Y = '{"Network":"198.18.0.0/17","Backend":{"Type":"vxlan","MTU":1300}}';
const WRITES = 10;
const EVERY_MS = 2000;
const LISTEN = 'listen: 127.0.0.1:9473\n';

/** A hook that appends one line per run: when, and what it was told. */
function hook(lab: Lab, name: string): { program: string; runs: () => string[] } {
  const program = join(lab.dir, `${name}-hook.sh`);
  const out = join(lab.dir, `${name}-hook.out`);
  writeFileSync(program, `#!/bin/sh\necho "$(date +%s%3N) $WEFT_CHANGED $WEFT_PREVIOUS_MTU -> $WEFT_MTU" >> ${out}\n`);
  chmodSync(program, 0o755);
  const runs = (): string[] => {
    try {
      return readFileSync(out, 'utf8')
        .trim()
        .split('\n')
        .filter((l) => l !== '');
    } catch {
      return [];
    }
  };
  return { program, runs };
}

const applied = (h: LabHost): number =>
  ((h.weft?.output() ?? '').match(/"msg":"network config changed; applied live"/g) ?? []).length;
const deviceMTU = async (lab: Lab, h: LabHost): Promise<number> =>
  Number(/ mtu (\d+) /.exec(await lab.ip(h.ns, ['link', 'show', 'flannel.1']))?.[1] ?? 0);
interface Status {
  warnings: string[];
  configPending: { reason: string; since: string; applyAt: string | null } | null;
}
const status = async (lab: Lab, h: LabHost): Promise<Status> =>
  JSON.parse((await lab.httpGet(h.ns, 'http://127.0.0.1:9473/status')).body) as Status;
const metric = async (
  lab: Lab,
  h: LabHost,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> =>
  sample(parseMetrics((await lab.httpGet(h.ns, 'http://127.0.0.1:9473/metrics')).body), name, labels);

/** Write X, Y, X, ... every 2 s (the last one is Y); `during` runs once, 500 ms after the fourth write. */
async function toggle(lab: Lab, during: () => Promise<void>): Promise<void> {
  for (let i = 0; i < WRITES; i++) {
    const t0 = Date.now();
    await lab.etcdctl(['put', KEY, i % 2 === 0 ? X : Y]);
    if (i === 3) {
      await new Promise((r) => setTimeout(r, 500));
      await during();
    }
    await new Promise((r) => setTimeout(r, Math.max(0, EVERY_MS - (Date.now() - t0))));
  }
}

test.serial(
  'a config toggled every 2 s for 20 s: each host applies at most one change (the latest, once stable) and runs its hook at most once',
  async (t) => {
    const step = bounded(t, 150_000);
    const f = await fabric(t, { hosts: 2, network: NETWORK, start: 0 });
    const [h1, h2] = f.lab.hosts as [LabHost, LabHost];
    const hooks = [hook(f.lab, 'h1'), hook(f.lab, 'h2')];
    for (const [i, h] of [h1, h2].entries())
      await f.lab.startWeft(
        h,
        f.lab.writeSpec(h, NETWORK, { host: `onOutputsChanged: ${hooks[i]?.program ?? ''}\n${LISTEN}` }),
      );
    t.is(await deviceMTU(f.lab, h1), 1450);

    step('toggling');
    let midway: Status | undefined;
    let pendingMetric: number | undefined;
    await toggle(f.lab, async () => {
      midway = await status(f.lab, h1);
      pendingMetric = await metric(f.lab, h1, 'weft_config_pending', { reason: 'hold-down' });
    });
    const lastWriteMs = Date.now() - EVERY_MS;
    t.log(`while toggling, h1 /status configPending: ${JSON.stringify(midway?.configPending)}`);
    const during = [h1, h2].map(applied);
    t.log(
      `changes applied while the value toggled: h1 ${during[0] ?? 0}, h2 ${during[1] ?? 0}; hook runs: ${hooks.map((x) => x.runs().length).join(', ')}`,
    );

    step('the latest value, once stable');
    for (const h of [h1, h2])
      await until(
        async () => (await deviceMTU(f.lab, h)) === 1250 && f.lab.subnetText(h).includes('FLANNEL_MTU=1250\n'),
        15_000,
        100,
        `${h.name} on the last value (MTU 1250)`,
      );
    t.log(`h1 took up the last value ${Date.now() - lastWriteMs} ms after it was written (hold-down 5 s)`);
    await until(() => hooks.every((x) => x.runs().length >= 1), 10_000, 100, 'each hook ran for the change');
    await new Promise((r) => setTimeout(r, 1000)); // anything still to come would come now
    for (const [i, h] of [h1, h2].entries()) {
      t.is(applied(h), 1, `${h.name}: one change applied for ${WRITES} writes`);
      t.deepEqual(
        hooks[i]?.runs().map((l) => l.split(' ').slice(1).join(' ')),
        ['FLANNEL_MTU 1450 -> 1250'],
        `${h.name}: one hook run, with the latest values`,
      );
    }
    t.is(midway?.configPending?.reason, 'hold-down', 'while it toggled, status said a change was pending');
    t.true(
      midway?.configPending?.applyAt !== null &&
        Date.parse(midway?.configPending?.applyAt ?? '') > Date.parse(midway?.configPending?.since ?? ''),
      'and when it would be applied',
    );
    t.is(pendingMetric, 1, 'weft_config_pending{reason="hold-down"} was 1');
    t.is(await metric(f.lab, h1, 'weft_config_changes_total', { result: 'applied' }), 1);
    t.is(await metric(f.lab, h1, 'weft_config_pending', { reason: 'hold-down' }), 0);
    t.is((await status(f.lab, h1)).configPending, null);
    t.regex(
      h1.weft?.output() ?? '',
      /"msg":"network config change pending; applied once the stored value has been stable"/,
    );
  },
);

test.serial(
  'a hook others can write stops weft run; a host paced fast never runs its hook back to back; a host with host.followConfig: false applies nothing, reports it, and uses it at its next start',
  async (t) => {
    const step = bounded(t, 180_000);
    const f = await fabric(t, { hosts: 2, network: NETWORK, start: 0 });
    const [fast, still] = f.lab.hosts as [LabHost, LabHost];
    const fastHook = hook(f.lab, 'fast');
    const stillSpec = f.lab.writeSpec(still, NETWORK, { host: `followConfig: false\n${LISTEN}` });
    const fastSpec = f.lab.writeSpec(fast, NETWORK, {
      host: `onOutputsChanged: ${fastHook.program}\nconfigHoldDown: 1s\nconfigMinInterval: 1s\n`,
    });
    step('a hook others can write: weft run refuses to start');
    chmodSync(fastHook.program, 0o777);
    const refused = await f.lab.startWeft(fast, fastSpec).then(
      () => 'started',
      (e: unknown) => String(e),
    );
    t.regex(refused, /weft exited 1 before it was ready/);
    t.regex(
      refused,
      /host\.onOutputsChanged \S+ is writable by group and others \(mode 0777\); fix: chown root:root \S+ && chmod go-w/,
    );
    chmodSync(fastHook.program, 0o755);
    await f.lab.startWeft(fast, fastSpec);
    await f.lab.startWeft(still, stillSpec);

    step('toggling');
    let midway: Status | undefined;
    await toggle(f.lab, async () => {
      midway = await status(f.lab, still);
    });
    t.is(midway?.configPending?.reason, 'not-followed', 'following off: the newer stored config is shown at once');
    t.is(midway?.configPending?.applyAt, null, 'with no apply time: it is used at the next start');
    t.true(
      midway?.warnings.some((w) =>
        /and is not in use: live following is off \(host\.followConfig: false\); it is used at the next start/.test(w),
      ),
    );

    step('weft apply still works (the fast host follows it, the other does not)');
    const out = await applySpec(f, 'mtu-1200', 'cidr: 198.18.0.0/17\nbackend:\n  type: vxlan\n  mtu: 1250\n');
    t.regex(out, /Backend\.MTU/);
    await until(async () => (await deviceMTU(f.lab, fast)) === 1200, 10_000, 100, "the fast host on weft apply's MTU");
    const fastApplied = applied(fast);
    t.log(
      `fast host (1 s hold-down, 1 s interval): ${fastApplied} changes applied, hook runs: ${JSON.stringify(fastHook.runs())}`,
    );
    t.true(fastApplied >= 3, 'it followed the values at its own pace');
    t.is(fastHook.runs().length, 1, 'but its hook ran once: at most one run a minute, the rest deferred');
    t.regex(
      fast.weft?.output() ?? '',
      /"msg":"host\.onOutputsChanged deferred: at most one run per interval; it runs then with the latest values"/,
    );

    step('following off: nothing applied, one report');
    await until(
      () => (still.weft?.output() ?? '').includes('not applied (host.followConfig is false)'),
      10_000,
      100,
      'the report',
    );
    t.is(applied(still), 0);
    t.is(await deviceMTU(f.lab, still), 1450);
    t.true(f.lab.subnetText(still).includes('FLANNEL_MTU=1450\n'));
    t.is(await metric(f.lab, still, 'weft_config_pending', { reason: 'not-followed' }), 1);
    const reports = (
      (still.weft?.output() ?? '').match(
        /"msg":"the stored network config differs from the one running; not applied \(host\.followConfig is false\): it is used at the next start"/g,
      ) ?? []
    ).length;
    t.log(`following off: ${reports} report line(s) for ${WRITES + 1} writes, 0 changes applied`);
    t.true(reports >= 1 && reports <= 2, `${reports} report lines for ${WRITES + 1} writes (paced like changes)`);

    step('the next start uses the stored config');
    await still.weft?.stop();
    await f.lab.startWeft(still, stillSpec);
    t.is(await deviceMTU(f.lab, still), 1200);
    t.true(f.lab.subnetText(still).includes('FLANNEL_MTU=1200\n'));
    t.is((await status(f.lab, still)).configPending, null);
  },
);
