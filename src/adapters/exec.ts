/**
 * The only module that starts programs: argv arrays (never a shell), optional stdin, a
 * deadline, and the result as data. A missing binary is E_HOST; everything else is returned
 * for the caller to judge (ip -batch reports per-line failures on stderr with a non-zero exit).
 */
import { spawn } from 'node:child_process';
import { WeftError } from '../core/errors.js';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export function exec(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}) });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => { child.kill('SIGKILL'); }, opts.timeoutMs ?? 30_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined); // the program may exit before reading its input
    child.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new WeftError('E_HOST', e.code === 'ENOENT' ? `${cmd} is not installed (needed by weft)` : `cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString();
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString(), stderr: signal ? `${stderr}${cmd} killed by ${signal} (deadline)` : stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Run and require exit 0; the error names the command and quotes its stderr. */
export async function execOk(cmd: string, args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0) throw new WeftError('E_KERNEL', `${cmd} ${args.join(' ')} failed: ${r.stderr.trim() || `exit ${r.code}`}`, { retryable: true });
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
    while ((nl = buf.indexOf('\n')) >= 0) { onLine(buf.slice(0, nl)); buf = buf.slice(nl + 1); }
  });
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => { resolve(127); });
    child.once('close', (code) => { resolve(code ?? 0); });
  });
  return { stop: () => { child.kill('SIGTERM'); }, exited };
}

/** A long-running program fed on stdin, read on stderr (stdout is discarded); it never keeps weft alive. */
export interface Coprocess {
  write(text: string): void;
  kill(): void;
  readonly exited: Promise<number>;
}

export function startCoprocess(cmd: string, args: readonly string[], onStderr: (text: string) => void): Coprocess {
  const child = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
  child.stderr.on('data', (d: Buffer) => { onStderr(d.toString()); });
  child.stdin.on('error', () => undefined); // it died: `exited` says so
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => { resolve(127); });
    child.once('close', (code) => { resolve(code ?? 1); });
  });
  child.unref();
  // Pipes are sockets: unref'd, an idle coprocess never holds the event loop open at exit.
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  return { write: (text) => { child.stdin.write(text); }, kill: () => { child.kill('SIGKILL'); }, exited };
}

/**
 * Start a program that must outlive weft (wireguard-go serving a device across `weft run`
 * restarts): its own session, no pipes to weft, not waited for. Resolves once it started.
 */
export function spawnDetached(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true, ...(env ? { env } : {}) });
    child.once('error', (e: NodeJS.ErrnoException) => {
      reject(new WeftError('E_HOST', e.code === 'ENOENT' ? `${cmd} is not installed (needed by weft)` : `cannot run ${cmd}: ${e.message}`, { cause: e }));
    });
    child.once('spawn', () => { child.unref(); resolve(child.pid ?? 0); });
  });
}
