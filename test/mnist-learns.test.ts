// The core on its own, single-threaded, no pool: the MNIST MLP on the embedded digits learns.

import { describe, expect, it } from 'vitest';
import { createArena } from '../src/core/arena.js';
import { loadData } from '../src/core/data/index.js';
import { evaluate } from '../src/core/eval.js';
import { initParams } from '../src/core/init.js';
import { createKernels } from '../src/core/kernels/index.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, shardGradients } from '../src/core/model.js';
import { updateSlice, type OptimizerConfig } from '../src/core/optim.js';
import { Rng } from '../src/core/rng.js';
import type { ModelSpec } from '../src/core/spec.js';

describe('the MNIST MLP through the core, one thread', () => {
  it('reaches ≥ 94 % on the 2000 held-out digits in 5 epochs (SGD, momentum 0.9, batch 64)', () => {
    const spec: ModelSpec = { layers: [784, 512, 512, 10], hidden: 'relu', output: 'identity', softmaxOutput: false, bias: true, loss: 'cross-entropy' };
    const opt: OptimizerConfig = { name: 'sgd', lr: 0.05, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0 };
    const { train, test } = loadData({ source: 'mnist', train: 8000, test: 2000 }, { baseDir: '.', seed: 42, loss: 'cross-entropy', nOut: 10 });
    const batch = 64;
    const arena = createArena(spec, { shards: 1, maxRows: batch, stateVectors: 1 });
    const layout = paramLayout(spec);
    initParams(arena.params, layout, 'pytorch', 42);
    const kernels = createKernels('auto', arena.memory, arena.workspaces[0].scratch);
    const model = { spec, layout, kernels };
    const p = denseViews(layout, arena.params);
    const g = denseViews(layout, arena.slots[0]);
    const rng = new Rng(7);
    const order = Int32Array.from({ length: train.n }, (_, i) => i);
    let step = 0;
    for (let epoch = 0; epoch < 5; epoch++) {
      rng.shuffle(order);
      for (let lo = 0; lo < train.n; lo += batch) {
        const hi = Math.min(train.n, lo + batch);
        shardGradients(model, p, g, arena.slots[0], arena.workspaces[0], batch, train, order, lo, hi);
        const here = arena.copies[0];
        updateSlice(kernels, opt, here, here, arena.grad, [arena.slots[0]], 1 / (hi - lo), 0, layout.size, ++step);
      }
    }
    const r = evaluate(model, p, arena.workspaces[0], batch, test);
    expect(r.n).toBe(2000);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.94);
    expect(r.loss).toBeLessThan(0.25);
  }, 120_000);
});
