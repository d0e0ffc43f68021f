// `dptrain eval`: loss and accuracy (with a confusion matrix for classification) of a weights file
// on the config's test split, single-threaded.

import { createArena } from '../../core/arena.js';
import { evaluate } from '../../core/eval.js';
import { createKernels, type KernelChoice } from '../../core/kernels/index.js';
import { paramLayout } from '../../core/layout.js';
import { checkDataFits, denseViews } from '../../core/model.js';
import { loadWeights } from '../../core/io/safetensors.js';
import { loadConfig, loadConfigData } from '../../core/config.js';

export interface EvalFlags {
  readonly weights: string;
  readonly config: string;
  readonly kernels: KernelChoice;
}

const EVAL_ROWS = 256;

export function runEval(f: EvalFlags, write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): void {
  const config = loadConfig(f.config);
  const spec = config.model;
  const data = loadConfigData(config);
  checkDataFits(spec, data.test);
  const layout = paramLayout(spec);
  const arena = createArena(spec, { shards: 1, maxRows: EVAL_ROWS, stateVectors: 0 });
  loadWeights(f.weights, layout, arena.params);
  const kernels = createKernels(f.kernels, arena.memory, arena.workspaces[0].scratch);
  const r = evaluate({ spec, layout, kernels }, denseViews(layout, arena.params), arena.workspaces[0], EVAL_ROWS, data.test);
  write(`test samples ${r.n}  loss ${r.loss.toFixed(4)}${r.accuracy === null ? '' : `  accuracy ${(100 * r.accuracy).toFixed(2)}%`}`);
  if (r.confusion) {
    write('confusion matrix (rows: actual, columns: predicted)');
    const width = Math.max(4, String(r.n).length + 1);
    write(' '.repeat(4) + r.confusion.map((_, j) => String(j).padStart(width)).join(''));
    r.confusion.forEach((row, i) => write(String(i).padStart(3) + ' ' + row.map((v) => String(v).padStart(width)).join('')));
  }
}
