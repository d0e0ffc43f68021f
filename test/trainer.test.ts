// The trainer with real Piscina threads over the shared arena: invariants 1, 2, 4 and 5 of DESIGN.md.

import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createArena } from '../src/core/arena.js';
import { evaluate } from '../src/core/eval.js';
import { initParams } from '../src/core/init.js';
import { createKernels } from '../src/core/kernels/index.js';
import { naiveKernels } from '../src/core/kernels/naive.js';
import { paramLayout } from '../src/core/layout.js';
import { denseViews, shardGradients } from '../src/core/model.js';
import { listCheckpoints } from '../src/coordinator/train/checkpoint.js';
import { parseConfig, type Config } from '../src/core/config.js';
import { train, type TrainOptions } from '../src/coordinator/train/trainer.js';
import { randomData, relDiff, sameBits, silentReporter, workdir } from './helpers.js';

function config(over: { batchSize?: number; shuffle?: boolean; epochs?: number; optimizer?: object } = {}): Config {
  return parseConfig(
    {
      model: { layers: [6, 16, 12, 4], hidden: 'tanh', output: 'linear' },
      loss: 'cross-entropy',
      optimizer: over.optimizer ?? { name: 'sgd', lr: 0.1, momentum: 0.9 },
      data: { source: 'synthetic', name: 'spirals' },
      training: { epochs: over.epochs ?? 4, batchSize: over.batchSize ?? 16, shuffle: over.shuffle ?? true, seed: 3 },
    },
    'test-config',
    tmpdir(),
  );
}

const cfg = config();
const data = { train: randomData(cfg.model, 200, 1), test: randomData(cfg.model, 40, 2) };

function run(workers: number, extra: Partial<TrainOptions> = {}) {
  return train({ config: cfg, workers, kernels: 'ts', reporter: silentReporter(), data, skipEval: true, ...extra });
}


describe('parallel equals serial (invariant 2)', () => {
  it('1, 2, 3 and 4 threads reach the same weights after 50 steps; runs repeat bit for bit', async () => {
    const one = await run(1, { maxSteps: 50 });
    expect(one.steps).toBe(50);
    for (const n of [2, 3, 4]) {
      const r = await run(n, { maxSteps: 50 });
      expect(r.steps).toBe(50);
      // Only the grouping of float32 sums differs between thread counts.
      expect(relDiff(r.params, one.params), `${n} threads`).toBeLessThan(1e-5);
      expect(r.params).not.toEqual(new Float32Array(r.params.length));
    }
    const again = await run(4, { maxSteps: 50 });
    const first = await run(4, { maxSteps: 50 });
    expect(sameBits(again.params, first.params)).toBe(true);
  });
});

describe('averaging is exact (invariant 1)', () => {
  it('uneven shards and a short last batch apply exactly the mean gradient', async () => {
    // 29 rows, batch 13, no shuffle: batches of 13, 13 and 3 rows; 3 threads cut 13 into 5, 4, 4.
    const c = config({ batchSize: 13, shuffle: false, epochs: 1, optimizer: { name: 'sgd', lr: 0.5 } });
    const d = { train: randomData(c.model, 29, 5), test: randomData(c.model, 4, 6) };
    const r = await train({ config: c, workers: 3, kernels: 'ts', reporter: silentReporter(), data: d, skipEval: true });
    expect(r.steps).toBe(3);
    // The same three steps through the core, each batch computed whole, serially.
    const layout = paramLayout(c.model);
    const arena = createArena(c.model, { shards: 1, maxRows: 13, stateVectors: 0 });
    initParams(arena.params, layout, 'pytorch', 3);
    const model = { spec: c.model, layout, kernels: naiveKernels };
    const g = new Float32Array(layout.size);
    for (const [lo, hi] of [[0, 13], [13, 26], [26, 29]]) {
      shardGradients(model, denseViews(layout, arena.params), denseViews(layout, g), g, arena.workspaces[0], 13, d.train, null, lo, hi);
      for (let i = 0; i < layout.size; i++) arena.params[i] -= (0.5 * g[i]) / (hi - lo);
    }
    expect(relDiff(r.params, arena.params.subarray(0, layout.size))).toBeLessThan(1e-5);
  });
});

describe('a dying worker changes nothing (invariant 4)', () => {
  it.each(['throw', 'exit'] as const)('a shard whose task %ss mid-step is re-run with the same result', async (mode) => {
    const clean = await run(2, { maxSteps: 20 });
    const reporter = silentReporter();
    const hurt = await run(2, { maxSteps: 20, fault: { step: 7, slot: 1, mode }, reporter });
    expect(reporter.lines.some((l) => /shard 1 of step 7 (\(with update slice 1\) )?failed .*re-running it/.test(l))).toBe(true);
    expect(sameBits(hurt.params, clean.params)).toBe(true);
  });
});

describe('the update spread over the threads', () => {
  // fused: each shard's task updates a slice once every shard is summed; threads: a second round.
  for (const update of ['fused', 'threads'] as const)
    it.each(['throw', 'exit'] as const)(`${update}: a thread that %ss halfway through its update slice: the slice is re-run, same bits`, async (mode) => {
      const clean = await run(2, { maxSteps: 20, update: 'coordinator' });
      const reporter = silentReporter();
      const hurt = await run(2, { maxSteps: 20, update, fault: { step: 7, slot: 1, mode, phase: 'update' }, reporter });
      const what = update === 'fused' ? /shard \d+ of step 7 \(with update slice 1\) failed .*re-running it/ : /update slice 1 of step 7 failed .*re-running it/;
      expect(reporter.lines.some((l) => what.test(l)), reporter.lines.join('\n')).toBe(true);
      expect(sameBits(hurt.params, clean.params)).toBe(true);
    });

  it('fused steps whose shard count changes (a last batch smaller than the threads) match the coordinator bit for bit', async () => {
    // 27 rows, batch 6, 4 threads: every epoch ends with a 3-row batch cut into 3 shards.
    const c = config({ batchSize: 6, epochs: 3 });
    const d = { train: randomData(c.model, 27, 8), test: randomData(c.model, 5, 9) };
    const go = (update: TrainOptions['update']) => train({ config: c, workers: 4, kernels: 'ts', reporter: silentReporter(), data: d, update });
    const [fused, here] = [await go('fused'), await go('coordinator')];
    expect(fused.steps).toBe(15);
    expect(sameBits(fused.params, here.params)).toBe(true);
    expect(fused.final!.loss).toBeCloseTo(here.final!.loss, 12);
  });

  it('fused, sliced on 1, 2 and 3 threads, or whole on the coordinator: the same bits, SGD and Adam', async () => {
    for (const optimizer of [undefined, { name: 'adam', lr: 0.01 }]) {
      const c = optimizer ? config({ optimizer }) : cfg;
      for (const n of [1, 2, 3]) {
        const go = (update: TrainOptions['update']) => train({ config: c, workers: n, kernels: 'ts', reporter: silentReporter(), data, skipEval: true, maxSteps: 20, update });
        const here = await go('coordinator');
        for (const update of ['fused', 'threads'] as const)
          expect(sameBits((await go(update)).params, here.params), `${optimizer?.name ?? 'sgd'}, ${n} threads, ${update}`).toBe(true);
      }
    }
  });
});

describe('fused steps posted with the next one', () => {
  it('a stop asked for during a step lets the step posted with it finish; the run resumes bit-identical', async () => {
    const whole = await run(2);
    // 13 steps an epoch: step 7 runs with step 8 already posted to the threads (not so on the
    // coordinator, which posts nothing ahead), and the checkpoint is written after the last step run.
    const stopAt = async (update: TrainOptions['update'], dir: string) => {
      const stop = { requested: false };
      const reporter = { ...silentReporter(), step: (r: { step: number }) => void (r.step === 7 && (stop.requested = true)) };
      return run(2, { update, stop, reporter, checkpointDir: dir });
    };
    const dir = workdir('ahead');
    const fused = await stopAt('fused', dir);
    expect([fused.stoppedBy, fused.steps]).toEqual(['interrupted', 8]);
    expect(basename(listCheckpoints(dir).at(-1)!)).toBe('ckpt-000000008.safetensors');
    const here = await stopAt('coordinator', workdir('ahead'));
    expect([here.stoppedBy, here.steps]).toEqual(['interrupted', 7]);
    const resumed = await run(2, { checkpointDir: dir, resume: true });
    expect(resumed.steps).toBe(whole.steps);
    expect(sameBits(resumed.params, whole.params)).toBe(true);
  });
});

describe('evaluation on the pool', () => {
  it('2 and 3 threads evaluate as the coordinator does: same accuracy and confusion, loss to 1e-12', async () => {
    const c = config({ epochs: 1 });
    for (const workers of [2, 3]) {
      const r = await train({ config: c, workers, kernels: 'ts', reporter: silentReporter(), data });
      const layout = paramLayout(c.model);
      const arena = createArena(c.model, { shards: 1, maxRows: 16, stateVectors: 0 });
      arena.params.set(r.params);
      const model = { spec: c.model, layout, kernels: createKernels('ts', arena.memory, arena.workspaces[0].scratch) };
      const here = evaluate(model, denseViews(layout, arena.params), arena.workspaces[0], 16, data.test);
      expect(r.final).not.toBeNull();
      expect(r.final!.n).toBe(data.test.n);
      expect(r.final!.confusion).toEqual(here.confusion);
      expect(r.final!.accuracy).toBe(here.accuracy);
      expect(Math.abs(r.final!.loss - here.loss) / here.loss, `${workers} threads`).toBeLessThan(1e-12);
    }
  });
});

describe('resume equals never stopped (invariant 5)', () => {
  it('a run stopped after k steps and resumed ends bit-identical', async () => {
    const dir = workdir('resume');
    const whole = await run(2);
    // 200 rows / batch 16 = 13 steps an epoch; stop mid-epoch 2.
    const first = await run(2, { checkpointDir: dir, maxSteps: 17, checkpointEvery: 5 });
    expect(first.stoppedBy).toBe('max-steps');
    expect(listCheckpoints(dir).length).toBe(2); // steps 15 and 17: the last two kept
    const resumed = await run(2, { checkpointDir: dir, resume: true });
    expect(resumed.steps).toBe(whole.steps);
    expect(sameBits(resumed.params, whole.params)).toBe(true);
  });

  it('a truncated checkpoint is refused with a warning and the previous one is used', async () => {
    const dir = workdir('trunc');
    const whole = await run(2);
    await run(2, { checkpointDir: dir, maxSteps: 20, checkpointEvery: 10 });
    const files = listCheckpoints(dir);
    expect(files.map((f) => basename(f))).toEqual(['ckpt-000000010.safetensors', 'ckpt-000000020.safetensors']);
    const newest = files[1];
    const bytes = readFileSync(newest);
    writeFileSync(newest, bytes.subarray(0, bytes.length - 100));
    const reporter = silentReporter();
    const resumed = await run(2, { checkpointDir: dir, resume: true, reporter });
    expect(reporter.lines.some((l) => /warning: skipping checkpoint .*ckpt-000000020.* runs past/.test(l))).toBe(true);
    expect(reporter.lines.some((l) => /resuming from .*ckpt-000000010.safetensors at step 10/.test(l))).toBe(true);
    expect(sameBits(resumed.params, whole.params)).toBe(true);
  });

  it('a checkpoint with flipped bytes fails its checksum', async () => {
    const dir = workdir('flip');
    await run(1, { checkpointDir: dir, maxSteps: 10, checkpointEvery: 5 });
    const newest = listCheckpoints(dir)[1];
    const bytes = readFileSync(newest);
    bytes[bytes.length - 7] ^= 0xff;
    writeFileSync(newest, bytes);
    const reporter = silentReporter();
    await run(1, { checkpointDir: dir, resume: true, reporter, maxSteps: 11 });
    expect(reporter.lines.some((l) => /ckpt-000000010.safetensors: checksum mismatch/.test(l))).toBe(true);
    expect(reporter.lines.some((l) => /resuming from .*ckpt-000000005/.test(l))).toBe(true);
  });
});

describe('Adam through the pool', () => {
  it('trains with Adam the same on 1 and 2 threads', async () => {
    const c = config({ optimizer: { name: 'adam', lr: 0.01 } });
    const a = await train({ config: c, workers: 1, kernels: 'ts', reporter: silentReporter(), data, skipEval: true, maxSteps: 30 });
    const b = await train({ config: c, workers: 2, kernels: 'ts', reporter: silentReporter(), data, skipEval: true, maxSteps: 30 });
    expect(relDiff(b.params, a.params)).toBeLessThan(1e-4);
  });
});
