// The thread pool (Piscina) attached to this process's arena: the coordinator's local executor and a
// remote node's engine. A failed or lost task is re-run into the same slot, so a step is unchanged.

// Shards of more than one part (a node's shard, or a lost node's recomputed here) run as sub-tasks
// in spare slots, folded left to right; a step's update runs one slice per thread, reading one copy
// of the weights and writing the other; fused steps run on per-thread loops (step-loops.ts).

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import type { ArenaViews } from '../../core/arena.js';
import { configError, DptrainError } from '../../core/errors.js';
import { updateSliceRange } from '../../core/optim.js';
import type { KernelBackend } from '../../core/kernels/index.js';
import type { Kernels } from '../../core/kernels/types.js';
import { mergeEvalSums, type EvalResult } from '../../core/eval.js';
import type { EvalReply, ShardReply, ThreadInit, ThreadReply, ThreadTask, UpdateReply } from '../messages.js';
import { boardViews, createStepBoard, type BoardViews } from '../../core/protocol/step-board.js';
import { StepLoops } from './step-loops.js';
import type { Executor, StepUpdate, ShardOutcome, ShardSpec } from './executor.js';
import { equalRanges } from '../../core/partition.js';
import { PACKAGE_ROOT } from '../../core/io/package-files.js';

// Always the compiled entry, also when the coordinator itself runs from TypeScript (tests).
const THREAD_ENTRY = join(PACKAGE_ROOT, 'dist', 'src', 'worker', 'thread.js');

export interface LocalPoolOptions {
  readonly threads: number;
  readonly init: ThreadInit;
  readonly arena: ArenaViews;
  /** The kernels of this (the coordinating) thread, for folding sub-shard sums. */
  readonly kernels: Kernels;
  /** Slots (with their workspaces) for sub-shards of multi-part shards, and evaluation between steps. */
  readonly spareSlots: readonly number[];
  /** Attempts per task before the step fails (a deterministic bug would fail forever). */
  readonly maxAttempts?: number;
  /** Called when a task fails and is re-run, for the log. */
  readonly onRetry?: (what: string, attempt: number, reason: string) => void;
}

export function defaultThreads(): number {
  return availableParallelism();
}

/**
 * Threads past a few per core add no speed, only memory (each has its own heap): more than
 * THREADS_PER_CORE × the cores is refused. Returns a warning line when `threads` exceeds the cores.
 */
export const THREADS_PER_CORE = 4;

/** The longest a streamed shard's fold sleeps between looks at its sub-shards (a notify usually wakes it first). */
const FOLD_WATCH_MS = 20;

export function checkThreadCount(flag: string, threads: number): string | null {
  const cores = availableParallelism();
  const max = THREADS_PER_CORE * cores;
  if (threads > max)
    throw configError(flag, `${threads} threads is more than this machine's limit of ${max} (${THREADS_PER_CORE} × its ${cores} cores)`);
  return threads > cores ? `warning: ${threads} worker threads on ${cores} cores: they take turns, which is slower than ${cores}` : null;
}

export class LocalPool implements Executor {
  readonly id = 'local';
  readonly threads: number;
  private pool: Piscina<ThreadTask, ThreadReply>;
  private readonly opts: LocalPoolOptions;
  /** The coordinating thread's kernels and what the threads compute with (setKernels changes both). */
  private kernels: Kernels;
  private init: ThreadInit;
  private readonly maxAttempts: number;
  /** Multi-part shards share the spare slots: one at a time. */
  private partsQueue: Promise<unknown> = Promise.resolve();
  /** Fused steps: the threads' loop tasks over the step board. */
  private loops: StepLoops;
  private board: BoardViews;
  /** The weights ticket of the streamed step in hand (see openWeights). */
  private ticket = 0;

  constructor(opts: LocalPoolOptions) {
    if (opts.spareSlots.length === 0) throw new RangeError('LocalPool: needs at least one spare slot');
    this.opts = opts;
    this.threads = opts.threads;
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.kernels = opts.kernels;
    this.init = opts.init;
    ({ pool: this.pool, loops: this.loops, board: this.board } = this.open());
  }

  private open(): { pool: Piscina<ThreadTask, ThreadReply>; loops: StepLoops; board: BoardViews } {
    const board = createStepBoard(this.opts.arena.layout.slots.length);
    const pool = new Piscina<ThreadTask, ThreadReply>({
      filename: THREAD_ENTRY,
      workerData: { ...this.init, board } satisfies ThreadInit,
      minThreads: this.threads,
      maxThreads: this.threads,
      idleTimeout: Infinity,
      atomics: 'sync',
      recordTiming: false,
    });
    const views = boardViews(board);
    const loops = new StepLoops({
      board: views, run: (task) => pool.run(task), maxAttempts: this.maxAttempts, backend: this.kernels.name, onRetry: this.opts.onRetry,
    });
    return { pool, loops, board: views };
  }

  /**
   * Between steps: the threads compute with another backend from now on (a run whose new node
   * cannot run the current one). The threads are replaced; the arena stays as it is.
   */
  async setKernels(kernels: Kernels, backend: KernelBackend): Promise<void> {
    await this.loops.stop();
    await this.pool.destroy();
    this.kernels = kernels;
    this.init = { ...this.init, kernels: backend };
    ({ pool: this.pool, loops: this.loops, board: this.board } = this.open());
  }

  // ---- a remote node's streamed step: weights landing while forward runs, gradients leaving while backward runs

  /**
   * A new streamed step: none of its weights are in yet. Returns its ticket, which run() and
   * weightsLanded() name; threads still working for an older ticket give up.
   */
  openWeights(): number {
    const b = this.board;
    this.ticket++;
    Atomics.store(b.i32, b.landed, 0);
    Atomics.store(b.i32, b.weightsTicket, this.ticket);
    Atomics.notify(b.i32, b.landed);
    return this.ticket;
  }

  /** Floats [0, at) of ticket's weights are in the current copy: forward may read them. */
  weightsLanded(ticket: number, at: number): void {
    if (ticket !== this.ticket) return;
    Atomics.store(this.board.i32, this.board.landed, at);
    Atomics.notify(this.board.i32, this.board.landed);
  }

  /** Ticket's step is given up: a thread waiting for its weights stops (its task fails as abandoned). */
  closeWeights(ticket: number): void {
    if (ticket === this.ticket) this.openWeights();
  }

  /** Where `slot`'s final gradient starts in the streamed step in hand (paramCount: nothing final yet). */
  gradientFrom(slot: number): number {
    return Atomics.load(this.board.i32, this.board.gradFrom(slot));
  }

  /** Resolves when gradientFrom(slot) is no longer `seen`, or after `ms`. */
  async gradientMoved(slot: number, seen: number, ms: number): Promise<void> {
    const w = Atomics.waitAsync(this.board.i32, this.board.gradFrom(slot), seen, ms);
    if (w.async) await w.value;
  }

  /**
   * Whether run() can fuse the update into these shards: single-part shards, at most one per thread
   * (every shard's loop must be running at once, or the others would wait for it at the barrier).
   */
  canFuse(shards: readonly ShardSpec[]): boolean {
    return this.opts.init.optimizer !== undefined && shards.length <= this.threads && shards.every((s) => s.parts <= 1);
  }

  /**
   * `stream`: a weights ticket (openWeights): the step's weights may still be landing, and each
   * shard's slot tells gradientFrom() how much of its gradient is final as backward goes.
   */
  async run(step: number, shards: readonly ShardSpec[], fuse?: StepUpdate, stream?: number): Promise<ShardOutcome[]> {
    if (fuse) {
      if (!this.canFuse(shards)) throw new RangeError('LocalPool: an update can only be fused into single-part shards');
      return this.loops.step(step, shards, fuse, this.opts.arena.current);
    }
    // Before the first await: a caller streaming the gradients reads this step's marks from now on.
    for (const s of shards) Atomics.store(this.board.i32, this.board.gradFrom(s.slot), this.opts.arena.layout.paramCount);
    await this.loops.stop();
    return Promise.all(
      shards.map((s) => {
        if (s.parts <= 1) return this.task(step, s.slot, s.lo, s.hi, stream);
        const next = this.partsQueue.then(() => this.runParts(step, s, stream));
        this.partsQueue = next.catch(() => undefined);
        return next;
      }),
    );
  }

  private async runParts(step: number, s: ShardSpec, stream?: number): Promise<ShardOutcome> {
    const t0 = performance.now();
    const { arena, spareSlots } = this.opts;
    const P = arena.layout.paramCount;
    const ranges = equalRanges(s.lo, s.hi - s.lo, s.parts);
    let lossSum = 0;
    for (let w = 0; w < ranges.length; w += spareSlots.length) {
      const wave = ranges.slice(w, w + spareSlots.length);
      const subs = wave.map((_, j) => spareSlots[j]);
      for (const k of subs) Atomics.store(this.board.i32, this.board.gradFrom(k), P);
      const outs = Promise.all(wave.map((r, j) => this.task(step, subs[j], r.lo, r.hi, stream)));
      // A streamed shard in one wave is folded layer by layer, as its sub-shards' backward makes
      // each final: the node sends those values up meanwhile.
      const folded = stream !== undefined && ranges.length <= spareSlots.length ? await this.foldAsFinal(s.slot, subs, outs) : P;
      for (const o of await outs) lossSum += o.lossSum;
      this.fold(s.slot, subs, w === 0, 0, folded);
    }
    // The folded sum is final all at once.
    Atomics.store(this.board.i32, this.board.gradFrom(s.slot), 0);
    Atomics.notify(this.board.i32, this.board.gradFrom(s.slot));
    return { slot: s.slot, lossSum, count: s.hi - s.lo, computeMs: performance.now() - t0, by: this.id };
  }

  /**
   * Values [lo, hi) of the sub-shards' sums in `subs` added into `slot`. Left fold: the first wave
   * starts the sum, later waves add to it in sub-shard order. sumSlots is the left fold for at most
   * three slots (beyond, it is the step's pairwise tree), so the sums go in by two or three: the
   * recipe's bits depend neither on how many spare slots we have nor on how [0, P) is cut.
   */
  private fold(slot: number, subs: readonly number[], firstWave: boolean, lo: number, hi: number): void {
    const { arena } = this.opts;
    const target = arena.slots[slot];
    const sums = subs.map((k) => arena.slots[k]);
    for (let j = 0; j < sums.length; ) {
      const first = firstWave && j === 0;
      const take = sums.slice(j, j + (first ? 3 : 2));
      this.kernels.sumSlots(target, first ? take : [target, ...take], lo, hi, 1);
      j += take.length;
    }
  }

  /**
   * While the sub-shards of one wave run, folds into `slot` whatever all of them have made final
   * (the board's gradFrom of each; backward finishes the last layers first) and posts it as the
   * slot's own. Returns where the folded part starts once they are done (the rest is the caller's).
   */
  private async foldAsFinal(slot: number, subs: readonly number[], running: Promise<unknown>): Promise<number> {
    const b = this.board;
    let done = false;
    void running.then(() => (done = true), () => (done = true));
    let folded = this.opts.arena.layout.paramCount;
    while (!done) {
      const froms = subs.map((k) => Atomics.load(b.i32, b.gradFrom(k)));
      const from = Math.max(...froms);
      if (from < folded) {
        this.fold(slot, subs, true, from, folded);
        folded = from;
        Atomics.store(b.i32, b.gradFrom(slot), from);
        Atomics.notify(b.i32, b.gradFrom(slot));
      }
      // The slowest sub-shard decides: wait for its next layer (or the end).
      const slowest = subs[froms.indexOf(from)];
      const w = Atomics.waitAsync(b.i32, b.gradFrom(slowest), from, FOLD_WATCH_MS);
      await Promise.race([w.async ? w.value : Promise.resolve(), running.catch(() => undefined)]);
    }
    return folded;
  }

  /**
   * The update of `step` on the pool's threads: parameter slices of equal size (multiples of 16
   * floats), each the mean of `slots` (× scale) and the optimizer, from the arena's current copy
   * into the other. The caller flips arena.current afterwards. Returns the slowest slice's ms.
   */
  async update(step: number, slots: readonly number[], scale: number): Promise<number> {
    await this.loops.stop();
    const { arena, spareSlots } = this.opts;
    const P = arena.layout.paramCount;
    const slices = Math.min(this.threads, spareSlots.length);
    const replies = await Promise.all(
      Array.from({ length: slices }, (_, slice) => {
        const { lo, hi } = updateSliceRange(P, slice, slices);
        return this.attempt<UpdateReply>(`update slice ${slice} of step ${step}`, (attempt) => ({
          kind: 'update', step, slice, slots, scale, lo, hi, from: arena.current, scratchSlot: spareSlots[slice], attempt,
        }));
      }),
    );
    return Math.max(...replies.map((r) => r.computeMs));
  }

  /**
   * The test set evaluated with the current weights between steps, its rows cut into one range per
   * thread (each in a spare slot's workspace), the sums merged in range order.
   */
  async evaluate(step: number, n: number): Promise<EvalResult> {
    await this.loops.stop();
    const copy = this.opts.arena.current;
    const ranges = equalRanges(0, n, Math.max(1, Math.min(this.threads, this.opts.spareSlots.length, n)));
    const sums = await Promise.all(
      ranges.map((r, i) => this.attempt<EvalReply>(`evaluation of test rows ${r.lo}–${r.hi} after step ${step}`, (attempt) => ({
        kind: 'eval', step, slot: this.opts.spareSlots[i], lo: r.lo, hi: r.hi, copy, attempt,
      }))),
    );
    return mergeEvalSums(sums);
  }

  private async task(step: number, slot: number, lo: number, hi: number, stream?: number): Promise<ShardOutcome> {
    const copy = this.opts.arena.current;
    const reply = await this.attempt<ShardReply>(`shard ${slot} of step ${step}`, (attempt) => ({ kind: 'shard', step, slot, lo, hi, copy, attempt, ...(stream === undefined ? {} : { stream }) }));
    return { slot, lossSum: reply.lossSum, count: reply.count, computeMs: reply.computeMs, by: `${this.id}/${reply.backend}` };
  }

  /** Runs a task until it succeeds, re-running it (up to maxAttempts) when it fails or its thread dies. */
  private async attempt<R extends ThreadReply>(what: string, make: (attempt: number) => ThreadTask): Promise<Extract<R, { ok: true }>> {
    let reason = '';
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) this.opts.onRetry?.(what, attempt, reason);
      let reply: ThreadReply;
      try {
        reply = await this.pool.run(make(attempt));
      } catch (e) {
        // The thread died (exit, crash): Piscina replaces it; re-run the task.
        reason = e instanceof Error ? e.message : String(e);
        continue;
      }
      if (reply.ok) return reply as Extract<R, { ok: true }>;
      // Given up upstream, not failed: running it again would wait for weights that are not coming.
      if ('abandoned' in reply && reply.abandoned) throw new DptrainError('WORKER_FAILED', `${what}: ${reply.error}`);
      reason = reply.error;
    }
    throw new DptrainError('WORKER_FAILED', `${what} failed ${this.maxAttempts} times: ${reason}`);
  }

  async close(): Promise<void> {
    await this.loops.stop();
    await this.pool.destroy();
  }
}
