// The Piscina task of bench/dispatch.ts: nothing, or shardGradients of 64 rows over the shared
// arena; returns when it started and ended (epoch milliseconds, comparable across threads).

import { workerData } from 'piscina';
import { arenaViews, type ArenaLayout } from '../src/core/arena.js';
import type { Dataset } from '../src/core/data/types.js';
import { createKernels } from '../src/core/kernels/index.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, shardGradients, type Model } from '../src/core/model.js';
import type { ModelSpec } from '../src/core/spec.js';

export interface DispatchTask {
  readonly slot: number;
  /** First row of the shard; -1: an empty task. */
  readonly lo: number;
}

const { spec, layout: al, memory, data, rows } = workerData as {
  spec: ModelSpec; layout: ArenaLayout; memory: WebAssembly.Memory; data: Dataset; rows: number;
};
const arena = arenaViews(memory, al);
const layout = paramLayout(spec);
const p = denseViews(layout, arena.params);
const models = new Map<number, Model>();
const now = (): number => performance.timeOrigin + performance.now();

export default function run(t: DispatchTask): { start: number; end: number } {
  const start = now();
  if (t.lo >= 0) {
    let model = models.get(t.slot);
    if (!model) models.set(t.slot, (model = { spec, layout, kernels: createKernels('wasm', memory, arena.workspaces[t.slot].scratch) }));
    shardGradients(model, p, denseViews(layout, arena.slots[t.slot]), arena.slots[t.slot], arena.workspaces[t.slot], rows, data, null, t.lo, t.lo + rows);
  }
  return { start, end: now() };
}
