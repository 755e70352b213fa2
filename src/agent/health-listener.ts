/**
 * The health and metrics listener on host.listen, never fatal. Any local user can bind
 * 127.0.0.1:9473 before weft starts (or while it restarts); if that stopped weft, the host
 * would hold no lease, and Docker (ordered after weft) would not start. So a failed bind is
 * a warning: weft leases and programs the fabric all the same, says why in the log, STATUS=
 * and readiness warnings (core/health/health.ts), counts each failure (/metrics, once it serves),
 * and tries again with backoff until the address is free.
 */
import type { BackoffPolicy } from '../core/base/backoff.js';
import { type Routes, serveHttp } from '../adapters/http.js';
import type { Logger } from '../adapters/log.js';
import { Backoff, message } from './retry.js';

/** Binding host.listen again: soon at first, then every 10 s at most (a bind is one syscall). */
export const LISTEN_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 10_000 };

/** The listener as the health snapshot shows it. */
export interface ListenerState {
  /** host:port as the spec names it. */
  readonly address: string;
  /** Why the address is not served now ('' while serving, or before the first attempt ends). */
  readonly problem: string;
  /** Failed attempts to listen since start (a counter: it never goes down). */
  readonly failures: number;
}

export interface HealthListenerOptions {
  readonly listen: { readonly host: string; readonly port: number };
  readonly routes: Routes;
  readonly log: Logger;
  /** Called when the state changes (bound, or failing for a new reason): STATUS= follows at once. */
  readonly onChange?: () => void;
  readonly policy?: BackoffPolicy;
  readonly rng?: () => number;
}

export class HealthListener {
  private server: { close(): Promise<void> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The attempt in flight, so that stop() can wait for it and close what it opened. */
  private attempt: Promise<void> | undefined;
  /** Aborted by stop(): no attempt starts after it, and one in flight closes what it opened. */
  private readonly stopping = new AbortController();
  private problem = '';
  private failures = 0;
  private readonly backoff: Backoff;
  private readonly address: string;

  constructor(private readonly o: HealthListenerOptions) {
    this.backoff = new Backoff(o.policy ?? LISTEN_BACKOFF, o.rng);
    this.address = `${o.listen.host}:${o.listen.port}`;
  }

  /** The first attempt; resolves when it ended either way (never rejects: retries are scheduled). */
  async start(): Promise<void> {
    this.attempt = this.tryListen();
    await this.attempt;
  }

  private isStopped(): boolean {
    return this.stopping.signal.aborted;
  }

  get state(): ListenerState {
    return { address: this.address, problem: this.problem, failures: this.failures };
  }

  private async tryListen(): Promise<void> {
    if (this.isStopped()) return;
    try {
      const server = await serveHttp(this.o.listen, this.o.routes);
      if (this.isStopped()) {
        await server.close();
        return;
      }
      this.server = server;
      const after = this.failures > 0 ? { failedAttempts: this.failures } : {};
      this.o.log.info('serving health and metrics', {
        listen: this.address,
        paths: Object.keys(this.o.routes),
        ...after,
      });
      this.problem = '';
      this.backoff.reset();
    } catch (e) {
      if (this.isStopped()) return;
      const problem = message(e);
      const retryInMs = this.backoff.next();
      this.failures += 1;
      // Logged when it starts and when the reason changes; STATUS= carries it meanwhile.
      if (problem !== this.problem)
        this.o.log.warn('cannot serve health and metrics; weft runs on without them and retries', {
          listen: this.address,
          error: problem,
          retryInMs,
        });
      else
        this.o.log.debug('still cannot serve health and metrics', {
          listen: this.address,
          error: problem,
          retryInMs,
          failedAttempts: this.failures,
        });
      this.problem = problem;
      this.timer = setTimeout(() => {
        this.attempt = this.tryListen();
      }, retryInMs);
      this.timer.unref();
    }
    this.o.onChange?.();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    clearTimeout(this.timer);
    await this.attempt;
    await this.server?.close();
    this.server = undefined;
  }
}
