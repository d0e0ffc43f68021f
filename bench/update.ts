// npm run bench:update — where should a step's reduce + optimizer update run? Interleaved in one
// process, rounds of the trainer (MNIST MLP, SGD with momentum) with the update on the coordinator
// thread (whole vector, in place), on the pool's threads in a second Piscina round (one slice per
// thread), and fused into the shard tasks (each thread updates its slice once all shards are
// summed), at 1 and 2 threads, batch 128 and 512. Medians of step time, update time, samples/s.

import { join } from 'node:path';
import { parseConfig, readConfigFile } from '../src/core/config.js';
import { DEFAULT_CONFIG, PACKAGE_ROOT } from '../src/core/io/package-files.js';
import { fmt, median, table } from '../src/coordinator/bench/stats.js';
import { train, type StepRecord } from '../src/coordinator/train/trainer.js';
import { periodReporter } from './step-periods.js';

const STEPS = 40;
const WARMUP = 8;
const ROUNDS = 5;
const BATCHES = [128, 512];
const THREADS = [1, 2];
const WHERE = ['coordinator', 'threads', 'fused'] as const;

async function measure(batch: number, workers: number, update: (typeof WHERE)[number]): Promise<{ stepMs: number; updateMs: number }> {
  const config = parseConfig(readConfigFile(DEFAULT_CONFIG), DEFAULT_CONFIG, join(PACKAGE_ROOT, 'config'), [
    { path: 'training.batchSize', value: batch, flag: '--batch' },
  ]);
  const steps: StepRecord[] = [];
  await train({
    config, workers, kernels: 'wasm', update, maxSteps: WARMUP + STEPS, skipEval: true,
    reporter: periodReporter(steps),
  });
  const kept = steps.slice(WARMUP);
  return { stepMs: median(kept.map((r) => r.stepMs)), updateMs: median(kept.map((r) => r.updateMs)) };
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
