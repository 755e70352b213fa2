/**
 * sd_notify through systemd's own `systemd-notify` (the npm packages are abandoned and cannot
 * send WATCHDOG=1). It waits for the manager to take each message (sd_notify_barrier), so the
 * message is attributed to this service; the unit needs NotifyAccess=all because the sender is
 * a child process (Node has no AF_UNIX datagram socket to send from weft's own PID, and a child
 * cannot claim that PID without CAP_SYS_ADMIN, so NotifyAccess=main cannot work). Messages go
 * out one at a time in the order they were asked for. With no NOTIFY_SOCKET (not under
 * systemd) nothing is run.
 */
import { safeText } from '../core/base/escape.js';
import type { Env } from '../core/spec/spec.js';
import { exec } from './exec.js';
import type { Logger } from './log.js';

/** The longest STATUS= text sent (systemctl status shows it on one line). */
export const STATUS_CAP = 512;

/**
 * A STATUS= value on one line: the text quotes etcd and kernel errors, and a newline in it
 * would start another assignment in the notify message (a forged READY=1, or WATCHDOG=1 from a
 * stuck loop).
 */
export function statusValue(text: string): string {
  return safeText(text, STATUS_CAP);
}

/** The variables through which systemd talks to a service about notifications and the watchdog. */
const NOTIFY_VARS = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/**
 * Take systemd's notification variables out of `env` (weft's own process.env), as sd_notify's
 * `unset_environment` does, and return them for the Notifier. No other child (ip, iptables, wg,
 * wireguard-go, the operator's outputs hook) then inherits NOTIFY_SOCKET: with
 * NotifyAccess=all, a program that finds it (dockerd started by a hook, say) could otherwise
 * tell systemd that weft is ready, stopping, or alive.
 */
export function takeNotifyEnvironment(env: NodeJS.ProcessEnv): Env {
  const taken: Record<string, string> = {};
  for (const name of NOTIFY_VARS) {
    const v = env[name];
    if (v !== undefined) taken[name] = v;
    // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- removing exactly these names is the point
    delete env[name];
  }
  return taken;
}

export class Notifier {
  private queue: Promise<void> = Promise.resolve();
  private lastStatus = '';
  private failedOnce = false;

  constructor(
    private readonly env: Env,
    private readonly log: Logger,
  ) {}

  get enabled(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  /**
   * The watchdog period systemd asked for (WatchdogSec=), in ms; undefined when none or when
   * it is meant for another process (WATCHDOG_PID).
   */
  watchdogMs(pid: number): number | undefined {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!this.enabled || !Number.isSafeInteger(usec) || usec <= 0) return undefined;
    if (this.env.WATCHDOG_PID && Number(this.env.WATCHDOG_PID) !== pid) return undefined;
    return Math.max(1, Math.floor(usec / 1000));
  }

  /** Send `KEY=VALUE` assignments as one message; resolves once sent (or failed and logged). */
  send(...assignments: string[]): Promise<void> {
    if (!this.enabled || assignments.length === 0) return this.queue;
    this.queue = this.queue.then(async () => {
      const env = { ...process.env, NOTIFY_SOCKET: this.env.NOTIFY_SOCKET };
      const r = await exec('systemd-notify', assignments, { timeoutMs: 10_000, env }).catch((e: unknown) => ({
        code: -1,
        stderr: e instanceof Error ? e.message : String(e),
      }));
      if (r.code !== 0 && !this.failedOnce) {
        this.failedOnce = true;
        this.log.warn('systemd-notify failed; systemd may not see readiness or the watchdog', {
          message: assignments.join(' '),
          error: r.stderr.trim(),
        });
      }
    });
    return this.queue;
  }

  /** STATUS=, only when the text changed. */
  status(text: string): Promise<void> {
    const line = statusValue(text);
    if (line === this.lastStatus) return this.queue;
    this.lastStatus = line;
    return this.send(`STATUS=${line}`);
  }

  ready(status: string): Promise<void> {
    this.lastStatus = statusValue(status);
    return this.send('READY=1', `STATUS=${this.lastStatus}`);
  }

  stopping(): Promise<void> {
    return this.send('STOPPING=1', 'STATUS=stopping; the datapath and the lease stay in place');
  }
}
