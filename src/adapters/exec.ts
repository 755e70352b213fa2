/**
 * The only module that starts programs: argv arrays (never a shell), optional stdin, a
 * deadline, and the result as data. A missing binary is E_HOST; everything else is returned
 * for the caller to judge (ip -batch reports per-line failures on stderr with a non-zero exit).
 * An operator's program (the outputs hook) can run in a process group of its own, so that
 * nothing it starts outlives its run, with what is kept of its output capped.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { WeftError } from '../core/base/errors.js';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Set when weft killed it: at its deadline, or because `signal` aborted (weft is stopping). */
  readonly killedBy?: 'deadline' | 'abort';
}

export interface ExecOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * Run it in a process group of its own (an operator's program, which may start children):
   * the deadline and `signal` kill the whole group, and once the program itself exits whatever
   * it left in its group is killed too, so a background child can neither outlive the run nor
   * keep it from completing by holding its output pipes open.
   */
  readonly ownGroup?: boolean;
  /** Kill it (its group with `ownGroup`) when this aborts. */
  readonly signal?: AbortSignal;
  /** Keep only the last this many bytes of stdout and of stderr (default: all). */
  readonly maxOutputBytes?: number;
}

/** After the program exits, how long its output pipes may stay open (held by a child that left its group) before weft closes them. */
const PIPE_GRACE_MS = 1000;

/** The last `maxBytes` of a stream, with a marker saying how much was cut. */
class Tail {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private cut = 0;
  constructor(private readonly maxBytes: number) {}

  push(d: Buffer): void {
    this.chunks.push(d);
    this.bytes += d.length;
    if (this.bytes > 2 * this.maxBytes) this.compact();
  }

  private compact(): void {
    const all = Buffer.concat(this.chunks);
    const keep = Math.min(all.length, this.maxBytes);
    this.cut += all.length - keep;
    this.chunks = [all.subarray(all.length - keep)];
    this.bytes = keep;
  }

  text(): string {
    if (this.bytes > this.maxBytes) this.compact();
    const body = Buffer.concat(this.chunks).toString();
    return this.cut > 0 ? `...[${this.cut} bytes cut]${body}` : body;
  }
}

export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const group = opts.ownGroup ?? false;
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(opts.env ? { env: opts.env } : {}),
      ...(group ? { detached: true } : {}),
    });
    const max = opts.maxOutputBytes ?? Number.MAX_SAFE_INTEGER;
    const out = new Tail(max);
    const err = new Tail(max);
    const killer = armKill(child, group, opts);
    const reaper = group ? reapGroupOnExit(child) : undefined;
    const done = (): void => {
      killer.disarm();
      reaper?.disarm();
    };
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
    });
    child.stderr.on('data', (d: Buffer) => {
      err.push(d);
    });
    child.stdin.on('error', () => undefined); // the program may exit before reading its input
    child.once('error', (e: NodeJS.ErrnoException) => {
      done();
      reject(
        new WeftError(
          'E_HOST',
          e.code === 'ENOENT' ? `${cmd} is not installed (needed by weft)` : `cannot run ${cmd}: ${e.message}`,
          { cause: e },
        ),
      );
    });
    child.once('close', (code, signal) => {
      done();
      const stderr = err.text();
      const killedBy = killer.killedBy();
      const why = killedBy === 'abort' ? ' (weft is stopping)' : killedBy === 'deadline' ? ' (deadline)' : '';
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: out.text(),
        stderr: signal ? `${stderr}${cmd} killed by ${signal}${why}` : stderr,
        ...(killedBy ? { killedBy } : {}),
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Kills the program (its whole group with `group`) at its deadline or when `signal` aborts, whichever comes first. */
function armKill(
  child: ChildProcess,
  group: boolean,
  opts: ExecOptions,
): { killedBy(): ExecResult['killedBy']; disarm(): void } {
  let killedBy: ExecResult['killedBy'];
  const kill = (why: 'deadline' | 'abort'): void => {
    killedBy ??= why;
    if (group) killGroup(child.pid);
    else child.kill('SIGKILL');
  };
  const timer = setTimeout(() => {
    kill('deadline');
  }, opts.timeoutMs ?? 30_000);
  const onAbort = (): void => {
    kill('abort');
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  return {
    killedBy: () => killedBy,
    disarm: () => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * Once a group leader exits, kill what it left in its group (whose children hold its pipes
 * open), and stop reading the pipes after a grace if a child that left the group (setsid)
 * still holds them.
 */
function reapGroupOnExit(child: ChildProcess): { disarm(): void } {
  let grace: NodeJS.Timeout | undefined;
  child.once('exit', () => {
    killGroup(child.pid);
    grace = setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
    }, PIPE_GRACE_MS);
  });
  return {
    disarm: () => {
      clearTimeout(grace);
    },
  };
}

/** SIGKILL every process of the group `pid` leads (ESRCH: none left). */
function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* the group is gone */
  }
}

/** Run and require exit 0; the error names the command and quotes its stderr. */
export async function execOk(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0)
    throw new WeftError('E_KERNEL', `${cmd} ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}`, {
      retryable: true,
    });
  return r.stdout;
}

/** A long-running program whose stdout lines go to `onLine`; `stop()` ends it. */
export interface LineStream {
  stop(): void;
  readonly exited: Promise<number>;
}

export function streamLines(cmd: string, args: readonly string[], onLine: (line: string) => void): LineStream {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => {
      resolve(127);
    });
    child.once('close', (code) => {
      resolve(code ?? 0);
    });
  });
  return {
    stop: () => {
      child.kill('SIGTERM');
    },
    exited,
  };
}

/** A long-running program fed on stdin, read on stderr (stdout is discarded); it never keeps weft alive. */
export interface Coprocess {
  write(text: string): void;
  kill(): void;
  readonly exited: Promise<number>;
}

export function startCoprocess(cmd: string, args: readonly string[], onStderr: (text: string) => void): Coprocess {
  const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  child.stderr.on('data', (d: Buffer) => {
    onStderr(d.toString());
  });
  child.stdin.on('error', () => undefined); // it died: `exited` says so
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => {
      resolve(127);
    });
    child.once('close', (code) => {
      resolve(code ?? 1);
    });
  });
  child.unref();
  // Pipes are sockets: unref'd, an idle coprocess never holds the event loop open at exit.
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  return {
    write: (text) => {
      child.stdin.write(text);
    },
    kill: () => {
      child.kill('SIGKILL');
    },
    exited,
  };
}

/**
 * Start a program that must outlive weft (wireguard-go serving a device across `weft run`
 * restarts): its own session, no pipes to weft, not waited for. Resolves once it started.
 */
export function spawnDetached(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true, ...(env ? { env } : {}) });
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        new WeftError(
          'E_HOST',
          e.code === 'ENOENT' ? `${cmd} is not installed (needed by weft)` : `cannot run ${cmd}: ${e.message}`,
          { cause: e },
        ),
      );
    });
    child.once('spawn', () => {
      child.unref();
      resolve(child.pid ?? 0);
    });
  });
}
