// The Piscina thread entry: attaches once to the shared arena and the shared data set, then runs
// tasks: a shard's gradients (shardGradients from the core), a slice of a step's update
// (updateSlice), an evaluation range, or a loop over fused steps: for each step the coordinator
// posts on the step board, the slot's shard, a wait until every shard of the step is summed, the
// slot's update slice, then a wait until every slice of the step is written (the next step may be
// posted already). All are idempotent (a re-run finds a finished shard on the board and does not
// recompute it; a slice writes the other copy), so a lost task can be re-run on any thread.
// Failures come back as data ({ ok: false }), not as a crash.

import { workerData } from 'piscina';
import { arenaViews } from '../core/arena.js';
import { createKernels } from '../core/kernels/index.js';
import { paramLayout } from '../core/layout.js';
import { denseViews, layerSpan, shardGradients, type DenseViews, type LayerStream, type Model } from '../core/model.js';
import { updateSlice, updateSliceRange } from '../core/optim.js';
import { evaluateRange } from '../core/eval.js';
import type { EvalReply, EvalTask, FusedSlice, LoopReply, LoopTask, ShardReply, ShardTask, ThreadInit, ThreadReply, ThreadTask, UpdateReply, UpdateTask } from './messages.js';
import { boardViews } from '../core/protocol/step-board.js';

const init = workerData as ThreadInit;
const arena = arenaViews(init.memory, init.layout);
const layout = paramLayout(init.spec);
const weights = [denseViews(layout, arena.copies[0].params), denseViews(layout, arena.copies[1].params)] as const;
const board = init.board ? boardViews(init.board) : null;
// How long one Atomics.wait sleeps before it looks at the abandoned-step or generation word again.
const WAIT_SLICE_MS = 200;
const spans = layout.dense.map((_, l) => layerSpan(layout, l));

/** A streamed step whose ticket is no longer the board's: upstream gave it up. */
class Abandoned extends Error {}

/** The board's side of a streamed shard: layer l's weights awaited, its final gradient posted. */
function boardStream(ticket: number, slot: number): LayerStream {
  const b = board;
  if (!b) throw new Error('a streamed shard needs the step board in the thread init');
  return {
    weightsFor(l) {
      const need = spans[l].end;
      for (;;) {
        if (Atomics.load(b.i32, b.weightsTicket) !== ticket) throw new Abandoned(`weights ticket ${ticket} was given up`);
        const v = Atomics.load(b.i32, b.landed);
        if (v >= need) return;
        Atomics.wait(b.i32, b.landed, v, WAIT_SLICE_MS);
      }
    },
    gradientReady(l) {
      Atomics.store(b.i32, b.gradFrom(slot), spans[l].start);
      Atomics.notify(b.i32, b.gradFrom(slot));
    },
  };
}

interface SlotContext {
  readonly model: Model;
  readonly g: DenseViews[];
}

// One kernel instance per slot: its scratch is the slot's workspace, so two threads never share it.
const slots = new Map<number, SlotContext>();
function slotContext(slot: number): SlotContext {
  let ctx = slots.get(slot);
  if (!ctx) {
    const kernels = createKernels(init.kernels, init.memory, arena.workspaces[slot].scratch);
    ctx = { model: { spec: init.spec, layout, kernels }, g: denseViews(layout, arena.slots[slot]) };
    slots.set(slot, ctx);
  }
  return ctx;
}

/** Whether the test hook fires here; it may run `before` (part of the work) first. */
function injectFault(task: ThreadTask, phase: 'shard' | 'update', index: number, before: () => void): void {
  const fault = init.fault;
  if (!fault || task.attempt !== 0 || fault.step !== task.step || fault.slot !== index) return;
  if ((fault.phase ?? 'shard') !== phase) return;
  before();
  if (fault.mode === 'exit') process.exit(3);
  throw new Error(`injected fault at step ${task.step}, ${phase} ${index}`);
}

/** Slice `slice` of task.step's update from copy `from` into the other (a test fault may stop it halfway). */
function applySlice(
  task: ThreadTask, slots: readonly number[], scale: number, from: 0 | 1, slice: number, lo: number, hi: number, scratchSlot: number,
): void {
  const { step } = task;
  const opt = init.optimizer;
  if (!opt) throw new Error('this pool was started without an optimizer: it cannot update');
  const { kernels } = slotContext(scratchSlot).model;
  const [src, dst] = [arena.copies[from], arena.copies[1 - from]];
  const sums = slots.map((s) => arena.slots[s]);
  const mid = lo + Math.floor((hi - lo) / 2);
  injectFault(task, 'update', slice, () => updateSlice(kernels, opt, dst, src, arena.grad, sums, scale, lo, mid, step));
  updateSlice(kernels, opt, dst, src, arena.grad, sums, scale, lo, hi, step);
}

/** Blocks until every slot in `slots` holds step `step`'s sum (or the coordinator gave the step up). */
function awaitShards(step: number, slots: readonly number[]): void {
  const b = board!;
  for (const s of slots)
    for (let v = Atomics.load(b.i32, b.done(s)); v !== step; v = Atomics.load(b.i32, b.done(s))) {
      if (Atomics.load(b.i32, b.abort) >= step) throw new Error(`step ${step} was given up while this task waited for its other shards`);
      Atomics.wait(b.i32, b.done(s), v, WAIT_SLICE_MS);
    }
}

function runShard(task: ShardTask): Extract<ShardReply, { ok: true }> {
  injectFault(task, 'shard', task.slot, () => {});
  const t0 = performance.now();
  const { model, g } = slotContext(task.slot);
  const fused: FusedSlice | undefined = task.update;
  if (fused && !board) throw new Error('a fused update needs the step board in the thread init');
  let lossSum: number;
  const parity = task.step & 1;
  if (fused && Atomics.load(board!.i32, board!.done(task.slot)) === task.step) {
    // An earlier attempt finished this shard and died in its update: other slices may be reading the slot.
    lossSum = board!.f64[board!.lossSum(parity, task.slot)];
  } else {
    const stream = task.stream === undefined ? undefined : boardStream(task.stream, task.slot);
    lossSum = shardGradients(model, weights[task.copy], g, arena.slots[task.slot], arena.workspaces[task.slot], init.layout.maxRows, init.train, init.order, task.lo, task.hi, stream).lossSum;
    if (fused) {
      board!.f64[board!.lossSum(parity, task.slot)] = lossSum;
      Atomics.store(board!.i32, board!.done(task.slot), task.step);
      Atomics.notify(board!.i32, board!.done(task.slot));
    }
  }
  const t1 = performance.now();
  const reply = { ok: true, lossSum, count: task.hi - task.lo, computeMs: t1 - t0, backend: model.kernels.name } as const;
  if (!fused) return reply;
  awaitShards(task.step, fused.slots);
  const t2 = performance.now();
  const { lo, hi } = updateSliceRange(init.layout.paramCount, fused.slice, fused.slices);
  applySlice(task, fused.slots, fused.scale, task.copy, fused.slice, lo, hi, task.slot);
  return { ...reply, waitMs: t2 - t1, updateMs: performance.now() - t2 };
}

function runEval(task: EvalTask): EvalReply {
  if (!init.test) throw new Error('this pool was started without the test data: it cannot evaluate');
  const { model } = slotContext(task.slot);
  return { ok: true, ...evaluateRange(model, weights[task.copy], arena.workspaces[task.slot], init.layout.maxRows, init.test, task.lo, task.hi) };
}

function runLoop(task: LoopTask): LoopReply {
  const b = board;
  if (!b) throw new Error('a loop over fused steps needs the step board in the thread init');
  const { slot } = task;
  const retired = (): boolean => Atomics.load(b.i32, b.generation) !== task.generation;
  for (let step = task.from; ; step++) {
    // Sleep until the coordinator posts this step (it may have already, with the one before), or
    // retires this loop (a newer generation).
    for (;;) {
      if (retired()) return { ok: true, exitedAt: step };
      const posted = Atomics.load(b.i32, b.go);
      if (posted >= step) break;
      Atomics.wait(b.i32, b.go, posted, WAIT_SLICE_MS);
    }
    const p = step & 1;
    const slices = b.i32[b.sliceCount(p)];
    const members = Array.from({ length: slices }, (_, i) => b.i32[b.member(p, i)]);
    // Every loop's slot is a member of each step it runs (the coordinator starts the loops anew
    // when the slots change).
    const update: FusedSlice = { slots: members, slice: b.i32[b.slice(p, slot)], slices, scale: b.f64[b.scale(p)] };
    const copy = b.i32[b.copy(p)] === 0 ? 0 : 1;
    const r = runShard({ kind: 'shard', step, slot, lo: b.i32[b.lo(p, slot)], hi: b.i32[b.hi(p, slot)], copy, attempt: task.attempt, update });
    b.f64[b.computeMs(p, slot)] = r.computeMs;
    b.f64[b.waitMs(p, slot)] = r.waitMs ?? 0;
    b.f64[b.updateMs(p, slot)] = r.updateMs ?? 0;
    Atomics.store(b.i32, b.finished(slot), step);
    Atomics.notify(b.i32, b.finished(slot));
    // The next step's forward reads every slice of this one: wait until the other loops wrote theirs.
    for (const s of members)
      for (let v = Atomics.load(b.i32, b.finished(s)); v < step; v = Atomics.load(b.i32, b.finished(s))) {
        if (retired()) return { ok: true, exitedAt: step + 1 };
        Atomics.wait(b.i32, b.finished(s), v, WAIT_SLICE_MS);
      }
  }
}

function runUpdate(task: UpdateTask): UpdateReply {
  const t0 = performance.now();
  applySlice(task, task.slots, task.scale, task.from, task.slice, task.lo, task.hi, task.scratchSlot);
  return { ok: true, computeMs: performance.now() - t0 };
}

export default function runTask(task: ThreadTask): ThreadReply {
  try {
    switch (task.kind) {
      case 'shard':
        return runShard(task);
      case 'update':
        return runUpdate(task);
      case 'eval':
        return runEval(task);
      case 'loop':
        return runLoop(task);
    }
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e), ...(e instanceof Abandoned ? { abandoned: true } : {}) };
  }
}
