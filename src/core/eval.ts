// Evaluation: mean loss and (for classification) accuracy and a confusion matrix over a data set, in
// batches of at most the workspace's rows.

import type { Workspace } from './arena.js';
import type { Dataset } from './data/types.js';
import { losses } from './losses.js';
import type { DenseViews, Model } from './model.js';
import { forward, gatherRows } from './model.js';
import { isClassIndexLoss } from './spec.js';

export interface EvalResult {
  readonly loss: number;
  /** null for regression data. */
  readonly accuracy: number | null;
  /** confusion[actual][predicted], for classification data. */
  readonly confusion: number[][] | null;
  readonly n: number;
}

export function evaluate(m: Model, p: readonly DenseViews[], ws: Workspace, maxRows: number, data: Dataset): EvalResult {
  const nOut = m.spec.layers[m.spec.layers.length - 1];
  const classes = data.classes;
  const confusion = classes > 0 ? Array.from({ length: classes }, () => new Array<number>(classes).fill(0)) : null;
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < data.n; start += maxRows) {
    const rows = Math.min(maxRows, data.n - start);
    gatherRows(ws, data, null, start, rows);
    const h = forward(m, p, ws, rows);
    lossSum += losses[m.spec.loss].value(h, ws.y, rows, nOut);
    if (!confusion) continue;
    for (let r = 0; r < rows; r++) {
      const actual = isClassIndexLoss(m.spec.loss) ? ws.y[r] : nOut === 1 ? (ws.y[r] >= 0.5 ? 1 : 0) : argmax(ws.y, r * nOut, nOut);
      const predicted = nOut === 1 ? (h[r] >= 0.5 ? 1 : 0) : argmax(h, r * nOut, nOut);
      confusion[actual][predicted]++;
      if (actual === predicted) correct++;
    }
  }
  return { loss: lossSum / data.n, accuracy: confusion ? correct / data.n : null, confusion, n: data.n };
}

function argmax(a: Float32Array, offset: number, len: number): number {
  let best = 0;
  for (let j = 1; j < len; j++) if (a[offset + j] > a[offset + best]) best = j;
  return best;
}
