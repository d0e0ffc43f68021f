// What a scaling row is and how it is measured, for `dptrain bench scaling` and `npm run
// bench:scaling` alike: which steps count, the step time, the medians of a step's parts, the row.

import type { KernelChoice } from '../../core/kernels/index.js';
import type { Config } from '../../core/config.js';
import { train, type Reporter, type StepRecord, type TrainOptions } from '../train/trainer.js';
import type { LinkMode } from './net/fleet.js';
import { median } from './stats.js';

/**
 * Strong scaling: the swept batch is the global minibatch, split over the workers. Weak scaling: it
 * is each worker's, and the global minibatch is that × the workers.
 */
export type Scaling = 'strong' | 'weak';

/** One row to run: a local pool of `threads` (nodes 0), or `nodes` worker nodes of `threads` each. */
export interface Combo {
  readonly scaling: Scaling;
  /** The --batch value the row belongs to: the global batch (strong) or each worker's (weak). */
  readonly sweepBatch: number;
  /** Samples per step, all workers together. */
  readonly batch: number;
  readonly threads: number;
  readonly nodes: number;
  /** True for the 1-thread local row run only because speedups and the model need it. */
  readonly baselineOnly: boolean;
  /** Node rows: the nodes form a reduction tree with this fan-out (absent: the star). */
  readonly fanout?: number;
}

/** The row of `threads` local threads or `nodes` × `threads` node threads in a sweep. */
export function combo(scaling: Scaling, sweepBatch: number, threads: number, nodes: number, baselineOnly = false): Combo {
  const workers = threads * Math.max(1, nodes);
  return { scaling, sweepBatch, batch: scaling === 'weak' ? sweepBatch * workers : sweepBatch, threads, nodes, baselineOnly };
}

/**
 * Node rows of `--emulate-compute`: each node waits `msPerSample` × `dilation` per sample instead of
 * computing, behind links `dilation` times slower; the row's times are divided by `dilation`.
 */
export interface Emulation {
  /** The real compute per sample it stands for (the 1-thread local row's). */
  readonly msPerSample: number;
  readonly dilation: number;
}

/**
 * Medians over the counted steps. The step time is the trainer's StepRecord.stepMs: a step's
 * period (for a step posted with the one before, it runs from that one's end).
 */
export interface StepTimes {
  readonly steps: number;
  readonly stepMs: number;
  /** The slowest shard's forward + backward (a node's: from its first layer's weights in to its last gradient). */
  readonly computeMs: number;
  /** step − slowest compute − update: communication not hidden on node rows, dispatch + waiting on local rows. */
  readonly commMs: number;
  /** Node rows: link transfers that ran during the nodes' compute (weights landing, sums leaving). */
  readonly hiddenMs: number;
  /** Reduce of the gradient slots + optimizer update. */
  readonly updateMs: number;
  /** step − update: the pool's (or the nodes') part of the step. */
  readonly poolMs: number;
}

export interface Measured extends StepTimes {
  readonly combo: Combo;
  /** Times here are as measured, undilated; null: real compute. */
  readonly emulation: Emulation | null;
  /** Per node per step, medians (node rows only). */
  readonly bytesSent: number | null;
  readonly bytesReceived: number | null;
  /** Emulated links: the most any one link (between two peers) carried in one direction per step. */
  readonly maxLinkBytes: number | null;
  readonly pids: readonly number[];
}

export interface ScalingRow {
  readonly kind: 'local' | 'nodes';
  readonly scaling: Scaling;
  /** Samples per step, all workers together. */
  readonly batch: number;
  /** The --batch value of its sweep: the global batch (strong) or each worker's (weak). */
  readonly sweepBatch: number;
  /** 'emulated': the nodes waited the measured compute time and sent made-up gradients (benchmark only). */
  readonly compute: 'real' | 'emulated';
  /** What each emulated node waited per sample, undilated; null for real compute. */
  readonly emulatedMsPerSample: number | null;
  /** Time dilation: times below are the measured ones ÷ this (1: none). */
  readonly dilation: number;
  /** The step as the clock measured it (stepMs × dilation). */
  readonly wallStepMs: number;
  /** Threads of the local pool, or of each node. */
  readonly threads: number;
  readonly nodes: number;
  /** The reduction tree's fan-out (train --fanout); null: the star. */
  readonly fanout: number | null;
  /** Compute threads in all: threads, or nodes × threads. */
  readonly workers: number;
  readonly link: 'threads' | LinkMode;
  readonly baselineOnly: boolean;
  readonly measuredSteps: number;
  readonly stepMs: number;
  readonly computeMs: number;
  readonly commMs: number;
  /** Node rows: link transfers that overlapped the nodes' compute (layer-streamed), the most of any node. */
  readonly hiddenMs: number;
  readonly updateMs: number;
  readonly samplesPerSec: number;
  /** samples/s over the 1-thread local row of its sweep (for strong scaling the step time ratio). */
  readonly speedup: number;
  /** speedup / workers: for weak scaling, samples/s ÷ (workers × one worker's samples/s at its batch). */
  readonly efficiency: number;
  /** Per node per step: coordinator → node and node → coordinator (WebSocket payload bytes). */
  readonly bytesSentPerNodeStep: number | null;
  readonly bytesReceivedPerNodeStep: number | null;
  /** Emulated links only: the most any one link, the coordinator's or one between nodes, carried one way per step. */
  readonly maxLinkBytesPerStep: number | null;
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
    hiddenMs: med((s) => Math.max(0, ...s.shards.map((x) => x.hiddenMs ?? 0))),
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

/**
 * A measured row, its times divided by its dilation, with its speedup over `baseSamplesPerSec` (the
 * sweep's 1-thread local row). `predicted` is already in the row's (dilated) time.
 */
export function scalingRow(m: Measured, baseSamplesPerSec: number, link: LinkMode, predicted: Prediction | null): ScalingRow {
  const c = m.combo;
  const workers = c.threads * Math.max(1, c.nodes);
  const d = m.emulation?.dilation ?? 1;
  const stepMs = m.stepMs / d;
  const samplesPerSec = (1000 * c.batch) / stepMs;
  const speedup = samplesPerSec / baseSamplesPerSec;
  return {
    kind: c.nodes === 0 ? 'local' : 'nodes',
    scaling: c.scaling, batch: c.batch, sweepBatch: c.sweepBatch,
    compute: m.emulation ? 'emulated' : 'real', emulatedMsPerSample: m.emulation?.msPerSample ?? null, dilation: d, wallStepMs: m.stepMs,
    threads: c.threads, nodes: c.nodes, fanout: c.fanout ?? null, workers,
    link: c.nodes === 0 ? 'threads' : link,
    baselineOnly: c.baselineOnly,
    measuredSteps: m.steps,
    stepMs, computeMs: m.computeMs / d, commMs: m.commMs / d, hiddenMs: m.hiddenMs / d, updateMs: m.updateMs / d,
    samplesPerSec,
    speedup, efficiency: speedup / workers,
    bytesSentPerNodeStep: m.bytesSent, bytesReceivedPerNodeStep: m.bytesReceived, maxLinkBytesPerStep: m.maxLinkBytes,
    predictedStepMs: predicted?.stepMs ?? null,
    predictedComputeMs: predicted?.computeMs ?? null,
    predictedCommMs: predicted?.commMs ?? null,
    predictionErrorPct: predicted ? (100 * (predicted.stepMs - stepMs)) / stepMs : null,
    nodePids: m.pids,
  };
}
