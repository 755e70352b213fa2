/** Shared by the lab benchmarks: an etcd client inside the lab, route watchers, statistics. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab, LabHost } from '../../test/helpers/lab.js';
import type { Started } from '../../test/helpers/procs.js';
import { until } from '../../test/helpers/procs.js';

const AGENT = join(import.meta.dirname, 'etcd-agent.js');

/** The environment units/weft.service gives weft (NODE_OPTIONS), so benchmarks measure weft as deployed. */
export function unitEnvironment(): Record<string, string> {
  const unit = readFileSync(join(import.meta.dirname, '../../../units/weft.service'), 'utf8');
  return Object.fromEntries([...unit.matchAll(/^Environment=(\w+)=(.*)$/gm)].map((m) => [m[1] ?? '', m[2] ?? '']));
}

/** A JSON-lines etcd client running in a lab namespace (see etcd-agent.ts). */
export class EtcdAgent {
  private nextId = 1;
  private constructor(private readonly p: Started) {}

  static async start(lab: Lab, ns: string, watchPrefix?: string): Promise<EtcdAgent> {
    const p = lab.spawnIn(ns, process.execPath, [AGENT, lab.etcdURL, ...(watchPrefix ? ['--watch', watchPrefix] : [])], process.env, { stdin: true });
    const a = new EtcdAgent(p);
    await until(() => { if (p.child.exitCode !== null) throw new Error(p.output()); return a.lines().some((l) => 'ready' in l); }, 20_000, 20);
    return a;
  }

  lines(): Record<string, unknown>[] {
    return this.p.stdout().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  private async request(body: Record<string, unknown>): Promise<{ t0: number; t1: number }> {
    const id = this.nextId++;
    this.p.child.stdin?.write(`${JSON.stringify({ id, ...body })}\n`);
    const r = await until(() => this.lines().find((l) => l.id === id), 120_000, 2);
    return r as unknown as { t0: number; t1: number };
  }

  put(key: string, value: string): Promise<{ t0: number; t1: number }> { return this.request({ op: 'put', key, value }); }
  del(key: string): Promise<{ t0: number; t1: number }> { return this.request({ op: 'del', key }); }
  putMany(kvs: [string, string][]): Promise<{ t0: number; t1: number }> { return this.request({ op: 'putMany', kvs }); }

  /** When the agent's own watch saw `ev` on `key` (the bare etcd watch latency). */
  eventAt(ev: 'put' | 'del', key: string, after: number): number | undefined {
    const l = this.lines().find((x) => x.ev === ev && x.key === key && typeof x.t === 'number' && x.t >= after);
    return l?.t as number | undefined;
  }
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

export function median(xs: readonly number[]): number { return percentile(xs, 50); }

/** A Markdown table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export function macFor(i: number): string {
  const b = [0x0e, 0x57, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff, 0x01];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}
