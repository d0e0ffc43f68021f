// The messages between the coordinator and its worker threads. A thread attaches to the arena once
// (ThreadInit, as Piscina's workerData); after that a task carries only small numbers.

import type { ArenaLayout } from '../core/arena.js';
import type { Dataset } from '../core/data/types.js';
import type { KernelBackend, KernelChoice } from '../core/kernels/index.js';
import type { OptimizerConfig } from '../core/optim.js';
import type { EvalSums } from '../core/eval.js';
import type { StepBoard } from '../core/protocol/step-board.js';
import type { ModelSpec } from '../core/spec.js';

export interface FaultHook {
  /**
   * Test hook: on the first attempt of this step's shard in this slot (or of its update slice
   * number `slot`, with phase 'update': after writing half the slice), the task throws or its
   * thread exits.
   */
  readonly step: number;
  readonly slot: number;
  readonly mode: 'throw' | 'exit';
  readonly phase?: 'shard' | 'update';
}

export interface ThreadInit {
  readonly memory: WebAssembly.Memory;
  readonly layout: ArenaLayout;
  readonly spec: ModelSpec;
  readonly kernels: KernelChoice | KernelBackend;
  /** The training data, on SharedArrayBuffers: one copy for all threads. */
  readonly train: Dataset;
  /** The epoch's sample order (SharedArrayBuffer), rewritten by the coordinator between epochs. */
  readonly order: Int32Array;
  /** The held-out data (SharedArrayBuffers), for evaluation tasks. */
  readonly test?: Dataset;
  /** The optimizer, for update tasks (a remote node's threads never update). */
  readonly optimizer?: OptimizerConfig;
  /** The step board (step-board.ts) of fused steps. */
  readonly board?: StepBoard;
  readonly fault?: FaultHook;
}

/**
 * The update fused into a step's shard tasks: when every slot of `slots` holds this step's sum,
 * the task applies slice `slice` of `slices` (equal parameter ranges) of the update, from the
 * weights it computed with to the other copy.
 */
export interface FusedSlice {
  readonly slots: readonly number[];
  readonly slice: number;
  readonly slices: number;
  readonly scale: number;
}

/** Rows [lo, hi) (of the epoch order, or of the test set) in slot `slot`, with the weights of copy `copy`. */
interface RowsTask {
  readonly step: number;
  readonly slot: number;
  readonly lo: number;
  readonly hi: number;
  readonly copy: 0 | 1;
  readonly attempt: number;
}

/** Forward + backward of samples order[lo..hi) into gradient slot `slot`. */
export interface ShardTask extends RowsTask {
  readonly kind: 'shard';
  readonly update?: FusedSlice;
  /**
   * A remote node's streamed step: the weights ticket of the step (its weights may still be
   * arriving: forward waits on the board for each layer's) and backward posts each layer's final
   * gradient on the board. Absent: the weights are all there.
   */
  readonly stream?: number;
}

/**
 * Slice `slice` of a step's update: parameters [lo, hi) from the mean of `slots` (× scale) and the
 * optimizer, reading copy `from` and writing copy 1 − from.
 */
export interface UpdateTask {
  readonly kind: 'update';
  readonly step: number;
  readonly slice: number;
  readonly slots: readonly number[];
  readonly scale: number;
  readonly lo: number;
  readonly hi: number;
  readonly from: 0 | 1;
  /** Whose workspace scratch the kernels may use (one no other task of the moment uses). */
  readonly scratchSlot: number;
  readonly attempt: number;
}

/** Evaluation of test rows [lo, hi), in slot `slot`'s workspace. */
export interface EvalTask extends RowsTask {
  readonly kind: 'eval';
}

/**
 * A thread's loop over fused steps, from step `from`: it waits on the step board for each posted
 * step, runs its slot's shard and update slice, marks the slot finished, and returns once the
 * board's generation is no longer `generation`.
 */
export interface LoopTask {
  readonly kind: 'loop';
  readonly step: number;
  readonly slot: number;
  readonly from: number;
  readonly generation: number;
  readonly attempt: number;
}

export type ThreadTask = ShardTask | UpdateTask | EvalTask | LoopTask;

export type ShardReply =
  | {
    readonly ok: true; readonly lossSum: number; readonly count: number; readonly computeMs: number; readonly backend: string;
    /** With a fused update: waiting for the other shards, and the slice's update. */
    readonly waitMs?: number; readonly updateMs?: number;
  }
  /** `abandoned`: a streamed step given up upstream (a newer ticket): not a failure to re-run. */
  | { readonly ok: false; readonly error: string; readonly abandoned?: boolean };

export type UpdateReply = { readonly ok: true; readonly computeMs: number } | { readonly ok: false; readonly error: string };

export type EvalReply = ({ readonly ok: true } & EvalSums) | { readonly ok: false; readonly error: string };

export type LoopReply = { readonly ok: true; readonly exitedAt: number } | { readonly ok: false; readonly error: string };

export type ThreadReply = ShardReply | UpdateReply | EvalReply | LoopReply;
