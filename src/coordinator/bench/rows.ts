// What a scaling row is and how it is measured, for `dptrain bench scaling` and `npm run
// bench:scaling` alike: which steps count, the step time, the medians of a step's parts, the row.

import type { KernelChoice } from '../../core/kernels/index.js';
import type { Config } from '../../core/config.js';
import { train, type Reporter, type StepRecord, type TrainOptions } from '../train/trainer.js';
import type { LinkMode } from './net/fleet.js';
import { median } from './stats.js';

/** One row to run: a local pool of `threads` (nodes 0), or `nodes` worker nodes of `threads` each. */
export interface Combo {
  readonly batch: number;
  readonly threads: number;
  readonly nodes: number;
  /** True for the 1-thread local row run only because speedups and the model need it. */
  readonly baselineOnly: boolean;
}

/**
 * Medians over the counted steps. The step time is the trainer's StepRecord.stepMs: a step's
 * period (for a step posted with the one before, it runs from that one's end).
 */
export interface StepTimes {
  readonly steps: number;
  readonly stepMs: number;
  /** The slowest shard's forward + backward (a node's: its whole reported compute). */
  readonly computeMs: number;
  /** step − slowest compute − update: communication on node rows, dispatch + waiting on local rows. */
  readonly commMs: number;
  /** Reduce of the gradient slots + optimizer update. */
  readonly updateMs: number;
  /** step − update: the pool's (or the nodes') part of the step. */
  readonly poolMs: number;
}

export interface Measured extends StepTimes {
  readonly combo: Combo;
  /** Per node per step, medians (node rows only). */
  readonly bytesSent: number | null;
  readonly bytesReceived: number | null;
  readonly pids: readonly number[];
}

export interface ScalingRow {
  readonly kind: 'local' | 'nodes';
  readonly batch: number;
  /** Threads of the local pool, or of each node. */
  readonly threads: number;
  readonly nodes: number;
  /** Compute threads in all: threads, or nodes × threads. */
  readonly workers: number;
  readonly link: 'threads' | LinkMode;
  readonly baselineOnly: boolean;
  readonly measuredSteps: number;
  readonly stepMs: number;
  readonly computeMs: number;
  readonly commMs: number;
  readonly updateMs: number;
  readonly samplesPerSec: number;
  /** Over the 1-thread local row of the same batch. */
  readonly speedup: number;
  /** speedup / workers. */
  readonly efficiency: number;
  /** Per node per step: coordinator → node and node → coordinator (WebSocket payload bytes). */
  readonly bytesSentPerNodeStep: number | null;
  readonly bytesReceivedPerNodeStep: number | null;
  readonly predictedStepMs: number | null;
  /** The prediction's parts, to compare with computeMs and commMs where it misses. */
  readonly predictedComputeMs: number | null;
  readonly predictedCommMs: number | null;
  /** (predicted − measured) / measured, percent. */
  readonly predictionErrorPct: number | null;
  readonly nodePids: readonly number[];
}

/** The scale-out model's prediction for a node row, in ms. */
export interface Prediction {
  readonly stepMs: number;
  readonly computeMs: number;
  readonly commMs: number;
}

/**
 * Indices of the steps that count: after the warm-up (at least the first step, which waits for
 * nodes and starts pools), full batches only (an epoch's short last batch would skew the medians).
 */
export function fullBatches(steps: readonly StepRecord[], warmup: number, batch: number): number[] {
  return steps.map((_, i) => i).filter((i) => i >= Math.max(1, warmup) && steps[i].rows === batch);
}

export function stepTimes(steps: readonly StepRecord[]): StepTimes {
  const slowest = (s: StepRecord): number => Math.max(...s.shards.map((x) => x.computeMs));
  const med = (f: (s: StepRecord) => number): number => median(steps.map(f));
  return {
    steps: steps.length,
    stepMs: med((s) => s.stepMs),
    computeMs: med(slowest),
    commMs: med((s) => s.stepMs - slowest(s) - s.updateMs),
    updateMs: med((s) => s.updateMs),
    poolMs: med((s) => s.stepMs - s.updateMs),
  };
}

/** A reporter that prints nothing and keeps every step's record. */
export function stepCollector(steps: StepRecord[], on: { start?: Reporter['start']; step?: (r: StepRecord) => void } = {}): Reporter {
  return {
    start: (info) => on.start?.(info),
    step(r) {
      steps.push(r);
      on.step?.(r);
    },
    epoch() {},
    log() {},
    close() {},
  };
}

export interface LocalSteps {
  readonly config: Config;
  readonly threads: number;
  readonly kernels: KernelChoice;
  /** Steps run in all: the warm-up and the measured ones. */
  readonly maxSteps: number;
  readonly stop?: { requested: boolean };
  readonly start?: Reporter['start'];
  /** Where the reduce + update runs (the trainer's default when absent). */
  readonly update?: TrainOptions['update'];
}

/** Trains on a local pool of `threads` with static balance and returns every step's record. */
export async function runLocalSteps(o: LocalSteps): Promise<StepRecord[]> {
  const steps: StepRecord[] = [];
  await train({
    config: o.config, workers: o.threads, kernels: o.kernels, maxSteps: o.maxSteps, skipEval: true,
    balance: 'static', stop: o.stop, update: o.update, reporter: stepCollector(steps, { start: o.start }),
  });
  return steps;
}

/** A measured row with its speedup over `baseStepMs` (the batch's 1-thread local row). */
export function scalingRow(m: Measured, baseStepMs: number, link: LinkMode, predicted: Prediction | null): ScalingRow {
  const c = m.combo;
  const workers = c.threads * Math.max(1, c.nodes);
  const speedup = baseStepMs / m.stepMs;
  return {
    kind: c.nodes === 0 ? 'local' : 'nodes',
    batch: c.batch, threads: c.threads, nodes: c.nodes, workers,
    link: c.nodes === 0 ? 'threads' : link,
    baselineOnly: c.baselineOnly,
    measuredSteps: m.steps,
    stepMs: m.stepMs, computeMs: m.computeMs, commMs: m.commMs, updateMs: m.updateMs,
    samplesPerSec: (1000 * c.batch) / m.stepMs,
    speedup, efficiency: speedup / workers,
    bytesSentPerNodeStep: m.bytesSent, bytesReceivedPerNodeStep: m.bytesReceived,
    predictedStepMs: predicted?.stepMs ?? null,
    predictedComputeMs: predicted?.computeMs ?? null,
    predictedCommMs: predicted?.commMs ?? null,
    predictionErrorPct: predicted ? (100 * (predicted.stepMs - m.stepMs)) / m.stepMs : null,
    nodePids: m.pids,
  };
}
