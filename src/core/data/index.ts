// The data set entry point: which source a config names, and how its targets are encoded for the
// model's loss and output width. Sources deliver raw targets (class indices or values).

import { DptrainError } from '../errors.js';
import { isClassIndexLoss, type LossName } from '../spec.js';
import { loadCsv, type CsvOptions } from './csv.js';
import { loadIdx, type IdxOptions } from './idx.js';
import { loadMnist, type MnistOptions } from './mnist.js';
import { sharedF32 } from './shared.js';
import { loadSynthetic, type SyntheticOptions } from './synthetic.js';
import { rowName, type DataSplit, type Dataset } from './types.js';

export { SYNTHETIC_SETS, type SyntheticName } from './synthetic.js';
export type { DataSplit, Dataset } from './types.js';

export interface MnistConfig extends MnistOptions { readonly source: 'mnist' }
export interface IdxConfig extends IdxOptions { readonly source: 'idx' }
export interface CsvConfig extends CsvOptions { readonly source: 'csv' }
export interface SyntheticConfig extends SyntheticOptions { readonly source: 'synthetic' }
export type DataConfig = MnistConfig | IdxConfig | CsvConfig | SyntheticConfig;

export interface LoadOptions {
  /** Folder that relative paths of the config are relative to (the config file's). */
  readonly baseDir: string;
  readonly seed: number;
  readonly loss: LossName;
  /** Width of the model's last layer. */
  readonly nOut: number;
}

export function loadData(cfg: DataConfig, opts: LoadOptions): DataSplit {
  const raw = loadRaw(cfg, opts);
  return {
    train: encodeTargets(raw.train, opts.loss, opts.nOut),
    test: encodeTargets(raw.test, opts.loss, opts.nOut),
  };
}

function loadRaw(cfg: DataConfig, opts: LoadOptions): DataSplit {
  switch (cfg.source) {
    case 'mnist': return loadMnist(cfg, opts.seed);
    case 'idx': return loadIdx(cfg, opts.baseDir, opts.seed);
    case 'csv': return loadCsv(cfg, opts.baseDir, opts.seed);
    case 'synthetic': return loadSynthetic(cfg, opts.seed);
  }
}

/**
 * Targets as the loss reads them. Class data stays one index per row for cross-entropy, and for a
 * single output (a 0/1 value for bce or mse); for any other loss with nOut > 1 it becomes one-hot
 * rows of width nOut (classes kept). Regression data is left as it is.
 */
export function encodeTargets(data: Dataset, loss: LossName, nOut: number): Dataset {
  if (data.classes === 0 || isClassIndexLoss(loss)) return data;
  if (nOut === 1) {
    if (data.classes > 2)
      throw new DptrainError('SHAPE_MISMATCH', `data set ${data.name} has ${data.classes} classes, a model with 1 output can only take 2 (0/1 targets)`);
    return data;
  }
  const y = sharedF32(data.n * nOut);
  for (let i = 0; i < data.n; i++) {
    const c = data.y[i];
    if (!(Number.isInteger(c) && c >= 0 && c < nOut))
      throw new DptrainError('LABEL_OUT_OF_RANGE', `data set ${data.name}: ${rowName(data, i)} has class ${c}, one-hot over ${nOut} outputs needs 0..${nOut - 1}`);
    y[i * nOut + c] = 1;
  }
  return { ...data, y, yWidth: nOut };
}
