/**
 * The `host.onOutputsChanged` hook: after a live network config change rewrote the
 * bridge-relevant outputs (MTU, subnet), run the operator's program (e.g. one that restarts
 * Docker) with what changed in its environment (core/outputs/bridge-outputs.ts). It never blocks the
 * reconciler or the config follower: it runs in the background, one at a time, at most once
 * per `minIntervalMs` (from the end of the last run): triggers that come while it runs or
 * within that interval make it run once more when the interval ends, told the change from
 * what its last run was told to the latest values (none at all when they are back to those).
 * It runs in a process group of its own, killed at its deadline, on stop, and once the program
 * exits (adapters/exec.ts), with what is kept of its output capped; the program file is
 * checked (owner, mode) before every run, as at start.
 */
import { type BridgeState, bridgeChanges, hookEnvironment } from '../core/outputs/bridge-outputs.js';
import { exec } from '../adapters/exec.js';
import type { Logger } from '../adapters/log.js';
import { privilegedFileProblem } from '../adapters/credentials.js';
import { message, sleep } from './retry.js';

/** The hook is killed after this long (a Docker restart takes seconds, not minutes). */
export const HOOK_TIMEOUT_MS = 120_000;
/** At least this long between the end of one run and the start of the next: Docker is not restarted back to back. */
export const HOOK_MIN_INTERVAL_MS = 60_000;
/** What is kept of the hook's stdout and of its stderr (the last bytes; the log quotes the last 500 characters of stderr). */
export const HOOK_OUTPUT_BYTES = 16 * 1024;

/** One change of the bridge outputs the hook is told about. */
export interface BridgeChange {
  readonly before: BridgeState;
  readonly after: BridgeState;
}

export interface OutputsHookOptions {
  /** The spec's host.onOutputsChanged (undefined: no hook). */
  readonly program: string | undefined;
  /** The spec's host.subnetFile (WEFT_SUBNET_FILE). */
  readonly subnetFile: string;
  readonly log: Logger;
  readonly timeoutMs?: number;
  readonly minIntervalMs?: number;
}

export class OutputsHook {
  private running: Promise<void> | undefined;
  /** The change not run yet: from the first pending trigger's `before` to the latest `after`. */
  private pending: { change: BridgeChange; seq: number } | undefined;
  private seq = 0;
  /** The trigger whose run (or a later one's) last exited 0; 0 when none did. */
  private okSeq = 0;
  private lastEndMs = -Infinity;
  private readonly abort = new AbortController();
  /** `skipped`: pending changes that ended where the last run left the outputs (nothing to tell). */
  readonly stats = { runs: 0, failures: 0, skipped: 0, lastExit: -1 };

  constructor(private readonly o: OutputsHookOptions) {}

  /**
   * Run the hook for `change`; returns at once, with this trigger's number (see
   * `succeededSince`). 0 when no hook is configured or weft is stopping.
   */
  trigger(change: BridgeChange): number {
    if (this.o.program === undefined || this.abort.signal.aborted) return 0;
    this.pending = {
      change: { before: this.pending?.change.before ?? change.before, after: change.after },
      seq: ++this.seq,
    };
    if (!this.running)
      this.running = this.drain().finally(() => {
        this.running = undefined;
      });
    return this.seq;
  }

  /** Has a run for trigger `seq` (or a later one, which carries the latest values) exited 0? */
  succeededSince(seq: number): boolean {
    return seq > 0 && this.okSeq >= seq;
  }

  /** Resolves when no hook runs. */
  async idle(): Promise<void> {
    await this.running;
  }

  /** Kill a run in flight (its whole process group) and drop a pending one. */
  async stop(): Promise<void> {
    this.abort.abort();
    if (this.pending)
      this.o.log.warn(
        'host.onOutputsChanged not run: weft is stopping; restart Docker by hand for its bridge to use the new outputs',
        { program: this.o.program },
      );
    this.pending = undefined;
    await this.running;
  }

  private async drain(): Promise<void> {
    const minIntervalMs = this.o.minIntervalMs ?? HOOK_MIN_INTERVAL_MS;
    while (this.pending && !this.abort.signal.aborted) {
      const waitMs = this.lastEndMs + minIntervalMs - Date.now();
      if (waitMs > 0) {
        this.o.log.info(
          'host.onOutputsChanged deferred: at most one run per interval; it runs then with the latest values',
          { runsAt: new Date(Date.now() + waitMs).toISOString(), minIntervalMs },
        );
        await sleep(waitMs, this.abort.signal);
        continue;
      }
      const { change, seq } = this.pending;
      this.pending = undefined;
      if (bridgeChanges(change.before, change.after).length === 0) {
        // Back to what the last run was told (a value and its undo within the interval): Docker has it.
        this.stats.skipped++;
        this.okSeq = seq;
        this.o.log.info('host.onOutputsChanged not run: the bridge outputs are back to what its last run was told', {
          program: this.o.program,
        });
        continue;
      }
      await this.run(hookEnvironment(change.before, change.after, this.o.subnetFile), seq);
      this.lastEndMs = Date.now();
    }
  }

  private async run(env: Record<string, string>, seq: number): Promise<void> {
    const { program, log } = this.o;
    if (program === undefined) return;
    this.stats.runs++;
    const t0 = Date.now();
    const fail = (msg: string, fields: Record<string, unknown>): void => {
      this.stats.failures++;
      log.error(msg, { program, ...fields });
    };
    const unsafe = await privilegedFileProblem('host.onOutputsChanged', program, { secret: false });
    if (unsafe) {
      this.stats.lastExit = -1;
      fail(
        'host.onOutputsChanged not run: its file is not safe to run as root; restart Docker by hand for its bridge to use the new outputs',
        { reason: unsafe },
      );
      return;
    }
    try {
      const r = await exec(program, [], {
        env: { ...process.env, ...env },
        timeoutMs: this.o.timeoutMs ?? HOOK_TIMEOUT_MS,
        ownGroup: true,
        signal: this.abort.signal,
        maxOutputBytes: HOOK_OUTPUT_BYTES,
      });
      this.stats.lastExit = r.code;
      const fields = {
        exit: r.code,
        ms: Date.now() - t0,
        changed: env.WEFT_CHANGED ?? '',
        stderr: r.stderr.trim().slice(-500),
        ...(r.killedBy ? { killed: r.killedBy } : {}),
      };
      if (r.code === 0 && !r.killedBy) {
        this.okSeq = seq;
        log.info('host.onOutputsChanged ran', { program, ...fields });
      } else fail('host.onOutputsChanged failed; restart Docker by hand for its bridge to use the new outputs', fields);
    } catch (e) {
      this.stats.lastExit = -1;
      fail('host.onOutputsChanged could not be run; restart Docker by hand for its bridge to use the new outputs', {
        error: message(e),
      });
    }
  }
}
