// Cutting a minibatch: shard sizes proportional to the weights by largest remainder (ties to the
// lower index), and the contiguous ranges built from them.

import { describe, expect, it } from 'vitest';
import { equalRanges, partition, shardRanges } from '../src/core/partition.js';
import { Rng } from '../src/core/rng.js';

describe('partition', () => {
  it('cuts in proportion to the weights, the remainder to the largest fractions', () => {
    expect(partition(30, [2, 1])).toEqual([20, 10]);
    // 7 · 2/3 = 4.67 and 7 · 1/3 = 2.33: the spare row goes to the larger fraction.
    expect(partition(7, [2, 1])).toEqual([5, 2]);
    expect(partition(7, [1, 2])).toEqual([2, 5]);
    expect(partition(128, [0.5, 0.25, 0.25])).toEqual([64, 32, 32]);
  });

  it('breaks ties toward the lower index, so equal weights give the first shards the extra rows', () => {
    expect(partition(10, [1, 1, 1])).toEqual([4, 3, 3]);
    expect(partition(5, [1, 1, 1, 1, 1, 1, 1])).toEqual([1, 1, 1, 1, 1, 0, 0]);
    expect(partition(0, [1, 2])).toEqual([0, 0]);
  });

  it('always sums to the rows, each size within one row of its exact share, the same every time', () => {
    const rng = new Rng(11);
    for (let t = 0; t < 500; t++) {
      const rows = rng.int(1000);
      const weights = Array.from({ length: 1 + rng.int(9) }, () => rng.uniform(0.01, 5));
      const sizes = partition(rows, weights);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(rows);
      const total = weights.reduce((a, b) => a + b, 0);
      sizes.forEach((s, i) => expect(Math.abs(s - (rows * weights[i]) / total)).toBeLessThan(1));
      expect(partition(rows, weights)).toEqual(sizes);
    }
  });

  it('refuses no executors and weights that do not sum to a positive number', () => {
    expect(() => partition(10, [])).toThrow(/partition: no executors/);
    expect(() => partition(10, [0, 0])).toThrow(/weights must sum to a positive number/);
    expect(() => partition(10, [NaN])).toThrow(/weights must sum to a positive number/);
  });
});

describe('ranges', () => {
  it('shardRanges lays the sizes end to end from the start, empty shards included', () => {
    expect(shardRanges(0, [2, 0, 3])).toEqual([{ lo: 0, hi: 2 }, { lo: 2, hi: 2 }, { lo: 2, hi: 5 }]);
    expect(shardRanges(100, [])).toEqual([]);
  });

  it('equalRanges cuts into equal parts, the first ones one larger', () => {
    expect(equalRanges(5, 10, 3)).toEqual([{ lo: 5, hi: 9 }, { lo: 9, hi: 12 }, { lo: 12, hi: 15 }]);
    expect(equalRanges(0, 2, 3)).toEqual([{ lo: 0, hi: 1 }, { lo: 1, hi: 2 }, { lo: 2, hi: 2 }]);
  });
});
