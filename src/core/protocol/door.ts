// The listening side of a link, for the coordinator (its worker nodes) and for a node that takes
// children in a reduction tree: an HTTP(S) server whose upgrade step checks the connecting peer's
// token proof and answers with its own before any WebSocket frame is read. Unauthenticated requests
// are rate-limited per address and cost no state; refusals are logged, summed up when many.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { readBytes } from '../io/files.js';
import { DptrainError } from '../errors.js';
import { CHALLENGE_PATH, COORDINATOR_PROOF_HEADER, NODE_NONCE_HEADER, PROOF_HEADER } from './auth.js';
import { Challenges } from './challenges.js';
import { DEFAULT_BUCKETS, RefusalLog, SourceLimiter, type BucketOptions } from './admission.js';

export interface DoorOptions {
  /** The flag the address came from, for error lines (`--listen`). */
  readonly flag: string;
  readonly host: string;
  readonly port: number;
  /** Required unless host is a loopback address. */
  readonly token?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  /** The largest frame a peer may send. */
  readonly maxPayload: number;
  /** Per-address limits on challenge and upgrade requests. */
  readonly buckets?: BucketOptions;
  readonly log: (line: string) => void;
}

export interface Door {
  /** ws:// or wss:// with the port the system chose when 0 was asked for. */
  readonly url: string;
  readonly tokenRequired: boolean;
  /** From now on, peers that connect may send frames of at most this many bytes. */
  limitFrames(bytes: number): void;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
/** A request's headers must arrive within this: a slow client holds a socket, nothing more. */
const HEADERS_TIMEOUT_MS = 10_000;

/**
 * --listen's value: HOST:PORT ([V6]:PORT), a bare PORT (on 127.0.0.1), or a bare HOST (port 0: the
 * system picks a free one, and the "listening on" line names it).
 */
export function parseListen(text: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(\d+)$/.exec(text) ?? /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  const bareHost = /^(?:\[([^\]]+)\]|([^:[\]\s]+)|([0-9a-fA-F]*:[0-9a-fA-F:.]*:[0-9a-fA-F.]*))$/.exec(text);
  if (m) {
    const port = Number(m[m.length - 1]);
    if (port <= 65535) return { host: m.length === 2 ? '127.0.0.1' : (m[1] ?? m[2]), port };
  } else if (bareHost) {
    return { host: bareHost[1] ?? bareHost[2] ?? bareHost[3], port: 0 };
  }
  throw new DptrainError('CONFIG_INVALID', `${flag}: expected HOST:PORT, PORT (on 127.0.0.1) or HOST (on a free port), with PORT at most 65535, got ${text}`);
}

/** Opens the door; `onPeer` gets each authenticated WebSocket with the peer's address. */
export async function openDoor(o: DoorOptions, onPeer: (ws: WebSocket, address: string) => void): Promise<Door> {
  if (!o.token && !LOOPBACK.test(o.host))
    throw new DptrainError('CONFIG_INVALID', `${o.flag} ${o.host}:${o.port}: a --token-file is required to listen on an address other than loopback`);
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new DptrainError('CONFIG_INVALID', '--tls-cert and --tls-key go together');
  const challenges = o.token ? new Challenges(o.token) : null;
  const limiter = new SourceLimiter(o.buckets ?? DEFAULT_BUCKETS);
  const refusals = new RefusalLog(o.log);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method === 'GET' && req.url === CHALLENGE_PATH && challenges) {
      if (!limiter.take(req.socket.remoteAddress ?? '')) {
        refusals.refused(req.socket.remoteAddress ?? '', `refused a challenge to ${req.socket.remoteAddress}:${req.socket.remotePort}: too many requests from its address`);
        res.writeHead(429, { connection: 'close' }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ nonce: challenges.issue() }));
      return;
    }
    res.writeHead(404).end();
  };
  const server: Server = o.tlsCert && o.tlsKey ? createHttpsServer({ cert: readBytes(o.tlsCert), key: readBytes(o.tlsKey) }, handler) : createHttpServer(handler);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = HEADERS_TIMEOUT_MS;
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxPayload });
  // The listener's proof for each upgrade it accepted, sent in the 101 response's headers.
  const answers = new WeakMap<IncomingMessage, string>();
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    const proof = answers.get(req);
    if (proof) headers.push(`${COORDINATOR_PROOF_HEADER}: ${proof}`);
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const host = req.socket.remoteAddress ?? '';
    const address = `${host}:${req.socket.remotePort}`;
    const refuse = (status: string, why: string): void => {
      refusals.refused(host, `refused a connection from ${address}: ${why}`);
      socket.on('error', () => {}); // a client resetting its refused socket is no concern of ours
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!limiter.take(host)) return refuse('429 Too Many Requests', 'too many requests from its address');
    if (challenges) {
      const one = (h: string | string[] | undefined): string | undefined => (Array.isArray(h) ? h[0] : h);
      const verdict = challenges.verify(one(req.headers[PROOF_HEADER]), one(req.headers[NODE_NONCE_HEADER]));
      if (!verdict.ok) return refuse('401 Unauthorized', verdict.why);
      answers.set(req, verdict.coordinatorProof);
    }
    wss.handleUpgrade(req, socket, head, (ws) => onPeer(ws, address));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new DptrainError('CONFIG_INVALID', `${o.flag} ${o.host}:${o.port}: ${e.message}`)));
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return {
    url: `${o.tlsCert ? 'wss' : 'ws'}://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`,
    tokenRequired: challenges !== null,
    limitFrames(bytes) {
      // Read by ws for each connection it accepts.
      wss.options.maxPayload = bytes;
    },
    async close() {
      refusals.close();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
