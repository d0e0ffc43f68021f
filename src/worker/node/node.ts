// `dptrain worker`: a remote node. It and the coordinator prove the token to each other (the node
// acts on nothing before the coordinator has), says hello, builds its own arena and Piscina
// pool from the coordinator's welcome (the same thread workers as local training), and answers each
// step request with ONE summed gradient, computed by the shard's recipe so that any executor would
// get the same bits. In a reduction tree (`--listen`), a request may be for a block of nodes headed
// by this one: it forwards the weights to its children, adds their sums to its own in the order of
// the step's pairwise tree, and sends the block's one sum up; a node placed under a parent takes its
// requests from that parent. When the coordinator goes away it reconnects with backoff; a peer that
// fails authentication or is refused too many times in a row ends it. It opens no path named by the
// network, and tells its peer only an error's code, never the local message.

import { readBytes } from '../../core/io/files.js';
import { WebSocket } from 'ws';
import { dial } from '../../core/protocol/dial.js';
import { ChildLinks, SubtreeLost } from './children.js';
import { StepInHand, Superseded, type Session, type Upstream } from './serve.js';
import { createArena } from '../../core/arena.js';
import { sharedF32 } from '../../core/data/shared.js';
import type { Dataset } from '../../core/data/types.js';
import { DptrainError, peerSafe } from '../../core/errors.js';
import { createKernels, resolveKernels, type KernelChoice } from '../../core/kernels/index.js';
import { checkDataFits, layerSpan } from '../../core/model.js';
import { paramLayout } from '../../core/layout.js';
import { loadConfigData, parseConfig } from '../../core/config.js';
import { LocalPool } from '../pool/local-pool.js';
import type { EmulatedCompute } from './emulate.js';
import { decodeCoordinatorFrame, encodeFrame, payloadFloats, PROTOCOL_VERSION, type StepRequest, type WeightsChunk, type Welcome } from '../../core/protocol/wire.js';

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
  /** Take children in a reduction tree on this address (`--listen`), with this certificate for wss://. */
  readonly listen?: { readonly host: string; readonly port: number; readonly tlsCert?: string; readonly tlsKey?: string; readonly advertise?: string };
  /** Benchmarks only: a sleep and a made-up gradient instead of forward/backward (emulate.ts). */
  readonly emulate?: EmulatedCompute;
}

export interface NodeCounters {
  stepServed(computeMs: number, resultBytes: number): void;
  received(bytes: number): void;
  reconnecting(): void;
}

/** How one connection ended: the run is over, the link was lost, or the peer is not to be trusted. */
type Outcome = { readonly kind: 'finished' } | { readonly kind: 'lost' | 'refused'; readonly why: string };

const MAX_WELCOME_BYTES = 2 ** 31 - 1;
const INLINE_STAND_IN = { source: 'synthetic', name: 'xor' };
/** Children a node can head: a block of 2^CHILD_SLOTS nodes; each child's sum lands in a slot of its own. */
const CHILD_SLOTS = 7;

/** Runs until the coordinator says the training is finished (resolves 0) or reconnecting gives up. */
export async function runNode(o: NodeOptions): Promise<number> {
  let delay = 200;
  let failures = 0;
  let refusals = 0;
  let session: Session | null = null;
  const children = o.listen ? new ChildLinks({ ...o.listen, token: o.token, log: o.log }) : null;
  if (children) o.log(`taking children in a reduction tree on ${await children.open()}${o.token ? ' (token required)' : ''}`);
  try {
    for (;;) {
      const outcome = await connectOnce(o, children, session, (s) => {
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
    await children?.close();
    await (session as Session | null)?.pool.close();
  }
}

/** One connection, from the challenge to its end. `joined`: a welcome was accepted. */
async function connectOnce(o: NodeOptions, children: ChildLinks | null, previous: Session | null, joined: (s: Session) => void): Promise<Outcome> {
  const ca = o.tlsCa ? readBytes(o.tlsCa) : undefined;
  const peer = `coordinator ${o.connect}`;
  const dialed = await dial({ url: o.connect, token: o.token, ca, maxPayload: MAX_WELCOME_BYTES });
  if (!dialed.ok) {
    if (dialed.kind === 'refused') o.log(`refused ${peer}: ${dialed.why}`);
    return { kind: dialed.kind, why: dialed.why };
  }
  const ws = dialed.ws;
  return new Promise<Outcome>((resolve) => {
    let session = previous;
    let busy: Promise<void> = Promise.resolve();
    let ended = false;
    let inHand: StepInHand | null = null;
    /** Step frames that came while a welcome was being set up, in order. */
    let held: (() => void)[] | null = null;
    let parent: ParentLink | null = null;
    const end = (outcome: Outcome): void => {
      if (ended) return;
      ended = true;
      inHand?.cancel('the link to the coordinator ended');
      parent?.close();
      ws.terminate();
      resolve(outcome);
    };
    const lost = (why: string): void => end({ kind: 'lost', why });
    const refused = (why: string): void => {
      o.log(`refused ${peer}: ${why}`);
      end({ kind: 'refused', why });
    };
    ws.on('error', (e) => lost(e.message));
    ws.on('close', () => lost('closed'));
    ws.send(encodeFrame({ t: 'hello', v: PROTOCOL_VERSION, threads: o.threads, best: resolveKernels('auto').backend, ...(children?.url ? { listen: children.url } : {}) }));

    /**
     * A frame of a step from upstream (the coordinator, or the parent): requests are served in
     * order, one at a time, and a newer one gives an older one still waiting up; weights chunks go
     * to the step in hand. Throws on a frame that does not fit (the caller drops that upstream).
     */
    const onStepFrame = (up: Upstream, data: Buffer, frame: { header: StepRequest | WeightsChunk; payload: Uint8Array }): void => {
      if (!session) throw new DptrainError('WIRE_UNEXPECTED', `${up.peer}: step before welcome`);
      const h = frame.header;
      if (h.t === 'weights') {
        if (!inHand || inHand.up.ws !== up.ws) throw new DptrainError('WIRE_UNEXPECTED', `${up.peer}: weights without a step`);
        return inHand.chunk(h, data, frame.payload);
      }
      inHand?.cancel(`superseded by step ${h.step}`);
      const step = new StepInHand(o, session, children, up, h, frame.payload);
      inHand = step;
      busy = busy.then(async () => {
        if (ended) return;
        try {
          await step.serve();
        } catch (e) {
          if (e instanceof Superseded) return;
          if (e instanceof SubtreeLost) {
            // Our children failed, not we: upstream hears whom to drop and recomputes the block.
            o.log(`step ${h.step}: ${e.message}`);
            if (up.ws.readyState === WebSocket.OPEN) up.ws.send(encodeFrame({ t: 'lost', req: h.req, step: h.step, ids: e.ids }));
            return;
          }
          // The full message stays here: it may quote a local file. The peer hears the code.
          o.log(`error: ${(e as Error).message}`);
          if (up.ws.readyState === WebSocket.OPEN) up.ws.send(encodeFrame({ t: 'error', ...peerSafe(e) }));
          if (up.ws === ws) lost('error');
          else parent?.close();
        } finally {
          if (inHand === step) inHand = null;
        }
      });
    };

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
        end(h.reason === 'training finished' ? { kind: 'finished' } : { kind: 'lost', why: `bye: ${h.reason}` });
        return;
      }
      if (h.t === 'heartbeat') return;
      if (h.t === 'parent') {
        // Queued behind the welcome that came before it (set up asynchronously): the parent link
        // names this node by the welcome's id.
        busy = busy.then(() => {
          if (ended || (parent?.url ?? null) === h.url) return;
          if (!session) return lost('parent before welcome');
          parent?.close();
          parent = h.url ? new ParentLink(o, h.url, session.welcome.nodeId, ca, (up, data, f) => {
            try {
              onStepFrame(up, data, f);
            } catch (e) {
              inHand?.cancel('a bad frame from the parent');
              throw e;
            }
          }) : null;
        });
        return;
      }
      if (h.t === 'step' || h.t === 'weights') {
        const take = (): void => {
          try {
            onStepFrame({ peer, ws }, data, { header: h, payload: frame.payload });
          } catch (e) {
            o.log((e as Error).message);
            if (ws.readyState === WebSocket.OPEN) ws.send(encodeFrame({ t: 'error', ...peerSafe(e) }));
            lost('bad frame');
          }
        };
        if (held) held.push(take);
        else take();
        return;
      }
      // A welcome: until the session is set up, step frames wait (the first step follows at once).
      held = [];
      busy = busy.then(async () => {
        if (ended) return;
        try {
          session = await setup(o, h, frame.payload, session);
          children?.configure(session.arena.layout.paramCount, h.wire);
          joined(session);
          o.log(`joined as ${h.nodeId}: ${session.arena.layout.paramCount} parameters, ${o.threads} thread${o.threads > 1 ? 's' : ''}, kernels ${h.kernels}`);
          const waiting = held ?? [];
          held = null;
          for (const replay of waiting) replay();
        } catch (e) {
          o.log(`error: ${(e as Error).message}`);
          if (ws.readyState === WebSocket.OPEN) ws.send(encodeFrame({ t: 'error', ...peerSafe(e) }));
          lost('error');
        }
      });
    });
    ws.resume();
  });
}

/**
 * This node's link to its parent in the reduction tree: dialed with the same token proofs as the
 * coordinator's, opened with a join naming the node, and re-dialed while the coordinator keeps the
 * parent. The parent sends step requests only; their answers go back on this link.
 */
class ParentLink {
  private ws: WebSocket | null = null;
  private closed = false;

  constructor(
    private readonly o: NodeOptions,
    readonly url: string,
    private readonly nodeId: string,
    private readonly ca: Buffer | undefined,
    /** A step request or weights chunk from the parent; throws when it does not fit (the link is dropped). */
    private readonly onStepFrame: (up: Upstream, data: Buffer, frame: { header: StepRequest | WeightsChunk; payload: Uint8Array }) => void,
  ) {
    void this.connect(0);
  }

  private async connect(attempt: number): Promise<void> {
    if (this.closed) return;
    const peer = `parent ${this.url}`;
    const d = await dial({ url: this.url, token: this.o.token, ca: this.ca, maxPayload: MAX_WELCOME_BYTES });
    if (this.closed) return d.ok ? void d.ws.terminate() : undefined;
    if (!d.ok) {
      this.o.log(`${peer}: ${d.kind === 'refused' ? 'refused' : 'not reached'} (${d.why})`);
      // A parent that fails authentication is not retried; the coordinator hears of it as a lost child.
      if (d.kind === 'lost' && attempt < 5) setTimeout(() => void this.connect(attempt + 1), 200 * 2 ** attempt).unref();
      return;
    }
    const ws = (this.ws = d.ws);
    ws.send(encodeFrame({ t: 'join', v: PROTOCOL_VERSION, nodeId: this.nodeId }));
    ws.on('message', (data: Buffer) => {
      this.o.counters?.received(data.length);
      try {
        const { header: h, payload } = decodeCoordinatorFrame(data, peer);
        if (h.t === 'step' || h.t === 'weights') this.onStepFrame({ peer, ws }, data, { header: h, payload });
        else if (h.t !== 'heartbeat' && h.t !== 'bye') throw new DptrainError('WIRE_UNEXPECTED', `${peer}: a parent sends steps only, not ${h.t}`);
      } catch (e) {
        this.o.log((e as Error).message);
        ws.terminate();
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (this.ws === ws) this.ws = null;
      if (!this.closed) setTimeout(() => void this.connect(0), 200).unref();
    });
    ws.resume();
  }

  close(): void {
    this.closed = true;
    this.ws?.close();
  }
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
  // Slot 0 receives the summed gradient; slots 1..threads are the sub-shards' spares, then this
  // thread's workspace; a node taking children has a slot for each child's sum after them.
  const children = o.listen ? CHILD_SLOTS : 0;
  const arena = createArena(spec, { shards: o.threads + 2 + children, maxRows: w.chunkRows, stateVectors: 0 });
  const kernelChoice = w.kernels as KernelChoice;
  const kernels = createKernels(kernelChoice, arena.memory, arena.workspaces[o.threads + 1].scratch);
  const order = new Int32Array(new SharedArrayBuffer(4 * Math.max(1, config.training.batchSize)));
  const spare = Array.from({ length: o.threads }, (_, i) => i + 1);
  const pool = new LocalPool({
    threads: o.threads, arena, kernels, spareSlots: spare,
    init: { memory: arena.memory, layout: arena.layout, spec, kernels: kernelChoice, train, order },
    onRetry: (slot, attempt, reason) => o.log(`warning: sub-shard in slot ${slot} failed (${reason}); re-running it (attempt ${attempt + 1})`),
  });
  const childSlots = Array.from({ length: children }, (_, k) => o.threads + 2 + k);
  const layout = paramLayout(spec);
  const layers = layout.dense.map((d, l) => ({ ...layerSpan(layout, l), cost: d.nIn * d.nOut }));
  return { welcome: w, arena, pool, kernels, order, childSlots, layers, chunkFrames: [] };
}

function inlineData(w: Welcome, payload: Uint8Array): Dataset {
  const x = sharedF32(w.n * w.nIn);
  const y = sharedF32(w.n * w.yWidth);
  x.set(payloadFloats(payload, 0, w.n * w.nIn));
  y.set(payloadFloats(payload, 4 * w.n * w.nIn, w.n * w.yWidth));
  return { name: 'coordinator data', n: w.n, nIn: w.nIn, x, y, yWidth: w.yWidth, classes: w.classes };
}
