// The local executor: a Piscina pool of worker threads attached to this process's arena. A shard
// whose task throws or whose thread dies is re-run (Piscina replaces the thread); the result lands
// in the same slot, so the step is the same as an undisturbed one. Shards of more than one part (a
// node's shard, or a lost node's shard recomputed here) run as sub-tasks in spare slots, folded left
// to right into the shard's slot.

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import type { ArenaViews } from '../core/arena.js';
import { DptrainError } from '../core/errors.js';
import type { Kernels } from '../core/kernels/types.js';
import type { ShardReply, ShardTask, ThreadInit } from '../worker/messages.js';
import type { Executor, ShardOutcome, ShardSpec } from './executor.js';
import { partition, shardRanges } from './partition.js';
import { PACKAGE_ROOT } from './paths.js';

// Always the compiled entry, also when the coordinator itself runs from TypeScript (tests).
const THREAD_ENTRY = join(PACKAGE_ROOT, 'dist', 'src', 'worker', 'thread.js');

export interface LocalPoolOptions {
  readonly threads: number;
  readonly init: ThreadInit;
  readonly arena: ArenaViews;
  /** The kernels of this (the coordinating) thread, for folding sub-shard sums. */
  readonly kernels: Kernels;
  /** Slots (with their workspaces) reserved for sub-shards of multi-part shards. */
  readonly spareSlots: readonly number[];
  /** Attempts per task before the step fails (a deterministic bug would fail forever). */
  readonly maxAttempts?: number;
  /** Called when a task fails and is re-run, for the log. */
  readonly onRetry?: (slot: number, attempt: number, reason: string) => void;
}

export function defaultThreads(): number {
  return availableParallelism();
}

export class LocalPool implements Executor {
  readonly id = 'local';
  readonly threads: number;
  private readonly pool: Piscina<ShardTask, ShardReply>;
  private readonly opts: LocalPoolOptions;
  private readonly maxAttempts: number;
  /** Multi-part shards share the spare slots: one at a time. */
  private partsQueue: Promise<unknown> = Promise.resolve();

  constructor(opts: LocalPoolOptions) {
    if (opts.spareSlots.length === 0) throw new RangeError('LocalPool: needs at least one spare slot');
    this.opts = opts;
    this.threads = opts.threads;
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.pool = new Piscina<ShardTask, ShardReply>({
      filename: THREAD_ENTRY,
      workerData: opts.init,
      minThreads: opts.threads,
      maxThreads: opts.threads,
      idleTimeout: Infinity,
      atomics: 'sync',
      recordTiming: false,
    });
  }

  run(step: number, shards: readonly ShardSpec[]): Promise<ShardOutcome[]> {
    return Promise.all(
      shards.map((s) => {
        if (s.parts <= 1) return this.task(step, s.slot, s.lo, s.hi);
        const next = this.partsQueue.then(() => this.runParts(step, s));
        this.partsQueue = next.catch(() => undefined);
        return next;
      }),
    );
  }

  private async runParts(step: number, s: ShardSpec): Promise<ShardOutcome> {
    const t0 = performance.now();
    const { arena, kernels, spareSlots } = this.opts;
    const P = arena.layout.paramCount;
    const target = arena.slots[s.slot];
    const ranges = shardRanges(s.lo, partition(s.hi - s.lo, new Array<number>(s.parts).fill(1)));
    let lossSum = 0;
    for (let w = 0; w < ranges.length; w += spareSlots.length) {
      const wave = ranges.slice(w, w + spareSlots.length);
      const outs = await Promise.all(wave.map((r, j) => this.task(step, spareSlots[j], r.lo, r.hi)));
      for (const o of outs) lossSum += o.lossSum;
      const sums = wave.map((_, j) => arena.slots[spareSlots[j]]);
      // Left fold: the first wave starts the sum, later waves add to it in sub-shard order.
      kernels.sumSlots(target, w === 0 ? sums : [target, ...sums], 0, P, 1);
    }
    return { slot: s.slot, lossSum, count: s.hi - s.lo, computeMs: performance.now() - t0, by: this.id };
  }

  private async task(step: number, slot: number, lo: number, hi: number): Promise<ShardOutcome> {
    let reason = '';
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) this.opts.onRetry?.(slot, attempt, reason);
      let reply: ShardReply;
      try {
        reply = await this.pool.run({ step, slot, lo, hi, attempt });
      } catch (e) {
        // The thread died (exit, crash): Piscina replaces it; re-run the task.
        reason = e instanceof Error ? e.message : String(e);
        continue;
      }
      if (reply.ok) return { slot, lossSum: reply.lossSum, count: reply.count, computeMs: reply.computeMs, by: `${this.id}/${reply.backend}` };
      reason = reply.error;
    }
    throw new DptrainError('WORKER_FAILED', `slot ${slot} of step ${step} failed ${this.maxAttempts} times: ${reason}`);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
