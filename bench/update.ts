// npm run bench:update — where should a step's reduce + optimizer update run: on the coordinator
// thread, in a second round of slices on the pool, or fused into the shard tasks? Interleaved rounds.

import { loadConfig } from '../src/core/config.js';
import { DEFAULT_CONFIG } from '../src/core/io/package-files.js';
import { fullBatches, runLocalSteps, stepTimes } from '../src/coordinator/bench/rows.js';
import { fmt, median, table } from '../src/coordinator/bench/stats.js';

const STEPS = 40;
const WARMUP = 8;
const ROUNDS = 5;
const BATCHES = [128, 512];
const THREADS = [1, 2];
const WHERE = ['coordinator', 'threads', 'fused'] as const;

async function measure(batch: number, workers: number, update: (typeof WHERE)[number]): Promise<{ stepMs: number; updateMs: number }> {
  const config = loadConfig(DEFAULT_CONFIG, [
    { path: 'training.batchSize', value: batch, flag: '--batch' },
  ]);
  const steps = await runLocalSteps({ config, threads: workers, kernels: 'wasm', update, maxSteps: WARMUP + STEPS });
  const { stepMs, updateMs } = stepTimes(fullBatches(steps, WARMUP, batch).map((i) => steps[i]));
  return { stepMs, updateMs };
}

const key = (b: number, t: number, w: string): string => `${b}/${t}/${w}`;
const runs = new Map<string, { stepMs: number; updateMs: number }[]>();
for (let r = 0; r < ROUNDS; r++)
  for (const b of BATCHES)
    for (const t of THREADS)
      for (const w of WHERE) {
        const k = key(b, t, w);
        runs.set(k, [...(runs.get(k) ?? []), await measure(b, t, w)]);
      }

const rows: string[][] = [];
for (const b of BATCHES)
  for (const t of THREADS) {
    const stepOf = (w: string): number => median(runs.get(key(b, t, w))!.map((x) => x.stepMs));
    for (const w of WHERE) {
      const xs = runs.get(key(b, t, w))!;
      const stepMs = stepOf(w);
      rows.push([String(b), String(t), w, fmt(stepMs, 2), fmt(median(xs.map((x) => x.updateMs)), 2), fmt((1000 * b) / stepMs), fmt(stepOf('coordinator') / stepMs, 3)]);
    }
  }
console.log(`MNIST MLP, SGD momentum 0.9, wasm kernels; medians of ${ROUNDS} interleaved rounds × ${STEPS} steps`);
console.log(table(['batch', 'threads', 'update on', 'step ms', 'update ms', 'samples/s', 'speedup vs coordinator'], rows));
