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

/** A subtree of the pairwise tree: the leaves [at, at + size). */
export interface Block {
  readonly at: number;
  readonly size: number;
}

/**
 * The largest subtrees of T(n) inside [lo, hi), left to right: a node of a reduction tree that
 * sends up the sum of one of them sends up a value of the step's own reduction.
 */
export function coverBlocks(n: number, lo: number, hi: number, at = 0, size = n): Block[] {
  if (hi <= at || at + size <= lo || size === 0) return [];
  if (lo <= at && at + size <= hi) return [{ at, size }];
  const [left, right] = halves({ at, size });
  return [...coverBlocks(n, lo, hi, left.at, left.size), ...coverBlocks(n, lo, hi, right.at, right.size)];
}

/** A block's two halves, as T(size) splits it. */
export function halves(b: Block): [Block, Block] {
  const m = leftLeaves(b.size);
  return [{ at: b.at, size: m }, { at: b.at + m, size: b.size - m }];
}

/**
 * The sub-blocks a block's first leaf adds to its own value, in the order of the additions:
 * T(size) = T(m) + T(size − m) along the left edge, so the first leaf's running sum takes the
 * right halves from the innermost out. Relative to the block (0 is its first leaf).
 */
export function leftEdgeBlocks(size: number): Block[] {
  const out: Block[] = [];
  for (let s = size; s > 1; ) {
    const m = leftLeaves(s);
    out.unshift({ at: m, size: s - m });
    s = m;
  }
  return out;
}
