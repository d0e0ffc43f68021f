// dptrain as a library: the package root's typed API (train, loadModel, the error class and the
// public types), on the same code path as the CLI. Nothing here holds state between calls.

export { train, loadModel } from './coordinator/api/public.js';
export { DptrainError, type ErrorCode } from './core/errors.js';
export type {
  Activation, ArrayData, ArrayDataSplit, ConfigInput, DataSource, EpochRecord, EvalResult, EvaluationData, InitName, KernelChoice,
  ListenOptions, LoadModelOptions, LossName, Model, ModelDescription, OptimizerInput, OutputName, StepRecord, StopReason, SyntheticName,
  TrainOptions, TrainResult,
} from './coordinator/api/types.js';
