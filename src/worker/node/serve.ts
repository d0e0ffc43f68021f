// One step request in a node's hands, from its header to its answer: the sample indices checked,
// the requests of a block's children sent at once, each weights chunk landed (finite values only)
// and forwarded to the children as it comes (a pipelined broadcast down the tree), then the node's
// own shard computed, the children's sums added in the order of the step's pairwise tree
// (T(n) = T(m) + T(n − m): the first node of a block adds its left edge's right halves, innermost
// first), and ONE sum sent up. A newer request from upstream gives the step up (upstream did).

import type { WebSocket } from 'ws';
import type { ArenaViews } from '../../core/arena.js';
import { DptrainError } from '../../core/errors.js';
import type { Kernels } from '../../core/kernels/types.js';
import { leftEdgeBlocks } from '../../core/pairwise.js';
import { CHUNK_FLOATS, chunkAt, encodeFloatFrame, encodeFrame, landStepIndices, landWeightsChunk, requestRows, type BlockPlan, type StepLimits, type StepRequest, type WeightsChunk, type Welcome } from '../../core/protocol/wire.js';
import type { LocalPool } from '../pool/local-pool.js';
import { SubtreeLost, type ChildAnswer, type ChildLinks, type ChildRequest } from './children.js';
import { emulateShard, type EmulatedCompute } from './emulate.js';

/** What a node computes with, from the coordinator's welcome. */
export interface Session {
  readonly welcome: Welcome;
  readonly arena: ArenaViews;
  readonly pool: LocalPool;
  /** This thread's kernels: adds the children's sums to the node's own. */
  readonly kernels: Kernels;
  readonly order: Int32Array;
  /** Slots (after the pool's) where the children's sums land, one per child. */
  readonly childSlots: readonly number[];
  /**
   * The result frame's memory, rewritten each step: the socket has sent the previous frame by then
   * (upstream answered it with this step's request), so no gradient buffer is allocated per step.
   */
  result?: ArrayBuffer;
  /** The same for the chunks of a sum sent to a parent, by chunk. */
  readonly chunkFrames: ArrayBuffer[];
}

/** Where a step request came from and its answer goes: the coordinator, or this node's parent. */
export interface Upstream {
  readonly peer: string;
  readonly ws: WebSocket;
  /** A parent node: the sum goes up in chunks as they are ready (the coordinator takes it whole). */
  readonly toParent: boolean;
}

export interface ServeOptions {
  readonly log: (line: string) => void;
  /** Test hooks: SIGKILL this process on receiving step S; leave after answering step S. */
  readonly exitAtStep?: number;
  readonly leaveAfterStep?: number;
  readonly counters?: { stepServed(computeMs: number, resultBytes: number): void };
  /** Benchmarks only: a sleep and a made-up gradient instead of forward/backward (emulate.ts). */
  readonly emulate?: EmulatedCompute;
}

/** A step given up because a newer request came (upstream gave up on it): nothing is sent. */
export class Superseded extends Error {}

export class StepInHand {
  private nextAt = 0;
  private readonly indices: Int32Array;
  private readonly subs: { readonly at: number; readonly size: number }[];
  private readonly asked: ChildRequest[];
  private readonly limits: StepLimits;
  private readonly weights: Promise<void>;
  private weightsIn!: () => void;
  readonly cancelled: Promise<never>;
  /** Sends up the chunks of the sum that are ready (set once this node's own shard is done). */
  private pump: (() => void) | null = null;
  /** Bytes of the sum sent up in chunks (to a parent), for the node's metrics. */
  private streamedBytes = 0;
  /** Gives the step up: its waits end, nothing is sent. */
  readonly cancel: (why: string) => void;

  constructor(
    private readonly o: ServeOptions,
    private readonly s: Session,
    children: ChildLinks | null,
    readonly up: Upstream,
    readonly h: StepRequest,
    payload: Uint8Array,
  ) {
    if (o.exitAtStep === h.step) process.kill(process.pid, 'SIGKILL');
    const P = s.arena.layout.paramCount;
    this.limits = { paramCount: P, samples: s.welcome.n, maxRows: s.order.length, wire: s.welcome.wire };
    this.indices = landStepIndices(h, payload, up.peer, this.limits);
    let cancel!: (why: string) => void;
    this.cancelled = new Promise<never>((_, reject) => (cancel = (why) => reject(new Superseded(why))));
    this.cancelled.catch(() => undefined);
    this.cancel = cancel;
    this.weights = new Promise<void>((resolve) => (this.weightsIn = resolve));

    const block = h.block;
    if (block && block.ids[0] !== s.welcome.nodeId) throw new DptrainError('WIRE_MALFORMED', `${up.peer}: a block headed by ${block.ids[0]} sent to ${s.welcome.nodeId}`);
    this.subs = block ? leftEdgeBlocks(block.ids.length) : [];
    if (this.subs.length > 0 && !children) throw new DptrainError('WIRE_UNEXPECTED', `${up.peer}: a block for a node that takes no children (no --listen)`);
    if (this.subs.length > s.childSlots.length) throw new DptrainError('WIRE_MALFORMED', `${up.peer}: a block of ${block!.ids.length} nodes exceeds ${2 ** s.childSlots.length}`);
    // The children's requests go out now; the weights follow them chunk by chunk.
    this.asked = this.subs.map((c, k) => {
      const sub = sliceBlock(block!, c.at, c.size);
      const first = rowsBefore(block!, c.at);
      const header: StepRequest = { t: 'step', req: sub.reqs[0], step: h.step, parts: sub.parts[0], rows: sub.rows[0], ...(c.size > 1 ? { block: sub } : {}) };
      return children!.request(sub.ids[0], header, this.indices.subarray(first, first + requestRows(header)), s.arena.slots[s.childSlots[k]], this.cancelled, () => this.pump?.());
    });
  }

  /** A weights chunk from upstream: landed, and forwarded as it is (`frame`) to every child. */
  chunk(c: WeightsChunk, frame: Buffer, payload: Uint8Array): void {
    if (this.nextAt === this.limits.paramCount) throw new DptrainError('WIRE_UNEXPECTED', `${this.up.peer}: weights beyond step ${this.h.step}'s`);
    this.nextAt = landWeightsChunk(c, payload, this.up.peer, this.h.step, this.limits, this.s.arena.params, this.nextAt);
    // The largest sub-block first: its subtree is the deepest, its chunks have the farthest to go.
    for (let k = this.asked.length - 1; k >= 0; k--) this.asked[k].forward(frame);
    if (this.nextAt === this.limits.paramCount) this.weightsIn();
  }

  /** Computes and answers, once the weights are in; throws SubtreeLost when a child failed, Superseded when given up. */
  async serve(): Promise<void> {
    const { s, h, up, o } = this;
    await Promise.race([this.weights, this.cancelled]);
    s.order.set(this.indices);
    const P = s.arena.layout.paramCount;
    const t0 = performance.now();
    const r = o.emulate ? await emulateShard(o.emulate, h.step, h.rows, h.parts, s.order, s.arena.slots[0]) : (await s.pool.run(h.step, [{ slot: 0, lo: 0, hi: h.rows, parts: h.parts }]))[0];
    const computeMs = performance.now() - t0;
    if (up.toParent) await this.streamUp();
    // Until all have answered: one child's failure must not leave another's request unobserved.
    const settled = await Promise.race([Promise.allSettled(this.asked.map((a) => a.answer)), this.cancelled]);
    const failed = settled.filter((x): x is PromiseRejectedResult => x.status === 'rejected').map((x) => x.reason as Error);
    if (failed.length > 0) {
      const ids = failed.flatMap((e) => (e instanceof SubtreeLost ? e.ids : []));
      throw new SubtreeLost(ids, failed.map((e) => e.message).join('; '));
    }
    const loss = [r.lossSum];
    const ms = [computeMs];
    this.subs.forEach((_, k) => {
      if (!up.toParent) s.kernels.sumSlots(s.arena.slots[0], [s.arena.slots[0], s.arena.slots[s.childSlots[k]]], 0, P, 1);
      const e = (settled[k] as PromiseFulfilledResult<ChildAnswer>).value.entries;
      loss.push(...e.loss);
      ms.push(...e.ms);
    });
    const leaving = o.leaveAfterStep === h.step;
    const head = { t: 'result', req: h.req, step: h.step, count: requestRows(h), lossSum: loss.reduce((a, b) => a + b, 0), computeMs, leaving, ...(h.block ? { entries: { loss, ms } } : {}) };
    let result: Buffer;
    if (up.toParent) {
      result = encodeFrame({ ...head, chunked: true });
    } else {
      result = encodeFloatFrame(head, s.arena.slots[0], s.welcome.wire, s.result);
      s.result = result.buffer as ArrayBuffer;
    }
    up.ws.send(result);
    o.counters?.stepServed(computeMs, result.length + this.streamedBytes);
    if (leaving) {
      o.log(`leaving after step ${h.step}`);
      up.ws.send(encodeFrame({ t: 'bye', reason: 'leaving' }), () => process.exit(0));
    }
  }

  /**
   * To a parent: the sum in chunks, each sent once the own shard and every child's chunk there are
   * in (added in the tree's order, the same bits as a whole sum), so the reduction pipelines up
   * the tree. Resolves when the last chunk is sent, or when a child failed (serve() says which).
   */
  private streamUp(): Promise<void> {
    const { s, h, up } = this;
    const P = s.arena.layout.paramCount;
    const sum = s.arena.slots[0];
    const childSums = s.childSlots.slice(0, this.asked.length).map((k) => s.arena.slots[k]);
    let sent = 0;
    return new Promise<void>((resolve) => {
      for (const a of this.asked) a.answer.catch(() => resolve());
      this.cancelled.catch(() => resolve());
      this.pump = () => {
        while (sent < P) {
          const count = chunkAt(P, sent);
          if (this.asked.some((a) => a.landed() < sent + count)) return;
          for (const c of childSums) s.kernels.sumSlots(sum, [sum, c], sent, sent + count, 1);
          const k = sent / CHUNK_FLOATS;
          const frame = encodeFloatFrame({ t: 'grad', req: h.req, step: h.step, at: sent, count }, sum.subarray(sent, sent + count), s.welcome.wire, s.chunkFrames[k]);
          s.chunkFrames[k] = frame.buffer as ArrayBuffer;
          up.ws.send(frame);
          this.streamedBytes += frame.length;
          sent += count;
        }
        this.pump = null;
        resolve();
      };
      this.pump();
    });
  }
}

/** Entries [at, at + size) of a block plan. */
function sliceBlock(b: BlockPlan, at: number, size: number): BlockPlan {
  return { ids: b.ids.slice(at, at + size), reqs: b.reqs.slice(at, at + size), rows: b.rows.slice(at, at + size), parts: b.parts.slice(at, at + size) };
}

/** Rows of the block's entries before `at`: where entry `at`'s indices start. */
function rowsBefore(b: BlockPlan, at: number): number {
  let n = 0;
  for (let i = 0; i < at; i++) n += b.rows[i];
  return n;
}
