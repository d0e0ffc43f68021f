// `dptrain worker`: a remote node. It and the coordinator prove the token to each other (the node
// acts on nothing before the coordinator has), says hello, builds its own arena and Piscina
// pool from the coordinator's welcome (the same thread workers as local training), and answers each
// step request with ONE summed gradient, computed by the shard's recipe so that any executor would
// get the same bits. When the coordinator goes away it reconnects with backoff; a peer that fails
// authentication or is refused too many times in a row ends it. It opens no path named by the
// network, and tells its peer only an error's code, never the local message.

import { readBytes } from '../../core/io/files.js';
import { WebSocket } from 'ws';
import { createArena, type ArenaViews } from '../../core/arena.js';
import { sharedF32 } from '../../core/data/shared.js';
import type { Dataset } from '../../core/data/types.js';
import { DptrainError, peerSafe } from '../../core/errors.js';
import { createKernels, resolveKernels, type KernelChoice } from '../../core/kernels/index.js';
import { checkDataFits } from '../../core/model.js';
import { loadConfigData, parseConfig } from '../../core/config.js';
import { LocalPool } from '../pool/local-pool.js';
import { emulateShard, type EmulatedCompute } from './emulate.js';
import { CHALLENGE_PATH, COORDINATOR_PROOF_HEADER, coordinatorProof, freshNonce, NODE_NONCE_HEADER, nodeProof, PROOF_HEADER, sameProof } from '../../core/protocol/auth.js';
import { decodeCoordinatorFrame, encodeFloatFrame, encodeFrame, landStepPayload, payloadFloats, PROTOCOL_VERSION, type StepRequest, type Welcome } from '../../core/protocol/wire.js';

export interface NodeOptions {
  readonly connect: string;
  readonly token?: string;
  readonly threads: number;
  /** PEM file of a CA (or self-signed certificate) to trust for wss://. */
  readonly tlsCa?: string;
  readonly log: (line: string) => void;
  /** Test hooks: SIGKILL this process on receiving step S; leave after answering step S. */
  readonly exitAtStep?: number;
  readonly leaveAfterStep?: number;
  /** Stop reconnecting after this many failed attempts in a row (0: never stop). */
  readonly maxReconnects?: number;
  /** Stop after this many attempts in a row whose peer failed authentication or was refused. */
  readonly maxAuthFailures: number;
  /** Told of the node's work (`dptrain worker --metrics-port`). */
  readonly counters?: NodeCounters;
  /** Benchmarks only: a timer and a made-up gradient instead of forward/backward (emulate.ts). */
  readonly emulate?: EmulatedCompute;
}

export interface NodeCounters {
  stepServed(computeMs: number, resultBytes: number): void;
  received(bytes: number): void;
  reconnecting(): void;
}

/** How one connection ended: the run is over, the link was lost, or the peer is not to be trusted. */
type Outcome = { readonly kind: 'finished' } | { readonly kind: 'lost' | 'refused'; readonly why: string };

interface Session {
  readonly welcome: Welcome;
  readonly arena: ArenaViews;
  readonly pool: LocalPool;
  readonly order: Int32Array;
  /**
   * The result frame's memory, rewritten each step: the socket has sent the previous frame by then
   * (the coordinator answered it with this step's request), so no gradient buffer is allocated per step.
   */
  result?: ArrayBuffer;
}

const MAX_WELCOME_BYTES = 2 ** 31 - 1;
const INLINE_STAND_IN = { source: 'synthetic', name: 'xor' };

/** Runs until the coordinator says the training is finished (resolves 0) or reconnecting gives up. */
export async function runNode(o: NodeOptions): Promise<number> {
  let delay = 200;
  let failures = 0;
  let refusals = 0;
  let session: Session | null = null;
  try {
    for (;;) {
      const outcome = await connectOnce(o, session, (s) => {
        session = s;
        delay = 200;
        failures = 0;
        refusals = 0;
      });
      if (outcome.kind === 'finished') return 0;
      failures++;
      if (outcome.kind === 'refused' && ++refusals >= o.maxAuthFailures) {
        o.log(`giving up: ${o.connect} failed authentication or was refused ${refusals} times in a row (last: ${outcome.why})`);
        return 1;
      }
      if (o.maxReconnects && failures >= o.maxReconnects) {
        o.log(`giving up after ${failures} failed connection attempts`);
        return 1;
      }
      o.log(`connection to ${o.connect} ${outcome.kind === 'refused' ? 'refused' : 'lost'} (${outcome.why}); reconnecting in ${delay} ms`);
      o.counters?.reconnecting();
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(5000, delay * 2);
    }
  } finally {
    await (session as Session | null)?.pool.close();
  }
}

/** One connection, from the challenge to its end. `joined`: a welcome was accepted. */
async function connectOnce(o: NodeOptions, previous: Session | null, joined: (s: Session) => void): Promise<Outcome> {
  const headers: Record<string, string> = {};
  const ca = o.tlsCa ? readBytes(o.tlsCa) : undefined;
  const nodeNonce = freshNonce();
  let challenge = '';
  if (o.token) {
    try {
      challenge = await fetchChallenge(o.connect, ca);
    } catch (e) {
      return { kind: 'lost', why: `challenge failed: ${(e as Error).message}` };
    }
    headers[PROOF_HEADER] = nodeProof(o.token, challenge, nodeNonce);
    headers[NODE_NONCE_HEADER] = nodeNonce;
  }
  const peer = `coordinator ${o.connect}`;
  return new Promise<Outcome>((resolve) => {
    // A zero masking key: ws then skips masking, which in plain JavaScript (no native bufferutil)
    // is a slow pass over every gradient frame. Masking protects browsers' intermediaries from
    // script-crafted frames; this client is no browser and sends no script-chosen bytes.
    const ws = new WebSocket(o.connect, { headers, maxPayload: MAX_WELCOME_BYTES, ca, perMessageDeflate: false, generateMask: (mask) => void mask.fill(0) });
    let session = previous;
    let busy: Promise<void> = Promise.resolve();
    let ended = false;
    const end = (outcome: Outcome): void => {
      if (ended) return;
      ended = true;
      ws.terminate();
      resolve(outcome);
    };
    const lost = (why: string): void => end({ kind: 'lost', why });
    const refused = (why: string): void => {
      o.log(`refused ${peer}: ${why}`);
      end({ kind: 'refused', why });
    };
    // Before 'open': a coordinator that cannot prove the token gets no hello, and none of its
    // frames is ever decoded.
    ws.on('upgrade', (res) => {
      if (!o.token) return;
      const proof = res.headers[COORDINATOR_PROOF_HEADER];
      if (!sameProof(coordinatorProof(o.token, challenge, nodeNonce), proof)) {
        res.socket.destroy();
        refused(proof === undefined ? 'it did not prove the token' : 'its token proof is wrong');
      }
    });
    ws.on('unexpected-response', (_req, res) =>
      res.statusCode === 401 ? refused('it refused this node\'s token proof (HTTP 401)') : lost(`refused with HTTP ${res.statusCode}`));
    ws.on('error', (e) => lost(e.message));
    ws.on('close', () => lost('closed'));
    ws.on('open', () => ws.send(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, threads: o.threads, best: resolveKernels('auto').backend })));
    ws.on('message', (data: Buffer) => {
      o.counters?.received(data.length);
      let frame: ReturnType<typeof decodeCoordinatorFrame>;
      try {
        frame = decodeCoordinatorFrame(data, peer);
      } catch (e) {
        if ((e as DptrainError).code === 'WIRE_FORBIDDEN') return refused((e as Error).message);
        o.log((e as Error).message);
        lost('bad frame');
        return;
      }
      const h = frame.header;
      if (h.t === 'bye') {
        o.log(`coordinator says bye: ${h.reason}`);
        ended = true;
        ws.close();
        resolve(h.reason === 'training finished' ? { kind: 'finished' } : { kind: 'lost', why: `bye: ${h.reason}` });
        return;
      }
      if (h.t === 'heartbeat') return;
      // Steps are answered in order, one at a time.
      busy = busy.then(async () => {
        if (ended) return;
        try {
          if (h.t === 'welcome') {
            session = await setup(o, h, frame.payload, session);
            joined(session);
            o.log(`joined as ${h.nodeId}: ${session.arena.layout.paramCount} parameters, ${o.threads} thread${o.threads > 1 ? 's' : ''}, kernels ${h.kernels}`);
          } else if (h.t === 'step') {
            if (!session) throw new DptrainError('WIRE_UNEXPECTED', `${peer}: step before welcome`);
            await answer(o, ws, session, h, frame.payload);
          }
        } catch (e) {
          // The full message stays here: it may quote a local file. The peer hears the code.
          o.log(`error: ${(e as Error).message}`);
          if (ws.readyState === WebSocket.OPEN) ws.send(encodeFrame({ t: 'error', ...peerSafe(e) }));
          lost('error');
        }
      });
    });
  });
}

async function setup(o: NodeOptions, w: Welcome, payload: Uint8Array, previous: Session | null): Promise<Session> {
  if (previous && previous.welcome.config === w.config && previous.welcome.chunkRows === w.chunkRows && previous.welcome.kernels === w.kernels) return { ...previous, welcome: w };
  await previous?.pool.close();
  // The wire let through only a named source, or no data section with inline rows: the schema
  // wants one, and the stand-in is never loaded.
  const json = JSON.parse(w.config) as Record<string, unknown>;
  const config = parseConfig(w.data === 'inline' ? { ...json, data: INLINE_STAND_IN } : json, 'the coordinator\'s config', process.cwd());
  const spec = config.model;
  const train = w.data === 'inline' ? inlineData(w, payload) : loadConfigData(config, process.cwd()).train;
  checkDataFits(spec, train);
  // Slot 0 receives the summed gradient; slots 1..threads are the sub-shards' spares.
  const arena = createArena(spec, { shards: o.threads + 2, maxRows: w.chunkRows, stateVectors: 0 });
  const kernelChoice = w.kernels as KernelChoice;
  const kernels = createKernels(kernelChoice, arena.memory, arena.workspaces[o.threads + 1].scratch);
  const order = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, config.training.batchSize)));
  const spare = Array.from({ length: o.threads }, (_, i) => i + 1);
  const pool = new LocalPool({
    threads: o.threads, arena, kernels, spareSlots: spare,
    init: { memory: arena.memory, layout: arena.layout, spec, kernels: kernelChoice, train, order },
    onRetry: (slot, attempt, reason) => o.log(`warning: sub-shard in slot ${slot} failed (${reason}); re-running it (attempt ${attempt + 1})`),
  });
  return { welcome: w, arena, pool, order };
}

function inlineData(w: Welcome, payload: Uint8Array): Dataset {
  const x = sharedF32(w.n * w.nIn);
  const y = sharedF32(w.n * w.yWidth);
  x.set(payloadFloats(payload, 0, w.n * w.nIn));
  y.set(payloadFloats(payload, 4 * w.n * w.nIn, w.n * w.yWidth));
  return { name: 'coordinator data', n: w.n, nIn: w.nIn, x, y, yWidth: w.yWidth, classes: w.classes };
}

async function answer(o: NodeOptions, ws: WebSocket, s: Session, h: StepRequest, payload: Uint8Array): Promise<void> {
  if (o.exitAtStep === h.step) process.kill(process.pid, 'SIGKILL');
  landStepPayload(h, payload, `coordinator ${o.connect}`, { paramCount: s.arena.layout.paramCount, samples: s.welcome.n, maxRows: s.order.length, wire: s.welcome.wire }, s.arena.params, s.order);
  const t0 = performance.now();
  const r = o.emulate ? await emulateShard(o.emulate, h.step, h.rows, h.parts, s.order, s.arena.slots[0]) : (await s.pool.run(h.step, [{ slot: 0, lo: 0, hi: h.rows, parts: h.parts }]))[0];
  const leaving = o.leaveAfterStep === h.step;
  const computeMs = performance.now() - t0;
  const result = encodeFloatFrame({ t: 'result', req: h.req, step: h.step, count: r.count, lossSum: r.lossSum, computeMs, leaving }, s.arena.slots[0], s.welcome.wire, s.result);
  s.result = result.buffer as ArrayBuffer;
  ws.send(result);
  o.counters?.stepServed(computeMs, result.length);
  if (leaving) {
    o.log(`leaving after step ${h.step}`);
    ws.send(encodeFrame({ t: 'bye', reason: 'leaving' }), () => process.exit(0));
  }
}

async function fetchChallenge(connect: string, ca: Buffer | undefined): Promise<string> {
  const url = new URL(CHALLENGE_PATH, connect.replace(/^ws/, 'http'));
  const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ca, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d.slice(0, 1000)));
      res.on('end', () => {
        try {
          const nonce = (JSON.parse(body) as { nonce?: unknown }).nonce;
          if (res.statusCode !== 200 || typeof nonce !== 'string') throw new Error(`HTTP ${res.statusCode}`);
          resolve(nonce);
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}
