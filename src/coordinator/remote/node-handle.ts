// A connected worker node, seen from the coordinator as an Executor: each shard becomes one step
// request (the weights and the shard's sample indices) and one validated result (the node's ONE
// summed gradient), written into the shard's slot. A node that disconnects, misses its heartbeats,
// passes its deadline, stops reading, or sends anything invalid is dropped: its run() rejects and
// the scheduler recomputes the shard elsewhere.

import type { WebSocket } from 'ws';
import type { ArenaViews } from '../../core/arena.js';
import { DptrainError } from '../../core/errors.js';
import { decodeNodeFrame, encodeFrame, encodeStepRequest, encodeWeights, WireError, type ResultHeader, type WireFloat } from '../../core/protocol/wire.js';
import type { Executor, ShardOutcome, ShardSpec } from '../../worker/pool/executor.js';

/**
 * The weights of the current step, encoded once and shared by every node's request. Two buffers
 * per encoding take turns: the one of step s is rewritten at step s + 2, when every socket that
 * carried it has either sent it (its node answered step s + 1, queued behind it) or been destroyed
 * (a dropped node), so no frame in flight changes, and no 2.7 MB buffer is allocated per step.
 */
export class StepWeights {
  private step = -1;
  private turn = 0;
  private readonly current = new Map<WireFloat, Buffer>();
  private readonly turns = new Map<WireFloat, [Buffer | undefined, Buffer | undefined]>();
  constructor(private readonly arena: ArenaViews) {}

  /** The step's payload: the weights do not change within a step, so the first request's copy serves all. */
  of(step: number, wire: WireFloat = 'f32'): Buffer {
    if (step !== this.step) {
      this.current.clear();
      this.step = step;
      this.turn ^= 1;
    }
    let b = this.current.get(wire);
    if (!b) {
      const pair = this.turns.get(wire) ?? [undefined, undefined];
      b = encodeWeights(this.arena.params, wire, pair[this.turn]);
      pair[this.turn] = b;
      this.turns.set(wire, pair);
      this.current.set(wire, b);
    }
    return b;
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
}

interface Pending {
  readonly req: number;
  readonly step: number;
  readonly spec: ShardSpec;
  readonly resolve: (o: ShardOutcome) => void;
  readonly reject: (e: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class RemoteNode implements Executor {
  readonly id: string;
  readonly threads: number;
  private readonly o: RemoteNodeOptions;
  private pending: Pending | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private nextReq = 1;
  private gone: string | null = null;
  private leaving = false;
  private lastPong = Date.now();
  private readonly beat: NodeJS.Timeout;

  constructor(o: RemoteNodeOptions) {
    this.o = o;
    this.id = o.id;
    this.threads = o.threads;
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
    return this.leaving || this.gone !== null;
  }

  async run(step: number, shards: readonly ShardSpec[]): Promise<ShardOutcome[]> {
    const out: ShardOutcome[] = [];
    for (const s of shards) out.push(await this.request(step, s));
    return out;
  }

  private request(step: number, spec: ShardSpec): Promise<ShardOutcome> {
    // One request at a time per node: a recovered shard waits behind the node's own.
    const next = this.queue.then(() => this.send(step, spec));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private send(step: number, spec: ShardSpec): Promise<ShardOutcome> {
    if (this.gone) return Promise.reject(new DptrainError('WORKER_FAILED', `node ${this.id} is gone (${this.gone})`));
    const { order, ws } = this.o;
    const rows = spec.hi - spec.lo;
    const req = this.nextReq++;
    const [own, weights] = encodeStepRequest({ req, step, parts: spec.parts, rows }, order.subarray(spec.lo, spec.hi), this.o.weights.of(step, this.o.wire));
    const bytes = own.length + weights.length;
    // A node that does not read its socket must not grow our memory: beyond one frame in flight it is dropped.
    if (ws.bufferedAmount > bytes) {
      this.drop(`not reading its socket (${ws.bufferedAmount} bytes unsent)`);
      return Promise.reject(new DptrainError('WORKER_FAILED', `node ${this.id} is not reading`));
    }
    return new Promise<ShardOutcome>((resolve, reject) => {
      const timer = setTimeout(() => this.drop(`no result for step ${step} within the ${this.o.deadlineMs} ms deadline`), this.o.deadlineMs);
      this.pending = { req, step, spec, resolve, reject, timer };
      this.o.traffic.sent += bytes;
      // One message in two fragments: the node's own part, then the step's shared weights (no copy).
      ws.send(own, { fin: false });
      ws.send(weights, { fin: true }, (err) => err && this.drop(`send failed: ${err.message}`));
    });
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.gone) return;
    this.o.traffic.received += data.length;
    try {
      if (!isBinary) throw new WireError('WIRE_MALFORMED', `node ${this.id}: text frame, the protocol is binary`);
      const { msg } = decodeNodeFrame(data, `node ${this.id}`, { paramCount: this.o.arena.layout.paramCount, wire: this.o.wire }, (r) => this.landing(r));
      if (msg.t === 'result') this.onResult(msg);
      else if (msg.t === 'bye') this.drop(`said bye (${msg.reason})`);
      else if (msg.t === 'error') this.drop(`reported an error: ${msg.message}`);
      else if (msg.t === 'hello') throw new WireError('WIRE_UNEXPECTED', `node ${this.id}: a second hello`);
    } catch (e) {
      this.drop((e as Error).message);
    }
  }

  /** Where a result lands: its shard's slot, once the header answers the open request. */
  private landing(msg: ResultHeader): Float32Array {
    const p = this.pending;
    if (!p || msg.req !== p.req) throw new WireError('WIRE_STALE', `node ${this.id}: result for request ${msg.req}, none such is open`);
    if (msg.step !== p.step) throw new WireError('WIRE_STALE', `node ${this.id}: result for step ${msg.step}, expected step ${p.step}`);
    const rows = p.spec.hi - p.spec.lo;
    if (msg.count !== rows) throw new WireError('WIRE_LENGTH_MISMATCH', `node ${this.id}: result counts ${msg.count} samples, the shard has ${rows}`);
    // Checked and copied in one pass; a non-finite value drops the node, and the slot is then
    // written in full by whoever recomputes the shard: nothing partial is reduced.
    return this.o.arena.slots[p.spec.slot];
  }

  private onResult(msg: ResultHeader): void {
    const p = this.pending!;
    clearTimeout(p.timer);
    this.pending = null;
    if (msg.leaving) this.leaving = true;
    p.resolve({ slot: p.spec.slot, lossSum: msg.lossSum, count: msg.count, computeMs: msg.computeMs, by: this.id });
  }

  /** Drops the node (once): the open request fails, the socket closes, the owner hears why. */
  drop(reason: string): void {
    if (this.gone) return;
    this.gone = reason;
    clearInterval(this.beat);
    this.failPending(reason);
    this.o.ws.terminate();
    this.o.onGone(reason);
  }

  /** The open request (if any) fails now, and its deadline timer no longer holds the process. */
  private failPending(reason: string): void {
    const p = this.pending;
    this.pending = null;
    if (!p) return;
    clearTimeout(p.timer);
    p.reject(new DptrainError('WORKER_FAILED', reason));
  }

  async close(): Promise<void> {
    if (this.gone) return;
    try {
      this.o.ws.send(encodeFrame({ t: 'bye', reason: 'training finished' }));
    } catch {
      // The socket may already be closing; the node reconnects or exits on its own.
    }
    this.gone = 'closed';
    clearInterval(this.beat);
    // Closed mid-step (a run abandoned on Ctrl-C): a pending step's deadline must not keep the
    // process alive.
    this.failPending('closed by the coordinator');
    this.o.ws.close();
  }
}
