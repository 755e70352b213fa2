/**
 * Processes started by tests: every one is tracked and killed when the test process exits,
 * pass or fail, so no etcd or dockerd outlives its test.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';

const live = new Set<ChildProcess>();

/**
 * What the test process is waiting for right now (commands running, conditions polled), so a
 * test that hits its bound can say what it was waiting for instead of just "timed out".
 */
const waits = new Map<number, { what: string; since: number; tail?: () => string }>();
let waitSeq = 0;
function waitingFor(what: string, tail?: () => string): () => void {
  const id = waitSeq++;
  waits.set(id, { what, since: Date.now(), ...(tail ? { tail } : {}) });
  return () => {
    waits.delete(id);
  };
}

/** A readable account of every pending wait, oldest first, with the last output lines of commands. */
export function pendingWaits(tailLines = 15): string {
  if (waits.size === 0) return 'nothing pending (the test body itself is stuck)';
  return [...waits.values()]
    .map((w) => {
      const tail = w.tail?.().trimEnd().split('\n').slice(-tailLines).join('\n    ') ?? '';
      return `- ${w.what} (for ${Math.round((Date.now() - w.since) / 1000)} s)${tail ? `\n    last output:\n    ${tail}` : ''}`;
    })
    .join('\n');
}

const shortCommand = (cmd: string, args: readonly string[]): string => {
  const text = [cmd, ...args].join(' ');
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
};

function killAll(): void {
  for (const c of live) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGCONT');
    } catch {
      /* gone */
    }
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  live.clear();
}
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });

export interface Started {
  readonly child: ChildProcess;
  /** stdout and stderr, interleaved (the last 200 kB). */
  output(): string;
  /** stdout alone. */
  stdout(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function start(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Started {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  live.add(child);
  let out = '';
  let stdout = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-200_000);
  };
  child.stdout?.on('data', (d: Buffer) => {
    keep(d);
    stdout = (stdout + d.toString()).slice(-200_000);
  });
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
  });
  return {
    child,
    output: () => out,
    stdout: () => stdout,
    stop: async (graceMs = 3000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        if (child.pid) process.kill(child.pid, 'SIGCONT');
      } catch {
        /* gone */
      }
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

export interface RunOptions extends SpawnOptions {
  /** Kill the command (SIGKILL) after this long; default 120 s. `timedOut` says it happened. */
  readonly timeoutMs?: number;
}

/**
 * Run a command to completion, bounded in time: a hung command is killed and reported
 * (`timedOut`), never waited on forever. While it runs it is listed by pendingWaits().
 */
export async function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<{ code: number | null; out: string; stdout: string; timedOut: boolean }> {
  const { timeoutMs = 120_000, ...spawnOpts } = opts;
  const p = start(cmd, args, spawnOpts);
  const done = waitingFor(`command: ${shortCommand(cmd, args)}`, () => p.output());
  const state = { timedOut: false };
  const timer = setTimeout(() => {
    state.timedOut = true;
    p.child.kill('SIGKILL');
  }, timeoutMs);
  try {
    await new Promise<void>((resolve) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) resolve();
      else
        p.child.once('close', () => {
          resolve();
        });
    });
  } finally {
    clearTimeout(timer);
    done();
  }
  return {
    code: p.child.exitCode,
    out: state.timedOut ? `${p.output()}\n[killed after ${timeoutMs} ms: ${shortCommand(cmd, args)}]` : p.output(),
    stdout: p.stdout(),
    timedOut: state.timedOut,
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `fn` until it returns a truthy value or `timeoutMs` passes. `what` names the condition
 * (in the timeout error and in pendingWaits()); without it, the caller's source line does.
 */
export async function until<T>(fn: () => Promise<T> | T, timeoutMs: number, stepMs = 50, what?: string): Promise<T> {
  const label = what ?? callerLine();
  const done = waitingFor(`condition: ${label}`);
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  try {
    for (;;) {
      try {
        const v = await fn();
        if (v) return v;
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${label}${last instanceof Error ? `: ${last.message}` : ''}`,
        );
      await sleep(stepMs);
    }
  } finally {
    done();
  }
}

/** `file:line` of the test code that called until() (compiled JS lines; close enough to find it). */
function callerLine(): string {
  const lines = (new Error().stack ?? '').split('\n').slice(3);
  const hit = lines.find((l) => !l.includes('/helpers/procs.'));
  const m = /\(?((?:file:\/\/)?[^()]*?\/(?:test|bench)\/[^():]+):(\d+):\d+\)?$/.exec(hit ?? '');
  return m ? `${(m[1] ?? '').replace(/^.*\/dist\//, '')}:${m[2] ?? ''}` : 'a condition';
}
