// The reduction tree's arithmetic: a node tree built from blocks of the pairwise tree gives the
// step's pairwise sum bit for bit, whatever the blocks, and -0 stands in for a block's other leaves.

import { describe, expect, it } from 'vitest';
import { coverBlocks, halves, leftEdgeBlocks, pairwiseSum, type Block } from '../src/core/pairwise.js';

/** Seeded values with mixed exponents, so that the order of float32 additions shows in the bits. */
function values(n: number, seed: number): number[] {
  let s = seed >>> 0;
  const next = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  return Array.from({ length: n }, () => Math.fround((next() - 0.5) * 10 ** Math.floor(next() * 8 - 4)));
}

/** A block's sum as its first leaf computes it: its own value, then the left-edge sub-blocks in turn. */
function headSum(v: readonly number[], b: Block): number {
  let sum = Math.fround(v[b.at]);
  for (const c of leftEdgeBlocks(b.size)) sum = Math.fround(sum + headSum(v, { at: b.at + c.at, size: c.size }));
  return sum;
}

describe('blocks of the pairwise tree', () => {
  it('a head adding its left-edge sub-blocks gets the pairwise sum of its block, for every size', () => {
    for (let n = 1; n <= 40; n++) {
      const v = values(n, n);
      expect(headSum(v, { at: 0, size: n })).toBe(pairwiseSum(v));
    }
  });

  it('cover blocks tile the range and are subtrees: summing them at the root by the tree is the pairwise sum', () => {
    for (let n = 1; n <= 33; n++)
      for (let lo = 0; lo < n; lo++) {
        const blocks = coverBlocks(n, lo, n);
        expect(blocks.map((b) => b.size).reduce((a, b) => a + b, 0)).toBe(n - lo);
        expect(blocks[0].at).toBe(lo);
        // Each block's sum in its first leaf and -0 in its others: the root's pairwise sum is unchanged.
        const v = values(n, 7 * n + lo);
        const stood = [...v];
        for (const b of blocks) {
          stood[b.at] = headSum(v, b);
          for (let i = 1; i < b.size; i++) stood[b.at + i] = -0;
        }
        expect(Object.is(pairwiseSum(stood), pairwiseSum(v))).toBe(true);
      }
  });

  it('splits a block the way T(n) does, and a head of 2^j leaves has j children', () => {
    expect(halves({ at: 4, size: 12 })).toEqual([{ at: 4, size: 8 }, { at: 12, size: 4 }]);
    expect(leftEdgeBlocks(16).map((b) => b.size)).toEqual([1, 2, 4, 8]);
    expect(leftEdgeBlocks(6)).toEqual([{ at: 1, size: 1 }, { at: 2, size: 2 }, { at: 4, size: 2 }]);
    expect(leftEdgeBlocks(1)).toEqual([]);
    expect(coverBlocks(18, 2, 18)).toEqual([{ at: 2, size: 2 }, { at: 4, size: 4 }, { at: 8, size: 8 }, { at: 16, size: 2 }]);
  });

  it('-0 is the identity of float32 addition, +0 is not', () => {
    expect(Object.is(Math.fround(-0 + -0), -0)).toBe(true);
    expect(Object.is(Math.fround(-0 + 0), 0)).toBe(true);
  });
});
