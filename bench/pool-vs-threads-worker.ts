// One bare worker thread of bench/pool-vs-threads.ts: shardGradients over its slot of the shared arena.

import { parentPort, workerData } from 'node:worker_threads';
import { arenaViews, type ArenaLayout } from '../src/core/arena.js';
import type { Dataset } from '../src/core/data/types.js';
import { initParams } from '../src/core/init.js';
import { createKernels } from '../src/core/kernels/index.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, shardGradients } from '../src/core/model.js';
import type { ModelSpec } from '../src/core/spec.js';

const { spec, layout: al, memory, data, slot, rows } = workerData as {
  spec: ModelSpec; layout: ArenaLayout; memory: WebAssembly.Memory; data: Dataset; slot: number; rows: number;
};
const arena = arenaViews(memory, al);
const layout = paramLayout(spec);
if (slot === 0) initParams(arena.params, layout, 'pytorch', 42);
const model = { spec, layout, kernels: createKernels('wasm', memory, arena.workspaces[slot].scratch) };
const p = denseViews(layout, arena.params);
const g = denseViews(layout, arena.slots[slot]);
parentPort!.on('message', (lo: number) => {
  shardGradients(model, p, g, arena.slots[slot], arena.workspaces[slot], rows, data, null, lo, lo + rows);
  parentPort!.postMessage(0);
});
parentPort!.postMessage('ready');
