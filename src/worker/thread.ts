// The Piscina thread entry: attaches once to the shared arena and the shared data set, then runs
// tasks: a shard's gradients (shardGradients from the core) or a slice of a step's update
// (updateSlice). Both are stateless and idempotent, so a lost task can be re-run on any thread.
// Failures come back as data ({ ok: false }), not as a crash.

import { workerData } from 'piscina';
import { arenaViews } from '../core/arena.js';
import { createKernels } from '../core/kernels/index.js';
import { paramLayout } from '../core/layout.js';
import { denseViews, shardGradients, type DenseViews, type Model } from '../core/model.js';
import { updateSlice } from '../core/optim.js';
import type { ShardReply, ShardTask, ThreadInit, ThreadReply, ThreadTask, UpdateReply, UpdateTask } from './messages.js';

const init = workerData as ThreadInit;
const arena = arenaViews(init.memory, init.layout);
const layout = paramLayout(init.spec);
const weights = [denseViews(layout, arena.copies[0].params), denseViews(layout, arena.copies[1].params)] as const;

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

/** Whether the test hook fires on this task; it may run `before` (part of the work) first. */
function injectFault(task: ThreadTask, index: number, before: () => void): void {
  const fault = init.fault;
  if (!fault || task.attempt !== 0 || fault.step !== task.step || fault.slot !== index) return;
  if ((fault.phase ?? 'shard') !== task.kind) return;
  before();
  if (fault.mode === 'exit') process.exit(3);
  throw new Error(`injected fault at step ${task.step}, ${task.kind} ${index}`);
}

function runShard(task: ShardTask): ShardReply {
  injectFault(task, task.slot, () => {});
  const t0 = performance.now();
  const { model, g } = slotContext(task.slot);
  const r = shardGradients(model, weights[task.copy], g, arena.slots[task.slot], arena.workspaces[task.slot], init.layout.maxRows, init.train, init.order, task.lo, task.hi);
  return { ok: true, lossSum: r.lossSum, count: r.count, computeMs: performance.now() - t0, backend: model.kernels.name };
}

function runUpdate(task: UpdateTask): UpdateReply {
  const opt = init.optimizer;
  if (!opt) return { ok: false, error: 'this pool was started without an optimizer: it cannot run update tasks' };
  const t0 = performance.now();
  const { kernels } = slotContext(task.scratchSlot).model;
  const from = arena.copies[task.from];
  const to = arena.copies[1 - task.from];
  const sums = task.slots.map((s) => arena.slots[s]);
  const mid = task.lo + Math.floor((task.hi - task.lo) / 2);
  injectFault(task, task.slice, () => updateSlice(kernels, opt, to, from, arena.grad, sums, task.scale, task.lo, mid, task.step));
  updateSlice(kernels, opt, to, from, arena.grad, sums, task.scale, task.lo, task.hi, task.step);
  return { ok: true, computeMs: performance.now() - t0 };
}

export default function runTask(task: ThreadTask): ThreadReply {
  try {
    return task.kind === 'shard' ? runShard(task) : runUpdate(task);
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}
