// `weft status` against whatever answers on host.listen: any local user can bind the port
// before weft does, so the CLI must neither trust nor print raw what it reads there. Each test
// runs the real CLI against a real HTTP server on a loopback port of its own.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statusReport } from '../../src/core/health/health.js';
import { runWeft } from '../helpers/cli.js';
import { healthSnapshot } from '../helpers/health-snapshot.js';
import { freePort } from '../helpers/ports.js';

/** A character a terminal would act on: C0 (but newline), DEL, C1, the separators and the bidi controls. */
// eslint-disable-next-line no-control-regex
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/u;
const EVIL = '\x1b]0;owned\x07\x1b[2J\x9b31m\u202e';

async function serve(
  t: { teardown(fn: () => void): void },
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  port = 0,
): Promise<{ port: number; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const a = server.address();
  return { port: typeof a === 'object' && a ? a.port : 0, server };
}

/** `weft status` (plus `args`) with a spec whose host.listen is 127.0.0.1:port. */
async function status(
  t: { teardown(fn: () => void): void },
  port: number,
  args: string[] = [],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'weft-status-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const spec = join(dir, 'network.yaml');
  writeFileSync(spec, `etcd:\n  endpoints: [http://127.0.0.1:1]\nhost:\n  listen: 127.0.0.1:${port}\n`);
  return runWeft(['status', '--spec', spec, ...args], { timeoutMs: 30_000 });
}

const json = (res: ServerResponse, body: string, status = 200): void => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
};

test("a document of weft's shape with terminal escapes in every string: printed escaped, as text and as --json", async (t) => {
  const evil = statusReport(
    healthSnapshot({
      identity: { hostID: EVIL, source: EVIL, clash: EVIL },
      version: EVIL,
      backend: { type: EVIL, device: EVIL, mtu: 1450, implementation: EVIL },
      reconcile: { ...healthSnapshot().reconcile, lastPassOk: false, lastError: EVIL, driftRepairs: { [EVIL]: 1 } },
    }),
  );
  const { port } = await serve(t, (_req, res) => {
    json(res, JSON.stringify({ ...evil, ready: true, reasons: [EVIL], status: EVIL }));
  });
  const text = await status(t, port);
  t.is(text.code, 0, text.stderr);
  t.false(RAW.test(text.stdout), text.stdout);
  t.regex(text.stdout, /host id +\\x1b\]0;owned\\x07\\x1b\[2J\\x9b31m\\u202e \(\\x1b/, 'the source is escaped too');
  const asJson = await status(t, port, ['--json']);
  t.is(asJson.code, 0, asJson.stderr);
  t.false(RAW.test(asJson.stdout), 'no raw C1 or bidi control in --json either');
  t.is(
    (JSON.parse(asJson.stdout) as { identity: { source: string } }).identity.source,
    EVIL,
    'the same value, escaped by JSON',
  );
});

test("fields of the wrong type holding escapes: refused as not weft's, naming the field, printing none of it", async (t) => {
  const bad = { ...statusReport(healthSnapshot()), peers: { known: EVIL, programmed: 1, rejected: 0, malformed: 0 } };
  const { port } = await serve(t, (_req, res) => {
    json(res, JSON.stringify(bad));
  });
  const r = await status(t, port);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.false(RAW.test(r.stderr), r.stderr);
  t.regex(
    r.stderr,
    /^weft: what answers on http:\/\/127\.0\.0\.1:\d+\/status is not weft's status: peers\.known is a string, expected a number; see which process listens there \(ss -ltnp\)/,
  );
});

test('an endless answer: reading stops at 64 KiB and the CLI says so (it does not wait for the end)', async (t) => {
  let sentBytes = 0;
  let closed = false;
  const chunk = Buffer.alloc(65_536, 'x');
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"ready":true,"pad":"');
    const more = (): void => {
      while (!closed) {
        sentBytes += chunk.length;
        if (!res.write(chunk)) return;
      }
    };
    res.on('drain', more);
    res.on('close', () => {
      closed = true;
    });
    more();
  });
  const r = await status(t, port);
  t.is(r.code, 1);
  t.regex(r.stderr, /is not weft's status: the answer is larger than 65536 bytes;/);
  t.log(`the server wrote ${sentBytes} bytes before the CLI closed the connection`);
});

test("a page that is not JSON (another program on the port): refused as not weft's, nothing of it printed", async (t) => {
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<html>${EVIL}</html>`);
  });
  const r = await status(t, port);
  t.is(r.code, 1);
  t.false(RAW.test(r.stderr), r.stderr);
  t.false(r.stderr.includes('html'), 'no part of the page is quoted');
  t.regex(r.stderr, /is not weft's status: not JSON;/);
});

test('a redirect is not followed: the CLI never asks the address it points at', async (t) => {
  let hits = 0;
  const target = await serve(t, (_req, res) => {
    hits += 1;
    json(res, JSON.stringify(statusReport(healthSnapshot())));
  });
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(302, { location: `http://127.0.0.1:${target.port}/status` });
    res.end();
  });
  const r = await status(t, port);
  t.is(r.code, 1);
  t.regex(r.stderr, /is not weft's status: HTTP 302;/);
  t.is(hits, 0);
});

test("weft's own document still reads: exit 0 when ready, 1 when not", async (t) => {
  let ready = true;
  const { port } = await serve(t, (_req, res) => {
    const s = healthSnapshot();
    json(res, JSON.stringify(statusReport(ready ? s : { ...s, reconcile: { ...s.reconcile, passes: 0 } })));
  });
  const r = await status(t, port);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^leased 10\.5\.3\.0\/24, 12 peers\n/);
  ready = false;
  t.is((await status(t, port)).code, 1);
});

test('nothing listening: "no weft daemon answering", with the socket error', async (t) => {
  const r = await status(t, await freePort());
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^weft: no weft daemon answering on http:\/\/127\.0\.0\.1:\d+\/status: connect ECONNREFUSED 127\.0\.0\.1:\d+ \(is weft running\?/,
  );
});

test('a port fetch() refuses as "bad" (6667) is read like any other: host.listen may name it', async (t) => {
  const { port } = await serve(
    t,
    (_req, res) => {
      json(res, JSON.stringify(statusReport(healthSnapshot())));
    },
    6667,
  );
  const r = await status(t, port);
  t.is(r.code, 0, r.stderr);
});

test('an answer that stops half-way: the CLI gives up at its deadline instead of waiting for the rest', async (t) => {
  const { port } = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"ready":');
  });
  const r = await status(t, port);
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^weft: no weft daemon answering on http:\/\/127\.0\.0\.1:\d+\/status: the answer did not end within 5000 ms/,
  );
});
