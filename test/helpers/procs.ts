/**
 * Processes started by tests: every one is tracked and killed when the test process exits,
 * pass or fail, so no etcd or dockerd outlives its test.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';

const live = new Set<ChildProcess>();

function killAll(): void {
  for (const c of live) {
    try { if (c.pid) process.kill(c.pid, 'SIGCONT'); } catch { /* gone */ }
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  live.clear();
}
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { killAll(); process.exit(130); });

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
  const keep = (d: Buffer): void => { out = (out + d.toString()).slice(-200_000); };
  child.stdout?.on('data', (d: Buffer) => { keep(d); stdout = (stdout + d.toString()).slice(-200_000); });
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { live.delete(child); resolve(); }); });
  return {
    child,
    output: () => out,
    stdout: () => stdout,
    stop: async (graceMs = 3000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try { if (child.pid) process.kill(child.pid, 'SIGCONT'); } catch { /* gone */ }
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function run(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Promise<{ code: number | null; out: string; stdout: string }> {
  const p = start(cmd, args, opts);
  await new Promise<void>((resolve) => { if (p.child.exitCode !== null) resolve(); else p.child.once('close', () => { resolve(); }); });
  return { code: p.child.exitCode, out: p.output(), stdout: p.stdout() };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value or `timeoutMs` passes. */
export async function until<T>(fn: () => Promise<T> | T, timeoutMs: number, stepMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(stepMs);
  }
}
