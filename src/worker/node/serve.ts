// One step request in a node's hands, from its header to its answer, streamed both ways: the
// sample indices checked, the requests of a block's children sent at once, each weights chunk
// landed (finite values only) and forwarded to the children as it comes (a pipelined broadcast down
// the tree), while the node's own shard already runs (forward waits for each layer's weights, not
// for all); as backward makes each layer's gradient final, last layer first, the chunks of the sum
// there go up, each once the children's same chunk is in and added in the order of the step's
// pairwise tree (T(n) = T(m) + T(n − m): the first node of a block adds its left edge's right
// halves, innermost first). A newer request from upstream gives the step up (upstream did).

import type { WebSocket } from 'ws';
import type { ArenaViews } from '../../core/arena.js';
import { DptrainError } from '../../core/errors.js';
import type { Kernels } from '../../core/kernels/types.js';
import { leftEdgeBlocks } from '../../core/pairwise.js';
import { CHUNK_FLOATS, chunkAt, encodeFloatFrame, encodeFrame, landStepIndices, landWeightsChunk, requestRows, type BlockPlan, type StepLimits, type StepRequest, type WeightsChunk, type Welcome } from '../../core/protocol/wire.js';
import type { LocalPool } from '../pool/local-pool.js';
import { SubtreeLost, type ChildAnswer, type ChildLinks, type ChildRequest } from './children.js';
import { emulateShard, type EmulatedCompute, type LayerCost } from './emulate.js';

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
  /** The model's layers: where each sits in the parameter vector, and its share of the compute. */
  readonly layers: readonly LayerCost[];
  /**
   * The memory of the sum's chunk frames, by chunk, rewritten each step: the socket has sent the
   * previous step's by then (upstream answered it with this step's request), so no gradient
   * buffer is allocated per step.
   */
  readonly chunkFrames: ArrayBuffer[];
}

/** Where a step request came from and its answer goes: the coordinator, or this node's parent. */
export interface Upstream {
  readonly peer: string;
  readonly ws: WebSocket;
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
  /** The pool's weights ticket of this step: its threads read each layer as it lands. */
  private readonly ticket: number;
  /** When the first layer's weights were in (the node's compute can start no earlier), and all. */
  private firstLayerAt: number | null = null;
  private allWeightsAt: number | null = null;
  /** When the first chunk of the sum went up. */
  private firstSentAt: number | null = null;
  /** Emulated compute: resolved as the weights land, by the float they wait for. */
  private landWaiters: { readonly end: number; readonly wake: () => void }[] = [];
  /** Emulated compute: where its final gradient starts (the pool's board says it for real compute). */
  private emulatedFrom = 0;
  readonly cancelled: Promise<never>;
  /** Sends up the chunks of the sum that are ready (set while the step streams up). */
  private pump: (() => void) | null = null;
  /** Bytes of the sum sent up in chunks, for the node's metrics. */
  private streamedBytes = 0;
  /** Gives the step up: its waits end, its threads stop waiting for weights, nothing is sent. */
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
    this.ticket = s.pool.openWeights();
    let reject!: (why: string) => void;
    this.cancelled = new Promise<never>((_, r) => (reject = (why) => r(new Superseded(why))));
    this.cancelled.catch(() => undefined);
    this.cancel = (why) => {
      s.pool.closeWeights(this.ticket);
      reject(why);
    };

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

  /** A weights chunk from upstream: landed, told to the threads, and forwarded as it is (`frame`) to every child. */
  chunk(c: WeightsChunk, frame: Buffer, payload: Uint8Array): void {
    if (this.nextAt === this.limits.paramCount) throw new DptrainError('WIRE_UNEXPECTED', `${this.up.peer}: weights beyond step ${this.h.step}'s`);
    this.nextAt = landWeightsChunk(c, payload, this.up.peer, this.h.step, this.limits, this.s.arena.params, this.nextAt);
    this.s.pool.weightsLanded(this.ticket, this.nextAt);
    if (this.firstLayerAt === null && this.nextAt >= this.s.layers[0].end) this.firstLayerAt = performance.now();
    if (this.nextAt === this.limits.paramCount) this.allWeightsAt = performance.now();
    const woken = this.landWaiters.filter((w) => this.nextAt >= w.end);
    this.landWaiters = this.landWaiters.filter((w) => this.nextAt < w.end);
    for (const w of woken) w.wake();
    // The largest sub-block first: its subtree is the deepest, its chunks have the farthest to go.
    for (let k = this.asked.length - 1; k >= 0; k--) this.asked[k].forward(frame);
  }

  /** Computes and answers as the weights come; throws SubtreeLost when a child failed, Superseded when given up. */
  async serve(): Promise<void> {
    const { s, h, up, o } = this;
    s.order.set(this.indices);
    const t0 = performance.now();
    this.emulatedFrom = s.arena.layout.paramCount;
    // run() marks slot 0's gradient as not final before it yields: the pump below sees this step's.
    const computing = o.emulate
      ? emulateShard(o.emulate, h.step, h.rows, h.parts, s.order, s.arena.slots[0], s.layers, {
        weightsFor: (end) => this.landed(end),
        gradientReady: (from) => {
          this.emulatedFrom = from;
          this.pump?.();
        },
      })
      : s.pool.run(h.step, [{ slot: 0, lo: 0, hi: h.rows, parts: h.parts }], undefined, this.ticket).then((r) => r[0]);
    computing.catch(() => undefined);
    const streamed = this.streamUp(computing);
    let r: { lossSum: number };
    try {
      r = await Promise.race([computing, this.cancelled]);
    } catch (e) {
      // Its threads were told to stop waiting for weights; the next step starts once they did.
      await computing.catch(() => undefined);
      throw e;
    }
    const computed = performance.now();
    const started = Math.max(t0, this.firstLayerAt ?? t0);
    const computeMs = computed - started;
    // Transfers that ran while this node computed: weights landing after forward began, sums
    // leaving before backward ended. What the bench's step split calls hidden.
    const hiddenMs = Math.max(0, (this.allWeightsAt ?? started) - started) + Math.max(0, computed - (this.firstSentAt ?? computed));
    await streamed;
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
      const e = (settled[k] as PromiseFulfilledResult<ChildAnswer>).value.entries;
      loss.push(...e.loss);
      ms.push(...e.ms);
    });
    const leaving = o.leaveAfterStep === h.step;
    const result = encodeFrame({ t: 'result', req: h.req, step: h.step, count: requestRows(h), lossSum: loss.reduce((a, b) => a + b, 0), computeMs, hiddenMs, leaving, ...(h.block ? { entries: { loss, ms } } : {}), chunked: true });
    up.ws.send(result);
    o.counters?.stepServed(computeMs, result.length + this.streamedBytes);
    if (leaving) {
      o.log(`leaving after step ${h.step}`);
      up.ws.send(encodeFrame({ t: 'bye', reason: 'leaving' }), () => process.exit(0));
    }
  }

  /**
   * Resolves once floats [0, end) of the weights are in (emulated compute's forward waits on it);
   * rejects when the step is given up, so that the compute ends and the next step can start.
   */
  private landed(end: number): Promise<void> {
    if (this.nextAt >= end) return Promise.resolve();
    return Promise.race([new Promise<void>((wake) => this.landWaiters.push({ end, wake })), this.cancelled]);
  }

  /**
   * The sum up in chunks, from the last: each is sent once the own shard's gradient is final there
   * (backward goes from the last layer down) and every child's same chunk is in (added in the
   * tree's order, the same bits as a whole sum), so the reduction overlaps backward and pipelines
   * up the tree. Resolves when every chunk is sent, or when a child failed, the compute failed
   * or the step was given up (serve() says which).
   */
  private streamUp(computing: Promise<unknown>): Promise<void> {
    const { s, h, up, o } = this;
    const P = s.arena.layout.paramCount;
    const sum = s.arena.slots[0];
    const childSums = s.childSlots.slice(0, this.asked.length).map((k) => s.arena.slots[k]);
    let next = Math.ceil(P / CHUNK_FLOATS) - 1;
    let computed = false;
    const ownFrom = (): number => (computed ? 0 : o.emulate ? this.emulatedFrom : s.pool.gradientFrom(0));
    return new Promise<void>((resolve) => {
      const stop = (): void => {
        this.pump = null;
        resolve();
      };
      for (const a of this.asked) a.answer.catch(stop);
      this.cancelled.catch(stop);
      computing.then(() => {
        computed = true;
        this.pump?.();
      }, stop);
      this.pump = () => {
        for (const from = ownFrom(); next >= 0; next--) {
          const at = next * CHUNK_FLOATS;
          const count = chunkAt(P, at);
          if (at < from || this.asked.some((a) => !a.has(next))) return;
          for (const c of childSums) s.kernels.sumSlots(sum, [sum, c], at, at + count, 1);
          const frame = encodeFloatFrame({ t: 'grad', req: h.req, step: h.step, at, count }, sum.subarray(at, at + count), s.welcome.wire, s.chunkFrames[next]);
          s.chunkFrames[next] = frame.buffer as ArrayBuffer;
          up.ws.send(frame);
          this.firstSentAt ??= performance.now();
          this.streamedBytes += frame.length;
        }
        stop();
      };
      // Real compute posts each layer's final gradient on the pool's board: wake the pump on it.
      if (!o.emulate) void this.watchOwnGradient(() => this.pump !== null && !computed);
      this.pump();
    });
  }

  /** While `streaming()`, runs the pump whenever slot 0's final gradient grows (or every few ms). */
  private async watchOwnGradient(streaming: () => boolean): Promise<void> {
    const pool = this.s.pool;
    for (let seen = pool.gradientFrom(0); streaming(); seen = pool.gradientFrom(0)) {
      await pool.gradientMoved(0, seen, WATCH_MS);
      this.pump?.();
    }
  }
}

/** The longest the watch on the board sleeps between looks (a notify usually wakes it first). */
const WATCH_MS = 50;

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
