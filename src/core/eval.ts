// Evaluation: mean loss and (for classification) accuracy and a confusion matrix over a data set, in
// batches of at most the workspace's rows. A range of rows gives sums (evaluateRange), so threads
// can each take a range and the sums add up (mergeEvalSums); evaluate is the whole set at once.

import type { Workspace } from './arena.js';
import type { Dataset } from './data/types.js';
import { losses } from './losses.js';
import type { DenseViews, Model } from './model.js';
import { forward, gatherRows } from './model.js';
import { isClassIndexLoss } from './spec.js';

export interface EvalResult {
  /** NaN when there are no rows (n = 0). */
  readonly loss: number;
  /** null for regression data, or when there are no rows. */
  readonly accuracy: number | null;
  /** confusion[actual][predicted], for classification data. */
  readonly confusion: number[][] | null;
  readonly n: number;
}

/** What rows [lo, hi) of a data set contribute: loss sum, correct predictions, confusion counts. */
export interface EvalSums {
  readonly lossSum: number;
  readonly correct: number;
  readonly confusion: number[][] | null;
  readonly n: number;
}

export function evaluateRange(m: Model, p: readonly DenseViews[], ws: Workspace, maxRows: number, data: Dataset, lo: number, hi: number): EvalSums {
  const nOut = m.spec.layers[m.spec.layers.length - 1];
  const classes = data.classes;
  const confusion = classes > 0 ? Array.from({ length: classes }, () => new Array<number>(classes).fill(0)) : null;
  let lossSum = 0;
  let correct = 0;
  for (let start = lo; start < hi; start += maxRows) {
    const rows = Math.min(maxRows, hi - start);
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
  return { lossSum, correct, confusion, n: hi - lo };
}

/** The result of sums over disjoint ranges that together cover the data set (added in the order given). */
export function mergeEvalSums(parts: readonly EvalSums[]): EvalResult {
  const n = parts.reduce((a, s) => a + s.n, 0);
  const lossSum = parts.reduce((a, s) => a + s.lossSum, 0);
  const correct = parts.reduce((a, s) => a + s.correct, 0);
  const first = parts[0]?.confusion ?? null;
  const confusion = first ? first.map((row, i) => row.map((_, j) => parts.reduce((a, s) => a + s.confusion![i][j], 0))) : null;
  // No rows (a config without a test split): no loss and no accuracy, rather than 0/0.
  if (n === 0) return { loss: NaN, accuracy: null, confusion: null, n };
  return { loss: lossSum / n, accuracy: confusion ? correct / n : null, confusion, n };
}

export function evaluate(m: Model, p: readonly DenseViews[], ws: Workspace, maxRows: number, data: Dataset): EvalResult {
  return mergeEvalSums([evaluateRange(m, p, ws, maxRows, data, 0, data.n)]);
}

function argmax(a: Float32Array, offset: number, len: number): number {
  let best = 0;
  for (let j = 1; j < len; j++) if (a[offset + j] > a[offset + best]) best = j;
  return best;
}
