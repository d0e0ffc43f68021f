// What a run reports and what remote membership sees of it: the per-step and per-epoch records (the
// same objects the progress bar, --metrics and callbacks receive), the Reporter, and the RunContext.

import type { ArenaViews } from '../../core/arena.js';
import type { Config } from '../../core/config.js';
import type { DataSplit } from '../../core/data/types.js';
import type { EvalResult } from '../../core/eval.js';
import type { KernelBackend } from '../../core/kernels/index.js';
import type { ModelSpec } from '../../core/spec.js';
import type { Scheduler, StepPlanEntry } from './scheduler.js';

export interface EpochRecord {
  readonly epoch: number;
  readonly step: number;
  readonly trainLoss: number;
  readonly test: EvalResult;
  readonly samplesPerSec: number;
  readonly seconds: number;
  /** True for the last epoch of the run (a stop criterion was met or the epochs are done). */
  readonly stopping: boolean;
}

export interface StepRecord {
  readonly step: number;
  readonly epoch: number;
  readonly batch: number;
  readonly batches: number;
  readonly rows: number;
  readonly loss: number;
  /** From when the step began (for a step posted with the one before: when that one ended) to its end. */
  readonly stepMs: number;
  /** Per shard, in shard order: who computed it and how long its forward + backward took. */
  readonly shards: readonly { readonly by: string; readonly rows: number; readonly computeMs: number; readonly hiddenMs?: number }[];
  /** Reduction of the slots plus the optimizer update. */
  readonly updateMs: number;
  /** Rows given to each member this step (the partition). */
  readonly plan: readonly StepPlanEntry[];
  /** Connected remote nodes after the step (empty without --listen). */
  readonly nodes: readonly NodeStatus[];
}

/** A connected node as progress and metrics show it; byte counts are totals since it joined. */
export interface NodeStatus {
  readonly id: string;
  readonly address: string;
  readonly threads: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
  /** Milliseconds since its last frame or heartbeat answer. */
  readonly lastSeenMsAgo: number;
}

export interface RemoteAttachment {
  close(): Promise<void>;
  /** The nodes connected now. */
  status(): readonly NodeStatus[];
  /** The run now computes with `backend`: nodes welcomed with another one rejoin. */
  kernelsChanged(backend: KernelBackend): void;
}

/** What remote membership needs from a run: the arena to land gradients in, the data, the recipe. */
export interface RunContext {
  readonly arena: ArenaViews;
  readonly scheduler: Scheduler;
  readonly spec: ModelSpec;
  readonly config: Config;
  readonly data: DataSplit;
  readonly order: Int32Array;
  readonly chunkRows: number;
  readonly landingSlots: readonly number[];
  /** The backend this run computes with; nodes must use the same one for bit-identical shards. */
  /**
   * The backend the run computes with now; admit() tells it a joining node's best and returns the
   * backend that node must use (the run moves down to it at the next step boundary).
   */
  readonly kernels: { readonly backend: KernelBackend; admit(best: KernelBackend, who: string): KernelBackend };
  /** True when nodes cannot load the data by name (it was handed in, not loaded from the config). */
  readonly dataInline: boolean;
}

export interface Reporter {
  start(info: { backend: string; threads: number; params: number; train: number; test: number; epochs: number; batchSize: number; resumedAt: number | null }): void;
  step(r: StepRecord): void;
  epoch(r: EpochRecord): void;
  log(line: string): void;
  /** The run is over, however it ended: release the terminal (a progress bar's timer). */
  close(): void;
}

export type StopReason = 'epochs' | 'target-loss' | 'target-accuracy' | 'interrupted' | 'max-steps';
