/** Shared by the lab benchmarks: an etcd client inside the lab, route watchers, statistics. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabHost } from '../../test/helpers/lab.js';
import type { Started } from '../../test/helpers/procs.js';

import { unitEnvironment as environmentOf } from '../../test/helpers/unit-env.js';

export { EtcdAgent } from '../../test/helpers/lab-etcd.js';

/**
 * The environment units/weft.service gives weft (NODE_OPTIONS), so benchmarks measure weft as
 * deployed; `--node-options "..."` on the benchmark's command line replaces NODE_OPTIONS (to
 * compare V8 settings in one session).
 */
export function unitEnvironment(): Record<string, string> {
  const unit = readFileSync(join(import.meta.dirname, '../../../units/weft.service'), 'utf8');
  const i = process.argv.indexOf('--node-options');
  const override = i > 0 ? process.argv[i + 1] : undefined;
  return { ...environmentOf(unit), ...(override !== undefined ? { NODE_OPTIONS: override } : {}) };
}

/**
 * What runs weft: with `--bundle` on the benchmark's command line, the one-file ESM bundle
 * (dist/weft.mjs, built now by `npm run bundle`'s script; the standalone executable and the
 * Debian package embed the same sources bundled as CommonJS, loaded in one piece the same way);
 * otherwise (undefined) the compiled tree, dist/src/cli/weft.js, as `npm install -g` runs it.
 */
export function weftEntry(): string | undefined {
  if (!process.argv.includes('--bundle')) return undefined;
  const root = join(import.meta.dirname, '../../..');
  const out = join(root, 'dist/weft.mjs');
  execFileSync(process.execPath, [join(root, 'scripts/bundle.mjs'), out], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return out;
}

/** `ip -ts monitor route` in a host's namespace: when a route to a subnet appeared or went. */
export class RouteWatch {
  private constructor(private readonly p: Started) {}

  static start(lab: Lab, h: LabHost): RouteWatch {
    return new RouteWatch(lab.spawnIn(h.ns, 'ip', ['-ts', 'monitor', 'route'], { ...process.env, TZ: 'UTC' }));
  }

  /** Epoch ms of the first add ("add") or deletion ("del") of `subnet` at or after `after`. */
  seen(kind: 'add' | 'del', subnet: string, after: number): number | undefined {
    for (const line of this.p.stdout().split('\n')) {
      const m = /^\[(\S+)\] (Deleted )?(\S+)/.exec(line);
      if (!m || m[3] !== subnet || (kind === 'del') !== Boolean(m[2])) continue;
      const t = Date.parse(`${m[1] ?? ''}Z`);
      if (t >= after - 1) return t;
    }
    return undefined;
  }
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** A Markdown table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export function macFor(i: number): string {
  const b = [0x0e, 0x57, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, 0x01];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/**
 * A process's resident memory now and at its peak (VmRSS, VmHWM), in MB, and what is resident
 * now split into anonymous memory (heaps, stacks: the process's own) and file-backed pages
 * (mostly the node executable's code, shared with every other process running it).
 */
export function procMemoryMB(pid: number): { rss: number; hwm: number; anon: number; file: number } {
  const s = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const mb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1]) / 1024;
  return { rss: mb('VmRSS'), hwm: mb('VmHWM'), anon: mb('RssAnon'), file: mb('RssFile') };
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ). */
export const TICK = 100;

/** utime, stime, cutime, cstime in clock ticks (fields 14-17 of /proc/PID/stat; cutime/cstime: children waited for). */
export function cpuParts(pid: number): number[] {
  const f =
    readFileSync(`/proc/${String(pid)}/stat`, 'utf8')
      .split(') ')[1]
      ?.split(' ') ?? [];
  // fields after "pid (comm) ": state is [0]
  return [11, 12, 13, 14].map((i) => Number(f[i] ?? 0));
}

/** A process's CPU time with its children's, in clock ticks. */
export const cpuTicks = (pid: number): number => cpuParts(pid).reduce((s, x) => s + x, 0);
