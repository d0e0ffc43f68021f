// Helpers for tests with real worker-node processes and real sockets on 127.0.0.1.

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { CHALLENGE_PATH, COORDINATOR_PROOF_HEADER, coordinatorProof, freshNonce, NODE_NONCE_HEADER, nodeProof, PROOF_HEADER } from '../src/core/protocol/auth.js';
import { decodeCoordinatorFrame, encodeFrame, PROTOCOL_VERSION, type StepRequest } from '../src/core/protocol/wire.js';
import { startRemoteServer } from '../src/coordinator/remote/server.js';
import { resolveKernels } from '../src/core/kernels/index.js';
import { parseConfig, type Config } from '../src/core/config.js';
import { CLI, workdir } from './helpers.js';
export { CLI, relDiff, sameBits } from './helpers.js';
import { train, type Reporter, type StepRecord, type TrainOptions, type TrainResult } from '../src/coordinator/train/trainer.js';

const children = new Set<ChildProcess>();

/** The small model the remote tests train: 2-24-16-2 tanh on 400 spirals, SGD with momentum, batch 32. */
export function spiralsConfig(name: string, epochs: number): Config {
  return parseConfig(
    {
      model: { layers: [2, 24, 16, 2], hidden: 'tanh' },
      loss: 'cross-entropy',
      optimizer: { name: 'sgd', lr: 0.1, momentum: 0.9 },
      data: { source: 'synthetic', name: 'spirals', n: 400 },
      training: { epochs, batchSize: 32, seed: 9 },
    },
    name,
    tmpdir(),
  );
}

export function spawnNode(url: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): ChildProcess & { log: string } {
  const threads = args.includes('--threads') ? [] : ['--threads', '1'];
  const child = spawn(process.execPath, [CLI, 'worker', '--connect', url, ...threads, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env }) as ChildProcess & { log: string };
  child.log = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (child.log += d));
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Kills the child at the end of the test file whatever happens. */
export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export function killAll(): void {
  for (const c of children) {
    c.kill('SIGCONT');
    c.kill('SIGKILL');
  }
}

export interface RemoteRun {
  readonly result: TrainResult;
  readonly lines: string[];
  readonly steps: StepRecord[];
}

/**
 * Trains in this process with a coordinator listening on 127.0.0.1 (a free port); `onListening`
 * starts the nodes. `onStep` sees every step (it may set stop.requested).
 */
export async function remoteRun(
  opts: Omit<TrainOptions, 'reporter' | 'attachRemote'>,
  onListening: (url: string, lines: string[]) => void,
  extra: { wire?: 'f32' | 'bf16'; token?: string; tlsCert?: string; tlsKey?: string; deadlineMs?: number; heartbeatMs?: number; onStep?: (r: StepRecord) => void; onLog?: (l: string) => void } = {},
): Promise<RemoteRun> {
  const lines: string[] = [];
  const steps: StepRecord[] = [];
  const reporter: Reporter = {
    start() {},
    epoch() {},
    close() {},
    step: (r) => {
      steps.push(r);
      extra.onStep?.(r);
    },
    log: (l) => {
      lines.push(l);
      extra.onLog?.(l);
    },
  };
  const result = await train({
    ...opts,
    reporter,
    maxNodes: opts.maxNodes ?? 4,
    attachRemote: (run) =>
      startRemoteServer(run, {
        host: '127.0.0.1', port: 0, token: extra.token, tlsCert: extra.tlsCert, tlsKey: extra.tlsKey, deadlineMs: extra.deadlineMs ?? 20_000, heartbeatMs: extra.heartbeatMs ?? 500, wire: extra.wire,
        log: reporter.log, onListening: (url) => onListening(url, lines),
      }),
  });
  return { result, lines, steps };
}

/** Resolves when a line matching the pattern has been logged. */
export async function waitForLine(lines: string[], pattern: RegExp, timeoutMs = 20_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const hit = lines.find((l) => pattern.test(l));
    if (hit) return hit;
    if (Date.now() - t0 > timeoutMs) throw new Error(`no line matching ${pattern} within ${timeoutMs} ms; got:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface RogueOptions {
  readonly token?: string;
  readonly proofToken?: string;
  readonly threads?: number;
  /** What to send when a step request arrives. */
  readonly onStep?: (req: StepRequest, payload: Uint8Array, ws: WebSocket) => void;
  /** Stop reading the socket after the hello. */
  readonly stopReading?: boolean;
}

/** A hand-driven node speaking the protocol over a real socket, to misbehave on purpose. */
export async function rogue(url: string, o: RogueOptions = {}): Promise<{ ws: WebSocket; status: Promise<number | 'open'> }> {
  const headers: Record<string, string> = {};
  if (o.proofToken !== undefined) {
    const res = await fetch(new URL(CHALLENGE_PATH, url.replace(/^ws/, 'http')));
    const { nonce } = (await res.json()) as { nonce: string };
    const mine = freshNonce();
    headers[PROOF_HEADER] = nodeProof(o.proofToken, nonce, mine);
    headers[NODE_NONCE_HEADER] = mine;
  }
  const ws = new WebSocket(url, { headers });
  const status = new Promise<number | 'open'>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve('open'));
    ws.on('error', () => resolve(0));
  });
  ws.on('open', () => {
    ws.send(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, threads: o.threads ?? 1, best: resolveKernels('auto').backend }));
    if (o.stopReading) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
  });
  ws.on('message', (data: Buffer) => {
    const f = decodeCoordinatorFrame(data, 'coordinator');
    if (f.header.t === 'step') o.onStep?.(f.header, f.payload, ws);
  });
  return { ws, status };
}

/** A well-formed result frame for a request, with the given gradient. */
export function resultFrame(req: StepRequest, gradient: Float32Array, over: Record<string, unknown> = {}): Buffer {
  return encodeFrame({ t: 'result', req: req.req, step: req.step, count: req.rows, lossSum: 1, computeMs: 1, leaving: false, ...over }, gradient);
}

export interface FakeCoordinator {
  readonly url: string;
  /** Every frame any node sent it, raw. */
  readonly received: Buffer[];
  close(): Promise<void>;
}

/**
 * A coordinator impostor on 127.0.0.1: it hands out challenges, accepts every upgrade, answers with
 * a coordinator proof under `proveWith` (none when absent) and calls `onConnection` on each socket.
 */
export async function fakeCoordinator(o: { proveWith?: string; onConnection: (ws: WebSocket) => void }): Promise<FakeCoordinator> {
  const received: Buffer[] = [];
  const server = createServer((req, res) => {
    if (req.url === CHALLENGE_PATH) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ nonce: `${Date.now()}-fake` }));
    else res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server });
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    if (o.proveWith === undefined) return;
    const proof = String(req.headers[PROOF_HEADER] ?? '');
    headers.push(`${COORDINATOR_PROOF_HEADER}: ${coordinatorProof(o.proveWith, proof.slice(0, proof.lastIndexOf('.')), String(req.headers[NODE_NONCE_HEADER]))}`);
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => received.push(data));
    o.onConnection(ws);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`,
    received,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Resolves with the child's exit code (or the signal's name). */
export function exited(child: ChildProcess): Promise<number | string> {
  return new Promise((r) => {
    if (child.exitCode !== null) r(child.exitCode);
    else child.on('exit', (code, signal) => r(code ?? signal ?? -1));
  });
}

export async function tokenFile(token: string): Promise<string> {
  const f = join(workdir('token'), 'token');
  writeFileSync(f, `${token}\n`);
  return f;
}
