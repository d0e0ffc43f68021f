// The caller's own arrays as a data set, checked as a CSV file is (shapes, finite values, class
// indices in range) and copied onto shared memory so worker threads read one copy. Int32Array
// targets (or Float32Array ones with cross-entropy) are class indices, one per row; other
// Float32Array targets are values, rows × outputs.

import { DptrainError } from '../errors.js';
import { isClassIndexLoss, type LossName } from '../spec.js';
import { encodeTargets } from './index.js';
import { sharedF32 } from './shared.js';
import type { Dataset } from './types.js';

export interface ArrayData {
  /** Inputs, rows × inputs, row-major. */
  readonly x: Float32Array;
  /** Class indices (one per row) or target values (rows × outputs). */
  readonly y: Float32Array | Int32Array;
  readonly rows: number;
}

export interface ArrayDataSplit {
  readonly train: ArrayData;
  readonly test?: ArrayData;
}

const malformed = (what: string): DptrainError => new DptrainError('DATA_MALFORMED', what);

/** One split as a data set for a model of these widths and loss, targets encoded as the loss reads them. */
export function arrayDataset(d: ArrayData, name: string, nIn: number, nOut: number, loss: LossName): Dataset {
  if (typeof d !== 'object' || d === null) throw malformed(`${name}: expected { x, y, rows }`);
  const { x, y, rows } = d;
  if (!(Number.isInteger(rows) && rows >= 0)) throw malformed(`${name}.rows: expected a whole number ≥ 0, got ${String(rows)}`);
  if (!(x instanceof Float32Array)) throw malformed(`${name}.x: expected a Float32Array`);
  if (!(y instanceof Float32Array || y instanceof Int32Array)) throw malformed(`${name}.y: expected a Float32Array or an Int32Array`);
  if (x.length !== rows * nIn)
    throw new DptrainError('SHAPE_MISMATCH', `${name}.x: ${x.length} values, ${rows} rows × ${nIn} inputs (model.layers[0]) needs ${rows * nIn}`);
  const classTargets = y instanceof Int32Array || isClassIndexLoss(loss);
  const yWidth = classTargets ? 1 : nOut;
  if (y.length !== rows * yWidth)
    throw new DptrainError('SHAPE_MISMATCH', `${name}.y: ${y.length} values, ${rows} rows × ${yWidth} ${classTargets ? 'class index' : 'targets'} needs ${rows * yWidth}`);

  const sx = sharedF32(x.length);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) throw malformed(`${name}.x: row ${Math.floor(i / nIn)}, column ${i % nIn}: value ${v} is NaN or infinite`);
    sx[i] = v;
  }
  const sy = sharedF32(y.length);
  let maxClass = -1;
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    const at = `${name}.y: row ${Math.floor(i / yWidth)}${yWidth > 1 ? `, column ${i % yWidth}` : ''}`;
    if (!Number.isFinite(v)) throw malformed(`${at}: value ${v} is NaN or infinite`);
    if (classTargets) {
      if (!(Number.isInteger(v) && v >= 0)) throw new DptrainError('LABEL_OUT_OF_RANGE', `${at}: class ${v} is not a whole number ≥ 0`);
      const limit = nOut === 1 ? 2 : nOut;
      if (v >= limit) throw new DptrainError('LABEL_OUT_OF_RANGE', `${at}: class ${v}, the model has ${limit} classes (0..${limit - 1})`);
      maxClass = Math.max(maxClass, v);
    } else if (loss === 'bce' && !(v >= 0 && v <= 1)) {
      throw malformed(`${at}: value ${v}, loss bce needs targets in [0, 1]`);
    }
    sy[i] = v;
  }
  // A classifier has as many classes as outputs (two for a single 0/1 output), whichever appear.
  const classes = classTargets ? Math.max(nOut === 1 ? 2 : nOut, maxClass + 1) : 0;
  return encodeTargets({ name, n: rows, nIn, x: sx, y: sy, yWidth, classes }, loss, nOut);
}

/** An empty data set (no test split given). */
export function emptyDataset(like: Dataset, name: string): Dataset {
  return { ...like, name, n: 0, x: sharedF32(0), y: sharedF32(0) };
}
