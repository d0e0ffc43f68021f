// The step's reduction order: a fixed pairwise tree over the logical shard ids 0 .. n−1, the same
// whoever computed a shard, whatever failed. T(n) = T(m) + T(n − m), m the largest power of two
// below n: so every aligned block of 2^k ids is a subtree, and up to three shards it is the left fold.

/** Leaves of the left subtree of a pairwise node over n ≥ 2 leaves: the largest power of two below n. */
export function leftLeaves(n: number): number {
  let m = 1;
  while (m * 2 < n) m *= 2;
  return m;
}

/** Σ values by the tree, each sum rounded to float32 (the oracle of the kernels' reductions). */
export function pairwiseSum(values: readonly number[], a = 0, n = values.length): number {
  if (n === 1) return Math.fround(values[a]);
  const m = leftLeaves(n);
  return Math.fround(pairwiseSum(values, a, m) + pairwiseSum(values, a + m, n - m));
}
