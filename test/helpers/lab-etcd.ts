/** A JSON-lines etcd client inside a lab namespace (the lab's etcd is only reachable there). */
import { join } from 'node:path';
import type { Lab } from './lab.js';
import { type Started, until } from './procs.js';

const AGENT = join(import.meta.dirname, 'etcd-agent.js');

/** A JSON-lines etcd client running in a lab namespace (see etcd-agent.ts). */
export class EtcdAgent {
  private nextId = 1;
  private constructor(private readonly p: Started) {}

  static async start(lab: Lab, ns: string, watchPrefix?: string): Promise<EtcdAgent> {
    const p = lab.spawnIn(
      ns,
      process.execPath,
      [AGENT, lab.etcdURL, ...(watchPrefix ? ['--watch', watchPrefix] : [])],
      process.env,
      { stdin: true },
    );
    const a = new EtcdAgent(p);
    await until(
      () => {
        if (p.child.exitCode !== null) throw new Error(p.output());
        return a.lines().some((l) => 'ready' in l);
      },
      20_000,
      20,
    );
    return a;
  }

  lines(): Record<string, unknown>[] {
    return this.p
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  private async request(body: Record<string, unknown>): Promise<{ t0: number; t1: number }> {
    const id = this.nextId++;
    this.p.child.stdin?.write(`${JSON.stringify({ id, ...body })}\n`);
    const r = await until(() => this.lines().find((l) => l.id === id), 120_000, 2);
    return r as unknown as { t0: number; t1: number };
  }

  put(key: string, value: string): Promise<{ t0: number; t1: number }> {
    return this.request({ op: 'put', key, value });
  }
  del(key: string): Promise<{ t0: number; t1: number }> {
    return this.request({ op: 'del', key });
  }
  putMany(kvs: [string, string][]): Promise<{ t0: number; t1: number }> {
    return this.request({ op: 'putMany', kvs });
  }

  /** When the agent's own watch saw `ev` on `key` (the bare etcd watch latency). */
  eventAt(ev: 'put' | 'del', key: string, after: number): number | undefined {
    const l = this.lines().find((x) => x.ev === ev && x.key === key && typeof x.t === 'number' && x.t >= after);
    return l?.t as number | undefined;
  }
}
