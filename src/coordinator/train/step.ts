// One optimizer step, with its mechanics behind one object: where the reduce + update runs (fused
// into the threads' shard tasks, a second round of slice tasks, or this thread), whether the next
// step is posted ahead with it, and which copy of the weights is current. The trainer only says
// "step s over these rows, and these rows follow".

import type { ArenaViews } from '../../core/arena.js';
import type { Kernels } from '../../core/kernels/types.js';
import { updateSlice, type OptimizerConfig } from '../../core/optim.js';
import type { LocalPool } from '../../worker/pool/local-pool.js';
import type { StepRecord } from './records.js';
import type { Scheduler } from './scheduler.js';

/** Where the reduce + update runs: see StepRunner. */
export type UpdatePlacement = 'fused' | 'threads' | 'coordinator';

export interface StepResult {
  readonly lossSum: number;
  readonly record: Omit<StepRecord, 'epoch' | 'batch' | 'batches' | 'loss' | 'nodes'>;
}

/** Rows [start, start + rows) of the epoch order. */
export interface Rows {
  readonly start: number;
  readonly rows: number;
}

export interface StepRunnerOptions {
  readonly scheduler: Scheduler;
  readonly local: LocalPool | null;
  readonly arena: ArenaViews;
  /** The coordinator's own kernels (the update when it runs on this thread), as they are now. */
  readonly kernels: { readonly kernels: Kernels };
  readonly optimizer: OptimizerConfig;
  readonly placement: UpdatePlacement;
  /** False when membership can change between two steps (remote nodes may join): never post ahead. */
  readonly membershipFixed: boolean;
}

export class StepRunner {
  /** When the step posted with the previous one began (that one's end), or NaN. */
  private postedBegan = NaN;
  /** True when the step after the last one run is already in the threads' hands. */
  postedNext = false;

  constructor(private readonly o: StepRunnerOptions) {}

  /**
   * Step `step` over `rows`. `next`: the rows of the step certain to follow (same epoch, no stop
   * due); the runner posts it ahead when the update is fused and membership cannot change.
   */
  async run(step: number, rows: Rows, next?: Rows): Promise<StepResult> {
    const { scheduler, placement } = this.o;
    const fused = placement === 'fused';
    const ahead = fused && this.o.membershipFixed ? next : undefined;
    // A step posted with the one before began when that one ended.
    const t0 = this.postedNext ? this.postedBegan : performance.now();
    const { shards, outcomes, plan, updated, reduceSlots } = await scheduler.runStep(step, rows.start, rows.rows, fused ? { scale: 1 / rows.rows } : undefined, ahead);
    let lossSum = 0;
    for (const o of outcomes) lossSum += o.lossSum;
    let updateMs: number;
    if (updated) {
      // The threads wrote the new weights into the other copy.
      this.flip();
      updateMs = Math.max(...outcomes.map((o) => o.updateMs ?? 0));
    } else {
      updateMs = await this.update(step, reduceSlots, rows.rows);
    }
    const end = performance.now();
    this.postedNext = ahead !== undefined;
    this.postedBegan = end;
    return {
      lossSum,
      record: {
        step,
        rows: rows.rows,
        stepMs: end - t0,
        shards: outcomes.map((o, i) => ({ by: o.by, rows: shards[i].hi - shards[i].lo, computeMs: o.computeMs, ...(o.hiddenMs !== undefined ? { hiddenMs: o.hiddenMs } : {}) })),
        plan,
        updateMs,
      },
    };
  }

  /** The step's mean gradient (the sums in `slotIds` over `rows` rows) applied; returns its ms. */
  private async update(step: number, slotIds: readonly number[], rows: number): Promise<number> {
    const { arena, local, kernels, optimizer } = this.o;
    const t0 = performance.now();
    if (this.o.placement !== 'coordinator') {
      // Out of place, so that a slice whose thread dies can be re-run: then the copies swap.
      await local!.update(step, slotIds, 1 / rows);
      this.flip();
    } else {
      // This thread cannot die halfway without ending the run: in place, which spares the
      // read-for-ownership of a second copy.
      const here = arena.copies[arena.current];
      updateSlice(kernels.kernels, optimizer, here, here, arena.grad, slotIds.map((s) => arena.slots[s]), 1 / rows, 0, arena.layout.paramCount, step);
    }
    return performance.now() - t0;
  }

  private flip(): void {
    this.o.arena.current = this.o.arena.current === 0 ? 1 : 0;
  }
}
