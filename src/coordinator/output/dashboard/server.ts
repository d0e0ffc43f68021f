// The dashboard's HTTP server: the page and its scripts (ours from ./static, uPlot from
// node_modules, nothing from elsewhere), the history as a snapshot and as server-sent events, and
// GET /metrics in Prometheus' text format. Read-only: it answers GET and HEAD and reads no body.

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configError, DptrainError } from '../../../core/errors.js';
import { checkAccess, isLoopbackHost } from './access.js';
import type { Mark, RunHistory } from './history.js';
import type { RunMetrics } from './metrics.js';

export interface DashboardOptions {
  readonly host: string;
  readonly port: number;
  /** The run's token (--token-file); required unless host is loopback. */
  readonly token?: string;
  readonly history: RunHistory;
  /** Null for a finished run shown from its metrics file (no /metrics then). */
  readonly metrics: RunMetrics | null;
  /** Ask for the token even on loopback (tests of the non-loopback policy). */
  readonly requireToken?: boolean;
  /** The flag the address came from, for error messages. */
  readonly flag?: string;
}

export interface DashboardServer {
  /** http://HOST:PORT/ (the port the system gave when 0 was asked for). */
  readonly url: string;
  /** Sends the final state to every open page, then stops serving. */
  close(): Promise<void>;
}

/** `[HOST:]PORT` → host (127.0.0.1 when left out) and port. */
export function parseDashboardAddress(flag: string, text: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port <= 65535)) throw configError(flag, `expected [HOST:]PORT, got ${text}`);
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1'), port };
}

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

function loadAssets(): Map<string, Asset> {
  const here = dirname(fileURLToPath(import.meta.url));
  const staticDir = join(here, 'static');
  const uplotDir = dirname(createRequire(import.meta.url).resolve('uplot'));
  const files: [string, string, string][] = [
    ['/', join(staticDir, 'index.html'), 'text/html; charset=utf-8'],
    ['/static/app.js', join(staticDir, 'app.js'), 'text/javascript; charset=utf-8'],
    ['/static/style.css', join(staticDir, 'style.css'), 'text/css; charset=utf-8'],
    ['/vendor/uPlot.esm.js', join(uplotDir, 'uPlot.esm.js'), 'text/javascript; charset=utf-8'],
    ['/vendor/uPlot.min.css', join(uplotDir, 'uPlot.min.css'), 'text/css; charset=utf-8'],
  ];
  const assets = new Map<string, Asset>();
  for (const [path, file, type] of files) {
    try {
      assets.set(path, { type, body: readFileSync(file) });
    } catch (e) {
      // A build without the static files copied: say which file, not "page not found" later.
      throw new DptrainError('FILE_UNREADABLE', `dashboard: cannot read ${file}: ${(e as Error).message}`);
    }
  }
  return assets;
}

// Scripts and styles from this server only (uPlot styles elements through the CSSOM, which CSP allows).
const HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const PUSH_MS = 300;
const KEEPALIVE_MS = 15_000;

export async function startDashboard(o: DashboardOptions): Promise<DashboardServer> {
  const flag = o.flag ?? '--dashboard';
  const where = `${flag} ${o.host}:${o.port}`;
  if (!o.token && (o.requireToken || !isLoopbackHost(o.host)))
    throw configError(where, 'a --token-file is required to serve the dashboard on an address other than loopback');
  const assets = loadAssets();
  const policy = { token: o.token && (o.requireToken || !isLoopbackHost(o.host)) ? o.token : null };
  const clients = new Set<{ res: ServerResponse; mark: Mark }>();

  const send = (res: ServerResponse, event: string, data: unknown): void => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const push = (): void => {
    for (const c of clients) {
      const delta = o.history.deltaSince(c.mark);
      if (delta) send(c.res, 'delta', delta);
      else send(c.res, 'snapshot', o.history.snapshot());
      c.mark = o.history.mark();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...HEADERS, allow: 'GET, HEAD' }).end();
      return;
    }
    const access = checkAccess(req, url, policy);
    if (access.ok === 'redirect') {
      res.writeHead(303, { ...HEADERS, location: access.location, 'set-cookie': access.cookie }).end();
      return;
    }
    if (access.ok === false) {
      res.writeHead(access.status, { ...HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end(`${access.why}\n`);
      return;
    }
    const asset = assets.get(url.pathname);
    if (asset) {
      res.writeHead(200, { ...HEADERS, 'content-type': asset.type }).end(req.method === 'HEAD' ? undefined : asset.body);
      return;
    }
    switch (url.pathname) {
      case '/api/snapshot':
        res.writeHead(200, { ...HEADERS, 'content-type': 'application/json' }).end(JSON.stringify(o.history.snapshot()));
        return;
      case '/api/events': {
        res.writeHead(200, { ...HEADERS, 'content-type': 'text/event-stream' });
        // A page reconnecting after a network blip starts over from a snapshot.
        res.write('retry: 2000\n\n');
        send(res, 'snapshot', o.history.snapshot());
        const client = { res, mark: o.history.mark() };
        clients.add(client);
        req.on('close', () => clients.delete(client));
        return;
      }
      case '/metrics':
        if (o.metrics) {
          const text = await o.metrics.text();
          res.writeHead(200, { ...HEADERS, 'content-type': o.metrics.registry.contentType }).end(text);
          return;
        }
        break;
      case '/favicon.ico':
        res.writeHead(204, HEADERS).end();
        return;
    }
    res.writeHead(404, { ...HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, HEADERS);
      res.end(`${e instanceof Error ? e.message : String(e)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(configError(where, e.message)));
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const pusher = setInterval(push, PUSH_MS);
  const keepalive = setInterval(() => {
    for (const c of clients) c.res.write(': keepalive\n\n');
  }, KEEPALIVE_MS);
  // Neither timer keeps a finished process alive; close() is the normal end.
  pusher.unref();
  keepalive.unref();
  return {
    url: `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}/`,
    async close() {
      clearInterval(pusher);
      clearInterval(keepalive);
      push();
      for (const c of clients) c.res.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
