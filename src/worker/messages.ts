// The messages between the coordinator and its worker threads. A thread attaches to the arena once
// (ThreadInit, as Piscina's workerData); after that a task carries only small numbers.

import type { ArenaLayout } from '../core/arena.js';
import type { Dataset } from '../core/data/types.js';
import type { KernelChoice } from '../core/kernels/index.js';
import type { ModelSpec } from '../core/spec.js';

export interface FaultHook {
  /** Test hook: on the first attempt of this step and slot, the task throws or its thread exits. */
  readonly step: number;
  readonly slot: number;
  readonly mode: 'throw' | 'exit';
}

export interface ThreadInit {
  readonly memory: WebAssembly.Memory;
  readonly layout: ArenaLayout;
  readonly spec: ModelSpec;
  readonly kernels: KernelChoice;
  /** The training data, on SharedArrayBuffers: one copy for all threads. */
  readonly train: Dataset;
  /** The epoch's sample order (SharedArrayBuffer), rewritten by the coordinator between epochs. */
  readonly order: Int32Array;
  readonly fault?: FaultHook;
}

/** Forward + backward of samples order[lo..hi) into gradient slot `slot`, reading params buffer `paramsIndex`. */
export interface ShardTask {
  readonly step: number;
  readonly slot: number;
  readonly lo: number;
  readonly hi: number;
  readonly attempt: number;
}

export type ShardReply =
  | { readonly ok: true; readonly lossSum: number; readonly count: number; readonly computeMs: number; readonly backend: string }
  | { readonly ok: false; readonly error: string };
