// The two entry points of the package root. Their declarations name only the public types, so a
// user's type check never reaches the internal modules behind them.

import { loadModelFile } from './model.js';
import { runTraining } from './train.js';
import type { LoadModelOptions, Model, TrainOptions, TrainResult } from './types.js';

/** Trains a model; resolves when the run ends (epochs done, a target met, aborted or maxSteps). */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const { model, history, stoppedBy, steps, checkpoint } = await runTraining(options);
  return { model, history, stoppedBy, steps, checkpoint };
}

/**
 * A model from a weights file or a checkpoint. Its own description is used when it has one (a
 * config given as well must describe the same model); otherwise the config's, or for an older
 * checkpoint the config inside it.
 */
export function loadModel(path: string, options: LoadModelOptions = {}): Model {
  return loadModelFile(path, options);
}
