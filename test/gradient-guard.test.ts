// The gradient guard on its own: norms per row against the step's other shards, the recent steps
// and the run so far.

import { describe, expect, it } from 'vitest';
import { GradientGuard } from '../src/coordinator/train/gradient-guard.js';

/** Two slots, a local shard's and a node's, each holding a gradient of the given per-row norm. */
function guardWith(): { guard: GradientGuard; step: (local: number, remote: number) => string | null } {
  const slots = [new Float32Array(4), new Float32Array(4)];
  const guard = new GradientGuard(100, slots);
  const rows = 10;
  // A gradient of norm `perRow × rows` in one coordinate.
  const put = (slot: number, perRow: number): void => void (slots[slot].fill(0), (slots[slot][0] = perRow * rows));
  return {
    guard,
    step(local, remote) {
      put(0, local);
      put(1, remote);
      return guard.outlier([{ slot: 0, rows, remote: false }, { slot: 1, rows, remote: true }])?.reason ?? null;
    },
  };
}

describe('the gradient guard', () => {
  it('refuses a node far above the step\'s other shard', () => {
    const { step } = guardWith();
    expect(step(1, 2)).toBeNull();
    // The reference: the first step's node (2), the largest of everything seen.
    expect(step(1, 1e4)).toMatch(/gradient norm per row 1\.00e\+4 is 5\.00e\+3 × the reference 2\.00e\+0/);
  });

  it('near a perfect fit, accepts an honest shard with a hard sample long after the norms fell', () => {
    const { step } = guardWith();
    // Early steps: nothing learnt yet, norms of order one.
    for (let i = 0; i < 5; i++) expect(step(1, 1)).toBeNull();
    // Then many steps of a fitted model: norms down by six orders of magnitude.
    for (let i = 0; i < 50; i++) expect(step(1e-6, 1e-6)).toBeNull();
    // One node's shard holds the one sample still misclassified: 1e4 × the rest of this step.
    expect(step(1e-6, 1e-2)).toBeNull();
    // A poisoned gradient is still refused.
    expect(step(1e-6, 1e3)).toMatch(/bound 100 ×/);
  });

  it('learns from the steps before any node joined: a node joining a fitted run is not refused', () => {
    const slots = [new Float32Array([1]), new Float32Array([0])];
    const guard = new GradientGuard(100, slots);
    // The coordinator's thread alone: not judged, but its norms are the reference later.
    expect(guard.outlier([{ slot: 0, rows: 1, remote: false }])).toBeNull();
    slots[0][0] = 1e-4;
    for (let i = 0; i < 20; i++) expect(guard.outlier([{ slot: 0, rows: 1, remote: false }])).toBeNull();
    // A node joins; its shard holds the hard samples: 5000 × the coordinator's, half the first step's.
    slots[1][0] = 0.5;
    expect(guard.outlier([{ slot: 0, rows: 1, remote: false }, { slot: 1, rows: 1, remote: true }])).toBeNull();
  });

  it('does not judge a step of one shard, nor one without remote shards', () => {
    const guard = new GradientGuard(100, [new Float32Array([1e9])]);
    expect(guard.outlier([{ slot: 0, rows: 1, remote: true }])).toBeNull();
    const two = new GradientGuard(100, [new Float32Array([1]), new Float32Array([1e9])]);
    expect(two.outlier([{ slot: 0, rows: 1, remote: false }, { slot: 1, rows: 1, remote: false }])).toBeNull();
  });

  it('judges a node by the sum of squares measured while its gradient landed, when the step has it', () => {
    const guard = new GradientGuard(100, [new Float32Array([1]), new Float32Array([1])]);
    // The slot says 1; the landing measured 1e8 (as if the slot were read before the sum landed):
    // the measured one decides, the slot is not read again.
    expect(guard.outlier([{ slot: 0, rows: 1, remote: false }, { slot: 1, rows: 1, remote: true, sumSquares: 1e8 }])?.reason).toMatch(/1\.00e\+4 × the reference/);
    expect(guard.outlier([{ slot: 0, rows: 1, remote: false }, { slot: 1, rows: 1, remote: true, sumSquares: 1 }])).toBeNull();
  });
});
