/**
 * The `host.onOutputsChanged` hook: after a live network config change rewrote the
 * bridge-relevant outputs (MTU, subnet), run the operator's program (e.g. one that
 * restarts Docker) with what changed in its environment. It never blocks the reconciler or the
 * config follower: it runs in the background with a deadline, one at a time; a change that
 * comes while it runs makes it run once more afterwards, with the latest values.
 */
import { exec } from '../adapters/exec.js';
import type { Logger } from '../adapters/log.js';
import { message } from './retry.js';

/** The hook is killed after this long (a Docker restart takes seconds, not minutes). */
export const HOOK_TIMEOUT_MS = 120_000;

export class OutputsHook {
  private running: Promise<void> | undefined;
  private pending: { env: Record<string, string>; seq: number } | undefined;
  private seq = 0;
  /** The trigger whose run (or a later one's) last exited 0; 0 when none did. */
  private okSeq = 0;
  readonly stats = { runs: 0, failures: 0, lastExit: -1 };

  constructor(private readonly program: string | undefined, private readonly log: Logger, private readonly timeoutMs = HOOK_TIMEOUT_MS) {}

  /**
   * Run the hook with `env` (WEFT_* variables) added to weft's environment; returns at once,
   * with this trigger's number (see `succeededSince`). 0 when no hook is configured.
   */
  trigger(env: Record<string, string>): number {
    if (this.program === undefined) return 0;
    this.pending = { env, seq: ++this.seq };
    if (!this.running) this.running = this.drain().finally(() => { this.running = undefined; });
    return this.seq;
  }

  /** Has a run for trigger `seq` (or a later one, which carries the latest values) exited 0? */
  succeededSince(seq: number): boolean { return seq > 0 && this.okSeq >= seq; }

  /** Resolves when no hook runs (stop waits for one in flight, bounded by its deadline). */
  async idle(): Promise<void> { await this.running; }

  private async drain(): Promise<void> {
    const program = this.program;
    while (program !== undefined && this.pending) {
      const { env, seq } = this.pending;
      this.pending = undefined;
      this.stats.runs++;
      const t0 = Date.now();
      try {
        const r = await exec(program, [], { env: { ...process.env, ...env }, timeoutMs: this.timeoutMs });
        this.stats.lastExit = r.code;
        const fields = { program, exit: r.code, ms: Date.now() - t0, changed: env.WEFT_CHANGED ?? '', stderr: r.stderr.trim().slice(-500) };
        if (r.code === 0) { this.okSeq = seq; this.log.info('host.onOutputsChanged ran', fields); }
        else { this.stats.failures++; this.log.error('host.onOutputsChanged failed; restart Docker by hand for its bridge to use the new outputs', fields); }
      } catch (e) {
        this.stats.failures++;
        this.stats.lastExit = -1;
        this.log.error('host.onOutputsChanged could not be run; restart Docker by hand for its bridge to use the new outputs', { program, error: message(e) });
      }
    }
  }
}
