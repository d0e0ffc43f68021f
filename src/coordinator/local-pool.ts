// The local executor: a Piscina pool of worker threads attached to this process's arena. A shard
// whose task throws or whose thread dies is re-run (Piscina replaces the thread); the result lands
// in the same slot, so the step is the same as an undisturbed one.

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Piscina } from 'piscina';
import { DptrainError } from '../core/errors.js';
import type { ShardReply, ShardTask, ThreadInit } from '../worker/messages.js';
import type { Executor, ShardOutcome, ShardSpec } from './executor.js';
import { PACKAGE_ROOT } from './paths.js';

// Always the compiled entry, also when the coordinator itself runs from TypeScript (tests).
const THREAD_ENTRY = join(PACKAGE_ROOT, 'dist', 'src', 'worker', 'thread.js');

export interface LocalPoolOptions {
  readonly threads: number;
  readonly init: ThreadInit;
  /** Attempts per shard before the step fails (a deterministic bug would fail forever). */
  readonly maxAttempts?: number;
  /** Called when a shard fails and is re-run, for the log. */
  readonly onRetry?: (slot: number, attempt: number, reason: string) => void;
}

export function defaultThreads(): number {
  return availableParallelism();
}

export class LocalPool implements Executor {
  readonly id = 'local';
  readonly threads: number;
  private readonly pool: Piscina<ShardTask, ShardReply>;
  private readonly maxAttempts: number;
  private readonly onRetry?: LocalPoolOptions['onRetry'];

  constructor(opts: LocalPoolOptions) {
    this.threads = opts.threads;
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.onRetry = opts.onRetry;
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
    return Promise.all(shards.map((s) => this.runShard(step, s)));
  }

  private async runShard(step: number, s: ShardSpec): Promise<ShardOutcome> {
    let reason = '';
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      if (attempt > 0) this.onRetry?.(s.slot, attempt, reason);
      let reply: ShardReply;
      try {
        reply = await this.pool.run({ step, slot: s.slot, lo: s.lo, hi: s.hi, attempt });
      } catch (e) {
        // The thread died (exit, crash): Piscina replaces it; re-run the shard.
        reason = e instanceof Error ? e.message : String(e);
        continue;
      }
      if (reply.ok) return { slot: s.slot, lossSum: reply.lossSum, count: reply.count, computeMs: reply.computeMs, by: `${this.id}/${reply.backend}` };
      reason = reply.error;
    }
    throw new DptrainError('WORKER_FAILED', `shard ${s.slot} of step ${step} failed ${this.maxAttempts} times: ${reason}`);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
