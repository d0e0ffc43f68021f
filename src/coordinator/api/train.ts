// The library's training run (public.ts's `train`): options checked once at the entry, the config and data resolved, an
// AbortSignal turned into the trainer's stop request, callbacks wired to the run's records, and the
// result handed back as a Model. The CLI's `dptrain train` runs through runTraining too.

import { resolve } from 'node:path';
import type { Config } from '../../core/config.js';
import { arrayDataset, emptyDataset } from '../../core/data/arrays.js';
import type { DataSplit } from '../../core/data/types.js';
import { configError, DptrainError } from '../../core/errors.js';
import { KERNEL_CHOICES } from '../../core/kernels/index.js';
import type { FaultHook } from '../../worker/messages.js';
import { defaultThreads } from '../../worker/pool/local-pool.js';
import { train as runTrainer, type Reporter, type TrainResult as TrainerResult } from '../train/trainer.js';
import { checkOutputPaths } from '../output/paths.js';
import type { MembershipEvent } from '../remote/server.js';
import { resolveConfig } from './config-input.js';
import { TrainedModel } from './model.js';
import type { ArrayDataSplit, DataSource, TrainOptions, TrainResult } from './types.js';

const OPTION_NAMES = new Set<string>([
  'config', 'data', 'baseDir', 'workers', 'kernels', 'initWeights', 'saveWeights', 'checkpointDir', 'checkpointEvery',
  'resume', 'maxSteps', 'listen', 'signal', 'onStep', 'onEpoch', 'onLog',
] satisfies (keyof TrainOptions)[]);

/** What the CLI adds to a run: its own config parse (errors name its flags), reporter, dashboard and test hooks. */
export interface RunHooks {
  readonly config?: Config;
  readonly reporter?: Reporter;
  readonly fault?: FaultHook;
  readonly onMembership?: (e: MembershipEvent) => void;
  /** The caller has checked the output paths already (naming its own flags). */
  readonly outputsChecked?: boolean;
}

export interface RunResult extends TrainResult {
  readonly run: TrainerResult;
}

export async function runTraining(options: TrainOptions, hooks: RunHooks = {}): Promise<RunResult> {
  checkOptions(options);
  const baseDir = resolve(options.baseDir ?? '.');
  const arrays = isArraySplit(options.data) ? options.data : null;
  const config = hooks.config ?? resolveConfig(options.config, baseDir, arrays ? 'arrays' : (options.data as DataSource | undefined)).config;
  const data = arrays ? arraySplit(arrays, config) : undefined;
  // Paths stay as the caller wrote them (messages name them so) unless a baseDir is given.
  const at = (p: string | undefined): string | undefined => (p === undefined || options.baseDir === undefined ? p : resolve(baseDir, p));
  // Before the first step, so that no run trains and then fails to write.
  if (!hooks.outputsChecked)
    checkOutputPaths({ checkpointDir: at(options.checkpointDir), saveWeights: at(options.saveWeights) }, { checkpointDir: 'options.checkpointDir', saveWeights: 'options.saveWeights' });
  const workers = options.workers ?? defaultThreads();
  const listen = options.listen;
  const stop = { requested: false };
  let interrupt: (e: Error) => void = () => {};
  const stopWaiting = new Promise<never>((_, reject) => (interrupt = reject));
  stopWaiting.catch(() => {}); // only waits for executors listen to it
  const onAbort = (): void => {
    stop.requested = true;
    interrupt(new DptrainError('INTERRUPTED', 'aborted while waiting for executors'));
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  try {
    // The WebSocket server (ws, msgpackr) is loaded only for runs that accept nodes.
    const remote = listen ? await import('../remote/server.js') : null;
    const reporter = hooks.reporter ?? silentReporter(options.onLog);
    const r = await runTrainer({
      config, workers, kernels: options.kernels ?? 'auto', reporter: withCallbacks(reporter, options), stop, stopWaiting,
      maxSteps: options.maxSteps, checkpointEvery: options.checkpointEvery ?? 0, resume: options.resume ?? false,
      initWeights: at(options.initWeights), saveWeights: at(options.saveWeights), checkpointDir: at(options.checkpointDir),
      fault: hooks.fault, data,
      // Without a test split the epochs are not evaluated (their records say n = 0).
      skipEval: data !== undefined && data.test.n === 0,
      balance: listen?.balance ?? (listen ? 'measured' : 'static'),
      maxNodes: listen ? listen.maxNodes ?? 8 : 0,
      fanout: listen?.fanout,
      maxNodeFailures: listen?.maxNodeFailures ?? 10,
      maxGradRatio: listen?.maxGradRatio,
      minExecutors: (workers > 0 ? 1 : 0) + (listen?.minNodes ?? 0),
      attachRemote: listen && remote
        ? (run) => remote.startRemoteServer(run, {
          host: listen.host ?? '127.0.0.1', port: listen.port, token: listen.token, tlsCert: listen.tlsCert, tlsKey: listen.tlsKey,
          deadlineMs: listen.stepDeadlineMs ?? 30_000, heartbeatMs: listen.heartbeatMs ?? 1000, wire: listen.wire, log: (l) => reporter.log(l), onListening: listen.onListening, onMembership: hooks.onMembership,
        })
        : undefined,
    });
    const model = new TrainedModel(r.description, r.params, options.kernels ?? 'auto');
    return { model, history: r.history, stoppedBy: r.stoppedBy, steps: r.steps, checkpoint: r.checkpoint, run: r };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function checkOptions(o: TrainOptions): void {
  if (typeof o !== 'object' || o === null) throw configError('options', 'expected an object');
  for (const k of Object.keys(o)) if (!OPTION_NAMES.has(k)) throw configError(`options.${k}`, 'unknown option');
  const wholeAtLeast = (name: keyof TrainOptions, min: number): void => {
    const v = o[name];
    if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v >= min)) throw configError(`options.${name}`, `expected a whole number ≥ ${min}, got ${String(v)}`);
  };
  wholeAtLeast('workers', o.listen ? 0 : 1);
  wholeAtLeast('checkpointEvery', 0);
  wholeAtLeast('maxSteps', 0);
  if (o.kernels !== undefined && !KERNEL_CHOICES.includes(o.kernels)) throw configError('options.kernels', `expected one of ${KERNEL_CHOICES.join(', ')}, got ${String(o.kernels)}`);
  if (o.resume && !o.checkpointDir) throw configError('options.resume', 'needs options.checkpointDir');
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw configError('options.signal', 'expected an AbortSignal');
  if (o.listen !== undefined) {
    const p = o.listen.port;
    if (!(Number.isInteger(p) && p >= 0 && p <= 65535)) throw configError('options.listen.port', `expected a port 0..65535, got ${String(p)}`);
  }
  for (const name of ['onStep', 'onEpoch', 'onLog'] as const)
    if (o[name] !== undefined && typeof o[name] !== 'function') throw configError(`options.${name}`, 'expected a function');
}

function isArraySplit(d: TrainOptions['data']): d is ArrayDataSplit {
  return typeof d === 'object' && d !== null && 'train' in d && typeof (d as { train: unknown }).train === 'object';
}

function arraySplit(d: ArrayDataSplit, config: Config): DataSplit {
  const { layers, loss } = config.model;
  const nIn = layers[0];
  const nOut = layers[layers.length - 1];
  const train = arrayDataset(d.train, 'data.train', nIn, nOut, loss);
  const test = d.test ? arrayDataset(d.test, 'data.test', nIn, nOut, loss) : emptyDataset(train, 'data.test');
  return { train, test };
}

function silentReporter(onLog: ((line: string) => void) | undefined): Reporter {
  return { start() {}, step() {}, epoch() {}, log: (l) => onLog?.(l), close() {} };
}

function withCallbacks(base: Reporter, o: TrainOptions): Reporter {
  return {
    start: (info) => base.start(info),
    step: (r) => {
      base.step(r);
      o.onStep?.(r);
    },
    epoch: (r) => {
      base.epoch(r);
      o.onEpoch?.(r);
    },
    log: (l) => base.log(l),
    close: () => base.close(),
  };
}
