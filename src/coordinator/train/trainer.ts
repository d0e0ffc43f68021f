// The training loop: the seeded epoch permutation, minibatches cut into shards, the executor's
// gradient sums reduced in shard order and divided once by the batch size, the optimizer step,
// evaluation, stop criteria, checkpoints and weights files. It owns the arena; the executor only
// fills gradient slots.

import { createArena } from '../../core/arena.js';
import type { DataSplit } from '../../core/data/types.js';
import { evaluate, type EvalResult } from '../../core/eval.js';
import { initParams } from '../../core/init.js';
import type { KernelChoice } from '../../core/kernels/index.js';
import { RunKernels } from './run-kernels.js';
import { paramLayout, type ParamLayout } from '../../core/layout.js';
import { checkDataFits, denseViews, type Model } from '../../core/model.js';
import { stateVectors } from '../../core/optim.js';
import { Rng, type RngState } from '../../core/rng.js';
import { loadWeights, saveWeights } from '../../core/io/safetensors.js';
import { ioReason } from '../../core/io/atomic-file.js';
import { DptrainError, isDptrainError, writeFailed } from '../../core/errors.js';
import type { FaultHook } from '../../worker/messages.js';
import { loadConfigData, type Config } from '../../core/config.js';
import { describeModel } from '../../core/describe-model.js';
import { modelMetadata, type ModelDescription } from '../../core/io/model-file.js';
import { packHistory, restoreCheckpoint, unpackHistory, writeCheckpoint, type LoopPosition } from './checkpoint.js';
import { findResumeCheckpoint } from './resume.js';
import { runIdentity } from './run-id.js';
import { LocalPool } from '../../worker/pool/local-pool.js';
import { Scheduler, type Balance } from './scheduler.js';
import { StepRunner, type StepResult, type UpdatePlacement } from './step.js';
import type { EpochRecord, RemoteAttachment, Reporter, RunContext, StopReason } from './records.js';
import { DEFAULT_MAX_GRAD_RATIO, GradientGuard } from './gradient-guard.js';
import { ReductionTree } from '../remote/tree.js';

export type { EpochRecord, NodeStatus, RemoteAttachment, Reporter, RunContext, StepRecord, StopReason } from './records.js';

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
  /** Rejects (with an INTERRUPTED error) to end a wait for executors, e.g. on SIGINT. */
  readonly stopWaiting?: Promise<never>;
  /** Stop after this many steps in total (tests, benchmarks). */
  readonly maxSteps?: number;
  /** Skip evaluation at the end of each epoch (benchmarks). */
  readonly skipEval?: boolean;
  readonly fault?: FaultHook;
  /** A prepared data split (tests), instead of loading config.data. */
  readonly data?: DataSplit;
  /** Shard sizes: proportional to threads (`static`, the default) or to measured speed. */
  readonly balance?: Balance;
  /**
   * Where the reduce + update runs: 'fused' into the shard tasks (the default with threads),
   * 'threads' (a second round of slice tasks) or 'coordinator' (this thread; the default without).
   */
  readonly update?: UpdatePlacement;
  /** Landing slots reserved for remote nodes. */
  readonly maxNodes?: number;
  /**
   * Remote nodes form a reduction tree and the coordinator sends each step to at most this many
   * of them (`--fanout`); absent: every node answers the coordinator (the star).
   */
  readonly fanout?: number;
  /** Node drops within one step before the run gives up. */
  readonly maxNodeFailures?: number;
  /**
   * A remote shard whose per-row gradient norm exceeds this many times the step's other shards'
   * and the recent steps' median drops its node (default DEFAULT_MAX_GRAD_RATIO; 0: off).
   */
  readonly maxGradRatio?: number;
  /** Executors (the local pool counts as one) to wait for before the first step. */
  readonly minExecutors?: number;
  /** Starts accepting remote nodes into the run's scheduler; closed at the end of the run. */
  readonly attachRemote?: (run: RunContext) => Promise<RemoteAttachment>;
}

export interface TrainResult {
  readonly params: Float32Array;
  readonly steps: number;
  /** Every finished epoch of the run, those before a resume included (restored from the checkpoint). */
  readonly history: readonly EpochRecord[];
  readonly stoppedBy: StopReason;
  readonly checkpoint: string | null;
  readonly final: EvalResult | null;
  /** What the weights files of the run say about the model. */
  readonly description: ModelDescription;
}

// A separate stream from weight init, so changing one does not shift the other.
const SHUFFLE_SALT = 0x5eed5eed;

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { config, reporter } = opts;
  const spec = config.model;
  const { batchSize, epochs, shuffle, seed } = config.training;
  if (!(Number.isInteger(opts.workers) && opts.workers >= (opts.attachRemote ? 0 : 1)))
    throw new DptrainError('CONFIG_INVALID', `--workers: expected a whole number ≥ ${opts.attachRemote ? 0 : 1}, got ${opts.workers}`);
  const data = opts.data ?? loadConfigData(config);
  // Without test rows there is no accuracy, and the run would never stop on it.
  if (config.training.targetAccuracy !== undefined && data.test.n === 0)
    throw new DptrainError('CONFIG_INVALID', 'training.targetAccuracy (--target-accuracy): needs a test split, and the data has none (data.test is 0)');
  checkDataFits(spec, data.train);
  checkDataFits(spec, data.test);
  // Every file the run writes describes its model, so eval and predict need no config.
  const description = describeModel(config, data.train, opts.data === undefined);
  const describing = modelMetadata(description);

  const layout = paramLayout(spec);
  const threads = opts.workers;
  const slots = slotPlan(threads, opts.maxNodes ?? 0, opts.fanout !== undefined);
  // Every shard is computed in chunks of this many rows, wherever it runs (part of the recipe).
  const chunkRows = Math.max(1, Math.ceil(batchSize / Math.max(1, threads)));
  const arena = withBatchContext(() => createArena(spec, { shards: slots.count, maxRows: chunkRows, stateVectors: stateVectors(config.optimizer) }), batchSize, data.train.n);
  const own = arena.workspaces[slots.own];
  // A reduction tree's blocks reduce as their sum beside -0s (see Scheduler's reduceSlots).
  if (slots.zero !== undefined) arena.slots[slots.zero].fill(-0);
  // Resolved here: the threads get the concrete backend (the native paths differ in their bits).
  const runKernels = new RunKernels(opts.kernels, arena.memory, own.scratch, (l) => reporter.log(l));
  const model: Model = { spec, layout, get kernels() { return runKernels.kernels; } };

  const nTrain = data.train.n;
  const order = new Int32Array(new SharedArrayBuffer(nTrain * 4));
  const batches = Math.ceil(nTrain / batchSize);

  let position: LoopPosition = { step: 0, epoch: 0, batch: 0, epochRng: new Rng(seed ^ SHUFFLE_SALT).state(), epochLossSum: 0, epochCount: 0 };
  const run = runIdentity(config);
  const resumed = opts.resume && opts.checkpointDir ? findResumeCheckpoint(opts.checkpointDir, run, config.raw.training, (l) => reporter.log(l)) : null;
  const history: EpochRecord[] = [];
  if (resumed) {
    restoreCheckpoint(resumed, layout, arena.params, arena.state);
    position = resumed.meta;
    history.push(...unpackHistory(resumed.meta.history, data.test.n));
  } else {
    if (opts.resume) reporter.log(`no checkpoint of this run (${run.name}, run id ${run.id}) in ${opts.checkpointDir ?? '(no --checkpoint-dir)'}: starting fresh`);
    if (opts.initWeights) loadWeights(opts.initWeights, layout, arena.params);
    else initParams(arena.params, layout, config.init, seed);
  }

  const maxGradRatio = opts.maxGradRatio ?? DEFAULT_MAX_GRAD_RATIO;
  if (!(maxGradRatio === 0 || maxGradRatio > 1)) throw new DptrainError('CONFIG_INVALID', `--max-grad-ratio: expected 0 (off) or a number above 1, got ${maxGradRatio}`);
  const scheduler = new Scheduler({
    balance: opts.balance ?? 'static', log: (l) => reporter.log(l), maxFailuresPerStep: opts.maxNodeFailures ?? 10,
    minMembers: opts.minExecutors, stopWaiting: opts.stopWaiting, firstStep: position.step + 1,
    // Only a run that takes remote nodes judges gradients; it watches every step from the first.
    guard: maxGradRatio > 0 && opts.attachRemote ? new GradientGuard(maxGradRatio, arena.slots) : undefined,
    tree: opts.fanout !== undefined && slots.zero !== undefined ? new ReductionTree(opts.fanout, slots.zero) : undefined,
    // After a step's members are known, before its shards go out: a node that joined may need the
    // whole run on a lower backend; the nodes still on the old one rejoin.
    beforeStep: async (step) => {
      const line = await runKernels.apply(local, step);
      if (!line) return;
      reporter.log(line);
      remote?.kernelsChanged(runKernels.backend);
    },
  });
  const local = threads > 0
    ? new LocalPool({
      threads, arena, kernels: runKernels.kernels, spareSlots: slots.spare,
      init: { memory: arena.memory, layout: arena.layout, spec, kernels: runKernels.backend, train: data.train, test: data.test, order, optimizer: config.optimizer, fault: opts.fault },
      onRetry: (what, attempt, reason) => reporter.log(`warning: ${what} failed (${reason}); re-running it (attempt ${attempt + 1})`),
    })
    : null;
  if (local) scheduler.join(local, slots.local, true);
  // Where the reduce + update runs (npm run bench:update): by default on the threads, fused into the
  // shards' own tasks (DDP-style: each thread, once all shards are summed, updates its slice); with
  // no threads, here.
  const placement = opts.update ?? (local ? 'fused' : 'coordinator');
  if (placement !== 'coordinator' && !local) throw new DptrainError('CONFIG_INVALID', 'the update can only run on worker threads when there are some (--workers ≥ 1)');
  const steps = new StepRunner({ scheduler, local, arena, kernels: runKernels, optimizer: config.optimizer, placement, membershipFixed: !opts.attachRemote });
  const context: RunContext = {
    arena, scheduler, spec, config, data, order, chunkRows, landingSlots: slots.landing, kernels: runKernels, dataInline: opts.data !== undefined,
  };
  let remote: RemoteAttachment | null = null;

  let stoppedBy: StopReason = 'epochs';
  let checkpoint: string | null = resumed?.path ?? null;
  let final: EvalResult | null = null;
  const kept = (): string => (checkpoint ? `the previous checkpoint ${checkpoint} is kept` : 'no earlier checkpoint of this run was written');
  // `checkpoint` is the newest written, so it holds finite weights: checkFinite runs before each write.
  const diverged = (step: number, what: string): DptrainError =>
    new DptrainError('DIVERGED', `step ${step}: ${what}: the run diverged (is the learning rate too high?); stopped without writing these weights; ${
      checkpoint ? `last good checkpoint ${checkpoint} (--resume continues from it)` : 'no checkpoint was written before'}`);
  // Before anything is written from the weights: a file of NaNs would pass for a trained model.
  const checkFinite = (step: number): void => {
    const bad = nonFiniteTensor(layout, arena.params, arena.state);
    if (bad) throw diverged(step, `${bad} holds non-finite values`);
  };
  const saveCheckpoint = (pos: LoopPosition): void => {
    if (!opts.checkpointDir) return;
    checkFinite(pos.step);
    const meta = { version: 1 as const, ...pos, config: config.raw, runId: run.id, configName: run.name, run: run.fields, history: packHistory(history) };
    try {
      checkpoint = writeCheckpoint(opts.checkpointDir, layout, arena.params, arena.state, meta, describing);
    } catch (e) {
      throw writeFailed('the checkpoint of step', `${pos.step} in ${opts.checkpointDir}`, ioReason(e), kept());
    }
  };

  try {
    // Inside the try: if listening fails (a port in use), the pool's threads are still stopped.
    remote = opts.attachRemote ? await opts.attachRemote(context) : null;
    reporter.start({ backend: runKernels.backend, threads, params: layout.size, train: nTrain, test: data.test.n, epochs, batchSize, resumedAt: resumed ? position.step : null });
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
        // Already there (--max-steps 0, or resumed at or past it): no step runs.
        if (opts.maxSteps !== undefined && step >= opts.maxSteps) {
          stoppedBy = 'max-steps';
          break epochs;
        }
        const start = b * batchSize;
        const rows = Math.min(batchSize, nTrain - start);
        // The next step is certain to follow within the epoch unless a stop is due after this one.
        const nextCertain = b + 1 < batches && !opts.stop?.requested && (opts.maxSteps === undefined || step + 2 <= opts.maxSteps);
        const next = nextCertain ? { start: start + rows, rows: Math.min(batchSize, nTrain - start - rows) } : undefined;
        let r: StepResult;
        try {
          r = await steps.run(step + 1, { start, rows }, next);
        } catch (e) {
          // Interrupted while waiting for an executor: the step never ran; keep where we are.
          if (!(opts.stop?.requested && isDptrainError(e) && e.code === 'INTERRUPTED')) throw e;
          stoppedBy = 'interrupted';
          saveCheckpoint({ step, epoch, batch: b, epochRng, epochLossSum: lossSum, epochCount: count });
          break epochs;
        }
        step++;
        // NaN or Inf in the weights reaches the next step's loss; checking that sum costs nothing.
        if (!Number.isFinite(r.lossSum)) throw diverged(step, `the training loss is ${r.lossSum}`);
        lossSum += r.lossSum;
        count += rows;
        samples += rows;
        reporter.step({ ...r.record, epoch, batch: b, batches, loss: lossSum / count, nodes: remote?.status() ?? [] });
        const here: LoopPosition = { step, epoch, batch: b + 1, epochRng, epochLossSum: lossSum, epochCount: count };
        if (opts.checkpointEvery && step % opts.checkpointEvery === 0) saveCheckpoint(here);
        if ((opts.stop?.requested && !steps.postedNext) || (opts.maxSteps !== undefined && step >= opts.maxSteps)) {
          stoppedBy = opts.stop?.requested ? 'interrupted' : 'max-steps';
          saveCheckpoint(here);
          break epochs;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      const trainLoss = lossSum / count;
      // On the pool's threads from two up (the sums of their row ranges merged): same predictions, the
      // loss summed in another grouping.
      const test = opts.skipEval
        ? { loss: NaN, accuracy: null, confusion: null, n: 0 }
        : local && threads >= 2 && data.test.n > 0
          ? await local.evaluate(step, data.test.n)
          : evaluate(model, denseViews(layout, arena.params), own, chunkRows, data.test);
      final = opts.skipEval ? null : test;
      // A NaN a ReLU hides from the loss would otherwise only surface at the next checkpoint.
      checkFinite(step);
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
    if (opts.saveWeights) {
      checkFinite(step);
      try {
        saveWeights(opts.saveWeights, layout, arena.params, { format: 'pt', ...describing });
      } catch (e) {
        throw writeFailed('the weights', opts.saveWeights, ioReason(e), checkpoint ? `they are in the checkpoint ${checkpoint}` : 'they are lost');
      }
    }
    return { params: Float32Array.from(arena.params), steps: step, history, stoppedBy, checkpoint, final, description };
  } finally {
    // A progress bar left running (the step posted ahead of an interrupt draws one) holds the process open.
    reporter.close();
    await remote?.close();
    await local?.close();
  }
}

/**
 * Which arena slot serves what: one per local thread for its shard, as many spares for multi-part
 * shards recomputed locally, one landing slot per remote node, the coordinator's own workspace
 * (evaluation, update scratch), and with a reduction tree a slot of -0s last.
 */
export function slotPlan(threads: number, maxNodes: number, tree = false): { local: number[]; spare: number[]; landing: number[]; own: number; zero?: number; count: number } {
  const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
  const local = range(0, threads);
  const spare = range(threads, threads);
  const landing = range(2 * threads, maxNodes);
  const own = 2 * threads + maxNodes;
  // With a reduction tree, the slot of -0s after the coordinator's own.
  return tree ? { local, spare, landing, own, zero: own + 1, count: own + 2 } : { local, spare, landing, own, count: own + 1 };
}

/** An arena too large for memory, said as the batch size behind it. */
function withBatchContext<T>(make: () => T, batchSize: number, nTrain: number): T {
  try {
    return make();
  } catch (e) {
    if (!(isDptrainError(e) && e.code === 'ARENA_TOO_LARGE')) throw e;
    const rows = batchSize > nTrain ? ` (the training set has ${nTrain} rows)` : '';
    throw new DptrainError('ARENA_TOO_LARGE', `batch size ${batchSize}: ${e.message}; lower --batch-size${rows}`);
  }
}

/** The name of the first tensor (weights or optimizer state) holding a NaN or ±Infinity, or null. */
function nonFiniteTensor(layout: ParamLayout, params: Float32Array, state: readonly Float32Array[]): string | null {
  const bufs: [string, Float32Array][] = [['', params], ...state.map((s, i): [string, Float32Array] => [`optimizer state ${i} of `, s])];
  for (const [prefix, buf] of bufs) {
    for (const t of layout.tensors) {
      const end = t.offset + t.length;
      for (let i = t.offset; i < end; i++) if (!Number.isFinite(buf[i])) return `${prefix}tensor ${t.name}`;
    }
  }
  return null;
}
