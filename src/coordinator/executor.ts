// The one execution interface: "compute the gradient sums of these shards of step s". The training
// loop does not know whether a local thread pool or a remote node did the work; each shard's sum
// lands in its own slot, and the loop reduces slots in shard order.

export interface ShardSpec {
  /** The logical shard index of the step: its gradient slot and its place in the reduction. */
  readonly slot: number;
  /** Positions [lo, hi) in the epoch's sample order. */
  readonly lo: number;
  readonly hi: number;
}

export interface ShardOutcome {
  readonly slot: number;
  readonly lossSum: number;
  readonly count: number;
  readonly computeMs: number;
  /** Which executor (and thread) answered, for metrics. */
  readonly by: string;
}

export interface Executor {
  readonly id: string;
  /** Relative compute capacity, used to size shards. */
  readonly threads: number;
  /** Resolves when every shard's sum is in its slot; re-runs failed shards itself. */
  run(step: number, shards: readonly ShardSpec[]): Promise<ShardOutcome[]>;
  close(): Promise<void>;
}
