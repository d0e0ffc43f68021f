// What a user meets when a run goes wrong or an input is hostile (issue #11, items 5–7): the
// compiled CLI as a child process, plus the kernels' losses on the inputs that broke them.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createArena } from '../src/core/arena.js';
import { paramLayout } from '../src/core/layout.js';
import { saveWeights } from '../src/core/io/safetensors.js';
import { parseConfig } from '../src/core/config.js';
import { losses } from '../src/core/losses.js';
import { readCheckpoint } from '../src/coordinator/train/checkpoint.js';
import { BACKENDS, makeKernels } from './helpers.js';
import { dptrain, spirals as spiralsBase, workdir as workdirOf } from './cli-helpers.js';

// Three epochs are enough for any of these.
const spirals = { ...spiralsBase, training: { ...spiralsBase.training, epochs: 3 } };
const workdir = (config: object = spirals): string => workdirOf(config);

/** The one line on stderr (fails the test if there are more). */
function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  expect(lines, stderr).toHaveLength(1);
  return lines[0];
}

describe('a diverging run stops (item 5)', () => {
  it.each([['wasm', '2'], ['ts', '1']])('--lr 1e30 (kernels %s, %s threads): exit 3 at the step, no NaN checkpoint, names the last good one', (kernels, workers) => {
    const dir = workdir();
    const r = dptrain(['train', '--config', 'c.json', '--workers', workers, '--kernels', kernels, '--lr', '1e30', '--checkpoint-every', '1', '--save-weights', 'w.safetensors'], dir);
    expect(r.code).toBe(3);
    const line = oneLine(r.stderr);
    const m = /^dptrain: step (\d+): the training loss is (NaN|Infinity|-Infinity): the run diverged .*; last good checkpoint (\S+) \(--resume continues from it\)$/.exec(line);
    expect(m, line).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThan(1);
    // Every checkpoint on disk holds finite weights and optimizer state, none is of the bad step.
    const files = readdirSync(join(dir, 'checkpoints'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      expect(Number(/(\d+)/.exec(f)![1])).toBeLessThan(step);
      for (const t of readCheckpoint(join(dir, 'checkpoints', f)).tensors.values()) expect(t.data.every(Number.isFinite)).toBe(true);
    }
    expect(existsSync(m![3])).toBe(true);
    expect(existsSync(join(dir, 'w.safetensors'))).toBe(false);
    expect(r.stdout).not.toMatch(/^done:/m);
  });

  it('without any checkpoint before the divergence, says so', () => {
    const dir = workdir();
    const r = dptrain(['train', '--config', 'c.json', '--workers', '1', '--lr', '1e30'], dir);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/^dptrain: step \d+: the training loss is \S+: the run diverged .*; no checkpoint was written before$/);
    expect(existsSync(join(dir, 'checkpoints'))).toBe(false);
  });

  it.each(['wasm', 'ts'])('eval of a wrecked model (all weights 1e10, kernels %s) reports ln 2, not a loss of 0', (kernels) => {
    const dir = workdir();
    const layout = paramLayout(parseConfig(spirals, 'c.json', dir).model);
    saveWeights(join(dir, 'w.safetensors'), layout, new Float32Array(layout.size).fill(1e10), { format: 'pt' });
    const r = dptrain(['eval', '--config', 'c.json', '--weights', 'w.safetensors', '--kernels', kernels], dir);
    expect(r.code).toBe(0);
    // Both logits are the same huge number: the loss is ln 2 for every row.
    expect(r.stdout).toMatch(/^test samples 80 {2}loss 0\.6931 {2}accuracy/m);
  });

  it.each(BACKENDS)('the %s backend\'s cross-entropy works with differences from the row max', (backend) => {
    const spec = { layers: [1, 3], hidden: 'relu', output: 'identity', softmaxOutput: false, bias: true, loss: 'cross-entropy' } as const;
    const arena = createArena(spec, { shards: 1, maxRows: 4, stateVectors: 0 });
    const kernels = makeKernels(backend, arena);
    const ws = arena.workspaces[0];
    const h = ws.z[0].subarray(0, 6);
    const dh = ws.d0.subarray(0, 6);
    const y = ws.y.subarray(0, 2);
    // Row 0: three equal logits of 1e34 (loss ln 3); row 1: ordinary logits.
    h.set([1e34, 1e34, 1e34, 0.5, -1, 2]);
    y.set([1, 2]);
    const ordinary = Math.log(Math.exp(0.5) + Math.exp(-1) + Math.exp(2)) - 2;
    const value = losses['cross-entropy'].value(h, y, 2, 3);
    expect(value).toBeCloseTo(Math.log(3) + ordinary, 5);
    expect(kernels.lossGrad('cross-entropy', dh, h, y, 2, 3)).toBeCloseTo(Math.log(3) + ordinary, 5);
    // A row with an infinite logit is NaN, never a finite number.
    h.set([Infinity, 0, 0, 0.5, -1, 2]);
    expect(losses['cross-entropy'].value(h, y, 2, 3)).toBeNaN();
    expect(kernels.lossGrad('cross-entropy', dh, h, y, 2, 3)).toBeNaN();
  });
});
