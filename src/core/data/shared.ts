// Buffers of loaded data sets and the row selection every source shares. Data lives on
// SharedArrayBuffers so that worker threads read one copy of it instead of each holding their own.

import { configError } from '../errors.js';
import type { Dataset } from './types.js';

/** A Float32Array of `length` zeros on a new SharedArrayBuffer. */
export function sharedF32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));
}

/** A new data set holding rows `rows` of `data`, in that order, on shared memory. */
export function takeRows(data: Dataset, rows: ArrayLike<number>, name: string): Dataset {
  const { nIn, yWidth } = data;
  const n = rows.length;
  const x = sharedF32(n * nIn);
  const y = sharedF32(n * yWidth);
  const lines = data.origin ? new Int32Array(new SharedArrayBuffer(n * 4)) : null;
  for (let r = 0; r < n; r++) {
    const i = rows[r];
    x.set(data.x.subarray(i * nIn, (i + 1) * nIn), r * nIn);
    y.set(data.y.subarray(i * yWidth, (i + 1) * yWidth), r * yWidth);
    if (lines) lines[r] = data.origin!.lines[i];
  }
  const origin = data.origin && lines ? { file: data.origin.file, lines } : undefined;
  return { name, n, nIn, x, y, yWidth, classes: data.classes, ...(origin ? { origin } : {}) };
}

/** 0, 1, …, n − 1. */
export function identityOrder(n: number): Int32Array {
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order;
}

/**
 * Train takes the first nTrain rows of `order` and test the last nTest, so the test rows do not
 * move when only the training count changes.
 */
export function splitOrder(order: Int32Array, nTrain: number, nTest: number): { train: Int32Array; test: Int32Array } {
  if (nTrain + nTest > order.length) throw new RangeError(`split of ${nTrain} + ${nTest} rows exceeds ${order.length}`);
  return { train: order.subarray(0, nTrain), test: order.subarray(order.length - nTest) };
}

/** Rows of n that a test fraction sets aside, leaving at least one training row. */
export function testCount(n: number, fraction: number, where: string): number {
  if (!(fraction >= 0 && fraction < 1)) throw configError(where, `test fraction must be in [0, 1), got ${fraction}`);
  const nTest = Math.round(n * fraction);
  if (n - nTest < 1) throw configError(where, `test fraction ${fraction} of ${n} rows leaves no training rows`);
  return nTest;
}

/** Checks an optional row count from the config: a non-negative integer (or at least 1 for training). */
export function checkCount(value: number | undefined, where: string, min: number): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min))
    throw configError(where, `must be an integer ≥ ${min}, got ${value}`);
}
