// The health listener (agent/health-listener.ts) against a real squatter: another process's
// socket on the same loopback address and port. Starting never fails; the reason is kept and
// logged once; the port is taken as soon as it is free. (The whole agent in a namespace with a
// squatter, sd_notify and etcd is test/e2e/health.test.ts.)
import test from 'ava';
import { type Server, createServer } from 'node:net';
import { HealthListener } from '../../src/agent/health-listener.js';
import { textAnswer } from '../../src/adapters/http.js';
import { jsonLogger } from '../../src/adapters/log.js';
import { until } from '../helpers/procs.js';

const squat = async (port = 0): Promise<{ server: Server; port: number }> => {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const a = server.address();
  return { server, port: typeof a === 'object' && a ? a.port : 0 };
};
const close = (s: Server): Promise<void> =>
  new Promise((resolve) => {
    s.close(() => {
      resolve();
    });
  });

test('a port another process holds: start resolves, the reason is kept and logged once, and the port is taken once free', async (t) => {
  const { server, port } = await squat();
  const lines: Record<string, unknown>[] = [];
  const log = jsonLogger({
    level: 'debug',
    write: (l) => {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    },
  });
  let changes = 0;
  const listener = new HealthListener({
    listen: { host: '127.0.0.1', port },
    routes: { '/healthz': () => textAnswer(200, 'weft is running\n') },
    log,
    onChange: () => {
      changes += 1;
    },
    policy: { baseMs: 20, maxMs: 40 },
  });
  t.teardown(() => listener.stop());
  await listener.start();
  t.like(listener.state, {
    address: `127.0.0.1:${port}`,
    problem: `cannot listen on 127.0.0.1:${port} (host.listen): EADDRINUSE, another process is listening on that address`,
    failures: 1,
  });
  await until(() => listener.state.failures >= 4, 5000, 10);
  const warned = lines.filter(
    (l) => l.msg === 'cannot serve health and metrics; weft runs on without them and retries',
  );
  t.is(warned.length, 1, 'one warning, however often it is retried');
  t.like(warned[0], { level: 'warn', listen: `127.0.0.1:${port}` });

  await close(server);
  await until(() => listener.state.problem === '', 5000, 10);
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  t.is(await res.text(), 'weft is running\n');
  const served = lines.find((l) => l.msg === 'serving health and metrics');
  t.truthy(served);
  t.true(Number(served?.failedAttempts) >= 4, 'the line says how many attempts failed before');
  t.true(changes >= 2, 'the surface heard of the failure and of the recovery');
  const failures = listener.state.failures;
  await listener.stop();
  t.is(listener.state.failures, failures, 'a counter: past failures stay counted');
  await t.throwsAsync(fetch(`http://127.0.0.1:${port}/healthz`), undefined, 'stop closes the listener');
});

test('stop while retrying: no attempt after it, and the port stays free for others', async (t) => {
  const { server, port } = await squat();
  const listener = new HealthListener({
    listen: { host: '127.0.0.1', port },
    routes: {},
    log: jsonLogger({ write: () => undefined }),
    policy: { baseMs: 20, maxMs: 40 },
  });
  await listener.start();
  await listener.stop();
  const failures = listener.state.failures;
  await close(server);
  await new Promise((r) => setTimeout(r, 200));
  t.is(listener.state.failures, failures, 'no retry ran after stop');
  const again = await squat(port);
  t.is(again.port, port, 'the stopped listener did not take the port back');
  await close(again.server);
});
