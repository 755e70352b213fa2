/**
 * What the outside world sees of a running agent: the HTTP endpoints on host.listen and the
 * sd_notify messages. It only reads the agent's snapshot; core/health/health.ts decides what it means.
 *
 * sd_notify order: STATUS=<start-up step>... -> READY=1 with STATUS=leased X, N peers -> STATUS=
 * on every change, WATCHDOG=1 every WatchdogSec/2 while the reconcile loop is healthy ->
 * STOPPING=1. A stuck loop stops the pings, so systemd restarts weft.
 */
import { type HealthSnapshot, readiness, reconcilerHealthy, statusLine, statusReport } from '../core/health/health.js';
import type { Spec } from '../core/spec/spec.js';
import { type Routes, textAnswer } from '../adapters/http.js';
import type { Logger } from '../adapters/log.js';
import type { Notifier } from '../adapters/systemd.js';
import { HealthListener } from './health-listener.js';
import type { Metrics } from './metrics.js';

export class Surface {
  private listener: HealthListener | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private watchdogOk = true;

  constructor(
    private readonly o: {
      spec: Spec;
      log: Logger;
      notifier: Notifier;
      metrics: Metrics;
      snapshot: () => HealthSnapshot;
    },
  ) {}

  /** The agent's snapshot with the listener's state: what every endpoint, STATUS= and /metrics judge. */
  snapshot(): HealthSnapshot {
    const s = this.o.snapshot();
    return this.listener ? { ...s, listener: this.listener.state } : s;
  }

  /**
   * Start serving (before the agent starts, so /healthz answers during start-up). Never fails:
   * an address that cannot be used now is retried in the background (agent/health-listener.ts).
   */
  async start(): Promise<void> {
    const listen = this.o.spec.host.listen;
    if (listen) {
      this.listener = new HealthListener({
        listen,
        routes: this.routes(),
        log: this.o.log,
        onChange: () => {
          this.tick();
        },
      });
      await this.listener.start();
    }
    this.statusTimer = setInterval(() => {
      this.tick();
    }, 1000);
    this.statusTimer.unref();
    this.tick();
  }

  private routes(): Routes {
    const snapshot = (): HealthSnapshot => this.snapshot();
    return {
      '/healthz': () => textAnswer(200, 'weft is running\n'),
      '/readyz': () => {
        const r = readiness(snapshot());
        const warnings = r.warnings.map((w) => `warning: ${w}\n`).join('');
        return r.ready
          ? textAnswer(200, `ready\n${warnings}`)
          : textAnswer(503, `not ready: ${r.reasons.join('; ')}\n${warnings}`);
      },
      '/status': () => ({
        status: 200,
        type: 'application/json',
        body: `${JSON.stringify(statusReport(snapshot()), null, 2)}\n`,
      }),
      '/metrics': async () => ({ status: 200, ...(await this.o.metrics.text()) }),
    };
  }

  /** Start-up is done: READY=1, and the watchdog starts (systemd arms it at readiness). */
  async markReady(): Promise<void> {
    await this.o.notifier.ready(statusLine(this.snapshot()));
    const every = this.o.notifier.watchdogMs(process.pid);
    if (every !== undefined) {
      this.watchdogTimer = setInterval(
        () => {
          this.pet();
        },
        Math.max(1, Math.floor(every / 2)),
      );
      this.watchdogTimer.unref();
      this.pet();
    }
  }

  private pet(): void {
    const s = this.snapshot();
    const ok = reconcilerHealthy(s.reconcile, s.nowMs, s.stuckAfterMs);
    if (ok !== this.watchdogOk) {
      this.watchdogOk = ok;
      if (ok) this.o.log.info('reconcile loop healthy again; watchdog pings resume');
      else
        this.o.log.error('reconcile loop stuck; watchdog pings withheld so systemd restarts weft', {
          runningSince: s.reconcile.runningSinceMs ? new Date(s.reconcile.runningSinceMs).toISOString() : null,
        });
    }
    if (ok) void this.o.notifier.send('WATCHDOG=1');
  }

  /** STATUS= when the line changed; before READY=1 it names the start-up step (etcd down shows). */
  tick(): void {
    void this.o.notifier.status(statusLine(this.snapshot()));
  }

  /** Shutdown begins: STOPPING=1 first, and no more STATUS= or WATCHDOG=1 after it. */
  async stopping(): Promise<void> {
    this.stopTimers();
    await this.o.notifier.stopping();
  }

  async stop(): Promise<void> {
    this.stopTimers();
    await this.listener?.stop();
  }

  private stopTimers(): void {
    clearInterval(this.statusTimer);
    clearInterval(this.watchdogTimer);
  }
}
