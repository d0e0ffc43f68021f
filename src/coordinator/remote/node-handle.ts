// A connected worker node, seen from the coordinator as an Executor: each shard becomes one step
// request (the weights and the shard's sample indices) and one validated result (the node's ONE
// summed gradient), written into the shard's slot. A node that disconnects, misses its heartbeats,
// passes its deadline, stops reading, or sends anything invalid is dropped: its run() rejects and
// the scheduler recomputes the shard elsewhere.

import type { WebSocket } from 'ws';
import type { ArenaViews } from '../../core/arena.js';
import { DptrainError } from '../../core/errors.js';
import { decodeNodeFrame, encodeFrame, WireError, type ResultHeader } from '../../core/protocol/wire.js';
import type { Executor, ShardOutcome, ShardSpec } from '../../worker/pool/executor.js';

export interface RemoteNodeOptions {
  readonly id: string;
  readonly threads: number;
  readonly ws: WebSocket;
  readonly arena: ArenaViews;
  readonly order: Int32Array;
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
    const { arena, order, ws } = this.o;
    const rows = spec.hi - spec.lo;
    const req = this.nextReq++;
    const frame = encodeFrame({ t: 'step', req, step, parts: spec.parts, rows }, arena.params, order.subarray(spec.lo, spec.hi));
    // A node that does not read its socket must not grow our memory: beyond one frame in flight it is dropped.
    if (ws.bufferedAmount > frame.length) {
      this.drop(`not reading its socket (${ws.bufferedAmount} bytes unsent)`);
      return Promise.reject(new DptrainError('WORKER_FAILED', `node ${this.id} is not reading`));
    }
    return new Promise<ShardOutcome>((resolve, reject) => {
      const timer = setTimeout(() => this.drop(`no result for step ${step} within the ${this.o.deadlineMs} ms deadline`), this.o.deadlineMs);
      this.pending = { req, step, spec, resolve, reject, timer };
      this.o.traffic.sent += frame.length;
      ws.send(frame, (err) => err && this.drop(`send failed: ${err.message}`));
    });
  }

  private onFrame(data: Buffer, isBinary: boolean): void {
    if (this.gone) return;
    this.o.traffic.received += data.length;
    try {
      if (!isBinary) throw new WireError('WIRE_MALFORMED', `node ${this.id}: text frame, the protocol is binary`);
      const { msg, gradient } = decodeNodeFrame(data, `node ${this.id}`, { paramCount: this.o.arena.layout.paramCount });
      if (msg.t === 'result') this.onResult(msg, gradient!);
      else if (msg.t === 'bye') this.drop(`said bye (${msg.reason})`);
      else if (msg.t === 'error') this.drop(`reported an error: ${msg.message}`);
      else if (msg.t === 'hello') throw new WireError('WIRE_UNEXPECTED', `node ${this.id}: a second hello`);
    } catch (e) {
      this.drop((e as Error).message);
    }
  }

  private onResult(msg: ResultHeader, gradient: Float32Array): void {
    const p = this.pending;
    if (!p || msg.req !== p.req) throw new WireError('WIRE_STALE', `node ${this.id}: result for request ${msg.req}, none such is open`);
    if (msg.step !== p.step) throw new WireError('WIRE_STALE', `node ${this.id}: result for step ${msg.step}, expected step ${p.step}`);
    const rows = p.spec.hi - p.spec.lo;
    if (msg.count !== rows) throw new WireError('WIRE_LENGTH_MISMATCH', `node ${this.id}: result counts ${msg.count} samples, the shard has ${rows}`);
    // Validated in full (length, finiteness) by decodeNodeFrame: only now does it touch the arena.
    this.o.arena.slots[p.spec.slot].set(gradient);
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
