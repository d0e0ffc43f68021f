// `dptrain train`: flags → validated config → training run → summary line and exit code
// (0 done, 2 bad input, 3 loss or weights became NaN or infinite, 130 interrupted by Ctrl-C after writing a checkpoint).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configError, writeFailed } from '../../core/errors.js';
import { ioReason } from '../../core/io/atomic-file.js';
import type { KernelChoice } from '../../core/kernels/index.js';
import type { FaultHook } from '../../worker/messages.js';
import { loadConfig, parseSetFlag, type Override } from '../../core/config.js';
import { checkThreadCount, defaultThreads } from '../../worker/pool/local-pool.js';
import { createReporter } from '../output/report.js';
import { checkOutputPaths } from '../output/paths.js';
import { runTraining } from '../api/train.js';
import { defaultCheckpointDir, runIdentity } from '../train/run-id.js';
import { readToken } from '../../core/protocol/auth.js';
import type { Balance } from '../train/scheduler.js';

export interface TrainFlags {
  config: string;
  workers?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  shuffle?: boolean;
  set?: string[];
  kernels: KernelChoice;
  initWeights?: string;
  saveWeights?: string;
  /** Default: one folder per run under checkpoints/ (see run-id.ts). */
  checkpointDir?: string;
  checkpointEvery: number;
  resume: boolean;
  metrics?: string;
  metricsEvery: number;
  plot?: string;
  targetLoss?: number;
  targetAccuracy?: number;
  maxSteps?: number;
  quiet: boolean;
  fault?: string;
  listen?: string;
  tokenFile?: string;
  tlsCert?: string;
  tlsKey?: string;
  maxNodes: number;
  fanout?: number;
  stepDeadline: number;
  heartbeat: number;
  wire?: 'f32' | 'bf16';
  maxNodeFailures: number;
  maxGradRatio?: number;
  minNodes: number;
  balance?: Balance;
  dashboard?: string;
}

export const EXIT_INTERRUPTED = 130;

function nonNegativeInt(flag: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!(Number.isInteger(v) && v >= 0)) throw configError(flag, `expected a whole number ≥ 0, got ${v}`);
  return v;
}

function positive(flag: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw configError(flag, `expected a positive number, got ${v}`);
  return v;
}

function parseFault(text: string | undefined): FaultHook | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d+):(\d+):(throw|exit)$/.exec(text);
  if (!m) throw configError('--fault', `expected STEP:SLOT:throw|exit, got ${text}`);
  return { step: Number(m[1]), slot: Number(m[2]), mode: m[3] as FaultHook['mode'] };
}

export function overridesFromFlags(f: TrainFlags): Override[] {
  const o: Override[] = [];
  const add = (flag: string, path: string, value: unknown): void => {
    if (value !== undefined) o.push({ flag, path, value });
  };
  add('--epochs', 'training.epochs', f.epochs);
  add('--batch-size', 'training.batchSize', f.batchSize);
  add('--lr', 'optimizer.lr', f.lr);
  add('--seed', 'training.seed', f.seed);
  add('--shuffle', 'training.shuffle', f.shuffle);
  add('--target-loss', 'training.targetLoss', f.targetLoss);
  add('--target-accuracy', 'training.targetAccuracy', f.targetAccuracy);
  for (const s of f.set ?? []) o.push(parseSetFlag(s));
  return o;
}

export async function runTrain(f: TrainFlags): Promise<number> {
  const config = loadConfig(f.config, overridesFromFlags(f));
  const workers = f.workers ?? defaultThreads();
  const minWorkers = f.listen ? 0 : 1;
  if (!(Number.isInteger(workers) && workers >= minWorkers))
    throw configError('--workers', `expected a whole number ≥ ${minWorkers}${f.listen ? '' : ' (0 only with --listen)'}, got ${f.workers}`);
  const threadWarning = checkThreadCount('--workers', workers);
  const checkpointEvery = nonNegativeInt('--checkpoint-every', f.checkpointEvery) ?? 0;
  const maxSteps = nonNegativeInt('--max-steps', f.maxSteps);
  if (maxSteps === 0) throw configError('--max-steps', 'expected a whole number ≥ 1, got 0');
  const metricsEvery = nonNegativeInt('--metrics-every', f.metricsEvery) || 10;
  // The WebSocket server's module (ws, msgpackr) is loaded only for runs that accept nodes.
  const listen = f.listen ? (await import('../../core/protocol/door.js')).parseListen(f.listen) : null;
  const token = f.tokenFile ? readToken(f.tokenFile) : undefined;
  const maxNodes = nonNegativeInt('--max-nodes', f.maxNodes) ?? 8;
  const stepDeadlineMs = positive('--step-deadline', f.stepDeadline);
  const heartbeatMs = positive('--heartbeat', f.heartbeat);
  const maxNodeFailures = nonNegativeInt('--max-node-failures', f.maxNodeFailures) ?? 10;
  const minNodes = nonNegativeInt('--min-nodes', f.minNodes) ?? 0;
  const fanout = nonNegativeInt('--fanout', f.fanout);
  if (fanout === 0) throw configError('--fanout', 'expected a whole number ≥ 1, got 0');
  if (fanout !== undefined && !f.listen) throw configError('--fanout', 'a reduction tree is among remote nodes: it needs --listen');
  const checkpointDir = f.checkpointDir ?? defaultCheckpointDir(runIdentity(config));
  const base = createReporter({ quiet: f.quiet, tty: process.stdout.isTTY === true, metrics: f.metrics, metricsEvery });
  // Listening before the run: a port in use is a usage error, not a lost run; and before the output
  // folders are made, so a usage error leaves nothing behind.
  const dash = f.dashboard ? await (await import('../output/dashboard/live.js')).openLiveDashboard({ address: f.dashboard, token, config, maxSteps, reporter: base }) : null;
  try {
    checkOutputPaths({ checkpointDir, saveWeights: f.saveWeights, metrics: f.metrics, plot: f.plot });
  } catch (e) {
    await dash?.close();
    throw e;
  }
  if (dash && !f.quiet) process.stderr.write(`dashboard: ${dash.url}\n`);
  const reporter = dash?.reporter ?? base;
  if (threadWarning) reporter.log(threadWarning);
  // Ctrl-C is the library's AbortSignal: the run stops after the current step with a checkpoint.
  const abort = new AbortController();
  const onSigint = (): void => {
    if (abort.signal.aborted) process.exit(EXIT_INTERRUPTED);
    abort.abort();
    reporter.log('interrupt: finishing the current step, then writing a checkpoint (Ctrl-C again to quit at once)');
  };
  process.on('SIGINT', onSigint);
  const t0 = performance.now();
  try {
    const { run: r } = await runTraining(
      {
        config: config.raw, workers, kernels: f.kernels, maxSteps, checkpointEvery, resume: f.resume, signal: abort.signal,
        initWeights: f.initWeights, saveWeights: f.saveWeights, checkpointDir: resolve(checkpointDir),
        listen: listen
          ? { ...listen, token, tlsCert: f.tlsCert, tlsKey: f.tlsKey, maxNodes, minNodes, stepDeadlineMs, heartbeatMs, maxNodeFailures, balance: f.balance, maxGradRatio: f.maxGradRatio, wire: f.wire, fanout }
          : undefined,
      },
      // The config as parsed here, so that its errors name the flags that set a field; the output
      // paths are checked above, by their flags.
      { config, reporter, fault: parseFault(f.fault), onMembership: dash?.membership, outputsChecked: true },
    );
    const seconds = (performance.now() - t0) / 1000;
    if (f.plot && r.history.length > 0) {
      const points = r.history.map((h) => ({ epoch: h.epoch + 1, trainLoss: h.trainLoss, testLoss: h.test.loss, testAccuracy: h.test.accuracy }));
      // Loaded only when asked for: Vega takes about a second to import.
      const { trainingCurvesSvg, writeSvgAtomic } = await import('../output/charts.js');
      const svg = await trainingCurvesSvg(points);
      try {
        writeSvgAtomic(resolve(f.plot), svg);
      } catch (e) {
        throw writeFailed('the plot', f.plot, ioReason(e), `the model is in ${r.checkpoint ?? 'no checkpoint'}`);
      }
    }
    if (r.stoppedBy === 'interrupted') {
      process.stderr.write(`dptrain: interrupted at step ${r.steps}; checkpoint ${r.checkpoint} (continue with --resume${f.checkpointDir ? ` --checkpoint-dir ${f.checkpointDir}` : ''})\n`);
      return EXIT_INTERRUPTED;
    }
    if (!f.quiet) {
      const acc = r.final?.accuracy;
      const accText = acc === null || acc === undefined ? '' : `, test accuracy ${(100 * acc).toFixed(2)}%`;
      const lossText = !r.final ? '' : r.final.n === 0 ? ', no test split' : `, test loss ${r.final.loss.toFixed(4)}`;
      const peakMb = Math.round(peakRssKb() / 1024);
      process.stdout.write(`done: ${r.steps} steps in ${seconds.toFixed(1)} s (stopped by ${r.stoppedBy})${lossText}${accText}, peak memory ${peakMb} MB\n`);
      if (r.checkpoint) process.stdout.write(`checkpoint: ${r.checkpoint}\n`);
      if (f.saveWeights) process.stdout.write(`weights: ${resolve(f.saveWeights)}\n`);
      if (f.plot) process.stdout.write(`plot: ${resolve(f.plot)}\n`);
    }
    return 0;
  } finally {
    await dash?.close();
    process.off('SIGINT', onSigint);
  }
}

/**
 * This process's peak resident memory in KiB. On Linux from /proc (VmHWM, this program's own):
 * getrusage's maxRSS starts at the parent's peak after fork + exec.
 */
function peakRssKb(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}
