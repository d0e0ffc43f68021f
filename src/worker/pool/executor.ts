// The one execution interface: "compute the gradient sums of these shards of step s". The training
// loop does not know whether a local thread pool or a remote node did the work; each shard's sum
// lands in its own slot, and the loop reduces slots by a fixed pairwise tree over shard order (core/pairwise.ts).
//
// A shard's gradient has one canonical recipe, so that any executor computing it gets the same bits:
// [lo, hi) is cut into `parts` equal contiguous sub-shards (partition()), each computed by
// shardGradients in chunks of the run's chunk rows, and the sub-shard sums are added left to right.

import { DptrainError } from '../../core/errors.js';

export interface ShardSpec {
  /** The gradient slot the shard's sum lands in. */
  readonly slot: number;
  /** Positions [lo, hi) in the epoch's sample order. */
  readonly lo: number;
  readonly hi: number;
  /** Sub-shards of the recipe (1 for a local thread's shard, a node's thread count for a node's). */
  readonly parts: number;
}

export interface ShardOutcome {
  readonly slot: number;
  readonly lossSum: number;
  readonly count: number;
  readonly computeMs: number;
  /** Which executor answered, for metrics. */
  readonly by: string;
  /** With the update fused into the step: the wait for the other shards, and this shard's update slice. */
  readonly waitMs?: number;
  readonly updateMs?: number;
  /**
   * Shards whose sum is in this shard's slot, from it on: 1 when absent; n > 1 for the first shard
   * of a block of a reduction tree (a subtree of the step's pairwise tree), 0 for the block's others.
   */
  readonly sumOf?: number;
  /** Σ g² of the sum in this slot, when the executor measured it in passing (a node's, on landing). */
  readonly sumSquares?: number;
  /** A node's: ms of link transfers that overlapped its compute (layer-streamed steps). */
  readonly hiddenMs?: number;
}

/** A block's run failed because these executors failed (by id): drop them, recompute the block. */
export class ShardsLost extends DptrainError {
  constructor(readonly culprits: readonly string[], message: string) {
    super('WORKER_FAILED', message);
  }
}

/** The step's update, to be applied by the executor's own tasks once all its shards are summed. */
export interface StepUpdate {
  /** 1 / the batch's rows. */
  readonly scale: number;
  /**
   * The step after this one, certain to run next with these shards: the executor may hand it to
   * its threads now, so that they go on to it without waiting for the coordinator between steps.
   */
  readonly next?: { readonly shards: readonly ShardSpec[]; readonly scale: number };
}

export interface Executor {
  readonly id: string;
  /** Threads it computes with: the default weight of its share of a batch. */
  readonly threads: number;
  /** True once it will take no further steps (a node that announced it leaves, or is gone). */
  readonly retired?: boolean;
  /**
   * Resolves when every shard's sum is in its slot (and, given `fuse`, the step's update is
   * applied into the arena's other copy of the weights); rejects if the executor is lost.
   */
  run(step: number, shards: readonly ShardSpec[], fuse?: StepUpdate): Promise<ShardOutcome[]>;
  /** Whether run() can take `fuse` for these shards (executors that never update: absent). */
  canFuse?(shards: readonly ShardSpec[]): boolean;
  /** Ends a remote executor the run no longer trusts, with the reason (its owner logs it). */
  drop?(reason: string): void;
  /**
   * Runs a block of consecutive shards, one per member (this executor's first), as one request down
   * a reduction tree: the block's one sum lands in the first shard's slot (outcomes: sumOf).
   * Rejects with ShardsLost naming whom to drop.
   */
  runBlock?(step: number, shards: readonly ShardSpec[], members: readonly Executor[]): Promise<ShardOutcome[]>;
  /** Gives up its open request (a block it heads failed elsewhere): a late answer is ignored. */
  abandon?(reason: string): void;
  /** Calls `listener` with the reason when the executor is gone (at once if it is); returns the unsubscribe. */
  watchGone?(listener: (why: string) => void): () => void;
  close(): Promise<void>;
}
