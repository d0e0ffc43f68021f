// A trained or loaded model as the library hands it out: predict, classify, evaluate, save, built
// on the core's single-threaded Predictor; and loadModel, which reads any weights file or checkpoint
// and takes its description from the file, or from a config for files written elsewhere.

import { resolve } from 'node:path';
import { loadConfigData } from '../../core/config.js';
import { arrayDataset } from '../../core/data/arrays.js';
import { describeFromConfig } from '../../core/describe-model.js';
import { DptrainError } from '../../core/errors.js';
import type { EvalResult } from '../../core/eval.js';
import type { Dataset } from '../../core/data/types.js';
import { modelMetadata, readModelFile, specOf, type ModelDescription } from '../../core/io/model-file.js';
import { loadTensorsInto, saveWeights } from '../../core/io/safetensors.js';
import type { KernelChoice } from '../../core/kernels/index.js';
import { paramLayout } from '../../core/layout.js';
import { Predictor } from '../../core/predict.js';
import { resolveConfig } from './config-input.js';
import type { EvaluationData, LoadModelOptions, Model } from './types.js';

export class TrainedModel implements Model {
  readonly description: ModelDescription;
  private readonly predictor: Predictor;

  constructor(description: ModelDescription, params: Float32Array, kernels: KernelChoice = 'auto') {
    this.description = description;
    this.predictor = new Predictor(specOf(description), params, kernels);
  }

  get inputs(): number {
    return this.predictor.nIn;
  }

  get outputs(): number {
    return this.predictor.nOut;
  }

  get classes(): number {
    return this.description.targets.kind === 'classes' ? this.description.targets.classes : 0;
  }

  predict(x: Float32Array, rows: number): Float32Array {
    return this.predictor.predict(x, rows);
  }

  classify(x: Float32Array, rows: number): Int32Array {
    if (this.classes === 0) throw new DptrainError('NOT_A_CLASSIFIER', 'classify: this model was trained on regression targets; use predict');
    return this.predictor.classify(x, rows);
  }

  evaluate(data: EvaluationData, options: { baseDir?: string } = {}): EvalResult {
    const d = this.description;
    const nOut = this.outputs;
    if (typeof data === 'object' && data !== null && 'source' in data) {
      const baseDir = resolve(options.baseDir ?? '.');
      const config: Record<string, unknown> = {
        model: { layers: [...d.layers], hidden: d.hidden, output: d.output, bias: d.bias },
        loss: d.loss,
        // Evaluation updates nothing; the schema still asks for an optimizer.
        optimizer: { name: 'sgd', lr: 1 },
        data,
        // The seed decides which rows a fraction sets aside: the training run's, where known.
        training: d.data ? { seed: d.data.seed } : {},
      };
      // Validated as a config file's data would be, with the same messages.
      const { config: parsed } = resolveConfig(config, baseDir, undefined);
      return this.predictor.evaluate(loadConfigData(parsed).test);
    }
    return this.predictor.evaluate(arrayDataset(data, 'data', this.inputs, nOut, d.loss));
  }

  /** Evaluation of a data set already encoded for this model (the eval command's config data). */
  evaluateDataset(data: Dataset): EvalResult {
    return this.predictor.evaluate(data);
  }

  save(path: string): void {
    saveWeights(path, this.predictor.layout, this.predictor.params(), { format: 'pt', ...modelMetadata(this.description) });
  }

  weights(): Float32Array {
    return this.predictor.params();
  }
}

export interface LoadModelFileOptions extends LoadModelOptions {
  readonly baseDir?: string;
  /** The config to use only when the file does not describe its model (the eval command's default). */
  readonly fallbackConfig?: string;
}

/** A model from a weights file or a checkpoint (public.ts's loadModel, and the eval and predict commands). */
export function loadModelFile(path: string, options: LoadModelFileOptions = {}): TrainedModel {
  const baseDir = resolve(options.baseDir ?? '.');
  const file = readModelFile(resolve(baseDir, path));
  const fromConfig = options.config === undefined ? null : (() => {
    const r = resolveConfig(options.config, baseDir, 'none');
    return describeFromConfig(r.config, r.hasData);
  })();
  let description = file.description;
  if (description && fromConfig) checkSameModel(description, fromConfig, path);
  description ??= fromConfig;
  if (!description && options.fallbackConfig !== undefined && file.checkpointConfig === undefined)
    description = describeFromConfig(resolveConfig(options.fallbackConfig, baseDir, 'none').config, true);
  if (!description && file.checkpointConfig !== undefined) {
    const r = resolveConfig(file.checkpointConfig, baseDir, undefined);
    description = describeFromConfig(r.config, true);
  }
  if (!description)
    throw new DptrainError('WEIGHTS_UNDESCRIBED', `${path}: no dptrain model metadata (written by another tool?): give a config that describes the model`);
  const spec = specOf(description);
  const layout = paramLayout(spec);
  const params = new Float32Array(layout.size);
  loadTensorsInto(file.tensors, path, layout, params);
  return new TrainedModel(description, params, options.kernels);
}

function checkSameModel(a: ModelDescription, b: ModelDescription, path: string): void {
  const key = (d: ModelDescription): string => JSON.stringify([d.layers, d.hidden, d.output, d.bias, d.loss]);
  if (key(a) !== key(b))
    throw new DptrainError('WEIGHTS_MISMATCH', `${path}: the file describes layers [${a.layers.join(', ')}] ${a.hidden}/${a.output} with ${a.loss}${a.bias ? '' : ' (no bias)'}, the config another model`);
}
