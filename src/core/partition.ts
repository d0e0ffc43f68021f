// Cutting a minibatch into contiguous shards with sizes proportional to the executors' capacities
// (largest remainder, ties to the lower index), so the partition is a pure function of its inputs.

export function partition(rows: number, weights: readonly number[]): number[] {
  if (weights.length === 0) throw new RangeError('partition: no executors');
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new RangeError('partition: weights must sum to a positive number');
  const exact = weights.map((w) => (rows * w) / total);
  const sizes = exact.map(Math.floor);
  let left = rows - sizes.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => ({ i, frac: e - Math.floor(e) })).sort((a, b) => b.frac - a.frac || a.i - b.i);
  for (let j = 0; left > 0; j++, left--) sizes[order[j % order.length].i]++;
  return sizes;
}

/** `rows` positions from `start` cut into `parts` contiguous ranges of equal size (± 1, the first ones larger). */
export function equalRanges(start: number, rows: number, parts: number): { lo: number; hi: number }[] {
  return shardRanges(start, partition(rows, new Array<number>(parts).fill(1)));
}

/** Shard ranges [lo, hi) over positions start..start+rows of the epoch order. */
export function shardRanges(start: number, sizes: readonly number[]): { lo: number; hi: number }[] {
  const out: { lo: number; hi: number }[] = [];
  let lo = start;
  for (const s of sizes) {
    out.push({ lo, hi: lo + s });
    lo += s;
  }
  return out;
}
