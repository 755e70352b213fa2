// The host.onOutputsChanged hook with real child processes (issue 28, LOW): it runs in a process
// group of its own, killed at its deadline, on stop, and once the program exits, so a hook that
// leaves a background child neither keeps a process behind nor wedges later runs; what is kept
// of its output is capped; and it runs at most once per interval, a trigger inside the interval
// running once when it ends with the latest values.
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { type Prefix, parsePrefix } from '../../src/core/net/cidr.js';
import type { BridgeState } from '../../src/core/outputs/bridge-outputs.js';
import { exec } from '../../src/adapters/exec.js';
import { jsonLogger } from '../../src/adapters/log.js';
import { OutputsHook } from '../../src/agent/outputs-hook.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-hook-'));
/** Each script writes its process group (its own pid: it leads the group) to a file here. */
const pgidFile = (name: string): string => join(dir, `${name}.pgid`);
test.after.always(() => {
  // On code without group kill, the sleepers would outlive the test: end them here.
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.pgid')))
    try {
      process.kill(-Number(readFileSync(join(dir, f), 'utf8')), 'SIGKILL');
    } catch {
      /* gone */
    }
  rmSync(dir, { recursive: true, force: true });
});

/** Live (not zombie) processes whose process group is `pgid`. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') out.push(Number(name));
  }
  return out;
}

/** Wait (bounded) until the group has no live member; returns what is left. */
async function groupGone(pgid: number, boundMs = 3000): Promise<number[]> {
  for (const t0 = Date.now(); Date.now() - t0 < boundMs; await new Promise((r) => setTimeout(r, 50)))
    if (groupMembers(pgid).length === 0) return [];
  return groupMembers(pgid);
}

/** A shell command that records its group in `name`.pgid, then runs `rest`. */
const script = (name: string, rest: string): string[] => ['-c', `echo $$ > ${pgidFile(name)}; ${rest}`];
const pgidOf = (name: string): number => Number(readFileSync(pgidFile(name), 'utf8'));

test('the deadline kills the whole group: a background sleeper the program forked is gone too', async (t) => {
  t.timeout(20_000, 'the run did not end at its deadline (its children hold the pipes)');
  const r = await exec('/bin/sh', script('deadline', 'sleep 3000 & sleep 3000'), { timeoutMs: 300, ownGroup: true });
  t.is(r.killedBy, 'deadline');
  t.regex(r.stderr, /killed by SIGKILL \(deadline\)$/);
  const pgid = pgidOf('deadline');
  t.true(pgid > 1);
  t.deepEqual(await groupGone(pgid), [], "no process of the hook's group remains after the deadline");
});

test('a program that exits leaving a background child completes when it exits, and the child is killed', async (t) => {
  // The sleeper holds the output pipes: before, the run waited for it (and the deadline killed only the shell, long gone).
  t.timeout(20_000, 'the run did not complete when the program exited');
  const r = await exec('/bin/sh', script('leaves', 'sleep 3000 & echo started'), { timeoutMs: 60_000, ownGroup: true });
  t.is(r.code, 0);
  t.is(r.stdout, 'started\n');
  t.is(r.killedBy, undefined, 'ended by its own exit, not by the deadline');
  t.deepEqual(await groupGone(pgidOf('leaves')), []);
});

test('stopping (the abort signal) kills the group of a run in flight', async (t) => {
  t.timeout(20_000, 'the run was not ended by the abort');
  const abort = new AbortController();
  const p = exec('/bin/sh', script('abort', 'sleep 3000 & sleep 3000'), {
    timeoutMs: 60_000,
    ownGroup: true,
    signal: abort.signal,
  });
  await new Promise((r) => setTimeout(r, 200));
  abort.abort();
  const r = await p;
  t.is(r.killedBy, 'abort');
  t.deepEqual(await groupGone(pgidOf('abort')), []);
});

test('what is kept of the output is capped: the last bytes, with how much was cut', async (t) => {
  const r = await exec(
    '/bin/sh',
    ['-c', 'head -c 1000000 /dev/zero | tr "\\0" x; echo END; head -c 50000 /dev/zero | tr "\\0" y >&2'],
    { maxOutputBytes: 4096 },
  );
  t.true(r.stdout.endsWith('xxxxEND\n'));
  t.true(r.stdout.length <= 4096 + 32, `${r.stdout.length} characters kept of stdout`);
  t.regex(r.stdout, /^\.\.\.\[\d+ bytes cut\]x/);
  t.regex(r.stderr, /^\.\.\.\[45904 bytes cut\]y+$/);
});

const pfx = (s: string): Prefix => {
  const p = parsePrefix(s);
  if (!p) throw new Error(s);
  return p;
};
const state = (mtu: number): BridgeState => ({
  mtu,
  v4: { network: pfx('198.18.0.0/16'), subnet: pfx('198.18.1.0/24') },
});

/** A hook script that appends one line per run to `out` (what it was told) and runs `extra`. */
function hookScript(name: string, extra: string): { program: string; out: string } {
  const program = join(dir, name);
  const out = join(dir, `${name}.out`);
  writeFileSync(program, `#!/bin/sh\necho "$WEFT_CHANGED $WEFT_PREVIOUS_MTU -> $WEFT_MTU" >> ${out}\n${extra}\n`);
  chmodSync(program, 0o755);
  return { program, out };
}
const lines = (file: string): string[] => {
  try {
    return readFileSync(file, 'utf8').trim().split('\n');
  } catch {
    return [];
  }
};
const log = jsonLogger({ write: () => undefined });

test('a hook that leaves a background child does not wedge: later triggers run, stop returns', async (t) => {
  const { program, out } = hookScript('leaves-child', `echo $$ > ${pgidFile('leaves-child')}; sleep 3000 &`);
  const hook = new OutputsHook({ program, subnetFile: '/run/flannel/subnet.env', log, minIntervalMs: 0 });
  const first = hook.trigger({ before: state(1450), after: state(1350) });
  await hook.idle();
  t.true(hook.succeededSince(first));
  const second = hook.trigger({ before: state(1350), after: state(1250) });
  await hook.idle();
  t.true(hook.succeededSince(second));
  t.deepEqual(lines(out), ['FLANNEL_MTU 1450 -> 1350', 'FLANNEL_MTU 1350 -> 1250']);
  t.like(hook.stats, { runs: 2, failures: 0 });
  t.deepEqual(await groupGone(pgidOf('leaves-child')), [], 'its background child was killed when it exited');
  await hook.stop();
});

test('a hook past its deadline is killed with its group and reported failed; stop kills a run in flight', async (t) => {
  const { program } = hookScript('hangs', `echo $$ > ${pgidFile('hangs')}; sleep 3000 & sleep 3000`);
  const hook = new OutputsHook({ program, subnetFile: '/s', log, timeoutMs: 300, minIntervalMs: 0 });
  const seq = hook.trigger({ before: state(1450), after: state(1350) });
  await hook.idle();
  t.false(hook.succeededSince(seq));
  t.like(hook.stats, { runs: 1, failures: 1 });
  t.deepEqual(await groupGone(pgidOf('hangs')), []);
  const long = new OutputsHook({ program, subnetFile: '/s', log, timeoutMs: 60_000, minIntervalMs: 0 });
  long.trigger({ before: state(1450), after: state(1350) });
  await new Promise((r) => setTimeout(r, 300));
  await long.stop();
  t.deepEqual(await groupGone(pgidOf('hangs')), [], 'stop killed the group');
  t.is(long.trigger({ before: state(1350), after: state(1250) }), 0, 'no run after stop');
});

test('at most one run per interval: triggers inside it run once when it ends, told the change since the last run', async (t) => {
  const { program, out } = hookScript('paced', 'date +%s%N >> $0.times');
  const minIntervalMs = 1500;
  const hook = new OutputsHook({ program, subnetFile: '/s', log, minIntervalMs });
  hook.trigger({ before: state(1450), after: state(1350) });
  await new Promise((r) => setTimeout(r, 200));
  hook.trigger({ before: state(1350), after: state(1250) });
  const last = hook.trigger({ before: state(1250), after: state(1150) });
  await hook.idle();
  t.true(hook.succeededSince(last));
  t.deepEqual(
    lines(out),
    ['FLANNEL_MTU 1450 -> 1350', 'FLANNEL_MTU 1350 -> 1150'],
    'one more run, from what the first was told to the latest',
  );
  const [a, b] = lines(`${program}.times`).map((x) => Number(BigInt(x) / 1_000_000n));
  t.true((b ?? 0) - (a ?? 0) >= minIntervalMs, 'the second run started at least the interval after the first');
  // A change and its undo inside the interval: nothing to tell, no run.
  const undo = hook.trigger({ before: state(1150), after: state(1450) });
  hook.trigger({ before: state(1450), after: state(1150) });
  await hook.idle();
  t.true(hook.succeededSince(undo));
  t.is(lines(out).length, 2);
  t.like(hook.stats, { runs: 2, skipped: 1 });
});

test('a hook others can write is not run (checked before every run), and says why', async (t) => {
  const { program, out } = hookScript('writable', '');
  chmodSync(program, 0o777);
  const seen: string[] = [];
  const hook = new OutputsHook({
    program,
    subnetFile: '/s',
    log: jsonLogger({
      write: (l) => {
        seen.push(l);
      },
    }),
    minIntervalMs: 0,
  });
  const seq = hook.trigger({ before: state(1450), after: state(1350) });
  await hook.idle();
  t.false(hook.succeededSince(seq));
  t.deepEqual(lines(out), []);
  t.true(
    seen.some(
      (l) =>
        l.includes('host.onOutputsChanged not run: its file is not safe to run as root') &&
        l.includes('is writable by group and others'),
    ),
  );
});
