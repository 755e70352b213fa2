/**
 * A real NOTIFY_SOCKET for tests: a datagram socket served by test/helpers/notify_listener.py
 * (Node has no AF_UNIX datagram sockets). Messages are read back in arrival order.
 */
import { join } from 'node:path';
import { REPO } from './cli.js';
import { type Started, start, until } from './procs.js';

export interface NotifyMessage {
  readonly t: number;
  readonly pid: number;
  /** The message as sent: newline-separated KEY=VALUE assignments. */
  readonly msg: string;
}

export class NotifySocket {
  private constructor(
    readonly path: string,
    private readonly proc: Started,
  ) {}

  static async open(dir: string): Promise<NotifySocket> {
    const path = join(dir, 'notify.sock');
    const proc = start('/usr/bin/python3', [join(REPO, 'test/helpers/notify_listener.py'), path]);
    const sock = new NotifySocket(path, proc);
    await until(() => sock.all(true).some((m) => m.msg === 'LISTENING'), 10_000, 20);
    return sock;
  }

  /** Every message so far (without the barrier handshakes systemd-notify adds). */
  all(includeListening = false): NotifyMessage[] {
    return this.proc
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as NotifyMessage)
      .filter((m) => m.msg !== 'BARRIER=1' && (includeListening || m.msg !== 'LISTENING'));
  }

  /** Messages carrying an assignment that starts with `prefix` (e.g. "READY=1", "STATUS="). */
  with(prefix: string): NotifyMessage[] {
    return this.all().filter((m) => m.msg.split('\n').some((a) => a.startsWith(prefix)));
  }

  async waitFor(prefix: string, timeoutMs = 30_000): Promise<NotifyMessage> {
    const m = await until(() => this.with(prefix)[0], timeoutMs, 20);
    if (!m) throw new Error('unreachable');
    return m;
  }

  /** Wait until at least `n` messages have been read back (delivery is done; reading lags). */
  async count(n: number, timeoutMs = 5000): Promise<NotifyMessage[]> {
    await until(() => this.all().length >= n, timeoutMs, 10).catch(() => undefined);
    return this.all();
  }

  async close(): Promise<void> {
    await this.proc.stop();
  }
}
