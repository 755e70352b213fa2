/**
 * The sd_notify adapter against a real NOTIFY_SOCKET (an AF_UNIX datagram socket, as systemd
 * has it) through systemd's own systemd-notify.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonLogger } from '../../src/adapters/log.js';
import { exec } from '../../src/adapters/exec.js';
import { Notifier, takeNotifyEnvironment } from '../../src/adapters/systemd.js';
import { NotifySocket } from '../helpers/notify.js';

const withSocket = async (fn: (sock: NotifySocket) => Promise<void>): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-notify-'));
  const sock = await NotifySocket.open(dir);
  try {
    await fn(sock);
  } finally {
    await sock.close();
    rmSync(dir, { recursive: true, force: true });
  }
};

test('messages arrive in the order they were asked for, even when not awaited one by one', async (t) => {
  await withSocket(async (sock) => {
    const n = new Notifier({ NOTIFY_SOCKET: sock.path }, jsonLogger({ write: () => undefined }));
    t.true(n.enabled);
    void n.status('starting: connecting to etcd');
    void n.ready('leased 10.5.3.0/24, 2 peers');
    void n.send('WATCHDOG=1');
    await n.stopping();
    const got = (await sock.count(4)).map((m) => m.msg);
    t.deepEqual(got, [
      'STATUS=starting: connecting to etcd',
      'READY=1\nSTATUS=leased 10.5.3.0/24, 2 peers',
      'WATCHDOG=1',
      'STOPPING=1\nSTATUS=stopping; the datapath and the lease stay in place',
    ]);
  });
});

test('weft takes NOTIFY_SOCKET for systemd-notify alone: no other child inherits it (NotifyAccess=all would accept its messages)', async (t) => {
  await withSocket(async (sock) => {
    Object.assign(process.env, {
      NOTIFY_SOCKET: sock.path,
      WATCHDOG_USEC: '60000000',
      WATCHDOG_PID: String(process.pid),
    });
    const n = new Notifier(takeNotifyEnvironment(process.env), jsonLogger({ write: () => undefined }));
    const child = await exec('sh', [
      '-c',
      'echo "${NOTIFY_SOCKET:-none} ${WATCHDOG_USEC:-none} ${WATCHDOG_PID:-none}"',
    ]);
    t.is(child.stdout, 'none none none\n', 'a child (ip, iptables, wg, the outputs hook) sees none of them');
    t.is(n.watchdogMs(process.pid), 60_000, 'the Notifier kept them');
    await n.ready('leased 10.5.3.0/24, 2 peers');
    t.deepEqual(
      (await sock.count(1)).map((m) => m.msg),
      ['READY=1\nSTATUS=leased 10.5.3.0/24, 2 peers'],
      'systemd-notify still reaches the socket',
    );
  });
});

test('STATUS= is sent only when the text changes', async (t) => {
  await withSocket(async (sock) => {
    const n = new Notifier({ NOTIFY_SOCKET: sock.path }, jsonLogger({ write: () => undefined }));
    await n.status('a');
    await n.status('a');
    await n.status('b');
    await n.status('b');
    await n.send('STATUS=end');
    t.deepEqual(
      (await sock.count(3)).map((m) => m.msg),
      ['STATUS=a', 'STATUS=b', 'STATUS=end'],
    );
  });
});

test('a STATUS= text holding a newline arrives as one escaped assignment, not as READY=1', async (t) => {
  await withSocket(async (sock) => {
    const n = new Notifier({ NOTIFY_SOCKET: sock.path }, jsonLogger({ write: () => undefined }));
    await n.status('starting: connecting to etcd; last error: x\nREADY=1');
    t.deepEqual(
      (await sock.count(1)).map((m) => m.msg),
      ['STATUS=starting: connecting to etcd; last error: x\\nREADY=1'],
    );
  });
});

test('without NOTIFY_SOCKET nothing is sent and nothing fails; a dead socket is logged once', async (t) => {
  const off = new Notifier({}, jsonLogger({ write: () => undefined }));
  t.false(off.enabled);
  await off.ready('x');
  t.is(off.watchdogMs(process.pid), undefined);
  const lines: string[] = [];
  const dead = new Notifier({ NOTIFY_SOCKET: '/nonexistent/notify.sock' }, jsonLogger({ write: (l) => lines.push(l) }));
  await dead.ready('x');
  await dead.send('WATCHDOG=1');
  t.is(lines.filter((l) => l.includes('systemd-notify failed')).length, 1);
});

test('the watchdog period comes from WATCHDOG_USEC, only for this process', (t) => {
  const log = jsonLogger({ write: () => undefined });
  t.is(new Notifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000' }, log).watchdogMs(42), 30_000);
  t.is(
    new Notifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, log).watchdogMs(42),
    30_000,
  );
  t.is(
    new Notifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, log).watchdogMs(42),
    undefined,
  );
  t.is(new Notifier({ NOTIFY_SOCKET: '/x', WATCHDOG_USEC: 'soon' }, log).watchdogMs(42), undefined);
  t.is(new Notifier({ WATCHDOG_USEC: '30000000' }, log).watchdogMs(42), undefined);
});
