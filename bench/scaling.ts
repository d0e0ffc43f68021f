// npm run bench:scaling — local rows of the reference workload for 1..N threads, measured as `dptrain
// bench scaling` measures them (rows.ts), whole CLI runs and TensorFlow.js in the same run.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/core/config.js';
import { PACKAGE_ROOT, DEFAULT_CONFIG } from '../src/core/io/package-files.js';
import type { StepRecord } from '../src/coordinator/train/trainer.js';
import type { KernelChoice } from '../src/core/kernels/index.js';
import { combo, fullBatches, runLocalSteps, scalingRow, stepTimes, type ScalingRow } from '../src/coordinator/bench/rows.js';
import { fmt, table } from '../src/coordinator/bench/stats.js';
import { CLI } from '../src/coordinator/bench/net/fleet.js';
import { tfjsTrainingRow, type TfjsRow } from './tfjs.js';
import { parallelCeiling } from './ceiling.js';

interface Args {
  threads: number[];
  batches: number[];
  steps: number;
  warmup: number;
  kernels: KernelChoice;
  wholeRuns: boolean;
  tfjs: boolean;
  /** Thread counts alternate over this many rounds, so the host's drifting speed hits all alike. */
  rounds: number;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const list = (s: string | undefined, dflt: number[]): number[] => (s ? s.split(',').map(Number) : dflt);
  const cores = availableParallelism();
  return {
    threads: list(get('threads'), Array.from({ length: cores }, (_, i) => i + 1)),
    batches: list(get('batch'), [128, 512]),
    steps: Number(get('steps') ?? 30),
    rounds: Number(get('rounds') ?? 3),
    warmup: Number(get('warmup') ?? 10),
    kernels: (get('kernels') ?? 'auto') as KernelChoice,
    wholeRuns: !argv.includes('--no-whole-runs'),
    tfjs: !argv.includes('--no-tfjs'),
  };
}

/** The counted steps (full batches after the warm-up) of one run with `threads` workers. */
async function measureSteps(threads: number, batch: number, a: Args): Promise<StepRecord[]> {
  const config = loadConfig(DEFAULT_CONFIG, [
    { path: 'training.batchSize', value: batch, flag: '--batch' },
    { path: 'training.epochs', value: 1000, flag: '--epochs' },
  ]);
  const steps = await runLocalSteps({ config, threads, kernels: a.kernels, maxSteps: a.warmup + a.steps });
  return fullBatches(steps, a.warmup, batch).map((i) => steps[i]);
}

/** A local row from the counted steps of every round. */
function localRow(threads: number, batch: number, steps: readonly StepRecord[], baseStepMs: number): ScalingRow {
  const m = { combo: combo('strong', batch, threads, 0), emulation: null, ...stepTimes(steps), bytesSent: null, bytesReceived: null, maxLinkBytes: null, pids: [] };
  return scalingRow(m, (1000 * batch) / baseStepMs, 'loopback', null);
}

interface WholeRun {
  readonly threads: number;
  readonly seconds: number;
  readonly samplesPerSec: number;
  readonly peakRssMb: number;
  readonly testAccuracy: number;
}

/** `dptrain train` as a user runs it: the default job (the shipped MNIST config), start-up, evaluation and checkpoints included. */
function wholeRun(threads: number, kernels: KernelChoice): WholeRun {
  const dir = join(tmpdir(), `dptrain-bench-${process.pid}-${threads}`);
  const config = loadConfig(DEFAULT_CONFIG);
  const samples = config.training.epochs * 8000;
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, 'train', '--workers', String(threads), '--kernels', kernels, '--checkpoint-dir', dir], { encoding: 'utf8' });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`dptrain train failed: ${r.stderr}`);
  const rss = /peak memory (\d+) MB/.exec(r.stdout);
  const acc = /test accuracy ([\d.]+)%/.exec(r.stdout);
  return { threads, seconds, samplesPerSec: samples / seconds, peakRssMb: rss ? Number(rss[1]) : NaN, testAccuracy: acc ? Number(acc[1]) : NaN };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const rows: ScalingRow[] = [];
  for (const batch of a.batches) {
    const records = new Map<number, StepRecord[]>(a.threads.map((t) => [t, []]));
    for (let round = 0; round < a.rounds; round++)
      for (const threads of a.threads) records.get(threads)!.push(...(await measureSteps(threads, batch, a)));
    const base = records.get(1)?.length ? stepTimes(records.get(1)!).stepMs : NaN;
    for (const threads of a.threads) rows.push(localRow(threads, batch, records.get(threads)!, base));
  }
  const ceiling = await parallelCeiling();
  console.log(`\ndptrain step throughput (median of ${a.rounds} rounds × ${a.steps} steps, each after ${a.warmup} warm-up steps, thread counts alternating; kernels ${a.kernels})`);
  console.log(table(
    ['batch', 'threads', 'samples/s', 'speedup', 'efficiency', 'step ms', 'fwd+bwd ms', 'dispatch ms', 'update ms', 'outside'],
    rows.map((r) => [String(r.batch), String(r.threads), fmt(r.samplesPerSec), fmt(r.speedup, 2), `${fmt(100 * r.efficiency, 1)}%`, fmt(r.stepMs, 2), fmt(r.computeMs, 2), fmt(r.commMs, 3), fmt(r.updateMs, 3), `${fmt((100 * (r.stepMs - r.computeMs)) / r.stepMs, 1)}%`]),
  ));

  console.log(`\nthis machine's own 2-thread ceiling, measured after the rows: the 128×784×512 wasm GEMM in 1 thread ${fmt(ceiling.one, 1)} GFLOP/s, in 2 independent threads ${fmt(ceiling.two, 1)} GFLOP/s together (${fmt(ceiling.two / ceiling.one, 2)}×)`);

  const whole: WholeRun[] = [];
  if (a.wholeRuns) {
    for (const threads of a.threads) whole.push(wholeRun(threads, a.kernels));
    const t1 = whole[0].seconds;
    console.log('\nwhole `dptrain train` runs: the default job (config/mnist-mlp.json: 10 epochs of 8000 digits, batch 128), start-up, data loading, evaluation after each epoch and checkpoints included');
    console.log(table(
      ['threads', 'seconds', 'samples/s', 'speedup', 'efficiency', 'peak RSS MB', 'test acc'],
      whole.map((w) => [String(w.threads), fmt(w.seconds, 2), fmt(w.samplesPerSec), fmt(t1 / w.seconds, 2), `${fmt((100 * t1) / w.seconds / w.threads, 1)}%`, fmt(w.peakRssMb), `${fmt(w.testAccuracy, 2)}%`]),
    ));
  }

  const peers: TfjsRow[] = [];
  if (a.tfjs) {
    for (const batch of a.batches) peers.push(await tfjsTrainingRow('wasm', batch, 8));
    peers.push(await tfjsTrainingRow('cpu', 128, 3));
    console.log('\nTensorFlow.js 4.22 in the same run (single-threaded in Node)');
    console.log(table(
      ['backend', 'batch', 'samples/s', 'dptrain best at this batch', 'ratio'],
      peers.map((p) => {
        const best = Math.max(...rows.filter((r) => r.batch === p.batch).map((r) => r.samplesPerSec));
        return [p.backend, String(p.batch), fmt(p.samplesPerSec), fmt(best), `${fmt(best / p.samplesPerSec, 1)}×`];
      }),
    ));
  }
  const out = join(PACKAGE_ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'scaling.json'), JSON.stringify({ date: new Date().toISOString(), args: a, rows, ceiling, whole, tfjs: peers }, null, 2));
  console.log(`\nwritten: ${join(out, 'scaling.json')}`);
}

await main();
