// The coordinator's door for remote worker nodes: an HTTP(S) server whose upgrade step checks the
// node's proof and answers with its own before any WebSocket frame is read (unauthenticated
// requests are rate-limited per address and cost no state), a handshake (hello → welcome
// with the config, the chunk size of the shard recipe, the kernels and the data or how to load it),
// and membership: a node joins the scheduler at the next step boundary and leaves, with the reason
// logged, when it is dropped.

import { readBytes } from '../../core/io/files.js';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { KernelBackend } from '../../core/kernels/index.js';
import { DptrainError } from '../../core/errors.js';
import { CHALLENGE_PATH, COORDINATOR_PROOF_HEADER, NODE_NONCE_HEADER, PROOF_HEADER } from '../../core/protocol/auth.js';
import { Challenges } from './challenges.js';
import { DEFAULT_BUCKETS, RefusalLog, SourceLimiter, type BucketOptions } from './admission.js';
import { decodeNodeFrame, encodeFrame, maxNodeFrameBytes, NAMED_SOURCES, PROTOCOL_VERSION, type Welcome, type WireFloat } from '../../core/protocol/wire.js';
import { RemoteNode, StepWeights } from './node-handle.js';
import type { RemoteAttachment, RunContext } from '../train/records.js';

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** Required unless host is a loopback address. */
  readonly token?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly deadlineMs: number;
  readonly heartbeatMs: number;
  /** Weights and gradients as bf16 on every node's link (sums and optimizer stay f32); f32 when absent. */
  readonly wire?: WireFloat;
  readonly log: (line: string) => void;
  /** Per-address limits on challenge and upgrade requests. */
  readonly buckets?: BucketOptions;
  /** Told where the server listens (the port when 0 was asked for). */
  readonly onListening?: (url: string) => void;
  /** Told of every join and drop (the dashboard's executors' table). */
  readonly onMembership?: (e: MembershipEvent) => void;
}

export type MembershipEvent =
  | { readonly kind: 'joined'; readonly id: string; readonly address: string; readonly threads: number }
  | { readonly kind: 'dropped'; readonly id: string; readonly address: string; readonly reason: string };

export interface NodeInfo {
  readonly id: string;
  readonly address: string;
  readonly threads: number;
  readonly traffic: { sent: number; received: number };
  lastSeen: number;
}

const HELLO_TIMEOUT_MS = 10_000;
/** A request's headers must arrive within this: a slow client holds a socket, nothing more. */
const HEADERS_TIMEOUT_MS = 10_000;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/**
 * --listen's value: HOST:PORT ([V6]:PORT), a bare PORT (on 127.0.0.1), or a bare HOST (port 0: the
 * system picks a free one, and the "listening on" line names it).
 */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\d+)$/.exec(text) ?? /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  const bareHost = /^(?:\[([^\]]+)\]|([^:[\]\s]+)|([0-9a-fA-F]*:[0-9a-fA-F:.]*:[0-9a-fA-F.]*))$/.exec(text);
  if (m) {
    const port = Number(m[m.length - 1]);
    if (port <= 65535) return { host: m.length === 2 ? '127.0.0.1' : (m[1] ?? m[2]), port };
  } else if (bareHost) {
    return { host: bareHost[1] ?? bareHost[2] ?? bareHost[3], port: 0 };
  }
  throw new DptrainError('CONFIG_INVALID', `--listen: expected HOST:PORT, PORT (on 127.0.0.1) or HOST (on a free port), with PORT at most 65535, got ${text}`);
}

export interface RemoteServer extends RemoteAttachment {
  readonly url: string;
  readonly nodes: ReadonlyMap<string, NodeInfo>;
}

export async function startRemoteServer(run: RunContext, o: ListenOptions): Promise<RemoteServer> {
  if (!o.token && !LOOPBACK.test(o.host))
    throw new DptrainError('CONFIG_INVALID', `--listen ${o.host}:${o.port}: a --token-file is required to listen on an address other than loopback`);
  if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new DptrainError('CONFIG_INVALID', '--tls-cert and --tls-key go together');
  const challenges = o.token ? new Challenges(o.token) : null;
  const limiter = new SourceLimiter(o.buckets ?? DEFAULT_BUCKETS);
  const refusals = new RefusalLog(o.log);
  const handler = (req: IncomingMessage, res: import('node:http').ServerResponse): void => {
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
  const paramCount = run.arena.layout.paramCount;
  const wss = new WebSocketServer({ noServer: true, maxPayload: maxNodeFrameBytes({ paramCount }) });
  // The coordinator's proof for each upgrade it accepted, sent in the 101 response's headers.
  const answers = new WeakMap<IncomingMessage, string>();
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    const proof = answers.get(req);
    if (proof) headers.push(`${COORDINATOR_PROOF_HEADER}: ${proof}`);
  });
  const freeSlots = [...run.landingSlots];
  const nodes = new Map<string, NodeInfo>();
  const live = new Set<RemoteNode>();
  /** The backend each node was welcomed with, and its socket (to ask it to rejoin when that changes). */
  const welcomedWith = new Map<RemoteNode, { backend: KernelBackend; ws: WebSocket }>();
  let nextId = 1;
  const weights = new StepWeights(run.arena);

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
    wss.handleUpgrade(req, socket, head, (ws) => handshake(ws, address));
  });

  const handshake = (ws: WebSocket, address: string): void => {
    const timer = setTimeout(() => {
      o.log(`dropped ${address}: no hello within ${HELLO_TIMEOUT_MS} ms`);
      ws.terminate();
    }, HELLO_TIMEOUT_MS);
    ws.once('message', (data: Buffer, isBinary: boolean) => {
      clearTimeout(timer);
      let threads: number;
      let best: KernelBackend;
      try {
        if (!isBinary) throw new DptrainError('WIRE_MALFORMED', `${address}: text frame, the protocol is binary`);
        const { msg } = decodeNodeFrame(data, address, { paramCount });
        if (msg.t !== 'hello') throw new DptrainError('WIRE_UNEXPECTED', `${address}: expected hello, got ${msg.t}`);
        threads = msg.threads;
        best = msg.best;
      } catch (e) {
        o.log(`dropped ${address}: ${(e as Error).message}`);
        ws.terminate();
        return;
      }
      const slot = freeSlots.shift();
      if (slot === undefined) {
        o.log(`refused ${address}: all ${run.landingSlots.length} node places are taken (--max-nodes)`);
        ws.send(encodeFrame({ t: 'bye', reason: 'the coordinator is full' }), () => ws.close());
        return;
      }
      const id = `node${nextId++}`;
      const kernels = run.kernels.admit(best, `node ${id} (${address})`);
      const info: NodeInfo = { id, address, threads, traffic: { sent: 0, received: 0 }, lastSeen: Date.now() };
      const node: RemoteNode = new RemoteNode({
        id, threads, ws, arena: run.arena, order: run.order, weights, wire: o.wire ?? 'f32', deadlineMs: o.deadlineMs, heartbeatMs: o.heartbeatMs, traffic: info.traffic,
        log: o.log,
        onGone: (reason) => {
          live.delete(node);
          welcomedWith.delete(node);
          nodes.delete(id);
          run.scheduler.leave(node);
          freeSlots.push(slot);
          freeSlots.sort((a, b) => a - b);
          o.log(`node ${id} (${address}) dropped: ${reason}`);
          o.onMembership?.({ kind: 'dropped', id, address, reason });
        },
      });
      ws.on('message', () => (info.lastSeen = Date.now()));
      ws.on('pong', () => (info.lastSeen = Date.now()));
      const welcome = welcomeFrame(run, id, kernels, o.wire ?? 'f32');
      info.traffic.sent += welcome.length;
      ws.send(welcome);
      live.add(node);
      welcomedWith.set(node, { backend: kernels, ws });
      nodes.set(id, info);
      run.scheduler.join(node, [slot]);
      o.log(`node ${id} (${address}, ${threads} thread${threads > 1 ? 's' : ''}) joined; it takes part from step ${run.scheduler.nextStep}`);
      o.onMembership?.({ kind: 'joined', id, address, threads });
    });
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new DptrainError('CONFIG_INVALID', `--listen ${o.host}:${o.port}: ${e.message}`)));
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const url = `${o.tlsCert ? 'wss' : 'ws'}://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}`;
  o.onListening?.(url);
  o.log(`listening for worker nodes on ${url}${challenges ? ' (token required)' : ''}`);
  return {
    url,
    nodes,
    status: () =>
      [...nodes.values()].map((n) => ({
        id: n.id, address: n.address, threads: n.threads, bytesSent: n.traffic.sent, bytesReceived: n.traffic.received, lastSeenMsAgo: Date.now() - n.lastSeen,
      })),
    kernelsChanged(backend) {
      for (const [node, w] of welcomedWith) {
        if (w.backend === backend) continue;
        const reason = `the run now computes with ${backend}: rejoin`;
        // A bye that is not the end of training: the node reconnects and is welcomed anew.
        w.ws.send(encodeFrame({ t: 'bye', reason }), () => node.drop(reason));
      }
    },
    async close() {
      refusals.close();
      await Promise.all([...live].map((n) => n.close()));
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * The welcome: the config, the recipe's chunk rows, the kernels, and the data: inline (the config
 * then without its data section, whose paths are this machine's) unless the node can load it by name.
 */
function welcomeFrame(run: RunContext, nodeId: string, kernels: KernelBackend, wire: WireFloat): Buffer {
  const train = run.data.train;
  const inline = !NAMED_SOURCES.includes(run.config.data.source) || run.dataInline;
  const { data: _local, ...withoutData } = run.config.raw;
  const header: Welcome = {
    t: 'welcome', v: PROTOCOL_VERSION, nodeId, config: JSON.stringify(inline ? withoutData : run.config.raw), chunkRows: run.chunkRows, kernels,
    data: inline ? 'inline' : 'source', n: train.n, nIn: train.nIn, yWidth: train.yWidth, classes: train.classes, wire,
  };
  return inline ? encodeFrame(header, train.x, train.y) : encodeFrame(header);
}
