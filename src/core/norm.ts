// The sum of squares of a float vector: the gradient guard's norm, and the finiteness check of
// everything a peer sends (it is finite exactly when every value is: a float32 squared cannot
// overflow a double, nor can 2^30 of them summed).

/**
 * Σ values[i]², in doubles, over four interleaved partial sums: one running sum waits on the add
 * before it at every element, four keep the adder busy (about twice as fast). The order of the
 * additions is fixed, so the result is reproducible; it is a measure, never a weight.
 */
export function sumOfSquares(values: Float32Array): number {
  const n = values.length;
  let a0 = 0;
  let a1 = 0;
  let a2 = 0;
  let a3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    const x0 = values[i];
    const x1 = values[i + 1];
    const x2 = values[i + 2];
    const x3 = values[i + 3];
    a0 += x0 * x0;
    a1 += x1 * x1;
    a2 += x2 * x2;
    a3 += x3 * x3;
  }
  for (; i < n; i++) a0 += values[i] * values[i];
  return a0 + a1 + (a2 + a3);
}
