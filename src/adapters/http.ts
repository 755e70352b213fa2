/**
 * HTTP on host.listen, both sides. The listener: GET only, a fixed table of paths, nothing
 * else; handlers return the answer as data. The client (`getBounded`, for `weft status` and
 * `weft doctor`): whatever answers on that port may be another local user's process, so the
 * answer is bounded in size and time and a redirect is never followed.
 */
import { type Server, createServer, request as httpRequest } from 'node:http';
import { WeftError } from '../core/base/errors.js';

export interface Answer {
  readonly status: number;
  readonly type: string;
  readonly body: string;
}

export type Routes = Readonly<Record<string, () => Answer | Promise<Answer>>>;

const text = (status: number, body: string): Answer => ({ status, type: 'text/plain; charset=utf-8', body });

/** What a bind error means, for the operator (the errno code stays in the message too). */
const BIND_ERRORS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'another process is listening on that address',
  EADDRNOTAVAIL: 'no interface on this host has that address (yet)',
  EACCES: 'not permitted to listen on that port',
};

/**
 * Listen on host:port; resolves once listening. Rejects with a retryable E_HOST when the
 * address cannot be used now (taken by another process, not configured yet): the caller
 * (agent/health-listener.ts) tries again later, and weft runs on without it meanwhile.
 */
export async function serveHttp(
  listen: { host: string; port: number },
  routes: Routes,
): Promise<{ close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    const reply = (a: Answer): void => {
      res.writeHead(a.status, { 'content-type': a.type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : a.body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(text(405, 'method not allowed\n'));
      return;
    }
    if (!route) {
      reply(text(404, `not found; try ${Object.keys(routes).join(' ')}\n`));
      return;
    }
    Promise.resolve()
      .then(route)
      .then(reply, (e: unknown) => {
        reply(text(500, `${e instanceof Error ? e.message : String(e)}\n`));
      });
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? e.message;
      const meaning = BIND_ERRORS[code];
      reject(
        new WeftError(
          'E_HOST',
          `cannot listen on ${listen.host}:${listen.port} (host.listen): ${code}${meaning ? `, ${meaning}` : ''}`,
          { retryable: true, cause: e },
        ),
      );
    });
    server.listen(listen.port, listen.host, () => {
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}

/** An answer read by `getBounded`: the status, the content type and the body as text. */
export interface BoundedAnswer {
  readonly status: number;
  readonly type: string;
  /** At most `maxBytes` of the body, decoded as UTF-8. */
  readonly body: string;
  /** The body went on past `maxBytes`; reading stopped there. */
  readonly truncated: boolean;
}

/**
 * GET `url`, reading at most `maxBytes` of body within `timeoutMs` (headers and body together):
 * an endless answer costs `maxBytes` and no more (`truncated`; the connection is closed there).
 * Rejects with E_DAEMON when nothing answers or the answer does not end in time. node:http, not
 * fetch: a redirect is returned as it is (3xx), never followed, and no port is refused (fetch
 * refuses a list of "bad ports" such as 6000 that host.listen may name).
 */
export function getBounded(
  url: string,
  o: { readonly maxBytes: number; readonly timeoutMs: number },
): Promise<BoundedAnswer> {
  const signal = AbortSignal.timeout(o.timeoutMs);
  return new Promise((resolve, reject) => {
    let settled = false;
    let answered = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      reject(
        new WeftError(
          'E_DAEMON',
          signal.aborted ? `${answered ? 'the answer did not end' : 'no answer'} within ${o.timeoutMs} ms` : e.message,
          { cause: e },
        ),
      );
    };
    const req = httpRequest(url, { method: 'GET', signal }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let bytes = 0;
      const done = (truncated: boolean): void => {
        if (settled) return;
        settled = true;
        resolve({
          status: res.statusCode ?? 0,
          type: res.headers['content-type'] ?? '',
          body: Buffer.concat(chunks).subarray(0, o.maxBytes).toString('utf8'),
          truncated,
        });
        if (truncated) req.destroy();
      };
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        bytes += chunk.length;
        if (bytes > o.maxBytes) done(true);
      });
      res.on('end', () => {
        done(false);
      });
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

export { text as textAnswer };
