// The Piscina thread entry: attaches once to the shared arena and the shared data set, then runs
// shard tasks. The work itself is shardGradients from the core — stateless, so a lost shard can be
// re-run on any thread. Failures come back as data ({ ok: false }), not as a crash.

import { workerData } from 'piscina';
import { arenaViews } from '../core/arena.js';
import { createKernels } from '../core/kernels/index.js';
import { paramLayout } from '../core/layout.js';
import { denseViews, shardGradients, type DenseViews, type Model } from '../core/model.js';
import type { ShardReply, ShardTask, ThreadInit } from './messages.js';

const init = workerData as ThreadInit;
const arena = arenaViews(init.memory, init.layout);
const layout = paramLayout(init.spec);
const params = denseViews(layout, arena.params);

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

export default function runShard(task: ShardTask): ShardReply {
  try {
    const fault = init.fault;
    if (fault && task.attempt === 0 && fault.step === task.step && fault.slot === task.slot) {
      if (fault.mode === 'exit') process.exit(3);
      throw new Error(`injected fault at step ${task.step}, slot ${task.slot}`);
    }
    const t0 = performance.now();
    const { model, g } = slotContext(task.slot);
    const r = shardGradients(model, params, g, arena.slots[task.slot], arena.workspaces[task.slot], init.layout.maxRows, init.train, init.order, task.lo, task.hi);
    return { ok: true, lossSum: r.lossSum, count: r.count, computeMs: performance.now() - t0, backend: model.kernels.name };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}
