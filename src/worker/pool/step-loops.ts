// Fused steps without a Piscina message per step: one long task per slot loops over the steps the
// coordinator posts on the step board (src/worker/step-board.ts): Atomics.notify wakes the threads,
// Atomics.waitAsync tells this thread when each slot has finished its shard and update slice.
// Within an epoch the coordinator posts each step together with the next, so the threads go from
// one step to the next among themselves and the coordinator's wake-up is off the critical path. A
// loop that dies or throws is started again at the step in hand (its finished shard is not
// recomputed, its slice is written again into the other copy), so the step's result is unchanged.
// The loops hold every thread of the pool: stop() them before the pool runs anything else.

import { DptrainError } from '../../core/errors.js';
import type { LoopTask, ThreadReply } from '../messages.js';
import type { BoardViews } from '../../core/protocol/step-board.js';
import type { StepUpdate, ShardOutcome, ShardSpec } from './executor.js';

interface Loop {
  readonly attempt: number;
  /** Resolves with why the loop task ended ('exited' after stop()). */
  readonly ended: Promise<string>;
  /** Set (with the reason) once `ended` has resolved. */
  over: boolean;
  reason: string;
}

type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs?: number) => { async: boolean; value: Promise<string> | string };
// ES2024's Atomics.waitAsync (in Node 20), not yet in this project's ES2022 lib typings.
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;
// A waiter that nothing wakes still resolves after this long, and the slot is looked at again.
const WAIT_SLICE_MS = 1000;

export interface StepLoopsOptions {
  readonly board: BoardViews;
  readonly run: (task: LoopTask) => Promise<ThreadReply>;
  readonly maxAttempts: number;
  /** The backend name the threads compute with, for the outcomes. */
  readonly backend: string;
  readonly onRetry?: (what: string, attempt: number, reason: string) => void;
}

export class StepLoops {
  private readonly loops = new Map<number, Loop>();
  /** The last step posted on the board (posted ahead: one more than the step in hand). */
  private posted = 0;

  constructor(private readonly o: StepLoopsOptions) {}

  /**
   * Runs step `step` (its shards and the update fused), reading weights copy `copy`. With
   * `fuse.next` (same slots) the following step is posted at once too: the threads go on to it as
   * soon as every slice of this one is written. The caller must then run that step next.
   */
  async step(step: number, shards: readonly ShardSpec[], fuse: StepUpdate, copy: 0 | 1): Promise<ShardOutcome[]> {
    const b = this.o.board;
    const slots = shards.map((s) => s.slot);
    if (this.posted >= step) {
      // Posted ahead with the step before: it must be this very step, on the same loops.
      const why = this.loops.size !== slots.length ? 'loops (stopped since)' : this.differs(step, shards, fuse.scale, copy);
      if (why) throw new Error(`step ${step} was posted ahead with other ${why} than it runs with`);
    } else {
      // One loop per shard slot: a step with another set of slots (a short last batch) starts anew.
      if (slots.length !== this.loops.size || slots.some((s) => !this.loops.has(s))) await this.stop();
      for (const s of slots) {
        const loop = this.loops.get(s);
        if (!loop || loop.over) this.start(s, step, loop ? loop.attempt + 1 : 0);
      }
      this.post(step, shards, fuse.scale, copy);
    }
    const next = fuse.next;
    if (next && next.shards.length === slots.length && next.shards.every((sh, i) => sh.slot === slots[i]))
      this.post(step + 1, next.shards, next.scale, copy === 0 ? 1 : 0);

    // Until every slot has finished the step. A dead loop anywhere must be seen at once: the live
    // ones may be waiting for its shard on the barrier.
    const failures = new Map<number, number>();
    for (;;) {
      const pending = slots.filter((s) => Atomics.load(b.i32, b.finished(s)) < step);
      if (pending.length === 0) break;
      for (const s of pending) {
        const loop = this.loops.get(s)!;
        if (!loop.over) continue;
        // The loop died or threw before finishing this step: start it again here.
        const what = `shard ${s} of step ${step} (with update slice ${slots.indexOf(s)})`;
        const n = (failures.get(s) ?? 0) + 1;
        failures.set(s, n);
        if (n >= this.o.maxAttempts) {
          // stop() also lets go the loops waiting at the barrier for this shard.
          await this.stop();
          throw new DptrainError('WORKER_FAILED', `${what} failed ${this.o.maxAttempts} times: ${loop.reason}`);
        }
        this.o.onRetry?.(what, n, loop.reason);
        this.start(s, step, loop.attempt + 1);
      }
      const first = pending[0];
      // Read again: had it finished since `pending` was taken, waiting on that value would sleep
      // through the notify that already came (the whole WAIT_SLICE_MS).
      const seen = Atomics.load(b.i32, b.finished(first));
      if (seen >= step) continue;
      const w = waitAsync(b.i32, b.finished(first), seen, WAIT_SLICE_MS);
      const woke = w.async ? (w.value as Promise<string>).then(() => undefined) : Promise.resolve(undefined);
      await Promise.race([woke, ...pending.map((s) => this.loops.get(s)!.ended.then(() => undefined))]);
    }
    const p = step & 1;
    return shards.map((sh) => ({
      slot: sh.slot, lossSum: b.f64[b.lossSum(p, sh.slot)], count: sh.hi - sh.lo, computeMs: b.f64[b.computeMs(p, sh.slot)],
      by: `local/${this.o.backend}`, waitMs: b.f64[b.waitMs(p, sh.slot)], updateMs: b.f64[b.updateMs(p, sh.slot)],
    }));
  }

  /** Ends every loop (a newer generation) and waits for their tasks to return. */
  async stop(): Promise<void> {
    if (this.loops.size === 0) return;
    const b = this.o.board;
    const ending = [...this.loops.values()].map((l) => l.ended);
    this.loops.clear();
    Atomics.add(b.i32, b.generation, 1);
    Atomics.notify(b.i32, b.go);
    // Loops still waiting for the other shards of a posted step (a step that threw) let go too;
    // after a finished step nobody waits there.
    Atomics.store(b.i32, b.abort, this.posted);
    for (let s = 0; s < b.slots; s++) {
      Atomics.notify(b.i32, b.done(s));
      Atomics.notify(b.i32, b.finished(s));
    }
    await Promise.all(ending);
  }

  /** Writes step `step`'s description at its parity, then makes it visible (go). */
  private post(step: number, shards: readonly ShardSpec[], scale: number, copy: 0 | 1): void {
    const b = this.o.board;
    const p = step & 1;
    shards.forEach((sh, i) => {
      b.i32[b.lo(p, sh.slot)] = sh.lo;
      b.i32[b.hi(p, sh.slot)] = sh.hi;
      b.i32[b.slice(p, sh.slot)] = i;
      b.i32[b.member(p, i)] = sh.slot;
    });
    b.i32[b.sliceCount(p)] = shards.length;
    b.i32[b.copy(p)] = copy;
    b.f64[b.scale(p)] = scale;
    // The plain writes above are visible to a thread once it sees this store.
    Atomics.store(b.i32, b.go, step);
    Atomics.notify(b.i32, b.go);
    this.posted = step;
  }

  /** What of step `step`'s posted description differs from these shards, or null. */
  private differs(step: number, shards: readonly ShardSpec[], scale: number, copy: 0 | 1): string | null {
    const b = this.o.board;
    const p = step & 1;
    if (b.i32[b.sliceCount(p)] !== shards.length || shards.some((sh, i) => b.i32[b.member(p, i)] !== sh.slot)) return 'slots';
    if (shards.some((sh) => b.i32[b.lo(p, sh.slot)] !== sh.lo || b.i32[b.hi(p, sh.slot)] !== sh.hi)) return 'rows';
    if (b.i32[b.copy(p)] !== copy) return 'weights copy';
    if (b.f64[b.scale(p)] !== scale) return 'scale';
    return null;
  }

  private start(slot: number, from: number, attempt: number): void {
    const generation = Atomics.load(this.o.board.i32, this.o.board.generation);
    const ended = this.o.run({ kind: 'loop', step: from, slot, from, generation, attempt }).then(
      (r) => (r.ok ? 'exited' : r.error),
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
    const loop: Loop = { attempt, ended, over: false, reason: '' };
    void ended.then((why) => {
      loop.over = true;
      loop.reason = why;
    });
    this.loops.set(slot, loop);
  }
}
