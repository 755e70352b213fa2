/**
 * The health and metrics listener: GET only, a fixed table of paths, nothing else. Handlers
 * return the answer as data; this file only speaks HTTP.
 */
import { type Server, createServer } from 'node:http';
import { WeftError } from '../core/errors.js';

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
export async function serveHttp(listen: { host: string; port: number }, routes: Routes): Promise<{ close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    const reply = (a: Answer): void => {
      res.writeHead(a.status, { 'content-type': a.type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : a.body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') { reply(text(405, 'method not allowed\n')); return; }
    if (!route) { reply(text(404, `not found; try ${Object.keys(routes).join(' ')}\n`)); return; }
    Promise.resolve().then(route).then(reply, (e: unknown) => { reply(text(500, `${e instanceof Error ? e.message : String(e)}\n`)); });
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? e.message;
      const meaning = BIND_ERRORS[code];
      reject(new WeftError('E_HOST', `cannot listen on ${listen.host}:${listen.port} (host.listen): ${code}${meaning ? `, ${meaning}` : ''}`, { retryable: true, cause: e }));
    });
    server.listen(listen.port, listen.host, () => { resolve(); });
  });
  return {
    close: () => new Promise<void>((resolve) => {
      server.close(() => { resolve(); });
      server.closeAllConnections();
    }),
  };
}

export { text as textAnswer };
