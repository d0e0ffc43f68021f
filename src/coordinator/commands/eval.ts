// `dptrain eval`: loss and accuracy (with a confusion matrix for classification) of a weights file
// or checkpoint, single-threaded: on the test split of the data the file records, or of --config's.

import { loadConfig, loadConfigData } from '../../core/config.js';
import { configError } from '../../core/errors.js';
import type { EvalResult } from '../../core/eval.js';
import { DEFAULT_CONFIG } from '../../core/io/package-files.js';
import type { KernelChoice } from '../../core/kernels/index.js';
import { loadModelFile } from '../api/model.js';
import type { DataSource } from '../api/types.js';

export interface EvalFlags {
  readonly weights: string;
  /** Data to evaluate on (and the model, for files that do not describe it). */
  readonly config?: string;
  readonly kernels: KernelChoice;
}

export function runEval(f: EvalFlags, write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): void {
  // A file without dptrain metadata (e.g. PyTorch's) is read as the default config's model.
  const model = loadModelFile(f.weights, { config: f.config, kernels: f.kernels, fallbackConfig: DEFAULT_CONFIG });
  let r: EvalResult;
  if (f.config) {
    r = model.evaluateDataset(loadConfigData(loadConfig(f.config)).test);
  } else if (model.description.data) {
    r = model.evaluate(model.description.data.source as DataSource);
  } else {
    // Trained on arrays: there is no data source to evaluate on.
    throw configError('--config', `${f.weights} records no data source (it was trained on arrays): give a config whose data to evaluate on`);
  }
  if (r.n === 0) throw configError(`${f.config ?? f.weights}: data.test`, 'the config sets no test split aside: nothing to evaluate');
  write(`test samples ${r.n}  loss ${r.loss.toFixed(4)}${r.accuracy === null ? '' : `  accuracy ${(100 * r.accuracy).toFixed(2)}%`}`);
  if (r.confusion) {
    write('confusion matrix (rows: actual, columns: predicted)');
    const width = Math.max(4, String(r.n).length + 1);
    write(' '.repeat(4) + r.confusion.map((_, j) => String(j).padStart(width)).join(''));
    r.confusion.forEach((row, i) => write(String(i).padStart(3) + ' ' + row.map((v) => String(v).padStart(width)).join('')));
  }
}
