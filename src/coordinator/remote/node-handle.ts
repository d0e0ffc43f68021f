// A connected worker node, seen from the coordinator as an Executor: each shard becomes one step
// request (the weights and the shard's sample indices) and one validated result (the node's ONE
// summed gradient), written into the shard's slot. A node that disconnects, misses its heartbeats,
// passes its deadline, stops reading, or sends anything invalid is dropped: its run() rejects and
// the scheduler recomputes the shard elsewhere.

import type { WebSocket } from 'ws';
import type { ArenaViews } from '../../core/arena.js';
import { DptrainError } from '../../core/errors.js';
import { SumChunks } from '../../core/protocol/sum-chunks.js';
import { decodeNodeFrame, encodeFrame, encodeWeightChunk, weightChunks, wireBytes, WireError, type BlockPlan, type GradChunk, type ResultHeader, type WireFloat } from '../../core/protocol/wire.js';
import { ShardsLost, type Executor, type ShardOutcome, type ShardSpec } from '../../worker/pool/executor.js';

/**
 * The weights of the current step as its chunk messages, encoded once and shared by every node's
 * request. Two sets per encoding take turns: the one of step s is rewritten at step s + 2, when
 * every socket that carried it has either sent it (its node answered step s + 1, queued behind it)
 * or been destroyed (a dropped node), so no frame in flight changes, and nothing weights-sized is
 * allocated per step. A chunk is encoded when the step's first request sends it: that node's
 * first chunk is on its way while the next ones are encoded.
 */
export class StepWeights {
  private step = -1;
  private turn = 0;
  /** The step's chunks so far, per encoding. */
  private readonly current = new Map<WireFloat, Buffer[]>();
  private readonly turns = new Map<WireFloat, [Buffer[], Buffer[]]>();
  constructor(private readonly arena: ArenaViews) {}

  /** Chunk messages a step's weights take. */
  get count(): number {
    return weightChunks(this.arena.params.length);
  }

  /** Chunk k of the step's weights: the weights do not change within a step, so the first request's copy serves all. */
  chunk(step: number, k: number, wire: WireFloat = 'f32'): Buffer {
    if (step !== this.step) {
      this.current.clear();
      this.step = step;
      this.turn ^= 1;
    }
    let b = this.current.get(wire);
    if (!b) {
      const pair = this.turns.get(wire) ?? [[], []];
      this.turns.set(wire, pair);
      b = [];
      this.current.set(wire, b);
    }
    if (!b[k]) {
      const memory = this.turns.get(wire)![this.turn];
      b[k] = memory[k] = encodeWeightChunk(step, this.arena.params, wire, k, memory[k]);
    }
    return b[k];
  }
}

export interface RemoteNodeOptions {
  readonly id: string;
  readonly threads: number;
  readonly ws: WebSocket;
  readonly arena: ArenaViews;
  readonly order: Int32Array;
  /** Shared by the nodes of one coordinator. */
  readonly weights: StepWeights;
  /** The float encoding on this node's link. */
  readonly wire: WireFloat;
  /** A step request unanswered this long drops the node. */
  readonly deadlineMs: number;
  /** Missing pongs this long drops the node. */
  readonly heartbeatMs: number;
  readonly log: (line: string) => void;
  /** Called once when the node is gone (for whatever reason), with the reason. */
  readonly onGone: (reason: string) => void;
  /** Bytes counters for metrics. */
  readonly traffic: { sent: number; received: number };
  /** Where it takes children in a reduction tree (`dptrain worker --listen`), if it does. */
  readonly listen?: string;
}

interface Pending {
  readonly req: number;
  readonly step: number;
  /** The shards answered: the node's own, then (for a block) those of the nodes under it. */
  readonly specs: readonly ShardSpec[];
  readonly members: readonly Executor[];
  readonly resolve: (o: ShardOutcome[]) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
  /** The sum's chunks landed so far (a node sends its sum in chunks as backward makes them final). */
  readonly chunks: SumChunks;
}

/** Requests given up are remembered this long (by count): their late answers are skipped, not refused. */
const ABANDONED_KEPT = 16;

export class RemoteNode implements Executor {
  readonly id: string;
  readonly threads: number;
  private readonly o: RemoteNodeOptions;
  private pending: Pending | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private nextReq = 1;
  private goneWhy: string | null = null;
  private leaving = false;
  private lastPong = Date.now();
  private readonly beat: NodeJS.Timeout;
  private readonly abandoned: number[] = [];
  private parentUrl: string | null = null;
  private readonly goneListeners = new Set<(why: string) => void>();
  readonly listen: string | undefined;

  constructor(o: RemoteNodeOptions) {
    this.o = o;
    this.id = o.id;
    this.threads = o.threads;
    this.listen = o.listen;

    o.ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(data, isBinary));
    o.ws.on('close', () => this.drop('disconnected'));
    o.ws.on('error', (e) => this.drop(`socket error: ${e.message}`));
    o.ws.on('pong', () => (this.lastPong = Date.now()));
    this.beat = setInterval(() => {
      if (Date.now() - this.lastPong > 3 * o.heartbeatMs) this.drop(`missed heartbeats for ${Date.now() - this.lastPong} ms`);
      else o.ws.ping();
    }, o.heartbeatMs);
    this.beat.unref();
  }

  /** True once the node is gone or said its last result is its last (it leaves at the step boundary). */
  get retired(): boolean {
    return this.leaving || this.goneWhy !== null;
  }

  async run(step: number, shards: readonly ShardSpec[]): Promise<ShardOutcome[]> {
    const out: ShardOutcome[] = [];
    for (const s of shards) out.push(...(await this.request(step, [s], [this])));
    return out;
  }

  /** A block headed by this node: one request with the block's plan, one sum back (in the first shard's slot). */
  runBlock(step: number, shards: readonly ShardSpec[], members: readonly Executor[]): Promise<ShardOutcome[]> {
    return this.request(step, shards, members);
  }

  /** From the next request on, this node takes its requests from the node listening on `url` (null: from us). */
  setParent(url: string | null): void {
    if (this.goneWhy || url === this.parentUrl) return;
    this.parentUrl = url;
    this.o.ws.send(encodeFrame({ t: 'parent', url }));
  }

  watchGone(listener: (why: string) => void): () => void {
    if (this.goneWhy) {
      listener(this.goneWhy);
      return () => undefined;
    }
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  /** Gives the open request up: its late answer is skipped (the node is not at fault). */
  abandon(reason: string): void {
    const p = this.pending;
    if (!p) return;
    this.abandoned.push(p.req);
    if (this.abandoned.length > ABANDONED_KEPT) this.abandoned.shift();
    this.failPending(reason);
  }

  private request(step: number, specs: readonly ShardSpec[], members: readonly Executor[]): Promise<ShardOutcome[]> {
    // One request at a time per node: a recovered shard waits behind the node's own.
    const next = this.queue.then(() => this.send(step, specs, members));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private send(step: number, specs: readonly ShardSpec[], members: readonly Executor[]): Promise<ShardOutcome[]> {
    if (this.goneWhy) return Promise.reject(new DptrainError('WORKER_FAILED', `node ${this.id} is gone (${this.goneWhy})`));
    const { order, ws } = this.o;
    const spec = specs[0];
    const rows = spec.hi - spec.lo;
    const req = this.nextReq++;
    // A block's plan: each node's id, a request id of its own, its rows and recipe; its indices
    // follow ours (the block's shards are consecutive rows).
    const block: BlockPlan | undefined = specs.length > 1
      ? { ids: members.map((m) => m.id), reqs: members.map((_, i) => (i === 0 ? req : req * 1000 + i)), rows: specs.map((s) => s.hi - s.lo), parts: specs.map((s) => s.parts) }
      : undefined;
    const last = specs[specs.length - 1];
    const own = encodeFrame({ t: 'step', req, step, parts: spec.parts, rows, ...(block ? { block } : {}) }, order.subarray(spec.lo, last.hi));
    // What this request puts on the socket: its own frame and the weights (the chunks' headers are a few bytes each).
    const bytes = own.length + this.o.arena.layout.paramCount * wireBytes(this.o.wire);
    // A node that does not read its socket must not grow our memory: beyond one frame in flight it is dropped.
    if (ws.bufferedAmount > bytes) {
      this.drop(`not reading its socket (${ws.bufferedAmount} bytes unsent)`);
      return Promise.reject(new DptrainError('WORKER_FAILED', `node ${this.id} is not reading`));
    }
    return new Promise<ShardOutcome[]>((resolve, reject) => {
      const timer = setTimeout(() => this.drop(`no result for step ${step} within the ${this.o.deadlineMs} ms deadline`), this.o.deadlineMs);
      this.pending = { req, step, specs, members, resolve, reject, timer, chunks: new SumChunks(this.o.arena.layout.paramCount) };
      // The node's own request, then the step's shared weights chunks (no copy).
      ws.send(own);
      let sent = own.length;
      const { weights, wire } = this.o;
      for (let k = 0; k < weights.count; k++) {
        const c = weights.chunk(step, k, wire);
        sent += c.length;
        ws.send(c, k === weights.count - 1 ? (err) => err && this.drop(`send failed: ${err.message}`) : undefined);
      }
      this.o.traffic.sent += sent;
    });
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.goneWhy) return;
    this.o.traffic.received += data.length;
    try {
      if (!isBinary) throw new WireError('WIRE_MALFORMED', `node ${this.id}: text frame, the protocol is binary`);
      const { msg, sumSquares } = decodeNodeFrame(data, `node ${this.id}`, { paramCount: this.o.arena.layout.paramCount, wire: this.o.wire }, (r) => this.landing(r));
      if (msg.t === 'result') this.onResult(msg, sumSquares);
      else if (msg.t === 'grad') {
        if (this.pending?.req === msg.req) this.pending.chunks.squares += sumSquares ?? 0;
      }
      else if (msg.t === 'lost') this.onLost(msg.req, msg.ids);
      else if (msg.t === 'join') throw new WireError('WIRE_UNEXPECTED', `node ${this.id}: a join is for a parent node`);
      else if (msg.t === 'bye') this.drop(`said bye (${msg.reason})`);
      else if (msg.t === 'error') this.drop(`reported an error: ${msg.message}`);
      else if (msg.t === 'hello') throw new WireError('WIRE_UNEXPECTED', `node ${this.id}: a second hello`);
    } catch (e) {
      this.drop((e as Error).message);
    }
  }

  /**
   * Where a result or a chunk of its sum lands: its (first) shard's slot, once the header answers
   * the open request; null: a request given up, or a result whose sum came in chunks.
   */
  private landing(msg: ResultHeader | GradChunk): Float32Array | null {
    const p = this.pending;
    if ((!p || msg.req !== p.req) && this.abandoned.includes(msg.req)) return null;
    if (!p || msg.req !== p.req) throw new WireError('WIRE_STALE', `node ${this.id}: ${msg.t} for request ${msg.req}, none such is open`);
    if (msg.step !== p.step) throw new WireError('WIRE_STALE', `node ${this.id}: ${msg.t} for step ${msg.step}, expected step ${p.step}`);
    const slot = this.o.arena.slots[p.specs[0].slot];
    if (msg.t === 'grad') {
      p.chunks.claim(msg, `node ${this.id}`);
      return slot.subarray(msg.at, msg.at + msg.count);
    }
    const rows = p.specs[p.specs.length - 1].hi - p.specs[0].lo;
    if (msg.count !== rows) throw new WireError('WIRE_LENGTH_MISMATCH', `node ${this.id}: result counts ${msg.count} samples, the request has ${rows}`);
    const entries = msg.entries?.loss.length;
    if (p.specs.length > 1 ? entries !== p.specs.length : entries !== undefined)
      throw new WireError('WIRE_LENGTH_MISMATCH', `node ${this.id}: result for ${entries ?? 1} nodes, the request has ${p.specs.length}`);
    if (msg.chunked) {
      if (!p.chunks.complete) throw new WireError('WIRE_LENGTH_MISMATCH', `node ${this.id}: result after ${p.chunks.received} chunks of its sum`);
      return null;
    }
    if (p.chunks.received > 0) throw new WireError('WIRE_MALFORMED', `node ${this.id}: a whole sum after chunks of it`);
    // Checked and copied in one pass; a non-finite value drops the node, and the slot is then
    // written in full by whoever recomputes the shard: nothing partial is reduced.
    return slot;
  }

  /** `sumSquares`: of the landed sum, measured while landing it (the gradient guard's norm). */
  private onResult(msg: ResultHeader, sumSquares: number | undefined): void {
    const p = this.pending;
    if (!p || p.req !== msg.req) return; // a late answer to a request given up
    clearTimeout(p.timer);
    this.pending = null;
    if (msg.leaving) this.leaving = true;
    if (msg.chunked) sumSquares = p.chunks.squares;
    if (p.specs.length === 1) {
      p.resolve([{ slot: p.specs[0].slot, lossSum: msg.lossSum, count: msg.count, computeMs: msg.computeMs, by: this.id, sumSquares, hiddenMs: msg.hiddenMs }]);
      return;
    }
    const e = msg.entries!;
    p.resolve(p.specs.map((s, i) => ({ slot: s.slot, lossSum: e.loss[i], count: s.hi - s.lo, computeMs: e.ms[i], by: p.members[i].id, sumOf: i === 0 ? p.specs.length : 0, ...(i === 0 ? { sumSquares, hiddenMs: msg.hiddenMs } : {}) })));
  }

  /** The node's block cannot complete: nodes under it failed (it names them; it is not at fault itself). */
  private onLost(req: number, ids: readonly string[]): void {
    const p = this.pending;
    if (!p || p.req !== req) return;
    const known = ids.filter((id) => p.members.some((m) => m.id === id && m !== this));
    if (known.length === 0) throw new WireError('WIRE_MALFORMED', `node ${this.id}: reports lost nodes that are not under it (${ids.join(', ').slice(0, 100)})`);
    this.failPending(new ShardsLost(known, `nodes under ${this.id} failed: ${known.join(', ')}`));
  }

  /** Drops the node (once): the open request fails, the socket closes, the owner hears why. */
  drop(reason: string): void {
    if (this.goneWhy) return;
    this.markGone(reason);
    this.failPending(reason);
    this.o.ws.terminate();
    this.o.onGone(reason);
  }

  /** No further requests; whoever watches hears why. */
  private markGone(why: string): void {
    this.goneWhy = why;
    for (const l of this.goneListeners) l(why);
    this.goneListeners.clear();
    clearInterval(this.beat);
  }

  /** The open request (if any) fails now, and its deadline timer no longer holds the process. */
  private failPending(why: string | Error): void {
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    clearTimeout(p.timer);
    p.reject(typeof why === 'string' ? new DptrainError('WORKER_FAILED', why) : why);
  }

  async close(): Promise<void> {
    if (this.goneWhy) return;
    try {
      this.o.ws.send(encodeFrame({ t: 'bye', reason: 'training finished' }));
    } catch {
      // The socket may already be closing; the node reconnects or exits on its own.
    }
    this.markGone('closed');
    // Closed mid-step (a run abandoned on Ctrl-C): a pending step's deadline must not keep the
    // process alive.
    this.failPending('closed by the coordinator');
    this.o.ws.close();
  }
}
