// npm run bench:pool — is the Piscina pool what limits two threads, or the machine? The trainer's
// pool against bare worker_threads running the same shardGradients, interleaved in one process.

import { Worker } from 'node:worker_threads';
import { arenaLayout, createArenaMemory } from '../src/core/arena.js';
import { loadConfig, loadConfigData } from '../src/core/config.js';
import { DEFAULT_CONFIG } from '../src/core/io/package-files.js';
import { fmt, median, table } from '../src/coordinator/bench/stats.js';
import { train } from '../src/coordinator/train/trainer.js';
import type { ModelSpec } from '../src/core/spec.js';

const BATCH = 128;
const STEPS = 40;
const WARMUP = 8;
const ROUNDS = 3;

const config = loadConfig(DEFAULT_CONFIG, [
  { path: 'training.batchSize', value: BATCH, flag: '--batch' },
]);
const spec: ModelSpec = config.model;
const data = loadConfigData(config).train;

async function pool(threads: number): Promise<number> {
  const stepMs: number[] = [];
  await train({
    config, workers: threads, kernels: 'wasm', maxSteps: WARMUP + STEPS, skipEval: true,
    reporter: { start() {}, epoch() {}, log() {}, close() {}, step: (r) => void stepMs.push(r.stepMs) },
  });
  return (1000 * BATCH) / median(stepMs.slice(WARMUP));
}

async function bare(threads: number): Promise<number> {
  const rows = BATCH / threads;
  const layout = arenaLayout(spec, { shards: threads, maxRows: rows, stateVectors: 0 });
  const memory = createArenaMemory(layout);
  const workers = await Promise.all(
    Array.from({ length: threads }, (_, slot) => new Promise<Worker>((resolve, reject) => {
      const w = new Worker(new URL('./pool-vs-threads-worker.js', import.meta.url), { workerData: { spec, layout, memory, data, slot, rows } });
      w.once('message', () => resolve(w));
      w.once('error', reject);
    })),
  );
  const stepMs: number[] = [];
  for (let s = 0; s < WARMUP + STEPS; s++) {
    const t0 = performance.now();
    const lo = (s * BATCH) % (data.n - BATCH);
    await Promise.all(workers.map((w, i) => new Promise((r) => {
      w.once('message', r);
      w.postMessage(lo + i * rows);
    })));
    stepMs.push(performance.now() - t0);
  }
  await Promise.all(workers.map((w) => w.terminate()));
  return (1000 * BATCH) / median(stepMs.slice(WARMUP));
}

const runs = new Map<string, number[]>();
const record = (name: string, v: number): void => void runs.set(name, [...(runs.get(name) ?? []), v]);
for (let r = 0; r < ROUNDS; r++) {
  record('pool, 1 thread', await pool(1));
  record('pool, 2 threads', await pool(2));
  record('bare threads, 1 × 128 rows', await bare(1));
  record('bare threads, 2 × 64 rows', await bare(2));
}
const m = (name: string): number => median(runs.get(name)!);
console.log(`batch ${BATCH}, medians of ${ROUNDS} interleaved rounds × ${STEPS} steps (samples/s)`);
console.log(table(['configuration', 'samples/s', 'speedup over its 1-thread row'], [
  ['pool, 1 thread', fmt(m('pool, 1 thread')), '1.00'],
  ['pool, 2 threads', fmt(m('pool, 2 threads')), fmt(m('pool, 2 threads') / m('pool, 1 thread'), 2)],
  ['bare threads, 1 × 128 rows', fmt(m('bare threads, 1 × 128 rows')), '1.00'],
  ['bare threads, 2 × 64 rows', fmt(m('bare threads, 2 × 64 rows')), fmt(m('bare threads, 2 × 64 rows') / m('bare threads, 1 × 128 rows'), 2)],
]));
