// The model's forward and backward: a hand-worked 3-3-3 example, checkGrad over every activation,
// loss and kernel backend, the shard-sum identity, and the data checks where data meets the model.

import { describe, expect, it } from 'vitest';
import { createArena } from '../src/core/arena.js';
import { naiveKernels } from '../src/core/kernels/naive.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, forward, shardGradients, checkDataFits } from '../src/core/model.js';
import { ACTIVATIONS, LOSSES, type Activation, type LossName } from '../src/core/spec.js';
import { BACKENDS, checkGrad, fixture, randomData, spec } from './helpers.js';

describe('a 3-3-3 worked example (sigmoid, half-sse, no bias)', () => {
  it('gives the hidden and output values worked out by hand', () => {
    const s = spec([3, 3, 3], 'sigmoid', 'sigmoid', 'half-sse', false);
    const layout = paramLayout(s);
    expect(layout.tensors.map((t) => t.name)).toEqual(['0.weight', '2.weight']);
    const arena = createArena(s, { shards: 1, maxRows: 1, stateVectors: 0 });
    arena.params.set([0.9, 0.3, 0.4, 0.2, 0.8, 0.2, 0.1, 0.5, 0.6], layout.tensors[0].offset);
    arena.params.set([0.3, 0.7, 0.5, 0.6, 0.5, 0.2, 0.8, 0.1, 0.9], layout.tensors[1].offset);
    const ws = arena.workspaces[0];
    ws.x.set([0.9, 0.1, 0.8]);
    const out = forward({ spec: s, layout, kernels: naiveKernels }, denseViews(layout, arena.params), ws, 1);
    const round4 = (a: ArrayLike<number>) => Array.from(a, (v) => Number(v.toFixed(4)));
    expect(round4(ws.h[0].subarray(0, 3))).toEqual([0.7613, 0.6035, 0.6502]);
    expect(round4(out.subarray(0, 3))).toEqual([0.7263, 0.7086, 0.7781]);
  });
});

// Outputs that make sense for each loss: cross-entropy takes logits (any activation is allowed in
// front of it), bce needs probabilities, so only sigmoid.
function outputsFor(loss: LossName): Activation[] {
  if (loss === 'bce') return ['sigmoid'];
  return [...ACTIVATIONS];
}

describe.each(BACKENDS)('gradient checks (%s kernels)', (backend) => {
  // Float32 forward passes: the loss sum carries relative rounding of ~1e-7 per operation, so with
  // eps = 1e-3 the difference quotient has an absolute error of about 1e-7·|L|/1e-3 ≈ 1e-4·|L|,
  // while the truncation error eps²·f'''/6 stays below 1e-6. atol 2e-3 and rtol 2e-2 leave ~10× room
  // for that and are still far below a wrong gradient (missing factor, sign or term: errors of order 1).
  const eps = 1e-3;
  const atol = 2e-3;
  const rtol = 2e-2;
  for (const loss of LOSSES)
    for (const output of outputsFor(loss))
      for (const hidden of ACTIVATIONS)
        it(`${hidden} hidden, ${output} output, ${loss}`, () => {
          const cases: { layers: number[]; bias: boolean; n: number }[] = [
            { layers: [3, 4, 2], bias: true, n: 5 },
            { layers: [2, 3, 4, 3], bias: false, n: 3 },
          ];
          for (const c of cases) {
            const s = spec(c.layers, hidden, output, loss, c.bias);
            const f = fixture(s, backend, { seed: 7 });
            const data = randomData(s, c.n, 11);
            const r = checkGrad(f, data, eps, atol, rtol);
            expect(r.checked).toBe(f.model.layout.size);
            expect(r.worst, `worst parameter ${r.worstIndex} of ${JSON.stringify(c)}`).toBeLessThanOrEqual(1);
          }
        });

  it('catches a wrong gradient (the check itself can fail)', () => {
    const s = spec([3, 4, 2], 'tanh', 'identity', 'mse');
    const f = fixture(s, backend, { seed: 3 });
    const data = randomData(s, 4, 5);
    // Sabotage: a kernel that drops the bias gradient.
    const broken = { ...f.model.kernels, colSum: () => {} };
    const r = checkGrad({ ...f, model: { ...f.model, kernels: broken } }, data, eps, atol, rtol);
    expect(r.worst).toBeGreaterThan(1);
  });
});

describe.each(BACKENDS)('data-parallel identity (%s kernels)', (backend) => {
  it('the whole-batch gradient equals the sum of shard gradients over any split', () => {
    const s = spec([6, 8, 5, 4], 'relu', 'identity', 'cross-entropy');
    // Gradient buffers are arena slots: the wasm kernels work only on views of the arena.
    const f = fixture(s, backend, { maxRows: 7, seed: 2, shards: 2 });
    const data = randomData(s, 23, 4);
    const ws = f.arena.workspaces[0];
    const whole = new Float32Array(f.model.layout.size);
    const wholeLoss = shardGradients(f.model, f.p, denseViews(f.model.layout, f.arena.slots[0]), f.arena.slots[0], ws, 7, data, null, 0, 23);
    whole.set(f.arena.slots[0]);
    const splits = [[0, 23], [0, 1, 23], [0, 5, 6, 17, 23], [0, 3, 10, 11, 12, 20, 23]];
    for (const cuts of splits) {
      const total = new Float64Array(f.model.layout.size);
      let lossTotal = 0;
      let count = 0;
      for (let i = 0; i + 1 < cuts.length; i++) {
        const part = f.arena.slots[1];
        const r = shardGradients(f.model, f.p, denseViews(f.model.layout, part), part, ws, 7, data, null, cuts[i], cuts[i + 1]);
        lossTotal += r.lossSum;
        count += r.count;
        for (let j = 0; j < part.length; j++) total[j] += part[j];
      }
      expect(count).toBe(23);
      expect(lossTotal).toBeCloseTo(wholeLoss.lossSum, 4);
      let worst = 0;
      for (let j = 0; j < total.length; j++) worst = Math.max(worst, Math.abs(total[j] - whole[j]) / (1e-5 + Math.abs(whole[j])));
      // Float32 sums in a different grouping: relative differences of a few ulps × rows.
      expect(worst, `split ${cuts.join(',')}`).toBeLessThan(1e-3);
    }
  });
});

describe('shape and label checks happen once, where data meets the model', () => {
  it('refuses a class index out of range with the row named', () => {
    const s = spec([2, 3], 'relu', 'identity', 'cross-entropy');
    const data = { name: 'tiny.csv', n: 2, nIn: 2, x: new Float32Array(4), y: Float32Array.from([1, 3]), yWidth: 1, classes: 4 };
    expect(() => checkDataFits(s, data)).toThrow(/tiny\.csv: row 1 has class 3, the model has 3 outputs/);
  });
  it('refuses a data set whose width does not fit the model', () => {
    const s = spec([3, 3], 'relu', 'identity', 'mse');
    const data = { name: 'd', n: 1, nIn: 2, x: new Float32Array(2), y: new Float32Array(3), yWidth: 3, classes: 0 };
    expect(() => checkDataFits(s, data)).toThrow(/d has 2 inputs per row, model.layers\[0\] is 3/);
  });
});
