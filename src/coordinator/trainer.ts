// The training loop: the seeded epoch permutation, minibatches cut into shards, the executor's
// gradient sums reduced in shard order and divided once by the batch size, the optimizer step,
// evaluation, stop criteria, checkpoints and weights files. It owns the arena; the executor only
// fills gradient slots.

import { createArena, type ArenaViews } from '../core/arena.js';
import { loadData } from '../core/data/index.js';
import type { DataSplit } from '../core/data/types.js';
import { evaluate, type EvalResult } from '../core/eval.js';
import { initParams } from '../core/init.js';
import { createKernels, type KernelChoice } from '../core/kernels/index.js';
import type { Kernels } from '../core/kernels/types.js';
import { paramLayout } from '../core/layout.js';
import { checkDataFits, denseViews, type Model } from '../core/model.js';
import { optimizerStep, stateVectors } from '../core/optim.js';
import { Rng, type RngState } from '../core/rng.js';
import { loadWeights, saveWeights } from '../core/safetensors.js';
import { DptrainError } from '../core/errors.js';
import type { FaultHook } from '../worker/messages.js';
import type { Config } from './config.js';
import { newestCheckpoint, restoreCheckpoint, writeCheckpoint, type LoopPosition } from './checkpoint.js';
import type { Executor, ShardOutcome } from './executor.js';
import { LocalPool } from './local-pool.js';
import { partition, shardRanges } from './partition.js';

export interface EpochRecord {
  readonly epoch: number;
  readonly step: number;
  readonly trainLoss: number;
  readonly test: EvalResult;
  readonly samplesPerSec: number;
  readonly seconds: number;
  /** True for the last epoch of the run (a stop criterion was met or the epochs are done). */
  readonly stopping: boolean;
}

export interface StepRecord {
  readonly step: number;
  readonly epoch: number;
  readonly batch: number;
  readonly batches: number;
  readonly rows: number;
  readonly loss: number;
  readonly stepMs: number;
  /** Per shard, in shard order: who computed it and how long its forward + backward took. */
  readonly shards: readonly { readonly by: string; readonly rows: number; readonly computeMs: number }[];
  /** Reduction of the slots plus the optimizer update. */
  readonly updateMs: number;
}

export interface Reporter {
  start(info: { backend: string; threads: number; params: number; train: number; test: number; epochs: number; batchSize: number; resumedAt: number | null }): void;
  step(r: StepRecord): void;
  epoch(r: EpochRecord): void;
  log(line: string): void;
}

export type StopReason = 'epochs' | 'target-loss' | 'target-accuracy' | 'interrupted' | 'max-steps';

export interface TrainOptions {
  readonly config: Config;
  readonly workers: number;
  readonly kernels: KernelChoice;
  readonly reporter: Reporter;
  readonly initWeights?: string;
  readonly saveWeights?: string;
  readonly checkpointDir?: string;
  /** Steps between checkpoints (0: only at the end and on interrupt). */
  readonly checkpointEvery?: number;
  readonly resume?: boolean;
  /** Set to true (e.g. by SIGINT) to stop after the current step with a checkpoint. */
  readonly stop?: { requested: boolean };
  /** Stop after this many steps in total (tests, benchmarks). */
  readonly maxSteps?: number;
  /** Skip evaluation at the end of each epoch (benchmarks). */
  readonly skipEval?: boolean;
  readonly fault?: FaultHook;
  /** A prepared data split (tests), instead of loading config.data. */
  readonly data?: DataSplit;
}

export interface TrainResult {
  readonly params: Float32Array;
  readonly steps: number;
  readonly history: readonly EpochRecord[];
  readonly stoppedBy: StopReason;
  readonly checkpoint: string | null;
  readonly final: EvalResult | null;
}

// A separate stream from weight init, so changing one does not shift the other.
const SHUFFLE_SALT = 0x5eed5eed;

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { config, reporter } = opts;
  const spec = config.model;
  const { batchSize, epochs, shuffle, seed } = config.training;
  if (!(Number.isInteger(opts.workers) && opts.workers >= 1)) throw new DptrainError('CONFIG_INVALID', `--workers: must be a positive integer, got ${opts.workers}`);
  const data = opts.data ?? loadData(config.data, { baseDir: config.baseDir, seed, loss: spec.loss, nOut: spec.layers[spec.layers.length - 1] });
  checkDataFits(spec, data.train);
  checkDataFits(spec, data.test);

  const layout = paramLayout(spec);
  const threads = opts.workers;
  // One workspace per shard, plus one for the coordinator's own evaluation and update scratch.
  const maxRows = Math.max(1, Math.ceil(batchSize / threads));
  const arena = createArena(spec, { shards: threads + 1, maxRows, stateVectors: stateVectors(config.optimizer) });
  const own = arena.workspaces[threads];
  const kernels = createKernels(opts.kernels, arena.memory, own.scratch);
  const model: Model = { spec, layout, kernels };
  const p = denseViews(layout, arena.params);

  const nTrain = data.train.n;
  const order = new Int32Array(new SharedArrayBuffer(nTrain * 4));
  const batches = Math.ceil(nTrain / batchSize);

  let position: LoopPosition = { step: 0, epoch: 0, batch: 0, epochRng: new Rng(seed ^ SHUFFLE_SALT).state(), epochLossSum: 0, epochCount: 0 };
  const resumed = opts.resume && opts.checkpointDir ? newestCheckpoint(opts.checkpointDir, (l) => reporter.log(l)) : null;
  if (resumed) {
    restoreCheckpoint(resumed, layout, arena.params, arena.state);
    position = resumed.meta;
    reporter.log(`resuming from ${resumed.path} at step ${position.step} (epoch ${position.epoch + 1}, batch ${position.batch})`);
  } else {
    if (opts.resume) reporter.log(`no checkpoint in ${opts.checkpointDir ?? '(no --checkpoint-dir)'}: starting fresh`);
    if (opts.initWeights) loadWeights(opts.initWeights, layout, arena.params);
    else initParams(arena.params, layout, config.init, seed);
  }

  const executor: Executor = new LocalPool({
    threads,
    init: { memory: arena.memory, layout: arena.layout, spec, kernels: opts.kernels, train: data.train, order, fault: opts.fault },
    onRetry: (slot, attempt, reason) => reporter.log(`warning: shard ${slot} failed (${reason}); re-running it (attempt ${attempt + 1})`),
  });

  reporter.start({ backend: kernels.name, threads, params: layout.size, train: nTrain, test: data.test.n, epochs, batchSize, resumedAt: resumed ? position.step : null });

  const history: EpochRecord[] = [];
  let stoppedBy: StopReason = 'epochs';
  let checkpoint: string | null = null;
  let final: EvalResult | null = null;
  const saveCheckpoint = (pos: LoopPosition): void => {
    if (!opts.checkpointDir) return;
    checkpoint = writeCheckpoint(opts.checkpointDir, layout, arena.params, arena.state, { version: 1, ...pos, config: config.raw });
  };

  try {
    let { step } = position;
    const rng = new Rng(position.epochRng);
    epochs: for (let epoch = position.epoch; epoch < epochs; epoch++) {
      const epochRng: RngState = rng.state();
      for (let i = 0; i < nTrain; i++) order[i] = i;
      if (shuffle) rng.shuffle(order);
      const resumingHere = epoch === position.epoch;
      let lossSum = resumingHere ? position.epochLossSum : 0;
      let count = resumingHere ? position.epochCount : 0;
      const t0 = performance.now();
      let samples = 0;
      for (let b = resumingHere ? position.batch : 0; b < batches; b++) {
        const start = b * batchSize;
        const rows = Math.min(batchSize, nTrain - start);
        step++;
        const r = await trainStep(executor, arena, kernels, config, step, start, rows, threads);
        lossSum += r.lossSum;
        count += rows;
        samples += rows;
        reporter.step({ ...r.record, epoch, batch: b, batches, loss: lossSum / count });
        const here: LoopPosition = { step, epoch, batch: b + 1, epochRng, epochLossSum: lossSum, epochCount: count };
        if (opts.checkpointEvery && step % opts.checkpointEvery === 0) saveCheckpoint(here);
        if (opts.stop?.requested || (opts.maxSteps !== undefined && step >= opts.maxSteps)) {
          stoppedBy = opts.stop?.requested ? 'interrupted' : 'max-steps';
          saveCheckpoint(here);
          break epochs;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const trainLoss = lossSum / count;
      const test = opts.skipEval ? { loss: NaN, accuracy: null, confusion: null, n: 0 } : evaluate(model, p, own, maxRows, data.test);
      final = opts.skipEval ? null : test;
      if (config.training.targetLoss !== undefined && trainLoss <= config.training.targetLoss) stoppedBy = 'target-loss';
      else if (config.training.targetAccuracy !== undefined && test.accuracy !== null && test.accuracy >= config.training.targetAccuracy) stoppedBy = 'target-accuracy';
      const stopping = stoppedBy !== 'epochs' || epoch === epochs - 1;
      const rec: EpochRecord = { epoch, step, trainLoss, test, samplesPerSec: samples / seconds, seconds, stopping };
      history.push(rec);
      reporter.epoch(rec);
      if (stopping) {
        saveCheckpoint({ step, epoch: epoch + 1, batch: 0, epochRng: rng.state(), epochLossSum: 0, epochCount: 0 });
        break;
      }
    }
    if (opts.saveWeights) saveWeights(opts.saveWeights, layout, arena.params, { format: 'pt' });
    return { params: Float32Array.from(arena.params), steps: step, history, stoppedBy, checkpoint, final };
  } finally {
    await executor.close();
  }
}

/** One optimizer step over rows [start, start + rows) of the epoch order. */
async function trainStep(
  executor: Executor, arena: ArenaViews, kernels: Kernels, config: Config, step: number, start: number, rows: number, threads: number,
): Promise<{ lossSum: number; record: Omit<StepRecord, 'epoch' | 'batch' | 'batches' | 'loss'> }> {
  const t0 = performance.now();
  const sizes = partition(rows, new Array<number>(threads).fill(1));
  const shards = shardRanges(start, sizes)
    .map((r, slot) => ({ slot, ...r }))
    .filter((s) => s.hi > s.lo);
  const outcomes: ShardOutcome[] = await executor.run(step, shards);
  const t1 = performance.now();
  let lossSum = 0;
  for (const o of outcomes) lossSum += o.lossSum;
  // The applied gradient is the mean over the batch: slot sums added in shard order, divided once.
  const slots = shards.map((s) => arena.slots[s.slot]);
  const P = arena.layout.paramCount;
  kernels.sumSlots(arena.grad, slots, 0, P, 1 / rows);
  optimizerStep(kernels, config.optimizer, arena.params, arena.grad, arena.state, 0, P, step);
  const t2 = performance.now();
  return {
    lossSum,
    record: {
      step,
      rows,
      stepMs: t2 - t0,
      shards: outcomes.map((o, i) => ({ by: o.by, rows: shards[i].hi - shards[i].lo, computeMs: o.computeMs })),
      updateMs: t2 - t1,
    },
  };
}
